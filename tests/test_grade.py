"""The project grader (labserver.grade), run against real servers.

Which servers, and why only these (grading one takes 3-8 s, mostly the load
runs; all nine models would take a minute on a busy two-core machine, and
test_conformance.py already runs the HTTP rules against every model):

- threadpool, the lecture's project done properly, and callbacks, one
  thread and one event loop: the two ways to serve many clients, with the
  most code of their own. They must get full marks.
- iterative, the one model that documents what it cannot do (one client at a
  time): it must fail exactly the three concurrency rows, nothing else.
- the standard library's `python -m http.server`: the rows it fails are what
  it lacks, found by running it and asserted here one by one.
- two deliberately naive servers, to show that the traversal rows do catch a
  server that leaks a file from outside the root.

The labserver models run in their own process through `cmd=`, as a student's
server does; their load runs use 16 clients for 1 s (16 run in this process:
no worker processes to start). http.server is graded through the command line
with the default 50 clients for 2 s: its listen backlog of 5 drops
connections only when many clients arrive at once.
"""

import functools
import os
import signal
import subprocess
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

import psutil
import pytest

from labserver import DEMO_SITE
from labserver.cli import main
from labserver.grade import ROWS, Check, GradeError, Report, StartedServer, free_port, grade

FAST = {"clients": 16, "duration": 1.0}
NAMES = [row.name for row in ROWS]
CONCURRENCY = {"many clients on the largest file all progress", "many clients on the largest file share fairly",
               "a slow client does not block the others"}
TRAVERSAL = {"path traversal with ../ blocked", "path traversal with %2e%2e blocked",
             "absolute paths stay inside the root"}


def model_command(model):
    return f"python -m labserver serve --model {model} --port {{port}} --root {{root}} --quiet"


def print_report(report):
    print(report.table())  # shown by pytest when the test fails


# The rows themselves.


def test_rows_have_unique_names_and_points():
    assert len(set(NAMES)) == len(NAMES)
    assert all(row.points >= 1 for row in ROWS)
    assert CONCURRENCY | TRAVERSAL <= set(NAMES)


def test_report_table_ends_with_the_score():
    report = Report("http://127.0.0.1:1/", [Check("a row", 2, True, "fine"), Check("another row", 3, False, "no")])
    assert (report.score, report.total, report.failed) == (2, 5, ["another row"])
    lines = report.table().splitlines()
    assert lines[0] == "Grading http://127.0.0.1:1/"
    assert lines[2].startswith("pass   2/2  a row") and lines[2].endswith("  fine")
    assert lines[3].startswith("FAIL   0/3  another row") and lines[3].endswith("  no")
    assert lines[-1] == "score: 2/5"
    assert repr(report) == "<Report http://127.0.0.1:1/ score 2/5>"


# labserver's own models.


@pytest.mark.parametrize("model", ["threadpool", "callbacks"])
def test_model_gets_full_marks(model):
    report = grade(cmd=model_command(model), **FAST)
    print_report(report)
    assert [check.name for check in report.checks] == NAMES
    assert report.failed == []
    assert report.score == report.total == sum(row.points for row in ROWS)
    assert report.table().endswith(f"\nscore: {report.total}/{report.total}")
    assert report.notes == []  # the server did not exit on its own


def test_iterative_model_fails_only_the_concurrency_rows():
    report = grade(cmd=model_command("iterative"), **FAST)
    print_report(report)
    assert set(report.failed) == CONCURRENCY
    details = {check.name: check.detail for check in report.checks}
    assert "finished no download" in details["many clients on the largest file all progress"]
    assert "Jain's index" in details["many clients on the largest file share fairly"]
    slow = details["a slow client does not block the others"]
    assert "request 1 of 5: waited 1 s for an answer, nothing came" in slow
    lost = sum(row.points for row in ROWS if row.name in CONCURRENCY)
    assert report.score == report.total - lost


# The standard library's http.server, graded from the command line.

# What `python -m http.server` lacks, and why (CPython's Lib/http/server.py):
STDLIB_LACKS = {
    # protocol_version is HTTP/1.0: it closes the connection after every response.
    "keep-alive: two requests on one connection",
    "pipelining: two requests sent at once",
    # It never checks Host, and its header parser (email.parser) accepts a line without a colon.
    "HTTP/1.1 without Host -> 400",
    "header line without a colon -> 400",
    # A new connection per request into a listen backlog of 5 (socketserver's default):
    # 50 clients arriving together get connections dropped, and each drop costs 1 s or more.
    "many clients on the largest file all progress",
    "many clients on the largest file share fairly",
}
# Before CPython gh-54930, a request line it cannot parse is answered HTTP/0.9
# style: the error page without a status line or headers.
BARE_ANSWERS = {"malformed version HTTP/1.x -> 400", "HTTP/2.0 request -> 505"}


def test_stdlib_http_server_from_the_command_line():
    command = "python -m http.server {port} --bind 127.0.0.1 --directory {root}"
    result = subprocess.run([sys.executable, "-m", "labserver", "grade", "--cmd", command],
                            capture_output=True, text=True, timeout=120)
    print(result.stdout, result.stderr)
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Grading http://127.0.0.1:")
    rows = {name: next(line for line in lines if f" {name}  " in line) for name in NAMES}
    failed = {name for name, line in rows.items() if line.startswith("FAIL")}
    assert all(line.startswith(("pass", "FAIL")) for line in rows.values())
    bare = {name for name in BARE_ANSWERS if name in failed}
    assert failed == STDLIB_LACKS | bare
    for name in bare:
        assert "got no status line, only a body (HTTP/0.9 style)" in rows[name]
    assert "expected 400, got 200 OK" in rows["HTTP/1.1 without Host -> 400"]
    closed = "the server closed the connection after the first (an HTTP/1.0 answer)"
    assert closed in rows["keep-alive: two requests on one connection"]
    assert closed in rows["pipelining: two requests sent at once"]
    assert "501" in rows["unknown method BREW -> 501"]  # what it does have
    score = sum(row.points for row in ROWS if row.name not in failed)
    assert lines[-1] == f"score: {score}/{sum(row.points for row in ROWS)}"
    assert result.stderr == ""


# The traversal rows catch a server that leaks.


class ForgetsDotDot(SimpleHTTPRequestHandler):
    """The textbook mistake: join the root and the decoded path, never check '..'."""

    def translate_path(self, path):
        return os.path.join(self.directory, unquote(path.split("?")[0]).lstrip("/"))

    def log_message(self, *args):
        pass


class KeepsTheSlash(ForgetsDotDot):
    """os.path.join(root, "/an/absolute/path") forgets the root altogether."""

    def translate_path(self, path):
        return os.path.join(self.directory, unquote(path.split("?")[0]))


@pytest.mark.parametrize("handler, leaking", [
    (ForgetsDotDot, {"path traversal with ../ blocked", "path traversal with %2e%2e blocked"}),
    (KeepsTheSlash, TRAVERSAL),
])
def test_traversal_rows_catch_a_leaking_server(handler, leaking):
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(DEMO_SITE)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        report = grade(f"http://127.0.0.1:{server.server_address[1]}/",
                       rows=[row for row in ROWS if row.name in TRAVERSAL])
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    print_report(report)
    assert set(report.failed) == leaking
    for check in report.checks:
        if not check.passed:
            assert check.detail.endswith("outside the root")
            assert "labserver/__init__.py" in check.detail or "/etc/passwd" in check.detail


# Starting and stopping a server from a command.

LISTEN_AND_IGNORE_SIGNALS = (
    "import signal, socket, sys, time; signal.signal(signal.SIGINT, signal.SIG_IGN); "
    "signal.signal(signal.SIGTERM, signal.SIG_IGN); s = socket.create_server(('127.0.0.1', int(sys.argv[1]))); "
    "print('listening', flush=True); time.sleep(60)")


@pytest.mark.skipif(os.name != "posix", reason="signals")
def test_a_server_that_ignores_ctrl_c_and_terminate_is_killed_and_reaped():
    with StartedServer(["python", "-c", LISTEN_AND_IGNORE_SIGNALS, "{port}"], stop_timeout=0.3) as server:
        process = server.process
        assert process.poll() is None
        assert server.output_tail() == "listening"
    assert process.returncode == -signal.SIGKILL
    assert not psutil.pid_exists(process.pid) or psutil.Process(process.pid).status() != psutil.STATUS_ZOMBIE


def our_children(marker):
    return [p for p in psutil.Process().children(recursive=True) if marker in " ".join(p.cmdline())]


def test_a_server_that_never_listens_is_reported_and_stopped():
    marker = "never-listens-7d1c"
    with pytest.raises(GradeError, match=r"did not accept connections on 127\.0\.0\.1:\d+ within 0\.5 s"):
        grade(cmd=f"python -c 'import sys, time; time.sleep(30)' {marker} {{port}}", start_timeout=0.5)
    assert our_children(marker) == []


def test_a_server_that_exits_is_reported_with_its_output():
    with pytest.raises(GradeError, match=r"exited with status 3 before accepting connections:\nport (\d+) is mine"):
        grade(cmd="python -c 'import sys; print(\"port\", sys.argv[1], \"is mine\"); sys.exit(3)' {port}")


def test_grade_wants_a_url_or_a_command():
    with pytest.raises(GradeError, match="either a URL or a command"):
        grade()
    with pytest.raises(GradeError, match="either a URL or a command"):
        grade("http://127.0.0.1:1/", cmd="python x.py --port {port}")


# Command-line mistakes: one line on stderr, exit status 2.


@pytest.mark.parametrize("args, message", [
    ([], "one of the arguments --url --cmd is required"),
    (["--url", "http://127.0.0.1:1/", "--cmd", "x {port}"], "not allowed with argument"),
    (["--cmd", "python -m http.server"], "the command must contain {port}"),
    (["--cmd", "no-such-program-4f2a {port}"], "cannot run 'no-such-program-4f2a'"),
    (["--url", "http://127.0.0.1:1/site/"], "give the server's root URL, http://127.0.0.1:1/"),
    (["--url", "https://127.0.0.1:1/"], "https is not supported"),
    (["--url", "http://127.0.0.1:FREE/"], "nothing accepts connections at 127.0.0.1:FREE"),
    (["--url", "http://127.0.0.1:1/", "--clients", "0"], "expected a whole number >= 1"),
])
def test_command_line_mistakes(capsys, args, message):
    port = str(free_port())  # nothing listens there
    args = [arg.replace("FREE", port) for arg in args]
    try:
        status = main(["grade", *args])
    except SystemExit as exit:  # argparse's own errors
        status = exit.code
    out, err = capsys.readouterr()
    assert status == 2
    assert out == ""
    assert message.replace("FREE", port) in err
    assert err.startswith("labserver grade: error: ") and err.count("\n") == 1
