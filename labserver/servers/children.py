"""Worker processes, started and stopped safely: what the processes model
needs from multiprocessing, apart from the lesson itself.

    process, pipe = start_child(work, args, name)  # spawned, Ctrl-C blocked while it starts
    wait_until_ready(pipes)                     # each child says b"ready" (or why not)
    supervise(processes, pipes, start, ...)     # a child that dies is replaced (in a thread)
    reap(processes)                             # joined; terminated, then killed, if need be

Children are spawned, not forked: fork copies the parent with whatever locks
its other threads held at that instant (a notebook kernel has many threads)
and is unsafe there; "spawn" starts a fresh interpreter, on every OS.
"""

import contextlib
import multiprocessing
import signal
import socket
import time
from multiprocessing import resource_tracker
from multiprocessing.connection import wait

from .server import ServerError, log

MAX_DEFAULT_WORKERS = 8  # a 64-core host still starts a handful: each costs a whole interpreter

START_TIMEOUT = 30.0  # seconds for every child to import labserver and report ready
JOIN_TIMEOUT = 3.0  # seconds reap() waits for the children before it terminates them
CHECK_EVERY = 0.2  # seconds between two looks at the children, for supervise()
EXITED = ("it exited. A script that starts this server needs the usual `if __name__ == '__main__':` "
          "guard (a spawned worker imports the script again), and a custom app= must be importable "
          "from a .py file (not defined in a notebook cell)")


def start_child(target, args, name):
    """A started, spawned daemon process running target(*args, pipe), and our
    end of `pipe`: a socketpair (not a multiprocessing.Pipe: Windows' select()
    takes only sockets), on which the child says b"ready" and the parent, by
    closing its end, tells the child to stop. `args` go by pickle."""
    ours, theirs = socket.socketpair()
    process = multiprocessing.get_context("spawn").Process(target=target, args=(*args, theirs), name=name, daemon=True)
    try:
        with sigint_blocked():
            process.start()
    except Exception as error:
        ours.close()
        raise ServerError(f"cannot start a worker process (is app= picklable?): {error}") from error
    finally:
        theirs.close()  # the child has its own copy now
    return process, ours


@contextlib.contextmanager
def sigint_blocked():
    """Start children with SIGINT blocked (the mask is inherited), so that a
    Ctrl-C, which the terminal sends to every process of the foreground group,
    cannot interrupt a child while it imports: the parent stops them cleanly."""
    if not hasattr(signal, "pthread_sigmask"):  # Windows: the child ignores it soon enough
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


def wait_until_ready(pipes):
    """Until every child has said b"ready" on its pipe; ServerError if one
    says something else (why it failed), exits, or takes START_TIMEOUT."""
    pending = list(pipes)
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


def supervise(processes, pipes, start, stopping, lock):
    """Until `stopping` is set: when child n exits, reap it and put start(n)'s
    (process, pipe) in its place, as the masters of Apache's prefork, gunicorn
    and nginx do. Without it the pool would shrink with every crash (and on
    Linux, the dead worker's share of new connections would wait unanswered,
    see processes.py). `lock` is held while a child is replaced: stop() takes it
    to close the pipes, so no child is started after it."""
    while not stopping.wait(CHECK_EVERY):
        for n, process in enumerate(processes):
            if process.exitcode is None:
                continue
            with lock:
                if stopping.is_set():
                    return
                log.warning("%s exited (code %s): starting a new one", process.name, process.exitcode)
                reap([process])
                pipes[n].close()
                processes[n], pipes[n] = start(n)
            wait_until_ready([pipes[n]])


def reap(processes):
    """Join every child (JOIN_TIMEOUT for all); terminate, then kill, the late ones."""
    deadline = time.monotonic() + JOIN_TIMEOUT
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
    for process in processes:
        if process.is_alive():
            log.warning("%s did not stop within %.1f s: terminating it", process.name, JOIN_TIMEOUT)
            process.terminate()
            process.join(1.0)
        if process.is_alive():
            process.kill()
            process.join()
        process.close()  # reaped: no zombie, and its sentinel fd is closed
