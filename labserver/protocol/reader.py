"""Lesson 09 (HTTP by hand), the client's side: an incremental response reader with no I/O.

The mirror of RequestParser. A client feeds it whatever recv() returned, in
pieces of any size, and b"" once the server has closed; complete responses
come out. It never touches a socket, so the grader, the benchmark and the
tests all read responses one way, and a test can feed it bytes directly.

    reader = ResponseReader()
    sock.sendall(b"HEAD / HTTP/1.1\\r\\nHost: h\\r\\n\\r\\n")
    reader.expect("HEAD")                # the reader must know: HEAD gets no body
    while (response := reader.next_response()) is None:
        reader.feed(sock.recv(65536))    # b"": the server closed
    response.status, response.header("content-type"), response.body

Where a body ends (RFC 9112 6.3), in the order the reader decides:
  1. an answer to HEAD, a 1xx, 204 or 304 response has no body at all;
  2. Transfer-Encoding whose last coding is chunked: chunks, then trailer fields;
  3. Content-Length: exactly that many bytes;
  4. anything else (no length; a transfer coding but not chunked last): the
     body runs until the server closes the connection.
A 1xx response (100 Continue) is not the answer: it is kept in the `interim`
list of the final response that follows. (101 Switching Protocols is the
answer, and the last HTTP on that connection: stop reading responses then.) A big download need not be kept:
with on_body=, each piece of the body goes to that function as it arrives
and only its length is counted.

Trade-off: strict where a mistake would misframe the next response (both
Content-Length and Transfer-Encoding, lengths that disagree, a bad chunk
size, an endless head raise ResponseError, and the connection is done);
lenient where nothing is at stake, as RFC 9112 asks of recipients: bare LF
line ends, a missing reason phrase, obsolete line folding.
"""

import re
from collections import deque
from dataclasses import dataclass, field

from .request import CHUNK_SIZE_LINE, HEAD_END, HEADER_LINE

MAX_HEAD = 64 * 1024  # bytes of status line and header fields (and of trailer fields)
MAX_LINE = 8 * 1024  # bytes of a chunk-size line
STATUS_LINE = re.compile(rb"HTTP/([0-9])\.([0-9]) ([0-9]{3})(?: ([\t\x20-\x7e\x80-\xff]*))?")
NO_BODY_STATUSES = (204, 304)

# What the reader is waiting for.
HEAD, LENGTH, UNTIL_CLOSE = "head", "length", "until close"
CHUNK_SIZE, CHUNK_DATA, CHUNK_END, TRAILERS = "chunk size", "chunk data", "chunk end", "trailers"


class ResponseError(Exception):
    """Bytes that are not a well-framed HTTP/1.x response: the connection is unusable."""


class IncompleteResponse(ResponseError):
    """The server closed the connection in the middle of a response."""


@dataclass
class ReceivedResponse:
    status: int
    reason: str
    version: tuple  # (1, 1) or (1, 0)
    headers: list  # [(lowercase name, value)] in order, values latin-1 decoded
    method: str = "GET"  # of the request it answers
    body: bytes = b""  # empty when on_body= took the pieces
    body_length: int = 0  # body bytes received, kept or not
    framing: str = "none"  # how the body ended: none, length, chunked or close
    trailers: list = field(default_factory=list)  # [(lowercase name, value)] after a chunked body
    interim: list = field(default_factory=list)  # the 1xx responses that came before it

    def header(self, name, default=None):
        """The value of a header field; repeated fields joined with ", "."""
        values = [value for key, value in self.headers if key == name.lower()]
        return ", ".join(values) if values else default

    def header_tokens(self, name):
        """A comma-separated header as a set of lowercase tokens (Connection, Transfer-Encoding)."""
        return {token.strip().lower() for token in self.header(name, "").split(",")} - {""}

    @property
    def keep_alive(self):
        """Whether the connection may carry another request (RFC 9112 9.3)."""
        tokens = self.header_tokens("connection")
        if "close" in tokens or self.framing == "close":
            return False
        return self.version >= (1, 1) or "keep-alive" in tokens

    def describe(self):
        """'200 OK, 1,708 bytes': for messages."""
        return f"{self.status} {self.reason}".strip() + f", {self.body_length:,} bytes"


class ResponseReader:
    """Feed bytes with feed(); take complete responses with next_response().

    expect(method) once per request sent, in order: a response to HEAD has no
    body (requests not announced count as GET). next_response() returns a
    ReceivedResponse, or None while more bytes are needed (or after the
    server closed between responses: see `closed`), and raises ResponseError
    for bytes that break the rules, IncompleteResponse for a close in the
    middle of a response.
    """

    def __init__(self, on_body=None):
        self.on_body = on_body  # on_body(piece) for each piece of a body; then bodies are not kept
        self._buf = bytearray()
        self._scanned = 0  # how far we already looked for the end of the head
        self._methods = deque()
        self._eof = False
        self._stage = HEAD
        self._response = None  # the response whose body is arriving
        self._interim = []
        self._pieces = []
        self._left = 0  # bytes still to come of the body (LENGTH) or of the chunk (CHUNK_DATA)
        self._trailer_bytes = 0  # of the trailer fields so far

    def expect(self, method):
        """Say that a request with this method was sent (in the order they were sent)."""
        self._methods.append(method.upper())

    def feed(self, data):
        """Bytes from recv(); b"" means the server closed the connection."""
        if not data:
            self._eof = True
        elif self._eof:
            raise ResponseError("bytes fed after the server closed the connection")
        else:
            self._buf += data

    @property
    def closed(self):
        """True once the server has closed and every response it sent was taken."""
        return self._eof and self._response is None and not self._buf

    @property
    def has_partial_response(self):
        """True if some bytes of a response have arrived but not all of them."""
        return self._response is not None or bool(self._buf)

    @property
    def current(self):
        """The response whose head has arrived and whose body has not all arrived
        yet (its status and headers are known), or None."""
        return self._response

    @property
    def waiting_for(self):
        """What the next bytes should be, in words: for timeout messages."""
        response = self._response
        if response is None:
            return "the rest of the response head" if self._buf else "a response"
        got = f"{response.body_length:,} body bytes so far"
        if self._stage == LENGTH:
            return f"the rest of the body ({response.body_length:,} of {response.body_length + self._left:,} bytes)"
        if self._stage == UNTIL_CLOSE:
            return f"the end of the body, that is the server closing the connection ({got})"
        return f"the rest of the chunked body ({got})"

    def next_response(self):
        while True:
            if self._response is None and not self._start_response():
                return None
            if not self._read_body():
                return None
            response, self._response = self._response, None
            if self._pieces:
                response.body = b"".join(self._pieces)
                self._pieces = []
            if 100 <= response.status < 200 and response.status != 101:
                self._interim.append(response)  # not the answer: the final response follows
                continue
            response.interim, self._interim = self._interim, []
            return response

    # The head: status line and header fields, up to the empty line.

    def _start_response(self):
        """Parse a head if one is complete and decide how its body is framed."""
        buf = self._buf
        if buf[:5] != b"HTTP/"[:len(buf)]:
            raise ResponseError(f"not an HTTP response (no status line): it begins {bytes(buf[:40])!r}")
        end = HEAD_END.search(buf, max(0, self._scanned - 3))
        if end is None:
            if len(buf) - 3 > MAX_HEAD:  # (up to 3 bytes at the end may belong to the empty line)
                raise ResponseError(f"the response head is longer than {MAX_HEAD:,} bytes")
            if self._eof and buf:
                raise IncompleteResponse(f"the connection closed in the middle of the response head: "
                                         f"{bytes(buf[:60])!r}")
            self._scanned = len(buf)
            return False
        if end.start() > MAX_HEAD:
            raise ResponseError(f"the response head is longer than {MAX_HEAD:,} bytes")
        lines = [line[:-1] if line.endswith(b"\r") else line for line in bytes(buf[:end.start()]).split(b"\n")]
        del buf[:end.end()]
        self._scanned = 0
        response = self._status(lines[0])
        response.headers = fields(lines[1:], "header field")
        if self._methods:  # a 1xx is not the answer yet: the request stays pending
            response.method = self._methods[0] if response.status < 200 else self._methods.popleft()
        self._response = response
        self._frame(response)
        return True

    def _status(self, line):
        match = STATUS_LINE.fullmatch(line)
        if match is None:
            raise ResponseError(f"malformed status line {line[:80]!r}")
        major, minor, status, reason = match.groups()
        if major != b"1":
            raise ResponseError(f"not an HTTP/1.x response: {line[:80]!r}")
        version = (1, 0) if minor == b"0" else (1, 1)
        return ReceivedResponse(int(status), (reason or b"").decode("latin-1"), version, [])

    def _frame(self, response):
        """RFC 9112 6.3: how this response's body ends."""
        status, lengths, coding = response.status, response.header("content-length"), response.header(
            "transfer-encoding")
        if response.method == "HEAD" or status < 200 or status in NO_BODY_STATUSES:
            response.framing, self._stage = "none", HEAD
        elif coding is not None:
            if lengths is not None:
                raise ResponseError("both Content-Length and Transfer-Encoding: where the body ends is ambiguous")
            codings = [c.strip().lower() for c in coding.split(",") if c.strip()]
            if codings[-1:] == ["chunked"]:
                response.framing, self._stage = "chunked", CHUNK_SIZE
            else:  # a coding we cannot see the end of: the server closes after it
                response.framing, self._stage = "close", UNTIL_CLOSE
        elif lengths is not None:
            values = {value.strip() for value in lengths.split(",")}
            if len(values) != 1:
                raise ResponseError(f"conflicting Content-Length values: {lengths[:60]!r}")
            (value,) = values
            if not (value.isascii() and value.isdigit()):
                raise ResponseError(f"Content-Length is not a number: {value[:40]!r}")
            response.framing, self._stage, self._left = "length", LENGTH, int(value)
        else:
            response.framing, self._stage = "close", UNTIL_CLOSE

    # The body.

    def _read_body(self):
        """Take what the buffer holds of the body; True once the body is complete."""
        buf = self._buf
        while True:
            stage = self._stage
            if stage == HEAD:
                return True
            if stage in (LENGTH, CHUNK_DATA):
                take = min(self._left, len(buf))
                if take:
                    self._deliver(bytes(buf[:take]))
                    del buf[:take]
                    self._left -= take
                if self._left:
                    return self._incomplete(f"the connection closed after {self._response.body_length:,} body "
                                            f"bytes, {self._left:,} short")
                self._stage = HEAD if stage == LENGTH else CHUNK_END
                continue
            if stage == UNTIL_CLOSE:
                if buf:
                    self._deliver(bytes(buf))
                    del buf[:]
                return self._eof
            line = self._line(MAX_LINE if stage != TRAILERS else MAX_HEAD)
            if line is None:
                return self._incomplete("the connection closed in the middle of a chunked body")
            if stage == CHUNK_SIZE:
                match = CHUNK_SIZE_LINE.fullmatch(line)
                if match is None:
                    raise ResponseError(f"malformed chunk size line {line[:40]!r}")
                size = int(match.group(1), 16)
                self._stage, self._left, self._trailer_bytes = (TRAILERS, 0, 0) if size == 0 else (CHUNK_DATA, size, 0)
            elif stage == CHUNK_END:
                if line:
                    raise ResponseError(f"chunk data not followed by CRLF: {line[:40]!r}")
                self._stage = CHUNK_SIZE
            elif line:
                self._response.trailers += fields([line], "trailer field")
                self._trailer_bytes += len(line)
                if self._trailer_bytes > MAX_HEAD:
                    raise ResponseError(f"the trailer fields are longer than {MAX_HEAD:,} bytes")
            else:
                self._stage = HEAD  # the empty line after the trailer fields: done

    def _deliver(self, piece):
        self._response.body_length += len(piece)
        if self.on_body is not None:
            self.on_body(piece)
        else:
            self._pieces.append(piece)

    def _line(self, limit):
        """The next line without its CRLF (or bare LF), or None until it is complete."""
        buf = self._buf
        newline = buf.find(b"\n")
        if newline > limit or (newline < 0 and len(buf) > limit):
            raise ResponseError(f"a line in the chunked body is longer than {limit:,} bytes")
        if newline < 0:
            return None
        line = bytes(buf[:newline])
        del buf[:newline + 1]
        return line[:-1] if line.endswith(b"\r") else line

    def _incomplete(self, message):
        """False (wait for more), or IncompleteResponse if no more will come."""
        if self._eof:
            raise IncompleteResponse(message)
        return False


FOLDED = re.compile(rb"[ \t]+([^\x00-\x08\x0a-\x1f\x7f]*?)[ \t]*")


def fields(lines, what):
    """[(lowercase name, value)] from header (or trailer) lines. A line that
    starts with whitespace continues the previous value (obsolete line
    folding, RFC 9112 5.2: joined with one space)."""
    parsed = []
    for line in lines:
        folded = FOLDED.fullmatch(line) if parsed else None
        if folded is not None:
            name, value = parsed[-1]
            parsed[-1] = (name, " ".join(part for part in (value, folded.group(1).decode("latin-1")) if part))
            continue
        match = HEADER_LINE.fullmatch(line)
        if match is None:
            raise ResponseError(f"malformed {what} {line[:80]!r}")
        name, value = match.groups()
        parsed.append((name.decode("ascii").lower(), value.decode("latin-1")))
    return parsed
