"""Benchmark every labserver model against the standard library's http.server and nginx.

Run it with ``make bench`` (or ``.venv/bin/python benchmarks/bench.py --help``).

What is measured
----------------
Every server serves the same directory of generated files from its own
process, and ``wrk`` loads it over 127.0.0.1 (workload names for ``--workloads``):

* ``small``: a 1 KiB file over 1, 8, 64 and 256 keep-alive connections
  (request rate and latency under concurrency);
* ``close``: the same with ``Connection: close``, a new TCP connection per
  request (the cost of accept() and of connection setup);
* ``large``: a 10 MiB file over 8 connections (bulk throughput);
* ``cpu``: ``/cpu?ms=5`` over 8 connections, labserver only (pure-Python CPU
  work holding the GIL: a process pool against a thread pool);
* ``idle``: the peak memory (RSS of the whole process tree) of a freshly
  started server while 1000 keep-alive connections each send one request and
  then stay idle.

A single point is named ``<group>-<clients>``, e.g. ``small-64`` or ``close-256``.
The servers are labserver (one per ``--models`` name, default all nine), the
standard library's ``ThreadingHTTPServer`` in its best configuration
(``stdlib``), plain ``python -m http.server`` (``stdlib-plain``) and nginx when
it is installed.

Method, and why
---------------
* **wrk as the load generator.** It is written in C on epoll, so on this 2-core
  machine it leaves as much CPU as possible to the server. A Python client would
  measure itself: a ``requests``-based one saturates near 1.3k req/s. wrk still
  shares the two cores with the server, so its CPU use is printed beside every
  figure (``cli%``: wrk and the probe below; ``srv%``: the server and its
  children; in % of one core), and so are the kernel's network stack (``sirq%``,
  charged to no process) and the CPU that other processes took meanwhile
  (``other%``): a busy machine shows up there. The script also measures the
  machine for 2 s before it starts anything.
* **One server runs at a time.** All servers are started once, but every
  server that is not being measured is paused (SIGSTOP to its whole process
  group: nginx's workers, the processes model's workers) and resumed (SIGCONT)
  only for its own points. So the busywait model, which burns a core even with
  no client, takes nothing from the others, and neither do idle timers (the
  stdlib polls every 0.5 s, event loops sweep deadlines). The CPU the paused
  servers used during each point is recorded (``paused_cpu`` in the JSON, a
  warning above 1 % of a core): at most one 10 ms clock tick per point has been
  seen. Pausing rather than restarting keeps each server warm and costs
  nothing; it is safe because wrk has closed its connections before a server
  is paused (we also let it settle 0.1 s).
* **Noise.** Two runs of the same fast server differ by 10-20 % on this machine.
  A single number therefore means little, and a comparison between a run made
  today and a run made yesterday means even less.
* **Side by side, interleaved.** Each round measures every workload once per
  server: A, B, C, A, B, C, ... Drift (a busy neighbour, thermal throttling)
  then hits all servers alike instead of whichever one ran during the drift.
  The server order rotates every round so that no server always runs first.
* **Medians.** Each reported figure is the median over the rounds, so one
  unlucky round does not move it. Errors are summed over all rounds.
* **Ratios.** ``x stdlib`` is a server's req/s divided by the stdlib's in the
  same workload, and ``x nginx`` is the same ratio against nginx. Ratios
  measured in one run hold up much better than absolute numbers.
* **Failure is a result.** The iterative and busywait models are not
  concurrent: at 256 clients some of wrk's requests wait longer than its 2 s
  timeout, and they are counted as errors (that is their lesson), never a crash.
  But wrk 4.1 counts only answers that arrive late, never requests that are
  not answered at all, and the iterative server serves one of wrk's connections
  while the others starve unseen. So from 8 clients on, a newcomer probe in
  this script connects every 0.25 s during the run and times one request (see
  Probe). A server that dies is reported and its remaining points are skipped.
* **Memory with fresh servers.** The idle-connection phase starts a new
  instance of each server (after the rounds, one at a time), because a server
  that has just sent 10 MiB files to 256 clients keeps its high-water memory.
  It runs once per server, not once per round: memory hardly varies between
  runs. RSS is summed over the process tree, so pages shared between processes
  (the interpreter, libc) count once per process; the table also gives PSS,
  which splits shared pages fairly.

Results go to ``benchmarks/results/bench-<date>.json`` (machine info, settings,
every round and the medians) and ``.csv`` (the medians, as in the table;
``-idle.csv`` for the memory phase).
"""

from __future__ import annotations

import argparse
import csv
import datetime
import errno
import http.client
import json
import os
import platform
import re
import resource
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

try:
    import psutil  # a labserver dependency: the server's CPU and memory
except ImportError:
    psutil = None

REPO = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO / "benchmarks" / "results"
sys.path.insert(0, str(REPO))
from labserver.servers import MODELS  # noqa: E402  (only the names, in lesson order)

STDLIB = "stdlib"  # the reference for the "x stdlib" ratio
NGINX = "nginx"  # the reference for the "x nginx" ratio
SEQUENTIAL = ("iterative", "busywait")  # serve one connection at a time / spin: not "concurrent"
START_TIMEOUT = 30.0  # seconds a server may take to serve (the processes model spawns workers)
STOP_TIMEOUT = 8.0  # seconds a server may take to exit after SIGINT
SETTLE = 0.1  # seconds a server may finish closing wrk's connections before it is paused
WRK_TIMEOUT = 2.0  # seconds after which wrk counts a request as a timeout (wrk's default)

# ---------------------------------------------------------------- workloads


@dataclass(frozen=True)
class Workload:
    group: str  # small, close, large, cpu
    path: str  # what wrk fetches
    size: int | None  # body size, checked once per server before measuring (None: not checked)
    clients: int  # concurrent connections opened by wrk
    keep_alive: bool = True
    labserver_only: bool = False  # the /cpu route exists only in labserver

    @property
    def name(self):  # for --workloads
        return f"{self.group}-{self.clients}"

    @property
    def label(self):  # for the table
        return {"small": "1KiB", "close": "1KiB close", "large": "10MiB"}.get(self.group) or \
            f"cpu {self.path.rsplit('=', 1)[1]}ms"


SMALL, LARGE = ("1KiB.bin", 1024), ("10MiB.bin", 10 * 1024 * 1024)
GROUPS = ("small", "close", "large", "cpu", "idle")


def all_workloads(cpu_ms):
    workloads = [Workload("small", "/" + SMALL[0], SMALL[1], clients) for clients in (1, 8, 64, 256)]
    workloads += [Workload("close", "/" + SMALL[0], SMALL[1], clients, keep_alive=False)
                  for clients in (1, 8, 64, 256)]
    workloads.append(Workload("large", "/" + LARGE[0], LARGE[1], clients=8))
    workloads.append(Workload("cpu", f"/cpu?ms={cpu_ms}", None, clients=8, labserver_only=True))
    return workloads


def choose_workloads(text, cpu_ms, idle_connections):
    """'small,cpu-8,idle' -> (the wrk workloads in table order, whether to run the idle phase)."""
    workloads = all_workloads(cpu_ms)
    idle_name = f"idle-{idle_connections}"
    wanted = [item.strip() for item in text.split(",") if item.strip()]
    known = set(GROUPS) | {w.name for w in workloads} | {"all", idle_name}
    unknown = [item for item in wanted if item not in known]
    if unknown:
        raise SystemExit(f"unknown workload(s) {', '.join(unknown)}; choose from: all, "
                         f"{', '.join(GROUPS)} or one point: {', '.join(w.name for w in workloads)}, "
                         f"{idle_name}")
    if "all" in wanted:
        return workloads, True
    chosen = [w for w in workloads if w.group in wanted or w.name in wanted]
    return chosen, "idle" in wanted or idle_name in wanted


def make_site(directory):
    """Write the files the workloads fetch (random bytes: nothing to compress)."""
    for name, size in {SMALL, LARGE}:
        (directory / name).write_bytes(os.urandom(size))


# ------------------------------------------------------------------ servers
# A server: a name, a function (root, port, scratch dir) -> command line, and
# optionally a line its output shows once it serves.


@dataclass(frozen=True)
class ServerSpec:
    name: str
    command: object
    ready_line: str | None = None  # wait for this text in its output (else: for a connection)
    labserver: bool = False


def labserver_spec(model):
    def command(root, port, scratch):
        # --quiet: no access-log line per request, like the stdlib and nginx setups below.
        return [sys.executable, "-m", "labserver", "serve", "--quiet",
                "--root", str(root), "--port", str(port), "--model", model]
    # `labserver serve` prints "Serving ..." after start() returned, that is for the
    # processes model after every worker has reported ready.
    return ServerSpec(f"labserver-{model}", command, ready_line="Serving ", labserver=True)


# The best ThreadingHTTPServer we can build. It runs as `python -c` so that its
# process imports http.server and nothing else: started as this script, it would
# also carry psutil and labserver (7 MB more RSS in the memory table).
STDLIB_SERVER = """\
import sys
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

class Handler(SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive; the default HTTP/1.0 closes after each response
    disable_nagle_algorithm = True  # TCP_NODELAY: headers and body are two send() calls

    def log_message(self, format, *args):  # one stderr line per request costs time
        pass

# The listen backlog stays at socketserver's default of 5: that is what the
# standard library ships, and its dropped SYNs are part of what we compare.
root, port = sys.argv[1], int(sys.argv[2])
with ThreadingHTTPServer(("127.0.0.1", port), partial(Handler, directory=root)) as server:
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
"""


def stdlib_command(root, port, scratch):
    return [sys.executable, "-c", STDLIB_SERVER, str(root), str(port)]


def stdlib_plain_command(root, port, scratch):
    """What most people run: HTTP/1.0, a new connection per request, a log line per request."""
    return [sys.executable, "-m", "http.server", str(port),
            "--bind", "127.0.0.1", "--directory", str(root)]


# worker_connections 4096: the idle phase opens 1000 connections, and the kernel
# need not spread them evenly over the workers.
NGINX_CONF = """\
daemon off;
master_process on;
worker_processes auto;
error_log {scratch}/error.log;
pid {scratch}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000;
    default_type application/octet-stream;
    client_body_temp_path {scratch}/client_body;
    proxy_temp_path {scratch}/proxy;
    fastcgi_temp_path {scratch}/fastcgi;
    uwsgi_temp_path {scratch}/uwsgi;
    scgi_temp_path {scratch}/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {root};
    }}
}}
"""


def nginx_command(executable):
    def command(root, port, scratch):
        conf = scratch / "nginx.conf"
        conf.write_text(NGINX_CONF.format(scratch=scratch, port=port, root=root))
        # -e: the log nginx writes to before it has read the config (not /var/log).
        return [executable, "-p", str(scratch), "-c", str(conf),
                "-e", str(scratch / "error.log")]
    return command


def find_nginx():
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None)


def choose_servers(models):
    specs = [labserver_spec(model) for model in models]
    specs.append(ServerSpec(STDLIB, stdlib_command))
    specs.append(ServerSpec("stdlib-plain", stdlib_plain_command))
    nginx = find_nginx()
    if nginx:
        specs.append(ServerSpec(NGINX, nginx_command(nginx)))
    else:
        print("nginx is not installed (apt-get install nginx-light): skipping it.")
    return specs


def free_port():
    """A port that was free a moment ago (bind to port 0, read it, close)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_serving(process, port, log, ready_line):
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"exited with code {process.returncode}\n{tail(log)}")
        if ready_line is not None:
            if ready_line in Path(log).read_text(errors="replace"):
                return
        else:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                pass
        time.sleep(0.05)
    raise RuntimeError(f"not serving after {START_TIMEOUT:.0f} s\n{tail(log)}")


def check_serves(port, path, size):
    """Fetch once: a server answering 404 fast must not win the benchmark."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    if response.status != 200 or (size is not None and len(body) != size):
        raise RuntimeError(f"GET {path}: status {response.status}, {len(body)} bytes"
                           + (f" instead of {size}" if size is not None else ""))


def tail(path, lines=15):
    text = Path(path).read_text(errors="replace").splitlines()
    return "\n".join(text[-lines:])


class Running:
    """A started server: its own session and process group, so that signals
    reach all of its processes (nginx's workers, the processes model's workers)."""

    def __init__(self, spec, process, port):
        self.spec, self.process, self.port = spec, process, port
        self.name, self.pid = spec.name, process.pid
        self.dead = False  # set when it stopped answering; its remaining points are skipped

    def signal_group(self, signum):
        try:
            os.killpg(self.pid, signum)  # pgid == pid: started with start_new_session
        except ProcessLookupError:
            pass

    def pause(self):
        self.signal_group(signal.SIGSTOP)

    def resume(self):
        self.signal_group(signal.SIGCONT)

    def alive(self):
        return self.process.poll() is None

    def stop(self):
        self.resume()  # a stopped process would not act on SIGINT
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                print(f"  {self.name} did not stop within {STOP_TIMEOUT:g} s: killing it")
                self.signal_group(signal.SIGKILL)
                self.process.wait()
        # Whatever it started and left behind (a worker that outlived its parent).
        deadline = time.monotonic() + 2
        while group_exists(self.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if group_exists(self.pid):
            print(f"  {self.name} left processes behind: killing them")
            self.signal_group(signal.SIGKILL)


def group_exists(pgid):
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


@contextmanager
def running(spec, root, scratch, checks):
    """Start one server in its own process, yield it once it serves `checks`, always stop it."""
    scratch.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = scratch / "output.log"
    with open(log, "wb") as out:
        # A new session: Ctrl-C reaches only this script, which then stops the server.
        process = subprocess.Popen(spec.command(root, port, scratch), cwd=REPO,
                                   stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    server = Running(spec, process, port)
    try:
        try:
            wait_until_serving(process, port, log, spec.ready_line)
            for path, size in checks:
                check_serves(port, path, size)
        except (RuntimeError, OSError) as error:
            raise SystemExit(f"{spec.name} did not start: {error}")
        yield server
    finally:
        server.stop()


def startup_checks(spec, workloads):
    """(path, size) pairs to fetch once before measuring: one per distinct path it will serve."""
    checks = {}
    for w in workloads:
        if spec.labserver or not w.labserver_only:
            checks.setdefault(w.path, w.size)
    if not checks:
        checks["/" + SMALL[0]] = SMALL[1]
    return list(checks.items())


# -------------------------------------------------------------- measuring

WRK_PATTERNS = {
    "requests_per_s": r"Requests/sec:\s+([\d.]+)",
    "transfer_per_s": r"Transfer/sec:\s+([\d.]+\w*B)",
    "p50": r"^\s+50%\s+([\d.]+\w+)",
    "p99": r"^\s+99%\s+([\d.]+\w+)",
    "socket_errors": r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
    "non_2xx": r"Non-2xx or 3xx responses: (\d+)",
}
TIME_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}  # to milliseconds
BYTE_UNITS = {"B": 1, "KB": 2**10, "MB": 2**20, "GB": 2**30, "TB": 2**40}  # wrk counts in 1024s


def split_unit(text):
    number, unit = re.fullmatch(r"([\d.]+)(\w*)", text).groups()
    return float(number), unit


def parse_wrk(output):
    """wrk's text report -> req/s, MB/s (10^6 bytes), p50 and p99 in ms, error counts."""
    found = {key: re.search(pattern, output, re.MULTILINE) for key, pattern in WRK_PATTERNS.items()}
    if not found["requests_per_s"]:
        raise MeasurementFailed(f"cannot parse wrk's output:\n{output}")
    rate, unit = split_unit(found["transfer_per_s"].group(1))
    result = {
        "req_per_s": float(found["requests_per_s"].group(1)),
        "mb_per_s": rate * BYTE_UNITS[unit] / 1e6,
        "errors": 0,
        "timeouts": 0,
    }
    for key in ("p50", "p99"):
        # With no completed request wrk prints no latency distribution at all.
        if found[key]:
            value, unit = split_unit(found[key].group(1))
            result[f"{key}_ms"] = value * TIME_UNITS[unit]
        else:
            result[f"{key}_ms"] = None
    for key in ("socket_errors", "non_2xx"):
        if found[key]:
            result["errors"] += sum(int(n) for n in found[key].groups())
    kinds = ("connect", "read", "write", "timeout")
    counts = [int(n) for n in found["socket_errors"].groups()] if found["socket_errors"] else [0] * 4
    result["timeouts"] = counts[3]
    # Which errors: a reset connection (read) is not a refused one (connect) or a slow one.
    result["error_kinds"] = {**dict(zip(kinds, counts)),
                             "non_2xx": int(found["non_2xx"].group(1)) if found["non_2xx"] else 0}
    return result


def tree(pid):
    parent = psutil.Process(pid)
    return [parent, *parent.children(recursive=True)]


def cpu_seconds(pid):
    """CPU time used so far by a server process and its children (nginx's workers)."""
    if psutil is None:
        return None
    try:
        return sum(sum(p.cpu_times()[:2]) for p in tree(pid))
    except psutil.Error:
        return None


def wrk_cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # includes every reaped wrk
    return usage.ru_utime + usage.ru_stime


def machine_cpu_seconds():
    """CPU time the whole machine has used so far (Linux /proc/stat): (busy, softirq).

    softirq is the kernel's network stack working in interrupt context, charged to
    no process. Over loopback it is mostly our own traffic (12-36 % of a core
    measured against nginx), so it is reported apart and not counted as "other"."""
    try:
        ticks = [int(n) for n in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except OSError:
        return None
    idle = ticks[3] + ticks[4]  # idle and iowait; the rest is user, system, irq, softirq, steal
    hz = os.sysconf("SC_CLK_TCK")
    return (sum(ticks) - idle) / hz, ticks[6] / hz


def machine_busy(seconds=2.0):
    """% of one core the machine used over `seconds` while this script waited: before we
    start anything, everything counted is someone else's (a busy machine skews every figure)."""
    before = machine_cpu_seconds()
    time.sleep(seconds)
    after = machine_cpu_seconds()
    return None if None in (before, after) else 100 * (after[0] - before[0]) / seconds


def own_cpu_seconds():
    """This script's CPU time (the newcomer probe)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def cpu_snapshot(server, paused):
    paused_cpu = [cpu_seconds(s.pid) for s in paused]
    machine = machine_cpu_seconds()
    return {"client": wrk_cpu_seconds() + own_cpu_seconds(), "server": cpu_seconds(server.pid),
            "machine": machine and machine[0], "softirq": machine and machine[1],
            "paused": None if None in paused_cpu else sum(paused_cpu)}


class MeasurementFailed(Exception):
    pass


def run_wrk(port, workload, duration, timeout=WRK_TIMEOUT):
    threads = min(2, workload.clients)  # wrk needs at least one connection per thread
    command = ["wrk", f"-t{threads}", f"-c{workload.clients}", f"-d{duration}s",
               f"--timeout={timeout:g}s", "--latency"]
    if not workload.keep_alive:
        command += ["-H", "Connection: close"]
    command.append(f"http://127.0.0.1:{port}{workload.path}")
    try:
        completed = subprocess.run(command, capture_output=True, text=True,
                                   timeout=duration + 60, check=True)
    except subprocess.CalledProcessError as error:
        message = (error.stderr or error.stdout or "").strip().splitlines()[:3]
        raise MeasurementFailed(f"wrk exited with {error.returncode}: {' / '.join(message)}")
    except subprocess.TimeoutExpired:
        raise MeasurementFailed("wrk did not finish")
    return completed.stdout


PROBE_START = 0.25  # seconds after wrk starts before the first newcomer
PROBE_PAUSE = 0.25  # seconds between two newcomers
PROBE_REQUEST = b"GET /1KiB.bin HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"


class Probe(threading.Thread):
    """A newcomer client while wrk runs: a new connection every PROBE_PAUSE asks for the
    1 KiB file and times the answer, with wrk's timeout.

    Why: wrk 4.1 counts a timeout only for a response that does arrive, late. A
    request that is never answered is never counted, so the iterative model at
    64 clients shows a fine req/s (its one lucky connection) and no error while
    63 clients starve. The probe sees what any other client would: a timeout.
    Its few requests per second do not load the server measurably. Only answers
    before `until` (when wrk is due to stop) count: once wrk's connections close,
    an iterative server answers a waiting newcomer at once. A newcomer still
    waiting then is dropped, or lost if it has already waited the timeout."""

    def __init__(self, port, timeout, until):
        super().__init__(daemon=True)
        self.port, self.timeout, self.until = port, timeout, until
        self.latencies, self.timeouts, self.failures = [], 0, 0
        self.done = threading.Event()

    def run(self):
        if self.done.wait(PROBE_START):
            return
        while not self.done.is_set() and time.monotonic() < self.until:
            self.one()
            self.done.wait(PROBE_PAUSE)

    def one(self):
        started = time.monotonic()
        data = b""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=self.timeout) as sock:
                sock.sendall(PROBE_REQUEST)
                while not complete_response(data):
                    now = time.monotonic()
                    if now - started >= self.timeout:
                        self.timeouts += 1
                        return
                    if now >= self.until or self.done.is_set():
                        return  # wrk has ended: this one no longer measures anything
                    sock.settimeout(min(0.05, self.timeout - (now - started), self.until - now))
                    try:
                        chunk = sock.recv(65536)
                    except socket.timeout:
                        continue
                    if not chunk:
                        break
                    data += chunk
        except socket.timeout:  # connect() itself: a full listen backlog drops SYNs
            self.timeouts += 1
            return
        except OSError:
            self.failures += 1
            return
        answered = time.monotonic()
        if answered - started >= self.timeout:
            self.timeouts += 1
        elif answered >= self.until:
            return  # after wrk's end: it measures nothing
        elif re.match(rb"HTTP/1\.[01] 200 ", data) and complete_response(data):
            self.latencies.append(1000 * (answered - started))
        else:
            self.failures += 1

    def finish(self):
        self.done.set()
        self.join()
        return {"probes": len(self.latencies) + self.timeouts + self.failures,
                "probe_lost": self.timeouts + self.failures,
                "probe_ms": statistics.median(self.latencies) if self.latencies else None,
                "probe_max_ms": max(self.latencies) if self.latencies else None}


def measure(server, workload, duration, paused=()):
    """One wrk run against one server (with the newcomer probe from 2 clients on), with
    the CPU used meanwhile in % of one core by the clients (wrk and this script), by
    the server, by the paused servers, by softirq, and by everything else (noise)."""
    before, started = cpu_snapshot(server, paused), time.monotonic()
    probe = Probe(server.port, WRK_TIMEOUT, started + duration) if workload.clients > 1 else None
    if probe:
        probe.start()
    try:
        output = run_wrk(server.port, workload, duration)
    finally:
        probed = probe.finish() if probe else {"probes": 0, "probe_lost": 0, "probe_ms": None,
                                               "probe_max_ms": None}
    after, elapsed = cpu_snapshot(server, paused), time.monotonic() - started
    used = {key: None if None in (before[key], after[key])
            else 100 * (after[key] - before[key]) / elapsed for key in before}
    result = parse_wrk(output)
    result.update(probed)
    result["client_cpu"], result["server_cpu"], result["paused_cpu"], result["softirq_cpu"] = \
        used["client"], used["server"], used["paused"], used["softirq"]
    result["other_cpu"] = (None if None in used.values() else max(
        0.0, used["machine"] - used["softirq"] - used["client"] - used["server"] - used["paused"]))
    return result


def applies(workload, server):
    return server.spec.labserver or not workload.labserver_only


def run_rounds(servers, workloads, rounds, duration):
    """Every workload on every server, interleaved, one server awake at a time;
    returns one record per wrk run."""
    records = []
    for number in range(rounds):
        shift = number % len(servers)
        order = servers[shift:] + servers[:shift]  # rotate: nobody always goes first
        for workload in workloads:
            for server in order:
                if not applies(workload, server):
                    continue
                print(f"  round {number + 1}/{rounds}  {workload.label:>10} x{workload.clients:<3}  "
                      f"{server.name:<22}", end=" ", flush=True)
                if server.dead:
                    print("skipped: it stopped working earlier")
                    continue
                paused = [s for s in servers if s is not server and not s.dead]
                server.resume()
                try:
                    result = measure(server, workload, duration, paused)
                except MeasurementFailed as error:  # a crashed server must not lose the others' runs
                    print(f"FAILED: {error}")
                    if not server.alive():
                        print(f"  {server.name} exited with code {server.process.returncode}: "
                              "skipping its remaining points")
                        server.dead = True
                    continue
                finally:
                    time.sleep(SETTLE)  # let it close wrk's connections
                    server.pause()
                notes = (f"  {result['errors']} errors" if result["errors"] else "") + \
                    (f"  {result['probe_lost']}/{result['probes']} newcomers lost"
                     if result["probe_lost"] else "")
                print(f"{result['req_per_s']:>10,.0f} req/s{notes}", flush=True)
                records.append({"round": number + 1, "server": server.name,
                                "workload": workload.label, "clients": workload.clients, **result})
                if not server.alive():
                    print(f"  {server.name} exited with code {server.process.returncode}: "
                          "skipping its remaining points")
                    server.dead = True
    return records


def warm_up(servers, workloads):
    """A short unrecorded run each, so no server pays for its first connections in round 1."""
    small = next((w for w in all_workloads(1) if w.name == "small-8"))
    for server in servers:
        server.resume()
        try:
            for workload in (small, *(w for w in workloads if w.group == "cpu")):
                if applies(workload, server):
                    run_wrk(server.port, workload, duration=1)
        except MeasurementFailed:
            pass  # the measured runs will report it
        finally:
            time.sleep(SETTLE)
            server.pause()


# ------------------------------------------------------ idle connections


class MemorySampler(threading.Thread):
    """Samples a process tree's summed RSS, PSS and thread count until stopped; keeps the peaks."""

    def __init__(self, pid, interval=0.05):
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.peak = {"rss": 0, "pss": 0, "threads": 0, "processes": 0}
        self.done = threading.Event()

    def sample(self):
        totals = {"rss": 0, "pss": 0, "threads": 0, "processes": 0}
        try:
            for p in tree(self.pid):
                try:
                    with p.oneshot():
                        totals["threads"] += p.num_threads()
                        totals["processes"] += 1
                        try:
                            info = p.memory_full_info()  # PSS needs /proc/<pid>/smaps_rollup
                            totals["rss"] += info.rss
                            totals["pss"] += getattr(info, "pss", 0)
                        except psutil.AccessDenied:
                            totals["rss"] += p.memory_info().rss
                except psutil.NoSuchProcess:
                    pass
        except psutil.Error:
            pass
        return totals

    def run(self):
        while not self.done.is_set():
            sample = self.sample()
            for key, value in sample.items():
                self.peak[key] = max(self.peak[key], value)
            self.done.wait(self.interval)

    def finish(self):
        self.done.set()
        self.join()
        return self.peak


REQUEST = b"GET /1KiB.bin HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def complete_response(data):
    """True once `data` holds a whole response to REQUEST (headers and Content-Length bytes)."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return False
    match = re.search(rb"(?im)^content-length:\s*(\d+)", data[:end])
    return match is not None and len(data) >= end + 4 + int(match.group(1))


def idle_connections(server, count, answer_within=5.0, hold=1.0):
    """Open `count` keep-alive connections that each send one request and then idle;
    return the server's peak memory meanwhile and how many were connected and answered.

    A connection that gets no answer within `answer_within` seconds (the iterative
    server serves one at a time; a full listen backlog drops SYNs) stays open all
    the same. Everything ends well before the servers' 15 s idle timeout."""
    sampler = MemorySampler(server.pid)
    before = sampler.sample()
    sampler.start()
    selector = selectors.DefaultSelector()
    socks, received = [], {}
    counts = {"connected": 0, "answered": 0, "refused": 0, "closed_by_server": 0}
    started = time.monotonic()
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.setblocking(False)
            socks.append(sock)
            code = sock.connect_ex(("127.0.0.1", server.port))
            if code not in (0, errno.EINPROGRESS):
                counts["refused"] += 1
                continue
            selector.register(sock, selectors.EVENT_WRITE)
        deadline = started + answer_within
        while selector.get_map() and time.monotonic() < deadline:
            for key, mask in selector.select(max(0.0, deadline - time.monotonic())):
                sock = key.fileobj
                if mask & selectors.EVENT_WRITE:  # the connection is up, or it failed
                    if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                        counts["refused"] += 1
                        selector.unregister(sock)
                        continue
                    counts["connected"] += 1
                    sock.send(REQUEST)  # 44 bytes into an empty send buffer: sent whole
                    received[sock] = b""
                    selector.modify(sock, selectors.EVENT_READ)
                    continue
                try:
                    data = sock.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    counts["closed_by_server"] += 1
                    selector.unregister(sock)
                    continue
                received[sock] += data
                if complete_response(received[sock]):
                    counts["answered"] += 1
                    selector.unregister(sock)  # and now it idles
        answered_in = time.monotonic() - started
        time.sleep(hold)  # all idle: the sampler keeps sampling
    finally:
        peak = sampler.finish()
        selector.close()
        for sock in socks:
            sock.close()
    mb = 1e6
    growth = peak["rss"] - before["rss"]
    return {"server": server.name, "connections": count, **counts,
            "seconds": answered_in, "rss_before_mb": before["rss"] / mb,
            "rss_peak_mb": peak["rss"] / mb, "pss_peak_mb": peak["pss"] / mb or None,
            "kib_per_answered": growth / 1024 / counts["answered"] if counts["answered"] else None,
            "threads_peak": peak["threads"], "processes": peak["processes"]}


def run_idle_phase(specs, root, scratch, count):
    """Each server in turn, freshly started and alone: its memory under `count` idle connections."""
    rows = []
    print(f"\nMemory with {count} idle keep-alive connections (each server freshly started, alone):")
    for spec in specs:
        print(f"  {spec.name:<22}", end=" ", flush=True)
        with running(spec, root, scratch / f"idle-{spec.name}", [("/" + SMALL[0], SMALL[1])]) as server:
            time.sleep(0.5)  # let its start-up allocations settle
            row = idle_connections(server, count)
        rows.append(row)
        print(f"answered {row['answered']:>4}/{count}, RSS {row['rss_before_mb']:.0f} -> "
              f"{row['rss_peak_mb']:.0f} MB", flush=True)
    return rows


# ----------------------------------------------------------- summarising

FIELDS = ("req_per_s", "mb_per_s", "p50_ms", "p99_ms", "probe_ms", "client_cpu", "server_cpu",
          "softirq_cpu", "other_cpu", "paused_cpu")
BUSY_MACHINE = 20  # other% above which a figure is flagged as disturbed


def median_or_none(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def summarise(records, servers, workloads):
    """Medians over rounds per (server, workload), plus ratios to stdlib and nginx."""
    rows = []
    for workload in workloads:
        for server in servers:
            if not applies(workload, server):
                continue
            runs = [r for r in records if r["server"] == server.name
                    and (r["workload"], r["clients"]) == (workload.label, workload.clients)]
            row = {"server": server.name, "workload": workload.label, "clients": workload.clients,
                   "keep_alive": workload.keep_alive, "rounds": len(runs),
                   "errors": sum(r["errors"] for r in runs),
                   "timeouts": sum(r["timeouts"] for r in runs),
                   "error_kinds": " ".join(f"{kind} {n}" for kind in
                                           ("connect", "read", "write", "timeout", "non_2xx")
                                           if (n := sum(r["error_kinds"][kind] for r in runs))),
                   "probes": sum(r["probes"] for r in runs),
                   "probe_lost": sum(r["probe_lost"] for r in runs),
                   "probe_max_ms": max((r["probe_max_ms"] for r in runs
                                        if r["probe_max_ms"] is not None), default=None)}
            row.update({key: median_or_none(r[key] for r in runs) for key in FIELDS})
            rows.append(row)
    for row in rows:
        row["new_lost"] = f"{row['probe_lost']}/{row['probes']}" if row["probes"] else None
        for reference in (STDLIB, NGINX):
            base = find_row(rows, reference, row["workload"], row["clients"])
            row[f"x_{reference}"] = ratio(row["req_per_s"], base and base["req_per_s"])
    return rows


def ratio(value, reference):
    return value / reference if value is not None and reference else None


def find_row(rows, server, workload, clients):
    return next((r for r in rows if (r["server"], r["workload"], r["clients"])
                 == (server, workload, clients)), None)


COLUMNS = [  # (heading, key, format)
    ("server", "server", "<22"), ("workload", "workload", "<10"), ("clients", "clients", ">7"),
    ("req/s", "req_per_s", ">9,.0f"), ("MB/s", "mb_per_s", ">8,.1f"),
    ("p50 ms", "p50_ms", ">8.2f"), ("p99 ms", "p99_ms", ">8.2f"), ("errors", "errors", ">7"),
    ("new ms", "probe_ms", ">7.1f"), ("new lost", "new_lost", ">8"),
    ("x stdlib", "x_stdlib", ">8.2f"), ("x nginx", "x_nginx", ">8.2f"),
    ("cli%", "client_cpu", ">5.0f"), ("srv%", "server_cpu", ">5.0f"), ("sirq%", "softirq_cpu", ">5.0f"),
    ("other%", "other_cpu", ">6.0f"),
]
IDLE_COLUMNS = [
    ("server", "server", "<22"), ("connected", "connected", ">9"), ("answered", "answered", ">8"),
    ("RSS before MB", "rss_before_mb", ">13.1f"), ("RSS peak MB", "rss_peak_mb", ">11.1f"),
    ("PSS peak MB", "pss_peak_mb", ">11.1f"), ("KiB/answered", "kib_per_answered", ">12.1f"),
    ("threads", "threads_peak", ">7"), ("processes", "processes", ">9"),
]


def column_width(spec):
    """'>9,.0f' -> '>9': alignment and width only, for headings and missing values."""
    return re.match(r"[<>]\d+", spec).group()


def format_cell(value, spec):
    return f"{'-':{column_width(spec)}}" if value is None else f"{value:{spec}}"


def print_table(rows, columns=COLUMNS, group=("workload", "clients")):
    print()
    print("  ".join(f"{heading:{column_width(spec)}}" for heading, _, spec in columns))
    previous = None
    for row in rows:
        key = tuple(row[k] for k in group)
        if previous and key != previous:
            print()
        previous = key
        print("  ".join(format_cell(row[key], spec) for _, key, spec in columns))
    print()


def print_warnings(rows):
    busy = [row for row in rows if (row["other_cpu"] or 0) > BUSY_MACHINE]
    if busy:
        print(f"Warning: other processes used more than {BUSY_MACHINE} % of a core during "
              f"{len(busy)} of {len(rows)} points (other%, medians over rounds): those figures are "
              "disturbed; compare ratios, or rerun on a quiet machine.")
    paused = [row["paused_cpu"] for row in rows if row["paused_cpu"] is not None]
    if paused and max(paused) > 1:
        print(f"Warning: paused servers used up to {max(paused):.1f} % of a core during a point.")
    print()


def summary_matrix(rows, idle_rows, workloads, server_names):
    """One line per server, one column per point: req/s (MB/s for 10MiB), '!' marks errors."""
    headings = []
    for w in workloads:
        short = {"small": "1K", "close": "close", "large": "10M MB/s", "cpu": "cpu"}[w.group]
        headings.append(f"{short} x{w.clients}")
    if idle_rows:
        headings.append("idle RSS MB")
    table = []
    for name in server_names:
        cells = []
        for w in workloads:
            row = find_row(rows, name, w.label, w.clients)
            if row is None or row["req_per_s"] is None:
                cells.append("-" if w.labserver_only and not name.startswith("labserver-") else "n/a")
                continue
            value = row["mb_per_s"] if w.group == "large" else row["req_per_s"]
            cells.append(f"{value:,.0f}" + ("!" if failed(row) else ""))
        if idle_rows:
            idle = next((r for r in idle_rows if r["server"] == name), None)
            cells.append(f"{idle['rss_peak_mb']:.0f}" if idle else "-")
        table.append((name, cells))
    return headings, table


def failed(row):
    """Some request failed or timed out: wrk's errors, or a newcomer that got no answer in time."""
    return bool(row["errors"] or row["probe_lost"])


def print_matrix(headings, table):
    widths = [max(len(h), *(len(cells[i]) for _, cells in table)) for i, h in enumerate(headings)]
    print("Summary: req/s (10MiB: MB/s), medians; '!' = some requests failed or timed out "
          "(wrk's or the newcomer probe's)")
    print(f"{'server':<22}  " + "  ".join(f"{h:>{w}}" for h, w in zip(headings, widths)))
    for name, cells in table:
        print(f"{name:<22}  " + "  ".join(f"{c:>{w}}" for c, w in zip(cells, widths)))
    print()


# ----------------------------------------------------------------- targets
# From labserver's issue. A check is (description, status, value shown): status is
# "met", "MISSED" (measured and short, or meant to be measured and not) or
# "skipped" (this run did not include what it needs: a model, a workload, nginx).


def value_of(rows, server, label, clients, column):
    row = find_row(rows, server, label, clients)
    return None if row is None else row[column], row


def check_targets(rows, models, workloads, nginx_measured, cpu_count):
    checks = []
    names = {(w.group, w.clients): w for w in workloads}
    small64, large8, cpu8 = names.get(("small", 64)), names.get(("large", 8)), names.get(("cpu", 8))

    def add(description, value, test, form, needed=True):
        if not needed:
            checks.append((description, "skipped", "not in this run"))
        elif value is None:
            checks.append((description, "MISSED", "not measured"))
        else:
            checks.append((description, "met" if test(value) else "MISSED", form.format(value)))

    # The best model at 64 clients, with its full parser and file serving.
    best = None
    if small64:
        candidates = [(find_row(rows, f"labserver-{m}", small64.label, 64) or {}).get("req_per_s")
                      for m in models]
        measured = [(v, m) for v, m in zip(candidates, models) if v is not None]
        best = max(measured)[1] if measured else None
    best_name = f"labserver-{best}" if best else "best labserver model"
    for reference, factor, needed in ((STDLIB, 10, True), (NGINX, 0.35, nginx_measured)):
        value = value_of(rows, best_name, "1KiB", 64, f"x_{reference}")[0] if best else None
        add(f"{best_name} (best at 1KiB x64): req/s >= {factor:g}x {reference} at 64 clients",
            value, lambda v, f=factor: v >= f, "{:.2f}x", needed=bool(small64 and models) and needed)

    # Every concurrent model answers 64 clients quickly. wrk leaves timed-out requests
    # out of its percentiles, and never-answered ones out of everything, so a p99
    # only counts with no errors and no lost newcomer beside it.
    for model in models:
        if model in SEQUENTIAL:
            continue
        name = f"labserver-{model}"
        description = f"{name}: p99 < 20 ms at 64 clients, nothing lost"
        p99, row = value_of(rows, name, "1KiB", 64, "p99_ms")
        if row is not None and failed(row):
            shown = f"{p99:.1f} ms" if p99 is not None else "no p99"
            checks.append((description, "MISSED", f"{shown}, {row['errors']} errors, "
                                                  f"{row['new_lost']} newcomers lost"))
            continue
        add(description, p99, lambda v: v < 20, "{:.1f} ms", needed=bool(small64))

    # Processes against threads on CPU-bound work.
    pool = value_of(rows, "labserver-processes", cpu8.label, 8, "req_per_s")[0] if cpu8 else None
    threads = value_of(rows, "labserver-threadpool", cpu8.label, 8, "req_per_s")[0] if cpu8 else None
    note = "" if cpu_count >= 2 else f" (this machine has {cpu_count} core: expect a miss)"
    add(f"labserver-processes: req/s >= 1.6x threadpool's on {cpu8.label if cpu8 else '/cpu'} "
        f"at 8 clients{note}", ratio(pool, threads), lambda v: v >= 1.6, "{:.2f}x",
        needed=bool(cpu8) and {"processes", "threadpool"} <= set(models))

    # The foundation's targets, for the threadpool model (the lecture's complete server).
    tp = "labserver-threadpool"
    has_tp = "threadpool" in models
    add(f"{tp}: req/s >= 2x stdlib at 64 clients",
        value_of(rows, tp, "1KiB", 64, "x_stdlib")[0], lambda v: v >= 2, "{:.2f}x",
        needed=has_tp and bool(small64))
    # Same file on both sides, so the req/s ratio is the MB/s ratio.
    add(f"{tp}: 10 MiB MB/s >= 0.8x nginx at 8 clients",
        value_of(rows, tp, "10MiB", 8, "x_nginx")[0], lambda v: v >= 0.8, "{:.2f}x",
        needed=has_tp and bool(large8) and nginx_measured)
    return checks


def print_targets(checks):
    if not checks:
        return
    print("Targets:")
    for description, status, shown in checks:
        print(f"  [{status}] {description} (is {shown})" if status != "skipped"
              else f"  [skipped] {description} ({shown})")


# ------------------------------------------------------------------ records


def command_output(command):
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=10)
    except OSError:
        return None
    return (done.stdout + done.stderr).strip().splitlines()[0]


def machine_info():
    cpuinfo = Path("/proc/cpuinfo")
    names = re.findall(r"^model name\s*:\s*(.*)$", cpuinfo.read_text(), re.MULTILINE) \
        if cpuinfo.exists() else []
    nginx = find_nginx()
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
        "cpu_model": names[0] if names else platform.processor(),
        "python": sys.version.split()[0],
        "load_average_at_start": os.getloadavg(),
        "platform": platform.platform(),
        "wrk": command_output(["wrk", "-v"]),
        "nginx": command_output([nginx, "-v"]) if nginx else None,
    }


def write_results(info, settings, records, rows, idle_rows, checks):
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stem = RESULTS_DIR / f"bench-{datetime.datetime.now():%Y-%m-%d-%H%M%S}"
    document = {"machine": info, "settings": settings, "summary": rows, "idle": idle_rows,
                "targets": [dict(zip(("target", "status", "value"), c)) for c in checks],
                "runs": records}
    stem.with_suffix(".json").write_text(json.dumps(document, indent=2) + "\n")
    for suffix, table in (("", rows), ("-idle", idle_rows)):
        if table:
            with open(stem.with_name(stem.name + suffix + ".csv"), "w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=list(table[0]))
                writer.writeheader()
                writer.writerows(table)
    return stem


# --------------------------------------------------------------------- main


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="all",
                        help="comma-separated labserver models to measure (default: all, in lesson "
                             f"order: {','.join(MODELS)}; '' for none)")
    parser.add_argument("--workloads", default="all",
                        help="comma-separated groups (small, close, large, cpu, idle) or points "
                             "(small-64, close-256, large-8, cpu-8, idle-1000...); default all")
    parser.add_argument("--duration", type=positive_int, default=3,
                        help="whole seconds per wrk run (default 3; the newcomer probe needs more "
                             f"than {PROBE_START:g} + {WRK_TIMEOUT:g} s to see a starving server)")
    parser.add_argument("--rounds", type=positive_int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 round")
    parser.add_argument("--cpu-ms", type=int, default=5, help="ms of CPU per /cpu request (default 5)")
    parser.add_argument("--idle-connections", type=int, default=1000,
                        help="connections held open in the memory phase (default 1000)")
    parser.add_argument("--check-targets", action="store_true",
                        help="exit with status 1 when a labserver target is missed")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds = 1
    if args.models.strip() == "all":
        args.models = list(MODELS)
    else:
        args.models = [m.strip() for m in args.models.split(",") if m.strip()]
        unknown = [m for m in args.models if m not in MODELS]
        if unknown:
            parser.error(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(MODELS)}")
    args.workloads, args.idle = choose_workloads(args.workloads, args.cpu_ms, args.idle_connections)
    return args


def positive_int(text):
    """Durations too: wrk takes whole seconds only ("-d2.5s" is a usage error)."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return int(text)


def raise_fd_limit(needed):
    """The idle phase holds `needed` sockets here and as many in the server (which inherits it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        new = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))


def main(argv=None):
    args = parse_args(argv)
    if not shutil.which("wrk"):
        print("wrk is not installed (apt-get install wrk): nothing measured.")
        return 0
    if psutil is None:
        print("psutil is missing: no CPU columns, no memory phase, no pausing check.")
        args.idle = False
    raise_fd_limit(args.idle_connections + 1024)

    info = machine_info()
    settings = {"duration_s": args.duration, "rounds": args.rounds, "models": args.models,
                "workloads": [w.name for w in args.workloads],
                "idle_connections": args.idle_connections if args.idle else None,
                "wrk_timeout_s": WRK_TIMEOUT, "command": " ".join(sys.argv)}
    print(f"{info['cpu_count']} x {info['cpu_model']}, Python {info['python']}, {info['wrk']}")
    info["busy_before_start"] = busy = machine_busy()
    if busy is not None:
        print(f"Before starting, other processes used {busy:.0f} % of a core"
              + (f" (above {BUSY_MACHINE} %: expect disturbed figures)" if busy > BUSY_MACHINE else ""))
    specs = choose_servers(args.models)
    began = time.monotonic()
    records, rows, idle_rows = [], [], []
    with tempfile.TemporaryDirectory(prefix="labserver-bench-") as tmp:
        root = Path(tmp) / "site"
        root.mkdir()
        os.chmod(tmp, 0o755)  # nginx's workers run as nobody when started as root
        make_site(root)
        if args.workloads:
            with ExitStack() as stack:
                servers = []
                for spec in specs:
                    server = stack.enter_context(running(spec, root, Path(tmp) / spec.name,
                                                         startup_checks(spec, args.workloads)))
                    server.pause()  # asleep until its own points
                    servers.append(server)
                points = sum(applies(w, s) for w in args.workloads for s in servers)
                print(f"{len(servers)} servers up (paused between their own points); "
                      f"{args.rounds} round(s) of {points} points, {args.duration:g} s each")
                warm_up(servers, args.workloads)
                records = run_rounds(servers, args.workloads, args.rounds, args.duration)
                rows = summarise(records, servers, args.workloads)
        if args.idle:
            idle_rows = run_idle_phase(specs, root, Path(tmp), args.idle_connections)
    minutes = (time.monotonic() - began) / 60

    if rows:
        print_table(rows)
        print_warnings(rows)
    if idle_rows:
        print(f"Memory with {args.idle_connections} idle keep-alive connections "
              "(RSS and PSS summed over the server's processes, MB = 10^6 bytes):")
        print_table(idle_rows, IDLE_COLUMNS, group=())
    headings, table = summary_matrix(rows, idle_rows, args.workloads, [s.name for s in specs])
    print_matrix(headings, table)
    checks = check_targets(rows, args.models, args.workloads,
                           any(s.name == NGINX for s in specs), os.cpu_count() or 1)
    print_targets(checks)
    settings["minutes"] = round(minutes, 1)
    stem = write_results(info, settings, records, rows, idle_rows, checks)
    print(f"\n{minutes:.1f} min. Results: {stem.relative_to(REPO)}.json and .csv")
    if args.check_targets and any(status == "MISSED" for _, status, _ in checks):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
