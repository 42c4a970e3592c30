"""Lesson 06 (threads): the complete multithreaded server, the lecture's project.

A bounded pool of worker threads does the work; one selector thread does the
waiting. The selector watches every connection that is idle (a keep-alive
client thinking, a slow client trickling its headers, a full send buffer) and
hands a connection to the pool only when its socket is ready. A worker then
reads, answers and sends without ever blocking, at most a slice of a big file
per turn, and gives the connection back to the selector.

So 1000 idle keep-alive clients cost 1000 sockets, not 1000 threads; a client
that sends one byte a second never holds a worker; and 1000 clients
downloading one huge file all make progress, a slice at a time, in turn.
Deadlines close idle and too-slow connections.

Trade-off: every request crosses two threads (selector -> worker -> selector),
which costs more than a pure event loop; in return, a slow handler (a /cpu or
/sleep request, a cold disk) holds up only its own worker, not everyone.
While there are fewer connections than workers, a worker waits up to 1 ms
for its client's next request itself instead (may_keep): nobody else can be
waiting for a worker then, and a lone keep-alive client made ~20-40 % more
requests per second that way (measured side by side, 1 and 8 clients).
"""

import heapq
import itertools
import queue
import select
import selectors
import time
from collections import deque

from .base import CLOSE, READ, SLEEP, WRITE, Client, Server, ServerError, Waker, log

NEXT_REQUEST_WAIT = 0.001  # seconds a worker may wait for its client's next request (see may_keep)
SLICE = 1024 * 1024  # bytes a worker sends for one client before serving others: smaller
# slices cost a round trip through the selector each (measured: 256 KiB gave ~25% less bulk throughput)


class ThreadPoolServer(Server):
    name = "threadpool"
    description = "bounded worker pool fed by a selector: the complete multithreaded server"

    def __init__(self, root=None, host="127.0.0.1", port=0, app=None, workers=16,
                 max_connections=10_000, **timeouts):
        super().__init__(root, host, port, app, **timeouts)
        if workers < 1:
            raise ServerError("workers must be at least 1")
        self.workers = workers
        self.max_connections = max_connections

    def launch(self):
        self.listener.setblocking(False)
        self.selector = selectors.DefaultSelector()
        self.ready = queue.SimpleQueue()  # clients whose socket is ready, for the workers
        self.returned = deque()  # (client, what it waits for), back to the selector
        self.waiting = {}  # client -> deadline, for every client the selector watches
        self.clients = set()  # every open client, to close them all on stop()
        self.sleepers = []  # heap of (wake_at, n, client) for /sleep requests
        self._order = itertools.count()  # breaks ties in the heap
        self.waker = Waker()  # workers and stop() make it readable
        self.selector.register(self.listener, selectors.EVENT_READ, "accept")
        self.selector.register(self.waker.sock, selectors.EVENT_READ, "wake")
        self.spawn(self.watch)
        for _ in range(self.workers):
            self.spawn(self.work)

    # The selector thread: the only thread that touches the selector.

    def watch(self):
        next_sweep = 0.0
        while not self.stopping.is_set():
            timeout = 0.5
            if self.sleepers:
                timeout = min(timeout, max(0.0, self.sleepers[0][0] - time.monotonic()))
            for key, _ in self.selector.select(timeout):
                if key.data == "accept":
                    self.accept()
                elif key.data == "wake":
                    self.waker.drain()  # a worker gave a client back, or stop()
                else:
                    self.selector.unregister(key.fileobj)  # a worker owns it now
                    del self.waiting[key.data]
                    self.ready.put(key.data)
            self.take_back()
            self.wake_sleepers()
            if time.monotonic() >= next_sweep:
                self.expire()
                next_sweep = time.monotonic() + 0.25

    def accept(self):
        while True:
            try:
                sock, addr = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as error:  # out of file descriptors, say: try again later
                log.warning("accept failed: %s", error)
                return
            if len(self.clients) >= self.max_connections:
                sock.close()
                continue
            client = Client(sock, addr, self.app)
            self.clients.add(client)
            self.wait_for(client, READ)

    def take_back(self):
        while self.returned:
            client, want = self.returned.popleft()
            if want == CLOSE or self.stopping.is_set():
                self.close(client)
            elif want == SLEEP:  # a timer, not a blocked worker
                heapq.heappush(self.sleepers, (client.wake_at, next(self._order), client))
            else:
                self.wait_for(client, want)

    def wait_for(self, client, want):
        self.waiting[client] = client.set_deadline(want, self.timeouts)
        if client.out_of_time(time.monotonic()):  # a trickle is seldom found waiting by expire()
            del self.waiting[client]
            self.clients.discard(client)
            client.give_up()
            return
        events = selectors.EVENT_WRITE if want == WRITE else selectors.EVENT_READ
        self.selector.register(client.sock, events, client)

    def wake_sleepers(self):
        now = time.monotonic()
        while self.sleepers and self.sleepers[0][0] <= now:
            self.ready.put(heapq.heappop(self.sleepers)[2])

    def expire(self):
        now = time.monotonic()
        for client in [c for c, deadline in self.waiting.items() if deadline <= now]:
            self.selector.unregister(client.sock)
            del self.waiting[client]
            self.clients.discard(client)
            client.give_up()

    # The workers: take a ready client, do what can be done, give it back.

    def work(self):
        while True:
            client = self.ready.get()
            if client is None:
                return
            want = client.handle(SLICE)
            while want == READ and self.may_keep(client) and readable_soon(client.sock):
                want = client.handle(SLICE)  # its next request: no trip through the selector
            self.returned.append((client, want))
            self.waker.wake()

    def may_keep(self, client):
        """Whether a worker may wait a moment for its client's next request
        itself, skipping two hand-offs between threads: only when that cannot
        make anyone wait (fewer connections than workers) and the client is
        not half-way through a request (a slow one goes back to the selector,
        which enforces its deadline)."""
        return (len(self.clients) <= self.workers and not client.conn.parser.has_partial_request
                and not self.stopping.is_set())

    # Stopping.

    def wake(self):
        for _ in range(self.workers):
            self.ready.put(None)
        self.waker.wake()

    def close(self, client):
        self.clients.discard(client)
        client.close()

    def cleanup(self):
        for client in list(self.clients):
            self.close(client)
        for client, _ in self.returned:
            self.close(client)
        self.returned.clear()
        self.selector.close()
        self.waker.close()


def readable_soon(sock):
    """True if the client sends something within NEXT_REQUEST_WAIT: a fast
    keep-alive client's next request usually comes within a round trip."""
    if hasattr(select, "poll"):  # poll, not select(): any fd number, even past FD_SETSIZE
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        return bool(poller.poll(NEXT_REQUEST_WAIT * 1000))
    return bool(select.select([sock], [], [], NEXT_REQUEST_WAIT)[0])  # Windows: no such limit
