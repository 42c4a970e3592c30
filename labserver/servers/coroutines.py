"""Lesson 04 (asynchronous, non-blocking): coroutines, the bridge from callbacks to asyncio.

The callback server split each conversation across callbacks. Here each
connection is a generator that reads like the blocking server (serve_blocking
in base.py), except that wherever blocking code would block, it yields what it
waits for instead: ("recv", sock), ("send", sock) or ("sleep", seconds). A
scheduler of about 50 lines (after David Beazley, PyCon 2015) keeps the waiting
generators in recv_wait / send_wait, asks select() which sockets are ready and
resumes their generators. That is what asyncio does, with `await` for `yield`.

Trade-off: as with callbacks, one thread runs everything, so a /cpu request
stalls every client; and select() watches at most ~1000 sockets (FD_SETSIZE).
"""

import heapq
import itertools
import math
import select
import socket
import sys
import time
from collections import deque

from .base import LINGER, READ, RECV_SIZE, WRITE, Client, Server, Waker, log, send_some
from .selectserver import FD_SETSIZE
from ..protocol import Delay

SLICE = 256 * 1024  # bytes sent to one client before the others get a turn
SWEEP = 0.25  # seconds between two looks for waits past their deadline


class CoroutineServer(Server):
    name = "coroutines"
    description = "one thread, generators as tasks, select() as the scheduler"

    def launch(self):
        self.listener.setblocking(False)
        self.ready = deque()  # tasks to resume now
        self.recv_wait = {}  # sock -> the task waiting to recv from it
        self.send_wait = {}  # sock -> the task waiting to send to it
        self.sleeping = []  # heap of (wake_at, n, task)
        self.deadlines = {}  # sock -> when its task gives up waiting (like sock.settimeout)
        self.tasks = set()  # every live task, to close them all on stop()
        self._order = itertools.count()  # breaks ties in the heap
        self.waker = Waker()  # stop() makes it readable
        self.new_task(self.accept_clients())
        self.new_task(self.wait_for_stop())
        self.spawn(self.serve_forever)

    # The scheduler.

    def new_task(self, task):
        self.tasks.add(task)
        self.step(task)  # run it to its first yield

    def serve_forever(self):
        next_sweep = 0.0
        while not self.stopping.is_set():
            while self.ready:
                self.step(self.ready.popleft())
            now = time.monotonic()
            if now >= next_sweep:  # before select(): a task that just woke is not past its deadline
                self.expire(now)
                next_sweep = now + SWEEP
            timeout = SWEEP
            if self.sleeping:
                timeout = min(timeout, max(0.0, self.sleeping[0][0] - now))
            can_recv, can_send, _ = select.select(self.recv_wait, self.send_wait, [], timeout)
            for sock in can_recv:
                self.ready.append(self.recv_wait.pop(sock))
            for sock in can_send:
                self.ready.append(self.send_wait.pop(sock))
            now = time.monotonic()
            while self.sleeping and self.sleeping[0][0] <= now:
                self.ready.append(heapq.heappop(self.sleeping)[2])

    def step(self, task, error=None):
        """Run `task` until its next yield (throwing `error` into it, if any)."""
        try:
            why, what = task.throw(error) if error else task.send(None)
        except StopIteration:
            self.tasks.discard(task)
            return
        except Exception:
            log.exception("a task crashed")
            self.tasks.discard(task)
            return
        if why == "recv":
            self.recv_wait[what] = task
        elif why == "send":
            self.send_wait[what] = task
        else:
            heapq.heappush(self.sleeping, (time.monotonic() + what, next(self._order), task))

    def expire(self, now):
        for waiting in (self.recv_wait, self.send_wait):
            for sock, task in list(waiting.items()):
                if self.deadlines.get(sock, math.inf) <= now:
                    del waiting[sock]
                    self.step(task, TimeoutError())  # raised at its yield, as by a socket timeout

    # The tasks. Every `yield` is a point where blocking code would block.

    def accept_clients(self):
        while True:
            yield "recv", self.listener  # blocks until a client connects
            # Everyone already waiting in the backlog, not one per turn of the
            # loop: 256 clients connecting at once would otherwise wait up to
            # 256 turns, their first requests unanswered meanwhile.
            while True:
                try:
                    sock, addr = self.listener.accept()
                except BlockingIOError:
                    break
                except OSError as error:  # out of file descriptors, say: next turn
                    log.warning("accept failed: %s", error)
                    break
                if sys.platform != "win32" and sock.fileno() >= FD_SETSIZE:  # see lesson 03
                    log.warning("refused a client: select() cannot watch file descriptor %d", sock.fileno())
                    sock.close()
                    continue
                self.new_task(self.serve_client(Client(sock, addr, self.app)))

    def serve_client(self, client):
        """serve_blocking() in base.py, with a yield where it would block."""
        sock, conn, out = client.sock, client.conn, client.out
        try:
            while not conn.closing:
                self.deadlines[sock] = client.set_deadline(READ, self.timeouts)
                if client.out_of_time(time.monotonic()):
                    raise TimeoutError  # a trickle is seldom found waiting by expire()
                yield "recv", sock  # blocks until the client sends something
                conn.feed(sock.recv(RECV_SIZE))
                while (chunks := conn.next_response()) is not None:
                    out.extend(chunks)
                    while out:
                        if isinstance(out[0], Delay):
                            yield "sleep", out.popleft().seconds  # blocks: a timer; others run meanwhile
                            continue
                        send_some(sock, out, SLICE)  # what fits in the socket, at most a slice
                        if out:
                            self.deadlines[sock] = client.set_deadline(WRITE, self.timeouts)
                            yield "send", sock  # blocks until the client makes room
            # Linger (see Client._start_lingering): FIN, then read until the client closes.
            sock.shutdown(socket.SHUT_WR)
            self.deadlines[sock] = time.monotonic() + LINGER
            while True:
                yield "recv", sock  # blocks until the client sends or closes
                if not sock.recv(RECV_SIZE):
                    break
        except TimeoutError:  # from expire()
            client.give_up()  # a 408 if a request was half-way in
        except OSError:
            pass  # the client went away
        finally:
            self.deadlines.pop(sock, None)
            client.close()

    def wait_for_stop(self):
        yield "recv", self.waker.sock  # blocks until stop() writes a byte

    # Stopping.

    def wake(self):
        self.waker.wake()

    def cleanup(self):
        for task in list(self.tasks):
            task.close()  # GeneratorExit at its yield: its `finally` closes the socket
        self.tasks.clear()
        self.waker.close()
