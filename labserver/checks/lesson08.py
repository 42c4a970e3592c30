"""Checks for lesson 08 (showdown): the student's functions, on the sweep's rows and on made-up ones.

The exercises are functions of the rows, so that the check can call them on
rows it made up: a winner decided by a tie (several models at exactly the
same rate) accepts any of the tied models, and an answer typed in by hand
fails on rows where another model wins.
"""

import random

from . import StudentCall, check, expect, passed, plain

DEADLINE = 5.0  # seconds for one call: a few microseconds of work


def _largest(rows):
    most = max(row["clients"] for row in rows)
    return most, [row for row in rows if row["clients"] == most]


def _made_up(seed):
    """Rows of a sweep that never happened: another winner each time, the best rate overall at fewer
    clients (by another model), and with an even seed a tie at the top."""
    rng = random.Random(seed)
    models = rng.sample(["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"], 4)
    rows = [{"model": model, "clients": clients, "rps": float(rng.randrange(100, 900)),
             "cpu_pct": rng.choice([None, 0.0, 12.5, 50.0, 99.0])}
            for clients in (1, 4, 16) for model in models]
    winner, fast_early = rng.sample(models, 2)
    top = max(row["rps"] for row in rows) + 100
    for row in rows:
        if row["clients"] == 16 and (row["model"] == winner or (seed % 2 == 0 and row["model"] == fast_early)):
            row["rps"] = top
        if row["clients"] == 4 and row["model"] == fast_early:
            row["rps"] = top * 3  # the highest rate of all, but not at the largest client count
    rng.shuffle(rows)
    return rows


def _call(function, rows, what):
    return StudentCall(function, ([dict(row) for row in rows],)).run(DEADLINE, doing=what)


@check
def winner(find_winner, rows):
    """find_winner(rows): the model with the most requests per second at the largest client count."""
    expect(rows, "rows is empty: run the sweep cell first")
    name = getattr(find_winner, "__name__", "find_winner")
    for what, trial in [("the sweep's rows", rows)] + [(f"made-up rows ({seed})", _made_up(seed)) for seed in (1, 2, 3)]:
        most, last = _largest(trial)
        best = max(row["rps"] for row in last)
        tied = sorted(row["model"] for row in last if row["rps"] == best)
        got = _call(find_winner, trial, what)
        expect(plain(got, str), f"{name} should return a model's name (a str), it returned {got!r:.60}")
        expect(got in tied, f"on {what}, at {most} clients (the largest count) the highest rate is {best:.0f} req/s, "
                            f"by {' and '.join(tied)}; {name} returned {got!r}"
                            + ("" if any(r["model"] == got for r in trial) else ": a model not even in these rows"))
    passed(f"{name} finds the fastest model at the largest client count, on the sweep and on made-up rows")


@check
def efficiency(requests_per_cpu, rows):
    """requests_per_cpu(rows): {model: rps / cpu_pct} at the largest client count, for models whose CPU was measured."""
    expect(rows, "rows is empty: run the sweep cell first")
    name = getattr(requests_per_cpu, "__name__", "requests_per_cpu")
    for what, trial in [("the sweep's rows", rows)] + [(f"made-up rows ({seed})", _made_up(seed)) for seed in (4, 5)]:
        most, last = _largest(trial)
        expected = {row["model"]: row["rps"] / row["cpu_pct"] for row in last if row["cpu_pct"]}
        got = _call(requests_per_cpu, trial, what)
        expect(plain(got, dict), f"{name} should return a dict {{model: value}}, it returned {got!r:.60}")
        expect(set(got) == set(expected),
               f"on {what}: expected one value for each of {sorted(expected)} (those with a measured CPU at "
               f"{most} clients), got {sorted(got, key=str)}")
        for model, value in expected.items():
            mine = got[model]
            expect(plain(mine, int, float) and abs(mine - value) <= 0.01 * value + 1e-9,
                   f"on {what}: {model} at {most} clients -> rps / cpu_pct = {value:.2f}, {name} says {mine!r:.40}")
    passed(f"{name} computes requests per % of CPU at the largest client count, on the sweep and on made-up rows")
