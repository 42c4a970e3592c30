"""The load generator's clients: many connections, one thread, one event loop.

Two ways to make load (rate=None or a number):
* closed loop (the default, as wrk): each client sends a request, waits for
  the whole response, sends the next. The server sets the pace.
* open loop (rate=R, as wrk2): requests are due at a fixed total rate R,
  spread evenly over the connections; a connection sends each request when
  it is due, or as soon as its previous response is in if that is later.
  Each latency counts from when the request was due, not from when it went
  out: a server that falls behind cannot hide the queue it causes.

Coordinated omission, and why both modes count the waiting: a closed-loop
client that gets no answer sends nothing more, so a server that starves
most of its clients is measured only on the few it serves (wrk's blind
spot: the iterative server at 8 clients looks like 50 ms when 7 of them
wait for the whole run). So at the end of a run every request still
unanswered (sent, or due, or on a connection still being opened) counts
with the time it has waited so far, and so does a request given up after
`timeout`: the percentiles include them, and `unanswered` says how many.

All the clients of one process share one event loop, like a
selectors-based server turned around. Why not something simpler:

* `requests` spends ~1 ms of Python per request: on this machine it tops out
  near 1.3k req/s, 1 % of what the box can serve. It would measure itself.
* A thread per client costs a stack and a context switch per response, and
  1000 threads fight over the GIL; one loop waits for all sockets at once.
* The hot path does as little as possible: requests are bytes encoded once
  (see workload.py); a 2xx head with a Content-Length that arrives whole is
  read in place, and one identical to the previous head is recognised by a
  single comparison; body bytes are received into one reused buffer and
  only counted, never copied or decoded. Anything else (a head split over
  two recvs, chunked or close-delimited bodies, errors) goes through the
  ResponseReader of labserver.protocol, the client side of the HTTP core.
* The loop waits with epoll itself on Linux (class Epoll), not through the
  selectors module, whose per-event Python layer cost as much as our own
  parsing; macOS and Windows use selectors (class Selector). Every cycle of
  CPU spent here is taken from the server when both share a small machine:
  against a 2-process server on 2 cores this took labserver from 0.75x to
  0.86x of wrk's req/s (22 -> 19 us of generator CPU per request).

Timing rules: every connection is open before the clock starts (otherwise
the first second measures connect() and accept(), not serving); a warm-up
runs before it too; latencies go from sending a request (for a new
connection per request, from connect(); in the open loop, from when it was
due) to its last byte. Progress is counted in body bytes as they arrive, so
a download still under way when the clock stops counts for what it got.

Errors are counted by kind, not raised: a server that refuses, resets or
stalls is a result. refused: connect() failed (refused, or no local port
left); reset: the connection was reset
or closed before the response was complete; timeout: nothing arrived for
`timeout` seconds; bad: not HTTP, or a status of 400 or more.
"""

import errno
import heapq
import math
import select
import selectors
import socket
import time
from array import array

from ..limits import out_of_files
from ..protocol.reader import IncompleteResponse, ResponseError, ResponseReader
from .metrics import ERROR_KINDS, histogram

TICK = 0.1  # seconds between housekeeping rounds (timeouts, reconnects, samples)
RECV_SIZE = 256 * 1024  # one reused receive buffer per process
# Open loop: a request sent this much after it was due on an idle connection
# was sent late; a poll() that returns this much after its timeout, stalled
# (this process was kept from running: another busy process, or another
# thread holding the GIL). Either way the generator, not the server, was late.
LATE = 0.010
# connect_ex() on a non-blocking socket: "under way" (Linux, macOS; Windows).
# Anything else, EAGAIN included (Linux: no local port left), is a failure.
IN_PROGRESS = {errno.EINPROGRESS, getattr(errno, "WSAEWOULDBLOCK", errno.EINPROGRESS)}

# What a client waits for (the selectors module's names; Epoll translates).
READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE
# What a client is doing.
DOWN, CONNECTING, BUSY, CLOSING = "down", "connecting", "busy", "closing"
# How it is reading a response: HEAD and BODY are the fast path (a whole
# 2xx head with a Content-Length in one recv, then body bytes only counted);
# SLOW: anything else, through labserver.protocol's ResponseReader.
HEAD, BODY, SLOW = "head", "body", "slow"


class Client:
    """One simulated user: a socket (replaced on reconnect) and its counters."""

    __slots__ = ("sock", "state", "mode", "reader", "need", "ok", "close_after", "body_bytes", "pending",
                 "started", "sent_at", "waiting", "due", "last_byte", "max_gap", "turn", "retry_at",
                 "requests", "bytes")

    def __init__(self, turn):
        self.sock = None
        self.state = DOWN
        self.turn = turn  # position in the workload's request sequence
        self.retry_at = 0.0
        self.started = 0.0  # when the current request began (its latency's origin)
        self.sent_at = 0.0  # when it went out (its timeout's origin)
        self.waiting = False  # a request is out and not answered yet
        self.due = math.inf  # open loop: when the next request is due
        self.reset_response()
        self.reset_counters(0.0)

    def reset_response(self):
        self.mode = HEAD
        self.reader = None  # a ResponseReader, in mode SLOW
        self.need = 0  # body bytes still to come (mode BODY)
        self.ok = True
        self.close_after = False
        self.body_bytes = 0
        self.pending = b""  # request bytes send() has not taken yet

    def reset_counters(self, now):
        self.requests = 0
        self.bytes = -self.partial()  # the part of a response that arrived before the clock started
        self.last_byte = now
        self.max_gap = 0.0

    def partial(self):
        """Body bytes received so far of the response being read."""
        if self.mode is BODY:
            return self.body_bytes - self.need
        if self.mode is SLOW and self.reader.current is not None:
            return self.reader.current.body_length
        return 0  # (body_bytes still holds the previous response's length)


class Epoll:
    """Linux: select.epoll itself, and a plain dict from fd to client.

    selectors.DefaultSelector is epoll on Linux too, but each select() runs
    Python code per event (a SelectorKey lookup, a new mask, a list of
    pairs). On a loaded machine a batch is often a single response, so that
    per-call layer mattered as much as our own parsing. Here the loop calls
    epoll.poll() (C) directly and does one dict lookup per event."""

    READABLE = select.EPOLLIN | select.EPOLLERR | select.EPOLLHUP  # recv() reports errors and hang-ups
    MASKS = {READ: select.EPOLLIN, WRITE: select.EPOLLOUT, READ | WRITE: select.EPOLLIN | select.EPOLLOUT}

    def __init__(self):
        self.epoll = select.epoll()
        self.poll = self.epoll.poll  # poll(timeout) -> [(fd, mask)]: each fd at most once
        self.clients = {}  # fd -> client

    def watch(self, client, sock, events):
        fd = sock.fileno()
        self.epoll.register(fd, self.MASKS[events])
        self.clients[fd] = client

    def change(self, client, events):
        self.epoll.modify(client.sock.fileno(), self.MASKS[events])

    def forget(self, sock):
        fd = sock.fileno()
        self.epoll.unregister(fd)
        del self.clients[fd]

    def close(self):
        self.epoll.close()


class Selector:
    """Anywhere else (macOS: kqueue, Windows: select): the selectors module,
    behind the same poll() and fd -> client dict as Epoll."""

    READABLE = READ  # selectors already reports errors and hang-ups as readable

    def __init__(self):
        self.selector = selectors.DefaultSelector()
        self.clients = {}  # fd -> client

    def watch(self, client, sock, events):
        self.selector.register(sock, events)
        self.clients[sock.fileno()] = client

    def change(self, client, events):
        self.selector.modify(client.sock, events)

    def forget(self, sock):
        self.selector.unregister(sock)
        del self.clients[sock.fileno()]

    def poll(self, timeout):
        """[(fd, mask)], each fd at most once, as from epoll: kqueue reports
        reading and writing as two events, merged here."""
        if not self.clients:  # Windows' select() refuses three empty lists: only time can pass
            time.sleep(max(0.0, timeout))
            return []
        ready = {}
        for key, mask in self.selector.select(timeout):
            ready[key.fd] = ready.get(key.fd, 0) | mask
        return list(ready.items())

    def close(self):
        self.selector.close()


class Engine:
    """The clients of one process. connect_all(), then run(), then close().

    portable=True waits with the selectors module even where epoll exists
    (the tests use it: it is the path macOS and Windows always take)."""

    def __init__(self, family, address, requests, sequence, clients, keep_alive=True,
                 timeout=10.0, first_index=0, cpu_clock=time.thread_time, portable=False,
                 rate=None, all_clients=None):
        self.family = family
        self.address = address
        self.requests = requests  # pre-encoded request bytes, one per path
        self.sequence = sequence  # which request each turn sends (a weighted mix)
        self.one_request = requests[0] if len(sequence) == 1 else None  # no mix: no lookups
        self.keep_alive = keep_alive
        self.timeout = timeout
        self.cpu_clock = cpu_clock
        if hasattr(select, "epoll") and not portable:
            self.waiter = Epoll()
        else:
            self.waiter = Selector()
        self.scratch = bytearray(RECV_SIZE)
        self.view = memoryview(self.scratch)
        self.known_head, self.known_length = None, 0  # see whole_head()
        stride = max(1, len(sequence) // max(1, clients))  # spread clients over a mix
        self.clients = [Client((first_index + i) * stride) for i in range(clients)]
        self.first_index = first_index
        # Open loop: `rate` requests/s in total over `all_clients` connections
        # (in every process), so each connection sends one per `interval`.
        self.rate = rate
        self.interval = (all_clients or clients) / rate if rate else None
        self.schedule = []  # open loop: heap of (due, n, client) for idle connections
        self.order = 0  # breaks ties in the heap
        self.open = 0  # connections established right now
        self.reset_counters(time.perf_counter())

    def reset_counters(self, now):
        """Start the clock: forget everything counted so far (the warm-up)."""
        self.total = 0
        self.quota = math.inf
        self.latencies = array("d")  # seconds; a C array: appending costs ~50 ns, 8 bytes each
        self.waits = array("d")  # seconds waited by requests that got no answer (timed out; see report())
        self.wire_bytes = 0
        self.sent_bytes = 0
        self.sent = 0  # requests sent
        self.late = 0  # requests the generator itself sent LATE or more after they were due (open loop)
        self.stalls = 0  # polls that returned LATE or more after their timeout
        self.polls = 0
        self.stalled = 0.0  # seconds this process was kept from running (stalls beyond LATE, added up)
        self.errors = dict.fromkeys(ERROR_KINDS, 0)
        self.open_max = self.open
        self.open_samples = []
        for client in self.clients:
            client.reset_counters(now)

    # Connections.

    def connect_all(self, timeout):
        """Open every connection and wait (up to `timeout`) until each one is
        established or has failed, without sending anything yet."""
        now = time.perf_counter()
        for client in self.clients:
            self.connect(client, now, send=False)
        deadline = now + timeout
        while any(c.state == CONNECTING for c in self.clients) and time.perf_counter() < deadline:
            for fd, _ in self.waiter.poll(TICK):
                self.on_connect(self.waiter.clients[fd], time.perf_counter(), send=False)
        return sum(c.state == BUSY for c in self.clients)

    def connect(self, client, now, send=True):
        try:
            sock = socket.socket(self.family, socket.SOCK_STREAM)
        except OSError as error:
            if not out_of_files(error):
                raise
            # No descriptor left in this process (macOS: 256 by default): a
            # counted error, and a retry a round later, not a crash or a spin.
            self.errors["files"] += 1
            client.retry_at = now + TICK
            return
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # requests go out at once
        client.sock, client.state, client.started, client.sent_at = sock, CONNECTING, now, now
        client.reset_response()
        self.waiter.watch(client, sock, WRITE)
        code = sock.connect_ex(self.address)
        if code == 0:
            self.on_connect(client, now, send)
        elif code not in IN_PROGRESS:
            self.fail(client, "refused", now)

    def on_connect(self, client, now, send=True):
        code = client.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            kind = "timeout" if code == errno.ETIMEDOUT else "refused"
            return self.fail(client, kind, now)
        try:
            client.sock.getpeername()
        except OSError:
            return  # not connected yet: a stale readiness event
        self.waiter.change(client, READ)
        client.state = BUSY
        self.open += 1
        if self.open > self.open_max:
            self.open_max = self.open
        if send:
            self.free(client, now)

    def drop(self, client):
        """Close a client's socket (if any); it reconnects later."""
        if client.sock is not None:
            if client.state in (BUSY, CLOSING):
                self.open -= 1
            self.waiter.forget(client.sock)
            client.sock.close()
        client.sock, client.state = None, DOWN

    def fail(self, client, kind, now):
        self.errors[kind] += 1
        if kind == "timeout" and client.waiting:
            self.waits.append(now - client.started)  # given up on: it waited this long, unanswered
        if client.ok:
            client.bytes += client.partial()  # what arrived before the failure still arrived
        client.reset_response()
        client.waiting = False
        self.drop(client)
        # A refused connect retries at the next tick, not in a tight loop;
        # anything else reconnects at once, as a browser would.
        client.retry_at = now + TICK if kind == "refused" else now

    # Requests and responses.

    def free(self, client, now):
        """A connection is free to send (just connected, or its response is in)."""
        if self.rate is None:
            # A new connection per request: the latency counts from connect().
            return self.send_next(client, now, client.started if not self.keep_alive else now)
        if client.due <= now:  # due already: it waited for the connection, and that counts
            return self.send_next(client, now, client.due)
        self.wait_until_due(client)

    def wait_until_due(self, client):
        self.order += 1
        heapq.heappush(self.schedule, (client.due, self.order, client))

    def send_due(self, now):
        """Open loop: send every request whose time has come on an idle connection."""
        schedule = self.schedule
        while schedule and schedule[0][0] <= now:
            due, _, client = heapq.heappop(schedule)
            if due != client.due or client.waiting:
                continue  # stale: the client reconnected and was scheduled again meanwhile
            if client.state is DOWN:  # a new connection per request: connect when it is due
                self.connect(client, now)
                client.started = due
                continue
            if client.state is not BUSY:
                continue  # still connecting or closing: it sends when it is free
            if now - due >= LATE:
                self.late += 1  # the connection was free: only the generator itself was slow
            self.send_next(client, now, due)

    def send_next(self, client, now, started):
        if self.one_request is not None:
            request = self.one_request
        else:
            request = self.requests[self.sequence[client.turn % len(self.sequence)]]
            client.turn += 1
        client.started, client.sent_at, client.waiting = started, now, True
        if client.due <= now:
            client.due += self.interval  # the next one's turn (open loop; inf otherwise)
        self.sent += 1
        if self.rate is not None:
            client.last_byte = now  # silence counts from the request, not from an idle pause
        try:
            sent = client.sock.send(request)
        except OSError as error:
            return self.fail(client, error_kind(error), now)
        self.sent_bytes += sent
        if sent < len(request):  # rare: the socket's buffer is full
            client.pending = request[sent:]
            self.waiter.change(client, READ | WRITE)

    def on_writable(self, client, now):
        try:
            sent = client.sock.send(client.pending)
        except OSError as error:
            return self.fail(client, error_kind(error), now)
        self.sent_bytes += sent
        client.pending = client.pending[sent:]
        if not client.pending:
            self.waiter.change(client, READ)

    def on_readable(self, client, now):
        try:
            n = client.sock.recv_into(self.scratch)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as error:
            return self.fail(client, error_kind(error), now)
        if n == 0:
            return self.on_eof(client, now)
        gap = now - client.last_byte
        if gap > client.max_gap:
            client.max_gap = gap
        client.last_byte = now
        self.wire_bytes += n
        if client.mode is BODY:  # the fast path: body bytes, only counted
            if n < client.need:
                client.need -= n
                return
            extra, client.need = n - client.need, 0
            self.complete(client, now)
            if extra:  # bytes after the response (a server's mistake): the slow path judges them
                self.read_slowly(client, self.view[n - extra:n], now)
            return
        if client.mode is HEAD and self.whole_head(client, n, now):
            return
        self.read_slowly(client, self.view[:n], now)

    def whole_head(self, client, n, now):
        """The common case, read in place without copying: a 2xx head with a
        Content-Length, all in this recv. False: let parse() do it slowly.

        A server sends the same head again and again (until its Date changes,
        once a second), so the last such head is kept: one comparison then
        replaces the search for its end and its Content-Length."""
        data = self.scratch
        # Only the n bytes this recv() returned: beyond them lie an older response's.
        if self.known_head is not None and data.startswith(self.known_head, 0, n):
            length, body = self.known_length, n - len(self.known_head)
        else:
            end = data.find(b"\r\n\r\n", 0, n)
            if end < 0 or not data.startswith(b"HTTP/1.1 2"):
                return False
            if data.find(b"lose", 0, end) >= 0:
                return False  # "Connection: close" (or "Close") somewhere: the slow path
            # (Transfer-Encoding: chunked comes without Content-Length, so it fails below.)
            start = data.find(b"\r\nContent-Length: ", 0, end)
            if start < 0:
                return False
            start += 18
            digits = data[start:data.find(b"\r\n", start, end + 2)]
            if not digits.isdigit():
                return False
            length, body = int(digits), n - end - 4
            self.known_head, self.known_length = bytes(data[:end + 4]), length
        if body > length:
            return False  # more than one response: rare, and parse() handles it
        client.body_bytes = length
        if body == length:
            self.complete(client, now)
        else:
            client.mode, client.need = BODY, length - body
        return True

    def read_slowly(self, client, data, now):
        """Everything whole_head() does not take in one look (a head split
        over recvs, chunked or close-delimited bodies, 1xx, errors, bytes
        that are not HTTP) goes through labserver.protocol's ResponseReader,
        the reader the grader and the tests use, until it holds nothing."""
        if client.mode is not SLOW:
            client.mode, client.reader = SLOW, ResponseReader(on_body=count_only)
        reader = client.reader
        try:
            reader.feed(bytes(data))
            while client.mode is SLOW and (response := reader.next_response()) is not None:
                client.ok = response.status < 400
                client.close_after = not response.keep_alive
                client.body_bytes = response.body_length
                if not reader.has_partial_response:
                    client.mode, client.reader = HEAD, None  # back to the fast path
                self.complete(client, now)
        except IncompleteResponse:  # the server closed in the middle of a response
            self.fail(client, "reset", now)
        except ResponseError:  # not HTTP, or framed so that nothing after it can be trusted
            self.fail(client, "bad", now)

    def on_eof(self, client, now):
        if client.mode is SLOW:  # a body that runs until the close ends here, or was cut short
            self.read_slowly(client, b"", now)
            if client.state is not BUSY:
                return  # failed: counted as reset
        if not client.waiting:  # open loop: an idle connection closed by the server
            self.drop(client)
            return self.connect(client, now)
        self.fail(client, "reset", now)  # closed with our request unanswered

    def complete(self, client, now):
        """A whole response arrived: count it, then send the next request.
        (The hot path: one call per response, so it does only what it must.)"""
        if self.total >= self.quota:
            client.mode = HEAD  # the run is over (the last responses of an event batch): not counted
            return
        client.waiting = False
        if client.ok:
            self.total += 1
            client.requests += 1
            client.bytes += client.body_bytes
            self.latencies.append(now - client.started)
        else:
            self.errors["bad"] += 1
            client.ok = True
        if client.mode is not SLOW:
            client.mode = HEAD
        if self.total >= self.quota:
            return  # that was the last one asked for: send nothing more
        if client.close_after or not self.keep_alive:
            # Let the server close first (it said it would): whoever closes first
            # keeps the connection in TIME_WAIT for a minute, and on our side that
            # would use up local ports. If its FIN is slow, we close at the next tick.
            client.state, client.retry_at = CLOSING, now + TICK
        else:
            self.free(client, now)

    def on_closed(self, client, now):
        """The server's FIN (or anything else) after a last response: reconnect
        (in the open loop, when the next request is due)."""
        self.drop(client)
        if self.rate is not None and client.due > now:
            client.retry_at = client.due  # tick() must not connect it early either
            return self.wait_until_due(client)
        self.connect(client, now)

    # The loop.

    def run(self, warmup=0.0, duration=None, requests=None, stop=None, on_start=None, on_end=None):
        """Warm up, start the clock, load the server for `duration` seconds or
        until `requests` responses have arrived; returns the report (a dict)."""
        now = time.perf_counter()
        for index, client in enumerate(self.clients):
            if self.rate is not None:  # connection k's first request is due k / rate after the start
                client.due = now + (self.first_index + index) / self.rate
            if client.state == BUSY:
                self.free(client, now)
            elif client.state == DOWN:
                self.connect(client, now)
        stopped = self.loop(now + warmup, stop) if warmup > 0 else False
        start = time.perf_counter()
        self.reset_counters(start)
        if on_start is not None:
            on_start()
        cpu_start = self.cpu_clock()
        if requests is not None:
            self.quota = requests
        end = start + duration if duration is not None else math.inf
        stopped = stopped or self.loop(end, stop)
        finish = min(time.perf_counter(), end)
        cpu_seconds = self.cpu_clock() - cpu_start
        if on_end is not None:
            on_end()
        return self.report(finish - start, finish, cpu_seconds, stopped)

    def loop(self, until, stop):
        """Serve events until `until`, the quota, or `stop`; True if stopped.

        The hot path: on a loaded machine each poll() often returns a single
        event, so the work per round counts as much as the work per event
        (names are looked up once, here, not on every round)."""
        poll, clients, readable = self.waiter.poll, self.waiter.clients, self.waiter.READABLE
        clock, on_readable = time.perf_counter, self.on_readable
        schedule = self.schedule if self.rate is not None else None
        now = clock()
        next_tick = now + TICK
        wake = min(until, next_tick)  # when poll() must return even if nothing happens
        while self.total < self.quota:
            if now >= wake:
                if now >= until:
                    return False
                self.tick(now)
                next_tick = now + TICK
                wake = min(until, next_tick)
                if stop is not None and stop.is_set():
                    return True
            timeout = wake - now
            if schedule:  # open loop: wake up when the next request is due
                if schedule[0][0] <= now:
                    self.send_due(now)
                    now = clock()
                    continue
                timeout = min(timeout, schedule[0][0] - now)
            # Each fd comes at most once per poll(), and a client's socket only
            # changes while its own event is handled: no event here is stale.
            events = poll(timeout)
            # Did this process get to run on time? A generator kept from running
            # (a busy machine, a paused process) adds its own delay to every latency.
            overslept = clock() - now - timeout
            if overslept > LATE:
                self.stalls += 1
                self.stalled += overslept
            if schedule is not None:
                self.polls += 1
            for fd, mask in events:
                client = clients[fd]
                now = clock()  # every response gets its own timestamp: a batch can take 0.1 ms
                if client.state is BUSY and mask & readable:
                    on_readable(client, now)
                elif client.state is CONNECTING:
                    self.on_connect(client, now)
                elif client.state is CLOSING:
                    self.on_closed(client, now)
                elif client.pending:
                    self.on_writable(client, now)
            now = clock()
        return False

    def tick(self, now):
        """Housekeeping: timeouts, reconnects, and a sample of open connections."""
        for client in self.clients:
            if client.state == DOWN:
                if client.retry_at <= now:
                    self.connect(client, now)
            elif client.state == CLOSING:
                if client.retry_at <= now:
                    self.on_closed(client, now)
            elif client.state == CONNECTING:
                if now - client.sent_at > self.timeout:
                    self.fail(client, "timeout", now)
            elif client.waiting and now - max(client.sent_at, client.last_byte) > self.timeout:
                self.fail(client, "timeout", now)
        self.open_samples.append(self.open)

    def unanswered(self, finish):
        """The waits (s) of the requests with no answer when the clock stopped:
        sent, or on a connection still being opened, or (open loop) due."""
        waits = array("d")
        for client in self.clients:
            if client.waiting or (client.state is CONNECTING and self.rate is None):
                waits.append(finish - client.started)
            due = client.due  # open loop: every request due by now and not sent yet
            while due <= finish:
                waits.append(finish - due)
                due += self.interval
        return waits

    def report(self, elapsed, finish, cpu_seconds, stopped):
        for client in self.clients:
            client.bytes += client.partial() if client.ok else 0  # a download under way counts what it got
            if client.waiting or self.rate is None:  # the silence still running when the clock stopped
                client.max_gap = max(client.max_gap, finish - client.last_byte)
        unanswered = self.unanswered(finish)
        waits = self.latencies + self.waits + unanswered  # every request that waited, answered or not
        samples = self.open_samples or [self.open]
        return {
            "elapsed": elapsed,
            "requests": self.total,
            "unanswered": len(unanswered),
            "sent": self.sent,
            "late": self.late,
            "stalls": self.stalls,
            "polls": self.polls,
            "stalled": self.stalled,
            "bytes": sum(c.bytes for c in self.clients),
            "wire_bytes": self.wire_bytes,
            "sent_bytes": self.sent_bytes,
            "latency": histogram(waits),  # computed now that the clock has stopped
            "latency_sum": sum(waits),
            "latency_count": len(waits),
            "latency_max": max(waits, default=0.0),
            "errors": dict(self.errors),
            "per_client_requests": [c.requests for c in self.clients],
            "per_client_bytes": [c.bytes for c in self.clients],
            "max_gap": max((c.max_gap for c in self.clients), default=0.0),
            "open_max": self.open_max,
            "open_mean": sum(samples) / len(samples),
            "cpu_seconds": cpu_seconds,
            "stopped": stopped,
        }

    def close(self):
        for client in self.clients:
            self.drop(client)
        self.waiter.close()


def error_kind(error):
    if isinstance(error, ConnectionRefusedError):
        return "refused"
    if isinstance(error, (TimeoutError, socket.timeout)):
        return "timeout"
    return "reset"  # ECONNRESET, EPIPE, ECONNABORTED ...


def count_only(piece):
    """A body piece arrives: the reader counts its length; nobody keeps it."""
