"""Checks for lesson 10 (the project): the accept loop of version 2.

serve_forever is given a watched listener and a handler that holds each
connection for a while. The check waits first with no client at all (a loop
that polls a non-blocking accept() shows up as CPU), then connects 20 slow
clients at once, sets `stop`, and looks, in the loop's own thread, at every
Thread.start() and Thread.join(): each handler thread must have been joined
before serve_forever returns.
"""

import socket
import threading
import time

from . import (SPINNING, CheckFailed, StudentCall, ThreadWatch, WatchedSocket, check, expect, hang_message,
               passed)

CLIENTS, HOLD = 20, 0.3
IDLE = 0.5  # seconds with nobody connecting, before the clients come
POLLS = 1000  # accept() or select() calls in IDLE seconds that only a loop that never sleeps makes
STOP_WITHIN = 2.0  # seconds serve_forever has to return once stop is set and its handlers are done


@check
def serve_forever(serve_forever):
    """The student's accept loop must overlap 20 slow connections, stop when
    told to, and join every thread it started."""
    listener = WatchedSocket(socket.create_server(("127.0.0.1", 0)))
    stop = threading.Event()
    started, finished = [], []
    lock = threading.Lock()

    def handle(sock):
        with lock:
            started.append(time.perf_counter())
        time.sleep(HOLD)  # a slow client
        sock.close()
        with lock:
            finished.append(time.perf_counter())

    watch = ThreadWatch()
    attempt = StudentCall(watch.run, (serve_forever, listener, handle, stop), "serve_forever()").start()
    clients = []
    try:
        time.sleep(IDLE)
        idle_share, polls = attempt.cpu_share(), listener.nothing_yet + listener.looked_at
        if not attempt.thread.is_alive():
            _ended_early(attempt)
        begin = time.perf_counter()
        for _ in range(CLIENTS):
            clients.append(socket.create_connection(listener.getsockname()[:2], timeout=5))
        deadline = begin + CLIENTS * HOLD + 2
        while len(finished) < CLIENTS and time.perf_counter() < deadline and attempt.thread.is_alive():
            time.sleep(0.02)
        stop.set()
        if not attempt.wait(HOLD + STOP_WITHIN):
            raise CheckFailed(hang_message(attempt, f"serve_forever() did not return within {STOP_WITHIN:g} s of "
                                                    f"stop.set(): does accept() time out, so that the loop looks "
                                                    f"at `stop` now and then?", [listener]))
    finally:
        stop.set()
        for sock in clients:
            sock.close()
        listener.close()
    attempt.raise_error("serve_forever")
    threads, alive, unjoined = attempt.result
    expect(len(finished) == CLIENTS, f"{CLIENTS} clients connected; {len(finished)} were handled")
    took = max(finished) - min(started)
    expect(took < CLIENTS * HOLD / 4,
           f"{CLIENTS} clients that take {HOLD} s each were served in {took:.1f} s: one after another, "
           f"not in threads ({HOLD} s expected)")
    expect((idle_share is None or idle_share < SPINNING) and polls < POLLS,
           f"with nobody connecting for {IDLE} s, your loop asked the listener {polls:,} times and kept a CPU core "
           f"{idle_share or 0:.0%} busy: a non-blocking accept() polled in a loop never sleeps. Give the listener "
           f"a timeout (listener.settimeout(0.2)) and catch socket.timeout")
    expect(not alive, f"serve_forever returned while {len(alive)} of its threads were still running: "
                      f"join() each one before you return")
    expect(not unjoined, f"serve_forever never called join() on {len(unjoined)} of its threads: join() each "
                         f"one before you return")
    expect(isinstance(threads, list) and len(threads) == CLIENTS and
           {id(t) for t in threads} == {id(t) for t in watch.started if t is not None},
           f"serve_forever() should return the {CLIENTS} threads it started, got {threads!r:.80}")
    passed(f"{CLIENTS} slow clients served at once in {took:.2f} s, the loop sleeps while nobody comes, "
           f"stops when told to, and joins every thread")


def _ended_early(attempt):
    attempt.raise_error("serve_forever")
    raise CheckFailed(f"serve_forever() returned after {IDLE} s although `stop` was not set: accept connections "
                      f"until stop.is_set()")
