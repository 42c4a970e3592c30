"""time_burns and write_log (lesson 07).

The write_log answers run in a spawned writer process from their source
code, as a notebook cell's would: each imports what it uses itself."""

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


# write_log(queue, path): the writer process of one log file.


@right("07", "write_log")
def with_iter_and_a_sentinel(queue, path):
    with open(path, "a", encoding="utf-8") as log:
        for line in iter(queue.get, None):
            log.write(line)


@right("07", "write_log")
def opens_the_file_for_each_line(queue, path):
    while True:
        line = queue.get()
        if line is None:
            return
        with open(path, "a", encoding="utf-8") as log:  # slow, but only this process writes
            log.write(line)
            log.flush()


@right("07", "write_log")
def collects_then_writes_once(queue, path):
    lines = []
    while (line := queue.get()) is not None:
        lines.append(line)
    with open(path, "w", encoding="utf-8") as log:
        log.writelines(lines)


@wrong("07", "write_log", "returned before it got None")
def stops_when_the_queue_is_empty(queue, path):
    import time

    time.sleep(0.5)  # "the workers have surely started by now"
    with open(path, "a", encoding="utf-8") as log:
        while not queue.empty():
            log.write(queue.get())


@wrong("07", "write_log", "returned before it got None")
def stops_on_a_timeout(queue, path):
    import queue as queues

    with open(path, "a", encoding="utf-8") as log:
        while True:
            try:
                line = queue.get(timeout=0.5)  # "a worker is never that slow"
            except queues.Empty:
                return
            if line is None:
                return
            log.write(line)


@wrong("07", "write_log", "after it got None", hangs=True)
def never_looks_for_the_sentinel(queue, path):
    with open(path, "a", encoding="utf-8") as log:
        while True:
            line = queue.get()
            if line:
                log.write(line)
                log.flush()


@wrong("07", "write_log", "empties it each time")
def reopens_with_w(queue, path):
    for line in iter(queue.get, None):
        with open(path, "w", encoding="utf-8") as log:
            log.write(line)


@wrong("07", "write_log", "empty lines")
def prints_each_line(queue, path):
    with open(path, "a", encoding="utf-8") as log:
        for line in iter(queue.get, None):
            print(line, file=log)


@wrong("07", "write_log", "'None'")
def writes_the_sentinel_too(queue, path):
    with open(path, "a", encoding="utf-8") as log:
        while True:
            line = queue.get()
            log.write(str(line) if line is not None else "None\n")
            if line is None:
                return


@wrong("07", "write_log", "import inside it")
def uses_a_name_from_another_cell(queue, path):
    with open(path, "a", encoding="utf-8") as log:
        for line in iter(queue.get, SENTINEL):  # noqa: F821  (defined in another cell, which does not travel)
            log.write(line)
