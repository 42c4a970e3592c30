"""Checks for lesson 02 (non-blocking recv())."""

import contextlib
import socket
import threading
import time

from . import CheckFailed, call, expect, passed, timed

WATCHDOG_S = 2.0  # a recv() that blocks gets b"late" after this long, so no check hangs


@contextlib.contextmanager
def nonblocking_pairs(n=1):
    """n connected pairs (ours, theirs), ours non-blocking; all closed on exit."""
    pairs = [socket.socketpair() for _ in range(n)]
    try:
        for ours, _ in pairs:
            ours.setblocking(False)
        yield pairs
    finally:
        for ours, theirs in pairs:
            ours.close()
            theirs.close()


@contextlib.contextmanager
def sends_at(sock, delay, data=b"hello"):
    """The peer `sock` sends `data` after `delay` s, from a timer thread; cancelled and joined on exit."""
    def send():
        with contextlib.suppress(OSError):
            sock.send(data)

    timer = threading.Timer(delay, send)
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        timer.join()


def try_recv(try_recv):
    """try_recv(sock) on a non-blocking socket: the data if some is there,
    None if nothing is (BlockingIOError), b"" if the peer closed."""
    with nonblocking_pairs() as [(sock, peer)]:
        with sends_at(peer, WATCHDOG_S, b"late"):  # only reached if try_recv blocks
            start = time.perf_counter()
            try:
                got = call(try_recv, sock)
            except BlockingIOError:
                raise CheckFailed("try_recv let BlockingIOError out: catch it and return None "
                                  "(it only means \"no data yet\")") from None
            took = time.perf_counter() - start
        expect(got != b"late", f"try_recv waited {took:.1f} s for data; with nothing there "
                               "it must return None at once (is the socket still non-blocking?)")
        expect(got is None, f"nothing was sent yet: expected None, got {got!r}")
        expect(took < 0.5, f"try_recv took {took:.2f} s to find nothing; it should return at once")
        peer.send(b"hello")
        got = call(try_recv, sock)
        expect(got == b"hello", f"the peer sent b'hello': expected it back, got {got!r}")
        peer.close()
        got = call(try_recv, sock)
        expect(got == b"", f"the peer closed: recv() returns b'' then, and try_recv should too "
                           f"(None means \"nothing yet\", b'' means \"closed\"); got {got!r}")
    passed("try_recv returns None at once when nothing is there, the data when it is, b'' when closed")


def poll_until(poll_until):
    """poll_until(sock, timeout) -> (data, attempts): recv() again and again
    until data comes or `timeout` seconds pass (then data is None)."""
    delay = 0.3
    with nonblocking_pairs() as [(sock, peer)]:
        with sends_at(peer, delay):
            start, cpu_start = time.perf_counter(), time.thread_time()
            got = call(poll_until, sock, 3.0)
            took, cpu = time.perf_counter() - start, time.thread_time() - cpu_start
        expect(isinstance(got, tuple) and len(got) == 2, f"expected a pair (data, attempts), got {got!r}")
        data, attempts = got
        expect(data == b"hello", f"the peer sent b'hello' after {delay} s; poll_until returned {data!r}"
                                 + (" at once: keep trying until data comes" if took < delay / 2 else ""))
        expect(took < 2.0, f"the data came after {delay} s, but poll_until returned only after {took:.1f} s")
        expect(isinstance(attempts, int) and attempts > 10,
               f"after {took:.2f} s of waiting, attempts = {attempts!r}; count every recv() call "
               "(a busy loop tries thousands of times)")
    with nonblocking_pairs() as [(sock, peer)]:
        start = time.perf_counter()
        got = call(poll_until, sock, 0.2)
        waited = time.perf_counter() - start
        expect(isinstance(got, tuple) and len(got) == 2, f"expected a pair (data, attempts), got {got!r}")
        expect(got[0] is None, f"nobody sent anything: expected (None, attempts) after the timeout, got {got!r}")
        expect(0.15 <= waited <= 1.0, f"with timeout=0.2, poll_until gave up after {waited:.2f} s")
    passed(f"poll_until got the data after {took:.2f} s and {attempts:,} attempts, using "
           f"{cpu:.2f} s of CPU to wait; and it gives up after its timeout")


def first_ready(first_ready):
    """first_ready(socks, timeout) -> (index, data) of the first socket with
    data, trying them all in turn; None after `timeout` seconds."""
    with nonblocking_pairs(4) as pairs:
        socks = [sock for sock, _ in pairs]
        with sends_at(pairs[2][1], 0.2):
            start = time.perf_counter()
            got = call(first_ready, socks, 3.0)
            took = time.perf_counter() - start
        expect(got == (2, b"hello"), f"socket 2 got b'hello' after 0.2 s, the others nothing: "
                                     f"expected (2, b'hello'), got {got!r}")
        expect(took < 2.0, f"the data came after 0.2 s, but first_ready returned only after {took:.1f} s")
        pairs[3][1].send(b"three")  # waits in socket 3, while socket 0 stays silent
        got, took = timed(call, first_ready, socks, 3.0)
        expect(got == (3, b"three"), f"socket 3 had b'three' waiting: expected (3, b'three'), got {got!r}; "
                                     "do you try every socket, not only the first?")
        expect(took < 0.5, f"socket 3 had data already, but first_ready took {took:.2f} s")
        got, took = timed(call, first_ready, socks, 0.2)
        expect(got is None, f"no socket has data: expected None after the timeout, got {got!r}")
        expect(0.15 <= took <= 1.0, f"with timeout=0.2, first_ready gave up after {took:.2f} s")
    passed("first_ready finds the one socket of four with data, and gives up after its timeout")

