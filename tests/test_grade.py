"""The project grader (labserver.grade), run against real servers, good and bad.

Good: labserver's `threads` model (a thread per connection) gets full marks;
the `iterative` model (one client at a time) fails exactly the concurrency
rows; so does the project's starting point, project/server.py (version 1),
which keeps the project's rule and is graded, not refused. The standard
library's http.server loses the rows it lacks, one by one.

Bad, one small server each (written to tmp_path), as a student who wants the
points without the work would write it, or as a bug would: a server that
prints score lines (in its output, its headers, the grader's own stdout), one
that wraps labserver or http.server (refused, statically or at run time), a
traversal filter that only strips "../" (and other half-filters), a server
that trickles a byte every 2 s, one that never answers, one that escapes its
process group and ignores Ctrl-C, a grader killed or terminated mid-run.
Each: no points for that row, with a reason, within a bounded time, and no
process left behind (checked after every test).

Load rows use 16 clients for 1 s here (the command line's default is 50 for 2 s).
"""

import dataclasses
import functools
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

import psutil
import pytest

from labserver import DEMO_SITE
from labserver.cli import main
from labserver.grade import ROWS, Check, GradeError, Report, check_source, command_words, free_port, grade
from labserver.grade.rows import ABSOLUTE, BACKSLASH, DOT_DOT, ENCODED
from processes import cmdline, gone, nothing_left_running  # noqa: F401  (an autouse fixture)

FAST = {"clients": 16, "duration": 1.0}
REPO = Path(__file__).resolve().parent.parent
PROJECT = REPO / "project" / "server.py"
POSIX = os.name == "posix"
NAMES = [row.name for row in ROWS]
TOTAL = sum(row.points for row in ROWS)
CONCURRENCY = {row.name for row in ROWS if row.group == "concurrency"}
DOT_DOT_ROW, ENCODED_ROW, BACKSLASH_ROW, ABSOLUTE_ROW = [row.name for row in ROWS if row.group == "safety"]
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in [str(REPO), os.environ.get("PYTHONPATH")] if p))


def rows_named(*names, seconds=None):
    rows = [row for row in ROWS if row.name in names]
    assert len(rows) == len(names)
    return rows if seconds is None else [dataclasses.replace(row, seconds=seconds) for row in rows]


def model_command(model):
    return ["python", "-m", "labserver", "serve", "--model", model, "--port", "{port}", "--root", "{root}", "--quiet"]


def server_file(tmp_path, source, name="server.py"):
    path = tmp_path / name
    path.write_text(source, encoding="utf-8")
    return path


# The rows and the report themselves.


def test_rows_have_unique_names_groups_and_points():
    assert len(set(NAMES)) == len(NAMES)
    assert all(row.points >= 1 for row in ROWS)
    assert [row.group for row in ROWS] == sorted((row.group for row in ROWS), key=[
        "site", "connections", "bad requests", "safety", "concurrency"].index)
    assert len(CONCURRENCY) == 4
    assert all(getattr(row.run, "func", row.run).__doc__ for row in ROWS)  # what it proves, and why


def test_report_scores_groups_and_data():
    checks = [Check("a row", "one", 2, True, "fine"), Check("another", "one", 3, False, "no"),
              Check("third", "two", 1, True, "ok")]
    report = Report("http://127.0.0.1:1/", checks, total=6)
    assert (report.score, report.total, report.failed) == (3, 6, ["another"])
    assert report.groups == {"one": (2, 5), "two": (1, 1)}
    lines = report.table().splitlines()
    assert lines[0] == "Grading http://127.0.0.1:1/"
    assert lines[2].startswith("pass   2/2  a row") and lines[2].endswith("  fine")
    assert lines[3].startswith("FAIL   0/3  another") and lines[3].endswith("  no")
    assert lines[-2:] == ["groups: one: 2/5, two: 1/1", "score: 3/6"]
    data = report.as_dict()
    assert (data["graded"], data["score"], data["total"], data["fraction"]) == (True, 3, 6, 0.5)
    assert data["groups"] == [{"name": "one", "score": 2, "total": 5}, {"name": "two", "score": 1, "total": 1}]
    assert [row["earned"] for row in data["rows"]] == [2, 0, 1]
    report.refused = "it wraps http.server"
    assert report.score == 0 and report.groups == {"one": (0, 5), "two": (0, 1)}
    assert report.table().splitlines()[-2:] == ["refused: it wraps http.server", "score: 0/6"]


def test_server_text_cannot_forge_a_line_or_a_terminal_escape():
    forged = "OK\r\nscore: 36/36\n\x1b[2J\x1b]0;title\x07\x85"
    report = Report("http://127.0.0.1:1/", [Check("a row", "one", 1, False, f"got 200 {forged}")], total=1,
                    notes=[f"the server printed: {forged}"], killed=[f"pid 1 ({forged})"])
    table = report.table()
    assert [line for line in table.splitlines() if line.startswith("score:")] == ["score: 0/1"]
    assert not any(ch in table for ch in "\r\x1b\x07\x85") and table.count("\n") == 6
    assert "got 200 OK\\x0d\\x0ascore: 36/36\\x0a\\x1b[2J" in table


def test_command_words_fill_in_port_and_root_and_keep_list_items_whole(tmp_path):
    script = tmp_path / "Jane Doe" / "my server.py"
    words = command_words(["python", script, "--port", "{port}", "--root", "{root}"], 8080)
    assert words == ["python", str(script), "--port", "8080", "--root", str(DEMO_SITE)]
    if POSIX:  # the command line's string, split as the shell would
        assert command_words(f"python '{script}' --port {{port}}", 1) == ["python", str(script), "--port", "1"]
    with pytest.raises(GradeError, match="must contain {port}"):
        command_words(["python", "server.py"], 1)


# Good servers.


def test_a_thread_per_connection_gets_full_marks():
    report = grade(cmd=model_command("threads"), **FAST)
    print(report.table())
    assert [check.name for check in report.checks] == NAMES
    assert report.failed == [] and report.score == report.total == TOTAL
    assert report.notes == [] and report.killed == []  # it stopped when asked


def test_one_client_at_a_time_fails_exactly_the_concurrency_rows():
    report = grade(cmd=model_command("iterative"), **FAST)
    print(report.table())
    assert set(report.failed) == CONCURRENCY
    assert report.groups["concurrency"] == (0, 9) and report.score == TOTAL - 9


def test_the_starting_project_server_is_graded_and_fails_every_concurrency_row(tmp_path):
    folder = tmp_path / "Jane Doe"  # a path with a space, as on a student's laptop
    folder.mkdir()
    server = shutil.copy(PROJECT, folder / "server.py")
    report = grade(cmd=["python", server, "--port", "{port}", "--root", "{root}"], source=server, **FAST)
    print(report.table())
    assert report.refused is None  # the standard library only: it keeps the project's rule
    assert CONCURRENCY <= set(report.failed) and report.groups["concurrency"] == (0, 9)
    details = {check.name: check.detail for check in report.checks}
    assert "while 0 keep-alive and 4 silent connections were open" in details["idle connections do not hold up the others"]
    assert "answered (or closed) the slow client after 26 of" in details[
        "a slow client is served without holding up the others"]
    assert "finished no download" in details["many clients on the largest file all progress"]
    assert "returned the content of labserver/__init__.py" in details[DOT_DOT_ROW]  # version 1 trusts its input
    assert 0 < report.score < TOTAL


# What the standard library's http.server lacks, and why (CPython's Lib/http/server.py):
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


def test_stdlib_http_server_from_the_command_line(tmp_path):
    command = "python -m http.server {port} --bind 127.0.0.1 --directory {root}"
    result = subprocess.run([sys.executable, "-m", "labserver", "grade", "--cmd", command, "--json",
                             str(tmp_path / "grade.json")], capture_output=True, text=True, encoding="utf-8",
                            timeout=180)
    print(result.stdout, result.stderr)
    assert result.returncode == 0 and result.stderr == ""
    data = json.loads((tmp_path / "grade.json").read_text(encoding="utf-8"))
    rows = {row["name"]: row for row in data["rows"]}
    failed = {name for name, row in rows.items() if not row["passed"]}
    bare = {name for name in BARE_ANSWERS if name in failed}
    assert failed == STDLIB_LACKS | bare
    for name in bare:
        assert "not an HTTP response (no status line)" in rows[name]["detail"]
    assert "expected 400, got 200 OK" in rows["HTTP/1.1 without Host -> 400"]["detail"]
    closed = "the server closed the connection after the first (an HTTP/1.0 answer)"
    assert closed in rows["keep-alive: two requests on one connection"]["detail"]
    assert data["score"] == sum(row.points for row in ROWS if row.name not in failed) and data["total"] == TOTAL
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Grading http://127.0.0.1:") and lines[-1] == f"score: {data['score']}/{TOTAL}"


# The traversal rows: each half-way filter leaks through one of them.


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


class StripsDotDotSlash(ForgetsDotDot):
    """path.replace("../", ""): "....//" becomes "../" again."""

    def translate_path(self, path):
        return os.path.join(self.directory, unquote(path.split("?")[0]).replace("../", "").lstrip("/"))


class DecodesTwice(ForgetsDotDot):
    """Checks the decoded path for '..', then decodes it again: %252e%252e passes the check as %2e%2e."""

    def translate_path(self, path):
        once = unquote(path.split("?")[0])
        if ".." in once:
            return os.path.join(self.directory, "no such file")
        return os.path.join(self.directory, unquote(once).lstrip("/"))


class BackslashIsASlash(ForgetsDotDot):
    """Checks for '..' between slashes, then treats a backslash as a slash (as Windows paths do)."""

    def translate_path(self, path):
        decoded = unquote(path.split("?")[0])
        if ".." in decoded.split("/"):
            return os.path.join(self.directory, "no such file")
        return os.path.join(self.directory, decoded.replace("\\", "/").lstrip("/"))


@pytest.mark.skipif(not Path("/etc/passwd").exists(), reason="the probes aim at /etc/passwd here")
@pytest.mark.parametrize("handler, leaking", [
    (ForgetsDotDot, {DOT_DOT_ROW, ENCODED_ROW}),
    (KeepsTheSlash, {DOT_DOT_ROW, ENCODED_ROW, ABSOLUTE_ROW}),
    (StripsDotDotSlash, {DOT_DOT_ROW}),
    (DecodesTwice, {ENCODED_ROW}),
    (BackslashIsASlash, {BACKSLASH_ROW}),
])
def test_traversal_rows_catch_each_half_way_filter(handler, leaking):
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(DEMO_SITE)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        report = grade(f"http://127.0.0.1:{server.server_address[1]}/",
                       rows=[row for row in ROWS if row.group == "safety"])
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    print(report.table())
    assert set(report.failed) == leaking
    for check in report.checks:
        if not check.passed:
            assert check.detail.endswith("outside the root")


def test_probes_spell_the_way_out_every_way():
    assert {"/....//__init__.py", "/..././__init__.py"} <= set(DOT_DOT)
    assert any("%252e" in path for path in ENCODED) and any("%2f" in path for path in ENCODED)
    assert any("\\" in path for path in BACKSLASH) and any("%5c" in path for path in BACKSLASH)
    assert {"/C:/Windows/win.ini", "/C:\\Windows\\win.ini"} <= set(ABSOLUTE)


# The project's rule: the student's own code, on the standard library.

WRAPS_THREADPOOL = """\
import sys, time
from labserver import ThreadPoolServer
with ThreadPoolServer(root=sys.argv[2], port=int(sys.argv[1])):
    time.sleep(600)
"""


@pytest.mark.parametrize("source, reason", [
    (WRAPS_THREADPOOL, "server.py:2: imports labserver: labserver is the model answer"),
    ("from labserver.protocol import RequestParser\n", "imports labserver.protocol: labserver is the model answer"),
    ("import http.server\n", "imports http.server: http.server is the standard library's HTTP server"),
    ("from http import server\n", "imports http.server"),
    ("import socketserver\n", "imports socketserver"),
    ("from wsgiref.simple_server import make_server\n", "imports wsgiref.simple_server"),
    ("import flask\n", "imports flask, which is not in the standard library"),
    ("server = __import__('http.server')\n", "calls __import__()"),
    ("import importlib\n", "imports importlib: the grader cannot read the code it loads"),
    ("exec('import http.server')\n", "calls exec()"),
    ("import subprocess\n", "imports subprocess"),
    ("import os\nos.system('python -m http.server')\n", "calls os.system()"),
    ("import os\nos.execv('/bin/sh', ['sh'])\n", "calls os.execv()"),
    ("import helper\n", "helper.py:1: imports socketserver"),  # the student's own module is read too
])
def test_the_rule_is_checked_in_the_source(tmp_path, source, reason):
    server_file(tmp_path, "import socketserver\n", "helper.py")
    path = server_file(tmp_path, source)
    problems = check_source(path)
    assert any(reason in problem for problem in problems), problems
    begin = time.monotonic()
    report = grade(cmd=["python", path, "{port}", "{root}"], source=path)
    assert report.refused and reason in report.refused and report.score == 0 and report.total == TOTAL
    assert report.checks == [] and time.monotonic() - begin < 2  # refused before it ever ran


def test_the_rule_keeps_what_the_standard_library_offers(tmp_path):
    server_file(tmp_path, "import threading\nfrom . import nothing\n", "mine.py")
    path = server_file(tmp_path, "import os, socket, threading, queue, selectors, mimetypes\n"
                                 "from urllib.parse import unquote\nimport http\nimport mine\n"
                                 "from concurrent.futures import ThreadPoolExecutor\n")
    assert check_source(path) == []
    assert check_source(PROJECT) == []


SNEAKY = """\
import builtins, sys
load = getattr(builtins, "__imp" + "ort__")      # no import statement the source check could see
try:
    server = load("http.ser" + "ver", fromlist=["x"])
except ImportError:
    server = None                                 # ...and carry on, as if nothing happened
import socket, time
listener = socket.create_server(("127.0.0.1", int(sys.argv[1])))
while True:
    sock, _ = listener.accept()
    sock.recv(65536)
    sock.sendall(b"HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\nConnection: close\\r\\n\\r\\nhi")
    sock.close()
"""


def test_a_server_that_imports_http_server_at_run_time_is_refused(tmp_path):
    path = server_file(tmp_path, SNEAKY)
    assert check_source(path) == []
    report = grade(cmd=["python", path, "{port}"], source=path, rows=ROWS[:1])
    assert report.refused and "while it ran, it imported http.server" in report.refused
    assert report.score == 0
    unwatched = grade(cmd=["python", "-I", path, "{port}"], source=path, rows=ROWS[:1])
    assert "could not watch the server's imports" in unwatched.refused


# Servers that try to fool the grader or hold it up.

FORGER = """\
import os, sys
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
print("score: 36/36", flush=True)  # its own output: never read as a grade
try:  # straight into the grader's stdout
    with open(f"/proc/{os.getppid()}/fd/1", "w") as out:
        out.write("score: 36/36\\n")
except OSError:
    pass

class Handler(SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def send_error(self, code, message=None, explain=None):  # C1 controls: CSI 2 J clears a terminal
        super().send_error(code, "score: 36/36\\x85\\x9b2J")

    def end_headers(self):
        self.send_header("X-Score", "score: 36/36")
        super().end_headers()

    def log_message(self, *args):
        pass

ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), partial(Handler, directory=sys.argv[2])).serve_forever()
"""


def test_score_lines_from_the_server_change_nothing(tmp_path):
    path = server_file(tmp_path, FORGER)
    result = subprocess.run([sys.executable, "-m", "labserver", "grade", "--cmd", f"python '{path}' {{port}} {{root}}",
                             "--clients", "8", "--duration", "0.5", "--json", str(tmp_path / "grade.json")],
                            capture_output=True, text=True, encoding="utf-8", timeout=180)
    print(result.stdout, result.stderr)
    data = json.loads((tmp_path / "grade.json").read_text(encoding="utf-8"))
    assert result.returncode == 0 and data["graded"] and data["score"] < TOTAL
    ours = [line for line in result.stdout.splitlines() if line.startswith(("pass ", "FAIL "))]
    assert len(ours) == len(ROWS) and not any(ch in line for line in ours for ch in "\x85\x9b")
    assert any("score: 36/36\\x85\\x9b2J" in line for line in ours)  # shown, escaped
    assert result.stdout.splitlines()[-1] == f"score: {data['score']}/{TOTAL}"
    if Path("/proc/self/fd").is_dir():  # it did write to our stdout: that is why programs read the JSON
        assert "score: 36/36" in result.stdout.splitlines()


SLOW_SENDER = """\
import socket, sys, threading, time

def handle(sock):
    with sock:
        sock.recv(65536)
        for byte in b"HTTP/1.1 200 OK\\r\\nContent-Length: 5\\r\\n\\r\\nhello":
            sock.send(bytes([byte]))
            time.sleep(2)

listener = socket.create_server(("127.0.0.1", int(sys.argv[1])), backlog=128)
while True:
    sock, _ = listener.accept()
    threading.Thread(target=handle, args=(sock,), daemon=True).start()
"""


def test_a_server_that_sends_a_byte_every_two_seconds_cannot_hold_the_grader(tmp_path):
    rows = rows_named("GET / serves index.html", "keep-alive: two requests on one connection",
                      "HTTP/1.1 without Host -> 400", "idle connections do not hold up the others",
                      "many clients on the largest file all progress", seconds=2.0)
    begin = time.monotonic()
    report = grade(cmd=["python", server_file(tmp_path, SLOW_SENDER), "{port}"], rows=rows, **FAST)
    elapsed = time.monotonic() - begin
    print(report.table())
    assert report.score == 0 and elapsed < len(rows) * 4 + 5
    assert all(check.seconds < 6.5 for check in report.checks)
    for check in report.checks[:4]:
        assert "time was up" in check.detail or "within 2 s" in check.detail, check.detail
    assert "finished no download" in report.checks[4].detail
    cut = grade(cmd=["python", server_file(tmp_path, SLOW_SENDER), "{port}"], rows=rows, run_seconds=3, **FAST)
    assert [check.detail for check in cut.checks][-3:] == ["not run: the grade's 3 s were up"] * 3


NEVER_ANSWERS = """\
import socket, sys, time
listener = socket.create_server(("127.0.0.1", int(sys.argv[1])), backlog=128)
held = []
while True:
    held.append(listener.accept()[0])  # and never a word
"""


def test_a_server_that_never_answers_fails_each_row_with_the_reason(tmp_path):
    rows = rows_named("GET / serves index.html", "HEAD: the headers of GET, no body", "unknown method BREW -> 501")
    begin = time.monotonic()
    report = grade(cmd=["python", server_file(tmp_path, NEVER_ANSWERS), "{port}"], rows=rows, timeout=0.5)
    assert report.score == 0 and time.monotonic() - begin < 10
    assert all("waited 0.5 s for a response, nothing came" in check.detail for check in report.checks)


ESCAPER = """\
import signal, subprocess, sys, time
signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C does nothing
escaped = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True)
with open(sys.argv[2], "w", encoding="utf-8") as file:
    file.write(str(escaped.pid))
import socket
listener = socket.create_server(("127.0.0.1", int(sys.argv[1])))
while True:
    sock, _ = listener.accept()
    sock.recv(65536)
    sock.sendall(b"HTTP/1.1 404 Not Found\\r\\nContent-Length: 0\\r\\nConnection: close\\r\\n\\r\\n")
    sock.close()
"""


@pytest.mark.skipif(not POSIX, reason="sessions and SIGINT are POSIX")
def test_a_server_that_escapes_its_group_and_ignores_ctrl_c_is_stopped_and_reported(tmp_path):
    pidfile = tmp_path / "escaped.pid"
    report = grade(cmd=["python", server_file(tmp_path, ESCAPER), "{port}", pidfile], rows=ROWS[:1])
    escaped = int(pidfile.read_text(encoding="utf-8"))
    assert gone(escaped)
    assert any("of the interrupt signal" in line for line in report.killed)
    assert any(f"pid {escaped} " in line and "left behind" in line for line in report.killed)
    assert "had to kill: pid" in report.table()


def start_grading(tmp_path):
    """The command-line grader on ESCAPER, in a process of its own; (grader, server pid, escaped pid)."""
    pidfile = tmp_path / "escaped.pid"
    grader = subprocess.Popen([sys.executable, "-m", "labserver", "grade", "--cmd",
                               f"python '{server_file(tmp_path, ESCAPER)}' {{port}} '{pidfile}'"], env=ENV,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8")
    assert grader.stdout.readline().startswith("Grading")  # the server is up
    server = next(p.pid for p in psutil.Process(grader.pid).children() if "escaped.pid" in " ".join(cmdline(p)))
    return grader, server, int(pidfile.read_text(encoding="utf-8"))


@pytest.mark.skipif(not POSIX, reason="SIGKILL and SIGTERM are POSIX signals")
def test_a_killed_grader_leaves_nothing_running(tmp_path):
    grader, server, escaped = start_grading(tmp_path)
    time.sleep(1)  # the guard has seen the server's descendants
    grader.kill()
    grader.communicate()
    assert gone(server) and gone(escaped)


@pytest.mark.skipif(not POSIX, reason="SIGKILL and SIGTERM are POSIX signals")
def test_a_terminated_grader_stops_the_server_and_says_so(tmp_path):
    grader, server, escaped = start_grading(tmp_path)
    grader.terminate()
    out, err = grader.communicate(timeout=30)
    assert grader.returncode == 130 and "interrupted" in err
    assert gone(server, within=1) and gone(escaped, within=1)  # stopped on the way out, not by the guard later


# The command line: the grade as data, and the exit status.


def test_json_on_stdout_and_the_table_on_stderr(tmp_path, capsys):
    path = server_file(tmp_path, WRAPS_THREADPOOL)
    status = main(["grade", "--cmd", f"python {path} {{port}} {{root}}", "--source", str(path), "--json", "-"])
    out, err = capsys.readouterr()
    data = json.loads(out)
    assert status == 0 and data["graded"] and data["score"] == 0 and "labserver" in data["refused"]
    assert err.splitlines()[-2:] == [f"refused: {data['refused']}", f"score: 0/{TOTAL}"]


def test_no_grade_is_exit_status_2_and_says_why_in_the_json(tmp_path, capsys):
    status = main(["grade", "--url", f"http://127.0.0.1:{free_port()}/", "--json", str(tmp_path / "g.json")])
    data = json.loads((tmp_path / "g.json").read_text(encoding="utf-8"))
    assert status == 2 and data["graded"] is False and "nothing accepts connections" in data["error"]


def test_a_server_that_never_listens_is_reported_and_stopped():
    marker = "never-listens-7d1c"
    with pytest.raises(GradeError, match=r"did not accept connections on 127\.0\.0\.1:\d+ within 0\.5 s"):
        grade(cmd=["python", "-c", "import sys, time; time.sleep(30)", marker, "{port}"], start_timeout=0.5)


def test_a_server_that_exits_is_reported_with_its_output():
    with pytest.raises(GradeError, match=r"exited with status 3 before it was ready:\nport (\d+) is mine"):
        grade(cmd=["python", "-c", "import sys; print('port', sys.argv[1], 'is mine'); sys.exit(3)", "{port}"])


def test_grade_wants_a_url_or_a_command():
    with pytest.raises(GradeError, match="either a URL or a command"):
        grade()
    with pytest.raises(GradeError, match="either a URL or a command"):
        grade("http://127.0.0.1:1/", cmd=["python", "x.py", "--port", "{port}"])


@pytest.mark.parametrize("args, message", [
    ([], "one of the arguments --url --cmd is required"),
    (["--url", "http://127.0.0.1:1/", "--cmd", "x {port}"], "not allowed with argument"),
    (["--cmd", "python -m http.server"], "the command must contain {port}"),
    (["--cmd", "no-such-program-4f2a {port}"], "cannot run 'no-such-program-4f2a'"),
    (["--url", "http://127.0.0.1:1/site/"], "give the server's root URL, http://127.0.0.1:1/"),
    (["--url", "https://127.0.0.1:1/"], "https is not supported"),
    (["--url", "http://127.0.0.1:FREE/"], "nothing accepts connections at 127.0.0.1:FREE"),
    (["--url", "http://127.0.0.1:1/", "--clients", "0"], "expected a whole number >= 1"),
    (["--url", "http://127.0.0.1:1/", "--deadline", "-5"], "expected a number of seconds > 0"),
    (["--url", "http://127.0.0.1:1/", "--source", "no/such/server.py"], "no such file: no/such/server.py"),
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
