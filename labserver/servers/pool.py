"""Lesson 06 (threads): a pool of threads started once, each serving one connection at a time.

    def serve_forever(self):  # the accept loop
        while (client := self.accept()) is not None:  # blocks until a client connects
            self.queue.put(client)  # with every worker busy, it waits in the queue

    def work(self):  # each of the `workers` threads, started once
        while (client := self.queue.get()) is not None:  # blocks until a connection is queued
            self.serve(*client)  # blocks until that client leaves

The thread-per-connection server, with the threads started in advance: the
accept loop puts each new connection in a queue, and `workers` threads take
them out one at a time and serve them with the same blocking loop
(serve_blocking in blocking.py). No thread is started per client, and no
more than `workers` threads ever serve clients.

Trade-off: a connection holds its worker until it closes, idle or not. An
idle keep-alive client keeps a worker waiting in recv() until its idle
timeout; with `workers` such clients connected, client `workers`+1 waits in
the queue, connected but unanswered, however little it asks. The complete
server (threadpool) fixes that: an event loop watches the idle connections,
and a worker gets a connection only when it has something to do.
"""

import queue

from .blocking import BlockingServer


class BlockingPoolServer(BlockingServer):
    name = "pool"
    description = "a fixed pool of threads, each serving one queued connection at a time, blocking"
    default_workers = 16

    def launch(self):
        self.queue = queue.SimpleQueue()  # accepted connections waiting for a worker
        self.spawn(self.serve_forever)
        for _ in range(self.workers):
            self.spawn(self.work)

    def serve_forever(self):
        while (client := self.accept()) is not None:  # blocks until a client connects
            self.queue.put(client)  # with every worker busy, it waits in the queue

    def work(self):
        while (client := self.queue.get()) is not None:  # blocks until a connection is queued
            self.serve(*client)  # blocks until that client leaves

    def interrupt(self):
        super().interrupt()  # every queued connection too: served at once, it ends at once
        for _ in range(self.workers):
            self.queue.put(None)  # one each: stop working
