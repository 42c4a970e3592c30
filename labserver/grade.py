"""The project grader: a checklist any HTTP server can be run against, with a score.

    python -m labserver grade --url http://127.0.0.1:8000/
    python -m labserver grade --cmd "python myserver.py --port {port} --root {root}"

    from labserver.grade import grade
    report = grade("http://127.0.0.1:8000/")      # or grade(cmd="python myserver.py --port {port}")
    print(report.table())                          # ... ending with "score: X/Y"
    report.score, report.total, report.checks

The server must serve the demo site (labserver/demo_site) at its root. With
--cmd the grader starts it: it picks a free port, puts it in place of {port}
(and the demo site's folder in place of {root}), waits until the port accepts
connections, grades, and stops the server again (SIGINT, then terminate, then
kill; always reaped). A leading `python` means the Python running the grader.

What is checked, and why the lecture's acceptance needs it:

* The site, byte for byte. A browser pointed at the server must get the demo
  site intact: every file exactly (a truncated image or a page decoded and
  re-encoded is a broken site), names with spaces and non-ASCII letters,
  which browsers send percent-encoded as UTF-8, the media types browsers go
  by, HEAD (headers only: a client that reads a body after HEAD hangs) and 404.
* Connections. Browsers and the load generator reuse a connection for the
  next request (keep-alive); a pipelining client sends several at once, and a
  server that reads "one recv() = one request" loses all but the first.
* Bad requests. Every malformed request gets its own status (400, 501, 505,
  414) and not a crash, a hang or a 200: each is one row, so you see exactly
  which case your parser misses.
* Path traversal. No request, however encoded, may read a file outside the
  root. The grader can only try: it asks for files beside the root
  (labserver/__init__.py), /etc/passwd and absolute paths, and passes a row
  when every answer is a 4xx that contains none of them.
* Concurrency, the point of the lecture. Many clients downloading the
  site's largest file at once must all make progress, each getting a fair
  share (measured with labserver.load); and a slow client, sending one header
  byte every 0.5 s, must not hold up anybody else. A server that serves one
  client at a time fails exactly these rows.

Every row has a name, points, pass or fail, and one line saying what was
expected and what came back. A run takes 5-10 s on a busy two-core machine,
most of it the concurrency rows.
"""

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from . import DEMO_SITE

TIMEOUT = 3.0  # seconds to wait for any answer
CLIENTS = 50  # concurrent downloaders in the "many clients" rows
DURATION = 2.0  # seconds they download for
MAX_GAP = 1.0  # seconds a downloading client may wait without a byte (a dropped SYN alone costs 1 s)
FAIRNESS = 0.8  # lowest Jain's index (1.0: every client got the same bytes) that passes
SLOW_BYTE_EVERY = 0.5  # seconds between the slow client's bytes
QUICK = 1.0  # seconds an answer may take while the slow client trickles
START_TIMEOUT = 10.0  # seconds a --cmd server has to accept connections
STOP_TIMEOUT = 3.0  # seconds it has to exit after SIGINT (then after terminate) before it is killed


class GradeError(Exception):
    """Grading could not happen: a bad URL or command, or a server that never came up."""


class Failed(Exception):
    """A check did not pass; the message says what was expected and what came back."""


# The demo site, and the files beside it that no request may read.

def site_files():
    """{url path: bytes} for every file of the demo site, in a stable order."""
    files = sorted(p for p in DEMO_SITE.rglob("*") if p.is_file())
    return {"/" + quote(p.relative_to(DEMO_SITE).as_posix()): p.read_bytes() for p in files}


def outside_files():
    """{description: a line of it} for files outside the root that must never come back."""
    found = {}
    candidates = [("labserver/__init__.py", DEMO_SITE.parent / "__init__.py"), ("/etc/passwd", Path("/etc/passwd"))]
    for name, path in candidates:
        try:
            line = next(line for line in path.read_bytes().splitlines() if line.strip())
        except (OSError, StopIteration):
            continue
        found[name] = line
    return found


# One connection, raw bytes: the grader sends what no polite client would.

@dataclass
class Response:
    version: str  # "HTTP/1.1"
    status: int
    reason: str
    headers: dict  # lowercase name -> value (the last one, if repeated)
    body: bytes = b""

    def describe(self):
        return f"{self.status} {self.reason}".strip() + f", {len(self.body):,} bytes"


CLOSED_SILENTLY = "the server closed the connection without answering"
STATUS_LINE = re.compile(rb"HTTP/(\d)\.(\d) (\d{3})(?: ([^\r\n]*))?")


class Connection:
    """A TCP connection to the server under test; every wait is bounded by `timeout`."""

    def __init__(self, host, port, timeout):
        self.timeout = timeout
        self.buf = b""
        try:
            self.sock = socket.create_connection((host, port), timeout=timeout)
        except socket.timeout:
            raise Failed(f"could not connect within {timeout:g} s") from None
        except OSError as error:
            raise Failed(f"could not connect: {error.strerror or error}") from None
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def send(self, data):
        self.sock.sendall(data)

    def _more(self, what):
        try:
            data = self.sock.recv(1 << 18)
        except socket.timeout:
            raise Failed(f"waited {self.timeout:g} s for {what}, nothing came"
                         + (f" ({len(self.buf):,} bytes before that)" if self.buf else "")) from None
        except ConnectionResetError:
            raise Failed(f"the server reset the connection while we waited for {what}") from None
        if not data:
            raise EOFError
        self.buf += data

    def response(self, head=False, body=True):
        """The next response. head=True: the answer to HEAD (no body follows);
        body=False: read the status line and headers only."""
        while b"\r\n\r\n" not in self.buf:
            if len(self.buf) >= 5 and not self.buf.startswith(b"HTTP/"):
                break  # not a status line: say so below, rather than wait for headers that never come
            try:
                self._more("an answer" if not self.buf else "the end of the response headers")
            except EOFError:
                if not self.buf:
                    raise Failed(CLOSED_SILENTLY) from None
                break
        if not self.buf.startswith(b"HTTP/"):
            raise Failed(f"got no status line, only a body (HTTP/0.9 style): {self.buf[:40]!r}")
        if b"\r\n\r\n" not in self.buf:
            raise Failed(f"the connection closed in the middle of the headers: {self.buf[:60]!r}")
        head_bytes, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head_bytes.split(b"\r\n")
        match = STATUS_LINE.fullmatch(lines[0])
        if not match:
            raise Failed(f"not an HTTP response: {lines[0][:60]!r}")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().decode("latin-1").lower()] = value.strip().decode("latin-1")
        response = Response(f"HTTP/{match.group(1).decode()}.{match.group(2).decode()}", int(match.group(3)),
                            (match.group(4) or b"").decode("latin-1"), headers)
        if body and not head and response.status not in (204, 304) and response.status >= 200:
            response.body = self._body(headers)
        return response

    def _body(self, headers):
        if "chunked" in headers.get("transfer-encoding", "").lower():
            return self._chunked()
        length = headers.get("content-length")
        if length is not None:
            if not (length.isascii() and length.isdigit()):
                raise Failed(f"Content-Length is not a number: {length!r}")
            return self._exactly(int(length))
        while True:  # no length: the body ends when the server closes
            try:
                self._more("the end of the body (no Content-Length, so the server must close)")
            except EOFError:
                body, self.buf = self.buf, b""
                return body

    def _exactly(self, n):
        while len(self.buf) < n:
            try:
                self._more("the rest of the body")
            except EOFError:
                raise Failed(f"the connection closed after {len(self.buf):,} of {n:,} body bytes") from None
        body, self.buf = self.buf[:n], self.buf[n:]
        return body

    def _line(self):
        while b"\r\n" not in self.buf:
            try:
                self._more("a chunk size")
            except EOFError:
                raise Failed("the connection closed in the middle of a chunked body") from None
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _chunked(self):
        body = b""
        while True:
            size = self._line().split(b";")[0].strip()
            try:
                n = int(size, 16)
            except ValueError:
                raise Failed(f"bad chunk size {size[:20]!r}") from None
            if n == 0:
                while self._line():  # trailer fields, up to an empty line
                    pass
                return body
            body += self._exactly(n)
            self._exactly(2)  # the CRLF after each chunk

    def silent(self, seconds):
        """True if nothing more arrives for `seconds` (or the server closes)."""
        if self.buf:
            return False
        self.sock.settimeout(seconds)
        try:
            return not self.sock.recv(1 << 16)
        except socket.timeout:
            return True
        except ConnectionResetError:
            return True
        finally:
            self.sock.settimeout(self.timeout)

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


def request(method, target, host, version="HTTP/1.1", extra=""):
    return f"{method} {target} {version}\r\nHost: {host}\r\n{extra}\r\n".encode("latin-1")


class Target:
    """The server under test, and what the checks need to know about it."""

    def __init__(self, url, timeout=TIMEOUT, clients=CLIENTS, duration=DURATION):
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise GradeError(f"cannot grade {url!r}: expected http://host:port/ (https is not supported)")
        if parts.path not in ("", "/") or parts.query:
            raise GradeError(f"cannot grade {url!r}: give the server's root URL, "
                             f"http://{parts.netloc}/ (the demo site must be served at /)")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.netloc = parts.netloc
        self.url = f"http://{parts.netloc}/"
        self.timeout = timeout
        self.clients = clients
        self.duration = duration
        self.files = site_files()
        self.outside = outside_files()
        self.load_result = None  # one load run, read by both "many clients" rows

    def connect(self):
        return Connection(self.host, self.port, self.timeout)

    def request(self, method, path, version="HTTP/1.1", extra=""):
        return request(method, path, self.netloc, version, extra)

    def get(self, path, method="GET"):
        """One request on a new connection, closed after the answer."""
        with self.connect() as conn:
            conn.send(self.request(method, path))
            return conn.response(head=method == "HEAD")

    def send_raw(self, data):
        """Send `data` on a new connection; the status line and headers that come back."""
        with self.connect() as conn:
            try:
                conn.send(data)
            except OSError:
                pass  # it may close before reading everything; its answer may be there anyway
            return conn.response(body=False)

    def leaked(self, body):
        """The name of an outside file whose content is in `body`, or None."""
        return next((name for name, line in self.outside.items() if line in body), None)


# The checks, one function per row. Each returns a line saying what it saw,
# or raises Failed with what was expected and what came back.

def file_matches(target, path, expected):
    response = target.get(path)
    if response.status != 200 or response.body != expected:
        raise Failed(f"GET {path}: expected 200 and its {len(expected):,} bytes, got {response.describe()}"
                     + difference(response.body, expected, response.status))
    return response


def difference(body, expected, status):
    if status != 200 or not body:
        return ""
    if len(body) == len(expected):
        first = next(i for i, (a, b) in enumerate(zip(body, expected)) if a != b)
        return f" that differ from byte {first:,} on"
    return ""


def get_index(target):
    expected = target.files["/index.html"]
    file_matches(target, "/", expected)
    return f"200 and index.html, {len(expected):,} bytes, identical"


def ascii_paths(target):
    return [path for path in target.files if "%" not in path]


def get_every_file(target):
    paths = ascii_paths(target)
    for path in paths:
        file_matches(target, path, target.files[path])
    total = sum(len(target.files[p]) for p in paths)
    return f"{len(paths)} files, {total:,} bytes, all identical"


def get_encoded_names(target):
    paths = [path for path in target.files if "%" in path]
    for path in paths:
        file_matches(target, path, target.files[path])
    names = [unquote(path[1:]) for path in paths]
    return f"{', '.join(names)}: asked for percent-encoded, identical"


def head_has_no_body(target):
    path = "/about.html"
    size = len(target.files[path])
    with target.connect() as conn:
        conn.send(target.request("HEAD", path, extra="Connection: close\r\n"))
        response = conn.response(head=True)
        length = response.headers.get("content-length")
        if response.status != 200 or length != str(size):
            raise Failed(f"HEAD {path}: expected 200 and Content-Length: {size}, got {response.status} "
                         f"{response.reason} and Content-Length: {length}")
        if not conn.silent(0.5):
            raise Failed(f"HEAD {path}: expected the headers only, but body bytes followed them")
    return f"200, Content-Length: {size}, no body"


MEDIA_TYPES = {  # path -> acceptable media types (what comes before any ";")
    "/index.html": {"text/html"},
    "/css/style.css": {"text/css"},
    "/js/site.js": {"text/javascript", "application/javascript"},
    "/images/banner.png": {"image/png"},
    "/images/logo.svg": {"image/svg+xml"},
}


def content_types(target):
    for path, allowed in MEDIA_TYPES.items():
        response = target.get(path)
        got = response.headers.get("content-type")
        if got is None or got.split(";")[0].strip().lower() not in allowed:
            raise Failed(f"{path}: expected Content-Type {' or '.join(sorted(allowed))}, got {got}")
    return f"{len(MEDIA_TYPES)} files: html, css, js, png, svg as expected"


def missing_file(target):
    response = target.get("/no-such-file.html")
    if response.status != 404:
        raise Failed(f"GET /no-such-file.html: expected 404, got {response.describe()}")
    return "404"


def keep_alive(target):
    with target.connect() as conn:
        first = get_on(conn, target, "/index.html")
        if first.headers.get("connection", "").lower() == "close":
            raise Failed("expected the connection to stay open, got Connection: close in the first answer")
        try:
            get_on(conn, target, "/about.html")
        except (Failed, OSError) as error:
            raise Failed(f"expected a second answer on the same connection; {after_first(error, first)}") from None
    return "two requests, both answered on one connection"


def pipelining(target):
    with target.connect() as conn:
        conn.send(target.request("GET", "/about.html") + target.request("GET", "/css/style.css"))
        first = expect_file(conn.response(), "/about.html", target)
        try:
            expect_file(conn.response(), "/css/style.css", target)
        except Failed as error:
            raise Failed(f"expected two answers, in order; {after_first(error, first)}") from None
    return "two requests sent together, both answered, in order"


def get_on(conn, target, path):
    conn.send(target.request("GET", path))
    return expect_file(conn.response(), path, target)


def expect_file(response, path, target):
    if response.status != 200 or response.body != target.files[path]:
        raise Failed(f"GET {path}: expected 200 and the file, got {response.describe()}")
    return response


def after_first(error, first):
    """What went wrong with the second answer, for a server whose first answer was `first`."""
    if str(error) == CLOSED_SILENTLY:
        return f"the server closed the connection after the first (an {first.version} answer)"
    return describe_error(error)


def bad_request(target, data, expected):
    try:
        response = target.send_raw(data(target))
    except Failed as error:
        raise Failed(f"expected {expected}; {error}") from None
    if response.status != expected:
        raise Failed(f"expected {expected}, got {response.status} {response.reason}".rstrip())
    return f"{response.status} {response.reason}".rstrip()


def no_escape(target, paths):
    seen = []
    for path in paths:
        response = target.get(path)
        leaked = target.leaked(response.body)
        if leaked:
            raise Failed(f"GET {path} returned the content of {leaked}, outside the root")
        if not 400 <= response.status < 500:
            raise Failed(f"GET {path}: expected a 4xx status, got {response.describe()}")
        seen.append(response.status)
    return f"{len(seen)} paths, answered {', '.join(sorted({str(s) for s in seen}))}"


# Each path aims at a file outside the root: labserver/__init__.py, beside the
# demo site's folder, or /etc/passwd.
DOT_DOT = ["/../__init__.py", "/docs/../../__init__.py", "/../../../../../../../../etc/passwd"]
ENCODED_DOT_DOT = ["/%2e%2e/__init__.py", "/%2E%2E/%2E%2E/%2E%2E/%2E%2E/%2E%2E/%2E%2E/%2E%2E/etc/passwd",
                   "/..%2f__init__.py", "/docs/%2e%2e%2f%2e%2e%2f__init__.py"]
ABSOLUTE = ["/etc/passwd", "//etc/passwd"]
if DEMO_SITE.as_posix().startswith("/"):  # os.path.join(root, "/an/absolute/path") forgets the root
    ABSOLUTE += [quote((DEMO_SITE.parent / "__init__.py").as_posix()),
                 "/" + quote((DEMO_SITE.parent / "__init__.py").as_posix())]


def largest_file(target):
    return max(target.files, key=lambda path: len(target.files[path]))


def many_clients_progress(target):
    result = load_largest_file(target)
    finished = result.per_client_requests
    starved = sum(1 for n in finished if n == 0)
    gap = result.max_gap_ms / 1000
    expected = f"expected each of {target.clients} clients to get data at least every {MAX_GAP:g} s"
    if starved:
        raise Failed(f"{expected}; {starved} finished no download in {target.duration:g} s "
                     f"(the longest wait without a byte: {gap:.1f} s)")
    if gap > MAX_GAP:
        raise Failed(f"{expected}; one waited {gap:.1f} s without a byte")
    if result.errors:
        raise Failed(f"expected no errors, got {result.errors} ({errors_of(result)})")
    return (f"{target.clients} clients, {result.requests} downloads, each client {min(finished)} or more, "
            f"longest wait without a byte {gap:.2f} s")


def many_clients_fair(target):
    result = load_largest_file(target)
    shares = f"{mb(min(result.per_client_bytes))} to {mb(max(result.per_client_bytes))} per client"
    if result.fairness is None or result.fairness < FAIRNESS or result.requests == 0:
        fairness = "nothing to share" if not result.requests else f"{result.fairness:.2f}"
        raise Failed(f"expected bytes shared fairly (Jain's index >= {FAIRNESS}), got {fairness}: {shares}")
    return f"Jain's index {result.fairness:.2f}: {shares}"


def mb(n):
    return f"{n / 1e6:.1f} MB"


def load_largest_file(target):
    """One run of the load generator, shared by the two rows that read it."""
    if target.load_result is None:
        from .load import LoadError, run

        try:
            target.load_result = run(target.url.rstrip("/") + largest_file(target), clients=target.clients,
                                     duration=target.duration, timeout=target.duration + target.timeout)
        except LoadError as error:
            target.load_result = error
    if isinstance(target.load_result, Exception):
        raise Failed(f"the load generator failed: {str(target.load_result).splitlines()[0]}")
    return target.load_result


def errors_of(result):
    kinds = {"refused": result.errors_refused, "reset": result.errors_reset,
             "timed out": result.errors_timeout, "bad status": result.errors_bad}
    return ", ".join(f"{n} {kind}" for kind, n in kinds.items() if n)


def slow_client(target, others=5):
    """One client sends a request head one byte at a time; meanwhile others ask for a page."""
    data = target.request("GET", "/index.html")
    with target.connect() as slow:
        started = threading.Event()
        stop = threading.Event()

        def trickle():
            try:
                for i in range(len(data) - 2):  # never the last CRLF: the request stays unfinished
                    slow.send(data[i:i + 1])
                    if i == 1:
                        started.set()
                    if stop.wait(SLOW_BYTE_EVERY):
                        return
            except OSError:
                pass  # the server gave up on it: allowed
            finally:
                started.set()

        thread = threading.Thread(target=trickle, name="grade-slow-client", daemon=True)
        thread.start()
        try:
            started.wait()
            times = []
            for number in range(1, others + 1):
                begin = time.perf_counter()
                try:
                    with Connection(target.host, target.port, QUICK) as conn:
                        conn.send(target.request("GET", "/index.html"))
                        response = conn.response()
                except (Failed, OSError) as error:
                    raise Failed(f"expected answers within {QUICK:g} s while a client sends one byte every "
                                 f"{SLOW_BYTE_EVERY:g} s; request {number} of {others}: "
                                 f"{describe_error(error)}") from None
                times.append(time.perf_counter() - begin)
                if response.status != 200:
                    raise Failed(f"request {number} of {others}: expected 200, got {response.describe()}")
        finally:
            stop.set()
            thread.join()
    return (f"{others} requests answered in {min(times) * 1000:.0f}-{max(times) * 1000:.0f} ms "
            f"while the slow client trickled")


def describe_error(error):
    if isinstance(error, Failed):
        return str(error)
    if isinstance(error, socket.timeout):
        return "timed out"
    if isinstance(error, OSError):
        return error.strerror or type(error).__name__
    return str(error)


# The bad requests: (row name, the bytes to send (a function of the target), status).
BAD_REQUESTS = [
    ("malformed request line -> 400",  # a space in the path: four words, not three
     lambda t: f"GET /about page.html HTTP/1.1\r\nHost: {t.netloc}\r\n\r\n".encode(), 400),
    ("HTTP/1.1 without Host -> 400", lambda t: b"GET /index.html HTTP/1.1\r\n\r\n", 400),
    ("header line without a colon -> 400", lambda t: t.request("GET", "/index.html", extra="NoColonHere\r\n"), 400),
    ("malformed version HTTP/1.x -> 400", lambda t: t.request("GET", "/index.html", "HTTP/1.x"), 400),
    ("unknown method BREW -> 501", lambda t: t.request("BREW", "/index.html"), 501),
    ("HTTP/2.0 request -> 505", lambda t: t.request("GET", "/index.html", "HTTP/2.0"), 505),
    ("100 KB request target -> 414", lambda t: t.request("GET", "/" + "a" * 100_000), 414),
]


@dataclass
class Row:
    name: str
    points: int
    run: object  # run(target) -> detail, or raise Failed


ROWS = [
    Row("GET / serves index.html", 1, get_index),
    Row("GET every file of the demo site, byte for byte", 3, get_every_file),
    Row("GET names with spaces and non-ASCII letters", 2, get_encoded_names),
    Row("HEAD: the headers of GET, no body", 2, head_has_no_body),
    Row("Content-Type of html, css, js, png, svg", 1, content_types),
    Row("missing file -> 404", 1, missing_file),
    Row("keep-alive: two requests on one connection", 2, keep_alive),
    Row("pipelining: two requests sent at once", 1, pipelining),
    *[Row(name, 1, partial(bad_request, data=data, expected=status)) for name, data, status in BAD_REQUESTS],
    Row("path traversal with ../ blocked", 2, partial(no_escape, paths=DOT_DOT)),
    Row("path traversal with %2e%2e blocked", 2, partial(no_escape, paths=ENCODED_DOT_DOT)),
    Row("absolute paths stay inside the root", 2, partial(no_escape, paths=ABSOLUTE)),
    Row("many clients on the largest file all progress", 3, many_clients_progress),
    Row("many clients on the largest file share fairly", 2, many_clients_fair),
    Row("a slow client does not block the others", 3, slow_client),
]


# The report.

@dataclass
class Check:
    name: str
    points: int
    passed: bool
    detail: str
    seconds: float = 0.0

    @property
    def earned(self):
        return self.points if self.passed else 0


NAME_WIDTH = max(len(row.name) for row in ROWS)


def format_check(check):
    result = "pass" if check.passed else "FAIL"
    return f"{result:4}  {check.earned:>2}/{check.points:<2} {check.name:{NAME_WIDTH}}  {check.detail}"


@dataclass
class Report:
    url: str
    checks: list = field(default_factory=list)
    notes: list = field(default_factory=list)  # things the student should know beyond the rows

    @property
    def score(self):
        return sum(check.earned for check in self.checks)

    @property
    def total(self):
        return sum(check.points for check in self.checks)

    @property
    def failed(self):
        """The names of the checks that did not pass."""
        return [check.name for check in self.checks if not check.passed]

    def header(self):
        return f"Grading {self.url}\n{'':4}  {'points':5} {'check':{NAME_WIDTH}}  detail"

    def footer(self):
        return "".join(f"note: {note}\n" for note in self.notes) + f"score: {self.score}/{self.total}"

    def table(self):
        return "\n".join([self.header(), *map(format_check, self.checks), self.footer()])

    def __str__(self):
        return self.table()

    def __repr__(self):
        return f"<Report {self.url} score {self.score}/{self.total}>"

    def _repr_pretty_(self, printer, cycle):  # a notebook cell ending in `report` shows the table
        printer.text(self.table())


def grade(url=None, *, cmd=None, clients=CLIENTS, duration=DURATION, timeout=TIMEOUT,
          start_timeout=START_TIMEOUT, rows=None, on_start=None, on_check=None):
    """Grade the server at `url`, or start `cmd` first (see StartedServer); return a Report.

    rows: a subset of ROWS to run (default: all of them), e.g. to rerun the
    ones that failed. on_start(report) is called once the server is known to
    be listening, and on_check(check) after each row: a live display.
    Raises GradeError if grading cannot happen (a bad URL or command, a
    server that is not there)."""
    if (url is None) == (cmd is None):
        raise GradeError("give either a URL or a command (cmd=...): exactly one of them")
    if cmd is not None:
        with StartedServer(cmd, start_timeout) as server:
            report = grade(server.url, clients=clients, duration=duration, timeout=timeout,
                           rows=rows, on_start=on_start, on_check=on_check)
            status = server.exit_status()
            if status is not None:
                report.notes.append(f"the server exited during grading (status {status})"
                                    + server.output_tail(lines=3, prefix=": "))
        return report
    target = Target(url, timeout, clients, duration)
    expect_listening(target)
    report = Report(target.url)
    if on_start is not None:
        on_start(report)
    for row in ROWS if rows is None else rows:
        check = run_row(row, target)
        report.checks.append(check)
        if on_check is not None:
            on_check(check)
    return report


def run_row(row, target):
    begin = time.perf_counter()
    try:
        passed, detail = True, row.run(target)
    except Failed as error:
        passed, detail = False, str(error)
    except OSError as error:  # sending failed: the server closed or reset the connection
        passed, detail = False, f"the connection failed: {describe_error(error)}"
    return Check(row.name, row.points, passed, detail, time.perf_counter() - begin)


def expect_listening(target):
    try:
        socket.create_connection((target.host, target.port), timeout=target.timeout).close()
    except OSError as error:
        reason = "timed out" if isinstance(error, socket.timeout) else (error.strerror or str(error))
        raise GradeError(f"nothing accepts connections at {target.host}:{target.port} ({reason}): "
                         f"start your server first, or let the grader start it with --cmd") from None


# Starting the student's server.

def free_port(host="127.0.0.1"):
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def command_words(cmd, port, root=DEMO_SITE):
    """The command as a list, with {port} and {root} filled in; `python` is this Python."""
    words = shlex.split(cmd, posix=os.name != "nt") if isinstance(cmd, str) else [str(w) for w in cmd]
    if not words:
        raise GradeError("the command is empty")
    if not any("{port}" in word for word in words):
        raise GradeError(f"the command must contain {{port}}, where the grader puts the port to listen on: {cmd!r}")
    if words[0] in ("python", "python3"):
        words[0] = sys.executable
    return [word.replace("{port}", str(port)).replace("{root}", str(root)) for word in words]


class StartedServer:
    """The student's server, started from a command line, stopped on exit.

        with StartedServer("python myserver.py --port {port}") as server:
            server.url
    """

    def __init__(self, cmd, start_timeout=START_TIMEOUT, stop_timeout=STOP_TIMEOUT, host="127.0.0.1"):
        self.cmd = cmd
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.host = host
        self.port = free_port(host)
        self.words = command_words(cmd, self.port)
        self.url = f"http://{host}:{self.port}/"
        self.process = None
        self.output = None

    def start(self):
        self.output = tempfile.TemporaryFile()  # its output, for error messages; a file never fills up
        try:
            self.process = subprocess.Popen(self.words, stdin=subprocess.DEVNULL, stdout=self.output,
                                            stderr=subprocess.STDOUT, start_new_session=os.name == "posix")
        except OSError as error:
            self.output.close()
            raise GradeError(f"cannot run {self.words[0]!r}: {error.strerror or error}") from None
        try:
            self.wait_until_listening()
        except BaseException:
            self.stop()
            self.output.close()
            raise
        return self

    def wait_until_listening(self):
        deadline = time.monotonic() + self.start_timeout
        while True:
            status = self.process.poll()
            if status is not None:
                raise GradeError(f"the server exited with status {status} before accepting connections"
                                 + self.output_tail(prefix=":\n"))
            try:
                socket.create_connection((self.host, self.port), timeout=0.5).close()
                return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise GradeError(f"the server did not accept connections on {self.host}:{self.port} within "
                                 f"{self.start_timeout:g} s: does it listen on the port the grader put in place "
                                 f"of {{port}}?" + self.output_tail(prefix="\n"))
            time.sleep(0.05)

    def stop(self):
        """Ctrl-C (SIGINT), then terminate, then kill; always reaped. Safe to call twice."""
        if self.process is None:
            return
        process, self.process = self.process, None
        for ask in [interrupt, subprocess.Popen.terminate]:
            if process.poll() is None:
                try:
                    ask(process)
                    process.wait(self.stop_timeout)
                except (subprocess.TimeoutExpired, ProcessLookupError):
                    pass
        if process.poll() is None:
            process.kill()
        process.wait()
        if os.name == "posix":  # anything it started in its session (workers) goes too
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    def exit_status(self):
        """The status it exited with on its own, or None while it runs."""
        return self.process.poll() if self.process is not None else None

    def output_tail(self, lines=10, prefix=""):
        if self.output is None or self.output.closed:
            return ""
        self.output.seek(0)
        text = "\n".join(self.output.read().decode(errors="replace").splitlines()[-lines:])
        return prefix + text if text else ""

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()
        self.output.close()


def interrupt(process):
    if os.name == "posix":
        process.send_signal(signal.SIGINT)
    else:
        process.terminate()


# The command line (labserver.cli parses the arguments).

def command(args):
    """`labserver grade`: print the rows as they finish, then the score; 0 once graded, 2 if not."""
    try:
        report = grade(args.url, cmd=args.cmd, clients=args.clients, duration=args.duration,
                       timeout=args.timeout, start_timeout=args.start_timeout,
                       on_start=lambda report: print(report.header(), flush=True),
                       on_check=lambda check: print(format_check(check), flush=True))
    except GradeError as error:
        print(f"labserver grade: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # the server (with --cmd) has been stopped on the way out
        print("labserver grade: interrupted", file=sys.stderr)
        return 130
    print(report.footer(), flush=True)
    return 0
