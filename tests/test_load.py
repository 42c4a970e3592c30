"""The load generator measures what it claims, on servers whose answer we know.

Tiny in-test servers (a thread per connection, a fixed behaviour each) make
the expected numbers exact: a 50 ms delay with 4 clients is at most 80 req/s
with a median of 50 ms; a fixed body makes Mbps a multiplication; a server
that never answers one connection must show up in the fairness figures; a
closed port, a reset and a silence must be counted as errors of their kind.
Then the real thing: launch() and sweep() against a labserver model, with
psutil checking that nothing is left running afterwards.
"""

import importlib.util
import json
import math
import os
import select
import socket
import struct
import signal
import subprocess
import sys
import threading
import time

import psutil
import pytest

from labserver import DEMO_SITE, ThreadPoolServer
from labserver.cli import main as cli_main
from labserver.load import (COLUMNS, WORKLOADS, LaunchedServer, Result, WorkloadError, jain_index,
                            launch, load_results, parse_workload, parse_wrk, percentile, profile, run,
                            save_results, sweep)
from labserver.load.commands import choose_models
from labserver.load.engine import Engine
from labserver.load.generator import make_config
from labserver.load.metrics import latency_bucket
from labserver.servers import MODELS, ServerError

HAVE_WRK = any(os.access(os.path.join(d, "wrk"), os.X_OK) for d in os.environ.get("PATH", "").split(os.pathsep))
TWO_PINNABLE_CORES = hasattr(os, "sched_getaffinity") and len(os.sched_getaffinity(0)) >= 2

# ------------------------------------------------------------- tiny servers


def response(body=b"ok", status=b"200 OK", extra=b""):
    return b"HTTP/1.1 " + status + b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n" + extra + b"\r\n" + body


class TinyServer:
    """A thread per connection; answer(request, connection_number) returns the
    bytes to send, None to stay silent, or "reset" to send a TCP reset."""

    def __init__(self, answer):
        self.answer = answer
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=1024)
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/"
        self.accepted = 0
        self.connections = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self.accept_forever, daemon=True)
        self.thread.start()

    def accept_forever(self):
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return  # closed by stop()
            with self.lock:
                number = self.accepted
                self.accepted += 1
                self.connections.append(sock)
            threading.Thread(target=self.serve, args=(sock, number), daemon=True).start()

    def serve(self, sock, number):
        buffered = b""
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    return
                buffered += data
                while b"\r\n\r\n" in buffered:
                    request, buffered = buffered.split(b"\r\n\r\n", 1)
                    reply = self.answer(request, number)
                    if reply == "reset":
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                        return
                    if isinstance(reply, tuple):  # (bytes, "close"): send, then close
                        sock.sendall(reply[0])
                        return
                    if reply is not None:
                        sock.sendall(reply)
                    if b"connection: close" in request.lower():
                        return
        except OSError:
            pass
        finally:
            sock.close()

    def stop(self):
        self.listener.close()
        with self.lock:
            for sock in self.connections:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


@pytest.fixture
def tiny():
    servers = []

    def start(answer):
        server = TinyServer(answer)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def our_children():
    """Processes we started and that still exist (multiprocessing's resource
    tracker is expected: it lives as long as this process)."""
    children = []
    for child in psutil.Process().children(recursive=True):
        try:
            if "resource_tracker" not in " ".join(child.cmdline()):
                children.append(child)
        except psutil.NoSuchProcess:
            pass
    return children


def wait_no_children(timeout=5.0):
    deadline = time.monotonic() + timeout
    while our_children() and time.monotonic() < deadline:
        time.sleep(0.05)
    return our_children()


# ------------------------------------------------------------ known numbers


def test_fixed_delay_gives_latency_and_rate(tiny):
    def slow(request, number):
        time.sleep(0.050)
        return response()

    server = tiny(slow)
    result = run(server.url, clients=4, duration=1.0, warmup=0.1)
    assert result.errors == 0
    assert 48 <= result.p50_ms <= 75  # 50 ms plus scheduling on a busy machine
    assert result.p90_ms >= result.p50_ms and result.max_ms >= result.p99_ms >= result.p90_ms
    # 4 clients, each at most one response per 50 ms: 80 req/s is the ceiling.
    assert 0.6 * 80 <= result.rps <= 80 * 1.03
    assert result.requests == sum(result.per_client_requests)
    assert result.concurrent_max == 4 and result.concurrent_source == "client"
    assert result.fairness > 0.95
    assert 45 <= result.max_gap_ms < 500


def test_fixed_body_gives_mbps(tiny):
    size = 100_000
    server = tiny(lambda request, number: response(b"x" * size))
    result = run(server.url, clients=2, duration=0.5)
    assert result.requests > 10 and result.errors == 0
    # Bytes count as they arrive: the finished bodies, and at most a body per
    # client still under way when the clock stopped (or begun before it started).
    assert abs(result.bytes - result.requests * size) <= 2 * size
    assert result.mbps == pytest.approx(result.bytes * 8 / result.duration_s / 1e6, rel=1e-9)
    assert result.mbps_wire > result.mbps  # heads count on the wire, not in the payload
    assert abs(result.duration_s - 0.5) < 0.05


def test_chunked_responses_are_framed(tiny):
    chunked = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n")
    server = tiny(lambda request, number: chunked)
    result = run(server.url, clients=1, requests=20)
    assert result.requests == 20 and result.errors == 0
    assert result.bytes == 20 * len(b"hello world")


def test_a_body_without_length_runs_to_the_close(tiny):
    # RFC 9112 6.3: no Content-Length, no chunking: the body ends when the server closes.
    server = tiny(lambda request, number: (b"HTTP/1.1 200 OK\r\n\r\nhello", "close"))
    result = run(server.url, clients=1, requests=5, duration=5)
    assert result.requests == 5 and result.errors == 0 and result.bytes == 5 * len(b"hello")


@pytest.mark.parametrize("portable", [False, True])
def test_epoll_and_selectors_paths_frame_alike(tiny, portable):
    # Linux waits with epoll directly; portable=True takes the selectors path
    # that macOS and Windows always take. Same responses, same counts.
    interim = b"HTTP/1.1 100 Continue\r\n\r\n" + response(b"abc")
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    cases = [(response(b"abc"), True), (interim, True), (chunked, True),
             (response(b"abc", extra=b"Connection: close\r\n"), False)]
    for answer, keep_alive in cases:
        server = tiny(lambda request, number, answer=answer: answer)
        config = make_config(server.url, 3, keep_alive, None, 10.0)
        engine = Engine(config["family"], tuple(config["address"]), config["requests"], config["sequence"],
                        3, keep_alive, portable=portable)
        expected = "Selector" if portable or not hasattr(select, "epoll") else "Epoll"
        assert type(engine.waiter).__name__ == expected
        try:
            assert engine.connect_all(5.0) == 3
            report = engine.run(requests=30)
        finally:
            engine.close()
        assert report["requests"] == 30 and sum(report["errors"].values()) == 0, answer
        assert report["bytes"] == 30 * 3


def test_a_repeated_head_is_reused_and_a_different_one_is_parsed(tiny):
    # The engine keeps the last head it parsed: the same head again skips the
    # parsing. Heads that differ only in Content-Length must never be taken
    # for one another, whether the body comes in one recv or in many.
    sizes = [10, 10, 100_000, 10, 100_000, 100_000, 7]
    served = []

    def answer(request, number):
        served.append(sizes[len(served) % len(sizes)])
        return response(b"x" * served[-1])

    server = tiny(answer)
    result = run(server.url, clients=1, requests=50)
    assert result.requests == 50 and result.errors == 0
    assert result.bytes == sum(sizes[i % len(sizes)] for i in range(50))


def test_a_head_split_over_two_recvs_is_not_completed_by_old_bytes():
    # The receive buffer is reused: after a whole response, its bytes are
    # still there beyond what the next recv() returns. A head that arrives
    # in two pieces must not be matched against those leftovers.
    sizes = [100, 1000, 1000]  # the later heads differ from the first after byte 10
    listener = socket.create_server(("127.0.0.1", 0))

    def serve():
        sock, _ = listener.accept()
        with sock:
            for number, size in enumerate(sizes):
                if not sock.recv(65536):
                    return
                whole = response(b"x" * size)
                if number == 0:
                    sock.sendall(whole)
                else:  # the first bytes of the head, a pause, the rest
                    sock.sendall(whole[:10])
                    time.sleep(0.05)
                    sock.sendall(whole[10:])

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        result = run(f"http://127.0.0.1:{listener.getsockname()[1]}/", clients=1, requests=3, duration=3,
                     timeout=1)  # the duration bounds a run that went wrong
    finally:
        listener.close()
    assert result.requests == 3 and result.errors == 0 and result.bytes == sum(sizes)


def test_request_count_and_new_connection_per_request(tiny):
    server = tiny(lambda request, number: response(extra=b"Connection: close\r\n"))
    result = run(server.url, clients=3, requests=60, keep_alive=False)
    assert result.requests == 60 and result.errors == 0
    assert server.accepted >= 60  # one connection per request (plus those open at the end)


def test_progress_counts_the_bytes_of_downloads_still_under_way(tiny):
    # 20 MB in 64 KiB pieces, 20 ms apart: no download finishes within the
    # run, yet every byte that arrived is progress, and fairness has data.
    piece, pieces = 64 * 1024, 320

    class Trickle(TinyServer):
        def serve(self, sock, number):  # one request, answered piece by piece
            try:
                sock.recv(65536)
                sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (piece * pieces))
                for _ in range(pieces):
                    sock.sendall(b"x" * piece)
                    time.sleep(0.02)
            except OSError:
                pass
            finally:
                sock.close()

    server = Trickle(answer=None)
    try:
        result = run(server.url, clients=3, duration=0.8, timeout=30)
    finally:
        server.stop()
    assert result.requests == 0 and result.errors == 0
    assert result.bytes >= 3 * 20 * piece  # at least 20 pieces each in 0.8 s
    assert result.mbps > 0 and result.slowest_client_mbps > 0
    assert result.fairness > 0.9 and result.max_gap_ms < 500
    assert result.unanswered == 3  # all three downloads still waiting for their last byte


# ------------------------------------------------------------- open loop


def ten_ms(request, number):
    time.sleep(0.010)
    return response()


def run_unhindered(*args, attempts=3, **kwargs):
    """run(), again (up to `attempts` times) while the generator reports that it
    was kept from running: on a machine busy with other work its figures are
    the scheduler's. The last attempt must be unhindered."""
    for _ in range(attempts):
        result = run(*args, **kwargs)
        if not result.generator_limited:
            return result
    raise AssertionError(f"the generator was the limit {attempts} times in a row: {result}")


@pytest.mark.skipif(not hasattr(signal, "SIGSTOP"), reason="no SIGSTOP on Windows: the pause cannot be made")
def test_a_generator_kept_from_running_says_so(tiny):
    # The generator process is paused for 0.6 s of a 1.5 s run: every latency
    # of that time is the pause, not the server, and the result must say so.
    server = tiny(ten_ms)
    pauser = subprocess.Popen([sys.executable, "-c", "import os, signal, sys, time\n"
                               "pid = int(sys.argv[1]); time.sleep(0.5); os.kill(pid, signal.SIGSTOP)\n"
                               "time.sleep(0.6); os.kill(pid, signal.SIGCONT)", str(os.getpid())])
    try:
        result = run(server.url, clients=2, duration=1.5, processes=0)
    finally:
        pauser.wait(10)
    assert result.generator_limited and result.stalls >= 1, result


def test_open_loop_below_capacity_sees_the_service_time(tiny):
    # 4 connections x 10 ms: capacity about 400 req/s; ask for a quarter of it.
    server = tiny(ten_ms)
    result = run_unhindered(server.url, clients=4, rate=100, duration=1.0, warmup=0.1)
    assert result.rate == 100 and result.errors == 0
    assert 90 <= result.sent_rps <= 110 and 90 <= result.rps <= 110  # the offered rate, kept
    assert 9.5 <= result.p50_ms <= 30, result  # the service time, plus a busy machine's scheduling
    assert result.unanswered <= 4 and not result.generator_limited


def test_open_loop_above_capacity_shows_the_queue_growing(tiny):
    # Twice the capacity: every 10 ms a connection falls another request
    # behind, and each latency counts from when its request was due, so the
    # longer the run, the longer the queue, and the latencies with it.
    server = tiny(ten_ms)
    short = run_unhindered(server.url, clients=4, rate=800, duration=0.5, warmup=0.1)
    long = run_unhindered(server.url, clients=4, rate=800, duration=1.5, warmup=0.1)
    for result in (short, long):
        assert result.sent_rps < 0.75 * 800 and result.p50_ms > 50, result
        assert result.unanswered > 100  # offered, never answered: they count too
        assert not result.generator_limited  # the server is the limit, not the generator
    assert long.p50_ms > 2 * short.p50_ms and long.max_ms > 2 * short.max_ms, (short, long)


def test_open_loop_flags_a_rate_the_generator_could_not_keep():
    # The generator runs in this process (processes=0); a thread here that
    # hogs the GIL for 50 ms at a time keeps it from sending on time, while
    # the server (another process) answers at once: the generator wakes up
    # late and sends late, and the result says the rate was not kept.
    with launch("select") as server:
        url = server.url + "bytes/10"
        calm = run(url, clients=8, rate=400, duration=0.8, processes=0)
        hogging = threading.Event()

        def hog():
            while not hogging.is_set():
                sum(range(10_000))

        interval = sys.getswitchinterval()
        thread = threading.Thread(target=hog)
        sys.setswitchinterval(0.05)
        thread.start()
        try:
            starved = run(url, clients=8, rate=400, duration=0.8, processes=0)
        finally:
            hogging.set()
            thread.join()
            sys.setswitchinterval(interval)
    assert not calm.generator_limited, calm
    # Late sends on free connections, or late wake-ups: either says the generator was behind.
    assert starved.generator_limited and starved.late + starved.stalls > 0, starved
    assert starved.p99_ms > calm.p99_ms  # the lateness is in the latencies too: counted from when due


def test_open_loop_with_a_new_connection_per_request(tiny):
    server = tiny(lambda request, number: response(extra=b"Connection: close\r\n"))
    result = run(server.url, clients=2, rate=100, duration=0.6, keep_alive=False)
    assert result.errors == 0 and 90 <= result.rps <= 110  # the offered 100/s
    assert server.accepted >= result.requests
    assert result.p50_ms < 50


def test_open_loop_rate_must_be_positive(tiny):
    server = tiny(lambda request, number: response())
    for rate in (0, -5):
        with pytest.raises(ValueError, match="rate"):
            run(server.url, rate=rate, duration=0.1)


def test_a_stalled_client_shows_in_fairness(tiny):
    # The first connection accepted never gets an answer; the others are served at once.
    server = tiny(lambda request, number: None if number == 0 else response())
    result = run(server.url, clients=4, duration=0.8, timeout=30)
    assert result.requests > 100
    assert result.slowest_client_rps == 0
    assert sorted(result.per_client_requests)[0] == 0
    assert result.fairness < 0.8  # three equal clients and one at zero: 0.75
    assert result.max_gap_ms >= 0.95 * result.duration_s * 1000
    assert result.errors == 0  # stalled, not timed out yet


def test_a_closed_port_gives_refused_errors():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nobody listens once it is closed
    result = run(f"http://127.0.0.1:{port}/", clients=2, duration=0.5)
    assert result.errors_refused > 0 and result.errors == result.errors_refused
    assert result.requests == 0 and result.rps == 0
    assert result.p50_ms is None and result.fairness is None


def test_resets_timeouts_and_bad_responses_are_counted(tiny):
    resetting = tiny(lambda request, number: "reset")
    result = run(resetting.url, clients=2, duration=0.4)
    assert result.errors_reset > 0 and result.requests == 0

    silent = tiny(lambda request, number: None)
    result = run(silent.url, clients=2, duration=0.7, timeout=0.2)
    assert result.errors_timeout > 0 and result.requests == 0

    garbage = tiny(lambda request, number: b"SPAM 42\r\n\r\n")
    result = run(garbage.url, clients=1, duration=0.3)
    assert result.errors_bad > 0 and result.requests == 0

    missing = tiny(lambda request, number: response(b"no", b"404 Not Found"))
    result = run(missing.url, clients=1, duration=0.3)
    assert result.errors_bad > 0 and result.requests == 0


def test_many_clients_use_worker_processes():
    # An event loop, not TinyServer's thread per connection: with 220 threads
    # the GIL's unfairness can starve one of them for longer than the run
    # (see benchmarks/gil_tail.py), and this test is about the generator.
    from labserver.limits import fit_clients, usable_cpus

    clients, _ = fit_clients(220, in_one_process=True)  # 256 open files (a Mac, a pod): fewer clients
    with MODELS["callbacks"]() as server:
        result = run(server.url + "bytes/100", clients=clients, duration=0.8, warmup=0.5)
    if usable_cpus() >= 2:
        assert result.client_processes >= 2
    assert len(result.per_client_requests) == clients
    assert min(result.per_client_requests) > 0  # every client made progress
    assert result.errors == 0
    assert result.concurrent_max == clients
    assert result.client_cpu_pct > 0
    assert wait_no_children() == []


def test_server_cpu_memory_and_connections_by_pid():
    with launch("threadpool") as server:
        result = run(server.url + "bytes/1000", clients=4, duration=0.5, pid=server.pid)
    assert result.errors == 0 and result.requests > 0
    assert result.cpu_pct is not None and result.cpu_pct > 0
    assert result.rss_mb is not None and 5 < result.rss_mb < 1000
    assert result.concurrent_source == "server" and result.concurrent_max == 4


@pytest.mark.skipif("iterative" not in MODELS, reason="the iterative model is not registered")
def test_the_server_side_count_sees_one_connection_at_a_time():
    # Every client's connect() succeeds (the kernel queues them), but the
    # iterative server holds one connection: only its file descriptors say so.
    with launch("iterative") as server:
        result = run(server.url + "bytes/100", clients=4, duration=0.5, pid=server.pid, timeout=30)
    assert result.concurrent_source == "server" and result.concurrent_max == 1
    assert result.fairness == pytest.approx(0.25, abs=0.05)


def test_model_names_are_read_when_used(monkeypatch):
    monkeypatch.setitem(MODELS, "late-model", object)
    assert "late-model" in choose_models("all")
    assert choose_models("late-model") == ["late-model"]
    with pytest.raises(ValueError, match="late-model"):
        choose_models("nope")


# ------------------------------------------------------------ /block

def batch_seconds(port, clients, path):
    """`clients` connections each send one request for `path` at the same
    moment; the seconds until every one of them has its whole answer."""
    socks = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(clients)]
    try:
        request = f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
        start = time.monotonic()
        for sock in socks:
            sock.sendall(request)
        for sock in socks:
            reply = b""
            while data := sock.recv(4096):  # Connection: close: the answer ends with the connection
                reply += data
            sock.close()  # at once: a server may wait for our side to close before it frees a thread
            assert reply.startswith(b"HTTP/1.1 200 "), reply
        return time.monotonic() - start
    finally:
        for sock in socks:
            sock.close()


BLOCK_CLIENTS = 6


@pytest.mark.parametrize("name", ["select", "callbacks", "coroutines", "asyncio"])
def test_block_stalls_an_event_loop(name):
    # One thread runs every handler: six blocking 100 ms calls take 6 x 100 ms.
    with MODELS[name](port=0) as server:
        took = batch_seconds(server.port, BLOCK_CLIENTS, "/block?ms=100")
        sleeping = batch_seconds(server.port, BLOCK_CLIENTS, "/sleep?ms=100")
    assert took >= 0.95 * BLOCK_CLIENTS * 0.100, f"{name}: {took:.2f} s, the calls overlapped"
    assert sleeping < took / 2, f"{name}: /sleep took {sleeping:.2f} s, /block {took:.2f} s"  # a timer, not a stall


@pytest.mark.parametrize("name", ["threads", "pool", "threadpool"])
def test_block_overlaps_up_to_the_pool_size(name):
    # Two threads: six blocking calls take ceil(6 / 2) = 3 rounds of 100 ms.
    with MODELS[name](port=0, workers=2) as server:
        took = batch_seconds(server.port, BLOCK_CLIENTS, "/block?ms=100")
    rounds = math.ceil(BLOCK_CLIENTS / 2)
    assert took >= 0.95 * rounds * 0.100, f"{name}: {took:.2f} s, more than 2 calls overlapped"
    assert took < (rounds + 1.5) * 0.100, f"{name}: {took:.2f} s for {rounds} rounds of 100 ms"


def test_block_is_bounded_like_sleep():
    from labserver.app import make_app
    from labserver.app.workloads import MAX_SLEEP_MS
    from labserver.protocol import Request

    app = make_app(DEMO_SITE)

    def get(query):
        return app(Request("GET", f"/block?{query}", (1, 1), [], path="/block", query=query))

    for query in ("", "ms=", "ms=-1", "ms=1e3", "ms=abc", f"ms={MAX_SLEEP_MS + 1}"):
        assert get(query).status == 400, query
    started = time.monotonic()
    response = get("ms=30")
    assert response.status == 200 and time.monotonic() - started >= 0.03


# ----------------------------------------------------------- launch, sweeps


def test_launch_starts_and_stops_a_model_in_a_child_process():
    server = launch("threadpool")
    assert isinstance(server, LaunchedServer) and server.pid is None
    with server:
        assert server.running and server.port > 0 and server.url.endswith(f":{server.port}/")
        assert server.pid != os.getpid()
        child = psutil.Process(server.pid)
        assert child.ppid() == os.getpid()
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            sock.sendall(b"GET /bytes/5 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert sock.recv(100).startswith(b"HTTP/1.1 200")
    assert not server.running
    assert server.process.returncode is not None  # reaped, not a zombie
    assert not psutil.pid_exists(server.pid) or psutil.Process(server.pid).status() != psutil.STATUS_ZOMBIE
    assert wait_no_children() == []
    server.stop()  # twice is fine


def test_launch_reports_what_went_wrong():
    with pytest.raises(ServerError, match="unknown model"):
        launch("no-such-model")
    with pytest.raises(ServerError, match="exited"):
        launch("threadpool", root="/no/such/folder", start=True)
    assert wait_no_children() == []


def check_row_types(row):
    assert list(row) == list(COLUMNS)
    for name, kind in COLUMNS.items():
        value = row[name]
        assert value is None or isinstance(value, kind) or (kind is float and type(value) is int), (name, value)


def test_sweep_gives_tidy_rows_that_round_trip(tmp_path):
    seen = []
    rows = sweep(models=["threadpool"], clients=[1, 3], workloads=["small", "/bytes/1000"],
                 duration=0.3, warmup=0.05, on_point=seen.append)
    assert seen == rows and len(rows) == 4
    assert [(r["workload"], r["clients"]) for r in rows] == [("small", 1), ("small", 3),
                                                              ("/bytes/1000", 1), ("/bytes/1000", 3)]
    for row in rows:
        check_row_types(row)
        assert row["model"] == "threadpool" and row["requests"] > 0 and row["errors"] == 0
        assert row["cpu_pct"] is not None and row["keep_alive"] is True
        assert row["pinning"] is None
    for name in ("rows.csv", "rows.json"):
        path = save_results(rows, tmp_path / name)
        back = load_results(path)
        assert back == rows
        for row in back:
            check_row_types(row)
    assert json.loads((tmp_path / "rows.json").read_text(encoding="utf-8"))[0]["model"] == "threadpool"
    assert wait_no_children() == []


def test_a_short_sweep_tells_the_lectures_story():
    # Lesson 00's first plot: with 50 ms per request, the iterative server
    # stays flat (one client at a time: ~20 req/s) while the thread pool rises
    # with the clients. The gap is 8x at 8 clients, far beyond any noise.
    rows = sweep(models=["iterative", "threadpool"], clients=[1, 8], workloads=["sleep"], duration=1.0,
                 warmup=0.2)
    rps = {(r["model"], r["clients"]): r["rps"] for r in rows}
    assert 15 <= rps["iterative", 1] <= 21 and 15 <= rps["iterative", 8] <= 21, rps  # flat: 1 / 50 ms
    assert rps["threadpool", 8] >= 5 * rps["threadpool", 1], rps  # rising: 8 clients, 8 at once
    fairness = {(r["model"], r["clients"]): r["fairness"] for r in rows}
    assert fairness["threadpool", 8] > 0.9 and fairness["iterative", 8] < 0.5, fairness  # one client kept it
    # Latency counts the clients left waiting: 7 of the iterative server's 8
    # waited through the whole run (1 s, and the warm-up), and say so.
    point = {(r["model"], r["clients"]): r for r in rows}
    assert point["iterative", 8]["p99_ms"] >= 800 and point["iterative", 8]["unanswered"] >= 7, point["iterative", 8]
    assert point["iterative", 8]["p50_ms"] < 100  # the one client it serves is served fast
    assert 45 <= point["threadpool", 8]["p99_ms"] <= 150, point["threadpool", 8]  # every client ~50 ms
    assert point["threadpool", 8]["unanswered"] <= 8  # only the requests in flight at the end
    assert wait_no_children() == []


def test_a_rate_sweep_gives_an_open_loop_row_per_rate():
    for _ in range(3):  # again while the generator says a busy machine kept it from running
        rows = sweep(models=["select"], rates=[100, 200], clients=[4], workloads=["/bytes/100"], duration=0.5,
                     warmup=0.1)
        if not any(row["generator_limited"] for row in rows):
            break
    assert [(r["rate"], r["clients"]) for r in rows] == [(100, 4), (200, 4)]
    for row in rows:
        check_row_types(row)
        assert not row["generator_limited"], row
        assert 0.85 * row["rate"] <= row["sent_rps"] <= 1.15 * row["rate"], row  # far below capacity: kept
        assert row["errors"] == 0 and row["p50_ms"] < 50
    with pytest.raises(ValueError, match="rates"):
        sweep(models=["select"], rates=[0])
    assert wait_no_children() == []


def test_a_point_starts_once_the_last_points_leftovers_are_answered():
    # The 32 clients of the first point leave 31 requests queued at the
    # iterative server (50 ms each): the next point waits for them, instead
    # of measuring a server busy with clients that have gone (0 req/s).
    rows = sweep(models=["iterative"], clients=[32, 64], workloads=["sleep"], duration=0.6, warmup=0.1)
    assert [r["clients"] for r in rows] == [32, 64]
    assert all(15 <= r["rps"] <= 21 for r in rows), [(r["clients"], r["rps"]) for r in rows]
    assert rows[1]["unanswered"] >= 63  # and the starved ones count, as ever
    assert wait_no_children() == []


def test_stop_event_ends_a_sweep_mid_point_without_leftovers():
    stop = threading.Event()
    timer = threading.Timer(1.5, stop.set)
    timer.start()
    started = time.monotonic()
    try:
        rows = sweep(models=["threadpool"], clients=[100, 200], duration=30, warmup=0, stop_event=stop)
    finally:
        timer.cancel()
    assert time.monotonic() - started < 6  # promptly, not after 30 s
    assert rows == []  # the cut-short point is not a measurement
    assert wait_no_children() == []


def test_a_pinned_run_records_its_pinning(tiny):
    if not TWO_PINNABLE_CORES:
        pytest.skip("needs CPU affinity and 2 cores")
    cores = sorted(os.sched_getaffinity(0))
    server = tiny(lambda request, number: response())
    result = run(server.url, clients=2, duration=0.3, cpus=cores[1:2], server_cpus=cores[:1])
    assert result.requests > 0 and result.client_processes == 1
    assert result.pinning == f"server={cores[0]} clients={cores[1]}"
    assert run(server.url, clients=1, duration=0.1).pinning is None
    with launch("threadpool", cpus=cores[:1]) as pinned:  # read back from the server's pid
        result = run(pinned.url, clients=1, duration=0.1, pid=pinned.pid)
    assert result.pinning == f"server={cores[0]} clients=any"


# ------------------------------------------------------------------- parts


def test_profile_follows_the_environment(monkeypatch):
    monkeypatch.setenv("LABSERVER_PROFILE", "ci")
    ci = profile()
    assert ci["name"] == "ci" and ci["duration"] <= 1 and max(ci["clients"]) <= 16
    monkeypatch.setenv("LABSERVER_PROFILE", "lecture")
    lecture = profile()
    assert lecture["duration"] > ci["duration"] and max(lecture["clients"]) >= 256
    lecture["clients"].append(5)  # a copy: nothing else changes
    assert 5 not in profile()["clients"]
    monkeypatch.setenv("LABSERVER_PROFILE", "nope")
    with pytest.raises(ValueError, match="ci, lecture"):
        profile()


def test_workloads_parse():
    assert parse_workload("small") == [(WORKLOADS["small"], 1)]
    assert parse_workload("/cpu?ms=5") == [("/cpu?ms=5", 1)]
    assert parse_workload("small:8, /sleep?ms=5:2") == [(WORKLOADS["small"], 8), ("/sleep?ms=5", 2)]
    assert len(parse_workload("mix")) == 5
    for bad in ("", "nothing", "small:0"):
        with pytest.raises(WorkloadError):
            parse_workload(bad)


def test_mixed_workload_follows_its_weights(tiny):
    counts = {}

    def count(request, number):
        path = request.split(b" ")[1]
        counts[path] = counts.get(path, 0) + 1
        return response()

    server = tiny(count)
    run(server.url, clients=4, requests=400, workload="/a:3,/b:1")
    assert counts[b"/a"] / (counts[b"/a"] + counts[b"/b"]) == pytest.approx(0.75, abs=0.05)


def test_metrics_on_known_values():
    assert jain_index([5, 5, 5, 5]) == 1.0
    assert jain_index([1, 0, 0, 0]) == 0.25
    assert jain_index([0, 0]) is None
    histogram = {}
    for ms in range(1, 101):
        bucket = latency_bucket(ms / 1000)
        histogram[bucket] = histogram.get(bucket, 0) + 1
    assert percentile(histogram, 0.5) * 1000 == pytest.approx(50, rel=0.01)
    assert percentile(histogram, 0.99) * 1000 == pytest.approx(99, rel=0.01)
    assert percentile(histogram, 1.0, maximum=0.1) <= 0.1
    assert percentile({}, 0.5) is None


def test_wrk_output_parses():
    output = """Running 1s test @ http://127.0.0.1:8000/
  Latency Distribution
     50%  235.00us
     75%  268.00us
     90%    1.38ms
     99%   31.37ms
  7046 requests in 2.00s, 12.98MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
Requests/sec:   3517.48
Transfer/sec:      6.48MB
"""
    parsed = parse_wrk(output)
    assert parsed["rps"] == 3517.48 and parsed["errors"] == 3
    assert parsed["p50_ms"] == pytest.approx(0.235) and parsed["p99_ms"] == pytest.approx(31.37)
    assert parsed["mbps_wire"] == pytest.approx(6.48 * 2**20 * 8 / 1e6)


def test_result_is_a_plain_record(tiny):
    server = tiny(lambda request, number: response())
    result = run(server.url, clients=1, requests=5)
    assert isinstance(result, Result)
    record = result.asdict()
    json.dumps(record)  # plain data all the way down
    assert record["per_client_requests"] == [5]
    check_row_types(result.row("mine"))


# --------------------------------------------------------------------- CLI


def test_cli_bench_measures_any_url(tiny, tmp_path, capsys):
    server = tiny(lambda request, number: response(b"z" * 10))
    status = cli_main(["bench", "--url", server.url, "--clients", "1,2", "--duration", "0.2",
                       "--warmup", "0", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert status == 0
    assert "req/s" in out and server.url in out
    written = {p.suffix for p in tmp_path.iterdir()}
    assert {".csv", ".json"} <= written
    # The plots come from labserver.viz, which draws them when it is there.
    assert (".png" in written) == (importlib.util.find_spec("labserver.viz") is not None)
    rows = load_results(next(tmp_path.glob("*.csv")))
    assert [r["clients"] for r in rows] == [1, 2] and rows[0]["cpu_pct"] is None
    assert rows[0]["model"] == server.url and rows[0]["workload"] == "/"  # the URL's own path


@pytest.mark.parametrize("argv", [
    ["bench", "--clients", "0"], ["bench", "--clients", "1,x"], ["bench", "--duration", "-1"],
    ["bench", "--models", "no-such-model"], ["bench", "--workload", "nothing"],
    ["bench", "--pid", "1"], ["bench", "--url", "http://127.0.0.1:1/", "--models", "threadpool"],
    ["calibrate", "--clients", "0"],
])
def test_cli_mistakes_get_one_line_and_status_2(argv, capsys):
    try:
        status = cli_main(argv)
    except SystemExit as exit:
        status = exit.code
    err = capsys.readouterr().err
    assert status == 2
    assert len(err.strip().splitlines()) == 1 and "error" in err


def test_cli_calibrate_without_wrk_says_so(monkeypatch, capsys):
    monkeypatch.setenv("PATH", "/nonexistent")
    assert cli_main(["calibrate"]) == 2
    err = capsys.readouterr().err
    assert "wrk is not installed" in err and len(err.strip().splitlines()) == 1


@pytest.mark.skipif(not HAVE_WRK, reason="wrk is not installed")
def test_cli_calibrate_compares_with_wrk(capsys):
    with ThreadPoolServer(port=0) as server:  # a short smoke run: the ratio itself is noise here
        status = cli_main(["calibrate", "--url", server.url + "bytes/100", "--clients", "4",
                           "--duration", "0.3", "--rounds", "2"])
    out = capsys.readouterr().out
    assert out.count("ratio ") == 2 and out.count("req/s") >= 4  # each round, and its own ratio
    verdict = out.strip().splitlines()[-1]
    assert verdict.startswith("labserver / wrk = ")
    ratio = float(verdict.split("= ")[1].split()[0])
    # Exit status 0 within 10 % of wrk, 1 outside: a script can check it.
    assert status in (0, 1) and ("NOT within" in verdict) == (status == 1)
    if abs(ratio - 1) < 0.095 or abs(ratio - 1) > 0.105:  # clear of the printed rounding
        assert status == (0 if abs(ratio - 1) <= 0.10 else 1)


@pytest.mark.skipif(not HAVE_WRK or not TWO_PINNABLE_CORES,
                    reason="needs wrk, CPU affinity and 2 cores")
def test_calibrate_pins_wrk_and_our_clients(monkeypatch):
    from labserver.load import wrk as calibration

    cores = sorted(os.sched_getaffinity(0))
    seen = []  # (tool, the cores it ran on), read while it runs

    def spy_wrk(command, **options):
        child = psutil.Popen(command, stdout=-1, stderr=-1, text=True, encoding="utf-8")
        seen.append(("wrk", sorted(child.cpu_affinity())))
        out, err = child.communicate()
        return calibration.subprocess.CompletedProcess(command, child.returncode, out, err)

    monkeypatch.setattr(calibration.subprocess, "run", spy_wrk)
    with ThreadPoolServer(port=0) as server:
        outcome = calibration.calibrate(server.url + "bytes/100", clients=2, duration=1, rounds=1,
                                        cpus=cores[1:])
    assert seen and all(cpus == cores[1:] for tool, cpus in seen)
    assert sorted(os.sched_getaffinity(0)) == cores  # and this thread is free again
    ours = [r for r in outcome["runs"] if r["tool"] == "labserver"]
    assert len(ours) == 1 and ours[0]["rps"] > 0 and outcome["round_ratios"] == [ours[0]["ratio"]]
    assert outcome["within"] == (abs(outcome["ratio"] - 1) <= calibration.TOLERANCE)


@pytest.mark.skipif(not TWO_PINNABLE_CORES,
                    reason="generator_cost.py needs CPU affinity and 2 cores")
def test_generator_cost_script_runs():
    script = os.path.join(os.path.dirname(__file__), os.pardir, "benchmarks", "generator_cost.py")
    done = subprocess.run([sys.executable, script, "--rounds", "1", "--duration", "1", "--clients", "4"],
                          capture_output=True, text=True, encoding="utf-8", timeout=120)
    assert done.returncode == 0, done.stderr
    summary = done.stdout.split("CPU per response")[1]
    rows = [line.split() for line in summary.strip().splitlines()]
    names = [" ".join(row[:row.index("user")]) for row in rows]
    assert names[-2:] == ["labserver", "labserver, parsing every head"]
    assert ("wrk -t1" in names) == HAVE_WRK and ("wrk is not installed" in done.stdout) != HAVE_WRK
    assert all(float(row[-2]) > 0 for row in rows)  # user + system microseconds per response
