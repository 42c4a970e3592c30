"""serve_forever (lesson 10)."""

import socket
import threading
from concurrent.futures import ThreadPoolExecutor

from . import right, wrong


@right("10", "serve_forever")
def with_select_for_the_stop(listener, handle, stop):
    import select

    threads = []
    while not stop.is_set():
        if select.select([listener], [], [], 0.1)[0]:
            sock, _ = listener.accept()
            thread = threading.Thread(target=handle, args=(sock,))
            thread.start()
            threads.append(thread)
    for thread in threads:
        thread.join()
    return threads


def _accept_loop(listener, handle, stop, join_each=False, join_at_end=True):
    listener.settimeout(0.2)
    threads = []
    while not stop.is_set():
        try:
            sock, _ = listener.accept()
        except socket.timeout:
            continue
        threads.append(threading.Thread(target=handle, args=(sock,)))
        threads[-1].start()
        if join_each:
            threads[-1].join()
    if join_at_end:
        for thread in threads:
            thread.join()
    return threads


@wrong("10", "serve_forever", "never called join\\(\\)|still running")
def does_not_join(listener, handle, stop):
    return _accept_loop(listener, handle, stop, join_at_end=False)


@wrong("10", "serve_forever", "one after another")
def handles_in_the_loop(listener, handle, stop):
    return _accept_loop(listener, handle, stop, join_each=True)


@wrong("10", "serve_forever", "non-blocking accept\\(\\) polled in a loop")
def polls_a_nonblocking_accept(listener, handle, stop):
    listener.setblocking(False)
    threads = []
    while not stop.is_set():
        try:
            sock, _ = listener.accept()
        except BlockingIOError:
            continue
        sock.setblocking(True)
        threads.append(threading.Thread(target=handle, args=(sock,)))
        threads[-1].start()
    for thread in threads:
        thread.join()
    return threads


@wrong("10", "serve_forever", "blocked in accept\\(\\)")
def no_timeout(listener, handle, stop):
    threads = []
    while not stop.is_set():
        sock, _ = listener.accept()
        threads.append(threading.Thread(target=handle, args=(sock,)))
        threads[-1].start()
    for thread in threads:
        thread.join()
    return threads


@wrong("10", "serve_forever", "should return the 20 threads")
def with_an_executor(listener, handle, stop):
    listener.settimeout(0.2)
    with ThreadPoolExecutor(32) as pool:
        while not stop.is_set():
            try:
                sock, _ = listener.accept()
            except socket.timeout:
                continue
            pool.submit(handle, sock)
    return []
