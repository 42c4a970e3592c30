"""The three single-threaded models of lessons 04 and 05: callbacks, coroutines, asyncio.

What is specific to them: one thread serves everyone, so 50 /sleep requests
overlap (they are timers, not blocked threads) while one /cpu request stalls
every client; a big file goes out a slice at a time without piling up in
memory, even to clients that read slowly; each model keeps its own deadlines
(idle, slow request, client that stops reading); and stop() is prompt and
leaves no thread, socket or file behind. (The conformance suite checks HTTP
behaviour for every model.)
"""

import logging
import os
import select
import socket
import threading
import time

import psutil
import pytest
import requests
from conftest import get, labserver_threads, open_fds, server_side_connections, wait_until

from labserver import DEMO_SITE
from labserver.servers.blocking import LINGER
from labserver.servers.asyncio_server import AsyncioServer
from labserver.servers.callbacks import CallbackServer
from labserver.servers.coroutines import CoroutineServer

MODELS = [CallbackServer, CoroutineServer, AsyncioServer]
INDEX = (DEMO_SITE / "index.html").read_bytes()
MB = 1024 * 1024


def write_file(path, size, block=MB):
    """A file of `size` pseudo-random bytes, written a block at a time (no
    `size` bytes in this process's memory to spoil an RSS measurement)."""
    chunk = os.urandom(block)
    with open(path, "wb") as file:
        for start in range(0, size, block):
            file.write(chunk[: min(block, size - start)])
    return path


@pytest.fixture(params=MODELS, ids=lambda cls: cls.name)
def model(request):
    return request.param


# The basics, over each model's own loop.


def test_serves_index_byte_exact(model):
    with model() as srv:
        response = requests.get(srv.url, timeout=10)
    assert response.status_code == 200
    assert response.content == INDEX


def test_keep_alive_reuses_one_connection(model, connect):
    with model() as srv:
        client = connect(srv.port)
        for _ in range(3):
            client.send(get(b"/"))
            assert client.response().body == INDEX
        assert not client.closed_by_server(timeout=0.2)
        assert len(server_side_connections(srv.port, accepted_only=True)) == 1


def test_three_pipelined_requests_in_one_send(model, connect):
    files = {b"/": "index.html", b"/about.html": "about.html", b"/css/style.css": "css/style.css"}
    with model() as srv:
        client = connect(srv.port)
        client.send(b"".join(get(path) for path in files))
        for name in files.values():
            assert client.response().body == (DEMO_SITE / name).read_bytes()


def test_a_20_mb_file_is_byte_exact(model, site):
    data = os.urandom(20 * MB + 123)
    (site / "big.bin").write_bytes(data)
    with model(root=site) as srv:
        response = requests.get(srv.url + "big.bin", timeout=30)
    assert response.status_code == 200
    assert response.content == data


# One thread: waits overlap, work does not.


def test_50_sleeps_overlap_in_one_thread(model):
    with model() as srv:
        socks = [socket.create_connection(("127.0.0.1", srv.port), timeout=10) for _ in range(50)]
        try:
            start = time.monotonic()
            for sock in socks:
                sock.sendall(get(b"/sleep?ms=300"))
            assert labserver_threads() == [f"labserver-{model.name}-0"]
            for sock in socks:
                reply = b""
                while not reply.endswith(b"waited 300 ms\n"):
                    data = sock.recv(4096)
                    assert data, f"closed early: {reply!r}"
                    reply += data
                assert reply.startswith(b"HTTP/1.1 200 ")
            elapsed = time.monotonic() - start
        finally:
            for sock in socks:
                sock.close()
    assert elapsed < 5.0, f"50 x 300 ms took {elapsed:.1f} s: the sleeps did not overlap"


def test_one_cpu_request_stalls_every_client(model, connect):
    """The trade-off of a single-threaded loop, measured."""
    with model() as srv:
        busy = connect(srv.port)
        busy.send(get(b"/cpu?ms=600"))
        time.sleep(0.1)  # let the loop start burning
        start = time.monotonic()
        assert requests.get(srv.url, timeout=10).content == INDEX
        waited = time.monotonic() - start
        assert busy.response().status == 200
    assert waited > 0.3, f"GET / took {waited:.2f} s: it was not held up by /cpu"


def test_callbacks_touch_the_selector_only_when_a_wait_changes(connect):
    with CallbackServer() as srv:
        calls = []

        def spy(name, method):
            def call(*args):
                calls.append(name)
                return method(*args)
            return call

        for name in ("register", "modify", "unregister"):
            setattr(srv.selector, name, spy(name, getattr(srv.selector, name)))
        client = connect(srv.port)
        for _ in range(20):
            client.send(get(b"/"))
            assert client.response().body == INDEX
        assert calls == ["register"]  # once, at accept: 20 requests later, never again


# Big files: a slice at a time, never the whole file in memory.


def test_memory_stays_flat_while_slow_clients_download_a_big_file(model, site):
    size = 50 * MB
    write_file(site / "big.bin", size)
    proc = psutil.Process()
    with model(root=site) as srv:
        requests.get(srv.url, timeout=10)  # warm up: first-request allocations are not growth
        baseline = peak = proc.memory_info().rss
        received = [0] * 4
        stop = threading.Event()

        def slow_reader(i):
            with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
                sock.sendall(get(b"/big.bin"))
                while not stop.is_set():
                    received[i] += len(sock.recv(64 * 1024))
                    time.sleep(0.02)  # a slow client: 64 KiB, then a pause

        readers = [threading.Thread(target=slow_reader, args=(i,)) for i in range(4)]
        for reader in readers:
            reader.start()
        end = time.monotonic() + 2.0
        while time.monotonic() < end:
            peak = max(peak, proc.memory_info().rss)
            time.sleep(0.01)
        stop.set()
        for reader in readers:
            reader.join()
    assert all(count > 256 * 1024 for count in received), received  # every client made progress
    assert peak - baseline < 20 * MB, f"RSS grew {(peak - baseline) / MB:.0f} MB for 4 x a 50 MB file"


# Each model's own deadlines.


def test_an_idle_keep_alive_client_is_closed(model, connect):
    with model(idle_timeout=0.5) as srv:
        client = connect(srv.port)
        client.send(get(b"/"))
        assert client.response().body == INDEX
        assert client.closed_by_server(timeout=3.0)


def test_a_request_trickled_too_slowly_gets_408(model, connect):
    with model(request_timeout=0.8, idle_timeout=5.0) as srv:
        client = connect(srv.port)
        client.send(b"GET / HTTP/1.1\r\nX-Slow: ")
        start = time.monotonic()
        while not select.select([client.sock], [], [], 0.1)[0]:  # a byte every 0.1 s: never idle, never done
            assert time.monotonic() - start < 4.0, "no answer 4 s into a request allowed 0.8 s"
            client.send(b"a")
        response = client.response()
        assert response.status == 408
        assert response.header("connection") == "close"


def test_a_client_that_stops_reading_is_dropped(model, connect, site):
    write_file(site / "big.bin", 50 * MB)
    with model(root=site, send_timeout=0.5) as srv:
        client = connect(srv.port)
        client.send(get(b"/big.bin"))  # and never read
        assert wait_until(lambda: not server_side_connections(srv.port, accepted_only=True), timeout=5.0)




@pytest.mark.parametrize("model", [
    CallbackServer, CoroutineServer, AsyncioServer,
], ids=lambda cls: cls.name)
def test_a_client_that_keeps_sending_after_the_last_response_is_dropped(model, connect, caplog):
    with model(idle_timeout=10.0) as srv:
        client = connect(srv.port)
        client.send(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert client.response().body == INDEX
        start = time.monotonic()
        with pytest.raises(OSError):  # reset, once the server has closed
            while time.monotonic() - start < 6.0:  # and never close our side
                client.send(b"x")
                time.sleep(0.1)
        assert time.monotonic() - start < 2 * LINGER + 1.0
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


# Stopping.


def test_stop_is_prompt_and_leaves_nothing(model, connect, site):
    write_file(site / "big.bin", 50 * MB)
    fds, threads = open_fds(), threading.active_count()
    with model(root=site) as srv:
        idle = [connect(srv.port) for _ in range(10)]
        for client in idle:
            client.send(get(b"/hello.txt"))
            assert client.response().body == b"hello, world\n"
        sleeping = connect(srv.port)
        sleeping.send(get(b"/sleep?ms=5000"))
        downloading = connect(srv.port)
        downloading.send(get(b"/big.bin"))  # not read: the server waits to send
        half = connect(srv.port)
        half.send(b"GET / HTTP/1.1\r\nHo")
        time.sleep(0.3)
        start = time.monotonic()
        srv.stop()
        assert time.monotonic() - start < 1.0
        for client in [*idle, sleeping, half]:
            assert client.closed_by_server(timeout=1.0)
            client.close()
        downloading.close()
        assert labserver_threads() == [] and threading.active_count() == threads  # asyncio's executor too
        assert wait_until(lambda: open_fds() == fds, timeout=1.0), (open_fds(), fds)


def test_stop_twice(model):
    srv = model().start()
    srv.stop()
    srv.stop()
    assert not srv.running
    assert labserver_threads() == []
