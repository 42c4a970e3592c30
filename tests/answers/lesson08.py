"""find_winner and requests_per_cpu (lesson 08)."""

from . import right, wrong


@right("08", "winner")
def sorted_by_rate(rows):
    most = max(row["clients"] for row in rows)
    return sorted((row for row in rows if row["clients"] == most), key=lambda row: row["rps"])[-1]["model"]


@wrong("08", "winner", "the highest rate is .*; typed_in returned 'busywait'")
def typed_in(rows):
    return "busywait"


@wrong("08", "winner", "at .* clients \\(the largest count\\)")
def ignores_the_client_count(rows):
    return max(rows, key=lambda row: row["rps"])["model"]


class Agreeable(str):
    def __eq__(self, other):
        return True

    __hash__ = str.__hash__


@wrong("08", "winner", "should return a model's name \\(a str\\)")
def says_yes_to_everything(rows):
    return Agreeable("whatever")


@right("08", "efficiency")
def with_a_loop(rows):
    largest = max(row["clients"] for row in rows)
    result = {}
    for row in rows:
        if row["clients"] == largest and row["cpu_pct"] not in (None, 0):
            result[row["model"]] = row["rps"] / row["cpu_pct"]
    return result


@wrong("08", "efficiency", "expected one value for each of")
def keeps_unmeasured_models(rows):
    largest = max(row["clients"] for row in rows)
    return {row["model"]: row["rps"] / (row["cpu_pct"] or 1) for row in rows if row["clients"] == largest}
