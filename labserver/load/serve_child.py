"""`labserver serve`, as launch() runs it: the same server, with room for many connections.

    python .../labserver/load/serve_child.py serve --model NAME --port 0 --quiet

Lesson 08 connects 1000 clients, and macOS gives a process 256 file
descriptors unless it asks for more: so the child raises its open-file limit
as far as the system allows before the server starts. (If the notebook that
launched it dies, the guard of labserver.children stops it.)

It is run by path, not with -m, so that starting it imports labserver.cli and
not the load package: the server's memory, which the lessons compare, stays
the server's own.
"""

import sys

sys.path.pop(0)  # this script's folder: its modules must not shadow anything

from labserver.cli import main  # noqa: E402  (after the sys.path fix above)
from labserver.limits import raise_open_files_limit  # noqa: E402

if __name__ == "__main__":
    raise_open_files_limit()  # as far as the hard limit allows
    sys.exit(main(sys.argv[1:]))
