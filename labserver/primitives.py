"""The first lessons' experiments: blocking, non-blocking, select() and callbacks.

Each function below is one small experiment from the lecture, short enough to
read in full (`primitives.time_blocking_recv??` in a notebook). It makes its
own connected sockets (socket.socketpair(): two ends of one connection, no
network needed), lets a helper thread play the other side, measures, closes
every socket, and returns plain data to print or plot:

    from labserver import primitives
    primitives.time_blocking_recv(delay=0.5)
    # {'data': b'hello', 'blocked_s': 0.5003, 'cpu_s': 0.00004}

CPU times are those of the calling thread (time.thread_time()): in a notebook
kernel, other threads use CPU too, and we only want to see what recv() costs.
"""

import errno
import select
import selectors
import socket
import threading
import time


def send_later(sock, delay, data=b"hello"):
    """The other side of the connection: a thread that sends `data` after `delay` s."""
    timer = threading.Timer(delay, sock.send, [data])
    timer.start()
    return timer


def time_blocking_recv(delay=0.5):
    """A blocking recv() waits for the data, and the OS puts us to sleep meanwhile."""
    sock, peer = socket.socketpair()
    timer = send_later(peer, delay)
    try:
        start, cpu_start = time.perf_counter(), time.thread_time()
        data = sock.recv(1024)  # blocks until the other thread sends
        blocked, cpu = time.perf_counter() - start, time.thread_time() - cpu_start
    finally:
        timer.join()
        sock.close()
        peer.close()
    return {"data": data, "blocked_s": blocked, "cpu_s": cpu}


def nonblocking_recv_demo():
    """A non-blocking recv() with no data returns at once, with an exception."""
    sock, peer = socket.socketpair()
    try:
        sock.setblocking(False)
        start = time.perf_counter()
        try:
            sock.recv(1024)
        except BlockingIOError as error:  # "no data yet, try again later"
            raised, code = type(error).__name__, error.errno
        elapsed = time.perf_counter() - start
        peer.send(b"hello")
        data = sock.recv(1024)  # now there is data: it is returned at once
    finally:
        sock.close()
        peer.close()
    return {"raised": raised, "errno": code, "errno_name": errno.errorcode[code],
            "elapsed_s": elapsed, "then_got": data}


def busy_wait_recv(delay=0.5):
    """Wait for data by calling a non-blocking recv() again and again: it burns CPU."""
    sock, peer = socket.socketpair()
    sock.setblocking(False)
    timer = send_later(peer, delay)
    wasted = 0
    try:
        start, cpu_start = time.perf_counter(), time.thread_time()
        while True:
            try:
                data = sock.recv(1024)
                break
            except BlockingIOError:
                wasted += 1  # nothing yet: ask again, at once
        waited, cpu = time.perf_counter() - start, time.thread_time() - cpu_start
    finally:
        timer.join()
        sock.close()
        peer.close()
    return {"data": data, "waited_s": waited, "cpu_s": cpu, "wasted_iterations": wasted}


def select_ready(n=5, ready=(1, 3), timeout=0.1):
    """select() on n sockets returns exactly those with data waiting (or none
    after `timeout` seconds)."""
    pairs = [socket.socketpair() for _ in range(n)]
    try:
        for i in ready:
            pairs[i][1].send(b"hello")  # data waits in socket i
        socks = [sock for sock, _ in pairs]
        start = time.perf_counter()
        readable, _, _ = select.select(socks, [], [], timeout)  # sleeps until one is ready
        elapsed = time.perf_counter() - start
    finally:
        for sock, peer in pairs:
            sock.close()
            peer.close()
    return {"watched": list(range(n)), "sent_to": sorted(ready),
            "ready": sorted(socks.index(sock) for sock in readable), "elapsed_s": elapsed}


def callback_recv(delay=0.2):
    """A minimal event loop: register a callback for a socket, do other work,
    and the loop calls the callback with the data when it arrives."""
    events = []
    selector = selectors.DefaultSelector()
    sock, peer = socket.socketpair()

    def on_data(ready_sock):  # runs only once data is there: recv() will not block
        events.append(f"callback got {ready_sock.recv(1024)!r}")
        selector.unregister(ready_sock)  # nothing more to wait for

    timer = send_later(peer, delay)
    try:
        selector.register(sock, selectors.EVENT_READ, on_data)
        events.append("registered")  # register() returns at once: we are free
        events.append("other work")
        while selector.get_map():  # the event loop: runs while someone waits
            for key, _ in selector.select():  # sleeps until a socket is ready
                key.data(key.fileobj)  # the callback registered with the socket
    finally:
        timer.join()
        selector.close()
        sock.close()
        peer.close()
    return {"events": events}


def two_clients_blocking(delay=0.3):
    """The lecture's "how about two sockets?": client 2 sends first, but a
    blocking recv() on client 1 keeps us from serving client 2 for `delay` s."""

    def serve(socks, log):
        for number, sock in enumerate(socks, 1):
            sock.recv(1024)  # blocks until this client sends, however long others wait
            log(f"served client {number}")

    return two_clients(serve, delay)


def two_clients_select(delay=0.3):
    """The same two clients, served with select(): whoever is ready first goes first."""

    def serve(socks, log):
        waiting = list(socks)
        while waiting:
            readable, _, _ = select.select(waiting, [], [])  # sleeps until one is ready
            for sock in readable:
                sock.recv(1024)  # ready: returns at once
                log(f"served client {socks.index(sock) + 1}")
                waiting.remove(sock)

    return two_clients(serve, delay)


def two_clients(serve, delay):
    """Client 2 sends at once, client 1 after `delay` s; serve(socks, log) serves both."""
    (sock1, peer1), (sock2, peer2) = socket.socketpair(), socket.socketpair()
    start = time.perf_counter()
    timeline = []  # (seconds since start, what happened)

    def log(event):
        timeline.append((round(time.perf_counter() - start, 3), event))

    def client1_sends():
        log("client 1 sent")  # before send(): the server may log right after it
        peer1.send(b"from client 1")

    timer = threading.Timer(delay, client1_sends)
    timer.start()
    try:
        log("client 2 sent")
        peer2.send(b"from client 2")
        serve([sock1, sock2], log)
    finally:
        timer.join()
        for sock in (sock1, peer1, sock2, peer2):
            sock.close()
    at = {event: seconds for seconds, event in timeline}
    return {"timeline": timeline, "client2_waited_s": at["served client 2"] - at["client 2 sent"]}
