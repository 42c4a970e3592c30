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
free port that someone else could take in between). We read that line; a
thread keeps draining the pipe so the child can never block on a full one.
stop() sends SIGINT, the child's Ctrl-C, so it closes its sockets and threads
itself; if it has not exited after `stop_timeout` seconds it is killed, with
any processes it left behind, and always reaped: no zombies. If we die first
(a notebook kernel restarted), the child notices and stops too (serve_child.py).
"""

import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import weakref
from pathlib import Path
from urllib.parse import urlsplit

from ..servers import ServerError, get_model
from .monitor import pin

try:
    import psutil
except ImportError:
    psutil = None

URL = re.compile(r"http://[^\s]+")
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
        self.process = None
        self.url = None
        self.port = None
        self._log = None
        self._reader = None
        self._finalizer = None

    def command(self):
        # `python -m labserver serve ...`, through serve_child.py: the same
        # server, which also stops if we die without stopping it.
        command = [sys.executable, str(CHILD), str(os.getpid()), "serve", "--model", self.model,
                   "--host", self.host, "--port", str(self.requested_port), "--quiet"]
        if self.root is not None:
            command += ["--root", str(self.root)]
        if self.workers is not None:
            command += ["--workers", str(self.workers)]
        return command

    def start(self):
        if self.process is not None:
            raise ServerError(f"{self!r} was started already; a launched server runs once: launch a new one")
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            p for p in [PACKAGE_PARENT, os.environ.get("PYTHONPATH")] if p))
        self._log = tempfile.TemporaryFile()  # the child's stderr, for error messages
        self.process = subprocess.Popen(
            self.command(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._log, env=env,
            # Its own session: Ctrl-C in a terminal reaches us, and we stop it in order.
            start_new_session=(os.name == "posix"))
        self._finalizer = weakref.finalize(self, kill_tree, self.process)  # dropped or at exit
        try:
            self._wait_for_url()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_for_url(self):
        if self.cpus is not None:
            pin(self.process.pid, self.cpus)  # before it starts any thread, which inherit it
        found = threading.Event()
        self._reader = threading.Thread(target=self._read_output, args=(found,), daemon=True,
                                        name=f"labserver-launch-{self.model}")
        self._reader.start()
        if not found.wait(self.start_timeout) or self.url is None:
            try:
                code = self.process.wait(1.0)  # its output ended: it is exiting
            except subprocess.TimeoutExpired:
                code = None
            problem = (f"exited with status {code}" if code is not None
                       else f"printed no URL within {self.start_timeout:g} s")
            details = self.stderr_tail()
            raise ServerError(f"the {self.model} server {problem}" + (f":\n{details}" if details else ""))

    def _read_output(self, found):
        """Find the URL in the child's output, then drain the pipe until it closes."""
        for line in self.process.stdout:
            if self.url is None:
                match = URL.search(line.decode(errors="replace"))
                if match:
                    self.url = match.group()
                    self.port = urlsplit(self.url).port
                    found.set()
        found.set()  # EOF: the child exited (start() reports why)

    def stop(self):
        """SIGINT, wait, kill if needed, reap. Safe to call twice."""
        if self.process is None or self._finalizer is None or not self._finalizer.alive:
            return
        self._finalizer.detach()
        leftovers = descendants(self.process.pid)
        if self.process.poll() is None:
            interrupt(self.process)
            try:
                self.process.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                pass
        kill_tree(self.process, leftovers)
        if self._reader is not None:
            self._reader.join(self.stop_timeout)
        self.process.stdout.close()
        self._log.close()

    def stderr_tail(self, lines=15):
        if self._log is None or self._log.closed:
            return ""
        self._log.seek(0)
        return "\n".join(self._log.read().decode(errors="replace").splitlines()[-lines:])

    @property
    def pid(self):
        return self.process.pid if self.process is not None else None

    @property
    def running(self):
        return self.process is not None and self.process.poll() is None

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


def interrupt(process):
    """The child's Ctrl-C (Windows has no SIGINT for another process: terminate)."""
    try:
        if os.name == "posix":
            process.send_signal(signal.SIGINT)
        else:
            process.terminate()
    except ProcessLookupError:
        pass


def descendants(pid):
    if psutil is None:
        return []
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def kill_tree(process, leftovers=None):
    """Kill and reap `process` if it still runs, and kill what it left behind."""
    leftovers = descendants(process.pid) if leftovers is None else leftovers
    if process.poll() is None:
        leftovers += descendants(process.pid)
        process.kill()
    process.wait()  # reap: no zombie
    for child in leftovers:
        try:
            child.kill()
        except Exception:  # psutil.NoSuchProcess: already gone, as it should be
            pass
