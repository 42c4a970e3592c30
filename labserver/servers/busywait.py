"""Lesson 02 (non-blocking I/O): the busy-wait server, one thread that never waits.

    while not self.stopping.is_set():  # no select(), no sleep(): this loop spins
        ...
        busy = self.accept()    # accept() at once: BlockingIOError if nobody is there
        for client in list(self.clients.values()):
            if client.want != SLEEP:
                busy |= self.handle(client)    # recv() or send() at once, or BlockingIOError

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

from .nonblocking import CLOSE, READ, SLEEP, SLICE, EventLoopServer


class BusyWaitServer(EventLoopServer):
    name = "busywait"
    description = "non-blocking sockets tried in a loop that never waits: 100% CPU while idle"
    select_based = False  # it never waits at all

    def __init__(self, *args, **options):
        super().__init__(*args, **options)
        self.spins = 0  # turns of the loop
        self.useful = 0  # turns in which a socket had something for us

    def serve_forever(self):
        while not self.stopping.is_set():  # no select(), no sleep(): this loop spins
            self.spins += 1
            busy = self.accept()
            for client in list(self.clients.values()):
                if client.want != SLEEP:  # a /sleep ends in expire(), when its time has come
                    busy |= self.handle(client)
            self.useful += busy
            self.expire(time.monotonic())

    def accept(self):
        """Take every client waiting in the backlog; True if there was one."""
        return bool(self.accept_clients())

    def handle(self, client):
        """One try that never blocks; True if the client had something for us."""
        reading = client.want == READ
        if reading and nothing_to_read(client.sock):
            return False
        if client.handle(SLICE) == CLOSE:
            self.close(client)
        else:
            self.timers.arm(client)  # its deadline, or the end of its /sleep
        return reading or client.sent > 0  # sending: True if its socket took some bytes


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
