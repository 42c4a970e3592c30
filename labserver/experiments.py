"""Experiments with real HTTP clients against a running server (lessons 01-07).

Where primitives.py plays with bare sockets, these functions act like the
lecture's users: one downloads a big file over a slow line while another just
wants a small page. Each returns plain data to print or plot, and closes every
connection it opens.

    with IterativeServer() as server:
        first_byte_while_busy(server.url)
    # {'download_bytes': 4000000, 'download_s': 2.0, 'first_byte_s': 1.8, 'timed_out': False}

Lessons 06 and 07 add experiments about threads and processes themselves:
lost updates on a shared counter, what a thread and a process cost to start
(fork against spawn), what a child process can and cannot change, a crash
in a worker, and the GIL's convoy effect seen by a perf2-style monitor.
"""

import asyncio
import http.client
import multiprocessing
import multiprocessing.connection
import os
import socket
import sys
import threading
import time
from urllib.parse import urlsplit

from .app.workloads import burn_cpu


def _connect(url, timeout):
    parts = urlsplit(url)
    return http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)


def download_slowly(url, path, rate=1_000_000, chunk=32 * 1024, timeout=30):
    """Download `path` reading at most `rate` bytes/s, like a phone on a bad
    network; return (bytes received, seconds)."""
    conn = _connect(url, timeout)
    start = time.perf_counter()
    received = 0
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        while data := response.read(chunk):
            received += len(data)
            # Sleep until the time this many bytes should have taken at `rate`.
            time.sleep(max(0.0, start + received / rate - time.perf_counter()))
    finally:
        conn.close()
    return received, time.perf_counter() - start


def time_to_first_byte(url, path="/", timeout=10):
    """Seconds until the first byte of the response to GET `path` arrives,
    or None if it did not arrive within `timeout` (the client gave up)."""
    conn = _connect(url, timeout)
    start = time.perf_counter()
    try:
        conn.request("GET", path)
        conn.sock.recv(1)  # blocks until the server starts to answer
        return time.perf_counter() - start
    except TimeoutError:
        return None
    finally:
        conn.close()


def first_byte_while_busy(url, big="/bytes/4000000", small="/", rate=2_000_000, timeout=10):
    """Client A downloads `big` slowly; meanwhile client B asks for `small`.
    How long does B wait for its first byte? (Lecture: "ugly to make everyone
    wait on the first user to finish".)"""
    result = {}

    def client_a():
        result["download_bytes"], result["download_s"] = download_slowly(url, big, rate)

    a = threading.Thread(target=client_a, name="client-A")
    a.start()
    time.sleep(0.2)  # let A's download get going first
    first_byte = time_to_first_byte(url, small, timeout)
    a.join()
    result["first_byte_s"] = first_byte
    result["timed_out"] = first_byte is None
    return result


def concurrent_get(url, path="/", clients=8, timeout=30):
    """`clients` users send GET `path` at the same moment, each on its own
    connection. Returns each one's response time in seconds (None if it timed
    out or failed) and the wall time until the last one finished: if the
    server overlaps them, the wall time is close to one response time; if it
    serves them one after another, it is close to their sum."""
    times = [None] * clients
    go = threading.Event()

    def user(i):
        conn = _connect(url, timeout)
        try:
            conn.connect()
            go.wait()
            start = time.perf_counter()
            conn.request("GET", path)
            conn.getresponse().read()
            times[i] = time.perf_counter() - start
        except OSError:
            pass  # stays None: the lesson's plot shows it as a failure
        finally:
            conn.close()

    users = [threading.Thread(target=user, args=(i,), name=f"user-{i}") for i in range(clients)]
    for thread in users:
        thread.start()
    time.sleep(0.05)  # everyone connected, then all send at once
    start = time.perf_counter()
    go.set()
    for thread in users:
        thread.join()
    return {"times": times, "wall_s": time.perf_counter() - start}


def send_raw(url, data, timeout=5):
    """Send raw bytes to the server and return every byte it answers until it
    closes the connection or goes quiet for `timeout` seconds: HTTP by hand."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as sock:
        sock.sendall(data)
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except TimeoutError:
            pass  # the server keeps the connection open: we have what it sent
    return received


# Lesson 06: threads share memory.


def start_cost(kind="thread", count=100):
    """Seconds to start `count` threads and wait for each to end, one after
    the other; each runs an empty function. Returns {"kind", "count",
    "total_s", "each_ms"}. For processes, see process_start_cost (lesson 07)."""
    if kind != "thread":
        raise ValueError(f"kind must be 'thread' (processes: process_start_cost), not {kind!r}")
    start = time.perf_counter()
    for _ in range(count):
        worker = threading.Thread(target=os.getpid)
        worker.start()
        worker.join()
    total = time.perf_counter() - start
    return {"kind": kind, "count": count, "total_s": total, "each_ms": total / count * 1000}


SPARE_FILES = 16  # descriptors left free for what the experiment opens besides its clients


def idle_clients_and_a_newcomer(url, clients=100, path="/", timeout=5.0, pid=None, settle=0.3):
    """Open `clients` connections that send nothing (browsers keeping a
    connection open for later), then a newcomer asks for `path`. Returns
    {"clients", "note" (why fewer clients than asked, or None), "first_byte_s"
    (None: nothing within `timeout`),
    "threads_before", "threads_during", "rss_before_mb", "rss_during_mb",
    "vms_before_mb", "vms_during_mb"}: the OS threads and memory of process
    `pid` (default: this one, for a server started in the notebook) before
    the idle clients connect and while they are connected. RSS is memory
    actually in RAM; VMS is address space reserved, most of it never touched.
    Needs psutil. Every connection is closed before it returns."""
    import psutil

    from .limits import RESERVE, raise_open_files_limit

    # Both ends of every connection when the server runs in this process, beside what
    # is open already (a notebook kernel holds dozens of sockets): macOS starts at 256 files.
    per_client = 2 if pid is None else 1
    in_use = psutil.Process().num_fds() if hasattr(psutil.Process, "num_fds") else RESERVE  # (not on Windows)
    limit = raise_open_files_limit(in_use + per_client * clients + SPARE_FILES)
    asked, note = clients, None
    if limit is not None and in_use + per_client * clients + SPARE_FILES > limit:
        clients = max(1, (limit - in_use - SPARE_FILES) // per_client)
        note = f"{clients} idle clients instead of {asked}: this process may open {limit} files, {in_use} are open"
    process = psutil.Process(os.getpid() if pid is None else pid)
    parts = urlsplit(url)

    def sample():
        with process.oneshot():
            memory = process.memory_info()
            return process.num_threads(), memory.rss / 2**20, memory.vms / 2**20

    threads_before, rss_before, vms_before = sample()
    sockets = []
    try:
        for _ in range(clients):
            sockets.append(socket.create_connection((parts.hostname, parts.port), timeout=5))
        time.sleep(settle)  # let the server accept them all
        threads_during, rss_during, vms_during = sample()
        first_byte = time_to_first_byte(url, path, timeout)
    finally:
        for sock in sockets:
            sock.close()
    return {"clients": clients, "note": note, "first_byte_s": first_byte,
            "threads_before": threads_before, "threads_during": threads_during,
            "rss_before_mb": rss_before, "rss_during_mb": rss_during,
            "vms_before_mb": vms_before, "vms_during_mb": vms_during}


class PausingDict(dict):
    """A dict that lets other threads run (time.sleep(0)) after every read and
    before every write: a thread switch at the worst moment, every time,
    instead of once in a while. Code that reads, adds and writes back
    without a lock then loses updates on every run; with one lock around the
    read and the write, nothing is lost however long the pauses are."""

    def __getitem__(self, key):
        value = super().__getitem__(key)
        time.sleep(0)
        return value

    def get(self, key, default=None):
        value = super().get(key, default)
        time.sleep(0)
        return value

    def __contains__(self, key):
        found = super().__contains__(key)
        time.sleep(0)
        return found

    def setdefault(self, key, default=None):
        time.sleep(0)
        return super().setdefault(key, default)

    def __setitem__(self, key, value):
        time.sleep(0)
        super().__setitem__(key, value)


def record_hits_in_threads(record_hit, threads=8, per_thread=100_000, paths=("/", "/about.html", "/style.css"),
                           hits=None):
    """`threads` threads each call record_hit(hits, path) `per_thread` times,
    cycling through `paths`, all starting together, as a server's workers
    would count the requests for each page. Returns {"expected", "counted",
    "lost", "seconds", "hits"}: every update one thread overwrote with an
    older value is missing from "counted". A record_hit that never returns
    (a lock never released) makes this hang: a check runs it with a deadline."""
    hits = {} if hits is None else hits
    start_line = threading.Barrier(threads)
    errors = []

    def work(number):
        try:
            start_line.wait()
            for i in range(per_thread):
                record_hit(hits, paths[(number + i) % len(paths)])
        except BaseException as error:  # reported below, not printed by threading
            errors.append(error)
            start_line.abort()  # the others must not wait for us at the start line

    # Daemon threads: if record_hit deadlocks, the kernel can still exit.
    workers = [threading.Thread(target=work, args=(i,), name=f"hits-{i}", daemon=True) for i in range(threads)]
    start = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    seconds = time.perf_counter() - start
    first = next((e for e in errors if not isinstance(e, threading.BrokenBarrierError)), None)
    if first is not None:
        raise first
    expected = threads * per_thread
    counted = sum(v for v in dict(hits).values() if isinstance(v, int))
    return {"expected": expected, "counted": counted, "lost": expected - counted, "seconds": seconds,
            "hits": dict(hits)}


# Lesson 07: processes and the GIL.


def gil_enabled():
    """True on the usual CPython, False on a free-threaded build (3.13t and
    later) running without its GIL."""
    check = getattr(sys, "_is_gil_enabled", None)
    return True if check is None else check()


def _append_and_report(items, value, reply):
    """In a child process: append to our copy of the list, send it back."""
    items.append(value)
    reply.send(items)
    reply.close()


def who_sees_the_change(items=(1, 2, 3), value=4):
    """A thread and a child process each append `value` to a list the parent
    made. Returns what the parent's list holds afterwards in each case, and
    what the child process saw in its own copy:
    {"after_thread", "after_process", "in_the_child"}."""
    shared = list(items)
    thread = threading.Thread(target=shared.append, args=(value,))
    thread.start()
    thread.join()

    mine = list(items)
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe(duplex=False)
    child = context.Process(target=_append_and_report, args=(mine, value, theirs))
    child.start()  # `mine` is pickled: the child gets a copy
    theirs.close()
    try:
        in_the_child = ours.recv() if ours.poll(30) else None
    finally:
        ours.close()
        child.join()
        child.close()
    return {"after_thread": shared, "after_process": mine, "in_the_child": in_the_child}


def burn(ms):
    """Use `ms` milliseconds of CPU in pure Python (the work of /cpu?ms=N) and
    return the rounds counted. Defined in a module, not in a notebook cell, so
    that a process pool's fresh interpreters can import it by name."""
    return burn_cpu(ms / 1000)


def process_tree(pid):
    """The processes of a server launched with labserver.load.launch(): the
    server process and its children, each as {"pid", "role", "threads",
    "rss_mb"} (resident memory). Needs psutil; processes that end meanwhile
    are left out."""
    import psutil

    rows = []
    parent = psutil.Process(pid)
    for number, process in enumerate([parent, *parent.children(recursive=True)]):
        try:
            with process.oneshot():
                command = " ".join(process.cmdline())
                role = ("server" if number == 0 else
                        "multiprocessing's resource tracker" if "resource_tracker" in command else "worker")
                rows.append({"pid": process.pid, "role": role, "threads": process.num_threads(),
                             "rss_mb": process.memory_info().rss / 2**20})
        except psutil.Error:
            pass
    return rows


def _pid_after(seconds):
    time.sleep(seconds)
    return os.getpid()


def start_workers(executor, workers, timeout=60.0):
    """Make a ProcessPoolExecutor start all `workers` processes now, so that
    their start-up is not part of what you measure next (since Python 3.9 it
    starts them only when work arrives, and a fresh interpreter takes a while).
    Returns the set of worker process ids."""
    pids = set()
    deadline = time.monotonic() + timeout
    while len(pids) < workers and time.monotonic() < deadline:
        # Short waits keep each worker busy, so the next job goes to another one.
        pids |= set(executor.map(_pid_after, [0.05] * workers))
    return pids


def process_start_cost(method="spawn", count=20):
    """Seconds to start `count` processes, one after the other, each doing
    nothing and ending at once, and to wait for each. `method` names how:
      "fork"   os.fork(): the OS copies this process (its page tables; memory
               is shared copy-on-write); the child calls os._exit(0) at once,
               so it runs no Python at all. POSIX only (Windows has no fork).
      "spawn"  multiprocessing's "spawn": a fresh Python interpreter, which
               starts up, imports what it needs, runs os.getpid and exits; the
               default on Windows and macOS, and what labserver's pool uses.
    Returns {"method", "count", "total_s", "each_ms"}."""
    if method == "fork":
        if not hasattr(os, "fork"):
            raise ValueError("this OS has no fork() (Windows): only 'spawn' is available")
        import warnings

        def one():
            with warnings.catch_warnings():
                # Python 3.12+ warns when a process with threads forks: the child could find a lock held by
                # a thread that does not exist in it. This child takes no lock: it only calls os._exit().
                warnings.simplefilter("ignore", DeprecationWarning)
                pid = os.fork()
            if pid == 0:
                os._exit(0)
            os.waitpid(pid, 0)
    elif method == "spawn":
        context = multiprocessing.get_context("spawn")

        def one():
            child = context.Process(target=os.getpid)  # a function of the standard library: a new process finds it
            child.start()
            child.join()
            child.close()
    else:
        raise ValueError(f"method must be 'fork' or 'spawn', not {method!r}")
    start = time.perf_counter()
    for _ in range(count):
        one()
    total = time.perf_counter() - start
    return {"method": method, "count": count, "total_s": total, "each_ms": total / count * 1000}


# The convoy effect (Beazley, PyCon 2015, perf2.py): small requests next to a CPU-bound one.


def _count_small_requests(url, seconds, path, report, go):
    """In a child process, like perf2.py: send GET `path` on one keep-alive
    connection, one after the other, for `seconds`; report the count. Before
    it starts, report the connection's own address and wait for the word."""
    conn = _connect(url, 30)
    try:
        conn.connect()
        report.send(conn.sock.getsockname())
        if not go.poll(30) or not go.recv():
            return
        count, end = 0, time.perf_counter() + seconds
        while time.perf_counter() < end:
            conn.request("GET", path)
            conn.getresponse().read()
            count += 1
        report.send(count)
    except OSError as error:
        report.send(f"{type(error).__name__}: {error}")
    finally:
        conn.close()


def _serving_process(server_pid, client_address, wait=2.0):
    """The pid of the process, in the tree of `server_pid`, that holds the
    server's end of the connection from `client_address` (once it has
    accepted it: we look again for up to `wait` s); None if unknown."""
    try:
        import psutil
    except ImportError:
        return None
    deadline = time.monotonic() + wait
    while True:
        try:
            parent = psutil.Process(server_pid)
            for process in [parent, *parent.children(recursive=True)]:
                connections = getattr(process, "net_connections", None) or process.connections  # psutil < 6
                for c in connections(kind="tcp"):
                    if c.raddr and tuple(c.raddr)[:2] == tuple(client_address)[:2]:
                        return process.pid
        except psutil.Error:  # a process ended, or the OS would not tell: we do not know
            return None
        if time.monotonic() > deadline:
            return None
        time.sleep(0.02)


def small_request_rate(url, seconds=1.0, cpu_ms=0, server_pid=None, path="/bytes/16"):
    """Small requests per second, counted by a client in another process (a
    perf2-style monitor on one keep-alive connection), with nothing else
    running (cpu_ms=0) or while another client sends GET /cpu?ms=`cpu_ms`
    requests back to back on its own connection.

    With server_pid (a launched server's pid) and a server of several
    processes, the CPU-bound client reconnects until another process than
    the monitor's serves it: a worker is an event loop, and two connections
    on one worker would show the loop stalled by /cpu, not the GIL.
    Returns {"rps", "requests", "seconds", "cpu_ms", "cpu_requests",
    "same_process"} (same_process: True if both were served by one process,
    None if unknown)."""
    context = multiprocessing.get_context("spawn")
    report, report_in = context.Pipe(duplex=False)
    go_out, go = context.Pipe(duplex=False)
    monitor = context.Process(target=_count_small_requests, args=(url, seconds, path, report_in, go_out),
                              name="labserver-monitor", daemon=True)
    monitor.start()
    report_in.close()
    go_out.close()
    stop, cpu = threading.Event(), {"requests": 0, "error": None}
    worker = None
    try:
        if not report.poll(60):
            raise RuntimeError("the monitor process did not start within 60 s")
        monitor_address = report.recv()
        if isinstance(monitor_address, str):
            raise RuntimeError(f"the monitor could not connect: {monitor_address}")
        same = None
        if cpu_ms:
            conn, same = _connect(url, 30), None
            if server_pid is not None:
                monitor_pid = _serving_process(server_pid, monitor_address)
                for _ in range(20):  # the kernel picks a worker per connection: try until it is another
                    conn.connect()
                    mine = _serving_process(server_pid, conn.sock.getsockname())
                    same = None if mine is None or monitor_pid is None else mine == monitor_pid
                    if not same or mine == server_pid:  # another process, or a server of one process
                        break
                    conn.close()
                    conn = _connect(url, 30)

            def cpu_bound():
                try:
                    while not stop.is_set():
                        conn.request("GET", f"/cpu?ms={cpu_ms}")
                        conn.getresponse().read()
                        cpu["requests"] += 1
                except OSError as error:
                    cpu["error"] = error
                finally:
                    conn.close()

            worker = threading.Thread(target=cpu_bound, name="labserver-cpu-client", daemon=True)
            worker.start()
            time.sleep(0.05)  # its first /cpu request is running now
        go.send(True)
        if not report.poll(seconds + 60):
            raise RuntimeError("the monitor did not report")
        count = report.recv()
        if isinstance(count, str):
            raise RuntimeError(f"the monitor's requests failed: {count}")
    finally:
        stop.set()
        if worker is not None:
            worker.join(cpu_ms / 1000 + 30)
        go.close()
        report.close()
        monitor.join(10)
        if monitor.is_alive():
            monitor.kill()
            monitor.join()
        monitor.close()
    if cpu["error"] is not None:
        raise RuntimeError(f"the CPU-bound client failed: {cpu['error']}")
    return {"rps": count / seconds, "requests": count, "seconds": seconds, "cpu_ms": cpu_ms,
            "cpu_requests": cpu["requests"], "same_process": same}


# Crash isolation: "processes are safer".


def _serve_jobs(report, jobs, job_s, crash_at):
    """One worker: `jobs` jobs of `job_s` s each (a sleep, like a client
    served), reporting each on `report`; with crash_at, the process ends
    abruptly after that many jobs, as a crash in C code would end it."""
    for done in range(1, jobs + 1):
        time.sleep(job_s)
        report.send(done)
        if done == crash_at:
            os._exit(70)  # no cleanup, no exception to catch: the whole process ends here


def _threads_in_one_process(reports, jobs, job_s, crash_at, crasher):
    """In a child process: one thread per worker, the same jobs; thread
    `crasher` ends the process after crash_at jobs."""
    threads = [threading.Thread(target=_serve_jobs, args=(report, jobs, job_s, crash_at if n == crasher else None))
               for n, report in enumerate(reports)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def crash_one_worker(kind, workers=3, jobs=20, job_s=0.02, crash_at=5, crasher=1):
    """`workers` workers each serve `jobs` jobs; worker `crasher` calls
    os._exit() after `crash_at` of them. kind "processes": each worker is a
    process of its own; kind "threads": the workers are threads of one
    process. Everything runs in child processes, so this process (a notebook
    kernel) survives either way. Returns {"kind", "served": jobs done per
    worker, "exit_codes": of the child processes}."""
    if kind not in ("processes", "threads"):
        raise ValueError(f"kind must be 'processes' or 'threads', not {kind!r}")
    context = multiprocessing.get_context("spawn")
    pipes = [context.Pipe(duplex=False) for _ in range(workers)]
    if kind == "processes":
        children = [context.Process(target=_serve_jobs, args=(theirs, jobs, job_s, crash_at if n == crasher else None),
                                    name=f"labserver-worker-{n}", daemon=True)
                    for n, (_, theirs) in enumerate(pipes)]
    else:
        children = [context.Process(target=_threads_in_one_process,
                                    args=([theirs for _, theirs in pipes], jobs, job_s, crash_at, crasher),
                                    name="labserver-threads", daemon=True)]
    for child in children:
        child.start()
    for _, theirs in pipes:
        theirs.close()  # the children hold the writing ends now: when they end, we read EOF
    served, open_pipes = [0] * workers, {ours: n for n, (ours, _) in enumerate(pipes)}
    deadline = time.monotonic() + 60 + jobs * job_s
    try:
        while open_pipes and time.monotonic() < deadline:
            for ours in multiprocessing.connection.wait(list(open_pipes), timeout=1):
                try:
                    served[open_pipes[ours]] = ours.recv()
                except EOFError:
                    del open_pipes[ours]
    finally:
        for ours, _ in pipes:
            ours.close()
        for child in children:
            child.join(10)
            if child.is_alive():
                child.kill()
                child.join()
    codes = [child.exitcode for child in children]
    for child in children:
        child.close()
    return {"kind": kind, "served": served, "exit_codes": codes}


# IPC: many processes, one log file (the check of the log-writer exercise runs these).


def log_line(worker, number):
    """The log line `number` of `worker`, newline included."""
    return f"worker {worker} line {number:04d} " + "." * 40 + "\n"


def log_worker(queue, worker, lines, pause_at=None, pause_s=0.3):
    """A worker process: put `lines` log lines on `queue`, pausing `pause_s`
    after `pause_at` of them (meanwhile the queue may be empty)."""
    for number in range(lines):
        if number == pause_at:
            time.sleep(pause_s)
        queue.put(log_line(worker, number))



# Lesson 05: a blocking call inside an event loop, and run_in_executor.


def blocking_calls_on_a_loop(calls=5, ms=200, offload=False):
    """`calls` coroutines on one asyncio event loop each make a blocking call
    of `ms` ms (time.sleep, as /block does), all at once, while a heartbeat
    coroutine ticks every 10 ms. offload=True hands each call to the loop's
    default thread pool (`await loop.run_in_executor(None, ...)`) instead.
    Returns the wall time until all calls are done and the longest gap
    between two heartbeats: how long the loop served nobody. The loop runs in
    a thread of its own (a notebook's thread already runs one), with
    asyncio.run(), which shuts the thread pool down before it returns."""

    async def handler():
        if offload:
            await asyncio.get_running_loop().run_in_executor(None, time.sleep, ms / 1000)  # a pool thread waits
        else:
            time.sleep(ms / 1000)  # the loop's own thread waits: every other coroutine waits too

    async def heartbeat(stop, gaps):
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(0.01)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    async def main():
        stop, gaps = asyncio.Event(), []
        beat = asyncio.create_task(heartbeat(stop, gaps))
        await asyncio.sleep(0.05)  # the heartbeat is going
        start = time.perf_counter()
        await asyncio.gather(*(handler() for _ in range(calls)))
        wall = time.perf_counter() - start
        stop.set()
        await beat
        return {"wall_s": wall, "longest_gap_s": max(gaps)}

    outcome = {}

    def run():
        try:
            outcome["result"] = asyncio.run(main())
        except BaseException as error:  # raised again in the caller's thread
            outcome["error"] = error

    thread = threading.Thread(target=run, name="labserver-asyncio-demo")
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]
