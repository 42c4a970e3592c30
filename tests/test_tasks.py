"""Lesson 05's Future and Task (labserver/tasks.py): a generator resumed with
the result of the future it yielded, on lesson 04's selector loop."""

import selectors
import socket
import threading
import time

import pytest

from labserver.tasks import Future, Task, readable, recv, run


def test_a_future_calls_back_with_its_result_once_set():
    future, seen = Future(), []
    future.add_done_callback(lambda f: seen.append(("first", f.result)))
    future.add_done_callback(lambda f: seen.append(("second", f.result)))
    assert seen == [] and not future.done
    future.set_result(42)
    assert seen == [("first", 42), ("second", 42)] and future.done


def test_a_callback_added_after_the_result_runs_at_once():
    future, seen = Future(), []
    future.set_result("late")
    future.add_done_callback(lambda f: seen.append(f.result))
    assert seen == ["late"]


def test_a_task_sends_each_result_back_where_the_generator_paused():
    a, b, log = Future(), Future(), []

    def coro():
        log.append(("got", (yield a)))
        log.append(("got", (yield b)))
        return "done"

    task = Task(coro())  # runs to its first yield
    assert log == [] and not task.done
    b.set_result("B")  # nobody waits for b yet: nothing happens
    assert log == []
    a.set_result("A")  # resumes the generator, which then finds b already done
    assert log == [("got", "A"), ("got", "B")]
    assert task.done and task.result == "done"


def test_yield_from_a_future_returns_its_result_and_a_task_waits_for_another():
    inner = Future()

    def child():
        return (yield from inner) * 2

    def parent():
        return (yield from Task(child())) + 1  # a task is a future too

    task = Task(parent())
    assert not task.done
    inner.set_result(20)
    assert task.result == 41


def test_two_tasks_wait_on_one_loop_and_each_resumes_when_its_data_arrives():
    selector = selectors.DefaultSelector()
    pairs = [socket.socketpair() for _ in range(2)]
    order = []
    start = time.monotonic()

    def fetch(name, sock):
        data = yield from recv(selector, sock)
        order.append((name, data, threading.current_thread() is threading.main_thread(),
                      time.monotonic() - start))
        return data

    timers = [threading.Timer(0.3, pairs[0][1].send, [b"slow"]), threading.Timer(0.1, pairs[1][1].send, [b"fast"])]
    try:
        for timer in timers:
            timer.start()
        tasks = [Task(fetch("A", pairs[0][0])), Task(fetch("B", pairs[1][0]))]
        assert not any(task.done for task in tasks)  # both wait; nothing blocked
        run(selector)
        assert [name for name, *_ in order] == ["B", "A"]  # in the order the data came
        assert all(on_loop_thread for _, _, on_loop_thread, _ in order)
        assert order[0][3] >= 0.09 and order[1][3] >= 0.29  # each after its data, B while A still waited
        assert [task.result for task in tasks] == [b"slow", b"fast"]
        assert not selector.get_map()  # every wait unregistered itself
    finally:
        for timer in timers:
            timer.join()
        selector.close()
        for pair in pairs:
            for sock in pair:
                sock.close()


def test_readable_resolves_with_the_socket_when_the_peer_closes():
    selector = selectors.DefaultSelector()
    sock, peer = socket.socketpair()
    try:
        future = readable(selector, sock)
        peer.close()
        run(selector)
        assert future.done and future.result is sock
        assert sock.recv(10) == b""
    finally:
        selector.close()
        sock.close()


@pytest.mark.parametrize("value", [None, 0, b""])
def test_a_generator_that_returns_at_once_is_a_finished_task(value):
    def coro():
        return value
        yield  # a generator all the same

    task = Task(coro())
    assert task.done and task.result == value
