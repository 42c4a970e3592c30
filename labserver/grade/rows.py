"""The rows of the grade table: what a complete HTTP/1.1 server must do.

Each row is one small function: it sends requests, and returns a line saying
what it saw, or raises Failed saying what was expected and what came back.
Its docstring says what the row proves, and why the lecture needs it. Rows
come in groups, each with its own score: the site, connections, bad
requests, safety (path traversal) and concurrency (concurrency.py).
"""

from dataclasses import dataclass
from functools import partial
from urllib.parse import quote, unquote

from .. import DEMO_SITE
from .client import CLOSED_SILENTLY, Failed, describe_error
from .concurrency import idle_connections, load_seconds, many_clients_fair, many_clients_progress, slow_client

ROW_SECONDS = 10.0  # a row that takes longer fails (concurrency rows get more: see ROWS)


@dataclass
class Row:
    name: str
    group: str
    points: int
    run: object  # run(target) -> a line of detail, or raise Failed
    seconds: object = ROW_SECONDS  # its deadline, or a function of the target that says it


# The site: every file exactly as it is on disk.

def get_index(target):
    """GET / serves index.html: the page a browser asks for first."""
    expected = target.files["/index.html"]
    file_matches(target, "/", expected)
    return f"200 and index.html, {len(expected):,} bytes, identical"


def get_every_file(target):
    """Every file, byte for byte: a truncated image or a page decoded and
    re-encoded is a broken site (lesson 09: bodies are bytes, framed by length)."""
    paths = [path for path in target.files if "%" not in path]
    for path in paths:
        file_matches(target, path, target.files[path])
    return f"{len(paths)} files, {sum(len(target.files[p]) for p in paths):,} bytes, all identical"


def get_encoded_names(target):
    """Names with spaces and non-ASCII letters, which browsers send
    percent-encoded as UTF-8: the server must decode the path before it opens a file."""
    paths = [path for path in target.files if "%" in path]
    for path in paths:
        file_matches(target, path, target.files[path])
    return f"{', '.join(unquote(path[1:]) for path in paths)}: asked for percent-encoded, identical"


def head_has_no_body(target):
    """HEAD gets the headers of GET and no body: a client reads no body after
    HEAD, so body bytes would be taken for the start of the next response."""
    path = "/about.html"
    size = len(target.files[path])
    with target.connect() as conn:
        conn.send(target.request("HEAD", path, extra="Connection: close\r\n"), "HEAD")
        response = conn.response()
        length = response.header("content-length")
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
    """The media types browsers go by: a stylesheet sent as text/plain is not applied."""
    for path, allowed in MEDIA_TYPES.items():
        got = target.get(path).header("content-type")
        if got is None or got.split(";")[0].strip().lower() not in allowed:
            raise Failed(f"{path}: expected Content-Type {' or '.join(sorted(allowed))}, got {got}")
    return f"{len(MEDIA_TYPES)} files: html, css, js, png, svg as expected"


def missing_file(target):
    """A file that is not there is 404, not a crash or an empty 200."""
    response = target.get("/no-such-file.html")
    if response.status != 404:
        raise Failed(f"GET /no-such-file.html: expected 404, got {response.describe()}")
    return "404"


def file_matches(target, path, expected):
    response = target.get(path)
    if response.status != 200 or response.body != expected:
        differ = ""
        if response.status == 200 and response.body and len(response.body) == len(expected):
            differ = f" that differ from byte {next(i for i, (a, b) in enumerate(zip(response.body, expected)) if a != b):,} on"
        raise Failed(f"GET {path}: expected 200 and its {len(expected):,} bytes, got {response.describe()}{differ}")
    return response


# Connections: one connection, many requests.

def keep_alive(target):
    """Two requests on one connection: browsers and the load generator reuse a
    connection (HTTP/1.1 keeps it open unless someone says close)."""
    with target.connect() as conn:
        first = get_on(conn, target, "/index.html")
        if "close" in first.header_tokens("connection"):
            raise Failed("expected the connection to stay open, got Connection: close in the first answer")
        try:
            get_on(conn, target, "/about.html")
        except (Failed, OSError) as error:
            raise Failed(f"expected a second answer on the same connection; {after_first(error, first)}") from None
    return "two requests, both answered on one connection"


def pipelining(target):
    """Two requests sent at once, answered in order: a server that reads
    "one recv() = one request" loses all but the first."""
    with target.connect() as conn:
        conn.send(target.request("GET", "/about.html") + target.request("GET", "/css/style.css"))
        conn.reader.expect("GET")
        conn.reader.expect("GET")
        first = expect_file(conn.response(), "/about.html", target)
        try:
            expect_file(conn.response(), "/css/style.css", target)
        except Failed as error:
            raise Failed(f"expected two answers, in order; {after_first(error, first)}") from None
    return "two requests sent together, both answered, in order"


def get_on(conn, target, path):
    conn.send(target.request("GET", path), "GET")
    return expect_file(conn.response(), path, target)


def expect_file(response, path, target):
    if response.status != 200 or response.body != target.files[path]:
        raise Failed(f"GET {path}: expected 200 and the file, got {response.describe()}")
    return response


def after_first(error, first):
    """What went wrong with the second answer, for a server whose first answer was `first`."""
    if str(error) == CLOSED_SILENTLY:
        return f"the server closed the connection after the first (an HTTP/{'.'.join(map(str, first.version))} answer)"
    return describe_error(error)


# Bad requests: each malformed request gets its own status, not a crash, a hang or a 200.

def bad_request(target, data, expected):
    """Lesson 09's parser rules: each row is one case your parser may miss."""
    try:
        response = target.send_raw(data(target))
    except Failed as error:
        raise Failed(f"expected {expected}; {error}") from None
    if response.status != expected:
        raise Failed(f"expected {expected}, got {response.status} {response.reason}".rstrip())
    return f"{response.status} {response.reason}".rstrip()


BAD_REQUESTS = [  # (row name, the bytes to send (a function of the target), status)
    ("malformed request line -> 400",  # a space in the path: four words, not three
     lambda t: f"GET /about page.html HTTP/1.1\r\nHost: {t.netloc}\r\n\r\n".encode(), 400),
    ("HTTP/1.1 without Host -> 400", lambda t: b"GET /index.html HTTP/1.1\r\n\r\n", 400),
    ("header line without a colon -> 400", lambda t: t.request("GET", "/index.html", extra="NoColonHere\r\n"), 400),
    ("malformed version HTTP/1.x -> 400", lambda t: t.request("GET", "/index.html", "HTTP/1.x"), 400),
    ("unknown method BREW -> 501", lambda t: t.request("BREW", "/index.html"), 501),
    ("HTTP/2.0 request -> 505", lambda t: t.request("GET", "/index.html", "HTTP/2.0"), 505),
    ("100 KB request target -> 414", lambda t: t.request("GET", "/" + "a" * 100_000), 414),
]


# Safety: no request, however it spells its path, reads a file outside the root.

def no_escape(target, paths):
    """Path traversal: the grader can only try, so it asks for files beside the
    root (labserver/__init__.py), /etc/passwd and C:\\Windows\\win.ini, and
    passes the row when every answer is a 4xx that contains none of them.
    Normalize the decoded path and check it stays below the root: filtering
    the bad spellings one by one always misses one."""
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


# Each path aims at a file outside the root: labserver/__init__.py beside the
# demo site's folder, /etc/passwd, or C:\Windows\win.ini.


def up(step):
    """Far enough up from any root: "/" and `step` eight times."""
    return "/" + step * 8


DOT_DOT = ["/../__init__.py", "/docs/../../__init__.py", up("../") + "etc/passwd",
           # what a replace("../", "") filter turns back into ../
           "/....//__init__.py", "/docs/....//....//__init__.py", "/..././__init__.py", up("....//") + "etc/passwd"]
ENCODED = ["/%2e%2e/__init__.py", "/..%2f__init__.py", "/docs/%2e%2e%2f%2e%2e%2f__init__.py", up("%2E%2E/") + "etc/passwd",
           # decoded twice, %252e becomes "." too: decode once, exactly once
           "/%252e%252e%252f__init__.py", "/%252e%252e/__init__.py", up("%252e%252e/") + "etc/passwd"]
BACKSLASH = ["/..\\__init__.py", "/docs\\..\\..\\__init__.py", "/..%5c__init__.py", "/docs/..%5c..%5c__init__.py",
             "/%2e%2e%5c__init__.py", up("..%5c") + "etc%5cpasswd", up("..\\") + "Windows\\win.ini"]
ABSOLUTE = ["/etc/passwd", "//etc/passwd", "/%2fetc%2fpasswd", "/C:/Windows/win.ini", "/C:\\Windows\\win.ini",
            "/c:%5cwindows%5cwin.ini", "/C:%2fWindows%2fwin.ini"]
if DEMO_SITE.as_posix().startswith("/"):  # os.path.join(root, "/an/absolute/path") forgets the root
    ABSOLUTE += [quote((DEMO_SITE.parent / "__init__.py").as_posix()),
                 "/" + quote((DEMO_SITE.parent / "__init__.py").as_posix())]


# The table, in order: (name, group, points, function[, deadline]).
ROWS = [
    Row("GET / serves index.html", "site", 1, get_index),
    Row("GET every file of the demo site, byte for byte", "site", 3, get_every_file),
    Row("GET names with spaces and non-ASCII letters", "site", 2, get_encoded_names),
    Row("HEAD: the headers of GET, no body", "site", 2, head_has_no_body),
    Row("Content-Type of html, css, js, png, svg", "site", 1, content_types),
    Row("missing file -> 404", "site", 1, missing_file),
    Row("keep-alive: two requests on one connection", "connections", 2, keep_alive),
    Row("pipelining: two requests sent at once", "connections", 1, pipelining),
    *[Row(name, "bad requests", 1, partial(bad_request, data=data, expected=status))
      for name, data, status in BAD_REQUESTS],
    Row("path traversal with ../ and ....// blocked", "safety", 2, partial(no_escape, paths=DOT_DOT)),
    Row("path traversal with %2e%2e, %2f and %252e blocked", "safety", 2, partial(no_escape, paths=ENCODED)),
    Row("path traversal with backslashes blocked", "safety", 1, partial(no_escape, paths=BACKSLASH)),
    Row("absolute paths and drive letters stay inside the root", "safety", 2, partial(no_escape, paths=ABSOLUTE)),
    Row("idle connections do not hold up the others", "concurrency", 2, idle_connections, 30.0),
    Row("a slow client is served without holding up the others", "concurrency", 2, slow_client, 30.0),
    Row("many clients on the largest file all progress", "concurrency", 3, many_clients_progress, load_seconds),
    Row("many clients on the largest file share fairly", "concurrency", 2, many_clients_fair, load_seconds),
]
