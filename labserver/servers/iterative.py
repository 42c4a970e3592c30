"""Lesson 01 (blocking I/O): the iterative server, one client at a time.

    while True:
        sock, addr = listener.accept()      # blocks until a client connects
        serve_blocking(sock, addr, app)     # blocks until that client leaves

Blocking calls are the simplest way to write a server: while accept() or
recv() waits, the OS puts the thread to sleep and it uses no CPU at all.

Trade-off: nobody else is served meanwhile. A second client connects at once
(the kernel completes its handshake and queues it in the listen backlog), but
its request waits until the first client has downloaded everything and closed
the connection: the slides' "everyone waits on the first user to finish". A
browser keeping an idle keep-alive connection open blocks the whole server,
so this model gives up on a silent client after 2 s instead of the usual 15 s.
"""

import socket
import threading

from .base import Server, log, serve_blocking

IDLE_TIMEOUT = 2.0  # seconds: long enough to reuse a connection, short enough to let others in


class IterativeServer(Server):
    name = "iterative"
    description = "one client at a time with blocking accept() and recv(): everyone waits"
    concurrent = False

    default_idle_timeout = IDLE_TIMEOUT

    def __init__(self, *args, **options):
        super().__init__(*args, **options)
        self.sock = None  # the one client being served, so that stop() can wake its recv()
        self.sock_lock = threading.Lock()

    def serve_forever(self):
        while not self.stopping.is_set():
            try:
                sock, addr = self.listener.accept()  # blocks until a client connects
            except OSError as error:  # out of file descriptors, say: let some close
                log.warning("accept failed: %s", error)
                self.stopping.wait(0.1)
                continue
            # Under the lock, so that wake() either sees this socket or we see `stopping`.
            with self.sock_lock:
                if self.stopping.is_set():  # wake()'s own connection, or a late client
                    sock.close()
                    return
                self.sock = sock
            serve_blocking(sock, addr, self.app, self.timeouts.idle, self.stopping)  # until it leaves
            with self.sock_lock:
                self.sock = None

    def wake(self):
        # A thread blocked in recv(), accept() or send() never looks at
        # `stopping`: we make the blocked call itself return.
        with self.sock_lock:
            if self.sock is not None:
                try:
                    self.sock.shutdown(socket.SHUT_RDWR)  # recv() returns b"", send() fails
                except OSError:
                    pass  # already closed: the thread is on its way back to accept()
        self.wake_accept()
