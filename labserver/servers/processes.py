"""Lesson 07 (processes): a pool of worker processes accepting on one port.

    for n in range(self.workers):  # in start(): the pool is started once
        process, pipe = self.start_worker(n)   # start_child(work, args, ...): a spawned process
        ...
    self.spawn(supervise, ...)  # a thread of the parent: a worker that dies is replaced

    def work(listener, root, app, timeout_options, own_listener, parent):  # in each worker
        ...
        server.serve_on(listener, parent, shared=not own_listener)  # the callback server of lesson 04

The parent binds and listens, then starts the pool ("typical servers start a
pool of processes when launched"): one worker per CPU by default, each given
the listening socket. Every worker accept()s from it and serves its own
connections with the callback server of lesson 04; the kernel hands each
new connection to one of the workers waiting for it. Apache's prefork,
gunicorn and nginx's worker processes work this way.

Who gets a connection, though? Whichever worker is awake first: on a busy
machine one worker can take a whole burst of connections while another sits
idle. So on Linux every worker but the first opens its own listening socket
on the same port (SO_REUSEPORT, as nginx's `reuseport` does), and the kernel
deals new connections out between the sockets by a hash of their addresses:
spread evenly on average, whoever is awake. The price: a connection dealt to
a worker busy on a long request waits for it, even if another worker is idle.
(macOS and Windows do not spread that way: there the workers share one
listener, and each takes one connection per turn.)

Each process has its own interpreter and its own GIL, so /cpu requests run on
all cores at once, which the threads of one process cannot do (lesson 06).

Trade-off: processes share no memory. Every worker has its own app, its own
caches, its own copy of everything; sharing anything (a counter, one log
file) takes IPC (lesson 07 writes one log file through a queue). In return
a bug in one worker cannot corrupt another, and a worker that crashes ends
alone: its clients lose their connections, the other workers go on. It is
replaced, as the masters of Apache's prefork, gunicorn and nginx do: a
thread of the parent watches the workers and starts a new one in the dead
one's place (children.supervise). Without it, on Linux, a dead worker 0 would
leave the parent's listener in the SO_REUSEPORT group with nobody accepting
from it, and the connections the kernel dealt to it would wait unanswered.
Workers are heavy to start (each imports Python and labserver), so they start once:
start() returns when every worker has said it is ready (a client that
connects earlier just waits in the listen backlog). Workers' log records are
dropped: nothing may print, and only the parent's logging is set up.

Workers are spawned, not forked (see children.py), so what a worker needs
travels by pickle: `root` (each worker builds make_app(root)), or a custom
`app=`, which must be picklable and importable by a fresh interpreter (a
class defined in a notebook cell is not). And a script that starts this
server needs the `if __name__ == "__main__":` guard, because each worker
imports the script again (notebooks and `labserver serve` need none).
"""

import contextlib
import logging
import signal
import socket
import sys
from multiprocessing import reduction

from .callbacks import CallbackServer
from ..limits import usable_cpus
from .children import MAX_DEFAULT_WORKERS, reap, start_child, supervise, wait_until_ready
from .server import BACKLOG, Server, ServerError, demo_site

# Linux spreads connections over the sockets of a SO_REUSEPORT group; BSDs and
# macOS accept the option but give each connection to one socket, Windows lacks it.
OWN_LISTENERS = sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


class ProcessPoolServer(Server):
    name = "processes"
    description = "a pool of worker processes accepting on one port: one GIL per core"
    reuse_port = OWN_LISTENERS  # the workers' own listeners join the parent's

    @property
    def default_workers(self):
        return usable_cpus(cap=MAX_DEFAULT_WORKERS)  # one per CPU it may use: affinity, container quota

    def __init__(self, root=None, host="127.0.0.1", port=0, app=None, workers=None, **timeouts):
        super().__init__(root, host, port, app, workers, **timeouts)
        self.root = root if root is not None else demo_site()
        self.custom_app = app
        self.processes = []
        self.pipes = []  # our end of a socketpair per worker: closing it tells the worker to stop

    def launch(self):
        if not reduction.HAVE_SEND_HANDLE:
            raise ServerError("this platform cannot pass a socket to another process; use the threadpool model")
        for n in range(self.workers):
            process, pipe = self.start_worker(n)
            self.processes.append(process)
            self.pipes.append(pipe)
        wait_until_ready(self.pipes)
        self.spawn(supervise, self.processes, self.pipes, self.start_worker, self.stopping, self._lock)

    def start_worker(self, n):
        """Worker n, started: (its process, our end of the pipe that tells it to stop)."""
        own_listener = self.reuse_port and n > 0  # worker 0 serves the parent's
        args = (self.listener, self.root, self.custom_app, self.timeouts.options(), own_listener)
        return start_child(work, args, name=f"labserver-processes-{n}")  # the listener goes as a descriptor

    def interrupt(self):
        with self._lock:  # the supervisor replaces no worker meanwhile
            for pipe in self.pipes:
                pipe.close()  # the worker's end becomes readable (EOF): its loop returns

    def cleanup(self):
        reap(self.processes)


# In the worker process.


def work(listener, root, app, timeout_options, own_listener, parent):
    """A worker's main function: the callback server of lesson 04, on the
    listener it inherited (or, with own_listener, on its own socket on the
    same port), until the parent closes its end of `parent`."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Drop the worker's log records: nothing may print, not even logging's last resort.
    logging.getLogger("labserver").addHandler(logging.NullHandler())
    try:
        if own_listener:
            address, family = listener.getsockname(), listener.family
            listener.close()  # the parent's: the first worker serves it
            listener = socket.create_server(address, family=family, backlog=BACKLOG, reuse_port=True)
        server = CallbackServer(root=root, app=app, **timeout_options)
    except Exception as error:
        parent.sendall(f"{type(error).__name__}: {error}".encode())
        return
    parent.sendall(b"ready")
    # A crash ends this worker quietly (its log records go nowhere): the parent starts another.
    with contextlib.suppress(Exception):
        # A shared listener is non-blocking in every worker at once (they share O_NONBLOCK): all want it.
        server.serve_on(listener, parent, shared=not own_listener)  # until the parent closes its end
