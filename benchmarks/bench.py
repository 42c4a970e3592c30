"""Benchmark every labserver model against the standard library's http.server and nginx.

    make bench                                        # every model, 3 rounds (about 20 minutes)
    .venv/bin/python benchmarks/bench.py --quick      # 1 round (about 7 minutes)
    .venv/bin/python benchmarks/bench.py --models threadpool,processes --workloads small-64,cpu

Every server serves the same generated files from a process of its own and is
loaded over 127.0.0.1, one server at a time (benchmarks/README.md says what
each workload and column shows, and why the method is what it is):

* wrk loads it where it can: written in C on epoll, it leaves the most CPU to
  the server. A new connection per request (the `close` group), and every
  point on a machine without wrk, is measured with labserver's own generator;
  the client's CPU (cli%) is shown beside every figure either way.
* The servers not being measured are paused, so they take no CPU; rounds
  interleave the servers (A, B, C, A, B, C, ...), so drift hits all alike;
  figures are medians over rounds, compared as ratios (x stdlib, x nginx).
* A newcomer probe connects every 0.25 s during each run and times one
  request: wrk never counts a request that is not answered at all.
* Memory: each server freshly started, alone, with 1000 idle keep-alive connections.
* Open loop (benchmarks/open_loop.py): 1 KiB offered at fixed rates to select,
  threadpool and processes, latency counted from when each request was due;
  the report gives the rate at which each model's p99 passes 20 ms.

Everything that measures is labserver's own: the wrk runner, the generator and
the process-tree monitor of labserver.load, the child processes of
labserver.children (started, paused, stopped with all they started), the
response reader of labserver.protocol. What a run must show is TARGETS: data
rows, checked by one loop.
"""

import argparse
import csv
import datetime
import errno
import json
import os
import platform
import selectors
import shutil
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

import psutil

REPO = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO / "benchmarks" / "results"
sys.path.insert(0, str(REPO))
from labserver.children import Child, ChildError  # noqa: E402  (after the path above)
from labserver.load import LoadError, run  # noqa: E402
from labserver.load.monitor import ServerMonitor, process_tree, tree_cpu_seconds, tree_rss_bytes  # noqa: E402
from labserver.load.wrk import CalibrationError, run_wrk, wrk_path  # noqa: E402
from labserver.limits import raise_open_files_limit  # noqa: E402
from labserver.protocol import ResponseError, ResponseReader  # noqa: E402
from labserver.servers import MODELS  # noqa: E402
sys.path.insert(0, str(Path(__file__).resolve().parent))
import open_loop  # noqa: E402  (the open-loop point: benchmarks/open_loop.py)

STDLIB, NGINX = "stdlib", "nginx"  # the references of the "x stdlib" and "x nginx" ratios
SEQUENTIAL = ("iterative", "busywait")  # serve one connection at a time / spin: not "concurrent"
START_TIMEOUT = 30.0  # seconds a server may take to serve (the processes model spawns workers)
STOP_TIMEOUT = 8.0  # seconds it has to exit after Ctrl-C (then terminate, then kill)
SETTLE = 0.1  # seconds a server may finish closing the clients' connections before it is paused
TIMEOUT = 2.0  # seconds after which a request counts as timed out (wrk's default; the generator's here)
BUSY_MACHINE = 20  # other% above which a figure is flagged as disturbed

# ---------------------------------------------------------------- workloads


@dataclass(frozen=True)
class Workload:
    group: str  # small, close, large, cpu
    path: str
    size: int | None  # body size, checked once per server before measuring (None: not checked)
    clients: int
    keep_alive: bool = True
    labserver_only: bool = False  # /cpu exists only in labserver

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
    return [*(Workload("small", "/" + SMALL[0], SMALL[1], n) for n in (1, 8, 64, 256)),
            *(Workload("close", "/" + SMALL[0], SMALL[1], n, keep_alive=False) for n in (1, 8, 64, 256)),
            Workload("large", "/" + LARGE[0], LARGE[1], 8),
            Workload("cpu", f"/cpu?ms={cpu_ms}", None, 8, labserver_only=True)]


def choose_workloads(text, cpu_ms, idle_connections):
    """'small,cpu-8,idle' -> (the workloads in table order, whether to run the idle phase)."""
    workloads = all_workloads(cpu_ms)
    idle_name = f"idle-{idle_connections}"
    wanted = [item.strip() for item in text.split(",") if item.strip()]
    unknown = [item for item in wanted if item not in {*GROUPS, *(w.name for w in workloads), "all", idle_name}]
    if unknown:
        raise ValueError(f"unknown workload(s) {', '.join(unknown)}; choose from: all, {', '.join(GROUPS)} "
                         f"or one point: {', '.join(w.name for w in workloads)}, {idle_name}")
    if "all" in wanted:
        return workloads, True
    return [w for w in workloads if w.group in wanted or w.name in wanted], "idle" in wanted or idle_name in wanted


def make_site(directory):
    """The files the workloads fetch (random bytes: nothing to compress)."""
    for name, size in (SMALL, LARGE):
        (directory / name).write_bytes(os.urandom(size))


# ------------------------------------------------------------------ servers


@dataclass(frozen=True)
class ServerSpec:
    name: str
    command: object  # (root, port, scratch) -> an argument list
    ready: str | None = None  # a regular expression its output shows once it serves (else: its port accepts)
    labserver: bool = False


def labserver_spec(model):
    def command(root, port, scratch):  # --quiet: no log line per request, like the stdlib and nginx setups
        return [sys.executable, "-m", "labserver", "serve", "--quiet", "--root", root, "--port", port, "--model", model]
    # It prints "Serving ..." once start() returned: for processes, once every worker is ready.
    return ServerSpec(f"labserver-{model}", command, ready="Serving ", labserver=True)


# The best ThreadingHTTPServer we can build, run as `python -c` so that its
# process imports http.server and nothing else (its memory is compared).
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

# worker_connections 4096: the idle phase opens 1000 connections, and the
# kernel need not spread them evenly over the workers.
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
        conf.write_text(NGINX_CONF.format(scratch=scratch, port=port, root=root), encoding="utf-8")
        # -e: the log nginx writes to before it has read its configuration (not /var/log).
        return [executable, "-p", scratch, "-c", conf, "-e", scratch / "error.log"]
    return command


def find_nginx():
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None)


def choose_servers(models):
    specs = [labserver_spec(model) for model in models]
    specs.append(ServerSpec(STDLIB, lambda root, port, scratch: [sys.executable, "-c", STDLIB_SERVER, root, port]))
    # What most people run: HTTP/1.0, a new connection per request, a log line per request.
    specs.append(ServerSpec("stdlib-plain", lambda root, port, scratch: [
        sys.executable, "-m", "http.server", port, "--bind", "127.0.0.1", "--directory", root]))
    nginx = find_nginx()
    if nginx:
        specs.append(ServerSpec(NGINX, nginx_command(nginx)))
    else:
        print("nginx is not installed (apt-get install nginx-light): skipping it.")
    return specs


class Server:
    """A started server: its spec, its port and its child process."""

    def __init__(self, spec, child, port):
        self.spec, self.child, self.port = spec, child, port
        self.name, self.pid = spec.name, child.pid
        self.dead = False  # it stopped answering: its remaining points are skipped


@contextmanager
def running(spec, root, scratch, checks):
    """Start one server in its own process; yield it once it serves `checks`; always stop it."""
    scratch.mkdir(parents=True, exist_ok=True)
    port = free_port()
    child = Child(spec.command(root, port, scratch), cwd=REPO, stop_timeout=STOP_TIMEOUT)
    try:
        child.start()
        if spec.ready:
            child.wait_for_output(spec.ready, START_TIMEOUT)
        else:
            child.wait_for_port(port, timeout=START_TIMEOUT)
        for path, size in checks:
            check_serves(port, path, size)
    except (ChildError, OSError, ResponseError) as error:
        child.stop()
        raise SystemExit(f"{spec.name} did not start: {error}") from None
    try:
        yield Server(spec, child, port)
    finally:
        for line in child.stop():
            print(f"  {spec.name}: had to kill {line}")


def startup_checks(spec, workloads):
    """(path, size) pairs to fetch once before measuring: one per distinct path it will serve."""
    checks = {w.path: w.size for w in reversed(workloads) if spec.labserver or not w.labserver_only}
    return list(checks.items()) or [("/" + SMALL[0], SMALL[1])]


def check_serves(port, path, size):
    """Fetch once: a server answering 404 fast must not win the benchmark."""
    response = fetch(port, path, time.monotonic() + 10)
    if response.status != 200 or (size is not None and response.body_length != size):
        raise ResponseError(f"GET {path}: {response.describe()}" + (f" instead of {size:,}" if size else ""))


def fetch(port, path, deadline):
    """GET `path` on a new connection; the response, read with labserver's ResponseReader.
    TimeoutError at `deadline` (time.monotonic()); OSError or ResponseError if it fails."""
    reader = ResponseReader()
    reader.expect("GET")
    with socket.create_connection(("127.0.0.1", port), timeout=max(0.01, deadline - time.monotonic())) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode("ascii"))
        while (response := reader.next_response()) is None:
            if reader.closed:
                raise ResponseError("the server closed the connection without answering")
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            sock.settimeout(min(left, 0.05))
            try:
                reader.feed(sock.recv(1 << 16))
            except socket.timeout:
                continue
    return response


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -------------------------------------------------------------- measuring


class MeasurementFailed(Exception):
    pass


def load(port, workload, duration, use_wrk):
    """One run against the server: wrk where it can, labserver's generator otherwise."""
    url = f"http://127.0.0.1:{port}{workload.path}"
    if use_wrk and workload.keep_alive:  # (labserver.load's wrk runner sends no Connection: close)
        try:
            result = run_wrk(url, workload.clients, duration)
        except CalibrationError as error:
            raise MeasurementFailed(str(error).splitlines()[0]) from None
        return {"tool": "wrk", "req_per_s": result["rps"], "mb_per_s": result["mbps_wire"] / 8,
                "p50_ms": result["p50_ms"], "p99_ms": result["p99_ms"], "errors": result["errors"],
                "client_cpu": result["client_cpu_pct"]}
    try:
        result = run(url, workload.clients, duration=duration, keep_alive=workload.keep_alive, timeout=TIMEOUT)
    except LoadError as error:
        raise MeasurementFailed(str(error).splitlines()[0]) from None
    return {"tool": "labserver", "req_per_s": result.rps, "mb_per_s": result.mbps_wire / 8,
            "p50_ms": result.p50_ms, "p99_ms": result.p99_ms, "errors": result.errors,
            "client_cpu": result.client_cpu_pct}


PROBE_START = 0.25  # seconds after the load starts before the first newcomer
PROBE_PAUSE = 0.25  # seconds between two newcomers


class Probe(threading.Thread):
    """A newcomer while the load runs: a new connection every PROBE_PAUSE asks for
    the 1 KiB file and times the answer, with the load's timeout.

    Why: wrk counts a timeout only for a response that does arrive, late; a
    request never answered counts nowhere, so the iterative model at 64 clients
    shows a fine req/s (its one lucky connection) while 63 clients starve. A
    newcomer sees what they see. Only answers before `until` (when the load is
    due to stop) count: once its connections close, an iterative server answers
    a waiting newcomer at once."""

    def __init__(self, port, until):
        super().__init__(daemon=True)
        self.port, self.until = port, until
        self.latencies, self.lost, self.cpu = [], 0, 0.0
        self.done = threading.Event()

    def run(self):
        cpu = time.thread_time()
        if not self.done.wait(PROBE_START):
            while not self.done.is_set() and time.monotonic() < self.until:
                self.one()
                self.done.wait(PROBE_PAUSE)
        self.cpu = time.thread_time() - cpu

    def one(self):
        started = time.monotonic()
        timed_out = started + TIMEOUT
        try:
            fetch(self.port, "/" + SMALL[0], min(timed_out, self.until))
        except TimeoutError:
            self.lost += time.monotonic() >= timed_out  # else the load ended first: it measures nothing
            return
        except (OSError, ResponseError):
            self.lost += 1
            return
        if time.monotonic() < self.until:
            self.latencies.append(1000 * (time.monotonic() - started))

    def finish(self):
        self.done.set()
        self.join()
        return {"probes": len(self.latencies) + self.lost, "probe_lost": self.lost,
                "probe_ms": statistics.median(self.latencies) if self.latencies else None}


def cpu_now(server, paused):
    """CPU seconds used so far: by the server's process tree, by the paused servers', by the
    whole machine (busy), and by the kernel's network stack (softirq, charged to no process)."""
    machine = psutil.cpu_times()
    busy = sum(machine) - machine.idle - getattr(machine, "iowait", 0) - getattr(machine, "guest", 0) \
        - getattr(machine, "guest_nice", 0)  # (guest time is counted in user time already)
    return {"server": tree_cpu(server.pid), "paused": sum(tree_cpu(s.pid) for s in paused),
            "machine": busy, "softirq": getattr(machine, "softirq", 0.0)}


def tree_cpu(pid):
    try:
        return tree_cpu_seconds(process_tree(pid))
    except psutil.Error:
        return 0.0


def measure(server, workload, duration, paused=()):
    """One run (with the newcomer probe from 2 clients on), and the CPU used meanwhile, in %
    of one core, by the clients, the server, the paused servers, softirq and everything else."""
    before, started = cpu_now(server, paused), time.monotonic()
    probe = Probe(server.port, started + duration) if workload.clients > 1 else None
    if probe:
        probe.start()
    try:
        result = load(server.port, workload, duration, USE_WRK)
    finally:
        probed = probe.finish() if probe else {"probes": 0, "probe_lost": 0, "probe_ms": None}
    after, elapsed = cpu_now(server, paused), time.monotonic() - started
    used = {key: 100 * (after[key] - before[key]) / elapsed for key in before}
    result.update(probed, server_cpu=used["server"], paused_cpu=used["paused"], softirq_cpu=used["softirq"])
    result["client_cpu"] += 100 * (probe.cpu if probe else 0.0) / elapsed
    result["other_cpu"] = max(0.0, used["machine"] - used["softirq"] - result["client_cpu"]
                              - used["server"] - used["paused"])
    return result


def applies(workload, server):
    return server.spec.labserver or not workload.labserver_only


def run_rounds(servers, workloads, rounds, duration):
    """Every workload on every server, interleaved, one server awake at a time; one record per run."""
    records = []
    for number in range(rounds):
        shift = number % len(servers)
        order = servers[shift:] + servers[:shift]  # rotate: nobody always goes first
        for workload in workloads:
            for server in (s for s in order if applies(workload, s)):
                print(f"  round {number + 1}/{rounds}  {workload.label:>10} x{workload.clients:<3}  "
                      f"{server.name:<22}", end=" ", flush=True)
                if server.dead:
                    print("skipped: it stopped working earlier")
                    continue
                server.child.resume()
                try:
                    result = measure(server, workload, duration, [s for s in servers if s is not server])
                except MeasurementFailed as error:  # a crashed server must not lose the others' runs
                    print(f"FAILED: {error}")
                    result = None
                finally:
                    time.sleep(SETTLE)  # let it close the clients' connections
                    server.child.pause()
                if not server.child.running:
                    print(f"  {server.name} exited with status {server.child.process.returncode}: "
                          "skipping its remaining points")
                    server.dead = True
                if result is None:
                    continue
                notes = (f"  {result['errors']} errors" if result["errors"] else "") + \
                    (f"  {result['probe_lost']}/{result['probes']} newcomers lost" if result["probe_lost"] else "")
                print(f"{result['req_per_s']:>10,.0f} req/s{notes}", flush=True)
                records.append({"round": number + 1, "server": server.name, "workload": workload.label,
                                "clients": workload.clients, **result})
    return records


def warm_up(servers, workloads):
    """A short unrecorded run each, so no server pays for its first connections in round 1."""
    warm = [Workload("small", "/" + SMALL[0], SMALL[1], 8), *(w for w in workloads if w.group == "cpu")]
    for server in servers:
        server.child.resume()
        try:
            for workload in (w for w in warm if applies(w, server)):
                load(server.port, workload, 1, USE_WRK)
        except MeasurementFailed:
            pass  # the measured runs will report it
        finally:
            time.sleep(SETTLE)
            server.child.pause()


# ------------------------------------------------------ idle connections


def idle_connections(server, count, answer_within=5.0, hold=1.0):
    """`count` keep-alive connections that each send one request and then idle: how many
    were connected and answered, and the server's memory meanwhile (labserver.load's monitor).
    A connection not answered within `answer_within` s (the iterative server serves one at a
    time; a full listen backlog drops SYNs) stays open all the same."""
    before = tree_rss_bytes(process_tree(server.pid))
    monitor = ServerMonitor(server.pid, server.port).start()
    monitor.begin_window()
    selector = selectors.DefaultSelector()
    readers, socks = {}, []
    counts = {"connected": 0, "answered": 0, "refused": 0, "closed_by_server": 0}
    started = time.monotonic()
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.setblocking(False)
            socks.append(sock)
            if sock.connect_ex(("127.0.0.1", server.port)) not in (0, *IN_PROGRESS):
                counts["refused"] += 1
                continue
            selector.register(sock, selectors.EVENT_WRITE)
        deadline = started + answer_within
        while selector.get_map() and time.monotonic() < deadline:
            for key, mask in selector.select(max(0.0, deadline - time.monotonic())):
                on_idle_event(selector, key.fileobj, mask, readers, counts)
        answered_in = time.monotonic() - started
        time.sleep(hold)  # all idle now: the monitor keeps sampling
        tree = process_tree(server.pid)
        threads = sum(p.num_threads() for p in tree)
    finally:
        monitor.end_window()
        monitor.stop()
        selector.close()
        for sock in socks:
            sock.close()
    peak = monitor.results()["rss_mb"]
    return {"server": server.name, "connections": count, **counts, "seconds": answered_in,
            "rss_before_mb": before / 1e6, "rss_peak_mb": peak, "threads": threads, "processes": len(tree),
            "kib_per_answered": (peak * 1e6 - before) / 1024 / counts["answered"]
            if counts["answered"] and peak else None}


IN_PROGRESS = {errno.EINPROGRESS, getattr(errno, "WSAEWOULDBLOCK", errno.EINPROGRESS)}  # connect_ex(): under way
REQUEST = b"GET /1KiB.bin HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def on_idle_event(selector, sock, mask, readers, counts):
    if mask & selectors.EVENT_WRITE:  # connected, or failed to
        if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
            counts["refused"] += 1
            selector.unregister(sock)
            return
        counts["connected"] += 1
        sock.send(REQUEST)  # 44 bytes into an empty send buffer: sent whole
        readers[sock] = ResponseReader()
        selector.modify(sock, selectors.EVENT_READ)
        return
    try:
        data = sock.recv(65536)
        readers[sock].feed(data)
        answered = readers[sock].next_response() is not None
    except (OSError, ResponseError):
        data, answered = b"", False
    if not data:
        counts["closed_by_server"] += 1
        selector.unregister(sock)
    elif answered:
        counts["answered"] += 1
        selector.unregister(sock)  # and now it idles


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
              f"{row['rss_peak_mb'] or 0:.0f} MB", flush=True)
    return rows


# ----------------------------------------------------------- summarising

FIELDS = ("req_per_s", "mb_per_s", "p50_ms", "p99_ms", "probe_ms", "client_cpu", "server_cpu",
          "softirq_cpu", "other_cpu", "paused_cpu")


def summarise(records, servers, workloads):
    """Medians over rounds per (server, workload), plus ratios to stdlib and nginx."""
    rows = []
    for workload in workloads:
        for server in (s for s in servers if applies(workload, s)):
            runs = [r for r in records if (r["server"], r["workload"], r["clients"])
                    == (server.name, workload.label, workload.clients)]
            row = {"server": server.name, "workload": workload.label, "point": workload.name,
                   "clients": workload.clients, "tool": runs[0]["tool"] if runs else None, "rounds": len(runs),
                   "errors": sum(r["errors"] for r in runs), "probes": sum(r["probes"] for r in runs),
                   "probe_lost": sum(r["probe_lost"] for r in runs)}
            for key in FIELDS:
                values = [r[key] for r in runs if r[key] is not None]
                row[key] = statistics.median(values) if values else None
            row["new_lost"] = f"{row['probe_lost']}/{row['probes']}" if row["probes"] else None
            rows.append(row)
    for row in rows:
        for reference in (STDLIB, NGINX):
            row[f"x_{reference}"] = ratio(row, find_row(rows, reference, row["point"]))
    return rows


def ratio(row, reference):
    """row's req/s over reference's (None if either is missing)."""
    if row is None or reference is None or row["req_per_s"] is None or not reference["req_per_s"]:
        return None
    return row["req_per_s"] / reference["req_per_s"]


def find_row(rows, server, point):
    return next((r for r in rows if (r["server"], r["point"]) == (server, point)), None)


def failed(row):
    """Some request failed or timed out: the load's errors, or a newcomer with no answer in time."""
    return bool(row["errors"] or row["probe_lost"])


COLUMNS = [  # (heading, key, format)
    ("server", "server", "<22"), ("workload", "workload", "<10"), ("clients", "clients", ">7"),
    ("req/s", "req_per_s", ">9,.0f"), ("MB/s", "mb_per_s", ">8,.1f"), ("p50 ms", "p50_ms", ">8.2f"),
    ("p99 ms", "p99_ms", ">8.2f"), ("errors", "errors", ">7"), ("new ms", "probe_ms", ">7.1f"),
    ("new lost", "new_lost", ">8"), ("x stdlib", "x_stdlib", ">8.2f"), ("x nginx", "x_nginx", ">8.2f"),
    ("cli%", "client_cpu", ">5.0f"), ("srv%", "server_cpu", ">5.0f"), ("sirq%", "softirq_cpu", ">5.0f"),
    ("other%", "other_cpu", ">6.0f"), ("tool", "tool", "<9"),
]
IDLE_COLUMNS = [
    ("server", "server", "<22"), ("connected", "connected", ">9"), ("answered", "answered", ">8"),
    ("RSS before MB", "rss_before_mb", ">13.1f"), ("RSS peak MB", "rss_peak_mb", ">11.1f"),
    ("KiB/answered", "kib_per_answered", ">12.1f"), ("threads", "threads", ">7"), ("processes", "processes", ">9"),
]


def format_cell(value, spec):
    width = spec.split(",")[0].split(".")[0]  # '>9,.0f' -> '>9': alignment and width only
    return f"{'-':{width}}" if value is None else f"{value:{spec}}"


def print_table(rows, columns=COLUMNS, group=("workload", "clients")):
    print()
    print("  ".join(format_cell(heading, spec.split(",")[0].split(".")[0]) for heading, _, spec in columns))
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
        print(f"Warning: other processes used more than {BUSY_MACHINE} % of a core during {len(busy)} of "
              f"{len(rows)} points (other%, medians over rounds): those figures are disturbed; compare "
              "ratios, or rerun on a quiet machine.")
    paused = [row["paused_cpu"] for row in rows if row["paused_cpu"] is not None]
    if paused and max(paused) > 1:
        print(f"Warning: paused servers used up to {max(paused):.1f} % of a core during a point.")
    print()


def print_matrix(rows, idle_rows, workloads, names):
    """One line per server, one column per point: req/s (MB/s for 10MiB); '!' marks errors."""
    short = {"small": "1K", "close": "close", "large": "10M MB/s", "cpu": "cpu"}
    headings = [f"{short[w.group]} x{w.clients}" for w in workloads] + (["idle RSS MB"] if idle_rows else [])
    table = []
    for name in names:
        cells = []
        for w in workloads:
            row = find_row(rows, name, w.name)
            if row is None or row["req_per_s"] is None:
                cells.append("-" if w.labserver_only and not name.startswith("labserver-") else "n/a")
            else:
                cells.append(f"{row['mb_per_s'] if w.group == 'large' else row['req_per_s']:,.0f}"
                             + ("!" if failed(row) else ""))
        if idle_rows:
            idle = next((r for r in idle_rows if r["server"] == name), None)
            cells.append(f"{idle['rss_peak_mb']:.0f}" if idle and idle["rss_peak_mb"] else "-")
        table.append((name, cells))
    widths = [max(len(h), *(len(cells[i]) for _, cells in table)) for i, h in enumerate(headings)]
    print("Summary: req/s (10MiB: MB/s), medians; '!' = some requests failed or timed out "
          "(the load's or the newcomer probe's)")
    print(f"{'server':<22}  " + "  ".join(f"{h:>{w}}" for h, w in zip(headings, widths)))
    for name, cells in table:
        print(f"{name:<22}  " + "  ".join(f"{c:>{w}}" for c, w in zip(cells, widths)))
    print()


# ----------------------------------------------------------------- targets
# What a run must show (labserver's issues), one row each, all checked by check_targets().
# server: a server's name, "best" (the labserver model with the most req/s at that point) or
# "each" (every concurrent labserver model). value: a column of the summary, or "x:NAME" for
# req/s over NAME's at the same point. at_least / below: the threshold. clean: no request
# failed and no newcomer was lost. A target whose server, reference or point is not in this
# run is "skipped"; one that is, but was not measured (a server that died), is "MISSED".

TARGETS = [
    {"server": "best", "point": "small-64", "value": f"x:{STDLIB}", "at_least": 10},
    {"server": "best", "point": "small-64", "value": f"x:{NGINX}", "at_least": 0.35},
    {"server": "each", "point": "small-64", "value": "p99_ms", "below": 20, "clean": True},
    {"server": "labserver-processes", "point": "cpu-8", "value": "x:labserver-threadpool", "at_least": 1.6},
    {"server": "labserver-threadpool", "point": "small-64", "value": f"x:{STDLIB}", "at_least": 2},
    {"server": "labserver-threadpool", "point": "large-8", "value": f"x:{NGINX}", "at_least": 0.8},
]


def check_targets(rows, names, targets=TARGETS):
    """[(description, status, value shown)] for every target; status met, MISSED or skipped."""
    checks = []
    for target in targets:
        for server in target_servers(target, rows, names):
            reference = target["value"][2:] if target["value"].startswith("x:") else None
            description = describe(target, server)
            row = find_row(rows, server, target["point"])
            if server not in names or (reference and reference not in names) or row is None:
                checks.append((description, "skipped", "not in this run"))
                continue
            value = ratio(row, find_row(rows, reference, target["point"])) if reference else row[target["value"]]
            if value is None:
                checks.append((description, "MISSED", "not measured"))
                continue
            met = value >= target["at_least"] if "at_least" in target else value < target["below"]
            if target.get("clean") and failed(row):
                met = False
            shown = f"{value:.2f}x" if reference else f"{value:.1f}"
            shown += f", {row['errors']} errors, {row['probe_lost']} newcomers lost" if target.get("clean") else ""
            checks.append((description, "met" if met else "MISSED", shown))
    return checks


def target_servers(target, rows, names):
    at_point = [r for r in rows if r["point"] == target["point"] and r["server"].startswith("labserver-")]
    if target["server"] == "each":
        return [r["server"] for r in at_point if r["server"].removeprefix("labserver-") not in SEQUENTIAL] or ["each model"]
    if target["server"] == "best":
        measured = [r for r in at_point if r["req_per_s"] is not None]
        return [max(measured, key=lambda r: r["req_per_s"])["server"]] if measured else ["best model"]
    return [target["server"]]


def describe(target, server):
    point = target["point"]
    if target["value"].startswith("x:"):
        return f"{server}: req/s >= {target['at_least']:g}x {target['value'][2:]}'s at {point}"
    test = f">= {target['at_least']:g}" if "at_least" in target else f"< {target['below']:g}"
    return f"{server}: {target['value'].replace('_', ' ')} {test} at {point}" + (", nothing lost" if target.get("clean") else "")


def print_targets(checks):
    print("Targets:")
    for description, status, shown in checks:
        print(f"  [{status}] {description} ({'is ' if status != 'skipped' else ''}{shown})")


# ------------------------------------------------------------------ records


def command_output(command):
    try:
        done = subprocess.run(command, capture_output=True, text=True, encoding="utf-8", errors="replace",
                              timeout=10)
    except OSError:
        return None
    return ((done.stdout + done.stderr).strip().splitlines() or [None])[0]


def machine_info():
    cpuinfo = Path("/proc/cpuinfo")
    names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text(encoding="utf-8").splitlines()
             if line.startswith("model name")] if cpuinfo.exists() else []
    nginx = find_nginx()
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
        "cpu_model": names[0] if names else platform.processor(),
        "python": platform.python_version(),
        "load_average_at_start": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "platform": platform.platform(),
        "wrk": command_output([wrk_path(), "-v"]) if wrk_path() else None,
        "nginx": command_output([nginx, "-v"]) if nginx else None,
    }


def write_results(folder, document, rows, idle_rows):
    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / f"bench-{datetime.datetime.now():%Y-%m-%d-%H%M%S}"
    stem.with_suffix(".json").write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    for suffix, table in (("", rows), ("-idle", idle_rows)):
        if table:
            with open(stem.with_name(stem.name + suffix + ".csv"), "w", newline="", encoding="utf-8") as file:
                writer = csv.DictWriter(file, fieldnames=list(table[0]))
                writer.writeheader()
                writer.writerows(table)
    return stem


# --------------------------------------------------------------------- main


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="all",
                        help=f"labserver models to measure, comma-separated (default: all, in lesson order: "
                             f"{','.join(MODELS)}; '' for none)")
    parser.add_argument("--workloads", default="all",
                        help="groups (small, close, large, cpu, idle) or points (small-64, close-256, large-8, "
                             "cpu-8, idle-1000...), comma-separated; default all")
    parser.add_argument("--duration", type=positive_int, default=3,
                        help=f"whole seconds per run (default 3; the newcomer probe needs more than "
                             f"{PROBE_START:g} + {TIMEOUT:g} s to see a starving server)")
    parser.add_argument("--rounds", type=positive_int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--quick", action="store_true", help="one round")
    parser.add_argument("--cpu-ms", type=positive_int, default=5, help="ms of CPU per /cpu request (default 5)")
    parser.add_argument("--idle-connections", type=positive_int, default=1000,
                        help="connections held open in the memory phase (default 1000)")
    parser.add_argument("--no-open-loop", dest="open_loop", action="store_false",
                        help="skip the open-loop point (a rate sweep on 1 KiB for select, threadpool, processes)")
    parser.add_argument("--check-targets", action="store_true", help="exit with status 1 when a target is missed")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, metavar="DIR",
                        help="where to write the JSON and CSV files (default benchmarks/results)")
    args = parser.parse_args(argv)
    args.rounds = 1 if args.quick else args.rounds
    names = [m.strip() for m in args.models.split(",") if m.strip()]
    args.models = list(MODELS) if names == ["all"] else names
    unknown = [m for m in args.models if m not in MODELS]
    if unknown:
        parser.error(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(MODELS)}")
    try:
        args.workloads, args.idle = choose_workloads(args.workloads, args.cpu_ms, args.idle_connections)
    except ValueError as error:
        parser.error(str(error))
    return args


def positive_int(text):
    """Durations too: wrk takes whole seconds only ("-d2.5s" is a usage error)."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return int(text)


USE_WRK = wrk_path() is not None


def main(argv=None):
    args = parse_args(argv)
    if not USE_WRK:
        print("wrk is not installed (apt-get install wrk): every point is measured with labserver's own "
              "generator instead (slower than wrk: its CPU is in cli%).")
    try:
        raise_open_files_limit(args.idle_connections + 1024)  # here and in the servers, which inherit it
    except (ValueError, OSError):  # macOS refuses more than kern.maxfilesperproc: keep what we have
        pass
    info = machine_info()
    settings = {"duration_s": args.duration, "rounds": args.rounds, "models": args.models,
                "workloads": [w.name for w in args.workloads], "timeout_s": TIMEOUT,
                "idle_connections": args.idle_connections if args.idle else None, "command": sys.argv}
    print(f"{info['cpu_count']} x {info['cpu_model']}, Python {info['python']}, {info['wrk'] or 'no wrk'}")
    info["busy_before_start"] = busy = psutil.cpu_percent(interval=2.0) * (psutil.cpu_count() or 1)
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
                    servers.append(stack.enter_context(running(spec, root, Path(tmp) / spec.name,
                                                               startup_checks(spec, args.workloads))))
                    servers[-1].child.pause()  # asleep until its own points
                points = sum(applies(w, s) for w in args.workloads for s in servers)
                print(f"{len(servers)} servers up (paused between their own points); "
                      f"{args.rounds} round(s) of {points} points, {args.duration} s each")
                warm_up(servers, args.workloads)
                records = run_rounds(servers, args.workloads, args.rounds, args.duration)
                rows = summarise(records, servers, args.workloads)
        if args.idle:
            idle_rows = run_idle_phase(specs, root, Path(tmp), args.idle_connections)
    open_models = [m for m in open_loop.MODELS_MEASURED if m in args.models]
    open_rows = open_loop.run(open_models, duration=args.duration) if args.open_loop and open_models else []
    minutes = (time.monotonic() - began) / 60
    if rows:
        print_table(rows)
        print_warnings(rows)
    if idle_rows:
        print(f"Memory with {args.idle_connections} idle keep-alive connections "
              "(RSS summed over the server's processes, MB = 10^6 bytes):")
        print_table(idle_rows, IDLE_COLUMNS, group=())
    print_matrix(rows, idle_rows, args.workloads, [s.name for s in specs])
    checks = check_targets(rows, [s.name for s in specs])
    print_targets(checks)
    if open_rows:
        print("\n" + open_loop.report(open_rows))
    settings["minutes"] = round(minutes, 1)
    stem = write_results(args.out, {"machine": info, "settings": settings, "summary": rows, "idle": idle_rows, "open_loop": open_rows,
                          "targets": [dict(zip(("target", "status", "value"), c)) for c in checks],
                          "runs": records}, rows, idle_rows)
    print(f"\n{minutes:.1f} min. Results: {stem}.json and .csv")
    return 1 if args.check_targets and any(status == "MISSED" for _, status, _ in checks) else 0


if __name__ == "__main__":
    sys.exit(main())
