"""Lesson 06 (threads): a new thread for every connection, started on demand.

    while True:
        self.slots.acquire()  # blocks while `workers` clients are being served
        client = self.accept()  # blocks until a client connects
        ...
        thread = threading.Thread(target=self.serve_one, args=client, name=name, daemon=True)
        thread.start()

The iterative server of lesson 01 plus one line: each client gets a thread
of its own, which serves it with ordinary blocking calls (serve_one() runs
serve_blocking), and the accept loop goes straight back to accept(). While one thread waits in recv() or in a
/sleep, the OS runs the others, so slow clients overlap.

Trade-off: threads share memory (one app, one cache, nothing to copy) and
start fast (a fraction of a millisecond), but an idle keep-alive client holds
a whole thread: on Linux about 20 KiB of RAM, and its stack's 8 MiB (`ulimit
-s`) of reserved address space, which gets RAM only where it is touched
(lesson 06 measures both). And only one thread at a time runs Python code
(the GIL): /cpu requests take turns however many cores there are. Lesson 07
uses processes for that.

The GIL is not fair, either. Every thread whose recv() returns must take the
GIL back, and the thread that just let go of it often takes it again first,
so some threads lose that race many times in a row: the slowest responses
wait far longer than the median (benchmarks/gil_tail.py shows it with plain
sockets). The complete server (threadpool) has the same GIL and no such tail:
its ready connections wait in a first-in, first-out queue, not in a scramble
for the GIL.

A cap keeps 10 000 clients from becoming 10 000 threads (socketserver's
ThreadingMixIn has none): with `workers` clients being served, the accept
loop waits for one to leave. The next clients are not refused: the kernel
completes their handshake and queues them in the listen backlog, connected
but unanswered until a thread is free.
"""

import itertools
import threading
import time

from .blocking import BlockingServer
from .server import log

JOIN_TIMEOUT = 5.0  # seconds stop() waits for the connection threads, all together


class ThreadPerConnectionServer(BlockingServer):
    name = "threads"
    description = "a new thread per connection, blocking calls, at most `workers` threads"
    default_workers = 256  # the cap on connection threads at once

    def launch(self):
        self.slots = threading.BoundedSemaphore(self.workers)
        self.threads = set()  # the connection threads; guarded by conn_lock
        self.numbers = itertools.count()
        self.spawn(self.serve_forever)

    def serve_forever(self):
        while True:
            self.slots.acquire()  # blocks while `workers` clients are being served
            client = self.accept()  # blocks until a client connects
            if client is None:
                return
            name = f"labserver-threads-conn-{next(self.numbers)}"
            thread = threading.Thread(target=self.serve_one, args=client, name=name, daemon=True)
            with self.conn_lock:
                self.threads.add(thread)
            thread.start()

    def serve_one(self, sock, addr):
        try:
            self.serve(sock, addr)
        finally:
            with self.conn_lock:
                self.threads.discard(threading.current_thread())
            self.slots.release()

    def cleanup(self):
        deadline = time.monotonic() + JOIN_TIMEOUT
        with self.conn_lock:  # all but ours, if the app itself called stop()
            threads = [t for t in self.threads if t is not threading.current_thread()]
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                log.warning("%s did not stop within %.1f s", thread.name, JOIN_TIMEOUT)
        super().cleanup()
