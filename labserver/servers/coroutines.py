"""Lesson 05 (coroutines): the callback server, each connection a generator.

    def serve_client(self, client):  # one generator per connection
        ...
        while not conn.closing:
            yield READ  # blocks until the client sends something
            client.recv()
            while (want := client.send(SLICE)) != READ:
                yield want  # blocks until the socket has room (WRITE), or the /sleep is over

The callback server cut each conversation into callbacks. Here each
connection is a generator that reads like the blocking loop of lesson 01
(serve_blocking in blocking.py), except that wherever that would block, it
yields what it waits for instead: READ, WRITE, or SLEEP (a /sleep request,
a timer). The event loop is the callback server's (readiness, a reactor);
the callback registered with a client's socket now resumes its generator,
until its next yield: the job of a Task (labserver/tasks.py), with a word
saying what it waits for where a Task has a future (after David Beazley,
PyCon 2015). asyncio does the same with futures, and `await` for `yield`.

Trade-off: as with callbacks, one thread runs everything, so a /cpu or
/block request stalls every client; in return, each conversation reads from
top to bottom.
"""

import selectors
from functools import partial

from .callbacks import CallbackServer
from .nonblocking import CLOSE, READ, SLICE


class CoroutineServer(CallbackServer):
    name = "coroutines"
    description = "one thread, one selector: each connection a generator, resumed when its socket is ready"

    def prepare(self):
        super().prepare()
        self.tasks = {}  # client -> its generator

    def accept(self, listener, mask):
        for client in self.accept_clients():
            self.tasks[client] = task = self.serve_client(client)
            next(task)  # runs it to its first yield: it waits for a request
            self.selector.register(client.sock, selectors.EVENT_READ, partial(self.handle, client))

    def handle(self, client, sock=None, mask=None):
        """Its socket is ready (or its /sleep is over): resume its generator."""
        before = client.want
        try:
            client.wait_for(next(self.tasks[client]))  # runs until the generator's next yield
        except (StopIteration, OSError):  # the conversation is over, or the client went away
            client.wait_for(CLOSE)
        self.watch(client, before)

    def serve_client(self, client):
        """serve_blocking() in blocking.py, with a `yield` wherever it would block."""
        conn = client.conn
        while not conn.closing:
            yield READ  # blocks until the client sends something
            client.recv()
            while (want := client.send(SLICE)) != READ:
                yield want  # blocks until the socket has room (WRITE), or the /sleep is over
        client.linger()
        while client.drain() == READ:  # until the client closes too
            yield READ  # blocks until the client sends (or closes)

    def close(self, client, give_up=False):
        self.tasks.pop(client).close()  # GeneratorExit at its yield, if it has not ended
        super().close(client, give_up)
