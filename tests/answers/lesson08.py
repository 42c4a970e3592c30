"""cpu_us_per_request and stops_scaling (lesson 08)."""

from . import right, wrong


@right("08", "cpu_per_request")
def from_the_rate(rows):
    # rps = requests / duration, so CPU-seconds per second / requests per second = CPU-seconds per request.
    return {(row["model"], row["clients"]): row["cpu_pct"] / 100 / row["rps"] * 1e6
            for row in rows if row["cpu_pct"] is not None and row["rps"]}


@right("08", "cpu_per_request")
def with_a_loop(rows):
    costs = {}
    for row in rows:
        if row["cpu_pct"] is None or row["requests"] == 0:
            continue
        cpu_seconds = row["cpu_pct"] / 100 * row["duration_s"]
        costs[row["model"], row["clients"]] = cpu_seconds / row["requests"] * 1_000_000
    return costs


@wrong("08", "cpu_per_request", "cpu_pct is in percent of one core: divide it by 100")
def forgets_the_percent(rows):
    return {(row["model"], row["clients"]): row["cpu_pct"] * row["duration_s"] / row["requests"] * 1e6
            for row in rows if row["cpu_pct"] is not None and row["requests"]}


@wrong("08", "cpu_per_request", "microseconds \\(1e-6 s\\), not milliseconds")
def in_milliseconds(rows):
    return {(row["model"], row["clients"]): row["cpu_pct"] / 100 / row["rps"] * 1e3
            for row in rows if row["cpu_pct"] is not None and row["rps"]}


@wrong("08", "cpu_per_request", "your code raised TypeError")
def trusts_every_cpu_figure(rows):
    return {(row["model"], row["clients"]): row["cpu_pct"] / 100 / row["rps"] * 1e6 for row in rows if row["rps"]}


@wrong("08", "cpu_per_request", "us of CPU per request")
def per_client(rows):
    return {(row["model"], row["clients"]): row["cpu_pct"] / 100 / row["rps"] * 1e6 / row["clients"]
            for row in rows if row["cpu_pct"] is not None and row["rps"]}


@right("08", "stops_scaling")
def from_the_top(rows):
    lines = {}
    for row in rows:
        lines.setdefault(row["model"], {})[row["clients"]] = row["rps"]
    answer = {}
    for model, line in lines.items():
        counts = sorted(line)
        answer[model] = counts[-1]
        best_later = 0.0
        for clients in reversed(counts):  # walking down: the best rate seen at larger counts
            if best_later <= 1.25 * line[clients]:
                answer[model] = clients
            best_later = max(best_later, line[clients])
    return answer


@wrong("08", "stops_scaling", "compare with every larger count, not only the next one")
def next_point_only(rows):
    lines = {}
    for row in rows:
        lines.setdefault(row["model"], []).append((row["clients"], row["rps"]))
    answer = {}
    for model, line in lines.items():
        line.sort()
        answer[model] = line[-1][0]
        for (clients, rps), (_, after) in zip(line, line[1:]):
            if after <= 1.25 * rps:
                answer[model] = clients
                break
    return answer


@wrong("08", "stops_scaling", "the smallest such count is the answer, not the fastest point")
def fastest_point(rows):
    best = {}
    for row in rows:
        if row["model"] not in best or row["rps"] > best[row["model"]]["rps"]:
            best[row["model"]] = row
    return {model: row["clients"] for model, row in best.items()}


@wrong("08", "stops_scaling", "rows may come in any order")
def rows_in_the_order_given(rows):
    answer, previous = {}, {}
    for row in rows:  # the rows of a sweep come in order... but not made-up ones
        model = row["model"]
        if model not in answer and model in previous and row["rps"] <= 1.25 * previous[model]["rps"]:
            answer[model] = previous[model]["clients"]
        previous[model] = row
    for model, row in previous.items():
        answer.setdefault(model, row["clients"])
    return answer
