"""The first lessons' experiments: blocking, non-blocking, select() and callbacks.

Each function below is one small experiment from the lecture, short enough to
read in full (`primitives.time_blocking_recv??` in a notebook). It makes its
own connected sockets (socket.socketpair(): two ends of one connection, no
network needed), lets a helper thread play the other side, measures, closes
every socket, and returns plain data to print or plot:

    from labserver import primitives
    primitives.time_blocking_recv(delay=0.5)
    # {'data': b'hello', 'blocked_s': 0.5003, 'cpu_s': 0.00004}

CPU times are those of the calling thread (time.thread_time()): in a notebook
kernel, other threads use CPU too, and we only want to see what recv() costs.
Two experiments look at another process instead: server_cpu_percent() (a
server launched in its own process) and select_cost() (a fresh interpreter,
whose low descriptor numbers are free); their docstrings say why.
"""

import contextlib
import errno
import heapq
import queue
import select
import selectors
import socket
import threading
import time

from .limits import RESERVE, raise_open_files_limit


def send_later(sock, delay, data=b"hello"):
    """The other side of the connection: a thread that sends `data` after `delay` s."""
    timer = threading.Timer(delay, sock.send, [data])
    timer.start()
    return timer


def time_blocking_recv(delay=0.5):
    """A blocking recv() waits for the data, and the OS puts us to sleep meanwhile."""
    sock, peer = socket.socketpair()
    timer = send_later(peer, delay)
    try:
        start, cpu_start = time.perf_counter(), time.thread_time()
        data = sock.recv(1024)  # blocks until the other thread sends
        blocked, cpu = time.perf_counter() - start, time.thread_time() - cpu_start
    finally:
        timer.join()
        sock.close()
        peer.close()
    return {"data": data, "blocked_s": blocked, "cpu_s": cpu}


def nonblocking_recv_demo():
    """A non-blocking recv() with no data returns at once, with an exception."""
    sock, peer = socket.socketpair()
    try:
        sock.setblocking(False)
        start = time.perf_counter()
        try:
            sock.recv(1024)
        except BlockingIOError as error:  # "no data yet, try again later"
            raised, code = type(error).__name__, error.errno
        elapsed = time.perf_counter() - start
        peer.send(b"hello")
        data = sock.recv(1024)  # now there is data: it is returned at once
    finally:
        sock.close()
        peer.close()
    return {"raised": raised, "errno": code, "errno_name": errno.errorcode[code],
            "elapsed_s": elapsed, "then_got": data}


def busy_wait_recv(delay=0.5):
    """Wait for data by calling a non-blocking recv() again and again: it burns CPU."""
    sock, peer = socket.socketpair()
    sock.setblocking(False)
    timer = send_later(peer, delay)
    wasted = 0
    try:
        start, cpu_start = time.perf_counter(), time.thread_time()
        while True:
            try:
                data = sock.recv(1024)
                break
            except BlockingIOError:
                wasted += 1  # nothing yet: ask again, at once
        waited, cpu = time.perf_counter() - start, time.thread_time() - cpu_start
    finally:
        timer.join()
        sock.close()
        peer.close()
    return {"data": data, "waited_s": waited, "cpu_s": cpu, "wasted_iterations": wasted}


def select_ready(n=5, ready=(1, 3), timeout=0.1):
    """select() on n sockets returns exactly those with data waiting (or none
    after `timeout` seconds)."""
    pairs = [socket.socketpair() for _ in range(n)]
    try:
        for i in ready:
            pairs[i][1].send(b"hello")  # data waits in socket i
        socks = [sock for sock, _ in pairs]
        start = time.perf_counter()
        readable, _, _ = select.select(socks, [], [], timeout)  # sleeps until one is ready
        elapsed = time.perf_counter() - start
    finally:
        for sock, peer in pairs:
            sock.close()
            peer.close()
    return {"watched": list(range(n)), "sent_to": sorted(ready),
            "ready": sorted(socks.index(sock) for sock in readable), "elapsed_s": elapsed}


def callback_recv(delay=0.2):
    """A minimal event loop: register a callback for a socket, do other work,
    and the loop calls the callback with the data when it arrives."""
    events = []
    selector = selectors.DefaultSelector()
    sock, peer = socket.socketpair()

    def on_data(ready_sock):  # runs only once data is there: recv() will not block
        events.append(f"callback got {ready_sock.recv(1024)!r}")
        selector.unregister(ready_sock)  # nothing more to wait for

    timer = send_later(peer, delay)
    try:
        selector.register(sock, selectors.EVENT_READ, on_data)
        events.append("registered")  # register() returns at once: we are free
        events.append("other work")
        while selector.get_map():  # the event loop: runs while someone waits
            for key, _ in selector.select():  # sleeps until a socket is ready
                key.data(key.fileobj)  # the callback registered with the socket
    finally:
        timer.join()
        selector.close()
        sock.close()
        peer.close()
    return {"events": events}


def two_clients_blocking(delay=0.3):
    """The lecture's "how about two sockets?": client 2 sends first, but a
    blocking recv() on client 1 keeps us from serving client 2 for `delay` s."""

    def serve(socks, log):
        for number, sock in enumerate(socks, 1):
            sock.recv(1024)  # blocks until this client sends, however long others wait
            log(f"served client {number}")

    return two_clients(serve, delay)


def two_clients_select(delay=0.3):
    """The same two clients, served with select(): whoever is ready first goes first."""

    def serve(socks, log):
        waiting = list(socks)
        while waiting:
            readable, _, _ = select.select(waiting, [], [])  # sleeps until one is ready
            for sock in readable:
                sock.recv(1024)  # ready: returns at once
                log(f"served client {socks.index(sock) + 1}")
                waiting.remove(sock)

    return two_clients(serve, delay)


def two_clients(serve, delay):
    """Client 2 sends at once, client 1 after `delay` s; serve(socks, log) serves both."""
    (sock1, peer1), (sock2, peer2) = socket.socketpair(), socket.socketpair()
    start = time.perf_counter()
    timeline = []  # (seconds since start, what happened)

    def log(event):
        timeline.append((round(time.perf_counter() - start, 3), event))

    def client1_sends():
        log("client 1 sent")  # before send(): the server may log right after it
        peer1.send(b"from client 1")

    timer = threading.Timer(delay, client1_sends)
    timer.start()
    try:
        log("client 2 sent")
        peer2.send(b"from client 2")
        serve([sock1, sock2], log)
    finally:
        timer.join()
        for sock in (sock1, peer1, sock2, peer2):
            sock.close()
    at = {event: seconds for seconds, event in timeline}
    return {"timeline": timeline, "client2_waited_s": at["served client 2"] - at["client 2 sent"]}


# Lesson 02: what a busy-wait costs a whole server.

def server_cpu_percent(pid, seconds=1.0, url=None, rate=0, path="/"):
    """CPU used by the server process `pid` (and any children) during `seconds`,
    in % of one core (100 = one core busy all the time), while this process
    sends it `rate` small requests per second (GET `path` on one keep-alive
    connection to `url`; rate=0: no requests, the server idles).

    Measure a server running in its own process (labserver.load.launch), not
    one in this kernel: here it would share our CPU time and our GIL.
    Returns {'cpu_pct', 'seconds', 'requests'}."""
    import http.client
    from urllib.parse import urlsplit

    import psutil

    def cpu_seconds(procs):
        total = 0.0
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                times = proc.cpu_times()
                total += times.user + times.system
        return total

    server = psutil.Process(pid)
    procs = [server, *server.children(recursive=True)]
    conn = None
    if rate:
        parts = urlsplit(url)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
        conn.connect()  # before the clock starts: we measure requests, not connect()
    requests = 0
    try:
        start, cpu_start = time.perf_counter(), cpu_seconds(procs)
        end = start + seconds
        while (now := time.perf_counter()) < end:
            if not rate:
                time.sleep(end - now)  # an idle server: nobody asks anything
                continue
            conn.request("GET", path)
            conn.getresponse().read()
            requests += 1
            time.sleep(max(0.0, min(end, start + requests / rate) - time.perf_counter()))  # keep the pace
        elapsed, cpu = time.perf_counter() - start, cpu_seconds(procs) - cpu_start
    finally:
        if conn is not None:
            conn.close()
    return {"cpu_pct": 100 * cpu / elapsed, "seconds": elapsed, "requests": requests}


# Lesson 03: what select() costs, and where it stops.

def select_cost_here(counts=(10, 100, 500, 1000), repeat=100):
    """The measurement of select_cost(), in this process: for each n in counts,
    n idle sockets (both ends of n/2 socket pairs, nothing sent), and the
    median time of one select.select(socks, [], [], 0) and of one
    selectors.DefaultSelector().select(0) with the same n sockets registered.
    None where select() refuses the sockets (a descriptor >= FD_SETSIZE; on
    Windows, more than 512 sockets, for the selector too: it is select() there)."""
    from .servers.selectserver import FD_SETSIZE

    def median_us(call):
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            call()
            times.append(time.perf_counter() - start)
        return 1e6 * sorted(times)[len(times) // 2]

    rows, skipped = [], []
    limit = raise_open_files_limit()  # as far as it may: macOS starts at 256
    for n in counts:
        if limit is not None and n > limit - RESERVE:
            skipped.append(n)  # more sockets than this process may open
            continue
        pairs = [socket.socketpair() for _ in range((n + 1) // 2)]
        socks = [sock for pair in pairs for sock in pair][:n]
        selector = selectors.DefaultSelector()
        try:
            try:
                select_us = median_us(lambda: select.select(socks, [], [], 0))  # checks all n, every call
            except ValueError:  # "filedescriptor out of range in select()"
                select_us = None
            for sock in socks:
                selector.register(sock, selectors.EVENT_READ)  # once: the kernel keeps the set
            try:
                selector_us = median_us(lambda: selector.select(0))  # returns only ready sockets: none
            except ValueError:  # Windows: DefaultSelector is select(), refused beyond 512 sockets
                selector_us = None
            rows.append({"n": n, "select_us": select_us, "selector_us": selector_us,
                         "highest_fd": max(sock.fileno() for sock in socks)})
        finally:
            selector.close()
            for a, b in pairs:
                a.close()
                b.close()
    with selectors.DefaultSelector() as selector:
        name = type(selector).__name__
    note = (f"left out {', '.join(map(str, skipped))} sockets: a process may open {limit} files here"
            if skipped else None)
    return {"rows": rows, "selector": name, "fd_setsize": FD_SETSIZE, "note": note}


def select_cost(counts=(10, 100, 500, 1000), repeat=100, timeout=60):
    """How long one select() takes over n idle sockets, against one call of
    the selectors module's best mechanism (epoll on Linux, kqueue on macOS)
    with the same sockets registered; returns
    {'rows': [{'n', 'select_us', 'selector_us', 'highest_fd'}, ...],
     'selector': 'EpollSelector', 'fd_setsize': 1024, 'note': None} (times in
    microseconds). Counts over this machine's open-file limit are left out, and
    'note' says so in one line.

    The measurement (select_cost_here) runs in a fresh Python process: select()
    can only watch descriptors numbered below FD_SETSIZE, and a notebook kernel
    already holds dozens of the low numbers; a fresh process has them free."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    package_parent = str(Path(__file__).resolve().parent.parent)  # the child imports this labserver
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in [package_parent, os.environ.get("PYTHONPATH")] if p))
    code = ("import json, sys\n"
            "from labserver.primitives import select_cost_here\n"
            "print(json.dumps(select_cost_here([int(a) for a in sys.argv[1:-1]], int(sys.argv[-1]))))\n")
    done = subprocess.run([sys.executable, "-c", code, *map(str, counts), str(repeat)], env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, encoding="utf-8", timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"the select() measurement failed:\n{done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout)


def select_fd_limit():
    """select() cannot watch a socket whose descriptor is FD_SETSIZE (1024) or
    more; the selectors module's epoll or kqueue can. We move one socket of a
    connected pair to a descriptor number >= FD_SETSIZE, send it a byte, and
    ask both. Returns {'fd', 'fd_setsize', 'select_error', 'selector',
    'selector_ready'}; on Windows, where the limit is a count of sockets
    (512), not a number, 'fd' is None and nothing is tried."""
    from .servers.selectserver import FD_SETSIZE

    result = {"fd": None, "fd_setsize": FD_SETSIZE, "select_error": None, "selector": None, "selector_ready": None}
    try:
        import fcntl
        import resource
    except ImportError:
        return result
    limits = resource.getrlimit(resource.RLIMIT_NOFILE)
    sock, peer = socket.socketpair()
    high = None
    try:
        raise_open_files_limit(FD_SETSIZE + 64)  # for a moment, so that number 1024 may exist
        # F_DUPFD: a copy of the socket on the lowest free number >= FD_SETSIZE
        high = socket.socket(fileno=fcntl.fcntl(sock.fileno(), fcntl.F_DUPFD, FD_SETSIZE))
        result["fd"] = high.fileno()
        peer.send(b"hello")  # data waits: the socket is ready to read
        try:
            select.select([high], [], [], 0)
        except ValueError as error:
            result["select_error"] = f"{type(error).__name__}: {error}"
        with selectors.DefaultSelector() as selector:
            selector.register(high, selectors.EVENT_READ)
            result["selector"] = type(selector).__name__
            result["selector_ready"] = [key.fileobj for key, _ in selector.select(0)] == [high]
    except OSError as error:  # the hard limit forbids descriptor 1024: that is a limit too
        result["select_error"] = f"{type(error).__name__}: {error}"
    finally:
        if high is not None:
            high.close()
        sock.close()
        peer.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, limits)
    return result


# Lesson 04: completion callbacks, the slides' q_recv(sock, done).

class CompletionLoop:
    """The slides' asynchronous non-blocking I/O, for real, on every OS:

        loop.q_recv(sock, done)   # returns at once
        ...                       # do something else in the program
        def done(data): ...       # called later, on the loop's thread: the data is there

    Where a selector loop (lesson 03, CallbackServer) waits for *readiness*
    and then calls recv() itself, here the recv() is done for us, and we are
    told when it has *completed*: a proactor, not a reactor. The kernel does
    that with Windows' I/O completion ports or Linux's io_uring; here a helper
    thread makes the blocking recv() and hands (done, data) to the loop through
    a queue, then wakes the loop's select() with one byte on a socket pair.
    That is how glibc implements POSIX AIO (aio_read) on Linux: with threads.

    The loop runs callbacks one at a time on its own thread (run()), so done()
    never races the rest of the program. call_later(delay, f) adds a timer,
    the "something else" the loop does while recv()s are in flight."""

    def __init__(self):
        self.selector = selectors.DefaultSelector()
        self.wake_r, self.wake_w = socket.socketpair()  # a helper's byte wakes select()
        self.wake_r.setblocking(False)
        self.selector.register(self.wake_r, selectors.EVENT_READ)
        self.completed = queue.SimpleQueue()  # (done, data) from the helpers, in the order they finished
        self.helpers = set()  # threads with a recv() in flight
        self.timers = []  # heap of (when, order, function)
        self.order = 0
        self.thread = None  # the thread that runs the loop, once run() is called

    def q_recv(self, sock, done, bufsize=65536):
        """Ask for up to bufsize bytes of sock; return at once. Later, on the
        loop's thread, done(data) is called: data as recv() returned it (b""
        when the peer has closed), or the OSError recv() raised."""
        def recv_in_background():
            try:
                data = sock.recv(bufsize)  # blocks this helper thread, not the loop
            except OSError as error:
                data = error
            self.completed.put((done, data, threading.current_thread()))
            with contextlib.suppress(OSError):  # the loop was closed meanwhile: nobody to wake
                self.wake_w.send(b"\0")

        helper = threading.Thread(target=recv_in_background, name="labserver-q_recv", daemon=True)
        self.helpers.add(helper)
        helper.start()

    def call_later(self, delay, function):
        """Call function() on the loop's thread in `delay` seconds."""
        self.order += 1
        heapq.heappush(self.timers, (time.monotonic() + delay, self.order, function))

    def pending(self):
        return bool(self.helpers or self.timers)

    def run(self, until=None, timeout=10.0):
        """Run callbacks until nothing is pending (or until() is true, or
        `timeout` seconds have passed); returns True if it finished in time."""
        self.thread = threading.current_thread()
        give_up = time.monotonic() + timeout
        while self.pending() and not (until and until()):
            now = time.monotonic()
            if now >= give_up:
                return False
            wait = give_up - now
            if self.timers:
                wait = min(wait, max(0.0, self.timers[0][0] - now))
            for _key, _mask in self.selector.select(wait):  # sleeps: no recv() here, only the waker
                with contextlib.suppress(BlockingIOError):
                    self.wake_r.recv(1024)
            while not self.completed.empty():  # every recv() that has completed: call its done()
                done, data, helper = self.completed.get()
                helper.join()  # it has finished its work: wait the microsecond until it has exited
                self.helpers.discard(helper)
                done(data)
            while self.timers and self.timers[0][0] <= time.monotonic():
                heapq.heappop(self.timers)[2]()
        return True

    def close(self, wait=2.0):
        """Close the loop; wait up to `wait` s for helpers still in recv()
        (they end when their socket receives data, or is closed or shut down)."""
        for helper in list(self.helpers):
            helper.join(wait)
        self.selector.close()
        self.wake_r.close()
        self.wake_w.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


def completion_recv(delay=0.3, tick=0.05):
    """q_recv(sock, done) with a peer that sends after `delay` s, while a timer
    ticks every `tick` s on the loop: the program does other work, and done()
    is called on the loop's thread once the data has arrived.
    Returns {'events', 'ticks_before_done', 'done_on_loop_thread', 'data',
    'q_recv_s', 'done_after_s'}."""
    events, result = [], {"ticks_before_done": 0, "done_on_loop_thread": None, "data": None}
    sock, peer = socket.socketpair()
    start = time.perf_counter()

    def at():
        return f"{time.perf_counter() - start:6.3f} s"

    def done(data):  # runs on the loop's thread, after the helper's recv() returned
        result.update(data=data, done_after_s=time.perf_counter() - start,
                      done_on_loop_thread=threading.current_thread() is loop.thread)
        events.append(f"{at()}  done({data!r}) called, on the loop's thread: {result['done_on_loop_thread']}")

    def other_work():
        if result["data"] is None:
            result["ticks_before_done"] += 1
            loop.call_later(tick, other_work)

    timer = send_later(peer, delay)
    try:
        with CompletionLoop() as loop:
            loop.q_recv(sock, done)  # returns at once: a helper thread does the recv()
            result["q_recv_s"] = time.perf_counter() - start
            events.append(f"{at()}  q_recv(sock, done) returned")
            loop.call_later(tick, other_work)
            loop.run()
            events.append(f"{at()}  the loop did other work {result['ticks_before_done']} times while it waited")
    finally:
        timer.join()
        sock.close()
        peer.close()
    return {"events": events, **result}


def event_loop_kind():
    """The class of asyncio's default event loop here, and whether it is a
    proactor (completion-based: IOCP, Windows' default since Python 3.8) or a
    reactor (readiness-based: a selector, epoll on Linux, kqueue on macOS)."""
    import asyncio

    loop = asyncio.new_event_loop()
    try:
        name = type(loop).__name__
        proactor = hasattr(asyncio, "ProactorEventLoop") and isinstance(loop, asyncio.ProactorEventLoop)
    finally:
        loop.close()
    with selectors.DefaultSelector() as default:  # what a SelectorEventLoop sleeps in
        waits_in = "I/O completion ports (IOCP)" if proactor else type(default).__name__
    return {"loop": name, "proactor": proactor, "waits_in": waits_in}
