"""Result tables: one row per measured point, saved as CSV and JSON, loaded back.

A row is a plain dict with the same columns every time (COLUMNS), "tidy":
one point per row, one quantity per column, so a plot, a pandas DataFrame or
a spreadsheet can take it as it is. Missing values are None (an empty cell in
CSV), never 0: a server CPU we could not measure is not an idle server.

CSV has no types, so load_results() converts each column back with COLUMNS;
JSON keeps them. Both round-trip exactly (floats are written with repr).
"""

import csv
import json
from pathlib import Path

# column -> type; every row has every column, a value of that type or None.
COLUMNS = {
    "model": str, "workload": str, "clients": int, "keep_alive": bool, "duration_s": float,
    "requests": int, "rps": float, "mbps": float, "mbps_wire": float,
    "p50_ms": float, "p90_ms": float, "p99_ms": float, "max_ms": float,
    "concurrent_max": int, "errors": int, "errors_refused": int, "errors_reset": int,
    "errors_timeout": int, "errors_bad": int, "errors_files": int, "fairness": float, "slowest_client_rps": float,
    "max_gap_ms": float, "cpu_pct": float, "rss_mb": float, "client_cpu_pct": float,
    "python": str, "gil_enabled": bool, "cpu_count": int, "pinning": str, "date": str,
    # Beyond the list: how concurrency was counted, and how the load was made.
    "concurrent_mean": float, "concurrent_source": str, "client_processes": int, "url": str,
    # Who was left waiting (the latency columns include them), progress in bytes,
    # the open loop's offered and sent rates, and whether the generator was the limit.
    "unanswered": int, "slowest_client_mbps": float, "rate": float, "sent_rps": float,
    "generator_limited": bool,
}


def as_row(record):
    """A Result or a dict -> a dict (Results become table rows)."""
    return record.row() if hasattr(record, "row") else dict(record)


def save_results(records, path):
    """Write rows to `path`: .csv or .json (by its suffix). Returns the Path."""
    path = Path(path)
    rows = [as_row(r) for r in records]
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".json":
        path.write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    elif path.suffix == ".csv":
        names = list(COLUMNS) + sorted({key for row in rows for key in row} - set(COLUMNS))
        with open(path, "w", newline="", encoding="utf-8") as file:
            writer = csv.DictWriter(file, fieldnames=names)
            writer.writeheader()
            for row in rows:
                writer.writerow({key: "" if value is None else value for key, value in row.items()})
    else:
        raise ValueError(f"cannot save results as {path.suffix!r}: use .csv or .json")
    return path


def load_results(path):
    """Rows written by save_results(), with their types back."""
    path = Path(path)
    if path.suffix == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
        return data["records"] if isinstance(data, dict) else data
    if path.suffix == ".csv":
        with open(path, newline="", encoding="utf-8") as file:
            return [{key: convert(key, value) for key, value in row.items()} for row in csv.DictReader(file)]
    raise ValueError(f"cannot load results from {path.suffix!r}: use .csv or .json")


def convert(column, text):
    """A CSV cell back to its column's type ('' is None)."""
    if text == "" or text is None:
        return None
    kind = COLUMNS.get(column)
    if kind is bool:
        return text.lower() in ("true", "1", "yes")
    if kind in (int, float, str):
        return kind(text)
    for guess in (int, float):  # a column we do not know: the narrowest type that reads it
        try:
            return guess(text)
        except ValueError:
            pass
    return text


# A text table for the terminal: column -> (heading, format); text columns fit their values.
FORMATS = {
    "model": ("model", "<"), "workload": ("workload", "<"), "clients": ("clients", ">7"),
    "rate": ("rate/s", ">8,.0f"), "sent_rps": ("sent/s", ">8,.0f"),
    "rps": ("req/s", ">9,.0f"), "mbps": ("Mbps", ">8,.1f"), "p50_ms": ("p50 ms", ">8.2f"),
    "p99_ms": ("p99 ms", ">8.1f"), "unanswered": ("unanswered", ">10"), "max_gap_ms": ("gap ms", ">7.0f"),
    "fairness": ("fair", ">5.2f"), "slowest_client_mbps": ("slowest Mbps", ">12,.2f"),
    "concurrent_max": ("conns", ">5"), "errors": ("errors", ">6"), "cpu_pct": ("srv%", ">5.0f"),
    "rss_mb": ("MB", ">5.0f"), "client_cpu_pct": ("cli%", ">5.0f"),
}
TABLE = ["model", "workload", "clients", "rate", "sent_rps", "rps", "mbps", "p50_ms", "p99_ms", "unanswered",
         "max_gap_ms", "fairness", "concurrent_max", "errors", "cpu_pct", "rss_mb", "client_cpu_pct"]
OPEN_LOOP_ONLY = {"rate", "sent_rps"}  # left out of a table of closed-loop rows
LIMITED = "!"  # beside the client CPU (or the first column) of a row the generator may have limited


def format_table(rows, columns=None):
    """Rows -> an aligned text table, with a line saying what its marks mean:
    '-' where a value is unknown, '!' where the load generator may have been
    the limit (generator_limited). columns: which ones (names of FORMATS),
    default TABLE."""
    rows = [as_row(row) for row in rows]
    if columns is None:
        open_loop = any(row.get("rate") is not None for row in rows)
        columns = [c for c in TABLE if open_loop or c not in OPEN_LOOP_ONLY]
    unknown = [c for c in columns if c not in FORMATS]
    if unknown:
        raise ValueError(f"no table format for {', '.join(unknown)}; choose from: {', '.join(FORMATS)}")
    marked = "client_cpu_pct" if "client_cpu_pct" in columns else columns[0]
    cells = [[cell(row, column, marked) for column in columns] for row in rows]
    headings = [FORMATS[column][0] for column in columns]
    widths = [max([len(heading)] + [len(line[i]) for line in cells]) for i, heading in enumerate(headings)]
    align = ["<" if FORMATS[column][1] == "<" else ">" for column in columns]
    lines = ["  ".join(f"{h:{a}{w}}" for h, a, w in zip(headings, align, widths))]
    lines += ["  ".join(f"{c:{a}{w}}" for c, a, w in zip(line, align, widths)) for line in cells]
    notes = []
    if any("-" == c.strip() for line in cells for c in line):
        notes.append("- no data")
    if any(row.get("generator_limited") for row in rows):
        notes.append(f"{LIMITED} the load generator was busy or late: it, not the server, may have set these figures")
    return "\n".join(lines + (["(" + "; ".join(notes) + ")"] if notes else []))


def cell(row, column, marked):
    value = row.get(column)
    spec = FORMATS[column][1]
    text = "-" if value is None else str(value) if spec == "<" else f"{value:{spec[1:]}}"
    if column == marked and row.get("generator_limited"):
        text += LIMITED
    return text
