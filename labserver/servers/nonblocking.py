"""Lessons 02 to 06: serving connections without ever blocking (every event loop, and the hybrid pool).

    client = Client(sock, addr, self.app, self.timeouts)  # a non-blocking socket, its HTTP state
    ...
    if client.handle(SLICE) == CLOSE:  # in a model: recv() and send() what it can now, never waiting
    ...
    # client.want: READ, WRITE, SLEEP or CLOSE, what to wait for before calling it again

This is serve_blocking() of lesson 01 cut at every point where it would
block: instead of waiting there, handle() returns and says what it would wait
for. Who does the waiting is what the models differ in: a loop that asks
every socket again and again (busywait), one select() call (select), a
selector that calls back (callbacks, coroutines, threadpool).

What those event-driven models share is here too:
- Timers: one heap of every client's next alarm, the end of its /sleep or its
  deadline (idle, request or send), so a loop knows how long it may wait;
- Waker: how stop(), or a worker thread, interrupts a loop waiting in select();
- EventLoopServer: accepting without blocking (and, out of file descriptors,
  without spinning), up to as many clients as the platform lets one loop
  watch (labserver.limits: select()'s 512 sockets on Windows, the open-file
  limit everywhere), expiring deadlines, closing clients.
"""

import heapq
import itertools
import math
import os
import selectors
import socket
import sys
import time
from collections import deque

from ..limits import connection_cap, raise_open_files_limit
from ..protocol import Connection, Delay, FileBody
from .blocking import LINGER, RECV_SIZE, RecvDeadline, close_chunks, peer_name, tune_client_socket
from .server import ACCEPT_PAUSE, Server, log

READ, WRITE, SLEEP, CLOSE = "recv", "send", "sleep", "close"  # what a client waits for
SLICE = 256 * 1024  # bytes sent to one client in a turn, before the others get theirs


class Client:
    """One accepted socket and its HTTP state, for the event-driven models.

    `want` is what it waits for now; `deadline` is when to give up on that
    (for READ and WRITE) and `resume_at` when a /sleep ends (for SLEEP);
    `alarm` is whichever of the two counts now (for the Timers heap)."""

    def __init__(self, sock, addr, app, timeouts):
        sock.setblocking(False)
        tune_client_socket(sock)
        self.sock = sock
        self.conn = Connection(app, peer=peer_name(addr))
        self.timeouts = timeouts
        self.recv_deadline = RecvDeadline(timeouts)
        self.out = deque()  # bytes and FileBody chunks waiting to be sent
        self.sent = 0  # bytes the last send() got out: 0 if the socket was full
        self.lingering = False
        self.want = None
        self.deadline = self.resume_at = self.alarm = 0.0
        self.armed = math.inf  # the time of our entry in the Timers heap that counts
        self.wait_for(READ)

    def handle(self, budget=SLICE):
        """Do everything that can be done right now without blocking, at most
        `budget` bytes sent; return what to wait for before the next call."""
        try:
            if self.lingering:
                want = self.drain()
            else:
                if not self.out:  # the last response is out: read the next request
                    self.recv()
                want = self.send(budget)
                if want == READ and self.conn.closing:
                    self.linger()
                    want = self.drain()
        except OSError:  # reset by the peer, broken pipe...
            want = CLOSE
        return self.wait_for(want)

    def recv(self):
        """Feed the connection what the socket holds (b"": the client closed)."""
        try:
            self.conn.feed(self.sock.recv(RECV_SIZE))
        except BlockingIOError:
            pass  # nothing there after all

    def send(self, budget=SLICE):
        """Send the responses that are ready, at most `budget` bytes. Returns
        READ (all sent), WRITE (the socket is full, or the budget spent) or
        SLEEP (a /sleep request: the rest goes out at resume_at)."""
        self.sent = 0
        while True:
            if not self.out:
                chunks = self.conn.next_response()
                if chunks is None:
                    return READ
                self.out.extend(chunks)
            if isinstance(self.out[0], Delay):
                self.resume_at = time.monotonic() + self.out.popleft().seconds
                return SLEEP
            self.sent += send_some(self.sock, self.out, budget - self.sent)
            if self.out:
                return WRITE

    def wait_for(self, want):
        """Remember what we wait for now, and until when; return it."""
        if self.lingering:
            pass  # its deadline was fixed when lingering began
        elif want == READ:
            self.deadline = self.recv_deadline.at(self.conn, time.monotonic())
        elif want == WRITE and (self.sent or self.want != WRITE):  # counted from the last bytes it took
            self.deadline = time.monotonic() + self.timeouts.send
        self.want = want
        self.alarm = self.deadline if want == READ or want == WRITE else self.resume_at if want == SLEEP else math.inf
        return want

    def linger(self):
        """Close gently (see blocking.linger): send FIN; then drain() until the
        client closes too, for LINGER seconds at most."""
        self.sock.shutdown(socket.SHUT_WR)
        self.lingering = True
        self.deadline = time.monotonic() + LINGER

    def drain(self):
        """Read and discard: READ while the client still sends, CLOSE once it has closed."""
        while True:
            try:
                if not self.sock.recv(RECV_SIZE):
                    return CLOSE
            except BlockingIOError:
                return READ

    def give_up(self):
        """Deadline passed: a 408 if a request was half-way in (best effort), then close."""
        if not self.lingering and not self.out:
            try:
                self.sock.send(b"".join(self.conn.timeout_response()))
            except OSError:
                pass
        self.close()

    def close(self):
        close_chunks(self.out)
        self.sock.close()
        self.want, self.alarm = CLOSE, math.inf


def send_some(sock, chunks, budget):
    """Send from the front of `chunks` (bytes and FileBody) without blocking.

    Returns how many bytes went out; stops at `budget`, when the socket's
    buffer is full (BlockingIOError), or when everything is sent. Sent bytes
    are removed from `chunks`; a finished FileBody is closed.
    """
    total = 0
    while chunks and total < budget:
        chunk = chunks[0]
        try:
            if isinstance(chunk, FileBody):
                sent = send_file_slice(sock, chunk, budget - total)
                if chunk.count == 0:
                    chunks.popleft().close()
            else:
                sent = sock.send(chunk)
                if sent == len(chunk):
                    chunks.popleft()
                else:
                    chunks[0] = chunk[sent:]
        except BlockingIOError:
            break
        total += sent
    return total


def send_file_slice(sock, body, size):
    """Send up to `size` bytes of a FileBody: os.sendfile copies file to
    socket inside the kernel; platforms without it read and send."""
    size = min(size, body.count)
    if hasattr(os, "sendfile") and sys.platform != "win32":
        sent = os.sendfile(sock.fileno(), body.file.fileno(), body.offset, size)
        if sent == 0 and size > 0:
            raise ConnectionError("file shrank while it was being sent")
        body.advance(sent)
        return sent
    body.file.seek(body.offset)
    sent = sock.send(body.file.read(size))
    body.advance(sent)
    return sent


class Timers:
    """Every client's next alarm, soonest first: the end of its /sleep, or
    its deadline. One heap for both, so a loop knows how long it may wait.

    A deadline moves later with every request. Rather than move its entry,
    we leave it: when it comes up, a client whose alarm has moved later is
    put back in at its new time. So a client has one entry that counts (at
    `client.armed`); the others are dropped as they come up."""

    def __init__(self):
        self.heap = []  # (time, n, client): n breaks ties, as clients do not compare
        self.order = itertools.count()
        self.live = 0  # entries that count

    def arm(self, client):
        """Make sure the heap looks at `client` by its alarm."""
        if client.alarm < client.armed:
            self.live += client.armed == math.inf
            client.armed = client.alarm
            heapq.heappush(self.heap, (client.armed, next(self.order), client))

    def cancel(self, client):
        """Forget `client`: it is closed, or a worker thread has it."""
        if client.armed != math.inf:
            client.armed = math.inf
            self.live -= 1
            if len(self.heap) > 2 * self.live + 64:  # mostly dropped entries: rebuild, as asyncio does
                self.heap = [entry for entry in self.heap if entry[0] == entry[2].armed]
                heapq.heapify(self.heap)

    def due(self, now):
        """The clients whose alarm has come, each once."""
        if not self.heap or self.heap[0][0] > now:
            return []  # most turns of a loop: nothing
        due = []
        while self.heap and self.heap[0][0] <= now:
            when, _, client = heapq.heappop(self.heap)
            if when == client.armed:  # else a later entry counts for it
                self.cancel(client)
                if client.alarm <= now:
                    due.append(client)
                else:
                    self.arm(client)  # moved later: look again then
        return due

    def timeout(self, now):
        """Seconds until the first entry comes up; None if there is none."""
        return max(0.0, self.heap[0][0] - now) if self.heap else None


class Waker:
    """A socket that another thread can make readable: how stop(), or a
    worker thread, interrupts an event loop blocked in select().

    A socketpair, not a pipe: Windows' select() takes only sockets. Wakes
    that come faster than the loop turns cost one byte, not one each."""

    def __init__(self):
        self.sock, self._writer = socket.socketpair()  # the loop selects on self.sock
        self.sock.setblocking(False)
        self._pending = False  # a byte is on its way: further wake() calls add nothing

    def wake(self):
        """From any thread: make the loop's next (or current) select() return."""
        if not self._pending:
            self._pending = True
            try:
                self._writer.send(b"x")
            except OSError:
                pass  # closed: the loop has ended anyway

    def drain(self):
        """In the loop, when self.sock is readable."""
        # Drain first, then clear the flag: the other order could swallow the
        # byte of a wake() that set the flag in between, and leave the flag
        # set with nothing left to wake the loop.
        try:
            while self.sock.recv(4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass
        self._pending = False

    def close(self):
        self.sock.close()
        self._writer.close()


class EventLoopServer(Server):
    """The base of the models that serve every client from one loop, their
    serve_forever(). The loop calls accept() when the listener is ready,
    handle(client) when what a client waits for (client.want) has happened,
    and expire() on every turn, for the timers."""

    max_connections = math.inf  # clients served at once; beyond, they wait in the backlog
    burst = math.inf  # clients accepted per turn: all that wait (see CallbackServer.serve_on)
    # Whether the loop waits in select(), which caps it at FD_SETSIZE sockets: the
    # selectors module's loop is select() itself where there is no epoll or kqueue (Windows).
    select_based = selectors.DefaultSelector is selectors.SelectSelector

    def __init__(self, *args, max_connections=None, **options):
        super().__init__(*args, **options)
        if max_connections is not None:
            self.max_connections = max_connections

    def launch(self):
        self.prepare()
        self.spawn(self.serve_forever)

    def prepare(self):
        """What the loop needs before its first turn."""
        self.listener.setblocking(False)
        self.clients = {}  # sock -> Client
        self.timers = Timers()
        self.busy = set()  # clients a worker thread has (threadpool): no timer touches them
        self.waker = Waker()  # interrupt() makes it readable
        self.accept_at = 0.0  # not before then: accept() failed (out of file descriptors)
        self.listening = False  # whether the listener is in the selector (see watch_listener)
        # What this platform lets one loop hold: past it, the loop would die (select()
        # refuses a 513th socket on Windows) or accept() would fail (EMFILE).
        raise_open_files_limit()
        cap, self.cap_reason = connection_cap(self.select_based)
        if cap is not None and cap < self.max_connections:
            self.max_connections = cap
        self.at_cap = 0  # times the loop reached max_connections (new clients then wait in the backlog)
        self.capped = False  # at max_connections now

    def accepting(self):
        """Whether to accept now: below the cap, and not paused."""
        if self.accept_at and time.monotonic() >= self.accept_at:
            self.accept_at = 0.0  # the pause is over
        if len(self.clients) < self.max_connections:
            self.capped = False
            return not self.accept_at
        if not self.capped:  # counted and logged each time the cap is reached
            self.capped = True
            self.at_cap += 1
            log.warning("%d connections, the most this loop may hold (%s): new clients wait in the "
                        "listen backlog", len(self.clients), self.cap_reason or "max_connections")
        return False

    def accept_clients(self):
        """Accept, without blocking, the clients waiting in the backlog; return them."""
        new = []
        while len(new) < self.burst and self.accepting():
            try:
                sock, addr = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                break  # nobody (else) is waiting
            except ConnectionAbortedError:
                continue  # it left before we took it
            except OSError as error:  # out of file descriptors, say: let some close first
                log.warning("accept failed, trying again in %.1f s: %s", ACCEPT_PAUSE, error)
                self.accept_at = time.monotonic() + ACCEPT_PAUSE
                break
            client = Client(sock, addr, self.app, self.timeouts)
            self.clients[sock] = client
            self.timers.arm(client)
            new.append(client)
        return new

    def watch_listener(self):
        """For the models with a selector: register the listener while
        accepting(), unregister it while not (at the cap, or accept() paused),
        as a ready listener left in the selector would make select() return at
        once, turn after turn."""
        if self.accepting() != self.listening:
            self.listening = not self.listening
            if self.listening:
                self.selector.register(self.listener, selectors.EVENT_READ, self.accept)
            else:
                self.selector.unregister(self.listener)

    def expire(self, now):
        """Resume the clients whose /sleep is over; give up on those past their deadline."""
        for client in self.timers.due(now):
            if client in self.busy:
                continue  # armed again when its worker gives it back
            if client.want == SLEEP:
                self.handle(client)
            else:
                self.close(client, give_up=True)  # a 408 if a request was half-way in

    def timeout(self):
        """Seconds the loop may wait for sockets: until the first alarm, or the
        end of a pause in accepting; None: for as long as it takes."""
        now = time.monotonic()
        timeout = self.timers.timeout(now)
        if self.accept_at > now:
            timeout = min(self.accept_at - now, math.inf if timeout is None else timeout)
        return timeout

    def close(self, client, give_up=False):
        del self.clients[client.sock]
        self.timers.cancel(client)
        if give_up:
            client.give_up()
        else:
            client.close()

    def interrupt(self):
        self.waker.wake()

    def cleanup(self):
        for client in list(self.clients.values()):
            self.close(client)
        self.waker.close()
