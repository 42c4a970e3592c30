"""Checks for lesson 06 (threads): a lock around shared data, a bounded pool."""

import threading
import time

from ..experiments import count_in_threads
from . import CheckFailed, call, expect, passed

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


def run_with_deadline(function, seconds=None):
    """function() in a daemon thread: (returned, raised, finished). A thread
    that never finishes is left behind as a daemon and cannot stop the kernel
    from exiting."""
    outcome = {}

    def target():
        try:
            outcome["returned"] = function()
        except BaseException as error:  # handed to the caller, never printed by threading
            outcome["raised"] = error

    thread = threading.Thread(target=target, name="labserver-check", daemon=True)
    thread.start()
    thread.join(GIVE_UP if seconds is None else seconds)
    return outcome.get("returned"), outcome.get("raised"), not thread.is_alive()


def safe_increment(safe_increment, threads=8, per_thread=100):
    """Many threads call safe_increment(counter) at once: the total must be exact."""
    counter = {"n": 41}
    call(safe_increment, counter)  # "not written yet" if it still raises NotImplementedError
    expect(counter.get("n") == 42, f"safe_increment({{'n': 41}}) should leave {{'n': 42}}, it left {counter!r}")

    # count_in_threads: the lesson's own experiment, on a counter that pauses
    # between read and write, so that a missing lock loses updates every time.
    counted, error, finished = run_with_deadline(
        lambda: count_in_threads(safe_increment, threads, per_thread, counter=RaceCounter()))
    expect(finished, f"{threads} threads calling safe_increment did not finish within {GIVE_UP:.0f} s: "
                     f"is a lock acquired and never released? (`with lock:` releases it for you)")
    if error is not None:
        raise CheckFailed(f"safe_increment raised {type(error).__name__}: {error}")
    expected, got = counted["expected"], counted["counted"]
    expect(got == expected,
           f"{threads} threads x {per_thread} calls should count {expected}, your function counted {got}: "
           f"{expected - got} updates lost. Hold ONE lock, shared by all threads, around the read AND the write")
    passed(f"{threads} threads x {per_thread} increments = {got}, none lost, even with a pause between read and write")


def run_all(run_all, tasks=12, workers=3, task_s=0.05):
    """run_all(tasks, workers): every result, in order, with at most `workers` tasks running at once."""
    # Instrumented tasks: each records how many tasks run at the same moment.
    def measure(count, workers):
        lock = threading.Lock()
        state = {"running": 0, "peak": 0}
        calls = [0] * count

        def make_task(i):
            def task():
                with lock:
                    calls[i] += 1
                    state["running"] += 1
                    state["peak"] = max(state["peak"], state["running"])
                time.sleep(task_s)  # I/O-like work: threads overlap it
                with lock:
                    state["running"] -= 1
                return i * i
            return task

        before = set(threading.enumerate())
        started = time.perf_counter()
        results, raised, finished = run_with_deadline(
            lambda: run_all([make_task(i) for i in range(count)], workers))
        seconds = time.perf_counter() - started
        expect(finished, f"run_all({count} tasks, {workers} workers) did not return within {GIVE_UP:.0f} s: "
                         f"do your worker threads stop when the queue is empty, and does run_all wait for them?")
        if raised is not None:
            if isinstance(raised, NotImplementedError):
                raise CheckFailed("run_all() is not written yet: replace `raise NotImplementedError` with your code")
            raise CheckFailed(f"run_all({count} tasks, {workers} workers) raised {type(raised).__name__}: {raised}")
        # Threads it started must be gone (a little grace for the last ones to exit).
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            left = [t for t in threading.enumerate() if t not in before and t.name != "labserver-check"]
            if not left:
                break
            time.sleep(0.02)
        return results, calls, state["peak"], seconds, left

    results, calls, peak, seconds, left = measure(tasks, workers)  # "not written yet" if it raises
    expected = [i * i for i in range(tasks)]
    expect(isinstance(results, list), f"run_all should return a list of results, it returned {type(results).__name__}")
    twice = [i for i, n in enumerate(calls) if n > 1]
    never = [i for i, n in enumerate(calls) if n == 0]
    if never:
        raise CheckFailed(f"{len(never)} of {tasks} tasks never ran (task {never[0]}, for one)")
    if twice:
        raise CheckFailed(f"task {twice[0]} ran {calls[twice[0]]} times: each task must run exactly once")
    expect(results == expected,
           f"the results should be in the order of the tasks: expected {expected[:5]}..., got {results[:5]!r}...")
    expect(peak <= workers, f"with workers={workers}, at most {workers} tasks may run at once; {peak} did")
    expect(peak >= 2, f"with workers={workers}, the tasks ran one at a time ({seconds:.2f} s for {tasks} "
                      f"tasks of {task_s * 1000:.0f} ms): start {workers} threads before you wait for any")
    expect(not left, f"run_all returned but left {len(left)} thread(s) running: let each worker end "
                     f"(the queue is empty) and join() them before you return")

    # One worker: one task at a time. More workers than tasks, and no tasks at all, must not hang.
    results, _, alone, _, _ = measure(4, 1)
    expect(alone == 1, f"with workers=1, {alone} tasks ran at once")
    expect(results == [0, 1, 4, 9], f"with workers=1, expected [0, 1, 4, 9], got {results!r}")
    results, _, _, _, _ = measure(2, 5)
    expect(results == [0, 1], f"2 tasks on 5 workers: expected [0, 1], got {results!r}")
    results, _, _, _, _ = measure(0, 3)
    expect(results == [], f"no tasks: expected [], got {results!r}")
    passed(f"{tasks} tasks, {workers} workers: all results in order, at most {workers} at once "
           f"({peak} seen), every thread ended")
