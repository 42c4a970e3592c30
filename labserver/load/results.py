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
    "errors_timeout": int, "errors_bad": int, "fairness": float, "slowest_client_rps": float,
    "max_gap_ms": float, "cpu_pct": float, "rss_mb": float, "client_cpu_pct": float,
    "python": str, "gil_enabled": bool, "cpu_count": int, "pinning": str, "date": str,
    # Beyond the list: how concurrency was counted, and how the load was made.
    "concurrent_mean": float, "concurrent_source": str, "client_processes": int, "url": str,
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
        path.write_text(json.dumps(rows, indent=1) + "\n")
    elif path.suffix == ".csv":
        names = list(COLUMNS) + sorted({key for row in rows for key in row} - set(COLUMNS))
        with open(path, "w", newline="") as file:
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
        data = json.loads(path.read_text())
        return data["records"] if isinstance(data, dict) else data
    if path.suffix == ".csv":
        with open(path, newline="") as file:
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


# A text table for the terminal: (heading, column, format); text columns fit their values.
TABLE = [
    ("model", "model", "<"), ("workload", "workload", "<"), ("clients", "clients", ">7"),
    ("req/s", "rps", ">9,.0f"), ("Mbps", "mbps", ">8,.1f"), ("p50 ms", "p50_ms", ">8.2f"),
    ("p99 ms", "p99_ms", ">8.2f"), ("gap ms", "max_gap_ms", ">7.0f"), ("fair", "fairness", ">5.2f"),
    ("conns", "concurrent_max", ">5"), ("errors", "errors", ">6"), ("srv%", "cpu_pct", ">5.0f"),
    ("MB", "rss_mb", ">5.0f"), ("cli%", "client_cpu_pct", ">5.0f"),
]


def format_table(rows):
    """Rows -> an aligned text table ('-' where a value is unknown)."""
    rows = [as_row(row) for row in rows]
    specs = []
    for heading, key, spec in TABLE:
        if spec == "<":  # text: as wide as the longest value
            spec = f"<{max([len(heading)] + [len(str(row.get(key))) for row in rows])}"
        specs.append((heading, key, spec, spec[0] + spec[1:].split(",")[0].split(".")[0]))
    lines = ["  ".join(f"{heading:{width}}" for heading, _, _, width in specs)]
    for row in rows:
        lines.append("  ".join(f"{'-':{width}}" if row.get(key) is None else f"{row[key]:{spec}}"
                               for _, key, spec, width in specs))
    return "\n".join(lines)
