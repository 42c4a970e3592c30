"""Checks for lesson 07 (processes and the GIL): timing a pool; one log file fed by a queue.

time_burns runs on a thread pool that records what is handed to it and
when each piece of work ends, so the check sees whether everything was
submitted before the first wait, and whether all of it was done when the
clock stopped.

write_log runs in a real writer process, fed by real worker processes
through a multiprocessing.Queue, all started with "spawn" (the default on
Windows and macOS) on every OS. A spawned process imports its target by
name, and a function of a notebook cell has no module to import it from, so
the check sends the function's source code and the writer process defines
it again: the student's function may use its arguments and what it imports
itself, nothing else from the notebook. A writer that never stops is
killed after WAIT seconds.
"""

import ast
import importlib
import inspect
import multiprocessing
import os
import tempfile
import textwrap
import time
import threading
import traceback
from concurrent.futures import ThreadPoolExecutor

from .. import experiments
from . import CheckFailed, StudentCall, check, expect, hang_message, passed, plain

DEADLINE = 20.0  # seconds for time_burns: its work takes 0.1 s
WAIT = 10.0  # seconds for write_log to return once it got the sentinel


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


# Exercise 2: one log file, fed by a queue.

WORKERS, LINES = 3, 60
PAUSE_AT, PAUSE_S = 30, 1.0  # worker 0 pauses after 30 lines: the queue runs empty meanwhile
START = 60.0  # seconds for the worker processes: a spawned interpreter can take seconds on a busy machine


def _writer_process(source, name, queue, path, status):
    """In the writer process: define the student's function from its source
    (a function of a notebook cell cannot be imported by a spawned process,
    so its code travels instead), run it, and report how it ended."""
    try:
        namespace = {"__name__": "__write_log__", "os": os, "time": time}  # as the notebook imported them
        exec(compile(source, "<your write_log>", "exec"), namespace)
        namespace[name](queue, path)
        status.send(("returned", None))
    except NotImplementedError:
        status.send(("stub", None))
    except BaseException as error:
        frames = [frame for frame in traceback.extract_tb(error.__traceback__) if frame.filename == "<your write_log>"]
        where = f" (line {frames[-1].lineno} of the function: `{source.splitlines()[frames[-1].lineno - 1].strip()}`)" \
            if frames else ""
        status.send(("raised", f"{type(error).__name__}: {error}{where}"))


def _source(function):
    """The source of `function`, without decorators, as a spawned process will define it."""
    try:
        text = textwrap.dedent(inspect.getsource(function))
        tree = ast.parse(text)
    except (OSError, TypeError, SyntaxError):
        raise CheckFailed("the check cannot read the source of write_log: define it with `def write_log(queue, "
                          "path):` in the cell above and run that cell again") from None
    definition = tree.body[0] if tree.body else None
    if not isinstance(definition, ast.FunctionDef):
        raise CheckFailed("write_log should be a function defined with `def` in the cell above (not a lambda)")
    definition.decorator_list = []
    return ast.unparse(definition), definition.name


@check
def write_log(write_log):
    """write_log(queue, path): the writer process. The check starts it with
    real processes (spawn, as on Windows and macOS): 3 workers put 60 lines
    each, one of them pausing half-way (the queue is empty meanwhile); once
    every worker has ended it puts None, and the writer must return within
    WAIT seconds. The file must hold every line once, whole, in each worker's order."""
    source, name = _source(write_log)
    # The targets as the processes will import them: by name, from the modules as they are now
    # (a grader imports labserver afresh before each check; pickle wants the very objects it finds by name).
    writer_target = importlib.import_module(__name__)._writer_process
    worker_target = importlib.import_module("labserver.experiments").log_worker
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    status, status_in = context.Pipe(duplex=False)
    with tempfile.TemporaryDirectory(prefix="labserver-log-") as folder:
        path = os.path.join(folder, "server.log")
        writer = context.Process(target=writer_target, args=(source, name, queue, path, status_in),
                                 name="labserver-check-writer", daemon=True)
        workers = [context.Process(target=worker_target,
                                   args=(queue, n, LINES, PAUSE_AT if n == 0 else None, PAUSE_S),
                                   name=f"labserver-check-worker-{n}", daemon=True) for n in range(WORKERS)]
        try:
            writer.start()
            status_in.close()
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join(START)
            expect(not any(worker.is_alive() for worker in workers),
                   f"the worker processes did not finish within {START:g} s: is the machine very busy? Run the "
                   f"check again")
            ended_early = writer.exitcode is not None or status.poll(0.2)
            queue.put(None)  # the sentinel: every worker has ended, nothing comes after it
            writer.join(WAIT)
            hung = writer.is_alive()
            if hung:
                writer.kill()
                writer.join()
            try:
                how, detail = status.recv() if status.poll(1) else (None, None)
            except EOFError:  # it ended without a word: killed, or it called os._exit()
                how, detail = None, None
        finally:
            for process in [writer, *workers]:
                if process.is_alive():
                    process.kill()
                if process.pid is not None:
                    process.join()
            queue.cancel_join_thread()  # what nobody read stays behind: do not wait to flush it
            queue.close()
            status.close()
        if how == "stub":
            raise CheckFailed("write_log() is not written yet: replace `raise NotImplementedError` with your code")
        if how == "raised":
            hint = (" A spawned process gets only your function's code: import inside it what it needs, and "
                    "define any helper function inside it too"
                    if detail.startswith("NameError") else "")
            raise CheckFailed(f"your write_log raised {detail}.{hint}")
        if hung:
            raise CheckFailed(f"write_log did not return within {WAIT:g} s after it got None, the sentinel: "
                              f"the writer process would run forever and the server could never stop. When "
                              f"queue.get() returns None, leave the loop (and close the file)")
        try:
            with open(path, encoding="utf-8", newline="") as file:
                lines = file.read().splitlines(keepends=True)
        except FileNotFoundError:
            lines = []
    expected = [experiments.log_line(n, i) for n in range(WORKERS) for i in range(LINES)]
    total = len(expected)
    if ended_early:
        raise CheckFailed(f"write_log returned before it got None: it wrote {len(lines)} of {total} lines. "
                          f"An empty queue is not the end (worker 0 paused for a moment, as a real one may): "
                          f"only the sentinel says that nothing more will come, so wait for it with queue.get()")
    expect(lines, "the file is empty: write each line that queue.get() returns to the file at `path`")
    expect(not any(line.strip() == "None" for line in lines),
           "the file contains the line 'None': the sentinel is a signal to stop, not a line to write")
    expect(not any(line in ("\n", "\r\n") for line in lines),
           "the file has empty lines: each line from the queue already ends with \\n; write() it as it is "
           "(print() adds a second newline)")
    wanted = set(expected)
    broken = [line for line in lines if line not in wanted]
    expect(not broken, f"{len(broken)} line(s) in the file are not lines the workers sent, e.g. {broken[0]!r}: "
                       f"write each line whole, as queue.get() returned it" if broken else "")
    expect(len(lines) == len(set(lines)), "some lines are in the file twice: write each line once")
    missing = [line for line in expected if line not in set(lines)]
    expect(not missing,
           f"only {len(lines)} of the {total} lines are in the file (missing e.g. {missing[0].split(' .')[0]!r}): "
           f"opening the file with \"w\" empties it each time; open it once, before the loop, and write every "
           f"line" if missing else "")
    for n in range(WORKERS):
        mine = [line for line in lines if line.startswith(f"worker {n} ")]
        expect(mine == [experiments.log_line(n, i) for i in range(LINES)],
               f"worker {n}'s lines are not in the order it sent them: write them in the order queue.get() "
               f"returns them")
    passed(f"write_log: {WORKERS} worker processes, one writer process, {total} lines in one file: every line "
           f"once, whole, in order; the writer stopped on the sentinel")
