"""Check cells' helpers: test a student's code by its behaviour, on real sockets.

A notebook's check cell calls one function per exercise, for example

    from labserver.checks import lesson01 as check
    check.recv_exactly(recv_exactly)

It runs the student's function against a real peer (a sender that dribbles one
byte at a time, a server with 50 clients...), and either prints one line saying
what passed or raises CheckFailed with one or two lines a student understands:
what was expected, and what came back. A stub that still raises
NotImplementedError fails with "not written yet", never with a traceback.

One module per lesson (lesson01.py, ...), each independent of the others.
"""

import contextlib
import socket
import threading
import time


class CheckFailed(AssertionError):
    """An exercise's answer is not right yet; the message says why."""


def expect(condition, message):
    if not condition:
        raise CheckFailed(message)


def passed(message):
    print(f"\u2714 {message}")


def call(function, *args, **kwargs):
    """Call the student's function, turning "not written yet" into a clear failure."""
    try:
        return function(*args, **kwargs)
    except NotImplementedError as error:
        # Name the function whose stub raised: if poll_until() calls an
        # unwritten try_recv(), try_recv() is the one to write first.
        frame = error.__traceback__
        while frame.tb_next is not None:
            frame = frame.tb_next
        name = frame.tb_frame.f_code.co_name
        if name == "<module>":
            name = getattr(function, "__name__", "your function")
        raise CheckFailed(f"{name}() is not written yet: replace `raise NotImplementedError` with your code") from None


@contextlib.contextmanager
def dribbling_peer(data, interval=0.005, chunk=1, close_after=False):
    """A connected socket whose peer sends `data` `chunk` bytes at a time,
    `interval` seconds apart, from a helper thread: recv() will return it in
    many small pieces, as a slow network would. Everything is closed on exit."""
    ours, theirs = socket.socketpair()
    stop = threading.Event()

    def send():
        try:
            for i in range(0, len(data), chunk):
                if stop.wait(interval):
                    return
                theirs.sendall(data[i:i + chunk])
            if close_after:
                theirs.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    sender = threading.Thread(target=send, name="labserver-check-sender", daemon=True)
    sender.start()
    try:
        ours.settimeout(10)  # a wrong answer that waits forever fails instead of hanging the notebook
        yield ours
    finally:
        stop.set()
        sender.join()
        ours.close()
        theirs.close()


def timed(function, *args, **kwargs):
    """(result, seconds) of a call."""
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start


def nothing_left_running():
    """The last cell of every lesson: no server thread, child process or
    listening socket may outlive the notebook, so it can be run again."""
    import os

    import psutil

    threads = sorted(t.name for t in threading.enumerate() if t.name.startswith("labserver-") and t.is_alive())
    expect(not threads, f"{len(threads)} server threads still running ({', '.join(threads[:3])}"
                        f"{', ...' if len(threads) > 3 else ''}): stop() every server you started")
    me = psutil.Process()
    # multiprocessing keeps one helper (its resource tracker) for the whole session: not ours to stop.
    children = [p for p in me.children(recursive=True) if "resource_tracker" not in " ".join(_cmdline(p))]
    expect(not children, f"child processes still running: {[p.pid for p in children]}: stop() launched servers")
    from ..servers.server import LISTENERS

    listening = [sock.getsockname() for sock in list(LISTENERS) if sock.fileno() != -1]
    expect(not listening, f"sockets still listening at {listening}: a server was not stopped")
    passed(f"nothing left running (process {os.getpid()}): this notebook can be run again from the top")


def _cmdline(process):
    try:
        return process.cmdline()
    except Exception:  # it ended meanwhile, or we may not look
        return []

