"""The numbers of a run, computed from what the clients counted.

Latency: a histogram with buckets 1 % wide (on a log scale) instead of a list
of every latency. A run at 50k req/s for 10 s has half a million latencies;
their histogram is a few hundred (bucket, count) pairs, which worker processes
can send back and merge cheaply, and 1 % is finer than run-to-run noise.

The latency figures count every request that waited, answered or not (see
engine.py on coordinated omission): a request still unanswered when the clock
stopped enters them with the time it had waited so far. Without that, a
server that serves one client and starves seven is measured on the one.

Fairness: Jain's index over the bytes each client received,
    J = (sum x)^2 / (n * sum x^2)
is 1.0 when every client got the same and 1/n when one client got everything.
Beside it, the slowest client's share (its Mbps, and its responses per
second) and the longest time any client waited without receiving a single
byte: "every download makes forward progress" turned into numbers that a
stalled client cannot hide in an average. Bytes count as they arrive, so a
big download still under way when the clock stops counts for what it got.
"""

import math

RESOLUTION = 1.01  # each latency bucket is 1 % wider than the previous one
_PER_LOG = 1 / math.log(RESOLUTION)
ERROR_KINDS = ("refused", "reset", "timeout", "bad", "files")  # files: the generator had no descriptor left


def latency_bucket(seconds):
    """The histogram bucket of a latency (buckets start at 1 microsecond)."""
    micros = seconds * 1e6
    return int(math.log(micros) * _PER_LOG) if micros > 1 else 0


def histogram(latencies):
    """Latencies (s) -> {bucket: count}."""
    counts = {}
    log, per_log = math.log, _PER_LOG
    for seconds in latencies:
        bucket = int(log(seconds * 1e6) * per_log) if seconds > 1e-6 else 0
        counts[bucket] = counts.get(bucket, 0) + 1
    return counts


def bucket_value(bucket):
    """The middle of a bucket, in seconds."""
    return math.exp((bucket + 0.5) / _PER_LOG) / 1e6


def percentile(histogram, fraction, maximum=None):
    """The latency (s) below which `fraction` of the requests fall, or None if none.
    Capped at the exact `maximum`, so p99 is never above max."""
    total = sum(histogram.values())
    if total == 0:
        return None
    rank = max(1, math.ceil(fraction * total))
    seen = 0
    for bucket in sorted(histogram):
        seen += histogram[bucket]
        if seen >= rank:
            value = bucket_value(bucket)
            return min(value, maximum) if maximum is not None else value
    return maximum


def jain_index(values):
    """Jain's fairness index of a list of amounts; None when nobody got anything."""
    values = list(values)
    squares = sum(v * v for v in values)
    if not values or squares == 0:
        return None
    return sum(values) ** 2 / (len(values) * squares)


def merge_histograms(histograms):
    merged = {}
    for histogram in histograms:
        for bucket, count in histogram.items():
            merged[bucket] = merged.get(bucket, 0) + count
    return merged


def combine(parts):
    """The reports of several client processes (plain dicts) -> one report.
    Their windows overlap almost exactly (they start together), so the run
    lasted as long as the mean window; counts add up."""
    if len(parts) == 1:
        return parts[0]
    combined = {key: sum(part[key] for part in parts)
                for key in ("requests", "unanswered", "sent", "late", "stalls", "polls", "stalled", "bytes",
                            "wire_bytes", "sent_bytes", "cpu_seconds", "latency_sum", "latency_count", "open_max", "open_mean")}
    combined["elapsed"] = sum(part["elapsed"] for part in parts) / len(parts)
    combined["latency"] = merge_histograms(part["latency"] for part in parts)
    combined["latency_max"] = max(part["latency_max"] for part in parts)
    combined["max_gap"] = max(part["max_gap"] for part in parts)
    combined["errors"] = {kind: sum(part["errors"][kind] for part in parts) for kind in ERROR_KINDS}
    combined["per_client_requests"] = [n for part in parts for n in part["per_client_requests"]]
    combined["per_client_bytes"] = [n for part in parts for n in part["per_client_bytes"]]
    combined["stopped"] = any(part["stopped"] for part in parts)
    return combined


def summarise(report):
    """A combined report -> the headline numbers (rates, percentiles in ms, fairness)."""
    elapsed = report["elapsed"]
    rate = (lambda n: n / elapsed) if elapsed > 0 else (lambda n: 0.0)
    count = report["latency_count"]  # answered and unanswered
    histogram, maximum = report["latency"], report["latency_max"] if count else None

    def ms(fraction):
        value = percentile(histogram, fraction, maximum)
        return None if value is None else value * 1000

    per_client = report["per_client_requests"]
    return {
        "rps": rate(report["requests"]),
        "sent_rps": rate(report["sent"]),
        "mbps": rate(report["bytes"] * 8) / 1e6,
        "mbps_wire": rate(report["wire_bytes"] * 8) / 1e6,
        "p50_ms": ms(0.50),
        "p90_ms": ms(0.90),
        "p99_ms": ms(0.99),
        "max_ms": None if maximum is None else maximum * 1000,
        "mean_ms": report["latency_sum"] / count * 1000 if count else None,
        "fairness": jain_index(report["per_client_bytes"]),
        "slowest_client_rps": rate(min(per_client)) if per_client else 0.0,
        "slowest_client_mbps": rate(min(report["per_client_bytes"]) * 8) / 1e6 if per_client else 0.0,
        "max_gap_ms": report["max_gap"] * 1000,
    }
