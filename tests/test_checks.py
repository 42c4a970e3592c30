"""The machinery every check stands on (labserver.checks): deadlines, watched sockets, messages.

tests/test_check_answers.py runs whole answers through the lessons' checks;
these tests pin down the pieces: a call that spins or blocks is reported and
stopped, a watched socket counts what was done with it, and no raw exception
from a check's own code reaches a student.
"""

import itertools
import socket
import threading
import time

import pytest

from labserver.checks import (CheckFailed, WatchedSocket, lesson06, lesson08, nothing_left_running, plain, run_student,
                              watched_pair)


def spin_forever():
    while True:
        pass


def test_a_result_and_an_exception_come_back_from_the_helper_thread():
    assert run_student(lambda a, b: a + b, 2, 3) == 5
    with pytest.raises(KeyError):
        run_student({}.__getitem__, "missing")


def test_a_stub_is_named_even_when_another_function_calls_it():
    def try_recv(sock):
        raise NotImplementedError

    def poll_until(sock):
        return try_recv(sock)

    with pytest.raises(CheckFailed, match=r"^try_recv\(\) is not written yet"):
        run_student(poll_until, None)


def test_a_spinning_call_fails_within_its_deadline_and_is_stopped():
    start = time.perf_counter()
    with pytest.raises(CheckFailed, match=r"spin_forever\(\) did not return within 0.5 s.*CPU core") as failure:
        run_student(spin_forever, deadline=0.5)
    assert time.perf_counter() - start < 3
    assert "It was at spin_forever(), line" in str(failure.value)
    assert not [t for t in threading.enumerate() if t.name == "labserver-check-student"]


def test_a_call_blocked_in_recv_is_woken_and_said_to_be_blocked():
    sock, peer = watched_pair()
    with sock, peer:
        with pytest.raises(CheckFailed, match=r"blocked in recv\(\)"):
            run_student(sock.recv, 10, deadline=0.3, sockets=[sock], name="waiting()")
    assert not [t for t in threading.enumerate() if t.name == "labserver-check-student"]


def test_a_watched_socket_counts_what_was_done_with_it():
    sock, peer = watched_pair()
    with sock, peer:
        sock.setblocking(False)
        with pytest.raises(BlockingIOError):
            sock.recv(10)
        peer.sendall(b"hi")
        quiet = sock.quietly()
        assert quiet.recv(10) == b"hi"  # the check's own look, not counted
        quiet.close()
        peer.close()
        assert sock.recv(10) == b"" and sock.recv(10) == b""
        sock.settimeout(0.5)
    assert (sock.recv_calls, sock.nothing_yet, sock.eof_returns, sock.calls_after_eof) == (3, 1, 2, 1)
    assert sock.modes == ["non-blocking", "a timeout of 0.5 s"]
    assert "called recv() again 1 times" in sock.diagnosis()


def test_an_abandoned_socket_refuses_every_later_call():
    sock, peer = watched_pair()
    with sock, peer:
        sock.abandon()
        with pytest.raises(BaseException, match="after the check gave up"):
            sock.recv(1)


def test_an_abandoned_listener_wakes_an_accept_in_progress():
    listener = WatchedSocket(socket.create_server(("127.0.0.1", 0)))
    with listener:
        start = time.perf_counter()
        with pytest.raises(CheckFailed, match=r"blocked in accept\(\)"):
            run_student(listener.accept, deadline=0.3, sockets=[listener], name="serve()")
        assert time.perf_counter() - start < 3


def test_no_raw_exception_from_a_check_reaches_the_student():
    def student_code(rows):
        return 1 / 0

    rows_without_clients = [{"model": "select", "rps": 1.0}]
    with pytest.raises(CheckFailed, match=r"the check could not go on: KeyError: 'clients'"):
        lesson08.cpu_per_request(lambda rows: {}, rows_without_clients)
    with pytest.raises(CheckFailed, match=r"your code raised ZeroDivisionError.*student_code\(\), line \d+: `return 1 / 0`"):
        lesson08.cpu_per_request(student_code, [{"model": "select", "clients": 1, "rps": 1.0, "requests": 2,
                                                  "duration_s": 2.0, "cpu_pct": 1.0}])


def test_a_value_whose_class_redefines_equality_is_not_plain():
    class Agreeable(str):
        def __eq__(self, other):
            return True

        __hash__ = str.__hash__

    assert plain("select", str) and plain(b"x", bytes, bytearray)
    assert not plain(Agreeable("x"), str) and not plain(True, int)


UNSTICK = threading.Event()


def never_releases(hits, path, calls=itertools.count()):
    """Passes the check's first three calls, from one thread; then every
    thread waits, as on a lock that is never released (until the test ends)."""
    if next(calls) >= 3:
        UNSTICK.wait()
    hits[path] = hits.get(path, 0) + 1


def test_a_lock_never_released_fails_and_the_tidy_up_cell_says_restart(monkeypatch):
    monkeypatch.setattr(lesson06, "GIVE_UP", 1.0)
    try:
        with pytest.raises(CheckFailed, match="never released.*restart the kernel"):
            lesson06.record_hit(never_releases)
        with pytest.raises(CheckFailed, match="a check gave up on are still running"):
            nothing_left_running()
    finally:
        UNSTICK.set()  # let the stuck threads finish: nothing left running
    deadline = time.monotonic() + 5
    while [t for t in threading.enumerate() if t.name.startswith("labserver-check")] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [t for t in threading.enumerate() if t.name.startswith("labserver-check")]
