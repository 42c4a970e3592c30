"""Checks for lesson 06 (threads): a lock around shared data, a bounded pool.

run_all's check gives the pool tasks of unequal lengths (the first the
slowest), so that results stored as they complete come out in the wrong
order, and watches, in the thread that calls run_all, every Thread.start()
and Thread.join() it makes: a pool that returns before joining its threads,
or never joins them, is told so however quickly they happened to end.
"""

import threading
import time

from ..experiments import count_in_threads
from . import CheckFailed, StudentCall, ThreadWatch, check, describe, expect, hang_message, passed

GIVE_UP = 20.0  # seconds: an answer that hangs (a lock never released) fails instead of hanging the notebook


class RaceCounter(dict):
    """A dict that pauses (time.sleep(0): any other thread may run) after each
    read and before each write. Code that reads, adds and writes without a lock
    then loses updates every time, even `counter["n"] += 1`, which on Python
    3.10+ would lose one only rarely. With a lock around the three steps,
    nothing is lost however long the pauses are."""

    def __getitem__(self, key):
        value = super().__getitem__(key)
        time.sleep(0)
        return value

    def get(self, key, default=None):
        value = super().get(key, default)
        time.sleep(0)
        return value

    def __setitem__(self, key, value):
        time.sleep(0)
        super().__setitem__(key, value)


@check
def safe_increment(safe_increment, threads=8, per_thread=100):
    """Many threads call safe_increment(counter) at once: the total must be exact."""
    counter = {"n": 41}
    StudentCall(safe_increment, (counter,)).run(GIVE_UP, doing="one call, on {'n': 41}")
    expect(counter.get("n") == 42, f"safe_increment({{'n': 41}}) should leave {{'n': 42}}, it left {counter!r}")

    # count_in_threads: the lesson's own experiment, on a counter that pauses
    # between read and write, so that a missing lock loses updates every time.
    attempt = StudentCall(lambda: count_in_threads(safe_increment, threads, per_thread, counter=RaceCounter()),
                          (), "safe_increment()")
    attempt.start()
    if not attempt.wait(GIVE_UP):
        raise CheckFailed(hang_message(attempt, f"{threads} threads calling safe_increment did not finish within "
                                                f"{GIVE_UP:g} s: is a lock acquired and never released? "
                                                f"(`with lock:` releases it for you)"))
    if attempt.error is not None:
        raise CheckFailed(describe(attempt.error, "safe_increment"))
    counted = attempt.result
    expected, got = counted["expected"], counted["counted"]
    expect(got == expected,
           f"{threads} threads x {per_thread} calls should count {expected}, your function counted {got}: "
           f"{expected - got} updates lost. Hold ONE lock, shared by all threads, around the read AND the write")
    passed(f"{threads} threads x {per_thread} increments = {got}, none lost, even with a pause between read and write")


def _tasks(count, task_s):
    """Tasks that record how many run at once; the first is the slowest, the last the quickest."""
    lock = threading.Lock()
    state = {"running": 0, "peak": 0, "calls": [0] * count}

    def make_task(i):
        def task():
            with lock:
                state["calls"][i] += 1
                state["running"] += 1
                state["peak"] = max(state["peak"], state["running"])
            time.sleep(task_s * (count - i) / count)  # unequal, like real requests
            with lock:
                state["running"] -= 1
            return i * i
        return task

    return [make_task(i) for i in range(count)], state


def _measure(run_all, count, workers, task_s=0.06):
    """Run run_all on instrumented tasks; (results at return, state, threads alive, threads unjoined)."""
    tasks, state = _tasks(count, task_s)
    watch = ThreadWatch()
    attempt = StudentCall(watch.run, (run_all, tasks, workers), f"run_all({count} tasks, {workers} workers)")
    attempt.start()
    if not attempt.wait(GIVE_UP):
        raise CheckFailed(hang_message(attempt, f"run_all({count} tasks, {workers} workers) did not return within "
                                                f"{GIVE_UP:g} s: do your worker threads stop when the queue is empty "
                                                f"(get_nowait() and queue.Empty), and does run_all wait for them "
                                                f"with join()?"))
    attempt.raise_error(f"run_all({count} tasks, {workers} workers)")
    results, alive, unjoined = attempt.result
    return results, state, watch.started, alive, unjoined


@check
def run_all(run_all, tasks=12, workers=3, task_s=0.06):
    """run_all(tasks, workers): every result, in order, with at most `workers` tasks running at once."""
    what = f"run_all({tasks} tasks, {workers} workers)"
    results, state, started, alive, unjoined = _measure(run_all, tasks, workers, task_s)
    expected = [i * i for i in range(tasks)]
    expect(not alive, f"{what} returned while {len(alive)} of its threads were still running: join() every "
                      f"thread you started before you return")
    expect(isinstance(results, list), f"run_all should return a list of results, it returned {type(results).__name__}")
    calls = state["calls"]
    never = [i for i, n in enumerate(calls) if n == 0]
    twice = [i for i, n in enumerate(calls) if n > 1]
    if never:
        raise CheckFailed(f"{what}: {len(never)} of {tasks} tasks never ran (task {never[0]}, for one)")
    if twice:
        raise CheckFailed(f"{what}: task {twice[0]} ran {calls[twice[0]]} times: each task must run exactly once")
    expect(len(results) == tasks, f"{what} should return {tasks} results, it returned {len(results)}: {results!r:.80}")
    expect(results == expected,
           f"{what}: the results should be in the order of the tasks, {expected[:5]}..., got {results[:5]!r}... "
           f"The first tasks here take longest: store each result at its task's index, not in the order they finish")
    expect(len(started) <= workers, f"{what} started {len(started)} threads: use exactly `workers` threads, "
                                    f"each taking tasks from the queue until it is empty")
    expect(state["peak"] <= workers,
           f"with workers={workers}, at most {workers} tasks may run at once; {state['peak']} did")
    expect(state["peak"] >= 2, f"with workers={workers}, the tasks ran one at a time: start all {workers} threads "
                               f"before you wait for any")
    expect(not unjoined, f"{what} never called join() on {len(unjoined)} of its threads: they happened to be done, "
                         f"but nothing made sure. join() each one before you return")

    # One worker: one task at a time. More workers than tasks, and no tasks at all, must not hang.
    results, state, _, alive, _ = _measure(run_all, 4, 1, task_s)
    expect(state["peak"] == 1, f"with workers=1, {state['peak']} tasks ran at once")
    expect(results == [0, 1, 4, 9], f"with workers=1, expected [0, 1, 4, 9], got {results!r:.80}")
    results, _, _, alive, _ = _measure(run_all, 2, 5, task_s)
    expect(results == [0, 1], f"2 tasks on 5 workers: expected [0, 1], got {results!r:.80}")
    expect(not alive, f"2 tasks on 5 workers: run_all returned while {len(alive)} threads were still running")
    results, _, _, _, _ = _measure(run_all, 0, 3, task_s)
    expect(results == [], f"no tasks: expected [], got {results!r:.80}")
    passed(f"{tasks} tasks of unequal lengths, {workers} workers: all results in task order, at most {workers} at once, "
           f"every thread joined before run_all returned")
