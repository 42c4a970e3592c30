"""Checks for lesson 03 (select()).

echo_server is served a conversation a one-client-at-a-time loop cannot
follow: the first client speaks and leaves before the others connect, the
last to connect speaks first, one client sends its message in pieces and
another 20 KB at once, one leaves in the middle, and everyone falls silent
for a while (a loop that polls select() with timeout 0 shows up as CPU).
"""

import contextlib
import socket
import threading
import time

from . import SPINNING, CheckFailed, StudentCall, WatchedSocket, check, expect, hang_message, passed, run_student

REPLY_TIMEOUT = 2.0  # seconds a check client waits for its echo
DEADLINE = 4.0  # seconds for one ready_to_read() call
POLLS = 5000  # times select() may look at one socket in this conversation (a loop that sleeps needs ~100)


@contextlib.contextmanager
def socket_pairs(n):
    """n connected pairs (ours, theirs), ours WatchedSockets; all closed on exit."""
    pairs = [socket.socketpair() for _ in range(n)]
    pairs = [(WatchedSocket(ours), theirs) for ours, theirs in pairs]
    try:
        yield pairs
    finally:
        for ours, theirs in pairs:
            ours.close()
            theirs.close()


def indexes(result, socks):
    """The student's answer as sorted indexes into socks (or None if it is not a collection of them)."""
    try:
        found = [next(i for i, sock in enumerate(socks) if sock is item) for item in result]
    except (TypeError, StopIteration):
        return None
    return sorted(found)


def _ready(function, socks, timeout, doing):
    start = time.perf_counter()
    got = run_student(function, socks, timeout, deadline=DEADLINE, sockets=socks, doing=doing)
    return got, time.perf_counter() - start


@check
def ready_to_read(ready_to_read):
    """ready_to_read(socks, timeout) returns the sockets that have data waiting,
    as soon as one has, or an empty list after `timeout` seconds."""
    with socket_pairs(6) as pairs:
        socks = [sock for sock, _ in pairs]
        for i in (1, 4):
            pairs[i][1].send(b"hello")
        got, took = _ready(ready_to_read, socks, 2.0, "data waited in sockets 1 and 4 of 6")
        found = indexes(got, socks)
        expect(not (isinstance(got, tuple) and len(got) == 3 and found is None),
               "you returned all three lists select() gives back; return only the first: ready to read")
        expect(found is not None, f"expected a list of the sockets you were given, got {got!r:.80}")
        expect(found == [1, 4], f"data waits in sockets 1 and 4 of 6: expected those two, got sockets {found}")
        expect(took < 1.0, f"two sockets were ready already, but ready_to_read took {took:.2f} s")
        expect(socks[1].recv_calls == 0 and socks[4].recv_calls == 0,
               "ready_to_read took the data out of the sockets: it should only find the ready sockets "
               "and leave recv() to its caller")
        socks[1].quietly().recv(1024)
        socks[4].quietly().recv(1024)

        got, took = _ready(ready_to_read, socks, 0.2, "no socket had data, timeout 0.2 s")
        expect(indexes(got, socks) == [], f"no socket has data: expected an empty list, got {got!r:.80}")
        expect(took >= 0.15, f"nothing was ready and ready_to_read returned after {took:.2f} s: "
                             "pass the timeout to select() so that it waits")
        expect(took < 1.0, f"with timeout=0.2, ready_to_read returned after {took:.2f} s")

        timer = _later(0.2, pairs[2][1].send, b"late")
        try:
            got, took = _ready(ready_to_read, socks, 3.0, "socket 2 of 6 got data after 0.2 s")
        finally:
            timer.cancel()
            timer.join()
        expect(indexes(got, socks) == [2], f"socket 2 got data after 0.2 s: expected [socket 2], got {got!r:.80}")
        expect(took < 1.5, f"socket 2 was ready after 0.2 s, but ready_to_read returned after {took:.2f} s: "
                           "select() returns as soon as one socket is ready")
    passed("ready_to_read finds exactly the ready sockets, sleeps until one is ready, and honours its timeout")


def _later(delay, function, *args):
    def act():
        with contextlib.suppress(OSError):
            function(*args)

    timer = threading.Timer(delay, act)
    timer.name = "labserver-check-timer"
    timer.start()
    return timer


class EchoConversation:
    """The check's clients of a student's echo_server(listener, n), running in a helper thread."""

    def __init__(self, echo_server, n):
        self.n = n
        self.listener = WatchedSocket(socket.create_server(("127.0.0.1", 0)))
        self.attempt = StudentCall(echo_server, (self.listener, n), "echo_server()")
        self.clients = {}  # number -> socket

    def __enter__(self):
        self.attempt.start()
        return self

    def __exit__(self, *exc_info):
        if self.attempt.thread.is_alive():
            self.attempt.stop([self.listener])
        for sock in self.clients.values():
            sock.close()
        self.listener.close()
        for sock in self.listener.accepted:
            sock.close()

    def trouble(self, headline):
        """Fail, saying what happened to echo_server meanwhile."""
        self.attempt.wait(0.05)
        if not self.attempt.thread.is_alive():
            self.attempt.raise_error("echo_server", f"{headline}: ")
            came = len(self.listener.accepted)
            raise CheckFailed(f"{headline}: echo_server had returned already, after {came} of {self.n} clients "
                              f"had come. Return only once all n have come and gone")
        raise CheckFailed(hang_message(self.attempt, headline, [self.listener]))

    def connect(self, number):
        try:
            self.clients[number] = socket.create_connection(self.listener.getsockname()[:2], timeout=REPLY_TIMEOUT)
        except OSError as error:
            self.trouble(f"client {number} could not connect ({error})")

    def talk(self, number, message, pieces=1):
        """Client `number` sends `message` (in `pieces`, 50 ms apart) and must get it back."""
        sock = self.clients[number]
        said = f"client {number} sent {_short(message)}" + (f" in {pieces} pieces" if pieces > 1 else "")
        if not self.attempt.thread.is_alive():
            self.trouble(said)
        size = -(-len(message) // pieces)
        for i in range(0, len(message), size):
            if i:
                time.sleep(0.05)
            sock.sendall(message[i:i + size])
        got = b""
        try:
            while len(got) < len(message):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                got += chunk
        except socket.timeout:
            pass
        except ConnectionError:
            got += b"<connection reset>"
        if got != message:
            what = f"got back {_short(got)}" if got else "got nothing back"
            self.trouble(f"{said} and {what} within {REPLY_TIMEOUT:g} s")

    def leave(self, number, noticed=False):
        """Client `number` closes; with noticed, wait (0.5 s at most) until the server has closed its side."""
        self.clients.pop(number).close()
        give_up = time.monotonic() + 0.5
        while noticed and time.monotonic() < give_up and self.attempt.thread.is_alive() and \
                any(sock.fileno() != -1 for sock in self.listener.accepted):
            time.sleep(0.01)


def _short(data):
    return repr(data) if len(data) <= 30 else f"{len(data):,} bytes starting {data[:16]!r}"


@check
def echo_server(echo_server):
    """echo_server(listener, n) accepts n clients and sends each one back what
    it sends, all in one thread, until all n have closed; then returns."""
    idle = 0.5
    with EchoConversation(echo_server, 4) as talk:
        talk.connect(1)
        talk.talk(1, b"I am first, alone")  # before the others connect
        talk.leave(1, noticed=True)  # and leaves before they do
        for number in (2, 3, 4):
            talk.connect(number)
        time.sleep(0.05)
        talk.talk(4, b"I am client 4")  # the last to connect speaks first
        talk.talk(3, b"this message comes in three pieces", pieces=3)
        talk.talk(2, bytes(range(97, 123)) * 800)  # 20 KB
        talk.leave(3)  # client 3 leaves in the middle
        talk.talk(2, b"two again")
        time.sleep(idle)  # everyone silent: a loop that sleeps in select() uses no CPU now
        talk.talk(4, b"four again")
        talk.leave(2)
        talk.leave(4)
        if not talk.attempt.wait(REPLY_TIMEOUT):
            talk.trouble(f"all 4 clients had come and gone, but echo_server did not return within "
                         f"{REPLY_TIMEOUT:g} s")
        if talk.attempt.error is not None:
            talk.trouble("after all 4 clients had left")
        share = talk.attempt.cpu_s / talk.attempt.wall_s
        looks = max(sock.looked_at for sock in [talk.listener, *talk.listener.accepted])
        expect(share < SPINNING and looks < POLLS,
               f"echo_server served every client, but select() looked at one socket {looks:,} times and the loop "
               f"kept a CPU core {share:.0%} busy, also while every client was silent for {idle} s: select() "
               f"with timeout 0 returns at once, so the loop never sleeps. Call select() without a timeout: it "
               f"sleeps until a socket is ready")
        left_open = sum(sock.fileno() != -1 for sock in talk.listener.accepted)
        expect(not left_open, f"echo_server returned, but {left_open} client socket(s) are still open: close "
                              f"a client's socket when recv() returns b''")
    passed("echo_server served 4 clients in one thread, in the order they spoke, slept while they were silent, "
           "and returned when all had left")

