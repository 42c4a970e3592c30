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


# serve_echo (lesson 01, exercise 2): the iterative server from socket() up.

import os  # noqa: E402
import socket  # noqa: E402
import time  # noqa: E402
import threading  # noqa: E402


@right("01", "serve_echo")
def with_statements(n, ready):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        ready(listener)
        for _ in range(n):
            client, _address = listener.accept()
            with client:
                while data := client.recv(4096):
                    client.sendall(data)


@right("01", "serve_echo")
def close_by_hand_with_reuseaddr(n, ready):
    listener = socket.socket()
    if os.name != "nt":  # as socket.create_server() does: on Windows it would let others share the port
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)
    ready(listener)
    served = 0
    try:
        while served < n:
            conn, addr = listener.accept()
            try:
                while True:
                    chunk = conn.recv(1024)
                    if chunk == b"":
                        break
                    conn.sendall(chunk)
            finally:
                conn.close()
            served += 1
    finally:
        listener.close()


@right("01", "serve_echo")
def create_server_and_a_thread_per_client(n, ready):
    def echo(conn):
        with conn:
            while True:
                data = conn.recv(65536)
                if not data:
                    return
                conn.sendall(data)

    with socket.create_server(("127.0.0.1", 0)) as listener:
        ready(listener)
        threads = []
        for _ in range(n):
            conn, _ = listener.accept()
            threads.append(threading.Thread(target=echo, args=(conn,)))
            threads[-1].start()
        for thread in threads:
            thread.join()


@wrong("01", "serve_echo", "did not close the connection")
def forgets_to_close_the_client(n, ready):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        ready(listener)
        for _ in range(n):
            conn, _ = listener.accept()
            while data := conn.recv(4096):
                conn.sendall(data)


@wrong("01", "serve_echo", "One recv\\(\\) returns what has arrived so far")
def one_recv_per_client(n, ready):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        ready(listener)
        for _ in range(n):
            conn, _ = listener.accept()
            with conn:
                conn.sendall(conn.recv(4096))


@wrong("01", "serve_echo", "listens on 0.0.0.0")
def binds_every_interface(n, ready):
    with socket.socket() as listener:
        listener.bind(("", 0))
        listener.listen()
        ready(listener)
        for _ in range(n):
            conn, _ = listener.accept()
            with conn:
                while data := conn.recv(4096):
                    conn.sendall(data)


@wrong("01", "serve_echo", "serve_echo had returned already")
def serves_one_client(n, ready):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        ready(listener)
        conn, _ = listener.accept()
        with conn:
            while data := conn.recv(4096):
                conn.sendall(data)


@wrong("01", "serve_echo", "never waited: .* When a client closes, recv\\(\\) returns b'' at once", hangs=True)
def echoes_after_the_close(n, ready):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        ready(listener)
        for _ in range(n):
            conn, _ = listener.accept()
            with conn:
                while True:
                    conn.sendall(conn.recv(4096))


@wrong("01", "serve_echo", "did not return within", hangs=True)
def serves_for_ever(n, ready):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        ready(listener)
        while True:
            conn, _ = listener.accept()
            with conn:
                while data := conn.recv(4096):
                    conn.sendall(data)


@wrong("01", "serve_echo", "is the socket listening")
def ready_before_listen(n, ready):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        ready(listener)
        time.sleep(0.3)
        listener.listen()
        for _ in range(n):
            conn, _ = listener.accept()
            with conn:
                while data := conn.recv(4096):
                    conn.sendall(data)


@wrong("01", "serve_echo", "left its listening socket open")
def leaves_the_listener_open(n, ready):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    ready(listener)
    for _ in range(n):
        conn, _ = listener.accept()
        with conn:
            while data := conn.recv(4096):
                conn.sendall(data)
    return listener


@wrong("01", "serve_echo", "not written yet")
def stub_server(n, ready):
    raise NotImplementedError("Exercise: replace this line with your code")
