"""Benchmark labserver against the standard library's http.server and nginx.

Run it with ``make bench`` (or ``.venv/bin/python benchmarks/bench.py --help``).

What is measured
----------------
Every server serves the same directory of generated files from its own
process. ``wrk`` fetches one file over keep-alive connections:

* a 1 KiB file with 1, 8, 64 and 256 clients (request rate and latency), and
* a 10 MiB file with 8 clients (bulk throughput).

The servers are labserver (one entry per ``--models`` name), the standard
library's ``ThreadingHTTPServer`` in its best configuration (``stdlib``), plain
``python -m http.server`` for reference (``stdlib-plain``) and nginx when it is
installed.

Method, and why
---------------
* **wrk as the load generator.** It is written in C on epoll, so on this 2-core
  machine it leaves as much CPU as possible to the server. A Python client would
  measure itself: a ``requests``-based one saturates near 1.3k req/s. wrk still
  shares the two cores with the server, so its CPU use is printed beside every
  figure (``wrk%`` and ``srv%``, in % of one core), and so is the CPU that other
  processes took meanwhile (``other%``): a busy machine shows up there.
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

Results go to ``benchmarks/results/bench-<date>.json`` (machine info, settings,
every round and the medians) and ``.csv`` (the medians, as in the table).
"""

from __future__ import annotations

import argparse
import csv
import datetime
import http.client
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

try:
    import psutil  # a labserver dependency; only used for the server's CPU column
except ImportError:
    psutil = None

REPO = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO / "benchmarks" / "results"

STDLIB = "stdlib"  # the reference for the "x stdlib" ratio
NGINX = "nginx"  # the reference for the "x nginx" ratio
START_TIMEOUT = 15.0  # seconds a server may take to accept connections
STOP_TIMEOUT = 5.0  # seconds a server may take to exit after SIGINT

# ---------------------------------------------------------------- workloads


@dataclass(frozen=True)
class Workload:
    file: str  # name of the file in the served directory
    size: int  # its size in bytes
    clients: int  # concurrent keep-alive connections opened by wrk

    @property
    def label(self):
        return self.file.removesuffix(".bin")


SMALL, LARGE = ("1KiB.bin", 1024), ("10MiB.bin", 10 * 1024 * 1024)
WORKLOADS = [Workload(*SMALL, clients) for clients in (1, 8, 64, 256)]
WORKLOADS.append(Workload(*LARGE, clients=8))


def make_site(directory):
    """Write the files the workloads fetch (random bytes: nothing to compress)."""
    for name, size in {SMALL, LARGE}:
        (directory / name).write_bytes(os.urandom(size))


# ------------------------------------------------------------------ servers
# A server is a name plus a function (root, port, scratch dir) -> command line.


def labserver_command(model):
    def command(root, port, scratch):
        # --quiet: no access-log line per request, like the stdlib and nginx setups below.
        return [sys.executable, "-m", "labserver", "serve", "--quiet",
                "--root", str(root), "--port", str(port), "--model", model]
    return command


def stdlib_command(root, port, scratch):
    """The best ThreadingHTTPServer we can build: see serve_stdlib() below."""
    return [sys.executable, str(Path(__file__).resolve()),
            "--serve-stdlib", str(root), str(port)]


def stdlib_plain_command(root, port, scratch):
    """What most people run: HTTP/1.0, a new connection per request, a log line per request."""
    return [sys.executable, "-m", "http.server", str(port),
            "--bind", "127.0.0.1", "--directory", str(root)]


NGINX_CONF = """\
daemon off;
master_process on;
worker_processes auto;
error_log {scratch}/error.log;
pid {scratch}/nginx.pid;
events {{ worker_connections 1024; }}
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
    servers = {f"labserver-{model}": labserver_command(model) for model in models}
    servers[STDLIB] = stdlib_command
    servers["stdlib-plain"] = stdlib_plain_command
    nginx = find_nginx()
    if nginx:
        servers[NGINX] = nginx_command(nginx)
    else:
        print("nginx is not installed (apt-get install nginx-light): skipping it.")
    return servers


def serve_stdlib(root, port):
    """Run http.server.ThreadingHTTPServer in its best configuration (a child process)."""
    from functools import partial
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    class Handler(SimpleHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive; the default HTTP/1.0 closes after each response
        disable_nagle_algorithm = True  # TCP_NODELAY: headers and body are two send() calls

        def log_message(self, format, *args):  # one stderr line per request costs time
            pass

    # The listen backlog stays at socketserver's default of 5: that is what the
    # standard library ships, and its dropped SYNs are part of what we compare.
    with ThreadingHTTPServer(("127.0.0.1", port), partial(Handler, directory=root)) as server:
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass


def free_port():
    """A port that was free a moment ago (bind to port 0, read it, close)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_listening(process, port, log):
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"exited with code {process.returncode}\n{tail(log)}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"not accepting connections after {START_TIMEOUT} s\n{tail(log)}")


def check_serves(port, workload):
    """Fetch the file once: a server answering 404 fast must not win the benchmark."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/" + workload.file)
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    if response.status != 200 or len(body) != workload.size:
        raise RuntimeError(f"GET /{workload.file}: status {response.status}, "
                           f"{len(body)} bytes instead of {workload.size}")


def stop(process):
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def tail(path, lines=15):
    text = Path(path).read_text(errors="replace").splitlines()
    return "\n".join(text[-lines:])


@dataclass
class Running:
    name: str
    port: int
    pid: int


@contextmanager
def running(name, command, root, scratch):
    """Start one server in its own process, yield it once it serves, always stop it."""
    scratch.mkdir()
    port = free_port()
    log = scratch / "output.log"
    with open(log, "wb") as out:
        # A new session: Ctrl-C reaches only this script, which then stops the server.
        process = subprocess.Popen(command(root, port, scratch), cwd=REPO, stdin=subprocess.DEVNULL,
                                   stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        try:
            wait_until_listening(process, port, log)
            for workload in (WORKLOADS[0], WORKLOADS[-1]):
                check_serves(port, workload)
        except (RuntimeError, OSError) as error:
            raise SystemExit(f"{name} did not start: {error}")
        yield Running(name, port, process.pid)
    finally:
        stop(process)


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
    """wrk's text report -> req/s, MB/s (10^6 bytes), p50 and p99 in ms, error count."""
    found = {key: re.search(pattern, output, re.MULTILINE) for key, pattern in WRK_PATTERNS.items()}
    if not found["requests_per_s"]:
        raise MeasurementFailed(f"cannot parse wrk's output:\n{output}")
    rate, unit = split_unit(found["transfer_per_s"].group(1))
    result = {
        "req_per_s": float(found["requests_per_s"].group(1)),
        "mb_per_s": rate * BYTE_UNITS[unit] / 1e6,
        "errors": 0,
    }
    for key in ("p50", "p99"):
        value, unit = split_unit(found[key].group(1))
        result[f"{key}_ms"] = value * TIME_UNITS[unit]
    for key in ("socket_errors", "non_2xx"):
        if found[key]:
            result["errors"] += sum(int(n) for n in found[key].groups())
    return result


def cpu_seconds(pid):
    """CPU time used so far by a server process and its children (nginx's workers)."""
    if psutil is None:
        return None
    try:
        parent = psutil.Process(pid)
        return sum(sum(p.cpu_times()[:2]) for p in [parent, *parent.children(recursive=True)])
    except psutil.Error:
        return None


def wrk_cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # includes every reaped wrk
    return usage.ru_utime + usage.ru_stime


def machine_cpu_seconds():
    """CPU time every process on the machine has used so far (Linux /proc/stat)."""
    try:
        ticks = [int(n) for n in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except OSError:
        return None
    idle = ticks[3] + ticks[4]  # idle and iowait; the rest is user, system, irq, steal ...
    return (sum(ticks) - idle) / os.sysconf("SC_CLK_TCK")


def cpu_snapshot(server):
    return {"wrk": wrk_cpu_seconds(), "server": cpu_seconds(server.pid),
            "machine": machine_cpu_seconds()}


class MeasurementFailed(Exception):
    pass


def run_wrk(port, workload, duration):
    threads = min(2, workload.clients)  # wrk needs at least one connection per thread
    command = ["wrk", f"-t{threads}", f"-c{workload.clients}", f"-d{duration}s", "--latency",
               f"http://127.0.0.1:{port}/{workload.file}"]
    try:
        completed = subprocess.run(command, capture_output=True, text=True,
                                   timeout=duration + 60, check=True)
    except subprocess.CalledProcessError as error:
        raise MeasurementFailed(f"wrk exited with {error.returncode}: {error.stderr.strip()}")
    except subprocess.TimeoutExpired:
        raise MeasurementFailed("wrk did not finish")
    return completed.stdout


def measure(server, workload, duration):
    """One wrk run against one server, with the CPU used meanwhile in % of one core
    by wrk, by the server, and by everything else on the machine (noise)."""
    before, started = cpu_snapshot(server), time.monotonic()
    output = run_wrk(server.port, workload, duration)
    after, elapsed = cpu_snapshot(server), time.monotonic() - started
    used = {key: None if None in (before[key], after[key])
            else 100 * (after[key] - before[key]) / elapsed for key in before}
    result = parse_wrk(output)
    result["wrk_cpu"], result["server_cpu"] = used["wrk"], used["server"]
    result["other_cpu"] = (None if None in used.values()
                           else max(0.0, used["machine"] - used["wrk"] - used["server"]))
    return result


def run_rounds(servers, rounds, duration):
    """Every workload on every server, interleaved; returns one record per wrk run."""
    records = []
    for number in range(rounds):
        shift = number % len(servers)
        order = servers[shift:] + servers[:shift]  # rotate: nobody always goes first
        for workload in WORKLOADS:
            for server in order:
                print(f"  round {number + 1}/{rounds}  {workload.label:>5} x{workload.clients:<3}  "
                      f"{server.name:<22}", end=" ", flush=True)
                try:
                    result = measure(server, workload, duration)
                except MeasurementFailed as error:  # a crashed server must not lose the others' runs
                    print(f"FAILED: {error}")
                    continue
                print(f"{result['req_per_s']:>10,.0f} req/s", flush=True)
                records.append({"round": number + 1, "server": server.name,
                                "workload": workload.label, "clients": workload.clients, **result})
    return records


def warm_up(servers):
    """A short unrecorded run each, so no server pays for its first connections in round 1."""
    for server in servers:
        try:
            run_wrk(server.port, WORKLOADS[1], duration=1)
        except MeasurementFailed:
            pass  # the measured runs will report it


# ----------------------------------------------------------- summarising

FIELDS = ("req_per_s", "mb_per_s", "p50_ms", "p99_ms", "wrk_cpu", "server_cpu", "other_cpu")
BUSY_MACHINE = 20  # other% above which a figure is flagged as disturbed


def median_or_none(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def summarise(records, server_names):
    """Medians over rounds per (server, workload), plus ratios to stdlib and nginx."""
    rows = []
    for workload in WORKLOADS:
        for name in server_names:
            runs = [r for r in records if r["server"] == name
                    and (r["workload"], r["clients"]) == (workload.label, workload.clients)]
            row = {"server": name, "workload": workload.label, "clients": workload.clients,
                   "rounds": len(runs), "errors": sum(r["errors"] for r in runs)}
            row.update({key: median_or_none(r[key] for r in runs) for key in FIELDS})
            rows.append(row)
    for row in rows:
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
    ("server", "server", "<22"), ("workload", "workload", "<8"), ("clients", "clients", ">7"),
    ("req/s", "req_per_s", ">9,.0f"), ("MB/s", "mb_per_s", ">8,.1f"),
    ("p50 ms", "p50_ms", ">8.2f"), ("p99 ms", "p99_ms", ">8.2f"), ("errors", "errors", ">7"),
    ("x stdlib", "x_stdlib", ">8.2f"), ("x nginx", "x_nginx", ">8.2f"),
    ("wrk%", "wrk_cpu", ">5.0f"), ("srv%", "server_cpu", ">5.0f"), ("other%", "other_cpu", ">6.0f"),
]


def column_width(spec):
    """'>9,.0f' -> '>9': alignment and width only, for headings and missing values."""
    return re.match(r"[<>]\d+", spec).group()


def format_cell(value, spec):
    return f"{'-':{column_width(spec)}}" if value is None else f"{value:{spec}}"


def print_table(rows):
    print()
    print("  ".join(f"{heading:{column_width(spec)}}" for heading, _, spec in COLUMNS))
    previous = None
    for row in rows:
        if previous and (row["workload"], row["clients"]) != previous:
            print()
        previous = row["workload"], row["clients"]
        print("  ".join(format_cell(row[key], spec) for _, key, spec in COLUMNS))
    print()
    if any((row["other_cpu"] or 0) > BUSY_MACHINE for row in rows):
        print(f"Warning: other processes used more than {BUSY_MACHINE} % of a core during some "
              "points (other%): those figures are disturbed; compare ratios, or rerun on a quiet "
              "machine.\n")


# ----------------------------------------------------------------- targets


TARGETS = [  # (workload, clients, column, test, description, format) from labserver's issue
    ("1KiB", 64, "x_stdlib", lambda v: v >= 2, "req/s >= 2x stdlib at 64 clients", "{:.2f}x"),
    ("1KiB", 64, "p99_ms", lambda v: v < 20, "p99 < 20 ms at 64 clients", "{:.1f} ms"),
    # Same file on both sides, so the req/s ratio is the MB/s ratio.
    ("10MiB", 8, "x_nginx", lambda v: v >= 0.8, "10 MiB MB/s >= 0.8x nginx", "{:.2f}x"),
]


def check_targets(rows, models, nginx_measured):
    """Returns (description, met) pairs; a target nobody could measure counts as missed."""
    checks = []
    for model in models:
        name = f"labserver-{model}"
        for workload, clients, column, test, description, form in TARGETS:
            if column == "x_nginx" and not nginx_measured:
                continue
            value = find_row(rows, name, workload, clients)[column]
            shown = "not measured" if value is None else form.format(value)
            checks.append((f"{name}: {description} (is {shown})", value is not None and test(value)))
    return checks


def print_targets(checks):
    if not checks:
        return
    print("Targets:")
    for description, met in checks:
        print(f"  [{'met' if met else 'MISSED'}] {description}")


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


def write_results(info, settings, records, rows):
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stem = RESULTS_DIR / f"bench-{datetime.datetime.now():%Y-%m-%d-%H%M%S}"
    document = {"machine": info, "settings": settings, "summary": rows, "runs": records}
    stem.with_suffix(".json").write_text(json.dumps(document, indent=2) + "\n")
    with open(stem.with_suffix(".csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return stem


# --------------------------------------------------------------------- main


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="threadpool",
                        help="comma-separated labserver models to measure (default: threadpool; "
                             "'' for none)")
    parser.add_argument("--duration", type=float, default=5, help="seconds per wrk run (default 5)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 round of 2 s")
    parser.add_argument("--check-targets", action="store_true",
                        help="exit with status 1 when a labserver target is missed")
    parser.add_argument("--serve-stdlib", nargs=2, metavar=("ROOT", "PORT"),
                        help=argparse.SUPPRESS)  # internal: run the stdlib server
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.rounds = 2, 1
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.serve_stdlib:
        root, port = args.serve_stdlib
        return serve_stdlib(root, int(port))
    if not shutil.which("wrk"):
        print("wrk is not installed (apt-get install wrk): nothing measured.")
        return 0

    info = machine_info()
    settings = {"duration_s": args.duration, "rounds": args.rounds, "models": args.models}
    print(f"{info['cpu_count']} x {info['cpu_model']}, Python {info['python']}, {info['wrk']}")
    commands = choose_servers(args.models)
    with tempfile.TemporaryDirectory(prefix="labserver-bench-") as tmp, ExitStack() as stack:
        root = Path(tmp) / "site"
        root.mkdir()
        os.chmod(tmp, 0o755)  # nginx's workers run as nobody when started as root
        make_site(root)
        servers = [stack.enter_context(running(name, command, root, Path(tmp) / name))
                   for name, command in commands.items()]
        print(f"{len(servers)} servers up; {args.rounds} round(s) of {len(WORKLOADS)} workloads, "
              f"{args.duration:g} s each")
        warm_up(servers)
        records = run_rounds(servers, args.rounds, args.duration)

    rows = summarise(records, list(commands))
    print_table(rows)
    checks = check_targets(rows, args.models, NGINX in commands)
    print_targets(checks)
    stem = write_results(info, settings, records, rows)
    print(f"Results: {stem.relative_to(REPO)}.json and .csv")
    if args.check_targets and not all(met for _, met in checks):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
