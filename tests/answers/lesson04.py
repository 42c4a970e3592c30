"""The upper-case echo as a callback (lesson 04)."""

import time

from . import right, wrong


@right("04", "upper_echo")
def callback_with_send_loop(selector, sock):
    data = sock.recv(65536)
    if not data:
        selector.unregister(sock)
        sock.close()
        return
    reply = data.upper()
    while reply:
        try:
            reply = reply[sock.send(reply):]
        except BlockingIOError:
            time.sleep(0.001)  # short messages: the buffer empties at once


@wrong("04", "upper_echo", "left it registered")
def closes_without_unregistering(selector, sock):
    data = sock.recv(65536)
    if data:
        sock.sendall(data.upper())
    else:
        sock.close()


@wrong("04", "upper_echo", "recv\\(\\) returned b''.*called recv\\(\\) again")
def ignores_the_close(selector, sock):
    sock.sendall(sock.recv(65536).upper())


@wrong("04", "upper_echo", "found nothing to do and raised BlockingIOError")
def loops_in_the_callback(selector, sock):
    while True:
        data = sock.recv(65536)
        if not data:
            selector.unregister(sock)
            sock.close()
            return
        sock.sendall(data.upper())


@wrong("04", "upper_echo", "did not return within .* blocked in recv\\(\\)", hangs=True)
def makes_the_socket_blocking(selector, sock):
    sock.setblocking(True)
    while data := sock.recv(65536):
        sock.sendall(data.upper())
    selector.unregister(sock)
    sock.close()


# read_head: completion callbacks with q_recv (the slides' asynchronous non-blocking corner).


@right("04", "read_head")
def with_a_closure(loop, sock, finished):
    received = b""

    def done(data):
        nonlocal received
        if not data:
            finished(None)
        elif b"\r\n\r\n" in received + data:
            finished(received + data)
        else:
            received += data
            loop.q_recv(sock, done)

    loop.q_recv(sock, done)


class _HeadReader:
    def __init__(self, loop, sock, finished):
        self.loop, self.sock, self.finished, self.buffer = loop, sock, finished, bytearray()
        loop.q_recv(sock, self.on_piece, 16)  # small pieces: more callbacks, same head

    def on_piece(self, data):
        if data == b"":
            return self.finished(None)
        self.buffer += data
        if self.buffer.endswith(b"\r\n\r\n"):
            return self.finished(bytes(self.buffer))
        self.loop.q_recv(self.sock, self.on_piece, 16)


@right("04", "read_head")
def with_an_object(loop, sock, finished):
    _HeadReader(loop, sock, finished)


@wrong("04", "read_head", "expected all .* ask again from done\\(\\)")
def asks_once(loop, sock, finished):
    loop.q_recv(sock, finished)


@wrong("04", "read_head", "read_head\\(\\) took .* to return")
def waits_for_the_first_piece(loop, sock, finished):
    received = sock.recv(65536)

    def done(data):
        nonlocal received
        received += data
        if not data or b"\r\n\r\n" in received:
            finished(received if data else None)
        else:
            loop.q_recv(sock, done)

    loop.q_recv(sock, done)


@wrong("04", "read_head", "a callback blocked the loop")
def recv_inside_done(loop, sock, finished):
    def done(data):
        while data and b"\r\n\r\n" not in data:
            piece = sock.recv(65536)  # waits for the next piece, on the loop's thread
            if not piece:
                return finished(None)
            data += piece
        finished(data or None)

    loop.q_recv(sock, done)


@wrong("04", "read_head", "called q_recv\\(\\) again")
def treats_b_empty_as_a_piece(loop, sock, finished):
    received = b""

    def done(data):
        nonlocal received
        received += data
        if b"\r\n\r\n" in received:
            finished(received)
        else:
            loop.q_recv(sock, done)

    loop.q_recv(sock, done)


@wrong("04", "read_head", "had not completed yet")
def asks_in_a_loop(loop, sock, finished):
    pieces = []

    def done(data):
        pieces.append(data)
        if b"\r\n\r\n" in b"".join(pieces):
            finished(b"".join(pieces))

    for _ in range(4):
        loop.q_recv(sock, done)


_shared = bytearray()


@wrong("04", "read_head", "global shared by every connection")
def one_global_buffer(loop, sock, finished):
    _shared.clear()

    def done(data):
        if not data:
            return finished(None)
        _shared.extend(data)
        if _shared.endswith(b"\r\n\r\n"):
            finished(bytes(_shared))
            _shared.clear()
        else:
            loop.q_recv(sock, done)

    loop.q_recv(sock, done)


@wrong("04", "read_head", "not written yet")
def read_head_stub(loop, sock, finished):
    raise NotImplementedError("Exercise: replace this line with your code")
