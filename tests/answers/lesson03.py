"""echo_server (lesson 03)."""

import selectors
import select

from . import right, wrong


@right("03", "echo_server")
def with_selectors(listener, n):
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    came = still_here = 0
    while came < n or still_here:
        for key, _ in selector.select():
            sock = key.fileobj
            if sock is listener:
                client, _ = listener.accept()
                selector.register(client, selectors.EVENT_READ)
                came += 1
                still_here += 1
                if came == n:
                    selector.unregister(listener)
            else:
                data = sock.recv(1024)
                if data:
                    sock.sendall(data)
                else:
                    selector.unregister(sock)
                    sock.close()
                    still_here -= 1
    selector.close()


@right("03", "echo_server")
def with_a_set_and_a_timeout(listener, n):
    clients, accepted = set(), 0
    while accepted < n or clients:
        watch = list(clients) + ([listener] if accepted < n else [])
        for sock in select.select(watch, [], [], 1.0)[0]:
            if sock is listener:
                clients.add(listener.accept()[0])
                accepted += 1
                continue
            data = sock.recv(65536)
            if not data:
                clients.discard(sock)
                sock.close()
            else:
                sock.sendall(data)


def _select_loop(listener, n, timeout=None, close=True, on_eof=True):
    clients, accepted = [], 0
    while accepted < n or clients:
        watch = clients + ([listener] if accepted < n else [])
        for sock in select.select(watch, [], [], timeout)[0]:
            if sock is listener:
                clients.append(listener.accept()[0])
                accepted += 1
            else:
                data = sock.recv(4096)
                if data or not on_eof:
                    sock.sendall(data)
                else:
                    clients.remove(sock)
                    if close:
                        sock.close()


@wrong("03", "echo_server", "select\\(\\) with timeout 0 returns at once")
def select_with_timeout_zero(listener, n):
    _select_loop(listener, n, timeout=0)


@wrong("03", "echo_server", "recv\\(\\) returned b''.*called recv\\(\\) again", hangs=True)
def ignores_the_close(listener, n):
    _select_loop(listener, n, on_eof=False)


@wrong("03", "echo_server", "still open")
def never_closes(listener, n):
    _select_loop(listener, n, close=False)


@wrong("03", "echo_server", "blocked in recv\\(\\)")
def one_client_at_a_time(listener, n):
    for _ in range(n):
        client, _ = listener.accept()
        while data := client.recv(1024):
            client.sendall(data)
        client.close()


def _echo_until_empty(clients, listener=None, came=0):
    """Echo with select() until only the listener (if any) is left."""
    while len(clients) > (listener is not None) or not came:
        for sock in select.select(clients, [], [])[0]:
            if sock is listener:
                clients.append(listener.accept()[0])
                came += 1
                continue
            data = sock.recv(1024)
            if data:
                sock.sendall(data)
            else:
                clients.remove(sock)
                sock.close()


@wrong("03", "echo_server", "blocked in accept\\(\\)")
def accepts_everyone_first(listener, n):
    _echo_until_empty([listener.accept()[0] for _ in range(n)], came=n)


@wrong("03", "echo_server", "had returned already, after 1 of 4")
def stops_when_nobody_is_left(listener, n):
    _echo_until_empty([listener], listener)


@wrong("03", "echo_server", "not written yet")
def stub(listener, n):
    raise NotImplementedError("Exercise: replace this line with your code")
