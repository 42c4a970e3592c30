"""Checks for lesson 07 (processes and the GIL): timing a pool, speedups from measurements.

time_burns runs on a thread pool that records what is handed to it and
when each piece of work ends, so the check sees whether everything was
submitted before the first wait, and whether all of it was done when the
clock stopped. speedups is tried on made-up numbers first, then on the
student's own measurements.
"""

import math
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from .. import experiments
from . import CheckFailed, StudentCall, check, expect, hang_message, passed, plain

DEADLINE = 20.0  # seconds for time_burns: its work takes 0.1 s


class WatchedExecutor(ThreadPoolExecutor):
    """A thread pool that records what is submitted to it and when each piece
    of work ends (executor.map() submits too)."""

    def __init__(self, workers):
        super().__init__(workers, thread_name_prefix="labserver-check")
        self.submitted = []
        self.futures = []
        self.most_pending = 0  # work handed over and not finished, at the busiest moment of a submit
        self._lock = threading.Lock()

    def submit(self, fn, /, *args, **kwargs):
        pending = sum(not future.done() for future in self.futures)
        future = super().submit(fn, *args, **kwargs)
        with self._lock:
            self.most_pending = max(self.most_pending, pending)
            self.submitted.append((fn, args, kwargs))
            self.futures.append(future)
        return future


@check
def time_burns(time_burns, count=4, ms=30, workers=2):
    """time_burns(executor, count, ms): runs `count` burn(ms) on the executor,
    all submitted before waiting, and returns the wall seconds until all are done."""
    with WatchedExecutor(workers) as pool:
        def timed():
            started = time.perf_counter()
            seconds = time_burns(pool, count, ms)
            returned = time.perf_counter()  # and at that moment, was all the work done?
            return seconds, returned - started, all(future.done() for future in pool.futures)

        attempt = StudentCall(timed, (), "time_burns()").start()
        if not attempt.wait(DEADLINE):
            raise CheckFailed(hang_message(attempt, f"time_burns(executor, {count}, {ms}) did not return within "
                                                    f"{DEADLINE:g} s, for work that takes {count * ms / workers / 1000:.2f} s"))
        attempt.raise_error("time_burns")
        seconds, took, all_done = attempt.result
        submitted = list(pool.submitted)
    expect(plain(seconds, int, float),
           f"time_burns should return the seconds it measured (a number), it returned {seconds!r}")
    expect(len(submitted) == count,
           f"time_burns(executor, {count}, {ms}) should hand {count} pieces of work to the executor; "
           f"it handed {len(submitted)}")
    others = [fn for fn, _, _ in submitted if fn is not experiments.burn]
    if others:
        raise CheckFailed(f"submit burn itself, not {getattr(others[0], '__name__', others[0])!r}: a process pool "
                          f"sends a function by its name in a module, so a lambda or a function defined in a "
                          f"notebook cell cannot travel to another process")
    expect(all(args == (ms,) and not kwargs for _, args, kwargs in submitted),
           f"each piece of work should be burn({ms}); got {[args for _, args, _ in submitted][:4]}")
    expect(pool.most_pending >= 1,
           "time_burns waited for each burn before handing over the next, so the pool never ran two at once: "
           "submit them all first, then wait for the results")
    expect(all_done,
           "time_burns returned before the work was done: wait for every result "
           "(future.result(), or list(executor.map(...))) before you stop the clock")
    expect(0.5 * took <= seconds <= took + 0.005,
           f"time_burns took {took:.3f} s but returned {seconds:.3f}: return the seconds from before the "
           f"first submit until the last result (time.perf_counter())")
    passed(f"time_burns hands {count} burns to the pool at once and times them all: {seconds:.3f} s")


def _rows(results, model):
    """The rows measured for one model, each with the keys the check needs."""
    rows = results.get(model) if isinstance(results, dict) else None
    expect(isinstance(rows, list) and rows, f"results should hold the {model} measurements: run the measuring "
                                            f"cell above again")
    for row in rows:
        missing = [key for key in ("clients", "rps", "wall_s", "errors") if not isinstance(row, dict) or key not in row]
        if missing:
            raise CheckFailed(f"a row of results[{model!r}] has no {missing[0]!r}: results should be what the "
                              f"measuring cell above stored; run it again")
    return rows


@check
def speedups(speedups, results, ms, rounds):
    """speedups(results) -> {clients: processes' rps / threadpool's rps}, from
    the student's own measurements, which must look real; then the lesson itself:
    processes beat threads on CPU-bound work (skipped, with the reason, where
    the machine cannot show it)."""
    # 1. The arithmetic, on made-up numbers.
    made_up = {"threadpool": [{"clients": 1, "rps": 10.0}, {"clients": 4, "rps": 12.0}],
               "processes": [{"clients": 1, "rps": 9.0}, {"clients": 4, "rps": 30.0}]}
    got = StudentCall(speedups, (made_up,)).run(DEADLINE, doing="on made-up measurements")
    expect(isinstance(got, dict), f"speedups should return a dict {{clients: speedup}}, it returned {type(got).__name__}")
    expected = {1: 0.9, 4: 2.5}
    expect(set(got) == set(expected),
           f"for made-up measurements at 1 and 4 clients, the keys should be the client counts [1, 4]; "
           f"got {sorted(got, key=str)}")
    expect(all(isinstance(got[k], (int, float)) and math.isclose(got[k], expected[k], rel_tol=1e-6)
               for k in expected),
           f"threadpool 10 and 12 req/s, processes 9 and 30 req/s: expected {expected}, got {got}: "
           f"processes' rps divided by threadpool's, at the same number of clients")

    # 2. The student's own measurements: complete, error-free, physically possible.
    for model in ["threadpool", "processes"]:
        for row in _rows(results, model):
            expect(not row["errors"], f"{model} with {row['clients']} clients had errors: {row['errors'][:2]}")
    cores = os.cpu_count() or 1
    for row in results["threadpool"]:
        serial = row["clients"] * rounds * ms / 1000  # CPU seconds of work; the GIL runs them one at a time
        if experiments.gil_enabled():
            expect(row["wall_s"] >= 0.8 * serial,
                   f"threadpool served {row['clients']} client(s) in {row['wall_s']:.2f} s, less than the "
                   f"{serial:.2f} s of CPU work their requests asked for: is that the /cpu route?")
    mine = StudentCall(speedups, (results,)).run(DEADLINE, doing="on your measurements")
    theirs = {row["clients"]: p["rps"] / row["rps"] for row, p in zip(results["threadpool"], results["processes"])}
    expect(isinstance(mine, dict) and set(mine) == set(theirs) and
           all(math.isclose(mine[k], theirs[k], rel_tol=1e-6) for k in theirs),
           f"from your measurements, expected {rounded(theirs)}, got {rounded(mine)}")
    passed(f"speedups of processes over threads: {rounded(mine)}")

    # 3. The lesson: with two cores or more, processes run /cpu work in parallel and threads do not.
    most = max(theirs)
    top = theirs[most]
    p_rows = {row["clients"]: row for row in results["processes"]}
    p_scaling = p_rows[most]["rps"] / p_rows[min(p_rows)]["rps"]
    if cores < 2:
        print(f"(not checked: this machine has {cores} core; processes can only beat threads with 2 or more)")
    elif not experiments.gil_enabled():
        print(f"(not checked: this Python runs without a GIL, so its threads scale too; speedup {top:.2f})")
    elif top >= 1.25:
        passed(f"with {most} clients the process pool served {top:.1f}x the requests per second of the thread pool")
    elif p_scaling < 1.4:
        # The process pool itself got no second core: something else on the machine was using it.
        print(f"(not checked: the machine is busy. With {most} clients the process pool served only "
              f"{p_scaling:.1f}x its rate with 1 client, so it never had two free cores; run the "
              f"measurement again when the machine is quieter)")
    else:
        raise CheckFailed(f"with {most} clients the process pool was only {top:.2f}x as fast as the thread pool, "
                          f"though it had the cores: run the measuring cell again; if it stays so, ask your teacher")


def rounded(speedups):
    if not isinstance(speedups, dict):
        return speedups
    return {k: round(v, 2) if isinstance(v, (int, float)) else v for k, v in speedups.items()}
