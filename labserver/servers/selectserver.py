"""Lesson 03 (select): one thread waits for many sockets in one call.

    readable, writable, _ = select.select(readers, writers, [], timeout)

The busy-wait loop of lesson 02, moved into the kernel: we give select() the
sockets we want to recv() from and those we want to send() to, and the OS
puts the thread to sleep until one of them is ready or the timeout ends (the
nearest deadline or end of a /sleep). Then recv() and send() on the ready
sockets return at once. Many clients, one thread, no CPU while idle.

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

from .base import CLOSE, READ, SLEEP, WRITE, Client, Server, ServerError, Waker, log

FD_SETSIZE = 512 if sys.platform == "win32" else 1024  # Windows: 512 sockets (CPython's build)
MAX_CONNECTIONS = FD_SETSIZE - 24  # room for the listener, the wake socket, stdio, log files
SLICE = 256 * 1024  # bytes sent to one client before the loop serves the others


class SelectServer(Server):
    name = "select"
    description = "one thread, one select() call over every socket: no CPU while idle"

    def __init__(self, root=None, host="127.0.0.1", port=0, app=None, max_connections=MAX_CONNECTIONS,
                 **timeouts):
        super().__init__(root, host, port, app, **timeouts)
        if not 1 <= max_connections <= MAX_CONNECTIONS:
            raise ServerError(f"max_connections must be from 1 to {MAX_CONNECTIONS} (select's FD_SETSIZE)")
        self.max_connections = max_connections

    def launch(self):
        self.listener.setblocking(False)
        self.clients = {}  # client -> what it waits for: READ, WRITE or SLEEP
        self.waker = Waker()  # stop() makes it readable
        self.spawn(self.serve_forever)

    def serve_forever(self):
        while not self.stopping.is_set():
            # Rebuilt on every turn: select() remembers nothing between calls.
            readers = [self.waker.sock]
            if len(self.clients) < self.max_connections:
                readers.append(self.listener)  # at the cap, new clients wait in the backlog
            readers += [client.sock for client, want in self.clients.items() if want == READ]
            writers = [client.sock for client, want in self.clients.items() if want == WRITE]
            readable, writable, _ = select.select(readers, writers, [], self.timeout())  # waits
            if self.waker.sock in readable:
                self.waker.drain()  # from stop(): the loop condition sees `stopping`
            if self.listener in readable:
                self.accept()
            ready = set(readable + writable)
            now = time.monotonic()
            for client, want in list(self.clients.items()):
                if want != SLEEP and client.out_of_time(now):  # ready or not: a trickle seldom waits
                    del self.clients[client]
                    client.give_up()  # a 408, then close
                elif client.sock in ready or want == SLEEP and now >= client.wake_at:
                    self.handle(client)
                elif want != SLEEP and now >= client.deadline:
                    del self.clients[client]
                    client.give_up()  # a 408 if a request was half-way in, then close

    def timeout(self):
        """Seconds until the nearest deadline or end of a /sleep; None: wait for sockets only."""
        times = [client.wake_at if want == SLEEP else client.deadline for client, want in self.clients.items()]
        return max(0.0, min(times) - time.monotonic()) if times else None

    def accept(self):
        while len(self.clients) < self.max_connections:
            try:
                sock, addr = self.listener.accept()
            except BlockingIOError:
                return
            except OSError as error:  # out of file descriptors, say: try again later
                log.warning("accept failed: %s", error)
                return
            if sys.platform != "win32" and sock.fileno() >= FD_SETSIZE:  # other files took the low numbers
                log.warning("refused a client: select() cannot watch file descriptor %d", sock.fileno())
                sock.close()
                continue
            client = Client(sock, addr, self.app)
            self.clients[client] = READ
            client.set_deadline(READ, self.timeouts)

    def handle(self, client):
        want = client.handle(SLICE)  # its socket is ready: recv() or send() will not block
        if want == CLOSE:
            del self.clients[client]
            client.close()
            return
        self.clients[client] = want
        if want != SLEEP:
            client.set_deadline(want, self.timeouts)

    def wake(self):
        self.waker.wake()

    def cleanup(self):
        for client in self.clients:
            client.close()
        self.clients.clear()
        self.waker.close()
