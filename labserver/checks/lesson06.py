"""Checks for lesson 06 (threads): a race in a shared hit counter, a bounded pool.

record_hit's check runs the lesson's experiment (8 threads counting
requests per page, as record_hits_in_threads does) on a PausingDict, a dict that lets other threads run
between every read and every write, so that a read-modify-write that is not
covered by one shared lock loses updates on every run, not once in a while.
A lock that is never released shows as threads that never finish: the check
waits GIVE_UP seconds, then says so.

run_all's check gives the pool tasks of unequal lengths (the first the
slowest), so that results stored as they complete come out in the wrong
order, and watches, in the thread that calls run_all, every Thread.start()
and Thread.join() it makes: a pool that returns before joining its threads,
or never joins them, is told so however quickly they happened to end.
"""

import threading
import time

from ..experiments import PausingDict
from . import Abandoned, CheckFailed, StudentCall, ThreadWatch, check, expect, hang_message, passed, raise_in

GIVE_UP = 20.0  # seconds: an answer that hangs (a lock never released) fails instead of hanging the notebook
PATHS = ("/", "/about.html", "/style.css")


@check
def record_hit(record_hit, threads=8, per_thread=100, paths=PATHS):
    """Many threads call record_hit(hits, path) at once: every page's count must be exact."""
    hits = {}
    calls = ["/", "/", "/about.html"]

    def one_by_one():
        for path in calls:
            record_hit(hits, path)

    StudentCall(one_by_one, (), "record_hit()").run(
        GIVE_UP, doing="three calls one after the other, from one thread: is a lock acquired and never released?")
    expect(hits == {"/": 2, "/about.html": 1},
           f"record_hit({{}}, '/') twice, then record_hit(hits, '/about.html') should leave "
           f"{{'/': 2, '/about.html': 1}}; it left {hits!r:.80}")

    # The lesson's experiment, on a dict that pauses between read and write.
    # Each thread is a StudentCall of its own, so that the check can give up
    # on the ones stuck on a lock and say where they are.
    hits = PausingDict()
    start_line = threading.Barrier(threads)

    def work(number):
        start_line.wait(GIVE_UP)
        for i in range(per_thread):
            record_hit(hits, paths[(number + i) % len(paths)])

    attempts = [StudentCall(work, (number,), "record_hit()").start() for number in range(threads)]
    deadline = time.monotonic() + GIVE_UP
    for attempt in attempts:
        attempt.wait(max(0.0, deadline - time.monotonic()))
    stuck = [attempt for attempt in attempts if attempt.thread.is_alive()]
    if stuck:
        for attempt in stuck[1:]:  # asked to end at once; hang_message below waits for the first one
            if attempt.returned_at is None:
                raise_in(attempt.thread, Abandoned)
        raise CheckFailed(hang_message(stuck[0], f"{len(stuck)} of {threads} threads calling record_hit did not "
                                                 f"finish within {GIVE_UP:g} s: is a lock acquired and never "
                                                 f"released? (`with lock:` releases it for you, even after an "
                                                 f"exception)"))
    for attempt in attempts:
        attempt.raise_error("record_hit")
    expected = threads * per_thread
    got = sum(n for n in dict(hits).values() if isinstance(n, int))
    per_path = dict.fromkeys(paths, 0)  # what the threads asked for, page by page
    for number in range(threads):
        for i in range(per_thread):
            per_path[paths[(number + i) % len(paths)]] += 1
    wrong = {path: n for path, n in dict(hits).items() if per_path.get(path) != n}
    expect(got == expected and not wrong,
           f"{threads} threads x {per_thread} calls should count {per_path}, your function counted "
           f"{dict(hits)!r:.120}: {expected - got} updates lost. Between reading a page's count and "
           f"writing it back, another thread can write the same page's count; its update is then overwritten. "
           f"One lock, created once and shared by every thread (a lock made inside the function is a new "
           f"one per call and stops no one), must cover the read AND the write (a lock around only one of "
           f"them leaves the gap between them open)")
    passed(f"{threads} threads x {per_thread} hits on {len(paths)} pages = {got}, none lost, "
           f"even with a thread switch between every read and write")


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
