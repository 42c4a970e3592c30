"""Checks for lesson 08 (showdown): answers recomputed from the same rows."""

from . import expect, passed


def _at_most_clients(rows):
    expect(rows, "rows is empty: run the sweep cell first")
    most = max(row["clients"] for row in rows)
    return most, [row for row in rows if row["clients"] == most]


def winner(rows, winner):
    most, last = _at_most_clients(rows)
    best = max(last, key=lambda row: row["rps"])
    expect(isinstance(winner, str), f"winner should be a model's name (a str), got {winner!r}")
    expect(winner == best["model"],
           f"at {most} clients the highest req/s is {best['model']}'s ({best['rps']:.0f}); you chose {winner!r}")
    passed(f"{winner} served the most requests per second at {most} clients")


def efficiency(rows, efficiency):
    most, last = _at_most_clients(rows)
    expected = {row["model"]: row["rps"] / row["cpu_pct"] for row in last if row["cpu_pct"]}
    expect(isinstance(efficiency, dict), f"efficiency should be a dict {{model: value}}, got {type(efficiency).__name__}")
    expect(set(efficiency) == set(expected),
           f"expected one value for each of {sorted(expected)} (those with a measured CPU), got {sorted(efficiency)}")
    for name, value in expected.items():
        got = efficiency[name]
        expect(isinstance(got, (int, float)) and abs(got - value) <= 0.01 * value + 1e-9,
               f"{name}: {last[0]['clients']} clients -> rps / cpu_pct = {value:.2f}, you have {got!r}")
    passed(f"requests per % of CPU computed for {len(expected)} models at {most} clients")
