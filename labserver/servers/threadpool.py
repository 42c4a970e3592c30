"""Lesson 06 (threads): the complete multithreaded server, the lecture's project.

    def handle(self, client, sock=None, mask=None):  # the loop: lesson 04's callback server
        ...
        self.ready.put(client)  # its socket is ready: a worker takes it from here

    def work(self):  # each of the `workers` threads
        while (client := self.ready.get()) is not None:
            client.handle(WORKER_SLICE)  # never blocks
            ...
            self.returned.append(client)  # back to the loop

Lesson 04's event loop plus lesson 06's pool. The loop (the callback server)
does the waiting: it watches every connection that is idle (a keep-alive
client thinking, a slow client trickling its headers, a full send buffer)
and hands a connection to the pool only when its socket is ready. A worker
then reads, answers and sends without ever blocking, at most a slice of a
big file per turn, and gives the connection back to the loop.

Why both: in the plain pool (pool.py), an idle keep-alive connection holds a
worker until it times out. Here it holds no worker, only a socket: 1000 idle
clients cost 1000 sockets, not 1000 threads; a client that sends one byte a
second never holds a worker; and 1000 clients downloading one huge file all
make progress, a slice at a time, in turn. The loop's deadlines close idle
and too-slow connections.

Trade-off: every request crosses two threads (loop -> worker -> loop), which
costs more than a pure event loop; in return, a slow handler (a /cpu
request, a cold disk) holds up only its own worker, not everyone. While there
are fewer connections than workers, nobody can be waiting for a worker, so a
worker waits up to 1 ms for its client's next request itself (may_keep)
instead of handing it back: two hand-offs fewer per request.
"""

import queue
import select
from collections import deque

from .callbacks import CallbackServer
from .nonblocking import READ, SLEEP, SLICE

NEXT_REQUEST_WAIT = 0.001  # seconds a worker may wait for its client's next request (see may_keep)
# A worker's slice is bigger than the single-threaded loops': each slice costs a
# round trip through the loop (two hand-offs between threads), which small
# slices would pay again and again on a big download.
WORKER_SLICE = 4 * SLICE


class ThreadPoolServer(CallbackServer):
    name = "threadpool"
    description = "bounded worker pool fed by an event loop: the complete multithreaded server"
    default_workers = 16
    max_connections = 10_000  # beyond, new clients wait in the listen backlog

    def prepare(self):
        super().prepare()
        self.ready = queue.SimpleQueue()  # clients whose socket is ready, for the workers
        self.returned = deque()  # clients the workers give back to the loop

    def launch(self):
        super().launch()  # the loop's thread: the only one that touches the selector
        for _ in range(self.workers):
            self.spawn(self.work)

    def handle(self, client, sock=None, mask=None):
        """Its socket is ready (or its /sleep is over): a worker takes it from here."""
        if client.want != SLEEP:
            self.selector.unregister(client.sock)
        self.busy.add(client)  # while a worker has it, no deadline runs
        self.ready.put(client)

    def on_wake(self, sock, mask):
        """Workers gave clients back (or stop() was called)."""
        self.waker.drain()
        while self.returned:
            client = self.returned.popleft()
            self.busy.discard(client)
            self.watch(client, SLEEP)  # not registered: as if it had slept

    # The workers: take a ready client, do what can be done, give it back.

    def work(self):
        while (client := self.ready.get()) is not None:
            client.handle(WORKER_SLICE)
            while client.want == READ and self.may_keep(client) and readable_soon(client.sock):
                client.handle(WORKER_SLICE)  # its next request: no trip through the loop
            self.returned.append(client)
            self.waker.wake()

    def may_keep(self, client):
        """Whether a worker may wait a moment for its client's next request
        itself: only when that cannot make anyone wait (fewer connections
        than workers) and the client is not half-way through a request (a
        slow one goes back to the loop, which enforces its deadline)."""
        return (len(self.clients) <= self.workers and not client.conn.parser.has_partial_request
                and not self.stopping.is_set())

    def interrupt(self):
        super().interrupt()  # the loop
        for _ in range(self.workers):
            self.ready.put(None)  # one each: stop working


def readable_soon(sock):
    """True if the client sends something within NEXT_REQUEST_WAIT: a fast
    keep-alive client's next request usually comes within a round trip."""
    if hasattr(select, "poll"):  # poll, not select(): any fd number, even past FD_SETSIZE
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        return bool(poller.poll(NEXT_REQUEST_WAIT * 1000))
    return bool(select.select([sock], [], [], NEXT_REQUEST_WAIT)[0])  # Windows: no such limit
