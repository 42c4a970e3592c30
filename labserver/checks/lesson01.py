"""Checks for lesson 01 (blocking recv()).

recv_exactly is run against peers that send one byte at a time, send two
messages in one go, close early, and send 256 KiB faster than it is read.

serve_echo, the student's iterative server written from socket() up, gets
real clients in a row: one that speaks in two pieces with a pause, one that
connects and speaks while the first is still being served (it waits in the
listen backlog), one that leaves without a word. Each client waits at most
WAIT seconds for its echo and for the server to close its connection, so a
forgotten close(), a loop that ignores b"" and a server that serves one
client and stops are each named in the failure, with where to look.
"""

import contextlib
import socket
import threading
import time

from . import (SPINNING, Abandoned, CheckFailed, StudentCall, check, dribbling_peer, expect, hang_message, passed,
               plain, raise_in, run_student, stuck_line, thread_cpu, watched_pair)

DEADLINE = 5.0  # seconds for one recv_exactly() call; the slowest peer here needs 0.3 s


def _got(got, n, what):
    expect(plain(got, bytes, bytearray), f"{what}: recv_exactly should return bytes, it returned "
                                         f"{type(got).__name__} {got!r:.60}")
    return bytes(got)


def _short(data):
    return repr(data) if len(data) <= 40 else f"{len(data)} bytes starting {data[:24]!r}"


@check
def recv_exactly(recv_exactly):
    """recv_exactly(sock, n) must return exactly n bytes, however they arrive,
    take no byte more, and raise ConnectionError if the peer closes first."""
    message = b"GET / HTTP/1.1\r\nHost: lab\r\n\r\n"
    doing = f"the peer sent {len(message)} bytes, one every 5 ms"
    with dribbling_peer(message) as sock:
        got = _got(run_student(recv_exactly, sock, len(message), deadline=DEADLINE, sockets=[sock],
                               doing=doing), len(message), doing)
    expect(got == message, f"{doing} and you asked for all {len(message)}; expected them all back, "
                           f"got {len(got)}: {_short(got)}. recv() returns what has arrived so far: call it again "
                           f"until you have n bytes")

    first, second = b"first message!", b"and the second one"
    doing = (f"the peer sent 5 bytes of a {len(first)}-byte message, then the other {len(first) - 5} together "
             f"with the next message ({len(second)} bytes)")
    sock, peer = watched_pair()
    with sock, peer:
        peer.sendall(first[:5])
        later = threading.Timer(0.05, _send_quietly, [peer, first[5:] + second])
        later.start()
        try:
            got = _got(run_student(recv_exactly, sock, len(first), deadline=DEADLINE, sockets=[sock], doing=doing),
                       len(first), doing)
        finally:
            later.join()
        expect(len(got) == len(first), f"{doing}; asked for {len(first)}, recv_exactly returned {len(got)} bytes: "
                                       f"{_short(got)}. Never return more than n: ask recv() for at most the "
                                       f"bytes still missing (n - len(data))")
        expect(got == first, f"{doing}; asked for {len(first)}, got {_short(got)}, expected {first!r}")
        peer.close()
        try:
            rest = _got(run_student(recv_exactly, sock, len(second), deadline=DEADLINE, sockets=[sock],
                                    doing=doing + ", then closed"), len(second), doing)
        except ConnectionError:
            raise CheckFailed(f"{doing}. The first call returned the first message; the second call raised "
                              f"ConnectionError, but the second message was there: did the first call take "
                              f"bytes it did not return?") from None
        expect(rest == second, f"{doing}: the second call should return {second!r}, got {_short(rest)}. "
                               f"Did the first call take bytes it did not return?")

    doing = "the peer sent 10 bytes and closed the connection"
    with dribbling_peer(b"only 10 b.", close_after=True) as sock:
        try:
            got = run_student(recv_exactly, sock, 20, deadline=DEADLINE, sockets=[sock], doing=doing)
        except ConnectionError:
            got = None
    expect(got is None, f"{doing}; you asked for 20 and got {got!r:.60} back, expected ConnectionError: "
                        f"recv() returning b'' means the peer closed and nothing more will come")

    size = 256 * 1024
    big = bytes(range(256)) * (size // 256)
    doing = f"the peer sent {size // 1024} KiB in large pieces"
    sock, peer = watched_pair()
    sender = threading.Thread(target=_send_quietly, args=(peer, big), name="labserver-check-sender", daemon=True)
    with sock, peer:
        sender.start()
        try:
            got = _got(run_student(recv_exactly, sock, size, deadline=DEADLINE, sockets=[sock], doing=doing),
                       size, doing)
        finally:
            peer.shutdown(socket.SHUT_RDWR)
            sender.join()
    expect(len(got) == size, f"{doing}; asked for all {size:,} bytes, got {len(got):,}: keep calling recv() "
                             f"until you have n bytes")
    if got != big:
        at = next(i for i in range(size) if got[i] != big[i])
        raise CheckFailed(f"{doing}; got {size:,} bytes, but not the ones sent (byte {at:,} differs): "
                          f"are the pieces joined in the order they came?")
    passed("recv_exactly returns whole messages from one-byte pieces and from big ones, takes no byte more "
           "than asked, and notices a closed peer")


def _send_quietly(sock, data):
    try:
        sock.sendall(data)
    except OSError:
        pass  # the check closed the pair: the answer failed, and says so


# Exercise 2: the iterative server, from socket() up.

WAIT = 2.0  # seconds a client waits for its echo, for its connection to end, and for serve_echo to return


class _Poke:
    """Stands for the student's listener in StudentCall.stop(): a connection
    wakes an accept() that nothing else would wake. The exception that ends
    the call is asked for first, so that the woken accept() raises it rather
    than serve the connection and block in the next accept()."""

    def __init__(self):
        self.address = None
        self.attempt = None

    def abandon(self):
        if self.attempt is not None and self.attempt.returned_at is None:
            raise_in(self.attempt.thread, Abandoned)
        if self.address is not None:
            with contextlib.suppress(OSError):
                socket.create_connection(self.address, timeout=0.5).close()

    def diagnosis(self):
        return None


class EchoRun:
    """serve_echo(n, ready) in a helper thread, and the check's clients of it."""

    def __init__(self, serve_echo, n):
        self.n = n
        self.given = threading.Event()
        self.listener = None
        self.poke = _Poke()
        self.clients = []
        self.attempt = self.poke.attempt = StudentCall(serve_echo, (n, self._ready), "serve_echo()")

    def _ready(self, listener):
        self.listener = listener
        self.given.set()

    def __enter__(self):
        self.attempt.start()
        return self

    def __exit__(self, *exc_info):
        for sock in self.clients:  # the student's recv() returns b"", a send() fails
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        if self.attempt.thread.is_alive():
            self.attempt.stop([self.poke])

    def trouble(self, headline, if_blocked=""):
        """Fail with `headline`, then what serve_echo was doing: returned (how), spinning, or blocked where."""
        self.attempt.wait(0.05)
        if not self.attempt.thread.is_alive():
            self.attempt.raise_error("serve_echo", f"{headline}: ")
            raise CheckFailed(f"{headline}: serve_echo had returned already. A server accepts clients in a loop, "
                              f"one after another: serve all n of them before you return")
        share = self.recent_cpu_share()
        if share is not None and share > SPINNING / 5:  # blocked in a call, it would use none at all
            where = stuck_line(self.attempt.thread)
            ended = self.attempt.stop([self.poke])
            raise CheckFailed(f"{headline}. Meanwhile serve_echo never waited: it ran round a loop ({share:.0%} of a "
                              f"CPU core). When a client closes, recv() returns b'' at once, every time you call it: "
                              f"b'' means that client is gone for good. Leave its loop and close its socket."
                              + (f" It was at {where}." if where else "")
                              + ("" if ended else " It is still running in the background: restart the kernel "
                                                  "(Kernel > Restart) before you try again."))
        raise CheckFailed(hang_message(self.attempt, headline + if_blocked, [self.poke]))

    def recent_cpu_share(self, window=0.3):
        """CPU seconds per second serve_echo uses now (a loop that ignores b"" spins), or None if unknown."""
        before = thread_cpu(self.attempt.thread)
        time.sleep(window)
        after = thread_cpu(self.attempt.thread)
        if before is None or after is None:
            return self.attempt.cpu_share()  # since the call began: where the OS does not tell per thread
        return (after - before) / window

    def listening(self):
        """The socket serve_echo handed to ready(), once it is listening on the loopback address."""
        end = time.monotonic() + WAIT
        while not self.given.wait(0.05) and self.attempt.thread.is_alive() and time.monotonic() < end:
            pass  # until ready() is called, serve_echo ends, or the time is up
        if not self.given.is_set():
            if not self.attempt.thread.is_alive():
                self.attempt.raise_error("serve_echo", "before it called ready(listener), ")
                raise CheckFailed("serve_echo returned without calling ready(listener): call it once your socket "
                                  "listens, before the first accept()")
            self.trouble(f"serve_echo did not call ready(listener) within {WAIT:g} s: call it right after listen(), "
                         f"before the first accept() (which blocks until a client comes)")
        listener = self.listener
        expect(isinstance(listener, socket.socket),
               f"ready() should be given the listening socket itself, it got {type(listener).__name__} "
               f"{listener!r:.40}")
        expect(listener.type == socket.SOCK_STREAM and listener.family in (socket.AF_INET, socket.AF_INET6),
               "the socket given to ready() is not a TCP socket: socket.socket(socket.AF_INET, socket.SOCK_STREAM)")
        try:
            host, port = listener.getsockname()[:2]
        except OSError:
            raise CheckFailed("the socket given to ready() is closed already: keep it open while you serve") from None
        expect(port != 0, "the socket given to ready() is not bound yet: bind(('127.0.0.1', 0)), then listen(), "
                          "then ready(listener)")
        self.poke.address = ("127.0.0.1" if listener.family == socket.AF_INET else "::1", port)
        expect(host in ("127.0.0.1", "::1"),
               f"your server listens on {host or 'every address'} ({'every network interface' if host in ('0.0.0.0', '::', '') else 'an address other machines can reach'}): "
               f"anyone who can reach this machine (the café's Wi-Fi, the campus network) can connect to it. "
               f"Bind to ('127.0.0.1', 0): this machine only, and any free port")
        return listener

    def connect(self, number):
        try:
            sock = socket.create_connection(self.poke.address, timeout=WAIT)
        except OSError as error:
            self.attempt.wait(0.05)
            if not self.attempt.thread.is_alive() and number > 1:
                self.trouble(f"client {number} could not connect ({error.strerror or error})")
            raise CheckFailed(f"client {number} could not connect to {self.poke.address[0]} port "
                              f"{self.poke.address[1]} ({error.strerror or error}): is the socket listening "
                              f"(listen()) before you call ready(listener)?") from None
        self.clients.append(sock)
        return sock


def _read(sock, size, wait=WAIT):
    """Up to `size` bytes from sock within `wait` s: (data, how it ended: 'all', 'closed' or 'silent')."""
    data, end = b"", time.monotonic() + wait
    while len(data) < size:
        left = end - time.monotonic()
        if left <= 0:
            return data, "silent"
        sock.settimeout(left)
        try:
            chunk = sock.recv(size - len(data))
        except TimeoutError:
            return data, "silent"
        except OSError:
            return data, "closed"
        if not chunk:
            return data, "closed"
        data += chunk
    return data, "all"


def _closed(sock, wait=WAIT):
    """True if the server closes sock within `wait` s (recv() returns b"" or fails)."""
    sock.settimeout(wait)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False
    except OSError:
        return True


def _ends(run, sock, number, what):
    """Client `number` has said all it will (SHUT_WR): the server must close its connection."""
    sock.shutdown(socket.SHUT_WR)  # recv() on the server's side returns b"" now
    if not _closed(sock):
        run.trouble(f"client {number} {what} and closed its side of the connection, but serve_echo did not close "
                    f"the connection within {WAIT:g} s",
                    ". recv() returned b'' to tell you the client had gone: close that client's socket then "
                    "(`with client:` or client.close()), or the client never learns the conversation is over and "
                    "the server runs out of file descriptors")


@check
def serve_echo(serve_echo):
    """serve_echo(n, ready): a TCP server from socket() up, on 127.0.0.1 and any
    free port; ready(listener) once it listens; then n clients one after
    another, each sent back all it sends, until it closes; then return."""
    with EchoRun(serve_echo, 3) as run:
        run.listening()
        first = run.connect(1)
        first.sendall(b"hello, ")
        time.sleep(0.2)  # the rest comes later: one recv() gets only "hello, "
        first.sendall(b"is anybody there?")
        second = run.connect(2)  # while client 1 is being served: it waits in the backlog
        second.sendall(b"second in line")
        said = b"hello, is anybody there?"
        got, how = _read(first, len(said))
        if got != said:
            if how == "closed":
                raise CheckFailed(f"client 1 sent b'hello, ' then, 0.2 s later, b'is anybody there?'; it got back "
                                  f"{got!r} and then the connection was closed. One recv() returns what has arrived "
                                  f"so far, not the whole message: echo in a loop until recv() returns b''")
            run.trouble(f"client 1 sent b'hello, ' then, 0.2 s later, b'is anybody there?', and got back only "
                        f"{got!r} within {WAIT:g} s: echo in a loop, recv() then sendall(), until recv() returns b''")
        _ends(run, first, 1, "had its echo")

        got, how = _read(second, len(b"second in line"))
        if got != b"second in line":
            run.trouble(f"client 2 connected while client 1 was being served and sent b'second in line'; client 1 "
                        f"has left, but client 2 got back {got!r} within {WAIT:g} s")
        big = bytes(range(97, 123)) * 800  # 20 KB: more than one recv() of a few KB takes
        second.sendall(big)
        got, how = _read(second, len(big))
        if got != big and how == "closed" and run.attempt.thread.is_alive():
            raise CheckFailed(f"client 2 sent {len(big):,} bytes, got {len(got):,} back, and then the connection was "
                              f"closed. One recv() returns what has arrived so far, not the whole message: echo in "
                              f"a loop until recv() returns b''")
        if got != big:
            run.trouble(f"client 2 sent {len(big):,} bytes and got {len(got):,} back within {WAIT:g} s"
                        + (" and then the connection was closed" if how == "closed" else "")
                        + ": recv() again and sendall() each piece, until recv() returns b''")
        _ends(run, second, 2, f"had its {len(big):,} bytes back")

        third = run.connect(3)
        _ends(run, third, 3, "connected without sending a byte")
        if not run.attempt.wait(WAIT):
            run.trouble(f"all 3 clients had come and gone, but serve_echo(3, ready) did not return within {WAIT:g} s: "
                        f"serve n clients, then close the listening socket and return")
        run.attempt.raise_error("serve_echo", "after all 3 clients had left, ")
        expect(run.listener.fileno() == -1,
               "serve_echo returned but left its listening socket open: close it when you are done "
               "(`with socket.socket(...) as listener:` does it for you)")
    passed("serve_echo listens on 127.0.0.1, serves 3 clients one after another (the second waited in the backlog), "
           "echoes messages in pieces and 20 KB, closes each connection and then its listener")
