"""Checks for lesson 03 (select()).

echo_server is served a conversation a one-client-at-a-time loop cannot
follow: the first client speaks and leaves before the others connect, the
last to connect speaks first, one client sends its message in pieces and
another 20 KB at once, one leaves in the middle, and everyone falls silent
for a while (a loop that polls select() with timeout 0 shows up as CPU).

nonblocking_echo_server gets the same conversation, plus a client that sends
1 MiB and reads nothing for a while, through small socket buffers: the reply
no longer fits, and a server that waits in sendall() for that client stops
serving the others. A right answer keeps what send() did not take and waits
for the write list; the check reads the whole 1 MiB back, byte for byte.
"""

import contextlib
import socket
import threading
import time

from . import SPINNING, CheckFailed, StudentCall, WatchedSocket, check, describe, expect, hang_message, passed

REPLY_TIMEOUT = 2.0  # seconds a check client waits for its echo
BIG = 1024 * 1024  # what the slow reader sends before it reads anything
BUFFER = 8192  # the server's send buffer and the slow reader's receive buffer: the reply backs up at once
POLLS = 5000  # times select() may look at one socket in this conversation (a loop that sleeps needs ~100)


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

    def __init__(self, echo_server, n, send_buffer=None):
        self.n = n
        listener = socket.socket()
        if send_buffer:  # accepted sockets inherit it: a big reply does not fit at once
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        self.listener = WatchedSocket(listener)
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


def _returned(talk, name, clients):
    """Once every client has left, the student's server must return: (its share of a CPU
    core, the most times select() looked at one socket), for the busy-loop verdicts."""
    if not talk.attempt.wait(REPLY_TIMEOUT):
        talk.trouble(f"all {clients} clients had come and gone, but {name} did not return within "
                     f"{REPLY_TIMEOUT:g} s")
    if talk.attempt.error is not None:
        talk.trouble(f"after all {clients} clients had left")
    return (talk.attempt.cpu_s / talk.attempt.wall_s,
            max(sock.looked_at for sock in [talk.listener, *talk.listener.accepted]))


def _all_closed(talk, name):
    left_open = sum(sock.fileno() != -1 for sock in talk.listener.accepted)
    expect(not left_open, f"{name} returned, but {left_open} client socket(s) are still open: close "
                          f"a client's socket when recv() returns b''")


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
        share, looks = _returned(talk, "echo_server", 4)
        expect(share < SPINNING and looks < POLLS,
               f"echo_server served every client, but select() looked at one socket {looks:,} times and the loop "
               f"kept a CPU core {share:.0%} busy, also while every client was silent for {idle} s: select() "
               f"with timeout 0 returns at once, so the loop never sleeps. Call select() without a timeout: it "
               f"sleeps until a socket is ready")
        _all_closed(talk, "echo_server")
    passed("echo_server served 4 clients in one thread, in the order they spoke, slept while they were silent, "
           "and returned when all had left")



def _blocked_sending(talk):
    """The server-side socket the student's thread is stuck sending to in blocking mode, if any."""
    return next((sock for sock in talk.listener.accepted
                 if sock.busy in ("send", "sendall") and sock.gettimeout() != 0), None)


def _nonblocking_trouble(talk, headline):
    """Fail with what a non-blocking server typically got wrong, else as echo_server's check does."""
    talk.attempt.wait(0.05)
    if _blocked_sending(talk) is not None:
        talk.attempt.stop([talk.listener])
        raise CheckFailed(f"{headline}: your server was blocked in sendall() to the client that was not "
                          f"reading, whose buffers were full, so nobody else was served. select() said that "
                          f"socket could take *some* bytes, not all of them. Make the client sockets "
                          f"non-blocking, send() what fits, keep the rest, and put the socket in select()'s "
                          f"write list until its rest is sent")
    error = talk.attempt.error
    if not talk.attempt.thread.is_alive() and error is not None and not isinstance(error, NotImplementedError):
        hint = ""
        if isinstance(error, BlockingIOError):
            hint = (": sendall() (or recv()) on a non-blocking socket raises BlockingIOError when it cannot go "
                    "on: call send() once, keep the bytes it did not take, and send them when select() says "
                    "the socket is writable")
        elif isinstance(error, (ValueError, OSError)) and ("-1" in str(error) or getattr(error, "errno", 0) == 9):
            hint = (": a socket you closed is still in a list you give select(). When a client leaves, "
                    "remove its socket from every list and dict (readers, writers, what is left to send)")
        raise CheckFailed(f"{headline}: {describe(error, 'nonblocking_echo_server')}{hint}")
    EchoConversation.trouble(talk, headline)


def _slow_reader(talk, number):
    """Client `number` with a small receive buffer, set before connect()."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, BUFFER)
    sock.settimeout(REPLY_TIMEOUT)
    try:
        sock.connect(talk.listener.getsockname()[:2])
    except OSError as error:
        sock.close()
        _nonblocking_trouble(talk, f"client {number} could not connect ({error})")
    talk.clients[number] = sock
    return sock


@check
def nonblocking_echo_server(echo_server):
    """nonblocking_echo_server(listener, n): echo_server, with a client that
    sends 1 MiB and reads nothing for a while; the others must still be served."""
    message = bytes(range(256)) * (BIG // 256)
    with EchoConversation(echo_server, 3, send_buffer=BUFFER) as talk:
        talk.trouble = lambda headline: _nonblocking_trouble(talk, headline)
        slow = _slow_reader(talk, 1)
        talk.connect(2)
        talk.talk(2, b"hello before the flood")

        def flood():  # client 1 sends 1 MiB and reads nothing meanwhile
            with contextlib.suppress(OSError):
                slow.settimeout(None)
                slow.sendall(message)

        sender = threading.Thread(target=flood, name="labserver-check-sender", daemon=True)
        sender.start()
        try:
            time.sleep(0.3)  # the server reads some, and its reply to client 1 fills every buffer
            talk.talk(2, b"client 1 is not reading: do you still hear me?")
            talk.connect(3)
            talk.talk(3, b"a newcomer during the flood")
            got, slow_deadline = bytearray(), time.monotonic() + 4 * REPLY_TIMEOUT
            slow.settimeout(0.2)
            while len(got) < len(message) and time.monotonic() < slow_deadline:  # now client 1 reads it all
                try:
                    chunk = slow.recv(65536)
                except socket.timeout:
                    continue
                except ConnectionError:
                    break
                if not chunk:
                    break
                got += chunk
        finally:
            if sender.is_alive():
                with contextlib.suppress(OSError):
                    slow.shutdown(socket.SHUT_RDWR)  # wakes a sendall() the server never reads
            sender.join(2)
        if got != message:
            if not talk.attempt.thread.is_alive() or _blocked_sending(talk):
                _nonblocking_trouble(talk, f"client 1 sent 1 MiB and got {len(got):,} bytes back")
            at = next((i for i in range(len(got)) if got[i] != message[i]), len(got))
            raise CheckFailed(f"client 1 sent 1 MiB and got {len(got):,} bytes back, the first wrong or missing "
                              f"one at byte {at:,}. Bytes were lost or reordered: send() returns how many bytes "
                              f"it took; keep the rest, in order, and send it before anything that came later")
        talk.talk(2, b"two again")
        for number in (1, 2, 3):
            talk.leave(number)
        share, looks = _returned(talk, "nonblocking_echo_server", 3)
        expect(share < SPINNING and looks < POLLS,
               f"every client was served, but select() looked at one socket {looks:,} times and your loop kept "
               f"a CPU core {share:.0%} busy: is a socket in the "
               f"write list while you have nothing to send it? A socket with room in its buffer is always "
               f"writable, so select() returns at once. Watch for writing only while something waits to be sent")
        _all_closed(talk, "nonblocking_echo_server")
    passed("nonblocking_echo_server kept serving everyone while one client read nothing, and sent it its "
           "1 MiB back byte for byte, from one thread")
