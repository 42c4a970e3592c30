"""Lesson 04 (callbacks): an event loop that calls a function for each ready socket.

    for key, mask in self.selector.select(self.timeout()):  # waits
        key.data(key.fileobj, mask)  # the callback registered with the socket

Lesson 03's select() loop, with the two changes the selectors module brings.
The selector (epoll on Linux, kqueue on macOS, select() on Windows) remembers
which sockets we watch, so we register a socket once and tell it only what
changes; and it returns only the ready sockets, each with the function to
call for it: accept() for the listener, handle() for a client. So a turn of
the loop costs per ready socket, not per connection, and a /sleep is a timer,
not a socket.

Still readiness: the loop sleeps in the selector, then the callback calls
recv() itself on a non-blocking socket. In the slides' table that is the
asynchronous blocking cell, like lesson 03: a reactor. The bottom-right cell,
where the recv() is done for you and your callback gets the data (a
proactor: IOCP, io_uring), is primitives.CompletionLoop.

Trade-off: still one thread. One slow callback (a /cpu request, a cold disk)
stalls every client until it returns; and the code is inside out: each
conversation is cut into callbacks instead of reading from top to bottom.
"""

import selectors
import time
from functools import partial

from .nonblocking import CLOSE, READ, SLEEP, SLICE, WRITE, EventLoopServer

EVENTS = {READ: selectors.EVENT_READ, WRITE: selectors.EVENT_WRITE}


class CallbackServer(EventLoopServer):
    name = "callbacks"
    description = "one thread, one selector: each ready socket calls its callback"

    def prepare(self):
        super().prepare()
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.waker.sock, selectors.EVENT_READ, self.on_wake)

    def serve_forever(self):
        while not self.stopping.is_set():
            self.watch_listener()
            for key, mask in self.selector.select(self.timeout()):  # waits
                key.data(key.fileobj, mask)  # the callback registered with the socket
            self.expire(time.monotonic())

    def accept(self, listener, mask):
        for client in self.accept_clients():
            self.selector.register(client.sock, selectors.EVENT_READ, partial(self.handle, client))

    def handle(self, client, sock=None, mask=None):
        """Its socket is ready (or its /sleep is over): recv() or send() does what it can, never waits."""
        before = client.want
        client.handle(SLICE)  # does what it can now; client.want: what it waits for next
        self.watch(client, before)

    def watch(self, client, before):
        """Tell the selector what the client waits for now, if that changed:
        most turns, nothing."""
        if client.want != before:
            if client.want == CLOSE:
                return self.close(client)
            callback = partial(self.handle, client)
            if client.want == SLEEP:  # a timer, not the socket, says when to go on
                self.selector.unregister(client.sock)
            elif before == SLEEP:
                self.selector.register(client.sock, EVENTS[client.want], callback)
            else:
                self.selector.modify(client.sock, EVENTS[client.want], callback)
        self.timers.arm(client)  # its deadline, or the end of its /sleep

    def on_wake(self, sock, mask):
        self.waker.drain()  # from stop(): the loop condition sees `stopping`

    def close(self, client, give_up=False):
        if client.sock in self.selector.get_map():  # not while it sleeps
            self.selector.unregister(client.sock)
        super().close(client, give_up)

    def serve_on(self, listener, stop_sock, shared=False):
        """Serve on `listener` in this thread until `stop_sock` becomes
        readable (its other end closed), then close `listener`: how each worker
        process of lesson 07 runs this model. shared: other processes accept
        on `listener` too; then take one client per turn, so that a worker
        busy with a request leaves the next ones to the others."""
        self.listener = listener
        self.burst = 1 if shared else self.burst
        self.prepare()
        self.selector.register(stop_sock, selectors.EVENT_READ, lambda sock, mask: self.stopping.set())
        try:
            self.serve_forever()
        finally:
            self.cleanup()
            listener.close()

    def cleanup(self):
        super().cleanup()
        self.selector.close()
