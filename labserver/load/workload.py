"""What the load generator asks for: a path, or a weighted mix of paths.

    parse_workload("small")                  -> [("/index.html", 1)]
    parse_workload("/bytes/1024")            -> [("/bytes/1024", 1)]
    parse_workload("small:8,large:1,cpu:1")  -> three paths, weights 8:1:1

Named workloads exist on every labserver model (the files are in the bundled
demo site, the other routes are in labserver.app.workloads); a path works on
any server.

Every request is encoded to bytes once, before the clock starts. A client then
only hands the same bytes object to send(): building a request per send
(f-strings, .encode(), a dict of headers) would cost microseconds that a fast
server does not, and the generator would end up measuring itself.

A mix is a fixed, shuffled sequence of request indices that every client walks
through from its own offset: the weights hold exactly over a run and no client
calls random() in the measured loop.
"""

import random

# name -> path, on the bundled demo site (labserver.DEMO_SITE) and the workload routes.
WORKLOADS = {
    "small": "/index.html",  # a ~2 KB page: request rate, per-request overhead
    "large": "/images/banner.png",  # a ~1.6 MB image: bulk throughput, slow readers
    "bytes": "/bytes/65536",  # 64 KiB generated in memory: throughput without the disk
    "cpu": "/cpu?ms=5",  # 5 ms of pure-Python work holding the GIL: CPU-bound
    "sleep": "/sleep?ms=50",  # 50 ms of asynchronous I/O: each model waits its own way (a timer)
    "block": "/block?ms=50",  # a 50 ms blocking call, like a synchronous database driver
}
# The default mix: mostly small pages, a few of everything else.
MIX = "small:6,large:1,bytes:1,cpu:1,sleep:1"
MIX_LENGTH = 1000  # length of the shuffled sequence a mix cycles through


class WorkloadError(ValueError):
    """A workload string that names nothing and is not a path."""


def parse_workload(spec):
    """A workload string (name, path, or 'a:3,b:1' mix) -> [(path, weight)]."""
    if spec is None or not str(spec).strip():
        raise WorkloadError("empty workload: give a name (" + ", ".join([*WORKLOADS, "mix"]) + ") or a path")
    spec = str(spec).strip()
    if spec == "mix":
        spec = MIX
    return [parse_item(item.strip()) for item in spec.split(",")]  # (so no commas in paths)


def parse_item(item):
    name, colon, weight = item.rpartition(":")
    if colon and weight.isdigit() and name:  # "small:8" or "/cpu?ms=5:2"
        item, weight = name, int(weight)
    else:
        weight = 1
    if weight < 1:
        raise WorkloadError(f"weight in {item!r} must be at least 1")
    if item in WORKLOADS:
        return WORKLOADS[item], weight
    if item.startswith("/"):
        return item, weight
    raise WorkloadError(f"unknown workload {item!r}: use a path starting with / "
                        f"or one of {', '.join([*WORKLOADS, 'mix'])}")


def encode_request(path, host, keep_alive=True):
    """The bytes of one GET request, ready for send(): the same bytes wrk
    sends (no User-Agent), so that calibrating against wrk asks the server
    for exactly the same work."""
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}"]
    if not keep_alive:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def request_sequence(weights, length=MIX_LENGTH, seed=0):
    """A shuffled list of indices into `weights` in their proportions
    (one index when there is one path: no sequence to walk)."""
    if len(weights) == 1:
        return [0]
    total = sum(weights)
    sequence = []
    for index, weight in enumerate(weights):
        sequence += [index] * max(1, round(length * weight / total))
    random.Random(seed).shuffle(sequence)  # fixed seed: every run asks for the same things
    return sequence
