"""Lessons 06 and 07: the thread-per-connection server, the plain thread pool
and the process pool.

What is specific to these models (the conformance suite checks the rest):
slow clients overlap; stop() wakes blocked threads and reaps worker processes
and leaves no thread, process or socket behind; the thread cap queues clients
in the backlog, and the pool's idle keep-alive clients hold its workers (the
next client waits in its queue); workers ignore Ctrl-C; and the GIL lesson
itself: on /cpu the process pool beats the threads on two cores or more.
"""

import hashlib
import os
import signal
import socket
import threading
import time

import psutil
import pytest
import requests
from conftest import child_processes, labserver_threads, open_fds, read_response, server_side_connections

from labserver.servers import BlockingPoolServer, ServerError
from labserver.limits import usable_cpus
from labserver.servers.processes import OWN_LISTENERS, ProcessPoolServer
from labserver.servers.threads import ThreadPerConnectionServer

HELLO = b"hello, world\n"
GET_HELLO = b"GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n"

# name -> (how to make one, how long stop() may take with idle clients connected)
MODELS = {
    "threads": (lambda root, **kw: ThreadPerConnectionServer(root=root, **kw), 1.0),
    # More workers than the 20 idle clients below: each holds one (the lesson of the next section).
    "pool": (lambda root, **kw: BlockingPoolServer(root=root, workers=24, **kw), 1.0),
    "processes": (lambda root, **kw: ProcessPoolServer(root=root, workers=2, **kw), 3.0),
}


@pytest.fixture(params=list(MODELS))
def model(request):
    return request.param


@pytest.fixture
def server(model, site):
    with MODELS[model][0](site) as srv:
        yield srv


BEFORE = {"threads": set(), "pids": set()}


@pytest.fixture(autouse=True)
def baseline():
    """Threads and processes that other tests left are not this test's to report."""
    BEFORE["threads"] = set(threading.enumerate())
    BEFORE["pids"] = {child.pid for child in psutil.Process().children(recursive=True)}


def new_threads():
    return labserver_threads(BEFORE["threads"])


def worker_processes():
    return child_processes(BEFORE["pids"])


# Serving.


def test_get_root_is_byte_exact(server, site):
    response = requests.get(server.url, timeout=10)
    assert response.status_code == 200
    assert response.content == (site / "index.html").read_bytes()
    assert requests.get(server.url + "hello.txt", timeout=10).content == HELLO


def test_keep_alive_serves_several_requests_on_one_connection(server, connect):
    client = connect(server.port)
    for _ in range(3):
        client.send(GET_HELLO)
        response = client.response()
        assert (response.status, response.body) == (200, HELLO)
    client.send(GET_HELLO * 3)  # pipelined
    assert [client.response().body for _ in range(3)] == [HELLO] * 3
    assert not client.closed_by_server(timeout=0.3)


def test_16_slow_clients_overlap(server):
    # One after the other they would take 16 x 0.3 = 4.8 s. Threads sleep side
    # by side; each worker process waits on a timer and serves others meanwhile.
    results = []

    def client():
        results.append(requests.get(server.url + "sleep?ms=300", timeout=10).status_code)

    clients = [threading.Thread(target=client) for _ in range(16)]
    start = time.monotonic()
    for thread in clients:
        thread.start()
    for thread in clients:
        thread.join()
    elapsed = time.monotonic() - start
    assert results == [200] * 16
    assert elapsed < 1.5, f"16 concurrent /sleep?ms=300 took {elapsed:.2f} s: they did not overlap"


# Stopping.


def test_stop_with_idle_clients_is_quick_and_leaves_nothing(model, site):
    make, budget = MODELS[model]
    with make(site):  # warm-up: the first worker process starts multiprocessing's resource tracker
        pass
    fds = open_fds()
    srv = make(site).start()
    port = srv.port
    clients = []
    try:
        for _ in range(20):  # idle keep-alive clients: threads blocked in recv()
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            sock.sendall(GET_HELLO)
            assert read_response(sock) == (200, HELLO)
            clients.append(sock)
        half = socket.create_connection(("127.0.0.1", port), timeout=10)
        half.sendall(b"GET /hello.txt HTTP/1.1\r\nHo")  # half a request
        silent = socket.create_connection(("127.0.0.1", port), timeout=10)
        clients += [half, silent]
        time.sleep(0.2)  # let the server accept them
        start = time.monotonic()
        srv.stop()
        elapsed = time.monotonic() - start
        assert elapsed < budget, f"stop() took {elapsed:.2f} s"
        assert new_threads() == []
        assert worker_processes() == []  # joined and reaped: no zombie either
        assert server_side_connections(port) == []  # no listener, no accepted socket
        for sock in clients:  # every client sees its connection end
            sock.settimeout(5)
            try:
                assert sock.recv(1024) == b""
            except ConnectionResetError:
                pass
    finally:
        srv.stop()
        for sock in clients:
            sock.close()
    assert open_fds() == fds
    with make(site, port=port) as again:  # the port is free again
        assert requests.get(again.url + "hello.txt", timeout=10).content == HELLO


@pytest.mark.parametrize("model", [
    "threads",
    "pool",
    "processes",
])
def test_stop_during_a_sleep_request_is_quick(model, site):
    srv = MODELS[model][0](site).start()
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
        sock.sendall(b"GET /sleep?ms=2500 HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.3)  # the request is in its sleep
        start = time.monotonic()
        srv.stop()
        elapsed = time.monotonic() - start
    assert new_threads() == [] and worker_processes() == []
    assert elapsed < 1.0, f"stop() took {elapsed:.2f} s"


def test_stop_twice_and_start_twice(model, site):
    srv = MODELS[model][0](site)
    srv.stop()  # never started: harmless
    srv.start()
    with pytest.raises(ServerError, match="already started"):
        srv.start()
    assert requests.get(srv.url + "hello.txt", timeout=10).content == HELLO
    srv.stop()
    srv.stop()
    assert not srv.running
    assert new_threads() == [] and worker_processes() == []


# Threads: one per connection, capped.


def test_one_thread_per_connection(site):
    with ThreadPerConnectionServer(root=site) as srv:
        socks = [socket.create_connection(("127.0.0.1", srv.port), timeout=10) for _ in range(5)]
        for sock in socks:
            sock.sendall(GET_HELLO)
            assert read_response(sock) == (200, HELLO)
        names = new_threads()
        assert len([n for n in names if n.startswith("labserver-threads-conn-")]) == 5
        for sock in socks:
            sock.close()


def test_clients_beyond_the_cap_wait_in_the_backlog(site):
    with ThreadPerConnectionServer(root=site, workers=2) as srv:
        first, second, third = (socket.create_connection(("127.0.0.1", srv.port), timeout=10) for _ in range(3))
        for sock in (first, second):
            sock.sendall(GET_HELLO)
            assert read_response(sock) == (200, HELLO)
        third.sendall(GET_HELLO)  # connected (the kernel did the handshake), not accepted
        third.settimeout(0.5)
        with pytest.raises(socket.timeout):
            third.recv(1024)
        first.close()  # frees a thread: the server accepts the third client
        third.settimeout(10)
        assert read_response(third) == (200, HELLO)
        for sock in (second, third):
            sock.close()


def test_workers_must_be_positive(site):
    for model in (ThreadPerConnectionServer, BlockingPoolServer, ProcessPoolServer):
        with pytest.raises(ServerError, match="at least 1"):
            model(root=site, workers=0)


# The plain pool: a connection holds its worker until it closes.


def test_idle_keep_alive_clients_hold_the_pool_and_the_next_one_waits_in_the_queue(site):
    with BlockingPoolServer(root=site, workers=2) as srv:
        first, second, third = (socket.create_connection(("127.0.0.1", srv.port), timeout=10) for _ in range(3))
        for sock in (first, second):  # served, then idle: each holds a worker in recv()
            sock.sendall(GET_HELLO)
            assert read_response(sock) == (200, HELLO)
        third.sendall(GET_HELLO)  # accepted (the pool takes every connection) but not served
        third.settimeout(0.5)
        with pytest.raises(socket.timeout):
            third.recv(1024)
        assert len(server_side_connections(srv.port, accepted_only=True)) == 3  # in the queue, not the backlog
        first.close()  # its worker takes the next connection in the queue
        third.settimeout(10)
        assert read_response(third) == (200, HELLO)
        for sock in (second, third):
            sock.close()


def test_the_pool_starts_its_workers_once(site):
    with BlockingPoolServer(root=site, workers=3) as srv:
        threads = new_threads()
        assert len(threads) == 1 + 3  # the accept loop and the workers
        for _ in range(5):
            with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
                sock.sendall(GET_HELLO)
                assert read_response(sock) == (200, HELLO)
        assert new_threads() == threads  # no thread per connection


# Processes: a pre-started pool.


def test_the_pool_is_started_before_start_returns(site):
    with ProcessPoolServer(root=site, workers=3) as srv:
        workers = worker_processes()
        assert len(workers) == 3
        assert requests.get(srv.url + "hello.txt", timeout=10).content == HELLO
        assert worker_processes() == workers  # no process per request


def test_default_pool_size_is_one_worker_per_cpu(site):
    assert ProcessPoolServer(root=site).workers == usable_cpus(cap=8) >= 1
    with pytest.raises(ServerError):
        ProcessPoolServer(root=site, workers=0)


def test_a_taken_port_is_refused_even_with_own_listeners(site):
    # On Linux the pool listens with SO_REUSEPORT, which would let a second
    # pool join the first one's port and steal half its connections.
    with ProcessPoolServer(root=site, workers=2) as first:
        for other in (ProcessPoolServer(root=site, workers=2, port=first.port),
                      ThreadPerConnectionServer(root=site, port=first.port)):
            with pytest.raises(ServerError, match="in use"):
                other.start()
        assert requests.get(first.url + "hello.txt", timeout=10).content == HELLO
    with socket.socket() as other:  # and when something else holds the port
        other.bind(("127.0.0.1", 0))
        other.listen()
        with pytest.raises(ServerError, match="in use"):
            ProcessPoolServer(root=site, workers=2, port=other.getsockname()[1]).start()
    assert worker_processes() == []


@pytest.mark.skipif(not OWN_LISTENERS, reason="Linux spreads connections over SO_REUSEPORT listeners")
def test_new_connections_are_dealt_to_every_worker_even_a_busy_one(site):
    # With one shared listener, a worker busy on /cpu accepts nothing and the
    # other takes every new connection. With a listener each, the kernel
    # deals them out by a hash of their addresses, whoever is awake.
    with ProcessPoolServer(root=site, workers=2) as srv:
        busy = socket.create_connection(("127.0.0.1", srv.port))
        busy.sendall(b"GET /cpu?ms=500 HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.1)  # its worker is computing now
        clients = [socket.create_connection(("127.0.0.1", srv.port)) for _ in range(24)]
        for sock in clients:  # all connected and asking while one worker is busy
            sock.sendall(GET_HELLO)
        for sock in [busy, *clients]:
            sock.settimeout(10)
            assert read_response(sock)[0] == 200
        held = sorted(sum(c.status == psutil.CONN_ESTABLISHED for c in server_side_connections(srv.port, worker))
                      for worker in worker_processes())
        for sock in [busy, *clients]:
            sock.close()
    assert sum(held) == 25 and held[0] >= 4, f"connections per worker: {held}"


@pytest.mark.skipif(not hasattr(signal, "SIGINT") or os.name != "posix", reason="POSIX signals")
def test_workers_ignore_ctrl_c(site):
    # A Ctrl-C in a terminal goes to every process in the foreground group;
    # only the parent may react, by stopping its workers cleanly.
    with ProcessPoolServer(root=site, workers=2) as srv:
        for worker in worker_processes():
            worker.send_signal(signal.SIGINT)
        time.sleep(0.2)
        assert len(worker_processes()) == 2
        for _ in range(4):
            assert requests.get(srv.url + "hello.txt", timeout=10).content == HELLO


def test_an_unpicklable_app_is_refused_at_start(site):
    srv = ProcessPoolServer(root=site, workers=1, app=lambda request: None)
    with pytest.raises(ServerError, match="picklable"):
        srv.start()
    assert worker_processes() == []
    assert not srv.running


class AppThatCannotReachAWorker:
    """Pickles fine, but fails to unpickle in the worker."""

    def __call__(self, request):
        raise AssertionError("never called")

    def __setstate__(self, state):
        raise RuntimeError("cannot unpickle me")


def test_a_worker_that_dies_at_start_makes_start_fail(site):
    app = AppThatCannotReachAWorker()
    app.x = 1  # a non-empty __dict__, so that unpickling calls __setstate__
    srv = ProcessPoolServer(root=site, workers=2, app=app)
    with pytest.raises(ServerError, match="failed to start"):
        srv.start()
    assert worker_processes() == []


@pytest.mark.parametrize("victim", [0, 1])
def test_a_worker_that_dies_is_replaced_and_no_connection_is_left_waiting(site, victim):
    """Worker 0 serves the parent's listener (on Linux the others have their own):
    whichever dies, the parent starts a new one, and every new connection is answered."""
    with ProcessPoolServer(root=site, workers=2) as srv:
        dead = srv.processes[victim]
        dead.kill()
        deadline = time.monotonic() + 20
        while (srv.processes[victim] is dead or not srv.processes[victim].is_alive()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert srv.processes[victim] is not dead, "the dead worker was not replaced"
        time.sleep(0.5)  # the new worker is ready (start_worker waits for it) and accepting
        for _ in range(12):  # new connections, dealt by the kernel to both workers
            with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as sock:
                sock.sendall(GET_HELLO)
                assert read_response(sock) == (200, HELLO)
        assert len(worker_processes()) == 2
    assert worker_processes() == []


# The GIL lesson: processes use every core for Python code, threads do not.


def cpu_wall_time(port, clients=8, rounds=2, ms=50):
    """Wall time for `clients` concurrent clients, each making `rounds`
    /cpu?ms=N requests on a fresh connection (so any idle worker may take it)."""
    request = f"GET /cpu?ms={ms} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
    errors = []

    def client():
        try:
            for _ in range(rounds):
                with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
                    sock.sendall(request)
                    assert read_response(sock)[0] == 200
        except Exception as error:  # reported by the main thread
            errors.append(error)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    return time.monotonic() - start


def free_cores(threads=2, size=16 << 20):
    """How many cores our threads get right now: hashlib releases the GIL, so
    two threads hashing at once take as long as one on an idle 2-core machine.
    A busy machine (or its scheduler's fairness between sessions) gives fewer."""
    data = bytes(size)

    def wall(n):
        workers = [threading.Thread(target=hashlib.sha256, args=(data,)) for _ in range(n)]
        start = time.monotonic()
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        return time.monotonic() - start

    return threads * min(wall(1), wall(1)) / wall(threads)


@pytest.mark.skipif(usable_cpus() < 2, reason="the process pool can only beat the GIL with 2 cores or more")
def test_process_pool_beats_threads_on_cpu_work(site):
    # Both servers run side by side, measured alternately, best of 2 each, so
    # that a burst of load from elsewhere on a busy machine hits both.
    times = {"threads": [], "processes": []}
    cores = []
    with ThreadPerConnectionServer(root=site) as threads, \
            ProcessPoolServer(root=site, workers=min(usable_cpus(), 8)) as processes:
        servers = [("threads", threads), ("processes", processes)]
        for name, srv in servers:
            cpu_wall_time(srv.port, rounds=1, ms=5)  # warm-up
        for _ in range(2):
            cores.append(free_cores())
            for name, srv in servers:
                times[name].append(cpu_wall_time(srv.port))
        cores.append(free_cores())
    speedup = min(times["threads"]) / min(times["processes"])
    report = f"processes {speedup:.2f}x faster than threads: {times}; free cores seen: {cores}"
    if speedup < 1.5 and min(cores) < 1.7:
        # Other work took a core at some point: no model can use what is not there.
        pytest.skip(f"the machine is too busy to run two things at once: {report}")
    assert speedup >= 1.5, report
