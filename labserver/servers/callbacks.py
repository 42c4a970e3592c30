"""Lesson 04 (asynchronous, non-blocking): an event loop that calls callbacks.

    for key, mask in selector.select(timeout):
        key.data(key.fileobj, mask)          # the callback registered with the socket

Lesson 03's select() loop, with the two changes the selectors module brings.
The selector (epoll on Linux, kqueue on macOS) remembers which sockets we
watch, so we register a socket once and tell it only what changes; and it
returns only the ready sockets, each with the function to call for it: on_accept
for the listener, on_ready for a client, on_wake for the socket stop() writes
to. So a turn of the loop costs per ready socket, not per connection, and a
/sleep is a timer in a heap: 1000 sleeping requests cost no thread and no scan.

Trade-off: still one thread. One slow callback (a /cpu request, a cold disk)
stalls every client until it returns; and the code is inside out: each
conversation is cut into callbacks instead of reading from top to bottom.
"""

import heapq
import itertools
import selectors
import time
from functools import partial

from .base import CLOSE, READ, SLEEP, WRITE, Client, Server, Waker, log

EVENTS = {READ: selectors.EVENT_READ, WRITE: selectors.EVENT_WRITE}
SLICE = 256 * 1024  # bytes sent to one client before the loop serves the others
SWEEP = 0.25  # seconds between two looks for clients past their deadline


class CallbackServer(Server):
    name = "callbacks"
    description = "one thread, one selector: each ready socket calls its callback"
    # Connections taken per readable listener: all that wait, by default. The
    # processes model takes one, so that a worker does not grab a whole burst
    # while other workers, sharing the listener, sit idle.
    accept_burst = 1 << 30

    def launch(self):
        self.setup()
        self.spawn(self.serve_forever)

    def setup(self):
        """The selector and its first callbacks (the processes model calls this
        in each worker, on the listening socket it inherited)."""
        self.listener.setblocking(False)
        self.clients = {}  # client -> what it waits for: READ, WRITE or SLEEP
        self.sleepers = []  # heap of (wake_at, n, client): the /sleep timers
        self._order = itertools.count()  # breaks ties in the heap
        self.waker = Waker()  # stop() makes it readable
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.listener, selectors.EVENT_READ, self.on_accept)
        self.selector.register(self.waker.sock, selectors.EVENT_READ, self.on_wake)

    def serve_forever(self):
        next_sweep = time.monotonic() + SWEEP
        while not self.stopping.is_set():
            for key, mask in self.selector.select(self.timeout()):  # waits
                key.data(key.fileobj, mask)  # the callback registered with the socket
            now = time.monotonic()
            while self.sleepers and self.sleepers[0][0] <= now:
                self.on_ready(heapq.heappop(self.sleepers)[2])  # a timer's callback
            # Deadlines move on every request; rather than keep them sorted,
            # look at them all a few times a second.
            if now >= next_sweep:
                self.expire(now)
                next_sweep = now + SWEEP

    def timeout(self):
        """Seconds until the next /sleep ends, at most SWEEP."""
        if not self.sleepers:
            return SWEEP
        return min(SWEEP, max(0.0, self.sleepers[0][0] - time.monotonic()))

    # The callbacks.

    def on_accept(self, listener, mask):
        for _ in range(self.accept_burst):
            try:
                sock, addr = listener.accept()
            except BlockingIOError:
                return
            except OSError as error:  # out of file descriptors, say: try again later
                log.warning("accept failed: %s", error)
                return
            client = Client(sock, addr, self.app)
            self.clients[client] = READ
            client.set_deadline(READ, self.timeouts)
            self.selector.register(sock, selectors.EVENT_READ, partial(self.on_ready, client))

    def on_ready(self, client, sock=None, mask=None):
        # A client trickling bytes is seldom found waiting by expire(): check here.
        if self.clients[client] != SLEEP and client.out_of_time(time.monotonic()):
            self.close(client, give_up=True)
            return
        want = client.handle(SLICE)  # its socket is ready: recv() or send() will not block
        before = self.clients[client]
        if want == CLOSE:
            self.close(client)
            return
        if want != before:  # tell the selector only what changed: most turns, nothing
            if before == SLEEP:
                self.selector.register(client.sock, EVENTS[want], partial(self.on_ready, client))
            elif want == SLEEP:  # while it sleeps, a pipelined request must wait its turn
                self.selector.unregister(client.sock)
            else:
                self.selector.modify(client.sock, EVENTS[want], partial(self.on_ready, client))
            self.clients[client] = want
        if want == SLEEP:
            heapq.heappush(self.sleepers, (client.wake_at, next(self._order), client))
        else:
            client.set_deadline(want, self.timeouts)

    def on_wake(self, sock, mask):
        self.waker.drain()  # from stop(): the loop condition sees `stopping`

    def expire(self, now):
        for client, want in list(self.clients.items()):
            if want != SLEEP and now >= client.deadline:
                self.close(client, give_up=True)

    def close(self, client, give_up=False):
        if self.clients.pop(client) != SLEEP:
            self.selector.unregister(client.sock)
        if give_up:
            client.give_up()  # a 408 if a request was half-way in, then close
        else:
            client.close()

    # Stopping.

    def wake(self):
        self.waker.wake()

    def cleanup(self):
        for client in list(self.clients):
            self.close(client)
        self.sleepers.clear()
        self.selector.close()
        self.waker.close()
