"""Why a thread per connection has a long latency tail in CPython: the GIL.

Measures, with wrk at 64 keep-alive clients, the smallest thread-per-connection
HTTP server there is (recv, some pure-Python work, sendall: no labserver code)
and labserver's thread pool in miniature (one selector thread queues ready
sockets for 16 workers). Only the Python work per request changes between rows.

    .venv/bin/python benchmarks/gil_tail.py            # needs wrk
    .venv/bin/python benchmarks/gil_tail.py --work 0,20,60 --clients 64

What it shows: with no work, both answer within a few ms. As the work per
request grows towards what a real server does (labserver spends ~30-60 us of
Python per request), the median stays low, but the p99 of the thread per
connection grows far faster: every thread whose recv() returns must take the
GIL back, and the one that just let go often wins that race again, so some
threads lose it many times in a row. A pool whose ready connections wait in
a first-in, first-out queue keeps its tail short with the same GIL.
"""

import argparse
import queue
import selectors
import socket
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from labserver.children import Child  # noqa: E402  (after the path above)
from labserver.load.wrk import run_wrk, wrk_path  # noqa: E402

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 1024\r\n\r\n" + b"x" * 1024
LOOPS_PER_US = 30  # measured by calibrate() in the server process


def burn(us):
    for _ in range(us * LOOPS_PER_US):
        pass


def calibrate():
    global LOOPS_PER_US
    start = time.perf_counter()
    for _ in range(3_000_000):
        pass
    LOOPS_PER_US = max(1, round(3_000_000 / ((time.perf_counter() - start) * 1e6)))


def thread_per_connection(listener, work_us):
    def serve(sock):
        with sock:
            try:
                while sock.recv(65536):  # one small request per recv, as wrk sends them
                    burn(work_us)
                    sock.sendall(RESPONSE)
            except OSError:
                pass  # wrk resets its connections when it stops

    while True:
        sock, _ = listener.accept()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=serve, args=(sock,), daemon=True).start()


def selector_and_pool(listener, work_us, workers=16):
    """labserver's thread pool in miniature: one thread waits for every socket
    at once and queues the ready ones; `workers` threads take them first in,
    first out, answer, and hand them back."""
    selector = selectors.DefaultSelector()
    ready, returned = queue.SimpleQueue(), queue.SimpleQueue()
    wake_recv, wake_send = socket.socketpair()
    selector.register(listener, selectors.EVENT_READ, "accept")
    selector.register(wake_recv, selectors.EVENT_READ, "wake")

    def worker():
        while True:
            sock = ready.get()
            try:
                if not sock.recv(65536):
                    sock.close()
                    continue
                burn(work_us)
                sock.sendall(RESPONSE)
            except OSError:
                sock.close()
                continue
            returned.put(sock)
            wake_send.send(b"x")

    for _ in range(workers):
        threading.Thread(target=worker, daemon=True).start()
    while True:
        for key, _ in selector.select():
            if key.data == "accept":
                sock, _ = listener.accept()
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                selector.register(sock, selectors.EVENT_READ)
            elif key.data == "wake":
                wake_recv.recv(65536)
            else:
                selector.unregister(key.fileobj)  # a worker owns it now
                ready.put(key.fileobj)
        while not returned.empty():
            selector.register(returned.get(), selectors.EVENT_READ)


SERVERS = {"thread-per-connection": thread_per_connection, "selector+pool": selector_and_pool}


def serve_main(kind, work_us, port):
    calibrate()
    listener = socket.create_server(("127.0.0.1", port), backlog=1024)
    SERVERS[kind](listener, work_us)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", default="0,10,30,60", help="microseconds of Python per request (list)")
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--duration", type=int, default=3, help="seconds per point")
    parser.add_argument("--serve", nargs=3, metavar=("KIND", "WORK_US", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        kind, work_us, port = args.serve
        return serve_main(kind, int(work_us), int(port))
    if wrk_path() is None:
        parser.exit(2, "gil_tail.py: wrk is not installed (apt-get install wrk)\n")
    try:
        works = [int(w) for w in args.work.split(",")]
    except ValueError:
        parser.exit(2, f"gil_tail.py: --work must be whole numbers of microseconds, got {args.work!r}\n")
    print(f"Python {sys.version.split()[0]}, {args.clients} keep-alive clients, wrk -t2, {args.duration} s per point")
    print(f"{'server':<24}{'work us':>8}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}")
    for work_us in works:
        for kind in SERVERS:
            port = free_port()
            with Child([sys.executable, __file__, "--serve", kind, work_us, port]) as server:
                server.wait_for_port(port)
                result = run_wrk(f"http://127.0.0.1:{port}/", args.clients, args.duration, threads=2)
            print(f"{kind:<24}{work_us:>8}{result['rps']:>10,.0f}{result['p50_ms']:>9.2f}{result['p99_ms']:>9.1f}",
                  flush=True)


if __name__ == "__main__":
    main()
