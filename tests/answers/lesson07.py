"""time_burns (lesson 07)."""

import time
from concurrent.futures import as_completed, wait

from labserver.experiments import burn

from . import right, wrong


@right("07", "time_burns")
def with_map(executor, count, ms):
    start = time.perf_counter()
    list(executor.map(burn, [ms] * count))
    return time.perf_counter() - start


@right("07", "time_burns")
def with_as_completed(executor, count, ms):
    start = time.perf_counter()
    for future in as_completed([executor.submit(burn, ms) for _ in range(count)]):
        future.result()
    return time.perf_counter() - start


@wrong("07", "time_burns", "returned before the work was done")
def map_without_waiting(executor, count, ms):
    start = time.perf_counter()
    executor.map(burn, [ms] * count)
    return time.perf_counter() - start


@wrong("07", "time_burns", "never ran two at once")
def one_at_a_time(executor, count, ms):
    start = time.perf_counter()
    for _ in range(count):
        executor.submit(burn, ms).result()
    return time.perf_counter() - start


@wrong("07", "time_burns", "submit burn itself")
def with_a_lambda(executor, count, ms):
    start = time.perf_counter()
    wait([executor.submit(lambda: burn(ms)) for _ in range(count)])
    return time.perf_counter() - start


@wrong("07", "time_burns", "return the seconds")
def returns_milliseconds(executor, count, ms):
    start = time.perf_counter()
    list(executor.map(burn, [ms] * count))
    return (time.perf_counter() - start) * 1000


@wrong("07", "time_burns", "did not return within", hangs=True)
def spins(executor, count, ms):
    while True:
        pass
