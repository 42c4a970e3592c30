"""Lesson 03 (select): one thread waits for many sockets in one call.

    readable, writable, _ = select.select(readers, writers, [], self.timeout())  # waits

The busy-wait loop of lesson 02, with the waiting moved into the kernel: we
give select() the sockets we want to recv() from and those we want to send()
to, and the OS puts the thread to sleep until one of them is ready or the
timeout ends (the nearest deadline or end of a /sleep). Many clients, one
thread, no CPU while idle. To stop the loop, stop() makes a socket of its own
readable: the waker. In the slides' table this is asynchronous blocking I/O:
I/O multiplexing, a reactor (POSIX names select() "synchronous I/O
multiplexing": the recv() that follows still moves the data while we wait).

Every socket is non-blocking all the same (EventLoopServer): readiness is a
hint, not a promise. select(2) itself warns that a socket reported readable
may then block (data discarded, e.g. a bad checksum); a ready listener's
connection may be reset before accept() on some systems; and "writable" means
room for some bytes, not for a whole reply. So recv(), accept() and send()
either do part of the work or raise BlockingIOError, and the loop goes on.

Trade-off: select() is "not the most efficient function". select() remembers
nothing, so every call rebuilds the lists, copies them into the kernel, which
checks every socket, and we search them again for the ready ones: O(n) work
per call for n connections, even if only one is ready. And its sets have a
fixed size, FD_SETSIZE: on Linux and macOS it cannot watch a file descriptor
numbered 1024 or more. epoll (Linux) and kqueue (macOS), used by the
selectors module in lesson 04, keep the set of sockets in the kernel between
calls and return only the ready ones. Like every single-threaded loop, a slow
handler (a /cpu request) holds up every client.
"""

import select
import sys
import time

from .nonblocking import CLOSE, READ, SLICE, WRITE, EventLoopServer
from .server import ServerError, log

FD_SETSIZE = 512 if sys.platform == "win32" else 1024  # Windows: 512 sockets (CPython's build)
MAX_CONNECTIONS = FD_SETSIZE - 24  # room for the listener, the waker, stdio, log files


class SelectServer(EventLoopServer):
    name = "select"
    description = "one thread, one select() call over every socket: no CPU while idle"
    select_based = True

    def __init__(self, *args, max_connections=MAX_CONNECTIONS, **options):
        if not 1 <= max_connections <= MAX_CONNECTIONS:
            raise ServerError(f"max_connections must be from 1 to {MAX_CONNECTIONS} (select's FD_SETSIZE)")
        super().__init__(*args, max_connections=max_connections, **options)

    def serve_forever(self):
        while not self.stopping.is_set():
            # Rebuilt on every turn: select() remembers nothing between calls.
            readers = [self.waker.sock] + [self.listener] * self.accepting()  # at the cap: the backlog
            readers += [sock for sock, client in self.clients.items() if client.want == READ]
            writers = [sock for sock, client in self.clients.items() if client.want == WRITE]
            readable, writable, _ = select.select(readers, writers, [], self.timeout())  # waits
            if self.waker.sock in readable:
                self.waker.drain()  # from stop(): the loop condition sees `stopping`
            if self.listener in readable:
                self.accept()
            for sock in readable + writable:
                if sock in self.clients:  # not the waker or the listener, and not closed meanwhile
                    self.handle(self.clients[sock])
            self.expire(time.monotonic())

    def accept(self):
        for client in self.accept_clients():
            if sys.platform != "win32" and client.sock.fileno() >= FD_SETSIZE:  # other files took the low ones
                log.warning("refused a client: select() cannot watch file descriptor %d", client.sock.fileno())
                self.close(client)

    def handle(self, client):
        """Its socket is ready (or its /sleep is over): recv() or send() does what it can, never waits."""
        if client.handle(SLICE) == CLOSE:
            self.close(client)
        else:
            self.timers.arm(client)  # its deadline, or the end of its /sleep
