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


# nonblocking_echo_server: the same echo, with a client that reads nothing while it sends 1 MiB.


@right("03", "nonblocking_echo_server")
def with_a_bytes_dict_and_the_write_list(listener, n):
    clients, unsent, accepted = [], {}, 0
    while accepted < n or clients:
        readers = clients + ([listener] if accepted < n else [])
        writers = [sock for sock in clients if unsent[sock]]
        readable, writable, _ = select.select(readers, writers, [])
        for sock in readable:
            if sock is listener:
                client, _ = listener.accept()
                client.setblocking(False)
                clients.append(client)
                unsent[client] = b""
                accepted += 1
                continue
            try:
                data = sock.recv(65536)
            except BlockingIOError:
                continue
            if data:
                unsent[sock] += data
            else:
                clients.remove(sock)
                del unsent[sock]
                sock.close()
        for sock in writable:
            if sock in unsent:
                try:
                    unsent[sock] = unsent[sock][sock.send(unsent[sock]):]
                except BlockingIOError:
                    pass


@right("03", "nonblocking_echo_server")
def with_selectors_and_modify(listener, n):
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    came, here = 0, 0
    while came < n or here:
        for key, mask in selector.select():
            sock = key.fileobj
            if sock is listener:
                client, _ = listener.accept()
                client.setblocking(False)
                selector.register(client, selectors.EVENT_READ, bytearray())
                came += 1
                here += 1
                if came == n:
                    selector.unregister(listener)
                continue
            pending = key.data
            if mask & selectors.EVENT_READ:
                data = sock.recv(4096)
                if not data:
                    selector.unregister(sock)
                    sock.close()
                    here -= 1
                    continue
                pending += data
            if pending:
                try:
                    del pending[:sock.send(pending)]
                except BlockingIOError:
                    pass
            want = selectors.EVENT_READ | (selectors.EVENT_WRITE if pending else 0)
            if want != key.events:
                selector.modify(sock, want, pending)
    selector.close()


@wrong("03", "nonblocking_echo_server", "blocked in sendall\\(\\) to the client that was not reading")
def blocking_sendall_in_a_select_loop(listener, n):
    _select_loop(listener, n)


def _nonblocking_loop(listener, n, send, always_write=False, drop_on_close=True, on_eof=True):
    clients, unsent, accepted = [], {}, 0
    while accepted < n or clients:
        readers = clients + ([listener] if accepted < n else [])
        writers = [s for s in clients if always_write or unsent.get(s)]
        readable, writable, _ = select.select(readers, writers, [])
        for sock in readable:
            if sock is listener:
                client, _ = listener.accept()
                client.setblocking(False)
                clients.append(client)
                unsent[client] = b""
                accepted += 1
                continue
            data = sock.recv(65536)
            if data or not on_eof:
                unsent[sock] = send(sock, unsent[sock] + data)
            else:
                if drop_on_close:
                    clients.remove(sock)
                sock.close()
        for sock in writable:
            if sock.fileno() != -1 and unsent.get(sock):
                unsent[sock] = send(sock, unsent[sock])


def _send_properly(sock, data):
    try:
        return data[sock.send(data):]
    except BlockingIOError:
        return data


@wrong("03", "nonblocking_echo_server", "raised BlockingIOError.*call send\\(\\) once")
def nonblocking_but_sendall(listener, n):
    def send(sock, data):
        sock.sendall(data)
        return b""
    _nonblocking_loop(listener, n, send)


@wrong("03", "nonblocking_echo_server", "Bytes were lost")
def ignores_what_send_returns(listener, n):
    def send(sock, data):
        try:
            sock.send(data)
        except BlockingIOError:
            pass
        return b""
    _nonblocking_loop(listener, n, send)


@wrong("03", "nonblocking_echo_server", "write list while you have nothing to send")
def always_in_the_write_list(listener, n):
    _nonblocking_loop(listener, n, _send_properly, always_write=True)


@wrong("03", "nonblocking_echo_server", "still in a list you give select\\(\\)")
def closes_but_keeps_watching(listener, n):
    _nonblocking_loop(listener, n, _send_properly, drop_on_close=False)


@wrong("03", "nonblocking_echo_server", "recv\\(\\) returned b''.*called recv\\(\\) again", hangs=True)
def treats_b_empty_as_data(listener, n):
    _nonblocking_loop(listener, n, _send_properly, on_eof=False)


@wrong("03", "nonblocking_echo_server", "not written yet")
def nonblocking_stub(listener, n):
    raise NotImplementedError("Exercise: replace this line with your code")
