"""launch(): a labserver model in its own process, behind the Server interface.

    with launch("threadpool") as server:      # python -m labserver serve ... in a child
        run(server.url, clients=8, pid=server.pid)

Why a separate process: a server running inside the notebook kernel shares
the kernel's GIL with the load generator, the plots and the widgets, and the
measurement then measures all of them at once. A child process has its own
interpreter; its CPU and memory can be read by pid; and a crash, a hang or a
leak ends with it.

How it starts and stops: the child runs `labserver serve --port 0 --quiet`, so
the kernel picks a free port and the child prints the URL it got (no guessed
free port that someone else could take in between); we wait for that line.
Starting, stopping (Ctrl-C, then terminate, then kill, always reaped) and the
guard that stops the child if the notebook kernel dies first are
labserver.children's Child, the same for every child process of the kit.
"""

import os
import sys
from pathlib import Path
from urllib.parse import urlsplit

from ..children import Child, ChildError
from ..servers import ServerError, get_model
from .monitor import pin

URL = r"http://[^\s]+"
PACKAGE_PARENT = str(Path(__file__).resolve().parent.parent.parent)  # so the child imports this labserver
CHILD = Path(__file__).resolve().parent / "serve_child.py"


class LaunchedServer:
    """A server model running in a child process; see the module docstring."""

    def __init__(self, model, root=None, workers=None, host="127.0.0.1", port=0, cpus=None,
                 start_timeout=30.0, stop_timeout=5.0):
        get_model(model)  # an unknown name fails here, with the list of choices
        self.model = model
        self.root = root
        self.workers = workers
        self.host = host
        self.requested_port = port
        self.cpus = cpus
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.child = None
        self.url = None
        self.port = None

    def command(self):
        # `labserver serve ...` through serve_child.py: the same server, with room for many connections.
        command = [sys.executable, str(CHILD), "serve", "--model", self.model,
                   "--host", self.host, "--port", str(self.requested_port), "--quiet"]
        if self.root is not None:
            command += ["--root", str(self.root)]
        if self.workers is not None:
            command += ["--workers", str(self.workers)]
        return command

    def start(self):
        if self.child is not None:
            raise ServerError(f"{self!r} was started already; a launched server runs once: launch a new one")
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            p for p in [PACKAGE_PARENT, os.environ.get("PYTHONPATH")] if p))
        self.child = Child(self.command(), env=env, stop_timeout=self.stop_timeout)
        try:
            self.child.start()
            if self.cpus is not None:
                pin(self.child.pid, self.cpus)  # before it starts any thread, which inherit it
            self.url = self.child.wait_for_output(URL, self.start_timeout).group()
        except ChildError as error:
            self.stop()
            raise ServerError(f"the {self.model} server {error}") from None
        except BaseException:
            self.stop()
            raise
        self.port = urlsplit(self.url).port
        return self

    def stop(self):
        """Ctrl-C, wait, terminate, kill if needed; reap. Safe to call twice.
        Returns what had to be killed ([] when it stopped when asked)."""
        return self.child.stop() if self.child is not None else []

    def stderr_tail(self, lines=15):
        """The last lines the child printed (stdout and stderr)."""
        return self.child.output_tail(lines) if self.child is not None else ""

    @property
    def process(self):
        return self.child.process if self.child is not None else None

    @property
    def pid(self):
        return self.child.pid if self.child is not None else None

    @property
    def running(self):
        return self.child is not None and self.child.running

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    def __repr__(self):
        state = "running" if self.running else "stopped"
        where = f" at {self.url} (pid {self.pid})" if self.url else ""
        return f"<LaunchedServer {self.model} {state}{where}>"


def launch(model, root=None, workers=None, host="127.0.0.1", port=0, cpus=None, start=False, **options):
    """A LaunchedServer for `model` (a name from labserver.servers.MODELS).
    Use it as a context manager, or call start() (start=True does it here)."""
    server = LaunchedServer(model, root, workers, host, port, cpus, **options)
    return server.start() if start else server
