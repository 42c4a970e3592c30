"""Lesson 07 (processes): a pool of worker processes accepting on one port.

The parent binds and listens, then starts the pool ("typical servers start a
pool of processes when launched"): one worker per CPU by default, each given
the listening socket. Every worker accept()s from it and serves its own
connections with the callback server of lesson 04; the kernel hands each
new connection to one of the workers waiting for it. Apache's prefork,
gunicorn and nginx's worker processes work this way.

Who gets a connection, though? Whichever worker is awake first: on a busy
machine one worker took 8 connections of 8, or 60 of 64, while the other sat
idle, and the server ran at one core's speed. So on Linux every worker but
the first opens its own listening socket on the same port (SO_REUSEPORT,
as nginx's `reuseport` does), and the kernel deals new connections out
between the sockets by a hash of their addresses: spread evenly on average,
whoever is awake. The price: a connection dealt to a worker busy on a long
request waits for it, even if another worker is idle. (macOS and Windows do
not spread that way: there the workers share one listener.)

Each process has its own interpreter and its own GIL, so /cpu requests run on
all cores at once, which the threads of one process cannot do (lesson 06).

Trade-off: processes share no memory. Every worker has its own app, its own
caches, its own copy of everything; sharing anything (a counter, one log
file) takes IPC. In return a bug in one worker cannot corrupt another. They
are heavy to start (each imports Python and labserver, ~0.3 s), so they start
once: start() returns when every worker has said it is ready (a client that
connects earlier just waits in the listen backlog). Workers' log records are
dropped: nothing may print, and only the parent's logging is set up.

Workers are spawned, not forked: fork copies the parent with whatever locks
its other threads held at that instant (a notebook kernel has many threads)
and is unsafe there; "spawn" starts a fresh interpreter, on every OS. So what
a worker needs travels by pickle: `root` (each worker builds make_app(root)),
or a custom `app=`, which must be picklable and importable by a fresh
interpreter (a class defined in a notebook cell is not). And a script that
starts this server needs the `if __name__ == "__main__":` guard, because each
worker imports the script again (notebooks and `labserver serve` need none).
"""

import contextlib
import logging
import multiprocessing
import os
import selectors
import signal
import socket
import sys
import time
from multiprocessing import reduction, resource_tracker
from multiprocessing.connection import wait

from ..app import make_app
from .base import BACKLOG, Server, ServerError, demo_site, log
from .callbacks import CallbackServer

# Linux spreads connections over the sockets of a SO_REUSEPORT group; BSDs and
# macOS accept the option but give each connection to one socket, Windows lacks it.
OWN_LISTENERS = sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")
START_TIMEOUT = 30.0  # seconds for every worker to import labserver and report ready
JOIN_TIMEOUT = 3.0  # seconds stop() waits for the workers before it terminates them
EXITED = ("it exited. A script that starts this server needs the usual `if __name__ == '__main__':` "
          "guard (a spawned worker imports the script again), and a custom app= must be importable "
          "from a .py file (not defined in a notebook cell)")


def usable_cpus():
    try:
        return len(os.sched_getaffinity(0))  # the CPUs this process may run on (Linux)
    except AttributeError:
        return os.cpu_count() or 1


class ProcessPoolServer(Server):
    name = "processes"
    description = "a pool of worker processes accepting on one port: one GIL per core"
    reuse_port = OWN_LISTENERS  # the workers' own listeners join the parent's

    def __init__(self, root=None, host="127.0.0.1", port=0, app=None, workers=None, **timeouts):
        super().__init__(root, host, port, app, **timeouts)
        self.root = root if root is not None else demo_site()
        self.custom_app = app
        self.workers = usable_cpus() if workers is None else workers
        if self.workers < 1:
            raise ServerError("workers must be at least 1")
        self.processes = []
        self.pipes = []  # our end of a socketpair per worker: closing it tells the worker to stop

    def launch(self):
        if not reduction.HAVE_SEND_HANDLE:
            raise ServerError("this platform cannot pass a socket to another process; use the threadpool model")
        context = multiprocessing.get_context("spawn")
        for n in range(self.workers):
            # A socketpair, not a multiprocessing.Pipe: Windows' select() takes only sockets.
            ours, theirs = socket.socketpair()
            self.pipes.append(ours)
            own_listener = self.reuse_port and n > 0  # worker 0 serves the parent's
            args = (self.listener, theirs, self.root, self.custom_app, self.timeouts, own_listener)
            process = context.Process(target=work, args=args, name=f"labserver-processes-{n}", daemon=True)
            try:
                with sigint_blocked():
                    process.start()  # pickles args; the listener goes over as a file descriptor
            except Exception as error:
                raise ServerError(f"cannot start a worker process (is app= picklable?): {error}") from error
            finally:
                theirs.close()  # the worker has its own copy now
            self.processes.append(process)
        self.wait_until_ready()

    def wait_until_ready(self):
        pending = list(self.pipes)
        deadline = time.monotonic() + START_TIMEOUT
        while pending:
            ready = wait(pending, max(0.0, deadline - time.monotonic()))
            if not ready:
                raise ServerError(f"the worker processes did not start within {START_TIMEOUT:.0f} s")
            for pipe in ready:
                pending.remove(pipe)
                message = pipe.recv(4096)
                if message != b"ready":
                    reason = message.decode(errors="replace") or EXITED
                    raise ServerError(f"a worker process failed to start: {reason}")

    def wake(self):
        for pipe in self.pipes:
            pipe.close()  # the worker's end becomes readable (EOF): its loop returns

    def cleanup(self):
        deadline = time.monotonic() + JOIN_TIMEOUT
        for process in self.processes:
            process.join(max(0.0, deadline - time.monotonic()))
        for process in self.processes:
            if process.is_alive():
                log.warning("%s did not stop within %.1f s: terminating it", process.name, JOIN_TIMEOUT)
                process.terminate()
                process.join(1.0)
            if process.is_alive():
                process.kill()
                process.join()
            process.close()  # reaped: no zombie, and its sentinel fd is closed


@contextlib.contextmanager
def sigint_blocked():
    """Start children with SIGINT blocked (the mask is inherited), so that a
    Ctrl-C, which the terminal sends to every process of the foreground group,
    cannot interrupt a worker while it imports: the parent stops them cleanly."""
    if not hasattr(signal, "pthread_sigmask"):  # Windows: work() ignores it soon enough
        yield
        return
    # multiprocessing starts its resource tracker with the first process, and
    # unblocks SIGINT when it is done: start the tracker first.
    resource_tracker.ensure_running()
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


# In the worker process.


def work(listener, parent, root, app, timeouts, own_listener=False):
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
        server = CallbackServer(app=app if app is not None else make_app(root))
        server.timeouts = timeouts
        # With one shared listener, a worker takes one connection per turn, so
        # that while it runs a /cpu request the others take the next ones.
        server.accept_burst = CallbackServer.accept_burst if own_listener else 1
        server.listener = listener  # O_NONBLOCK on a shared one is shared by every worker: all want it
        server.setup()
        # The parent closes its end to stop us: EOF makes this socket readable.
        server.selector.register(parent, selectors.EVENT_READ, lambda sock, mask: server.stopping.set())
    except Exception as error:
        parent.sendall(f"{type(error).__name__}: {error}".encode())
        return
    parent.sendall(b"ready")
    try:
        server.serve_forever()
    except Exception:
        log.exception("worker %d crashed", os.getpid())
    finally:
        server.cleanup()
        if own_listener:
            listener.close()
