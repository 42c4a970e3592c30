"""Checks for lessons 04 (callbacks) and 05 (coroutines): one small server, three ways.

The exercises write the same server three times: it sends every message back
upper-cased (an "upper echo"), as a callback for a selector loop, as a
generator task for a scheduler, and as an asyncio coroutine. Each check runs
the student's code on an event loop of its own (one thread for all clients),
serves four real TCP clients with it, and talks to them in an order a
one-client-at-a-time server cannot follow:

    the clients send in reverse order, before anyone reads;
    one client sends a longer message (5200 bytes);
    (generator) one client sends 256 KiB before it reads anything, so the
      server finds its socket's buffer full and must wait to send;
    (asyncio) one client sends 1 MiB before it reads anything: a handler
      that does not `await writer.drain()` piles it up in memory, and the
      check measures the writer's buffer;
    one client shuts down its side, and must see the server close too,
      while the others are still served.

Every call of the student's code runs under a deadline, and the server's
sockets are WatchedSockets, so that a callback that waits, or a task that
calls recv() again after b"", fails with a message saying so.

The loops are written out below, short enough to read: `check.SelectorLoop??`
and `check.Scheduler??` in the notebook.

Lesson 04's second exercise, read_head, is checked at the end of this file:
completion callbacks on labserver.primitives.CompletionLoop (q_recv), fed a
request head in pieces while the loop's timer ticks; a q_recv() after b"", two
q_recv()s in flight on one socket, a callback that blocks the loop, and one
buffer shared by two connections each fail with a message saying so.
"""

import asyncio
import contextlib
import inspect
import select
import selectors
import socket
import threading
import time

from . import (Abandoned, CheckFailed, WatchedSocket, check, describe, expect, not_written, passed, raise_in,
               run_student, stuck_line)

CLIENTS = 4
BIG = 256 * 1024  # the generator task's big message
HUGE = 1024 * 1024  # the asyncio handler's: enough to tell a drained writer from one that piles up
HIGH_WATER = 16 * 1024  # the asyncio writer's buffer size at which drain() starts to wait
PILED_UP = HUGE // 2  # bytes in a writer's buffer that only a handler without drain() reaches
WAIT = 3.0  # seconds a client waits for an answer before the check gives up


# The three loops. Each one accepts connections on its own listener and serves
# them with the student's code; pump(seconds) lets it run for a while.


class SelectorLoop:
    """Exercise 1: a selectors event loop like CallbackServer's, that calls
    `callback(selector, sock)` whenever a client socket is readable."""

    def __init__(self, callback):
        self.callback = callback
        self.selector = selectors.DefaultSelector()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.accepted = []  # every server-side socket, closed at the end whatever the callback did

    def connect(self):
        client = _client(self.listener)
        sock, _ = self.listener.accept()
        sock.setblocking(False)  # as in every event loop: a recv() with nothing to read raises, never waits
        sock = WatchedSocket(sock)
        self.accepted.append(sock)
        self.selector.register(sock, selectors.EVENT_READ, self.callback)
        return client

    def pump(self, seconds):
        self.after_goodbye()  # a closed socket left registered would break select()
        for key, _ in self.selector.select(seconds):  # waits until a socket is ready
            _run_student(self, key.data, self.selector, key.fileobj)  # the callback registered with it

    def after_goodbye(self):
        stale = [key.fileobj for key in self.selector.get_map().values() if key.fileobj.fileno() == -1]
        expect(not stale, "you closed the socket but left it registered: call selector.unregister(sock) "
                          "before sock.close(), or the selector keeps a dead socket")

    def close(self):
        self.selector.close()
        for sock in self.accepted:
            sock.close()
        self.listener.close()


class Scheduler:
    """Lesson 05, exercise 2: a generator scheduler like CoroutineServer's. A task yields
    ("recv", sock) or ("send", sock) where blocking code would block; the
    scheduler resumes it once select() says that socket is ready."""

    def __init__(self, task_function):
        self.task_function = task_function
        self.listener = _listener()
        self.recv_wait = {}  # sock -> the task waiting to recv from it
        self.send_wait = {}  # sock -> the task waiting to send to it
        self.tasks = []
        self.accepted = []

    def connect(self):
        client = _client(self.listener)
        sock, _ = self.listener.accept()
        sock.setblocking(False)
        sock = WatchedSocket(sock)
        self.accepted.append(sock)
        try:
            name = getattr(self.task_function, "__name__", "your function")
            task = _run_student(self, self.task_function, sock)
            expect(inspect.isgenerator(task),
                   f"{name}(sock) returned {type(task).__name__}, not a generator: a task contains `yield`")
            self.tasks.append(task)
            self.step(task)  # run it to its first yield
        except BaseException:
            client.close()
            raise
        return client

    def step(self, task):
        """Resume `task` until its next yield; file it under what it waits for."""
        try:
            waits_for = _run_student(self, task.send, None)
        except StopIteration:
            return  # the task returned: its conversation is over
        expect(isinstance(waits_for, tuple) and len(waits_for) == 2 and waits_for[0] in ("recv", "send"),
               f"a task yields ('recv', sock) or ('send', sock); yours yielded {waits_for!r}")
        why, sock = waits_for
        expect(isinstance(sock, socket.socket) and sock.fileno() != -1,
               f"yield ({why!r}, sock) with the task's open socket; yours yielded ({why!r}, {sock!r})")
        (self.recv_wait if why == "recv" else self.send_wait)[sock] = task

    def pump(self, seconds):
        for table in (self.recv_wait, self.send_wait):
            closed = [sock for sock in table if sock.fileno() == -1]
            expect(not closed, "a task closed its socket and then went on yielding it: after sock.close(), "
                               "return from the task")
        can_recv, can_send, _ = select.select(self.recv_wait, self.send_wait, [], seconds)  # waits
        for sock in can_recv:
            self.step(self.recv_wait.pop(sock))
        for sock in can_send:
            self.step(self.send_wait.pop(sock))

    def after_goodbye(self):
        pass

    def close(self):
        for task in self.tasks:
            with contextlib.suppress(Exception):
                task.close()
        for sock in self.accepted:
            sock.close()
        self.listener.close()


class AsyncioLoop:
    """Lesson 05, exercise 3: asyncio.start_server with `handler(reader, writer)`, on an
    event loop in a helper thread (the notebook's own thread already runs one).
    Each writer's buffer is watched: its largest size is `self.piled_up`."""

    def __init__(self, handler):
        self.handler = handler
        self.errors = []  # what went wrong inside the loop, reported by the main thread
        self.tasks = set()
        self.writers = []
        self.piled_up = 0  # the most bytes any writer had waiting to be sent
        self.closing = False
        self.accepted = []
        self.listener = _listener()
        self.loop = asyncio.new_event_loop()
        # The loop's own error reports would be printed by a background thread: keep them.
        self.loop.set_exception_handler(lambda loop, context: self.errors.append(context.get("message")))
        self.thread = threading.Thread(target=self.loop.run_forever, name="labserver-check-asyncio", daemon=True)
        self.thread.start()
        self.server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self.serve, sock=self.listener), self.loop).result(5)

    async def serve(self, reader, writer):
        self.tasks.add(asyncio.current_task())
        self.writers.append(writer)
        if self.closing:
            return
        writer.transport.set_write_buffer_limits(high=HIGH_WATER)
        self._watch(writer)
        name = getattr(self.handler, "__name__", "your function")
        try:
            await self.handler(reader, writer)
        except NotImplementedError as error:
            self.errors.append(str(not_written(error, self.handler)))
        except asyncio.CancelledError:
            pass  # the check is over
        except Exception as error:
            self.errors.append(describe(error, name))

    def _watch(self, writer):
        """Note the writer's buffer after every write(): without drain() it only grows."""
        for method in ("write", "writelines"):
            original = getattr(writer, method)

            def watched(data, original=original):
                original(data)
                self.piled_up = max(self.piled_up, writer.transport.get_write_buffer_size())

            setattr(writer, method, watched)

    def connect(self):
        return _client(self.listener)

    def pump(self, seconds):
        time.sleep(seconds)  # the loop runs in its own thread
        if self.errors:
            raise CheckFailed(self.errors[0])

    def blocked(self):
        """Where the handler blocks the event loop, or None if the loop is free."""
        ran = threading.Event()
        self.loop.call_soon_threadsafe(ran.set)
        if ran.wait(0.5):
            return None
        return stuck_line(self.thread) or "a call that does not return"

    def after_goodbye(self):
        pass

    def close(self):
        self.closing = True  # connections not yet served never reach the handler
        give_up = time.monotonic() + 2 * WAIT
        while self.blocked() and time.monotonic() < give_up:
            raise_in(self.thread, Abandoned)  # a handler blocking the loop is ended as run_student ends a hung call

        async def shutdown():
            self.server.close()
            for task in self.tasks:
                task.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)
            for writer in self.writers:
                writer.transport.abort()  # whatever the handler left open

        try:
            asyncio.run_coroutine_threadsafe(shutdown(), self.loop).result(5)
        except Exception:
            pass  # a handler that ignores cancellation, or blocks the loop: the loop is stopped anyway
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        if not self.thread.is_alive():
            self.loop.close()
        self.listener.close()


# What the clients do, the same for the three loops.


def _listener():
    """A listener whose connections have a small send buffer on the server's
    side (accepted sockets inherit it): one recv() of a big message brings more
    than send() can take at once."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


def _client(listener):
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)  # before connect(): small, so big replies back up
    sock.connect(listener.getsockname())
    sock.setblocking(False)  # the check's clients and the loop share one thread: nobody may wait
    return sock


def _run_student(loop, function, *args):
    """Call the student's callback, or resume their task, under a deadline, with errors in words."""
    try:
        return run_student(function, *args, deadline=WAIT, sockets=loop.accepted,
                           name=f"{getattr(loop, 'student_name', None) or _name(function)}")
    except (CheckFailed, StopIteration):
        raise
    except BlockingIOError as error:
        raise CheckFailed(f"recv() or send() found nothing to do and raised {type(error).__name__}: "
                          "call recv() once each time the socket is ready (once per callback, once per "
                          "yield), and send only when it is ready to send") from None
    except Exception as error:
        raise CheckFailed(describe(error, "your code")) from None


def _name(function):
    owner = getattr(function, "__self__", None)  # a generator's send(): name the generator
    return f"{getattr(owner, '__name__', None) or getattr(function, '__name__', 'your function')}()"


def _explain(loop, message):
    """The message, with what the server was doing if that says why."""
    if isinstance(loop, AsyncioLoop):
        where = loop.blocked()
        if where:
            return (f"{message}. Your handler is blocking the event loop, at {where}: while one coroutine "
                    f"runs without reaching an `await`, no other client is served")
    reason = next((r for r in (sock.diagnosis() for sock in loop.accepted) if r), None)
    return f"{message}: {reason}" if reason and reason.startswith("recv() returned b''") else message


def _exchange(loop, clients, i, message, read_late=False):
    """Client i sends `message`; it must get it back upper-cased. With read_late,
    the client reads nothing until its sending is stuck: the server's buffers fill."""
    client, expected = clients[i], message.upper()
    sent, got, stuck, reading = 0, b"", 0, not read_late
    deadline = time.monotonic() + WAIT
    while len(got) < len(expected):
        stuck += 1
        if sent < len(message):
            try:
                sent += client.send(message[sent:sent + 65536])
                stuck = 0
            except BlockingIOError:
                pass
        loop.pump(0.002)
        reading = reading or stuck > 10  # read late: once the client cannot send any more
        if reading:
            try:
                chunk = client.recv(65536)
            except BlockingIOError:
                chunk = None
            except ConnectionError:
                chunk = b""
            if chunk == b"":
                raise CheckFailed(f"client {i} sent {_short(message)}, and the server closed the connection "
                                  f"after {len(got)} of {len(expected)} bytes back")
            if chunk:
                got += chunk
                if got != expected[:len(got)]:
                    break
        if time.monotonic() > deadline:
            raise CheckFailed(_explain(loop, f"client {i} sent {_short(message)} and waited {WAIT:g} s; got back "
                                             f"{len(got)} of {len(expected)} bytes"))
    if got != expected:
        at = next((k for k in range(len(expected)) if got[k:k + 1] != expected[k:k + 1]), len(expected))
        raise CheckFailed(f"client {i} sent {_short(message)}; byte {at} of the answer is wrong: got "
                          f"{got[at:at + 12]!r}, expected {expected[at:at + 12]!r}. Lost bytes? send() may "
                          f"take only part of what you give it, and returns how many bytes it took")


def _receive(loop, clients, i, message, context=""):
    """Client i, which sent `message`, reads until it has its answer."""
    expected, got = message.upper(), b""
    deadline = time.monotonic() + WAIT
    while len(got) < len(expected) and got == expected[:len(got)]:
        if time.monotonic() > deadline:
            raise CheckFailed(_explain(loop, f"{context}client {i} sent {message!r} and waited {WAIT:g} s for "
                                             f"the answer; got {got!r}"))
        loop.pump(0.002)
        try:
            chunk = clients[i].recv(65536)
        except BlockingIOError:
            continue
        except ConnectionError:
            chunk = b""
        if chunk == b"":
            raise CheckFailed(f"{context}client {i} sent {message!r}, and the server closed the connection")
        got += chunk
    expect(got == expected, f"{context}client {i} sent {message!r}; expected {expected!r} back, got {got!r}")


def _goodbye(loop, clients, i):
    """Client i shuts down its side: the server must close the connection too."""
    clients[i].shutdown(socket.SHUT_WR)
    deadline = time.monotonic() + WAIT
    while True:
        loop.pump(0.002)
        try:
            data = clients[i].recv(65536)
        except BlockingIOError:
            data = None
        except ConnectionError:
            data = b""
        if data == b"":
            return
        if data:
            raise CheckFailed(f"client {i} said goodbye and got {_short(data)}: send nothing back on b''")
        if time.monotonic() > deadline:
            raise CheckFailed(_explain(loop, f"client {i} shut down its side (recv() returns b'' on the server), "
                                             f"but the server kept the connection open: close the socket when "
                                             f"recv() returns b''"))


def _conversation(loop, big=0):
    clients = []
    try:
        for _ in range(CLIENTS):
            clients.append(loop.connect())
        messages = [f"hello from client {i}\n".encode() for i in range(CLIENTS)]
        for i in reversed(range(CLIENTS)):  # everyone sends before anyone reads
            clients[i].send(messages[i])
        for i in range(CLIENTS):
            _receive(loop, clients, i, messages[i], "four clients sent at once; ")
        _exchange(loop, clients, 1, bytes(range(97, 123)) * 200)  # 5200 bytes
        if big:
            _exchange(loop, clients, 2, b"abcdefgh" * (big // 8), read_late=True)
            if isinstance(loop, AsyncioLoop):
                expect(loop.piled_up < PILED_UP,
                       f"client 2 sent {big // 1024} KiB and read nothing until it could send no more; meanwhile "
                       f"your handler let {loop.piled_up // 1024} KiB pile up in the writer's buffer. write() only "
                       f"buffers: `await writer.drain()` after each write() waits while the buffer is full, so "
                       f"that a slow reader slows the handler down instead of filling its memory")
        _goodbye(loop, clients, 0)
        loop.after_goodbye()
        _exchange(loop, clients, 3, b"still there?\n")
    finally:
        for client in clients:
            client.close()
        loop.close()


def _short(data):
    return repr(data) if len(data) <= 40 else f"{len(data)} bytes starting {data[:20]!r}"


# The checks.


@check
def upper_echo(callback):
    """Exercise 1: callback(selector, sock) for a selectors loop."""
    _conversation(SelectorLoop(callback))
    passed(f"{_name(callback)} served {CLIENTS} clients at once from one selector loop, "
           "and closed the connection of the client who left")


@check
def upper_echo_task(task_function):
    """Lesson 05, exercise 2: task_function(sock), a generator run by Scheduler."""
    _conversation(Scheduler(task_function), big=BIG)
    passed(f"{_name(task_function)} served {CLIENTS} clients as generator tasks, "
           f"including a {BIG // 1024} KiB message sent through a full buffer")


@check
def upper_echo_async(handler):
    """Lesson 05, exercise 3: async handler(reader, writer) for asyncio.start_server."""
    name = getattr(handler, "__name__", "your function")
    expect(inspect.iscoroutinefunction(handler), f"{name} should be a coroutine function: `async def {name}(reader, writer):`")
    _conversation(AsyncioLoop(handler), big=HUGE)
    passed(f"{name} served {CLIENTS} clients on asyncio's event loop, including a {HUGE // 1024} KiB message "
           f"to a slow reader, without piling it up in memory")


# Exercise 2 (lesson 04): completion callbacks, the slides' q_recv(sock, done).

from . import StudentCall, hang_message  # noqa: E402  (this section's own helpers)

HEAD = (b"GET /index.html HTTP/1.1\r\nHost: localhost\r\nUser-Agent: lesson-04\r\n"
        b"Accept: */*\r\n\r\n")
TICK = 0.01  # the loop's "other work": a timer every 10 ms; a gap says a callback blocked it
PIECE_GAP = 0.3  # seconds between two pieces of a head: a callback that waits for one blocks the loop that long


class QRecvLoop:
    """A CompletionLoop (labserver.primitives) that notes how it is used: a
    q_recv() on a socket that has one in flight already, or whose recv()
    returned b"" (closed), is refused and noted; a timer ticks meanwhile."""

    def __init__(self):
        from ..primitives import CompletionLoop

        class Watched(CompletionLoop):
            def q_recv(inner, sock, done, bufsize=65536):
                if sock in self.closed:
                    self.misuse = ("done() got b'' (the client had closed) and you called q_recv() again on that "
                                   "socket: b'' means nothing more will come; call finished(None) and stop")
                    return
                if sock in self.in_flight:
                    self.misuse = ("you called q_recv() on a socket whose previous q_recv() had not completed "
                                   "yet: two recv()s in flight on one socket may take its bytes in either order. "
                                   "Ask for the next piece from done(), once the last one has come")
                    return
                self.in_flight.add(sock)

                def completed(data):
                    self.in_flight.discard(sock)
                    if data == b"":
                        self.closed.add(sock)
                    done(data)

                CompletionLoop.q_recv(inner, sock, completed, bufsize)

        self.loop = Watched()
        self.in_flight, self.closed, self.misuse = set(), set(), None
        self.ticks = []

    def tick(self):
        self.ticks.append(time.monotonic())
        self.loop.call_later(TICK, self.tick)

    def largest_gap(self):
        return max((b - a for a, b in zip(self.ticks, self.ticks[1:])), default=0.0)


def _read_heads(read_head, pieces, close_early=False):
    """Each peer sends its pieces of HEAD, PIECE_GAP s apart (the first after PIECE_GAP s);
    returns (what finished() got per socket, how long read_head() took, the QRecvLoop)."""
    pairs = [socket.socketpair() for _ in pieces]
    ours = [WatchedSocket(a) for a, _ in pairs]
    watch = QRecvLoop()
    got = [[] for _ in pairs]
    timings = {}

    def scenario():
        watch.tick()
        start = time.perf_counter()
        for i, sock in enumerate(ours):
            read_head(watch.loop, sock, lambda data, i=i: got[i].append(data))
        timings["read_head_s"] = time.perf_counter() - start
        watch.loop.run(until=lambda: watch.misuse or all(got), timeout=WAIT)

    attempt = StudentCall(scenario, (), getattr(read_head, "__name__", "read_head") + "()")
    try:
        attempt.start()
        time.sleep(PIECE_GAP)
        for k in range(max(len(p) for p in pieces)):
            for (_, theirs), mine in zip(pairs, pieces):
                if k < len(mine):
                    with contextlib.suppress(OSError):
                        theirs.sendall(mine[k])
            time.sleep(PIECE_GAP)
        if close_early:
            for _, theirs in pairs:
                theirs.shutdown(socket.SHUT_WR)
        if not attempt.wait(WAIT + 1):
            raise CheckFailed(hang_message(attempt, "the loop did not stop within its time", ours))
    finally:
        for sock in ours:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # wakes any helper still in recv()
        attempt.wait(1)
        watch.loop.close()
        for a, b in pairs:
            a.close()
            b.close()
        for sock in ours:
            sock.close()
    attempt.raise_error("read_head")
    expect(watch.misuse is None, watch.misuse or "")
    return got, timings.get("read_head_s", 0.0), watch


def _cut(data, sizes):
    out, at = [], 0
    for size in sizes:
        out.append(data[at:at + size])
        at += size
    return [p for p in out + [data[at:]] if p]


@check
def read_head(read_head):
    """read_head(loop, sock, finished): with loop.q_recv only, read an HTTP
    request head that comes in pieces; finished(head) once, or finished(None)
    if the client closes first; the loop goes on with other work meanwhile."""
    pieces = _cut(HEAD, [5, 30, 20])
    got, took, watch = _read_heads(read_head, [pieces])
    expect(took < PIECE_GAP / 2, f"read_head() took {took:.2f} s to return: it waited for the data. Call loop.q_recv(sock, "
                       f"done) and return; done() is called later, when a piece has come")
    expect(watch.largest_gap() < PIECE_GAP / 2,
           f"the loop's timer, due every {TICK * 1000:.0f} ms, once waited {watch.largest_gap():.2f} s: a callback "
           f"blocked the loop. Do not call sock.recv() yourself (it waits): ask with loop.q_recv(sock, done)")
    calls = got[0]
    expect(calls, "the head came in 4 pieces, but finished() was never called")
    expect(len(calls) == 1, f"finished() was called {len(calls)} times; call it once, when the head is complete")
    head = calls[0]
    expect(head is not None, "the whole head came, but finished() got None: None is for a client that closes early")
    expect(isinstance(head, (bytes, bytearray)) and bytes(head) == HEAD,
           f"the head came in 4 pieces ({', '.join(str(len(p)) for p in pieces)} bytes); finished() got "
           f"{len(head) if isinstance(head, (bytes, bytearray)) else head!r:.60} bytes, expected all {len(HEAD)}. "
           f"One recv() returns what has come so far: keep it, and ask again from done() until b'\\r\\n\\r\\n'")

    early = HEAD[:40]
    got, _, _ = _read_heads(read_head, [_cut(early, [10])], close_early=True)
    expect(got[0] == [None], f"the client sent 40 bytes of a head and closed: expected finished(None) once, got "
                             f"finished() called with {got[0]!r:.80}. done(b'') means the client has gone")

    other = HEAD.replace(b"/index.html", b"/about.html").replace(b"lesson-04", b"another-client")
    got, _, _ = _read_heads(read_head, [_cut(HEAD, [7, 40]), _cut(other, [30, 3])])
    expect([g[:1] for g in got] == [[HEAD], [other]],
           "two clients sent their heads at the same time, in pieces: each finished() should get its own client's "
           "head, whole. Keep what has come so far per call of read_head (a variable in read_head that done() "
           "uses), not in one global shared by every connection")
    passed("read_head reads a head in pieces with q_recv, returns at once, lets the loop work meanwhile, "
           "handles a client that leaves early and two clients at once")
