"""The first three models (lessons 01-03): iterative, busy-wait, select.

What is specific to each: the iterative server makes the second client wait
for the first; the busy-wait server burns a core while idle and counts its
wasted turns; the select server uses no CPU while idle and caps its
connections below FD_SETSIZE. All three stop at once, whatever a client is
doing, and leave no thread or socket behind. (The conformance suite checks
HTTP behaviour for every model.)
"""

import socket
import threading
import time

import psutil
import pytest
import requests
from conftest import labserver_threads, open_fds

from labserver import DEMO_SITE
from labserver.servers import ServerError
from labserver.servers.busywait import BusyWaitServer
from labserver.servers.iterative import IterativeServer
from labserver.servers.selectserver import MAX_CONNECTIONS, SelectServer

MODELS = [IterativeServer, BusyWaitServer, SelectServer]
CONCURRENT = [BusyWaitServer, SelectServer]
GET = b"GET / HTTP/1.1\r\nHost: test\r\n\r\n"
INDEX = (DEMO_SITE / "index.html").read_bytes()


def cpu_seconds():
    times = psutil.Process().cpu_times()
    return times.user + times.system


def idle_cpu_share(seconds=1.0):
    """Cores this process used while the calling thread slept `seconds`."""
    start_cpu, start = cpu_seconds(), time.monotonic()
    time.sleep(seconds)
    return (cpu_seconds() - start_cpu) / (time.monotonic() - start)


def spin(until):
    while time.monotonic() < until:
        pass


def spin_share(seconds=1.0):
    """The share of a core one spinning Python thread gets here right now:
    less than 1 when other processes compete for the cores."""
    thread = threading.Thread(target=spin, args=(time.monotonic() + seconds,))
    thread.start()
    share = idle_cpu_share(seconds)
    thread.join()
    return share


@pytest.fixture(params=MODELS, ids=lambda cls: cls.name)
def model(request):
    return request.param


# Every model serves, keeps connections alive, and stops at once.


def test_serves_index_byte_exact(model):
    with model() as srv:
        response = requests.get(srv.url, timeout=10)
    assert response.status_code == 200
    assert response.content == INDEX


def test_keep_alive(model, connect):
    with model() as srv:
        client = connect(srv.port)
        for _ in range(3):
            client.send(GET)
            assert client.response().body == INDEX
        assert not client.closed_by_server(timeout=0.2)


@pytest.mark.parametrize("what", ["idle keep-alive", "half a request"])
def test_stop_is_prompt_and_leaves_nothing(model, connect, what):
    fds = open_fds()
    with model() as srv:
        client = connect(srv.port)
        if what == "idle keep-alive":
            client.send(GET)
            assert client.response().body == INDEX
        else:
            client.send(b"GET / HTTP/1.1\r\nHo")
        time.sleep(0.2)  # let the server block in recv() (or wait in select(), or spin)
        start = time.monotonic()
        srv.stop()
        assert time.monotonic() - start < 1.0
        assert client.closed_by_server(timeout=1.0)
        client.close()
        assert labserver_threads() == []
        assert open_fds() == fds
    # ...and the with block's stop() did nothing more.


def test_stop_twice_without_clients(model):
    srv = model().start()
    srv.stop()
    srv.stop()
    assert not srv.running
    assert labserver_threads() == []


# Iterative: one client at a time.


def test_iterative_second_client_waits_for_the_first(connect):
    timeline = []
    with IterativeServer(idle_timeout=5.0) as srv:
        first, second = connect(srv.port), connect(srv.port)
        first.send(GET)
        assert first.response().body == INDEX
        timeline.append("first served")
        second.send(GET)  # connected (the backlog holds it) but not answered
        assert second.closed_by_server(timeout=0.5) is False
        timeline.append("second still waiting")
        first.close()
        timeline.append("first closed")
        start = time.monotonic()
        assert second.response().body == INDEX
        timeline.append("second served")
        assert time.monotonic() - start < 1.0  # right after the close, not after the idle timeout
    assert timeline == ["first served", "second still waiting", "first closed", "second served"]


def test_iterative_gives_up_on_a_silent_client(connect):
    with IterativeServer(idle_timeout=0.5) as srv:
        silent, second = connect(srv.port), connect(srv.port)
        time.sleep(0.1)  # the silent one is accepted first
        start = time.monotonic()
        second.send(GET)
        assert second.response().body == INDEX
        assert 0.3 <= time.monotonic() - start < 2.0
        assert silent.closed_by_server(timeout=1.0)


# Busy-wait and select: one thread, many clients.


@pytest.mark.parametrize("cls", CONCURRENT, ids=lambda cls: cls.name)
def test_second_client_is_served_while_the_first_is_connected(cls, connect):
    with cls() as srv:
        first, second = connect(srv.port), connect(srv.port)
        first.send(b"GET / HTTP/1.1\r\nHo")  # half a request, then silence
        second.send(GET)
        assert second.response().body == INDEX


@pytest.mark.parametrize("cls", CONCURRENT, ids=lambda cls: cls.name)
def test_a_sleeping_request_does_not_hold_up_others(cls, connect):
    with cls() as srv:
        sleeper, other = connect(srv.port), connect(srv.port)
        sleeper.send(b"GET /sleep?ms=800 HTTP/1.1\r\nHost: test\r\n\r\n")
        time.sleep(0.1)
        start = time.monotonic()
        other.send(GET)
        assert other.response().body == INDEX
        assert time.monotonic() - start < 0.5
        assert sleeper.response().status == 200


@pytest.mark.parametrize("cls", CONCURRENT, ids=lambda cls: cls.name)
def test_a_slow_reader_that_keeps_reading_is_not_cut_off(cls):
    # The send timeout counts from the last progress, not from the start.
    size = 16_000_000
    with cls(send_timeout=0.3) as srv:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
            sock.sendall(b"GET /bytes/%d HTTP/1.1\r\nHost: test\r\n\r\n" % size)
            received, start = 0, time.monotonic()
            while data := sock.recv(16384):
                received += len(data)
                time.sleep(0.001)  # ~16 MB/s: the transfer lasts several send timeouts
                if received >= size:
                    break
    assert received >= size
    assert time.monotonic() - start > 0.6


def test_busywait_burns_a_core_while_idle():
    reference = spin_share()
    with BusyWaitServer() as srv:
        share = idle_cpu_share()
        spins, useful = srv.spins, srv.useful
    # About 1 core on a quiet machine; with other processes competing, at
    # least half of what any spinning thread gets.
    assert share >= min(0.5, 0.5 * reference), (share, reference)
    assert useful == 0 and spins > 1000  # every turn wasted


def test_busywait_counts_useful_turns(connect):
    with BusyWaitServer() as srv:
        client = connect(srv.port)
        client.send(GET)
        assert client.response().body == INDEX
        time.sleep(0.1)  # idle: the loop spins in vain
    assert 1 <= srv.useful < srv.spins  # read once stop() has joined the loop's thread


def test_busywait_gives_up_on_an_idle_client(connect):
    with BusyWaitServer(idle_timeout=0.3) as srv:
        client = connect(srv.port)
        client.send(GET)
        assert client.response().body == INDEX
        assert client.closed_by_server(timeout=2.0)


def test_select_uses_no_cpu_while_idle(connect):
    with SelectServer() as srv:
        client = connect(srv.port)  # an idle keep-alive client: select() waits for its deadline
        client.send(GET)
        assert client.response().body == INDEX
        assert idle_cpu_share() < 0.1


def test_select_stops_accepting_at_its_cap(connect):
    with SelectServer(max_connections=2) as srv:
        first, second, third = (connect(srv.port) for _ in range(3))
        for client in (first, second, third):
            client.send(GET)
        assert first.response().body == INDEX
        assert second.response().body == INDEX
        assert third.closed_by_server(timeout=0.3) is False  # waits in the backlog
        first.close()
        assert third.response().body == INDEX  # accepted as soon as one closed


def test_select_cap_must_fit_fd_setsize():
    with pytest.raises(ServerError, match="FD_SETSIZE"):
        SelectServer(max_connections=MAX_CONNECTIONS + 1)
