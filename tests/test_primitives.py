"""labserver.primitives: each experiment returns what the lesson says it shows,
and closes every socket it made.

Time bounds are generous: the tests share two cores with whatever else runs.
"""

import selectors
import sys
import threading

import psutil
import pytest

from labserver import primitives
from labserver.load import launch


@pytest.fixture(autouse=True)
def no_leaks():
    """Every primitive closes its sockets and joins its helper threads."""
    proc = psutil.Process()
    fds = proc.num_fds() if hasattr(proc, "num_fds") else proc.num_handles()
    threads = threading.active_count()
    yield
    assert (proc.num_fds() if hasattr(proc, "num_fds") else proc.num_handles()) == fds
    assert threading.active_count() == threads


def test_blocking_recv_sleeps_without_using_cpu():
    result = primitives.time_blocking_recv(delay=0.5)
    assert result["data"] == b"hello"
    assert 0.45 <= result["blocked_s"] <= 2.0
    assert result["cpu_s"] < 0.05  # the OS put the thread to sleep


def test_nonblocking_recv_raises_at_once():
    result = primitives.nonblocking_recv_demo()
    assert result["raised"] == "BlockingIOError"
    assert result["errno_name"] in ("EAGAIN", "EWOULDBLOCK", "WSAEWOULDBLOCK")  # Linux, macOS; Windows
    assert result["elapsed_s"] < 0.1
    assert result["then_got"] == b"hello"


def test_busy_wait_burns_cpu_while_waiting():
    result = primitives.busy_wait_recv(delay=0.5)
    blocking = primitives.time_blocking_recv(delay=0.5)
    assert result["data"] == b"hello"
    assert 0.45 <= result["waited_s"] <= 2.0
    assert result["wasted_iterations"] > 1000
    # About 0.5 s on an idle machine, less when other processes share the
    # cores (the tests may run beside others), but always hundreds of times
    # what a blocking recv() uses in the same wait.
    assert result["cpu_s"] > 100 * max(blocking["cpu_s"], 1e-4)


@pytest.mark.parametrize("ready", [(1, 3), (0,), (0, 1, 2, 3, 4)])
def test_select_returns_exactly_the_ready_sockets(ready):
    result = primitives.select_ready(n=5, ready=ready, timeout=1.0)
    assert result["watched"] == [0, 1, 2, 3, 4]
    assert result["ready"] == sorted(ready) == result["sent_to"]
    assert result["elapsed_s"] < 0.5  # returned at once: no need to wait for the timeout


def test_select_with_nothing_ready_waits_for_the_timeout():
    result = primitives.select_ready(n=3, ready=(), timeout=0.2)
    assert result["ready"] == []
    assert 0.15 <= result["elapsed_s"] <= 2.0


def test_callback_runs_after_other_work_with_the_data():
    result = primitives.callback_recv(delay=0.2)
    assert result["events"] == ["registered", "other work", "callback got b'hello'"]


def test_blocking_recv_on_client_1_delays_client_2():
    result = primitives.two_clients_blocking(delay=0.3)
    events = [event for _, event in result["timeline"]]
    assert events == ["client 2 sent", "client 1 sent", "served client 1", "served client 2"]
    assert result["client2_waited_s"] >= 0.25  # ready at once, served only after client 1


def test_select_serves_client_2_first():
    result = primitives.two_clients_select(delay=0.3)
    events = [event for _, event in result["timeline"]]
    assert events == ["client 2 sent", "served client 2", "client 1 sent", "served client 1"]
    assert result["client2_waited_s"] < 0.2


def test_select_cost_grows_with_sockets_and_the_selector_does_not():
    result = primitives.select_cost(counts=(10, 1000), repeat=50)
    small, big = result["rows"]
    assert (small["n"], big["n"]) == (10, 1000)
    assert big["highest_fd"] < result["fd_setsize"]  # a fresh process: select() can watch them all
    assert big["select_us"] > 5 * small["select_us"]
    assert big["selector_us"] < big["select_us"] / 5
    assert result["selector"].endswith("Selector")


def test_select_refuses_a_descriptor_at_fd_setsize():
    result = primitives.select_fd_limit()
    if result["fd"] is None:
        pytest.skip("Windows: FD_SETSIZE counts sockets")
    assert result["fd"] >= result["fd_setsize"] == 1024
    assert result["select_error"].startswith("ValueError")
    assert result["selector_ready"] is True


def test_server_cpu_percent_tells_a_busy_wait_from_select():
    with launch("busywait") as busy, launch("select") as sleepy:
        spinning = primitives.server_cpu_percent(busy.pid, 0.5)
        idle = primitives.server_cpu_percent(sleepy.pid, 0.5)
        light = primitives.server_cpu_percent(sleepy.pid, 0.5, url=sleepy.url, rate=20)
    assert spinning["cpu_pct"] > 10  # less than 100 on a shared machine, but far from 0
    assert idle["cpu_pct"] < 5
    assert 8 <= light["requests"] <= 11 and light["cpu_pct"] < 20


# Lesson 04: the completion-style q_recv(sock, done).

def test_q_recv_returns_at_once_and_done_runs_on_the_loop_after_the_data_while_the_loop_works():
    result = primitives.completion_recv(delay=0.3, tick=0.05)
    assert result["data"] == b"hello"  # the data, intact
    assert result["q_recv_s"] < 0.2  # q_recv returned long before the data came
    assert result["done_after_s"] >= 0.28  # done was called after the data arrived
    assert result["done_on_loop_thread"] is True  # on the loop's thread, not the helper's
    assert result["ticks_before_done"] >= 2  # the loop ran timers while the recv() was in flight


def test_q_recv_passes_big_data_intact_and_b_empty_on_close_and_leaves_no_thread():
    sock, peer = primitives.socket.socketpair()
    got, threads_seen = [], set()
    try:
        with primitives.CompletionLoop() as loop:
            def done(data):
                got.append(data)
                threads_seen.add(threading.current_thread())
                if data:
                    loop.q_recv(sock, done)  # the next piece, chained from the callback

            loop.q_recv(sock, done)
            payload = bytes(range(256)) * 4096  # 1 MiB, sent by another thread
            sender = threading.Thread(target=lambda: (peer.sendall(payload), peer.shutdown(primitives.socket.SHUT_WR)))
            sender.start()
            assert loop.run(timeout=10)
            sender.join()
            assert threads_seen == {loop.thread}
            assert not loop.helpers
    finally:
        sock.close()
        peer.close()
    assert b"".join(got) == payload and got[-1] == b""
    assert not [t for t in threading.enumerate() if t.name == "labserver-q_recv"]


def test_event_loop_kind_names_the_platforms_loop():
    kind = primitives.event_loop_kind()
    assert kind["proactor"] == (sys.platform == "win32")  # IOCP: Windows' default loop since Python 3.8
    assert kind["loop"].endswith("EventLoop")


def test_select_cost_reports_a_refused_selector_instead_of_failing(monkeypatch):
    """On Windows DefaultSelector is select(), which refuses more than 512 sockets:
    the cost table says "refused" (None) for that row, as it does for select.select()."""
    class Refusing(selectors.DefaultSelector):
        def select(self, timeout=None):
            if len(self.get_map()) > 20:
                raise ValueError("too many file descriptors in select()")
            return super().select(timeout)

    monkeypatch.setattr(primitives.selectors, "DefaultSelector", Refusing)
    rows = primitives.select_cost_here(counts=(10, 40), repeat=3)["rows"]
    assert [row["n"] for row in rows] == [10, 40]
    assert rows[0]["selector_us"] is not None and rows[1]["selector_us"] is None
