"""`labserver grade`: the grader from a terminal or a workflow.

    labserver grade --url http://127.0.0.1:8000/
    labserver grade --cmd "python project/server.py --port {port} --root {root}" --source project/server.py
    labserver grade ... --json grade.json          # or --json - : the grade as data on stdout

The rows print as they finish, then a score per group and the total. A
program must not read that text (a server controls parts of it): it reads
the JSON (Report.as_dict(); {"graded": false, "error": ...} when there is no
grade), or the exit status: 0 graded (whatever the score), 2 could not grade
(a bad argument, a server that never listened), 130 interrupted. The parser
is in labserver/cli.py; this module does the work.
"""

import json
import signal
import sys
import threading

from .client import GradeError
from .report import could_not_grade, format_check
from .runner import grade


def command(args):
    out = sys.stderr if args.json == "-" else sys.stdout  # stdout is the JSON's, then
    for stream in (sys.stdout, sys.stderr):  # a cp1252 console must not end the grade over one letter
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    restore = stop_on_sigterm()
    try:
        report = grade(args.url, cmd=args.cmd, source=args.source, clients=args.clients, duration=args.duration,
                       timeout=args.timeout, start_timeout=args.start_timeout, run_seconds=args.deadline,
                       on_start=lambda report: print(report.header(), file=out, flush=True),
                       on_check=lambda check: print(format_check(check), file=out, flush=True))
    except GradeError as error:
        print(f"labserver grade: error: {error}".replace("\n", " "), file=sys.stderr)
        write_json(args.json, could_not_grade(str(error)))
        return 2
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: the server (with --cmd) was stopped on the way out
        print("labserver grade: interrupted; nothing graded, the server was stopped", file=sys.stderr)
        write_json(args.json, could_not_grade("interrupted"))
        return 130
    finally:
        restore()
    if not report.checks:  # refused before any row ran: the header was never printed
        print(report.header(), file=out)
    print(report.footer(), file=out, flush=True)
    write_json(args.json, report.as_dict())
    return 0


def write_json(destination, data):
    if destination is None:
        return
    text = json.dumps(data, indent=2) + "\n"
    if destination == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        with open(destination, "w", encoding="utf-8") as file:
            file.write(text)


def stop_on_sigterm():
    """SIGTERM (a CI timeout, `kill`) unwinds like Ctrl-C, so the server is stopped
    and reaped on the way out; returns a function that puts things back."""
    if not hasattr(signal, "SIGTERM") or threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    return lambda: signal.signal(signal.SIGTERM, previous)
