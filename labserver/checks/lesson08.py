"""Checks for lesson 08 (showdown): functions that explain the sweep's rows, tried on made-up rows too.

Both exercises are functions of the rows, so that the check can call them on
rows it made up as well as on the student's own sweep: an answer fitted to
one run (or typed in by hand) fails on rows where the truth is different.

* cpu_us_per_request(rows): the server CPU time each answered request cost,
  per row. Made-up rows have durations other than 1 s, CPU figures that were
  not measured (None) and points with no answered request, where a careless
  formula divides by zero or by None.
* stops_scaling(rows): for each model, the client count from which adding
  clients no longer raises its throughput by more than GROWTH. Made-up rows
  are shuffled, have flat lines with noise (where the highest rate is not the
  answer), and a line that stalls before it climbs again (where comparing
  each point with the next only is wrong).
"""

import random

from . import StudentCall, check, expect, passed, plain

DEADLINE = 5.0  # seconds for one call: a few microseconds of work
GROWTH = 1.25  # "stops scaling": no later point is more than 25 % above this one


def _call(function, rows, what):
    return StudentCall(function, ([dict(row) for row in rows],)).run(DEADLINE, doing=what)


# cpu_us_per_request


def cost_us(row):
    """Server CPU microseconds per answered request in one row, or None if it cannot be known."""
    if row.get("cpu_pct") is None or not row.get("requests"):
        return None
    return row["cpu_pct"] / 100 * row["duration_s"] / row["requests"] * 1e6


def made_up_costs(seed):
    """Rows of a sweep that never happened: durations other than 1 s, a CPU
    not measured, a point where nothing was answered."""
    rng = random.Random(seed)
    rows = []
    for model in rng.sample(["alpha", "bravo", "charlie", "delta", "echo"], 3):
        us = rng.uniform(20, 200)  # this model's true cost per request
        for clients in (1, 4, 16):
            duration = rng.choice([0.5, 2.0, 3.0])
            cpu = rng.uniform(30, 190)
            requests = round(cpu / 100 * duration / (us * 1e-6))
            rows.append({"model": model, "clients": clients, "duration_s": duration, "requests": requests,
                         "rps": requests / duration, "cpu_pct": cpu})
    rows[rng.randrange(len(rows))]["cpu_pct"] = None  # psutil could not see the server
    starved = rows[rng.randrange(len(rows))]
    starved.update(requests=0, rps=0.0)  # nothing answered in the run
    rng.shuffle(rows)
    return rows


@check
def cpu_per_request(cpu_us_per_request, rows):
    """cpu_us_per_request(rows) -> {(model, clients): microseconds of server CPU per answered request}."""
    expect(rows, "rows is empty: run the sweep cell first")
    name = getattr(cpu_us_per_request, "__name__", "cpu_us_per_request")
    trials = [("the sweep's rows", rows)] + [(f"made-up rows ({seed})", made_up_costs(seed)) for seed in (1, 2)]
    for what, trial in trials:
        expected = {(row["model"], row["clients"]): cost_us(row) for row in trial if cost_us(row) is not None}
        got = _call(cpu_us_per_request, trial, what)
        expect(plain(got, dict), f"{name} should return a dict {{(model, clients): microseconds}}, "
                                 f"it returned {got!r:.60}")
        skipped = sorted(set((r["model"], r["clients"]) for r in trial) - set(expected))
        expect(set(got) == set(expected),
               f"on {what}: expected one value for each of {sorted(expected)[:4]}... ({len(expected)} keys, "
               f"(model, clients) tuples), got {sorted(got, key=str)[:4]}... ({len(got)} keys)"
               + (f"; leave out {skipped}: no CPU measured or no request answered" if skipped else ""))
        for key, value in expected.items():
            mine = got[key]
            expect(plain(mine, int, float), f"on {what}: {key} -> {mine!r:.40}: expected a number of microseconds")
            if abs(mine - value) <= 0.01 * value:
                continue
            hint = ""
            for factor, why in [(100, "cpu_pct is in percent of one core: divide it by 100"),
                                (1 / 100, "cpu_pct is in percent of one core: divide it by 100, not multiply"),
                                (1e-3, "the answer is in microseconds (1e-6 s), not milliseconds"),
                                (1e-6, "the answer is in microseconds: multiply the seconds by 1e6")]:
                if abs(mine - value * factor) <= 0.01 * value * factor:
                    hint = f": {why}"
            row = next(r for r in trial if (r["model"], r["clients"]) == key)
            expect(False, f"on {what}: {key[0]} at {key[1]} clients used {row['cpu_pct']:.1f} % of a core for "
                          f"{row['duration_s']:g} s and answered {row['requests']} requests: {value:.1f} us of CPU "
                          f"per request; {name} says {mine:.4g}{hint}")
    passed(f"{name} computes the CPU time per request, on the sweep and on made-up rows")


# stops_scaling


def knee(points):
    """The smallest client count from which no later point's rate is more than GROWTH times its own."""
    points = sorted(points)
    for i, (clients, rps) in enumerate(points):
        if all(later <= GROWTH * rps for _, later in points[i + 1:]):
            return clients


def knees(rows):
    models = {}
    for row in rows:
        models.setdefault(row["model"], []).append((row["clients"], row["rps"]))
    return {model: knee(points) for model, points in models.items()}


def made_up_lines(seed):
    """Rows of a /block sweep that never happened, one kind of line per model: flat with noise, capped at
    some client count, still rising, stalled then rising again."""
    rng = random.Random(seed)
    counts = [1, 2, 4, 8, 16, 32]
    names = rng.sample(["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"], 4)
    cap = rng.choice([2, 4, 8])
    lines = {
        names[0]: [20 * rng.uniform(0.9, 1.12) for _ in counts],  # flat: the highest rate is noise
        names[1]: [20 * min(c, cap) * rng.uniform(0.95, 1.05) for c in counts],  # overlaps `cap` at once
        names[2]: [20 * c for c in counts],  # never stops within the sweep
        names[3]: [20, 40, 44, 46, 150, 160],  # a stall, then a climb: compare with every later point
    }
    rows = [{"model": model, "clients": c, "rps": round(rate, 1)} for model, rates in lines.items()
            for c, rate in zip(counts, rates)]
    rng.shuffle(rows)
    return rows


@check
def stops_scaling(stops_scaling, rows):
    """stops_scaling(rows) -> {model: the client count from which its throughput stops growing}."""
    expect(rows, "rows is empty: run the /block sweep cell first")
    name = getattr(stops_scaling, "__name__", "stops_scaling")
    trials = [("the sweep's rows", rows)] + [(f"made-up rows ({seed})", made_up_lines(seed)) for seed in (1, 2)]
    for what, trial in trials:
        expected = knees(trial)
        got = _call(stops_scaling, trial, what)
        expect(plain(got, dict), f"{name} should return a dict {{model: clients}}, it returned {got!r:.60}")
        expect(set(got) == set(expected), f"on {what}: expected one client count for each of {sorted(expected)}, "
                                          f"got {sorted(got, key=str)}")
        for model, clients in expected.items():
            mine = got[model]
            if mine == clients:
                continue
            line = sorted((r["clients"], r["rps"]) for r in trial if r["model"] == model)
            rates = ", ".join(f"{c}: {r:g}" for c, r in line)
            rate = dict(line).get(mine)
            if rate is None:
                hint = f"{mine!r:.20} is not one of its client counts"
            else:
                higher = [(c, r) for c, r in line if c > mine and r > GROWTH * rate]
                fastest = rate == max(r for _, r in line)
                hint = (f"at {higher[0][0]} clients it made {higher[0][1]:g} req/s, more than {GROWTH:g} x "
                        f"{rate:g}: compare with every larger count, not only the next one" if higher else
                        f"no larger count is more than {GROWTH:g} x above {dict(line)[clients]:g} at {clients} "
                        f"clients already: the smallest such count is the answer, "
                        + ("not the fastest point" if fastest else "and the rows may come in any order: sort "
                                                                   "each model's points by client count"))
            expect(False, f"on {what}: {model} (clients: req/s = {rates}) stops scaling at {clients} clients; "
                          f"{name} says {mine!r:.20}: {hint}")
    passed(f"{name} finds where each model stops scaling, on the sweep and on made-up rows")
