"""recv_exactly (lesson 01)."""

from . import right, wrong


@right("01", "recv_exactly")
def with_a_list_of_chunks(sock, n):
    chunks, got = [], 0
    while got < n:
        chunk = sock.recv(min(n - got, 4096))
        if chunk == b"":
            raise ConnectionResetError(f"closed after {got} bytes")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


@right("01", "recv_exactly")
def into_a_bytearray(sock, n):
    buffer = bytearray(n)
    view, got = memoryview(buffer), 0
    while got < n:
        count = sock.recv_into(view[got:], n - got)
        if count == 0:
            raise ConnectionError("peer closed")
        got += count
    return bytes(buffer)


@wrong("01", "recv_exactly", "recv\\(\\) returns what has arrived so far")
def one_recv(sock, n):
    return sock.recv(n)


@wrong("01", "recv_exactly", "Never return more than n")
def asks_for_n_each_time(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n)  # the classic: n, not n - len(data)
        if not chunk:
            raise ConnectionError
        data += chunk
    return data


@wrong("01", "recv_exactly", "called recv\\(\\) again .* times", hangs=True)
def ignores_the_close(sock, n):
    data = b""
    while len(data) < n:
        data += sock.recv(n - len(data))
    return data


@wrong("01", "recv_exactly", "expected ConnectionError")
def returns_what_it_has_on_close(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return data


@wrong("01", "recv_exactly", "did not take bytes|take bytes it did not return")
def buffered_file(sock, n):
    data = sock.makefile("rb").read(n)  # the file object reads ahead and keeps the rest
    if len(data) < n:
        raise ConnectionError
    return data


@wrong("01", "recv_exactly", "not written yet")
def stub(sock, n):
    raise NotImplementedError("Exercise: replace this line with your code")
