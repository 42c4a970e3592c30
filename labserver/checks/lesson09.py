"""Checks for lesson 09 (the project)."""

import socket
import threading
import time

from . import CheckFailed, call, expect, passed

CLIENTS, HOLD = 20, 0.3


def serve_forever(serve_forever):
    """The student's accept loop must overlap 20 slow connections, stop when
    told to, and join every thread it started."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()
    started, finished = [], []

    def handle(sock):
        started.append(time.perf_counter())
        time.sleep(HOLD)  # a slow client
        sock.close()
        finished.append(time.perf_counter())

    result = {}
    loop = threading.Thread(target=lambda: result.update(threads=call(serve_forever, listener, handle, stop)),
                            name="labserver-check-accept", daemon=True)
    errors = []
    loop.run = _capture(loop.run, errors)
    loop.start()
    clients = []
    try:
        begin = time.perf_counter()
        for _ in range(CLIENTS):
            clients.append(socket.create_connection(listener.getsockname()[:2], timeout=5))
        deadline = begin + CLIENTS * HOLD + 2
        while len(finished) < CLIENTS and time.perf_counter() < deadline and not errors:
            time.sleep(0.02)
    finally:
        stop.set()
        loop.join(5)
        for sock in clients:
            sock.close()
        listener.close()
    if errors:
        raise errors[0]
    expect(not loop.is_alive(), "serve_forever() did not return within 5 s of stop.set(): does accept() time out?")
    expect(len(finished) == CLIENTS, f"{CLIENTS} clients connected; {len(finished)} were handled")
    took = max(finished) - min(started)
    expect(took < CLIENTS * HOLD / 4,
           f"{CLIENTS} clients that take {HOLD} s each were served in {took:.1f} s: one after another, "
           f"not in threads ({HOLD} s expected)")
    threads = result.get("threads")
    expect(isinstance(threads, list) and len(threads) == CLIENTS,
           f"serve_forever() should return the {CLIENTS} threads it started, got {threads!r:.80}")
    expect(not any(t.is_alive() for t in threads), "some threads were still running: join them before returning")
    passed(f"{CLIENTS} slow clients served at once in {took:.2f} s, and the loop stops when told to")


def _capture(run, errors):
    def wrapper():
        try:
            run()
        except CheckFailed as error:  # shown by the check cell, not printed by a thread
            errors.append(error)
        except Exception as error:
            errors.append(CheckFailed(f"serve_forever() raised {type(error).__name__}: {error}"))
    return wrapper
