"""The grader's client: raw bytes on real connections, every wait bounded.

The grader sends what no polite client would (a request without Host, a
100 KB target, a path full of ../), so it writes requests by hand; responses
are read by labserver.protocol's ResponseReader, the same reader the tests
and the benchmark use.

Every wait has two bounds. `timeout` bounds each recv(): a server that says
nothing fails the row after that long. The row's deadline bounds the whole
row: a server that sends one byte every two seconds never trips a per-recv
timeout, and without a deadline it would hold the grader forever.
"""

import socket
import time
from urllib.parse import quote, urlsplit

from .. import DEMO_SITE
from ..protocol import ResponseError, ResponseReader

CLOSED_SILENTLY = "the server closed the connection without answering"


class GradeError(Exception):
    """Grading could not happen: a bad URL or command, or a server that never came up."""


class Failed(Exception):
    """A row did not pass; the message says what was expected and what came back."""


class Closed(Failed):
    """The server closed (or reset) the connection before it answered."""


class Target:
    """The server under test, and what the rows need to know about it."""

    def __init__(self, url, timeout, clients, duration):
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
        self.deadline = float("inf")  # when the running row's time is up (time.monotonic())
        self.open = set()  # connections of the running row, closed if it overruns
        self.shared = {}  # results that several rows read (one load run)

    def request(self, method, path, version="HTTP/1.1", extra=""):
        return f"{method} {path} {version}\r\nHost: {self.netloc}\r\n{extra}\r\n".encode("latin-1")

    def connect(self, timeout=None):
        return Connection(self, self.timeout if timeout is None else timeout)

    def get(self, path, method="GET"):
        """One request on a new connection, closed after the answer."""
        with self.connect() as conn:
            conn.send(self.request(method, path), method)
            return conn.response()

    def send_raw(self, data):
        """Send `data` on a new connection; the answer's status and headers."""
        with self.connect() as conn:
            try:
                conn.send(data, "GET")
            except OSError:
                pass  # it may close before reading everything; its answer may be there anyway
            return conn.response(head_only=True)

    def leaked(self, body):
        """The name of an outside file whose content is in `body`, or None."""
        return next((name for name, line in self.outside.items() if line in body), None)

    def left(self):
        """Seconds until the row's deadline."""
        return self.deadline - time.monotonic()

    def abort(self):
        """Cut every connection of the running row (from another thread): its waits end at once."""
        for conn in list(self.open):
            conn.close()


class Connection:
    """A TCP connection to the server under test, read with a ResponseReader."""

    def __init__(self, target, timeout):
        self.target = target
        self.timeout = timeout
        self.reader = ResponseReader()
        try:
            self.sock = socket.create_connection((target.host, target.port),
                                                 timeout=max(0.01, min(timeout, target.left())))
        except socket.timeout:
            raise Failed(f"could not connect within {timeout:g} s") from None
        except OSError as error:
            raise Failed(f"could not connect: {error.strerror or error}") from None
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        target.open.add(self)

    def send(self, data, method=None):
        """Send bytes; `method`: they hold a request with this method (its answer is read next)."""
        if method is not None:
            self.reader.expect(method)
        self.sock.sendall(data)

    def response(self, head_only=False):
        """The next response, whole; head_only: as soon as its status and headers are in."""
        while True:
            try:
                response = self.reader.next_response()
            except ResponseError as error:
                raise Failed(str(error)) from None
            if response is not None:
                return response
            if head_only and self.reader.current is not None:
                return self.reader.current
            if self.reader.closed:
                raise Closed(CLOSED_SILENTLY)
            self.reader.feed(self._recv())

    def _recv(self):
        what = self.reader.waiting_for
        wait = min(self.timeout, self.target.left())
        if wait <= 0:
            raise Failed(f"the row's time was up while we waited for {what}")
        self.sock.settimeout(wait)
        try:
            return self.sock.recv(1 << 18)
        except socket.timeout:
            if wait < self.timeout:
                raise Failed(f"the row's time was up while we waited for {what}") from None
            raise Failed(f"waited {self.timeout:g} s for {what}, nothing came") from None
        except ConnectionResetError:
            raise Closed(f"the server reset the connection while we waited for {what}") from None
        except OSError as error:
            raise Failed(f"the connection failed while we waited for {what}: {error.strerror or error}") from None

    def silent(self, seconds):
        """True if nothing more arrives for `seconds` (or the server closes)."""
        self.sock.settimeout(seconds)
        try:
            return not self.sock.recv(1 << 16)
        except (socket.timeout, ConnectionResetError):
            return True

    def close(self):
        self.target.open.discard(self)
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes a recv() blocked in another thread
        except OSError:
            pass
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


# The demo site, and the files beside it that no request may read.

def site_files():
    """{url path: bytes} for every file of the demo site, in a stable order."""
    files = sorted(p for p in DEMO_SITE.rglob("*") if p.is_file())
    return {"/" + quote(p.relative_to(DEMO_SITE).as_posix()): p.read_bytes() for p in files}


def outside_files():
    """{description: a line of it} for files outside the root that must never come back."""
    candidates = [("labserver/__init__.py", DEMO_SITE.parent / "__init__.py"), ("/etc/passwd", "/etc/passwd"),
                  ("C:\\Windows\\win.ini", "C:\\Windows\\win.ini")]
    found = {}
    for name, path in candidates:
        try:
            with open(path, "rb") as file:
                found[name] = next(line.strip() for line in file if line.strip())
        except (OSError, StopIteration):
            continue
    return found


def describe_error(error):
    if isinstance(error, Failed):
        return str(error)
    if isinstance(error, socket.timeout):
        return "timed out"
    if isinstance(error, OSError):
        return error.strerror or type(error).__name__
    return str(error)
