"""The Server contract that every concurrency model follows.

    with ThreadPoolServer(root="site") as srv:    # start(): bound and listening
        requests.get(srv.url)                      # srv.url, srv.port
    # stop(): every thread joined, every socket closed; safe to call twice

A model only decides how it waits for sockets and who runs the handler; the
HTTP rules live in labserver.protocol and the files in labserver.app. This
module holds what every model shares: the listening socket, the three
deadlines, and start/stop. How a connection is served is in blocking.py
(lessons 01 and 06) and nonblocking.py (lessons 02 to 04).

Servers never print: a background thread's print lands in whichever notebook
cell runs next. They log to the "labserver" loggers instead.
"""

import errno
import logging
import socket
import threading
import weakref
from dataclasses import dataclass

from ..app import make_app

log = logging.getLogger("labserver.server")

# The queue of connections the kernel completes before we accept() them.
# socketserver's default of 5 drops SYNs as soon as a few dozen clients
# arrive together; each drop costs the client a 1 s retransmit.
BACKLOG = 1024
# Seconds a server stops accepting after accept() failed (out of file
# descriptors, say): trying again at once would fail again, in a busy loop.
ACCEPT_PAUSE = 0.5


@dataclass(frozen=True)
class Timeouts:
    """How long a server waits for a client before it gives up on it.

    Every model enforces `idle` and `request`. `send` bounds the event
    loops' wait for a client to take its response; in the blocking models
    (blocking.py), each wait for room to send is bounded by `idle` instead."""

    idle: float = 15.0  # keep-alive: between two requests
    request: float = 20.0  # in total, to receive one request (slowloris)
    send: float = 60.0  # a client that stops reading its response

    def options(self):
        """The same, as a Server's keyword arguments: Server(**timeouts.options())."""
        return {"idle_timeout": self.idle, "request_timeout": self.request, "send_timeout": self.send}


# Every listening socket a server opened, while it exists: so that a notebook
# can check that it left none open (checks.nothing_left_running).
LISTENERS = weakref.WeakSet()


class ServerError(RuntimeError):
    """Misuse of a server: started twice, port in use, bad option."""


def demo_site():
    from .. import DEMO_SITE

    return DEMO_SITE


def make_listener(host, port, backlog=BACKLOG, reuse_port=False):
    """A listening TCP socket, with an error a student can act on.

    reuse_port: SO_REUSEPORT, so that other sockets can listen on the same
    port (the processes model's workers). Other servers could join then too,
    so a port that is already taken is refused first, by a plain bind."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        if reuse_port and port != 0:
            with socket.socket(family) as probe:  # in use? then this raises EADDRINUSE
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as create_server does
                probe.bind((host, port))
        listener = socket.create_server((host, port), family=family, backlog=backlog, reuse_port=reuse_port)
        LISTENERS.add(listener)
        return listener
    except OSError as error:
        if error.errno in (errno.EADDRINUSE, getattr(errno, "WSAEADDRINUSE", -1)):
            raise ServerError(
                f"port {port} on {host} is already in use: stop the other server "
                f"(srv.stop()) or choose another port (port=0 picks a free one)"
            ) from None
        if error.errno in (errno.EADDRNOTAVAIL, errno.EACCES):
            raise ServerError(f"cannot listen on {host}:{port}: {error.strerror}") from None
        raise


class Server:
    """Base class: subclasses implement serve_forever() (the model itself)
    and interrupt(), which makes it notice that stop() was called."""

    name = "base"
    description = ""
    concurrent = True  # serves several clients at once (the iterative model does not)
    reuse_port = False  # SO_REUSEPORT on the listener (see make_listener)

    default_idle_timeout = Timeouts.idle
    default_workers = None  # models with worker threads or processes: how many, unless told

    def __init__(self, root=None, host="127.0.0.1", port=0, app=None, workers=None,
                 idle_timeout=None, request_timeout=Timeouts.request, send_timeout=Timeouts.send):
        if workers is not None and self.default_workers is None:
            raise ServerError(f"the {self.name} model has no worker threads or processes to set (workers=)")
        if workers is not None and workers < 1:
            raise ServerError("workers must be at least 1")
        self.workers = self.default_workers if workers is None else workers  # threads or processes
        self.app = app if app is not None else make_app(root if root is not None else demo_site())
        idle = self.default_idle_timeout if idle_timeout is None else idle_timeout
        self.timeouts = Timeouts(idle, request_timeout, send_timeout)
        self.host = host
        self.requested_port = port
        self.listener = None
        self._port = None
        self.stopping = threading.Event()
        self._threads = []
        self._lock = threading.Lock()
        self._started = False

    # The contract.

    def start(self):
        """Bind and listen, start the model in the background, return self."""
        with self._lock:
            if self.stopping.is_set():  # its threads and sockets are gone: a server object runs once
                raise ServerError(f"{self!r} has been stopped and cannot start again: create a new server")
            if self._started:
                raise ServerError(f"{self!r} is already started; call stop() first, then create a new server")
            # If binding fails (port in use), nothing has changed: fix and retry.
            self.listener = make_listener(self.host, self.requested_port, reuse_port=self.reuse_port)
            self._port = self.listener.getsockname()[1]  # port 0 resolved to the real one
            self._started = True
        try:
            self.launch()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout=5.0):
        """Stop serving, close every socket and join every thread. Idempotent."""
        with self._lock:
            if not self._started or self.stopping.is_set():
                return
            self.stopping.set()
        self.interrupt()
        for thread in self._threads:
            thread.join(timeout)
            if thread.is_alive():
                log.warning("%s did not stop within %.1f s", thread.name, timeout)
        self.cleanup()
        if self.listener is not None:
            self.listener.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    @property
    def port(self):
        """The port listened on (known once started, kept after stop())."""
        return self._port

    @property
    def url(self):
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    @property
    def running(self):
        return self._started and not self.stopping.is_set()

    def __repr__(self):
        state = "running" if self.running else "stopped"
        where = f" at {self.url}" if self._port is not None else ""
        return f"<{type(self).__name__} {state}{where}>"

    # What a model provides.

    def launch(self):
        """Start the model's threads; by default one, running serve_forever()."""
        self.spawn(self.serve_forever)

    def serve_forever(self):
        raise NotImplementedError

    def interrupt(self):
        """From stop(): make serve_forever() notice `stopping`, wherever it waits."""

    def cleanup(self):
        """Close what the model still holds, after its threads have ended."""

    def spawn(self, target, *args):
        """Start a background thread that stop() will join."""
        name = f"labserver-{self.name}-{len(self._threads)}"
        thread = threading.Thread(target=self._run, args=(target, *args), name=name, daemon=True)
        self._threads.append(thread)
        thread.start()
        return thread

    def _run(self, target, *args):
        try:
            target(*args)
        except Exception:
            if not self.stopping.is_set():
                log.exception("%s crashed", threading.current_thread().name)
