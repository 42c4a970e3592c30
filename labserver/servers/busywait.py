"""Lesson 02 (non-blocking I/O): the busy-wait server, one thread that never waits.

    while True:                                  # spins, even with nothing to do
        try: accept()                            # BlockingIOError: nobody there
        for each client: try recv() or send()    # BlockingIOError: not ready yet

Every socket is non-blocking, so no call ever puts the thread to sleep: it
asks every socket "anything for me?" again and again. Unlike the iterative
server, it serves many clients at once, in one thread.

Trade-off: the loop burns a whole CPU core even when no client sends a single
byte, and the more clients, the longer each turn and the later each answer.
`spins` counts the turns of the loop and `useful` the turns in which some
socket had something for us: watch their ratio while the server is idle.
"""

import socket
import time

from ..protocol import FileBody
from .base import CLOSE, READ, SLEEP, WRITE, Client, Server


class BusyWaitServer(Server):
    name = "busywait"
    description = "non-blocking sockets tried in a loop that never waits: 100% CPU while idle"

    def __init__(self, *args, **options):
        super().__init__(*args, **options)
        self.clients = {}  # client -> what it waits for: READ, WRITE or SLEEP
        self.spins = 0  # turns of the loop
        self.useful = 0  # turns in which a socket had something for us

    def serve_forever(self):
        self.listener.setblocking(False)
        while not self.stopping.is_set():  # no select(), no sleep(): this loop spins
            self.spins += 1
            busy = self.try_accept()
            now = time.monotonic()
            for client, want in list(self.clients.items()):
                busy |= self.try_client(client, want, now)
            self.useful += busy

    def try_accept(self):
        try:
            sock, addr = self.listener.accept()
        except OSError:  # BlockingIOError: nobody there (or out of fds): try again at once
            return False
        client = Client(sock, addr, self.app)
        self.clients[client] = READ
        client.set_deadline(READ, self.timeouts)
        return True

    def try_client(self, client, want, now):
        """One attempt that never blocks; True if the client had something for us."""
        if want == SLEEP and now < client.wake_at:
            return False  # a /sleep request: look at the clock again next turn
        if want == READ and nothing_to_read(client.sock):
            return self.check_deadline(client, now)
        before = unsent(client)
        new = client.handle()  # recv() and send() what it can, without blocking
        if new == CLOSE:
            del self.clients[client]
            client.close()
        elif new == want == WRITE and unsent(client) == before:
            return self.check_deadline(client, now)  # its send buffer is still full
        else:
            self.clients[client] = new
            client.set_deadline(new, self.timeouts, now)
        return True

    def check_deadline(self, client, now):
        if now >= client.deadline:
            del self.clients[client]
            client.give_up()
        return False

    def cleanup(self):
        for client in self.clients:
            client.close()
        self.clients.clear()


def nothing_to_read(sock):
    """The question the loop asks every socket, every turn: any bytes for me?

    We peek rather than let handle() try: we must know whether anything came,
    or a silent client would look busy forever and never reach its deadline."""
    try:
        sock.recv(1, socket.MSG_PEEK)  # look without taking: handle() reads them
    except BlockingIOError:
        return True
    except OSError:
        pass  # reset by the peer: handle() will find out and say CLOSE
    return False  # bytes, or b"": the client closed


def unsent(client):
    """Bytes waiting to go out; if handle() shrank it, the socket took some."""
    return sum(chunk.count if isinstance(chunk, FileBody) else len(chunk) for chunk in client.out)
