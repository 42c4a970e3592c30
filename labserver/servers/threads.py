"""Lesson 06 (threads): a new thread for every connection, started on demand.

    while True:
        sock, addr = listener.accept()                          # blocks
        Thread(target=serve_blocking, args=(sock, addr, app)).start()

The iterative server of lesson 01 plus one line: each client gets a thread
of its own, which serves it with ordinary blocking calls, and the accept loop
goes straight back to accept(). While one thread waits in recv() or in a
/sleep, the OS runs the others, so slow clients overlap.

Trade-off: threads share memory (one app, one cache, nothing to copy) and
start fast, but an idle keep-alive client holds a whole thread, and only one
thread at a time runs Python code (the GIL): /cpu requests take turns however
many cores there are. Lesson 07 uses processes for that.

The GIL is not fair, either. Every thread whose recv() returns must take the
GIL back, and the thread that just let go of it often takes it again first.
With 64 busy clients the median response stays at a few ms, but the slowest
1 % wait 100 ms and more: some threads lose that race many times in a row
(benchmarks/gil_tail.py shows it with 20 lines of plain sockets). The thread
pool of lesson 06 has the same GIL and no such tail: its ready connections
wait in a first-in, first-out queue, not in a scramble for the GIL.

A cap keeps 10 000 clients from becoming 10 000 threads (socketserver's
ThreadingMixIn has none): with max_threads clients being served, the accept
loop waits for one to leave. The next clients are not refused: the kernel
completes their handshake and queues them in the listen backlog, connected
but unanswered until a thread is free.
"""

import itertools
import socket
import threading
import time

from .base import Server, ServerError, log, serve_blocking

JOIN_TIMEOUT = 5.0  # seconds stop() waits for the connection threads, all together


class ThreadPerConnectionServer(Server):
    name = "threads"
    description = "a new thread per connection, blocking calls, capped at max_threads"

    def __init__(self, root=None, host="127.0.0.1", port=0, app=None, max_threads=256, **timeouts):
        super().__init__(root, host, port, app, **timeouts)
        if max_threads < 1:
            raise ServerError("max_threads must be at least 1")
        self.max_threads = max_threads
        self.slots = threading.BoundedSemaphore(max_threads)
        self.connections = {}  # sock -> the thread serving it; guarded by self.conn_lock
        self.conn_lock = threading.Lock()
        self._numbers = itertools.count()

    def serve_forever(self):
        while not self.stopping.is_set():
            self.slots.acquire()  # blocks while max_threads clients are being served
            try:
                sock, addr = self.listener.accept()  # blocks until a client connects
            except OSError as error:  # out of file descriptors, say: let some close
                self.slots.release()
                log.warning("accept failed: %s", error)
                self.stopping.wait(0.1)
                continue
            # Under the lock, so that wake() either sees this socket or we see `stopping`.
            with self.conn_lock:
                if self.stopping.is_set():  # wake()'s own connection, or a late client
                    sock.close()
                    self.slots.release()
                    return
                name = f"labserver-threads-conn-{next(self._numbers)}"
                thread = threading.Thread(target=self.serve, args=(sock, addr), name=name, daemon=True)
                self.connections[sock] = thread
                thread.start()

    def serve(self, sock, addr):
        try:
            serve_blocking(sock, addr, self.app, self.timeouts.idle, self.stopping)  # until it leaves
        except Exception:  # a bug: log it, or threading would print it to the notebook
            log.exception("%s crashed", threading.current_thread().name)
        finally:
            with self.conn_lock:
                del self.connections[sock]
            self.slots.release()

    def wake(self):
        # Every thread here is blocked in a call that never looks at `stopping`;
        # we make the calls themselves return.
        with self.conn_lock:
            for sock in self.connections:
                try:
                    sock.shutdown(socket.SHUT_RDWR)  # recv() returns b"", send() fails
                except OSError:
                    pass  # already closed: that thread is ending anyway
        self.wake_accept()

    def cleanup(self):
        deadline = time.monotonic() + JOIN_TIMEOUT
        with self.conn_lock:  # all but ours, if the app itself called stop()
            threads = [t for t in self.connections.values() if t is not threading.current_thread()]
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                log.warning("%s did not stop within %.1f s", thread.name, JOIN_TIMEOUT)
