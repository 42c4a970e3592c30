"""Checks for lesson 02 (non-blocking recv()).

Every socket handed to the student's code is a WatchedSocket: the checks see
how many times recv() was called, whether it was called again after it had
returned b"" (the peer closed), and whether the socket was switched to
another mode. Every call runs under a deadline, so a busy loop that never
gives up fails with a message instead of spinning forever.
"""

import contextlib
import socket
import threading
import time

from . import CheckFailed, StudentCall, WatchedSocket, check, expect, passed, plain, run_student

DEADLINE = 4.0  # seconds for any call here; the longest waits 0.3 s for its data


@contextlib.contextmanager
def nonblocking_pairs(n=1):
    """n connected pairs (ours, theirs), ours a non-blocking WatchedSocket; all closed on exit."""
    pairs = []
    try:
        for _ in range(n):
            ours, theirs = socket.socketpair()
            ours.setblocking(False)
            pairs.append((WatchedSocket(ours), theirs))
        yield pairs
    finally:
        for ours, theirs in pairs:
            ours.close()
            theirs.close()


@contextlib.contextmanager
def sends_at(sock, delay, data=b"hello"):
    """The peer `sock` sends `data` (or closes, if data is None) after `delay`
    s, from a timer thread; cancelled and joined on exit."""
    def act():
        with contextlib.suppress(OSError):
            if data is None:
                sock.shutdown(socket.SHUT_WR)
            else:
                sock.send(data)

    timer = threading.Timer(delay, act)
    timer.name = "labserver-check-timer"
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        timer.join()


def _mode_changed(sock, name):
    """A message if the student's code took the socket out of non-blocking mode."""
    wrong = [mode for mode in sock.modes if mode != "non-blocking" and mode != "a timeout of 0 s"]
    if wrong or sock.gettimeout() != 0.0:
        return (f"{name} switched the socket to {wrong[-1] if wrong else 'another mode'}: the socket you are "
                f"given is non-blocking already; keep it so, and catch BlockingIOError (\"nothing yet\")")
    return None


def _still_nonblocking(sock, name):
    message = _mode_changed(sock, name)
    if message:
        raise CheckFailed(message)


def _timed_call(function, *args, sockets=(), doing=None):
    start = time.perf_counter()
    got = run_student(function, *args, deadline=DEADLINE, sockets=sockets, doing=doing)
    return got, time.perf_counter() - start


@check
def try_recv(try_recv):
    """try_recv(sock) on a non-blocking socket: the data if some is there,
    None if nothing is (BlockingIOError), b"" if the peer closed."""
    with nonblocking_pairs() as [(sock, peer)]:
        try:
            got, took = _timed_call(try_recv, sock, sockets=[sock], doing="nothing had been sent yet")
        except BlockingIOError:
            raise CheckFailed("try_recv let BlockingIOError out: catch it and return None "
                              "(it only means \"nothing yet\")") from None
        except socket.timeout:
            raise CheckFailed(_mode_changed(sock, "try_recv") or "try_recv raised socket.timeout") from None
        _still_nonblocking(sock, "try_recv")
        expect(got is None, f"nothing was sent yet: expected None, got {got!r:.60}")
        expect(took < 0.5, f"try_recv took {took:.2f} s to find nothing; it should return at once")
        peer.send(b"hello")
        got, _ = _timed_call(try_recv, sock, sockets=[sock], doing="the peer had sent b'hello'")
        expect(got == b"hello" and plain(got, bytes), f"the peer sent b'hello': expected it back, got {got!r:.60}")
        peer.close()
        got, _ = _timed_call(try_recv, sock, sockets=[sock], doing="the peer had closed")
        expect(got == b"" and plain(got, bytes),
               f"the peer closed: recv() returns b'' then, and try_recv should too "
               f"(None means \"nothing yet\", b'' means \"closed\"); got {got!r:.60}")
        _still_nonblocking(sock, "try_recv")
    passed("try_recv returns None at once when nothing is there, the data when it is, b'' when closed")


def _pair(got, name):
    expect(isinstance(got, tuple) and len(got) == 2, f"{name} should return a pair (data, attempts), got {got!r:.60}")
    return got


@check
def poll_until(poll_until):
    """poll_until(sock, timeout) -> (data, attempts): recv() again and again
    until data comes or `timeout` seconds pass (then data is None)."""
    delay = 0.3
    with nonblocking_pairs() as [(sock, peer)]:
        doing = f"the peer sent b'hello' after {delay} s"
        attempt = StudentCall(poll_until, (sock, 3.0))
        with sends_at(peer, delay):
            data, attempts = _pair(attempt.run(DEADLINE, [sock], doing), "poll_until")
        _still_nonblocking(sock, "poll_until")
    calls = sock.recv_calls
    expect(attempt.wall_s < 2.0, f"{doing}, but poll_until returned only after {attempt.wall_s:.1f} s")
    expect(data == b"hello", f"{doing}; poll_until returned {data!r:.60}"
                             + (": keep trying until data comes, or the time is up" if data is None else ""))
    expect(plain(attempts, int) and attempts > 10,
           f"{doing}, and poll_until says it made {attempts!r} attempts; count every recv() call "
           f"(a busy loop tries thousands of times in {delay} s)")
    expect(calls - 1 <= attempts <= calls, f"poll_until called recv() {calls:,} times but says {attempts:,} "
                                           f"attempts: count each recv() call once")

    with nonblocking_pairs() as [(sock, peer)]:
        got, waited = _timed_call(poll_until, sock, 0.2, sockets=[sock], doing="nobody sent anything, timeout 0.2 s")
        data, attempts = _pair(got, "poll_until")
        expect(data is None, f"nobody sent anything: expected (None, attempts) after the timeout, got {got!r:.60}")
        expect(0.15 <= waited <= 1.5, f"with timeout=0.2, poll_until gave up after {waited:.2f} s: "
                                      f"measure the time with time.monotonic() and stop when it has passed")

    with nonblocking_pairs() as [(sock, peer)]:
        doing = "the peer closed the connection after 0.2 s, without sending anything"
        with sends_at(peer, 0.2, None):
            got, _ = _timed_call(poll_until, sock, 2.0, sockets=[sock], doing=doing)
        data, _ = _pair(got, "poll_until")
        if sock.calls_after_eof:
            raise CheckFailed(f"{doing}: recv() returned b'' and your loop called it again "
                              f"{sock.calls_after_eof:,} times. b'' is not \"nothing yet\" (that is "
                              f"BlockingIOError): it means closed for good. Return it: (b'', attempts)")
        expect(data == b"", f"{doing}; expected (b'', attempts) at once, got {got!r:.60}")
    passed(f"poll_until got the data after {attempt.wall_s:.2f} s and {calls:,} attempts, using {attempt.cpu_s:.2f} s "
           f"of CPU to wait; it gives up after its timeout, and stops when the peer closes")


@check
def first_ready(first_ready):
    """first_ready(socks, timeout) -> (index, data) of the first socket with
    data (b"" from a closed one counts), trying them all in turn; None after
    `timeout` seconds."""
    with nonblocking_pairs(4) as pairs:
        socks = [sock for sock, _ in pairs]
        doing = "socket 2 of 4 got b'hello' after 0.2 s, the others nothing"
        with sends_at(pairs[2][1], 0.2):
            got, took = _timed_call(first_ready, socks, 3.0, sockets=socks, doing=doing)
        expect(got == (2, b"hello") and isinstance(got, tuple),
               f"{doing}: expected (2, b'hello'), got {got!r:.60}"
               + ("; do you try every socket, round and round, until the time is up?" if got is None else ""))
        expect(took < 2.0, f"{doing}, but first_ready returned only after {took:.1f} s")

        pairs[3][1].send(b"three")  # waits in socket 3, while socket 0 stays silent
        doing = "socket 3 of 4 had b'three' waiting, the others nothing"
        got, took = _timed_call(first_ready, socks, 3.0, sockets=socks, doing=doing)
        expect(got == (3, b"three") and isinstance(got, tuple),
               f"{doing}: expected (3, b'three'), got {got!r:.60}; do you try every socket, not only the first?")
        expect(took < 1.0, f"{doing}, but first_ready took {took:.2f} s")

        doing = "no socket had data, timeout 0.2 s"
        got, took = _timed_call(first_ready, socks, 0.2, sockets=socks, doing=doing)
        expect(got is None, f"{doing}: expected None after the timeout, got {got!r:.60}")
        expect(0.15 <= took <= 1.5, f"with timeout=0.2, first_ready gave up after {took:.2f} s")

        pairs[1][1].close()
        doing = "the peer of socket 1 of 4 had closed, the others were silent"
        got, took = _timed_call(first_ready, socks, 2.0, sockets=socks, doing=doing)
        expect(not socks[1].calls_after_eof,
               f"{doing}: recv() on socket 1 returned b'' and your loop called it again "
               f"{socks[1].calls_after_eof:,} times. b'' is not \"nothing yet\": it means closed for good, and "
               f"counts as an answer: return (1, b'')")
        expect(got == (1, b"") and isinstance(got, tuple),
               f"{doing}: expected (1, b'') (b'' from a closed socket counts: it will never send again), "
               f"got {got!r:.60}")
        expect(took < 1.0, f"{doing}, but first_ready took {took:.2f} s")
        for sock in socks:
            _still_nonblocking(sock, "first_ready")
    passed("first_ready finds the one socket of four with data or a closed peer, and gives up after its timeout")
