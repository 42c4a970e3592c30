"""The project grader: a checklist any HTTP server can be run against, with a score.

    python -m labserver grade --url http://127.0.0.1:8000/
    python -m labserver grade --cmd "python project/server.py --port {port} --root {root}" \\
                              --source project/server.py --json grade.json

    from labserver.grade import grade
    report = grade(cmd=[sys.executable, "project/server.py", "--port", "{port}", "--root", "{root}"],
                   source="project/server.py")
    report.score, report.total, report.groups, report.refused, report.as_dict()

The server must serve the demo site (labserver/demo_site) at its root. With a
command, the grader starts it in a child process of its own: a free port in
place of {port}, the demo site's folder in place of {root}; it waits until
the port accepts connections, grades, and stops it with everything it
started (labserver.children). Every row has a deadline, and so has the run.

The files, in the order a student may read them:
    rows.py         the rows: the site, connections, bad requests, safety
    concurrency.py  the concurrency rows, which a one-at-a-time server fails
    client.py       the grader's client: raw requests, responses read by protocol.ResponseReader
    source.py       the project's rule (own code, standard library only), checked
    report.py       the grade as text (escaped) and as data
    runner.py       grade(): start the server, run the rows under deadlines, stop it
    cli.py          `labserver grade`, its --json and its exit status

A score per group, and the total: a Classroom workflow scales the project's
points by score / total (the "fraction" in the JSON), instead of 30 or 0.
"""

from .client import Failed, GradeError
from .report import Check, Report
from .rows import ROWS, Row
from .runner import command_words, free_port, grade
from .source import check_source

__all__ = ["ROWS", "Check", "Failed", "GradeError", "Report", "Row", "check_source", "command_words",
           "free_port", "grade"]
