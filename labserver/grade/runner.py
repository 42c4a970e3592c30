"""Running a grade: start the server if asked, run the rows under deadlines, stop everything.

Deadlines: each row has its own (a server that trickles a byte every two
seconds cannot hold a row longer), and the whole run has one (RUN_SECONDS):
rows that would start after it are not run, and say so. A row runs in a
thread of its own; if it overruns its deadline, its connections are cut.

A server started from a command (cmd=) runs in a child process of its own
(labserver.children): stopped at the end with its whole process group and
everything it started, also when the grader is interrupted (Ctrl-C, SIGTERM)
or killed (the child's guard); the report says what had to be killed.
"""

import os
import shlex
import socket
import tempfile
import threading
import time

from .. import DEMO_SITE
from ..children import Child, ChildError
from ..limits import raise_open_files_limit
from .client import Failed, GradeError, Target, describe_error
from .report import Check, Report
from .rows import ROWS
from .source import check_source, watch, watched

CLIENTS = 50  # concurrent downloaders in the "many clients" rows
DURATION = 2.0  # seconds they download for
TIMEOUT = 3.0  # seconds to wait for any answer
START_TIMEOUT = 10.0  # seconds a --cmd server has to accept connections
RUN_SECONDS = 240.0  # the whole grade, at most
ABORT_GRACE = 2.0  # seconds a row that overran gets to notice that its connections were cut


def grade(url=None, *, cmd=None, source=None, clients=CLIENTS, duration=DURATION, timeout=TIMEOUT,
          start_timeout=START_TIMEOUT, run_seconds=RUN_SECONDS, rows=None, on_start=None, on_check=None):
    """Grade the server at `url`, or start `cmd` first; return a Report.

    cmd: the command as a list, e.g. [sys.executable, "server.py", "--port",
    "{port}", "--root", "{root}"]: the grader puts a free port in place of
    {port} and the demo site's folder in place of {root}; `python` means this
    Python. (A string is split like a shell would, for the command line.)
    source: the project's server source: grade it as the project, under the
    project's rule (labserver.grade.source); a server that breaks the rule
    scores zero, with the reason in report.refused.
    rows: a subset of ROWS to run (default: all). on_start(report) is called
    once the server is known to be listening, on_check(check) after each row.
    Raises GradeError if grading cannot happen (a bad URL or command, a
    server that is not there or never listens)."""
    if (url is None) == (cmd is None):
        raise GradeError("give either a URL or a command (cmd=...): exactly one of them")
    rows = ROWS if rows is None else rows
    if source is not None:
        if not os.path.isfile(source):
            raise GradeError(f"no such file: {source} (the project's source, given with source=/--source)")
        problems = check_source(source)
        if problems:
            return Report(url or "(not started)", refused=refusal(problems), total=points(rows))
    raise_open_files_limit(4 * clients + 256)  # the load rows' connections, on a 256-descriptor macOS
    options = dict(clients=clients, duration=duration, timeout=timeout, run_seconds=run_seconds, rows=rows,
                   on_start=on_start, on_check=on_check)
    if cmd is None:
        return grade_url(url, **options)
    with tempfile.TemporaryDirectory(prefix="labserver-grade-") as scratch:
        return grade_command(cmd, source, start_timeout, scratch, **options)


def grade_command(cmd, source, start_timeout, scratch, **options):
    port = free_port()
    env = dict(os.environ)
    report_file = None
    if source is not None:  # watch the project server's imports while it runs
        variables, report_file = watch(scratch)
        env.update(variables)
    try:
        child = Child(command_words(cmd, port), env=env)
    except (TypeError, ChildError) as error:
        raise GradeError(str(error)) from None
    url = f"http://127.0.0.1:{port}/"
    try:
        with child:
            try:
                child.wait_for_port(port, timeout=start_timeout)
            except ChildError as error:
                refused = runtime_refusal(report_file)
                if refused:
                    return Report(url, refused=refused, total=points(options["rows"]))
                raise GradeError(f"the server {error}" + (
                    "" if child.process.poll() is not None else
                    "\n(does it listen on 127.0.0.1 and the port the grader put in place of {port}?)")) from None
            report = grade_url(url, **options, refuse=lambda: runtime_refusal(report_file, must_watch=True))
            status = child.process.poll()
            if status is not None:
                report.notes.append(f"the server exited during grading (status {status})"
                                    + child.output_tail(lines=3, prefix=": "))
    except ChildError as error:  # it could not even start
        raise GradeError(str(error)) from None
    report.killed = child.killed
    return report


def grade_url(url, clients, duration, timeout, run_seconds, rows, on_start, on_check, refuse=lambda: None):
    target = Target(url, timeout, clients, duration)
    expect_listening(target)
    report = Report(target.url, total=points(rows))
    report.refused = refuse()
    if report.refused:
        return report
    if on_start is not None:
        on_start(report)
    end = time.monotonic() + run_seconds
    for row in rows:
        if time.monotonic() >= end:
            check = Check(row.name, row.group, row.points, False, f"not run: the grade's {run_seconds:g} s were up")
        else:
            check = run_row(row, target)
        report.checks.append(check)
        if on_check is not None:
            on_check(check)
    report.refused = refuse()  # imports made while the rows ran count too
    return report


def run_row(row, target):
    """Run one row in a thread of its own, under its deadline; a Check."""
    seconds = row.seconds(target) if callable(row.seconds) else row.seconds
    outcome = []
    begin = time.monotonic()
    target.deadline = begin + seconds

    def run():
        try:
            outcome.append((True, row.run(target)))
        except Failed as error:
            outcome.append((False, str(error)))
        except OSError as error:  # sending failed: the server closed or reset the connection
            outcome.append((False, f"the connection failed: {describe_error(error)}"))
        except Exception as error:  # the grader's own mistake must not end the grade
            outcome.append((False, f"the grader failed on this row ({type(error).__name__}: {error})"))

    thread = threading.Thread(target=run, name="labserver-grade-row", daemon=True)
    thread.start()
    try:
        thread.join(seconds + ABORT_GRACE)
    finally:
        if thread.is_alive():  # overran (or we are interrupted): cut its connections
            target.abort()
            thread.join(ABORT_GRACE)
    passed, detail = outcome[0] if outcome else (False, f"did not finish within its {seconds:g} s")
    return Check(row.name, row.group, row.points, passed, detail, time.monotonic() - begin)


def points(rows):
    return sum(row.points for row in rows)


def refusal(problems):
    shown = "; ".join(problems[:3]) + (f"; and {len(problems) - 3} more" if len(problems) > 3 else "")
    return f"the project's rule is broken (its own code, standard library only): {shown}"


def runtime_refusal(report_file, must_watch=False):
    """Why the running project server is refused, from what its audit hook saw; None if it is not."""
    if report_file is None:
        return None
    loaded, imports = watched(report_file)
    if imports:
        return refusal([f"while it ran, it imported {name}" for name in imports])
    if must_watch and not loaded:
        return ("the grader could not watch the server's imports: run it as `python server.py ...` "
                "(not python -I or -S)")
    return None


def expect_listening(target):
    try:
        socket.create_connection((target.host, target.port), timeout=target.timeout).close()
    except OSError as error:
        reason = "timed out" if isinstance(error, socket.timeout) else (error.strerror or str(error))
        raise GradeError(f"nothing accepts connections at {target.host}:{target.port} ({reason}): "
                         f"start your server first, or let the grader start it with --cmd") from None


def free_port(host="127.0.0.1"):
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def command_words(cmd, port, root=DEMO_SITE):
    """The command as a list, {port} and {root} filled in. A string (from the
    command line) is split as the shell would (Windows: keeping backslashes)."""
    words = shlex.split(cmd, posix=os.name != "nt") if isinstance(cmd, str) else [os.fspath(w) for w in cmd]
    if not words:
        raise GradeError("the command is empty")
    if not any("{port}" in str(word) for word in words):
        raise GradeError(f"the command must contain {{port}}, where the grader puts the port to listen on: {cmd!r}")
    return [str(word).replace("{port}", str(port)).replace("{root}", str(root)) for word in words]
