"""Experiments with real HTTP clients against a running server (lessons 01-07).

Where primitives.py plays with bare sockets, these functions act like the
lecture's users: one downloads a big file over a slow line while another just
wants a small page. Each returns plain data to print or plot, and closes every
connection it opens.

    with IterativeServer() as server:
        first_byte_while_busy(server.url)
    # {'download_s': 2.0, 'first_byte_s': 1.98, 'timed_out': False}
"""

import http.client
import socket
import threading
import time
from urllib.parse import urlsplit


def _connect(url, timeout):
    parts = urlsplit(url)
    return http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)


def download_slowly(url, path, rate=1_000_000, chunk=32 * 1024, timeout=30):
    """Download `path` reading at most `rate` bytes/s, like a phone on a bad
    network; return (bytes received, seconds)."""
    conn = _connect(url, timeout)
    start = time.perf_counter()
    received = 0
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        while data := response.read(chunk):
            received += len(data)
            # Sleep until the time this many bytes should have taken at `rate`.
            time.sleep(max(0.0, start + received / rate - time.perf_counter()))
    finally:
        conn.close()
    return received, time.perf_counter() - start


def time_to_first_byte(url, path="/", timeout=10):
    """Seconds until the first byte of the response to GET `path` arrives,
    or None if it did not arrive within `timeout` (the client gave up)."""
    conn = _connect(url, timeout)
    start = time.perf_counter()
    try:
        conn.request("GET", path)
        conn.sock.recv(1)  # blocks until the server starts to answer
        return time.perf_counter() - start
    except TimeoutError:
        return None
    finally:
        conn.close()


def first_byte_while_busy(url, big="/bytes/4000000", small="/", rate=2_000_000, timeout=10):
    """Client A downloads `big` slowly; meanwhile client B asks for `small`.
    How long does B wait for its first byte? (Lecture: "ugly to make everyone
    wait on the first user to finish".)"""
    result = {}

    def client_a():
        result["download_bytes"], result["download_s"] = download_slowly(url, big, rate)

    a = threading.Thread(target=client_a, name="client-A")
    a.start()
    time.sleep(0.2)  # let A's download get going first
    first_byte = time_to_first_byte(url, small, timeout)
    a.join()
    result["first_byte_s"] = first_byte
    result["timed_out"] = first_byte is None
    return result


def concurrent_get(url, path="/", clients=8, timeout=30):
    """`clients` users send GET `path` at the same moment, each on its own
    connection. Returns each one's response time in seconds (None if it timed
    out or failed) and the wall time until the last one finished: if the
    server overlaps them, the wall time is close to one response time; if it
    serves them one after another, it is close to their sum."""
    times = [None] * clients
    go = threading.Event()

    def user(i):
        conn = _connect(url, timeout)
        try:
            conn.connect()
            go.wait()
            start = time.perf_counter()
            conn.request("GET", path)
            conn.getresponse().read()
            times[i] = time.perf_counter() - start
        except OSError:
            pass  # stays None: the lesson's plot shows it as a failure
        finally:
            conn.close()

    users = [threading.Thread(target=user, args=(i,), name=f"user-{i}") for i in range(clients)]
    for thread in users:
        thread.start()
    time.sleep(0.05)  # everyone connected, then all send at once
    start = time.perf_counter()
    go.set()
    for thread in users:
        thread.join()
    return {"times": times, "wall_s": time.perf_counter() - start}


def send_raw(url, data, timeout=5):
    """Send raw bytes to the server and return every byte it answers until it
    closes the connection or goes quiet for `timeout` seconds: HTTP by hand."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as sock:
        sock.sendall(data)
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except TimeoutError:
            pass  # the server keeps the connection open: we have what it sent
    return received
