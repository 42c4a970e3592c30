"""Lesson 09 (HTTP by hand): an incremental HTTP/1.1 request parser with no I/O.

Bytes go in as they arrive from recv(), in chunks of any size: one byte at a
time, or several pipelined requests at once. Complete requests come out. The
parser never touches a socket, so every server model in this kit, blocking or
not, threaded or not, shares it; and a test can feed it bytes directly.

The rules come from RFC 9112 (HTTP/1.1 message syntax). Each rule that rejects
a request raises HTTPError with the status the RFC asks for. Most rejections
also close the connection: once framing is in doubt, the only safe thing is to
stop reading, or a smuggled request could hide in what looks like a body.

Trade-off: a strict parser refuses some requests that a lenient one would
guess at. Guessing is how request smuggling happens, so we refuse.
"""

import re
from dataclasses import dataclass, field

# Limits: generous for real browsers, small enough that a client cannot make
# the server buffer megabytes before it has even seen a complete request.
MAX_REQUEST_LINE = 8 * 1024
MAX_HEADER_BYTES = 32 * 1024
MAX_HEADER_FIELDS = 100
MAX_BODY = 1024 * 1024

# Methods defined by RFC 9110. A method we have never heard of gets 501; a
# known one the application does not allow gets 405 from the application.
KNOWN_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
)

TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
REQUEST_LINE = re.compile(rb"(" + TOKEN + rb") ([^\x00-\x20\x7f]+) HTTP/([0-9])\.([0-9])")
# name ":" OWS value OWS, where the value holds no control character but HTAB.
HEADER_LINE = re.compile(rb"(" + TOKEN + rb"):[ \t]*([^\x00-\x08\x0a-\x1f\x7f]*?)[ \t]*")
BAD_VALUE_CHAR = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")  # CTLs but HTAB
HOST_VALUE = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]*)(:[0-9]*)?")
ABSOLUTE_FORM = re.compile(r"(?i:https?)://([^/?#]*)([^#]*)")
CHUNK_SIZE_LINE = re.compile(rb"([0-9A-Fa-f]{1,16})[ \t]*(;[\t\x20-\x7e\x80-\xff]*)?")
HEAD_END = re.compile(rb"\r?\n\r?\n")


class HTTPError(Exception):
    """A request the server must answer with an error status.

    `close` says whether the connection must be closed after the answer:
    true whenever the request's framing can no longer be trusted.
    """

    def __init__(self, status, reason, close=True):
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason
        self.close = close


@dataclass
class Request:
    method: str
    target: str  # as sent: origin-form "/a?b" or absolute-form "http://h/a?b"
    version: tuple  # (1, 1) or (1, 0)
    headers: list  # [(lowercase name, value)] in order, values latin-1 decoded
    body: bytes = b""
    path: str = "/"  # target without scheme, authority and query, still %-encoded
    query: str = ""
    _index: dict = field(default_factory=dict, repr=False)

    def header(self, name, default=None):
        """The value of a header field; repeated fields joined with ", "."""
        values = self._index.get(name.lower())
        return ", ".join(values) if values else default

    def header_tokens(self, name):
        """A comma-separated header as a set of lowercase tokens (Connection, TE...)."""
        return {t.strip().lower() for v in self._index.get(name, ()) for t in v.split(",")} - {""}

    @property
    def keep_alive(self):
        """Whether the client wants the connection kept open (RFC 9112 section 9.3)."""
        tokens = self.header_tokens("connection")
        if "close" in tokens:  # close wins, whatever the version
            return False
        return self.version >= (1, 1) or "keep-alive" in tokens


class RequestParser:
    """Feed bytes with feed(); take complete requests with next_request().

    next_request() returns a Request, or None while more bytes are needed,
    and raises HTTPError for a request that breaks the rules. After an error
    with close=True the parser is finished: it must not be fed again.
    """

    def __init__(self):
        self._buf = bytearray()
        self._scanned = 0  # how far we already looked for the end of the head
        self._head = None  # a parsed Request whose body is still arriving
        self._body_left = 0  # Content-Length bytes still to come
        self._chunks = None  # the chunked decoder's parts, or None
        self.expects_continue = False  # head done, waiting for a 100-continue body

    def feed(self, data):
        self._buf += data

    @property
    def has_partial_request(self):
        """True if some bytes of a request have arrived but not all of them."""
        return self._head is not None or bool(self._buf.strip(b"\r\n"))

    def next_request(self):
        if self._head is None:
            self._head = self._parse_head()
            if self._head is None:
                return None
        request = self._head
        body = self._read_body(request)
        if body is None:
            return None
        request.body = body
        self._head = None
        self.expects_continue = False
        return request

    # The head: request line and header fields, up to the empty line.

    def _parse_head(self):
        buf = self._buf
        if not buf:
            return None  # the common case between two requests: nothing yet
        # RFC 9112 2.2: ignore empty lines before a request line (old clients
        # send an extra CRLF after a POST body).
        while buf[:2] == b"\r\n" or buf[:1] == b"\n":
            del buf[: 2 if buf[:1] == b"\r" else 1]
            self._scanned = 0
        end = HEAD_END.search(buf, max(0, self._scanned - 3))
        if end is None:
            self._check_incomplete_head()
            self._scanned = len(buf)
            return None
        head = bytes(buf[: end.start()])
        del buf[: end.end()]
        self._scanned = 0
        lines = head.split(b"\n")
        lines = [line[:-1] if line.endswith(b"\r") else line for line in lines]
        request = self._parse_request_line(lines[0])
        if len(head) - len(lines[0]) > MAX_HEADER_BYTES:
            raise HTTPError(431, "Request Header Fields Too Large")
        self._parse_fields(request, lines[1:])
        self._check_framing(request)
        return request

    def _check_incomplete_head(self):
        # The same limits a complete head meets, so that a request is judged
        # alike whether it arrives whole or one byte at a time.
        buf = self._buf
        line_end = _line_end(buf)
        if line_end > MAX_REQUEST_LINE:
            raise HTTPError(414, "URI Too Long")
        # A whole request line is judged at once, not when the head ends: an
        # HTTP/0.9 "GET /" or a stray line would otherwise wait for a timeout.
        # (Once: a newline before _scanned was already there last time.)
        if buf.find(b"\n") >= self._scanned:
            self._parse_request_line(bytes(buf[:line_end]))
        # Up to 3 bytes at the end may already belong to the empty line.
        if len(buf) - line_end - 3 > MAX_HEADER_BYTES:
            self._parse_request_line(bytes(buf[:line_end]))  # its errors come first, as for a whole head
            raise HTTPError(431, "Request Header Fields Too Large")

    def _parse_request_line(self, line):
        if len(line) > MAX_REQUEST_LINE:
            raise HTTPError(414, "URI Too Long")
        match = REQUEST_LINE.fullmatch(line)
        if match is None:
            raise HTTPError(400, "Bad Request: malformed request line")
        method, target, major, minor = match.groups()
        method = method.decode("ascii")
        target = target.decode("latin-1")
        if major != b"1":
            # RFC 9110 15.6.6: 505 for a major version we do not speak.
            raise HTTPError(505, "HTTP Version Not Supported")
        version = (1, 0) if minor == b"0" else (1, 1)  # 1.2+ is answered as 1.1
        request = Request(method, target, version, [])
        self._split_target(request)
        return request

    def _split_target(self, request):
        target = request.target
        if target.startswith("/"):
            path = target
        elif (absolute := ABSOLUTE_FORM.fullmatch(target)) is not None:
            # RFC 9112 3.2.2: servers must accept absolute-form targets.
            if not HOST_VALUE.fullmatch(absolute.group(1)):
                raise HTTPError(400, "Bad Request: invalid host in target")
            path = absolute.group(2) or "/"
            if not path.startswith(("/", "?")):
                raise HTTPError(400, "Bad Request: malformed target")
            path = "/" + path if path.startswith("?") else path
        elif target == "*" and request.method == "OPTIONS":
            path = "*"
        elif request.method == "CONNECT":
            path = target  # authority-form; the application refuses CONNECT
        else:
            raise HTTPError(400, "Bad Request: malformed target")
        request.path, _, request.query = path.partition("?")

    def _parse_fields(self, request, lines):
        if len(lines) > MAX_HEADER_FIELDS:
            raise HTTPError(431, "Request Header Fields Too Large")
        index = request._index
        headers = request.headers
        for line in lines:
            match = HEADER_LINE.fullmatch(line)
            if match is None:
                raise HTTPError(400, _field_error(line))
            name, value = match.groups()
            name = name.decode("ascii").lower()
            value = value.decode("latin-1")
            headers.append((name, value))
            if name in index:
                index[name].append(value)
            else:
                index[name] = [value]

    def _check_framing(self, request):
        index = request._index
        hosts = index.get("host", [])
        if len(hosts) > 1 or (request.version >= (1, 1) and not hosts):
            raise HTTPError(400, "Bad Request: need exactly one Host header")
        if hosts and not HOST_VALUE.fullmatch(hosts[0]):
            raise HTTPError(400, "Bad Request: invalid Host header")
        if request.method not in KNOWN_METHODS:
            self._body_length(request)  # still validate framing
            raise HTTPError(501, "Not Implemented", close=True)
        self._body_left = self._body_length(request)
        self.expects_continue = (
            "expect" in index
            and request.version >= (1, 1)
            and (self._body_left > 0 or self._chunks is not None)
            and "100-continue" in request.header_tokens("expect")
        )

    def _body_length(self, request):
        """How the body is framed: Content-Length, chunked, or no body (RFC 9112 6.3)."""
        index = request._index
        codings = index.get("transfer-encoding")
        lengths = index.get("content-length")
        if codings is not None:
            if lengths is not None:
                raise HTTPError(400, "Bad Request: both Content-Length and Transfer-Encoding")
            if request.version < (1, 1):
                raise HTTPError(400, "Bad Request: Transfer-Encoding in HTTP/1.0")
            codings = [c.strip().lower() for v in codings for c in v.split(",")]
            codings = [c for c in codings if c]  # empty list elements are allowed
            if codings == ["chunked"]:
                self._chunks = _ChunkedState()
                return 0
            if codings[-1:] != ["chunked"] or codings.count("chunked") > 1:
                # RFC 9112 6.3: chunked must be the final coding, once; otherwise
                # the body's end cannot be found and the connection must close.
                raise HTTPError(400, "Bad Request: chunked is not the final transfer coding")
            # Framed by chunked, but under a coding we cannot undo (gzip...): 6.1.
            raise HTTPError(501, "Not Implemented: transfer coding")
        if lengths is None:
            return 0
        values = {v.strip() for line in lengths for v in line.split(",")}
        if len(values) != 1:
            raise HTTPError(400, "Bad Request: conflicting Content-Length")
        (value,) = values
        if not value.isdigit() or not value.isascii():
            raise HTTPError(400, "Bad Request: invalid Content-Length")
        if int(value) > MAX_BODY:
            raise HTTPError(413, "Content Too Large")
        return int(value)

    # The body: always read to its end, so that it is never parsed as the
    # next request on the same connection.

    def _read_body(self, request):
        if self._chunks is not None:
            body = self._chunks.read(self._buf)
            if body is not None:
                self._chunks = None
            return body
        if len(self._buf) < self._body_left:
            return None
        body = bytes(self._buf[: self._body_left])
        del self._buf[: self._body_left]
        self._body_left = 0
        return body


def _line_end(buf):
    """Length of the first line in buf, ended or not, without its CR: the
    same number whether the line arrived whole or is still trickling in."""
    newline = buf.find(b"\n")
    end = len(buf) if newline == -1 else newline
    return end - 1 if buf[end - 1 : end] == b"\r" else end


def _field_error(line):
    """Why a header line did not match HEADER_LINE, in words (the slow path)."""
    if line[:1] in (b" ", b"\t"):
        return "Bad Request: obsolete line folding"
    if b":" in line and BAD_VALUE_CHAR.search(line.partition(b":")[2]):
        return "Bad Request: control character in header field"
    # No colon, whitespace before the colon, or a name that is not a token.
    return "Bad Request: malformed header field"


class _ChunkedState:
    """Decodes a chunked body (RFC 9112 7.1) as its bytes trickle in."""

    def __init__(self):
        self.body = bytearray()
        self.size = None  # size of the chunk being read; None: expecting a size line
        self.in_trailers = False
        self.trailer_bytes = 0

    def read(self, buf):
        """Consume what it can from buf; the whole body once complete, else None."""
        while True:
            if self.size is None or self.in_trailers:
                if _line_end(buf) > MAX_REQUEST_LINE:
                    raise HTTPError(400, "Bad Request: chunk line too long")
                newline = buf.find(b"\n")
                if newline == -1:
                    return None
                line = bytes(buf[:newline])
                del buf[: newline + 1]
                line = line[:-1] if line.endswith(b"\r") else line
                if self.in_trailers:
                    if not line:
                        return bytes(self.body)
                    self.trailer_bytes += len(line)
                    if self.trailer_bytes > MAX_HEADER_BYTES or not HEADER_LINE.fullmatch(line):
                        raise HTTPError(400, "Bad Request: malformed trailer")
                    continue
                match = CHUNK_SIZE_LINE.fullmatch(line)
                if match is None:
                    raise HTTPError(400, "Bad Request: malformed chunk size")
                self.size = int(match.group(1), 16)
                if len(self.body) + self.size > MAX_BODY:
                    raise HTTPError(413, "Content Too Large")
                if self.size == 0:
                    self.in_trailers = True
                continue
            # chunk data followed by CRLF
            if len(buf) < self.size + 1:
                return None
            data_end = self.size
            if buf[data_end : data_end + 2] == b"\r\n":
                crlf = 2
            elif buf[data_end : data_end + 1] == b"\n":
                crlf = 1
            elif len(buf) < self.size + 2 and buf[data_end : data_end + 1] == b"\r":
                return None
            else:
                raise HTTPError(400, "Bad Request: chunk data not followed by CRLF")
            self.body += buf[:data_end]
            del buf[: data_end + crlf]
            self.size = None
