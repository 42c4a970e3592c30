"""sweep(): every model x workload x client count (or offered rate), one tidy row per point.

    rows = sweep(models=["threads", "threadpool"], clients=[1, 8, 64],
                 on_point=plot.add, stop_event=stop_button_event)
    save_results(rows, "results.csv")

    rows = sweep(models=["select", "threadpool"], rates=[500, 1000, 2000, 4000], clients=[16])

With rates=, each point is an open loop (generator.py): that many requests
per second offered over the `clients` connections, whatever the server
makes of them. Latency against offered load is the "hockey stick": flat
while the server keeps up, then steeply up once the offered rate passes
what it can serve, because from then on a queue builds up.

Each model runs in its own process (launch.py), started once and stopped
after its points; the load generator runs in this process or its own workers
(generator.py). on_point(row) is called as each point arrives, which is where
a live plot hooks in; stop_event (a threading.Event) ends the sweep within a
tick, mid-point, leaving no server or client process behind.

Between two points the sweep waits until the server answers a new client
(settle()): the clients of a point leave with requests still unanswered, and
a server that serves one connection at a time answers each of them first,
although nobody is listening any more. Without the wait, the iterative
server at 64 clients spent the whole next point on the 31 requests that
the 32 clients before had left behind, and measured 0 requests/s.

Durations and client counts come from a profile, so that the same notebook
takes seconds under CI and gives smooth curves in the lecture:
LABSERVER_PROFILE=ci (set by `make test`) or lecture (the default).
"""

import os
import socket
import time
from urllib.parse import urlsplit

from ..limits import fit_client_counts
from .generator import run
from .launch import launch
from .workload import encode_request, parse_workload

PROFILES = {
    # A point in ~0.6 s: enough to see the shape of a curve, not to trust a digit.
    "ci": {"duration": 0.5, "warmup": 0.1, "clients": [1, 2, 4, 8, 16], "workloads": ["small"],
           "timeout": 5.0},
    # Twice as long, up to 256 clients (1000 when asked for): steadier curves, and a
    # sweep of a few models that still fits in a lecture (a point in ~1.5 s).
    "lecture": {"duration": 1.0, "warmup": 0.2, "clients": [1, 4, 16, 64, 256], "workloads": ["small"],
                "timeout": 10.0},
}
DEFAULT_PROFILE = "lecture"
RATE_CLIENTS = [16]  # connections of an open-loop sweep unless told: enough for ~16 / latency req/s


def profile(name=None):
    """The default sweep settings: PROFILES[name or $LABSERVER_PROFILE or 'lecture'],
    as a new dict (with its 'name'), so changing it changes nothing else."""
    name = name or os.environ.get("LABSERVER_PROFILE") or DEFAULT_PROFILE
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r} (LABSERVER_PROFILE): choose one of {', '.join(PROFILES)}")
    settings = PROFILES[name]
    return {"name": name, **{key: list(v) if isinstance(v, list) else v for key, v in settings.items()}}


def sweep(models=None, clients=None, workloads=None, duration=None, warmup=None, keep_alive=True,
          url=None, pid=None, root=None, workers=None, server_cpus=None, client_cpus=None,
          timeout=None, on_point=None, stop_event=None, rates=None):
    """Measure every (model, workload, clients[, rate]) point; returns the rows (dicts).

    models: names from labserver.servers.MODELS (default: the default model);
    or url= (with pid= if known) to measure a server that is already running.
    clients, workloads, duration, warmup, timeout: default to profile()
    (with url=, the default workload is the URL's own path).
    rates: offered requests/s, one open-loop point each (clients then
    defaults to RATE_CLIENTS connections); None: closed loop.
    server_cpus / client_cpus: pin the server and the clients to these cores.
    """
    defaults = profile()
    clients = clients or (RATE_CLIENTS if rates else defaults["clients"])
    # A URL given by hand already names what to fetch; our models get the profile's workloads.
    workloads = workloads or ([None] if url is not None else defaults["workloads"])
    duration = defaults["duration"] if duration is None else duration
    warmup = defaults["warmup"] if warmup is None else warmup
    timeout = defaults["timeout"] if timeout is None else timeout
    if url is not None and models:
        raise ValueError("give either models (launched here) or url (already running), not both")
    if rates is not None and not all(isinstance(r, (int, float)) and r > 0 for r in rates):
        raise ValueError(f"rates: expected requests per second above 0, got {rates!r}")
    if models or url is None:  # our own servers: as many clients as this machine can hold
        clients, note = fit_client_counts(clients)
        if note:
            print(note)  # one line, where the sweep was asked for: a notebook cell or a terminal
    rows = []

    points = [(count, rate) for count in clients for rate in (rates or [None])]

    def measure(model, target, server_pid):
        first = True
        for workload in workloads:
            for count, rate in points:
                if stop_event is not None and stop_event.is_set():
                    return False
                if not first:
                    settle(target, workload, timeout)
                first = False
                result = run(target, count, duration=duration, warmup=warmup, keep_alive=keep_alive,
                             workload=workload, timeout=timeout, cpus=client_cpus, pid=server_pid,
                             server_cpus=server_cpus, stop_event=stop_event, rate=rate)
                if result.stopped:
                    return False  # a cut-short point is not a measurement
                row = result.row(model)
                rows.append(row)
                if on_point is not None:
                    on_point(row)
        return True

    if url is not None:
        measure(url, url, pid)
        return rows
    for model in models or [default_model()]:
        if stop_event is not None and stop_event.is_set():
            break
        with launch(model, root=root, workers=workers, cpus=server_cpus) as server:
            if not measure(model, server.url, server.pid):
                break
    return rows


def settle(url, workload=None, timeout=10.0):
    """Wait until the server at `url` answers one request for `workload` on a
    new connection (at most `timeout` s): it has then answered, or given up
    on, the requests the clients of the last point left behind. Returns the
    seconds it took, or None if it did not answer in time."""
    parts = urlsplit(url)
    path = parse_workload(workload)[0][0] if workload else (parts.path or "/")
    request = encode_request(path, parts.netloc, keep_alive=False)
    started = time.monotonic()
    try:
        with socket.create_connection((parts.hostname, parts.port or 80), timeout=timeout) as sock:
            sock.sendall(request)
            while sock.recv(65536):  # until the server closes: the whole answer is in
                if time.monotonic() - started > timeout:
                    return None
    except OSError:  # refused, reset, timed out: the next point will show it
        return None
    return time.monotonic() - started


def default_model():
    from ..servers import DEFAULT_MODEL

    return DEFAULT_MODEL

