"""record_hit (find and fix a race) and run_all (lesson 06)."""

import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from . import right, wrong

HITS_LOCK = threading.Lock()
ONE_RLOCK = threading.RLock()
PAGE_LOCKS = {}  # path -> its own lock
COUNTERS_LOCK = threading.Lock()


@right("06", "record_hit")
def one_lock_around_read_and_write(hits, path):
    with HITS_LOCK:
        hits[path] = hits.get(path, 0) + 1


@right("06", "record_hit")
def acquire_and_release_an_rlock(hits, path):
    ONE_RLOCK.acquire()
    try:
        if path in hits:
            hits[path] += 1
        else:
            hits[path] = 1
    finally:
        ONE_RLOCK.release()


@right("06", "record_hit")
def a_lock_per_page(hits, path):
    lock = PAGE_LOCKS.setdefault(path, threading.Lock())  # one atomic step: every thread gets the same lock
    with lock:
        count = hits.get(path, 0)
        hits[path] = count + 1


@wrong("06", "record_hit", "updates lost")
def as_shipped(hits, path):
    hits[path] = hits.get(path, 0) + 1


@wrong("06", "record_hit", "updates lost")
def augmented_assignment(hits, path):
    hits.setdefault(path, 0)
    hits[path] += 1  # still a read, an add and a write


@wrong("06", "record_hit", "updates lost.*made inside the function")
def a_new_lock_per_call(hits, path):
    with threading.Lock():
        hits[path] = hits.get(path, 0) + 1


@wrong("06", "record_hit", "updates lost.*only one of")
def lock_around_the_read_only(hits, path):
    with COUNTERS_LOCK:
        count = hits.get(path, 0)
    hits[path] = count + 1


@wrong("06", "record_hit", "updates lost")
def lock_around_the_write_only(hits, path):
    count = hits.get(path, 0) + 1
    with COUNTERS_LOCK:
        hits[path] = count


# The two answers below acquire with a timeout only so that the threads they
# block end a few seconds after the test (a thread stuck in acquire() cannot
# be stopped from outside); for the check, 3 s is the same as never.
STUCK = threading.Lock()


@wrong("06", "record_hit", "never released", hangs=True)
def acquire_without_release(hits, path):
    STUCK.acquire(timeout=3)
    hits[path] = hits.get(path, 0) + 1


STUCK_R = threading.RLock()


@wrong("06", "record_hit", "never released", hangs=True)
def rlock_without_release(hits, path):
    STUCK_R.acquire(timeout=3)  # the first thread may take it again and again; the others wait for ever
    hits[path] = hits.get(path, 0) + 1


@right("06", "run_all")
def with_an_executor(tasks, workers):
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(task) for task in tasks]
        return [future.result() for future in futures]


@right("06", "run_all")
def with_sentinels(tasks, workers):
    work, results = queue.Queue(), {}
    for item in enumerate(tasks):
        work.put(item)
    for _ in range(workers):
        work.put(None)

    def worker():
        while (item := work.get()) is not None:
            results[item[0]] = item[1]()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [results[i] for i in range(len(tasks))]


def _pool(tasks, workers, join=True, wait=True, in_order=True):
    work, results, lock = queue.Queue(), ([None] * len(tasks) if in_order else []), threading.Lock()
    for item in enumerate(tasks):
        work.put(item)

    def worker():
        while True:
            try:
                index, task = work.get_nowait()
            except queue.Empty:
                return
            value = task()
            with lock:
                if in_order:
                    results[index] = value
                else:
                    results.append(value)

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for thread in threads:
        thread.start()
    if join:
        for thread in threads:
            thread.join()
    elif wait:
        while None in results:
            time.sleep(0.001)  # waits for the results, not for the threads
    return results


@wrong("06", "run_all", "in the order of the tasks")
def completion_order(tasks, workers):
    return _pool(tasks, workers, in_order=False)


@wrong("06", "run_all", "never called join\\(\\)|still running")
def waits_for_results_not_threads(tasks, workers):
    return _pool(tasks, workers, join=False)


@wrong("06", "run_all", "still running")
def does_not_wait(tasks, workers):
    return _pool(tasks, workers, join=False, wait=False)


@wrong("06", "run_all", "started 12 threads")
def a_thread_per_task(tasks, workers):
    limit, results = threading.Semaphore(workers), [None] * len(tasks)

    def run(index, task):
        with limit:
            results[index] = task()

    threads = [threading.Thread(target=run, args=item) for item in enumerate(tasks)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@wrong("06", "run_all", "ran one at a time")
def one_after_another(tasks, workers):
    return [task() for task in tasks]


@wrong("06", "run_all", "still running")
def daemon_workers_and_queue_join(tasks, workers):
    work, results = queue.Queue(), [None] * len(tasks)
    for item in enumerate(tasks):
        work.put(item)

    def worker():
        while True:
            index, task = work.get()
            results[index] = task()
            work.task_done()

    for _ in range(workers):
        threading.Thread(target=worker, daemon=True).start()
    work.join()
    return results
