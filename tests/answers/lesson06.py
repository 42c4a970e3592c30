"""safe_increment and run_all (lesson 06)."""

import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from . import right, wrong

LOCK = threading.RLock()


@right("06", "safe_increment")
def with_acquire_and_release(counter):
    LOCK.acquire()
    try:
        value = counter["n"]
        time.sleep(0)
        counter["n"] = value + 1
    finally:
        LOCK.release()


@wrong("06", "safe_increment", "updates lost")
def no_lock(counter):
    counter["n"] += 1


@wrong("06", "safe_increment", "updates lost")
def a_lock_per_call(counter):
    with threading.Lock():
        counter["n"] = counter["n"] + 1


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
