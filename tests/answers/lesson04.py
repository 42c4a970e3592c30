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
