"""Lesson 01 (blocking I/O): the iterative server, one client at a time.

    while (client := self.accept()) is not None:   # blocks until a client connects
        self.serve(*client)                         # blocks until that client leaves

Blocking calls are the simplest way to write a server: while accept() or
recv() waits, the OS puts the thread to sleep and it uses no CPU at all.
serve() runs serve_blocking() (blocking.py), the whole conversation with one
client: recv() a request, send() its response, until the client leaves.

Trade-off: nobody else is served meanwhile. A second client connects at once
(the kernel completes its handshake and queues it in the listen backlog), but
its request waits until the first client has downloaded everything and closed
the connection: the slides' "everyone waits on the first user to finish". A
browser keeping an idle keep-alive connection open blocks the whole server,
so this model gives up on a silent client after 2 s instead of the usual 15 s.
"""

from .blocking import BlockingServer

IDLE_TIMEOUT = 2.0  # seconds: long enough to reuse a connection, short enough to let others in


class IterativeServer(BlockingServer):
    name = "iterative"
    description = "one client at a time with blocking accept() and recv(): everyone waits"
    concurrent = False

    default_idle_timeout = IDLE_TIMEOUT

    def serve_forever(self):
        while (client := self.accept()) is not None:  # blocks until a client connects
            self.serve(*client)  # blocks until that client leaves
