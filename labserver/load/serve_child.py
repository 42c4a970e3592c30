"""`labserver serve`, as launch() runs it: the same server, ended with its parent.

    python .../labserver/load/serve_child.py PARENT_PID serve --model NAME --port 0 --quiet

A notebook kernel that is restarted or killed cannot stop its servers, and an
orphaned busywait server would burn a core under every later measurement. So
a thread here checks twice a second that the process that launched us is
still our parent; when it is not, it sends us SIGINT, our own Ctrl-C, and the
server stops cleanly. Everything else is `labserver serve` itself.

It is run by path, not with -m, so that starting it imports labserver.cli and
not the load package: the server's memory, which the lessons compare, stays
the server's own.
"""

import os
import signal
import sys
import threading
import time

sys.path.pop(0)  # this script's folder: its modules must not shadow anything

from labserver.cli import main  # noqa: E402  (after the sys.path fix above)

CHECK_EVERY = 0.5  # seconds


def stop_when_orphaned(parent):
    while os.getppid() == parent:
        time.sleep(CHECK_EVERY)
    os.kill(os.getpid(), signal.SIGINT)  # (on Windows this ends the process at once)


if __name__ == "__main__":
    threading.Thread(target=stop_when_orphaned, args=(int(sys.argv[1]),), daemon=True).start()
    sys.exit(main(sys.argv[2:]))
