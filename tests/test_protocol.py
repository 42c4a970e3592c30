"""The sans-I/O HTTP/1.1 core: labserver.protocol, with no sockets at all.

Covers
- RequestParser: request line, header fields, absolute-form targets, the
  limits (414, 431, 413) and every RFC 9112 rejection (400, 501, 505), body
  framing by Content-Length and chunked (extensions, trailers), pipelining,
  and that a body is never parsed as the next request;
- Connection: exact status lines and framing headers, keep-alive rules of
  HTTP/1.0 and 1.1, `Connection: close`, when the server closes, 100-continue,
  HEAD, errors from the parser and from the application, timeouts;
- the response serializer (serialize_head, error_response, http_date);
- ResponseReader, the client's side: framing by Content-Length, chunked
  (trailers), the close; no body after HEAD or for 1xx, 204, 304; interim
  1xx responses; every rejection; a 16 MiB body streamed, not kept.

Every parser and connection case runs three ways through the `feed` fixture:
whole, one byte at a time, and split at random points. A rule that only holds
for one way the bytes can arrive is a bug.

Hypothesis fuzzes the parser with random protocol-ish bytes and with mutated
valid requests: only HTTPError may escape, each example has a hard time limit,
and how the bytes are split never changes the outcome. Generated valid
requests must round-trip, however they are split. The stdlib http.client (and
the email parser beneath it) is the independent second reading of header
fields and of every response we send; the ResponseReader must read every
generated response (and every response our Connection sends) as it does.
"""

import contextlib
import email.utils
from http import client as http_client
import io
import random
import re
import signal
import threading
import time
from http import HTTPStatus

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labserver.protocol import (
    Connection, FileBody, HTTPError, IncompleteResponse, RequestParser, Response, ResponseError, ResponseReader,
    error_response, escape_for_log, http_date, serialize_head,
)
from labserver.protocol import connection as connection_module
from labserver.protocol.reader import MAX_HEAD as READER_MAX_HEAD
from labserver.protocol.request import MAX_BODY, MAX_HEADER_BYTES, MAX_HEADER_FIELDS, MAX_REQUEST_LINE

# ---------------------------------------------------------------------------
# How bytes arrive: every case runs each way.


def whole(data):
    return [data]


def byte_by_byte(data):
    return [data[i : i + 1] for i in range(len(data))]


def random_splits(data):
    """Cut at up to 12 random points; seeded by the data, so a failure repeats."""
    rng = random.Random(data)
    cuts = sorted(rng.sample(range(1, len(data)), min(12, max(0, len(data) - 1))))
    return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)])]


FEEDS = {"whole": whole, "bytewise": byte_by_byte, "random": random_splits}


@pytest.fixture(params=FEEDS.values(), ids=FEEDS.keys())
def feed(request):
    return request.param


def http(*lines, body=b""):
    """A request from its head lines (CRLF-joined, latin-1), then the body."""
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def parse(data, feed):
    """Every complete request in data, fed in the chunks feed() makes."""
    parser = RequestParser()
    requests = []
    for chunk in feed(data):
        parser.feed(chunk)
        while (request := parser.next_request()) is not None:
            requests.append(request)
    return requests


def parse_one(data, feed):
    requests = parse(data, feed)
    assert len(requests) == 1, requests
    return requests[0]


def rejection(data, feed):
    with pytest.raises(HTTPError) as info:
        parse(data, feed)
    return info.value


@contextlib.contextmanager
def cpu_limit(seconds):
    """Raise TimeoutError after `seconds` of CPU time, so an endless loop fails
    the test instead of hanging it. CPU time, not wall time, so that a busy
    machine raises no false alarm. Nests. POSIX main thread only; elsewhere
    only Hypothesis's deadline applies, and it cannot interrupt."""
    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum, frame):
        raise TimeoutError(f"over {seconds} s of CPU time: an endless loop?")

    previous_handler = signal.signal(signal.SIGVTALRM, expire)
    outer_left, _ = signal.setitimer(signal.ITIMER_VIRTUAL, seconds)
    started = time.process_time()
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_VIRTUAL, 0)
        signal.signal(signal.SIGVTALRM, previous_handler)
        if outer_left:
            signal.setitimer(signal.ITIMER_VIRTUAL, max(outer_left - (time.process_time() - started), 0.001))


@pytest.fixture(autouse=True)
def no_endless_loops():
    with cpu_limit(60):
        yield


# ---------------------------------------------------------------------------
# Parser: valid requests


def test_simple_get(feed):
    request = parse_one(http("GET /a/b?x=1&y HTTP/1.1", "Host: example.com"), feed)
    assert (request.method, request.target, request.version) == ("GET", "/a/b?x=1&y", (1, 1))
    assert (request.path, request.query, request.body) == ("/a/b", "x=1&y", b"")
    assert request.headers == [("host", "example.com")]


def test_field_names_lowercased_values_trimmed_order_kept(feed):
    data = http("GET / HTTP/1.1", "Host: h", "X-One:  a b\t ", "x-two:\tc", "X-One: d", "Empty:")
    request = parse_one(data, feed)
    assert request.headers == [("host", "h"), ("x-one", "a b"), ("x-two", "c"), ("x-one", "d"), ("empty", "")]
    assert request.header("X-ONE") == "a b, d"
    assert request.header("missing", "default") == "default"


def test_obs_text_in_a_value_is_kept_as_latin1(feed):
    data = b"GET / HTTP/1.1\r\nHost: h\r\nX-Name: caf\xc3\xa9 \xff\r\n\r\n"
    assert parse_one(data, feed).header("x-name") == "caf\xc3\xa9 \xff"


@pytest.mark.parametrize("target, path, query", [
    ("http://example.com/a/b?x=1", "/a/b", "x=1"),
    ("http://example.com:8080", "/", ""),
    ("HTTPS://example.com?q", "/", "q"),
    ("http://[::1]:80/%7Euser/", "/%7Euser/", ""),
])
def test_absolute_form_target_is_accepted(feed, target, path, query):
    request = parse_one(http(f"GET {target} HTTP/1.1", "Host: example.com"), feed)
    assert (request.target, request.path, request.query) == (target, path, query)


def test_options_asterisk(feed):
    request = parse_one(http("OPTIONS * HTTP/1.1", "Host: h"), feed)
    assert (request.method, request.path) == ("OPTIONS", "*")


def test_empty_lines_before_a_request_line_are_ignored(feed):
    assert parse_one(b"\r\n\n\r\n" + http("GET /x HTTP/1.1", "Host: h"), feed).target == "/x"


def test_bare_lf_line_endings_are_accepted(feed):
    request = parse_one(b"GET /lf HTTP/1.1\nHost: h\nX: 1\n\n", feed)
    assert request.headers == [("host", "h"), ("x", "1")]


def test_http10_needs_no_host(feed):
    request = parse_one(http("GET / HTTP/1.0"), feed)
    assert request.version == (1, 0) and request.headers == []


def test_minor_versions_above_one_are_answered_as_11(feed):
    assert parse_one(http("GET / HTTP/1.7", "Host: h"), feed).version == (1, 1)


def test_empty_host_is_valid(feed):
    # RFC 9110 7.2: a target without an authority is sent with an empty Host.
    assert parse_one(http("GET / HTTP/1.1", "Host:"), feed).header("host") == ""


@pytest.mark.parametrize("host", ["example.com", "example.com:8080", "[::1]:80", "10.0.0.1", "a-b.c_d~"])
def test_valid_host_values(feed, host):
    assert parse_one(http("GET / HTTP/1.1", f"Host: {host}"), feed).header("host") == host


def test_content_length_body_and_pipelining(feed):
    data = (
        http("POST /one HTTP/1.1", "Host: h", "Content-Length: 5", body=b"hello")
        + http("GET /two HTTP/1.1", "Host: h")
        + http("PUT /three HTTP/1.1", "Host: h", "Content-Length: 0")
    )
    requests = parse(data, feed)
    assert [(r.method, r.target, r.body) for r in requests] == [
        ("POST", "/one", b"hello"), ("GET", "/two", b""), ("PUT", "/three", b""),
    ]


def test_body_is_never_parsed_as_the_next_request(feed):
    smuggled = http("GET /smuggled HTTP/1.1", "Host: h")
    data = (
        http("POST /form HTTP/1.1", "Host: h", f"Content-Length: {len(smuggled)}", body=smuggled)
        + http("GET /next HTTP/1.1", "Host: h")
    )
    requests = parse(data, feed)
    assert [r.target for r in requests] == ["/form", "/next"]
    assert requests[0].body == smuggled


def test_a_body_on_get_is_read_too(feed):
    data = http("GET /a HTTP/1.1", "Host: h", "Content-Length: 3", body=b"xyz") + http("GET /b HTTP/1.1", "Host: h")
    assert [(r.target, r.body) for r in parse(data, feed)] == [("/a", b"xyz"), ("/b", b"")]


@pytest.mark.parametrize("lengths", [["5, 5"], ["5", "5"], [" 5 "], ["05, 05"]])
def test_repeated_identical_content_length_is_one_length(feed, lengths):
    fields = [f"Content-Length: {v}" for v in lengths]
    assert parse_one(http("POST / HTTP/1.1", "Host: h", *fields, body=b"12345"), feed).body == b"12345"


def test_chunked_body_with_extensions_and_trailers(feed):
    body = (
        b"5\r\nhello\r\n"
        b"6;name=value;flag\r\n world\r\n"
        b"A ; quoted=\"a;b\"\r\n0123456789\r\n"
        b"0\r\nExpires: never\r\nX-Check: 1\r\n\r\n"
    )
    data = http("POST /up HTTP/1.1", "Host: h", "Transfer-Encoding: chunked", body=body)
    data += http("GET /after HTTP/1.1", "Host: h")
    first, second = parse(data, feed)
    assert first.body == b"hello world0123456789"
    assert "expires" not in dict(first.headers)  # trailers are read, then dropped
    assert second.target == "/after"


@pytest.mark.parametrize("coding", ["chunked", "Chunked", "chunked, ", " CHUNKED"])
def test_chunked_spelled_any_case_with_empty_list_elements(feed, coding):
    data = http("POST / HTTP/1.1", "Host: h", f"Transfer-Encoding: {coding}", body=b"3\r\nabc\r\n0\r\n\r\n")
    assert parse_one(data, feed).body == b"abc"


def test_chunked_with_bare_lf_and_uppercase_hex(feed):
    data = http("POST / HTTP/1.1", "Host: h", "Transfer-Encoding: chunked", body=b"1F\n" + b"x" * 31 + b"\n0\n\n")
    assert parse_one(data, feed).body == b"x" * 31


def test_chunked_body_with_smuggled_request_inside(feed):
    inner = http("GET /smuggled HTTP/1.1", "Host: h")
    body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(inner), inner)
    data = http("POST / HTTP/1.1", "Host: h", "Transfer-Encoding: chunked", body=body) + http("GET /next HTTP/1.1", "Host: h")
    assert [(r.target, r.body) for r in parse(data, feed)] == [("/", inner), ("/next", b"")]


def test_incomplete_request_waits_for_more():
    parser = RequestParser()
    parser.feed(http("POST / HTTP/1.1", "Host: h", "Content-Length: 4", body=b"ab"))
    assert parser.next_request() is None and parser.has_partial_request
    parser.feed(b"cd")
    assert parser.next_request().body == b"abcd"
    assert not parser.has_partial_request and parser.next_request() is None


def test_a_bad_request_line_is_refused_before_the_head_ends():
    # HTTP/0.9's "GET /" has no header section: without this, it would wait
    # for an empty line that never comes, until the request timeout.
    for line, status in ((b"GET /\r\n", 400), (b"GET / HTTP/2.0\r\nHost: h\r\n", 505), (b"hello\n", 400)):
        parser = RequestParser()
        parser.feed(line)
        with pytest.raises(HTTPError) as caught:
            parser.next_request()
        assert caught.value.status == status, line
    parser = RequestParser()
    for piece in (b"GET / HT", b"TP/1.1\r\n", b"Host: h\r\n"):  # good so far: wait for the rest
        parser.feed(piece)
        assert parser.next_request() is None
    parser.feed(b"\r\n")
    assert parser.next_request().target == "/"


# ---------------------------------------------------------------------------
# Parser: rejections. Each closes the connection (framing cannot be trusted).

REJECTIONS = {
    # request line
    "method not a token": (http("GE(T / HTTP/1.1", "Host: h"), 400),
    "empty method": (http(" / HTTP/1.1", "Host: h"), 400),
    "no version": (http("GET /", "Host: h"), 400),
    "version without minor": (http("GET / HTTP/1", "Host: h"), 400),
    "version in lowercase": (http("GET / http/1.1", "Host: h"), 400),
    "two-digit major": (http("GET / HTTP/11.1", "Host: h"), 400),
    "trailing garbage after version": (http("GET / HTTP/1.1x", "Host: h"), 400),
    "two spaces": (http("GET  / HTTP/1.1", "Host: h"), 400),
    "space in target": (http("GET /a b HTTP/1.1", "Host: h"), 400),
    "target not origin or absolute form": (http("GET a/b HTTP/1.1", "Host: h"), 400),
    "asterisk for GET": (http("GET * HTTP/1.1", "Host: h"), 400),
    "absolute form with one slash": (http("GET http:/h/x HTTP/1.1", "Host: h"), 400),
    "absolute form, other scheme": (http("GET ftp://h/x HTTP/1.1", "Host: h"), 400),
    "NUL in request line": (http("GET /\x00 HTTP/1.1", "Host: h"), 400),
    "bare CR in request line": (b"GET / HTTP/1.1\r\r\nHost: h\r\n\r\n", 400),
    "HTTP/2.0": (http("GET / HTTP/2.0", "Host: h"), 505),
    "HTTP/3.0": (http("GET / HTTP/3.0", "Host: h"), 505),
    "unknown method": (http("BREW /pot HTTP/1.1", "Host: h"), 501),
    "methods are case-sensitive": (http("get / HTTP/1.1", "Host: h"), 501),
    "unknown method with a body": (http("BREW / HTTP/1.1", "Host: h", "Content-Length: 3", body=b"abc"), 501),
    # header fields
    "field without colon": (http("GET / HTTP/1.1", "Host: h", "NoColon"), 400),
    "whitespace before colon": (http("GET / HTTP/1.1", "Host: h", "X-A : 1"), 400),
    "tab before colon": (http("GET / HTTP/1.1", "Host: h", "X-A\t: 1"), 400),
    "obs-fold": (http("GET / HTTP/1.1", "Host: h", "X-A: 1", " continued"), 400),
    "obs-fold with tab": (http("GET / HTTP/1.1", "Host: h", "X-A: 1", "\tcontinued"), 400),
    "whitespace before first field": (http("GET / HTTP/1.1", " Host: h"), 400),
    "empty field name": (http("GET / HTTP/1.1", "Host: h", ": x"), 400),
    "field name not a token": (http("GET / HTTP/1.1", "Host: h", "X(A): 1"), 400),
    "NUL in value": (http("GET / HTTP/1.1", "Host: h", "X: a\x00b"), 400),
    "bare CR in value": (http("GET / HTTP/1.1", "Host: h", "X: a\rb"), 400),
    "DEL in value": (http("GET / HTTP/1.1", "Host: h", "X: a\x7f"), 400),
    # Host
    "HTTP/1.1 without Host": (http("GET / HTTP/1.1"), 400),
    "absolute form still needs Host": (http("GET http://h/ HTTP/1.1"), 400),
    "two Host fields": (http("GET / HTTP/1.1", "Host: a", "Host: a"), 400),
    "two Host fields in HTTP/1.0": (http("GET / HTTP/1.0", "Host: a", "Host: b"), 400),
    "Host with a space": (http("GET / HTTP/1.1", "Host: a b"), 400),
    "Host with userinfo": (http("GET / HTTP/1.1", "Host: user@h"), 400),
    "Host with bad port": (http("GET / HTTP/1.1", "Host: h:8o"), 400),
    # Content-Length
    "Content-Length not a number": (http("POST / HTTP/1.1", "Host: h", "Content-Length: abc"), 400),
    "Content-Length negative": (http("POST / HTTP/1.1", "Host: h", "Content-Length: -1"), 400),
    "Content-Length with plus": (http("POST / HTTP/1.1", "Host: h", "Content-Length: +5"), 400),
    "Content-Length in hex": (http("POST / HTTP/1.1", "Host: h", "Content-Length: 0x5"), 400),
    "Content-Length empty": (http("POST / HTTP/1.1", "Host: h", "Content-Length:"), 400),
    "Content-Length two numbers": (http("POST / HTTP/1.1", "Host: h", "Content-Length: 5 5"), 400),
    "Content-Length non-ASCII digit": (http("POST / HTTP/1.1", "Host: h", "Content-Length: \xb2"), 400),
    "Content-Length conflicting lines": (http("POST / HTTP/1.1", "Host: h", "Content-Length: 5", "Content-Length: 6"), 400),
    "Content-Length conflicting list": (http("POST / HTTP/1.1", "Host: h", "Content-Length: 5, 6"), 400),
    "Content-Length too big": (http("POST / HTTP/1.1", "Host: h", f"Content-Length: {MAX_BODY + 1}"), 413),
    # Transfer-Encoding
    "Content-Length and Transfer-Encoding": (
        http("POST / HTTP/1.1", "Host: h", "Content-Length: 5", "Transfer-Encoding: chunked", body=b"0\r\n\r\n"), 400),
    "Transfer-Encoding and Content-Length": (
        http("POST / HTTP/1.1", "Host: h", "Transfer-Encoding: chunked", "Content-Length: 5", body=b"0\r\n\r\n"), 400),
    "Transfer-Encoding in HTTP/1.0": (http("POST / HTTP/1.0", "Transfer-Encoding: chunked", body=b"0\r\n\r\n"), 400),
    "chunked not final": (http("POST / HTTP/1.1", "Host: h", "Transfer-Encoding: chunked, gzip"), 400),
    "only gzip, so no framing": (http("POST / HTTP/1.1", "Host: h", "Transfer-Encoding: gzip"), 400),
    "chunked twice": (http("POST / HTTP/1.1", "Host: h", "Transfer-Encoding: chunked, chunked"), 400),
    "chunked twice on two lines": (
        http("POST / HTTP/1.1", "Host: h", "Transfer-Encoding: chunked", "Transfer-Encoding: chunked"), 400),
    "empty Transfer-Encoding": (http("POST / HTTP/1.1", "Host: h", "Transfer-Encoding:"), 400),
    "a coding we cannot undo": (http("POST / HTTP/1.1", "Host: h", "Transfer-Encoding: gzip, chunked"), 501),
    "a coding split over lines": (
        http("POST / HTTP/1.1", "Host: h", "Transfer-Encoding: gzip", "Transfer-Encoding: chunked"), 501),
    # chunked body
    "chunk size not hex": (http("POST / HTTP/1.1", "Host: h", "Transfer-Encoding: chunked", body=b"xyz\r\n"), 400),
    "chunk size negative": (http("POST / HTTP/1.1", "Host: h", "Transfer-Encoding: chunked", body=b"-1\r\n"), 400),
    "chunk size missing": (http("POST / HTTP/1.1", "Host: h", "Transfer-Encoding: chunked", body=b"\r\n"), 400),
    "chunk size 0x prefix": (http("POST / HTTP/1.1", "Host: h", "Transfer-Encoding: chunked", body=b"0x5\r\n"), 400),
    "chunk data too long": (
        http("POST / HTTP/1.1", "Host: h", "Transfer-Encoding: chunked", body=b"3\r\nabcd\r\n0\r\n\r\n"), 400),
    "chunk data CR then garbage": (
        http("POST / HTTP/1.1", "Host: h", "Transfer-Encoding: chunked", body=b"3\r\nabc\rX0\r\n\r\n"), 400),
    "malformed trailer": (
        http("POST / HTTP/1.1", "Host: h", "Transfer-Encoding: chunked", body=b"0\r\nNo colon\r\n\r\n"), 400),
    "obs-fold in trailer": (
        http("POST / HTTP/1.1", "Host: h", "Transfer-Encoding: chunked", body=b"0\r\nX: 1\r\n more\r\n\r\n"), 400),
    "chunked body too big": (
        http("POST / HTTP/1.1", "Host: h", "Transfer-Encoding: chunked", body=b"%x\r\n" % (MAX_BODY + 1)), 413),
    "chunk line too long": (
        http("POST / HTTP/1.1", "Host: h", "Transfer-Encoding: chunked",
             body=b"1;" + b"e" * MAX_REQUEST_LINE + b"\r\nx\r\n0\r\n\r\n"), 400),
}


@pytest.mark.parametrize("data, status", REJECTIONS.values(), ids=REJECTIONS.keys())
def test_rejections(feed, data, status):
    error = rejection(data, feed)
    assert error.status == status
    assert error.close


def test_request_line_at_the_limit_is_accepted_one_more_byte_is_414(feed):
    def request_line(length):
        filler = length - len("GET / HTTP/1.1")
        return f"GET /{'a' * filler} HTTP/1.1"

    assert len(request_line(MAX_REQUEST_LINE)) == MAX_REQUEST_LINE
    assert parse_one(http(request_line(MAX_REQUEST_LINE), "Host: h"), feed).method == "GET"
    assert rejection(http(request_line(MAX_REQUEST_LINE + 1), "Host: h"), feed).status == 414


def test_endless_request_line_is_refused_without_waiting_for_its_end():
    parser = RequestParser()
    parser.feed(b"GET /" + b"a" * MAX_REQUEST_LINE)
    with pytest.raises(HTTPError) as info:
        parser.next_request()
    assert info.value.status == 414


def test_header_section_at_the_limit_is_accepted_one_more_byte_is_431(feed):
    # The header section: from the end of the request line up to the empty line.
    def request(section_size):
        filler = section_size - len("\r\nHost: h\r\nX: ")
        return http("GET / HTTP/1.1", "Host: h", "X: " + "a" * filler)

    assert parse_one(request(MAX_HEADER_BYTES), feed).method == "GET"
    assert rejection(request(MAX_HEADER_BYTES + 1), feed).status == 431


def test_endless_header_section_is_refused_before_it_ends():
    parser = RequestParser()
    parser.feed(b"GET / HTTP/1.1\r\nHost: h\r\n")
    sent = 0
    with pytest.raises(HTTPError) as info:
        while sent <= 2 * (MAX_REQUEST_LINE + MAX_HEADER_BYTES):
            parser.feed(b"X-Filler: 0123456789abcdef\r\n")
            sent += 28
            parser.next_request()
    assert info.value.status == 431
    assert sent <= MAX_HEADER_BYTES + 64


def test_too_many_fields_is_431(feed):
    fields = [f"X-{i}: {i}" for i in range(MAX_HEADER_FIELDS - 1)]
    assert len(parse_one(http("GET / HTTP/1.1", "Host: h", *fields), feed).headers) == MAX_HEADER_FIELDS
    assert rejection(http("GET / HTTP/1.1", "Host: h", *fields, "X-Last: 1"), feed).status == 431


def test_a_bad_request_line_is_reported_before_an_oversized_header_section(feed):
    # Whole or trickled, the first rule broken decides the status.
    data = http("GET / HTTP/9.9", "Host: h", "X: " + "a" * (MAX_HEADER_BYTES + 100))
    assert rejection(data, feed).status == 505


# ---------------------------------------------------------------------------
# Header values: our reading against the stdlib's (http.client uses email).


def stdlib_fields(head_fields):
    message = http_client.parse_headers(io.BytesIO(head_fields + b"\r\n"))
    return [(name.lower(), value.rstrip(" \t")) for name, value in message.items()]


def test_field_values_match_the_stdlib_parser(feed):
    fields = b"Host: h\r\nAccept:  text/html, */*;q=0.8 \r\nX-Tab:\ta\tb\t\r\nX-Latin: caf\xe9\r\nX-Empty:\r\n"
    request = parse_one(b"GET / HTTP/1.1\r\n" + fields + b"\r\n", feed)
    assert request.headers == stdlib_fields(fields)


# ---------------------------------------------------------------------------
# Connection: exact bytes on the wire

DATE = "Thu, 01 Jan 2026 00:00:00 GMT"


@pytest.fixture(autouse=True)
def fixed_date(monkeypatch):
    """Responses carry a known Date, so whole responses can be compared byte for byte."""
    monkeypatch.setattr(connection_module, "http_date", lambda: DATE)


def echo(request):
    """Answers with what it understood: method, target, body."""
    body = f"{request.method} {request.target} {len(request.body)}\n".encode() + request.body
    return Response(200, [("Content-Type", "text/plain")], body)


def converse(data, feed=whole, app=echo):
    """Feed data to a Connection, collect everything it sends; stops once it closes."""
    conn = Connection(app)
    sent = []
    for chunk in feed(data):
        conn.feed(chunk)
        while (chunks := conn.next_response()) is not None:
            sent.extend(chunks)
        if conn.closing:
            break
    return b"".join(sent), conn


class _Wire:
    """Enough of a socket for http_client.HTTPResponse to read from bytes."""

    class _File(io.BytesIO):
        def close(self):  # HTTPResponse closes after each body; keep reading
            pass

    def __init__(self, raw):
        self.file = self._File(raw)

    def makefile(self, mode):
        return self.file


def read_responses(raw, methods):
    """Parse raw with http.client, one response per method (100 Continue skipped),
    then any left over as answers to GET. Returns (status, headers, body,
    will_close) for each."""
    wire = _Wire(raw)
    responses = []
    methods = iter(methods)
    while (method := next(methods, None)) is not None or wire.file.tell() < len(raw):
        response = http_client.HTTPResponse(wire, method=method or "GET")
        response.begin()
        responses.append((response.status, response.getheaders(), response.read(), response.will_close))
    return responses


def head_of(raw):
    head, _, _ = raw.partition(b"\r\n\r\n")
    return head.decode("latin-1").split("\r\n")


def test_get_response_exact_bytes(feed):
    raw, conn = converse(http("GET /hi HTTP/1.1", "Host: h"), feed)
    expected = (
        "HTTP/1.1 200 OK\r\n"
        f"Date: {DATE}\r\n"
        "Server: labserver\r\n"
        "Content-Type: text/plain\r\n"
        "Content-Length: 10\r\n"
        "\r\n"
        "GET /hi 0\n"
    ).encode()
    assert raw == expected
    assert not conn.closing


# Version, Connection field sent -> Connection field answered (None: none), server closes
KEEP_ALIVE_RULES = [
    ("1.1", None, None, False),
    ("1.1", "keep-alive", None, False),
    ("1.1", "close", "close", True),
    ("1.1", "Close", "close", True),
    ("1.1", "upgrade, close", "close", True),
    ("1.0", None, "close", True),
    ("1.0", "keep-alive", "keep-alive", False),
    ("1.0", "Keep-Alive", "keep-alive", False),
    ("1.0", "keep-alive, close", "close", True),
]


@pytest.mark.parametrize("version, sent, answered, closes", KEEP_ALIVE_RULES)
def test_keep_alive_rules(feed, version, sent, answered, closes):
    lines = [f"GET / HTTP/{version}", "Host: h"] + ([f"Connection: {sent}"] if sent else [])
    raw, conn = converse(http(*lines), feed)
    connection_fields = [line for line in head_of(raw) if line.lower().startswith("connection:")]
    assert connection_fields == ([f"Connection: {answered}"] if answered else [])
    assert conn.closing is closes
    # An independent client draws the same conclusion from our bytes.
    [(status, _, _, will_close)] = read_responses(raw, ["GET"])
    assert status == 200 and will_close is closes


def test_http10_keep_alive_serves_a_second_request(feed):
    data = http("GET /1 HTTP/1.0", "Connection: keep-alive") + http("GET /2 HTTP/1.0", "Connection: keep-alive")
    raw, conn = converse(data, feed)
    bodies = [body for _, _, body, _ in read_responses(raw, ["GET", "GET"])]
    assert bodies == [b"GET /1 0\n", b"GET /2 0\n"]
    assert not conn.closing


def test_pipelined_requests_are_answered_in_order(feed):
    data = (
        http("GET /1 HTTP/1.1", "Host: h")
        + http("POST /2 HTTP/1.1", "Host: h", "Content-Length: 4", body=b"four")
        + http("PUT /3 HTTP/1.1", "Host: h", "Transfer-Encoding: chunked", body=b"2;x=y\r\nab\r\n0\r\nT: 1\r\n\r\n")
        + http("HEAD /4 HTTP/1.1", "Host: h")
        + http("GET /5 HTTP/1.1", "Host: h")
    )
    raw, conn = converse(data, feed)
    responses = read_responses(raw, ["GET", "POST", "PUT", "HEAD", "GET"])
    assert [body for _, _, body, _ in responses] == [
        b"GET /1 0\n", b"POST /2 4\nfour", b"PUT /3 2\nab", b"", b"GET /5 0\n",
    ]
    assert not conn.closing


def test_nothing_is_answered_after_connection_close(feed):
    data = http("GET /1 HTTP/1.1", "Host: h", "Connection: close") + http("GET /2 HTTP/1.1", "Host: h")
    raw, conn = converse(data, feed)
    [(_, _, body, will_close)] = read_responses(raw, ["GET"])
    assert body == b"GET /1 0\n" and will_close
    assert conn.closing and conn.next_response() is None


def test_head_has_the_headers_of_get_and_no_body(feed):
    def page(request):
        return Response(200, [("Content-Type", "text/plain")], b"the page\n")

    get_raw, _ = converse(http("GET /x HTTP/1.1", "Host: h"), feed, app=page)
    head_raw, conn = converse(http("HEAD /x HTTP/1.1", "Host: h") + http("GET /y HTTP/1.1", "Host: h"), feed, app=page)
    get_head, _, get_body = get_raw.partition(b"\r\n\r\n")
    assert get_body == b"the page\n" and b"\r\nContent-Length: 9\r\n" in get_head + b"\r\n"
    assert head_raw == get_head + b"\r\n\r\n" + get_raw  # HEAD: same head, no body; then the GET
    assert not conn.closing


def test_file_body_is_passed_on_and_closed_for_head(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"x" * 100)
    files = []

    def app(request):
        files.append(FileBody(open(path, "rb"), 10, 50))
        return Response(200, [], file=files[-1])

    conn = Connection(app)
    conn.feed(http("GET / HTTP/1.1", "Host: h") + http("HEAD / HTTP/1.1", "Host: h"))
    head, body = conn.next_response()
    assert b"\r\nContent-Length: 50\r\n" in head and body is files[0] and not files[0].file.closed
    files[0].close()
    [head_only] = conn.next_response()
    assert b"\r\nContent-Length: 50\r\n" in head_only and files[1].file.closed


@pytest.mark.parametrize("status", [204, 304])
def test_no_content_length_and_no_body_for_204_and_304(feed, status):
    raw, conn = converse(http("GET / HTTP/1.1", "Host: h"), feed, app=lambda request: Response(status, [("ETag", '"x"')]))
    assert raw == f"HTTP/1.1 {status} {'No Content' if status == 204 else 'Not Modified'}\r\nDate: {DATE}\r\n" \
                  f"Server: labserver\r\nETag: \"x\"\r\n\r\n".encode()
    assert not conn.closing


# ---------------------------------------------------------------------------
# Connection: errors. Status line, Content-Length, Connection: close, then silence.


@pytest.mark.parametrize("data, status", REJECTIONS.values(), ids=REJECTIONS.keys())
def test_every_parser_error_is_framed_and_closes(data, status):
    raw, conn = converse(data + http("GET /after HTTP/1.1", "Host: h"))
    head = head_of(raw)
    assert head[0] == status_line(status)
    assert "Connection: close" in head
    [(got, _, body, will_close)] = read_responses(raw, ["GET"])  # Content-Length frames the page
    assert got == status and will_close and f"Content-Length: {len(body)}" in head
    assert conn.closing
    conn.feed(http("GET /more HTTP/1.1", "Host: h"))
    assert conn.next_response() is None


def status_line(status):
    # The reason phrase is Python's (414 and 413 were renamed in 3.13); clients ignore it.
    return f"HTTP/1.1 {status} {HTTPStatus(status).phrase}"


def test_error_status_lines(feed):
    cases = {
        http("GET /" + "a" * MAX_REQUEST_LINE + " HTTP/1.1", "Host: h"): 414,
        http("GET / HTTP/1.1", "Host: h", *[f"X{i}: 1" for i in range(MAX_HEADER_FIELDS)]): 431,
        http("GET / HTTP/2.0", "Host: h"): 505,
        http("BREW / HTTP/1.1", "Host: h"): 501,
        http("GET / HTTP/1.1"): 400,
    }
    for data, status in cases.items():
        raw, _ = converse(data, feed)
        assert head_of(raw)[0] == status_line(status)
    assert status_line(431) == "HTTP/1.1 431 Request Header Fields Too Large"


def test_application_error_is_500_and_closes(feed, caplog):
    def broken(request):
        raise RuntimeError("boom")

    raw, conn = converse(http("GET /x HTTP/1.1", "Host: h") + http("GET /y HTTP/1.1", "Host: h"), feed, app=broken)
    [(status, _, _, will_close)] = read_responses(raw, ["GET"])
    assert status == 500 and will_close and conn.closing
    assert "Connection: close" in head_of(raw)
    assert "boom" in caplog.text


def test_application_asking_to_close_gets_connection_close(feed):
    raw, conn = converse(http("GET / HTTP/1.1", "Host: h"), feed, app=lambda r: Response(200, [], b"ok", close=True))
    assert head_of(raw)[-1] == "Connection: close" and conn.closing


def test_request_body_is_consumed_when_the_app_ignores_it(feed):
    # The app refuses POST without looking at the body; the body must not
    # become the next request.
    def get_only(request):
        if request.method != "GET":
            return error_response(405, headers=[("Allow", "GET")])
        return echo(request)

    smuggled = http("GET /smuggled HTTP/1.1", "Host: h")
    data = (
        http("POST / HTTP/1.1", "Host: h", f"Content-Length: {len(smuggled)}", body=smuggled)
        + http("POST / HTTP/1.1", "Host: h", "Transfer-Encoding: chunked", body=b"%x\r\n%s\r\n0\r\n\r\n" % (len(smuggled), smuggled))
        + http("GET /next HTTP/1.1", "Host: h")
    )
    raw, conn = converse(data, feed, app=get_only)
    responses = read_responses(raw, ["POST", "POST", "GET"])
    assert [status for status, _, _, _ in responses] == [405, 405, 200]
    assert responses[2][2] == b"GET /next 0\n"
    assert not conn.closing


# ---------------------------------------------------------------------------
# Connection: 100-continue

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


@pytest.mark.parametrize("framing, body", [
    ("Content-Length: 5", b"hello"),
    ("Transfer-Encoding: chunked", b"5\r\nhello\r\n0\r\n\r\n"),
])
def test_100_continue_then_the_final_response(framing, body):
    conn = Connection(echo)
    conn.feed(http("POST /up HTTP/1.1", "Host: h", "Expect: 100-continue", framing))
    assert conn.next_response() == [CONTINUE]
    assert conn.next_response() is None  # sent once only
    *start, last = byte_by_byte(body)
    for byte in start:
        conn.feed(byte)
        assert conn.next_response() is None
    conn.feed(last)
    [(status, _, echoed, _)] = read_responses(b"".join(conn.next_response()), ["POST"])
    assert status == 200 and echoed == b"POST /up 5\nhello"


def test_100_continue_exchange_bytewise():
    conn = Connection(echo)
    sent = []
    head = http("POST /up HTTP/1.1", "Host: h", "Expect: 100-Continue", "Content-Length: 5")
    for chunk in byte_by_byte(head + b"hello" + http("POST /again HTTP/1.1", "Host: h", "Expect: 100-continue", "Content-Length: 1") + b"!"):
        conn.feed(chunk)
        while (chunks := conn.next_response()) is not None:
            sent.extend(chunks)
    raw = b"".join(sent)
    assert raw.startswith(CONTINUE)
    assert raw.count(CONTINUE) == 2  # one per request
    bodies = [body for _, _, body, _ in read_responses(raw, ["POST", "POST"])]
    assert bodies == [b"POST /up 5\nhello", b"POST /again 1\n!"]


def test_no_100_continue_for_http10():
    # RFC 9110 10.1.1: ignore the expectation in an HTTP/1.0 request; just wait for the body.
    conn = Connection(echo)
    conn.feed(http("POST / HTTP/1.0", "Expect: 100-continue", "Content-Length: 5"))
    assert conn.next_response() is None
    conn.feed(b"hello")
    assert read_responses(b"".join(conn.next_response()), ["POST"])[0][2] == b"POST / 5\nhello"


def test_no_100_continue_without_a_body():
    raw, _ = converse(http("GET / HTTP/1.1", "Host: h", "Expect: 100-continue"))
    assert raw.startswith(b"HTTP/1.1 200 OK\r\n")


def test_no_100_continue_when_the_body_came_with_the_head():
    raw, _ = converse(http("POST / HTTP/1.1", "Host: h", "Expect: 100-continue", "Content-Length: 2", body=b"ok"))
    assert not raw.startswith(b"HTTP/1.1 100")
    assert read_responses(raw, ["POST"])[0][2] == b"POST / 2\nok"


# ---------------------------------------------------------------------------
# Connection: the peer closing, timeouts


def test_peer_closing_mid_request_means_close_without_answer():
    conn = Connection(echo)
    conn.feed(b"GET / HTTP/1.1\r\nHo")
    assert conn.next_response() is None and not conn.closing
    conn.feed(b"")
    assert conn.next_response() is None and conn.closing


def test_requests_received_before_the_peer_closed_are_still_answered():
    conn = Connection(echo)
    conn.feed(http("GET /1 HTTP/1.1", "Host: h") + http("GET /2 HTTP/1.1", "Host: h"))
    conn.feed(b"")
    raw = b"".join(conn.next_response() + conn.next_response())
    assert [b for _, _, b, _ in read_responses(raw, ["GET", "GET"])] == [b"GET /1 0\n", b"GET /2 0\n"]
    assert conn.next_response() is None and conn.closing


def test_timeout_of_an_idle_connection_sends_nothing():
    conn = Connection(echo)
    conn.feed(b"\r\n")
    assert conn.timeout_response() == [] and conn.closing


def test_timeout_during_a_request_is_408_and_close():
    conn = Connection(echo)
    conn.feed(b"GET / HTTP/1.1\r\n")
    assert conn.next_response() is None
    [raw] = conn.timeout_response()
    assert head_of(raw)[0] == status_line(408) and "Connection: close" in head_of(raw)
    assert conn.closing


def test_timeout_while_the_body_is_missing_is_408():
    conn = Connection(echo)
    conn.feed(http("POST / HTTP/1.1", "Host: h", "Content-Length: 9", body=b"abc"))
    assert conn.next_response() is None
    assert head_of(conn.timeout_response()[0])[0] == status_line(408)


# ---------------------------------------------------------------------------
# The serializer and small helpers


def test_serialize_head_exact_bytes():
    assert serialize_head(404, [("A", "1"), ("B", "two words")]) == b"HTTP/1.1 404 Not Found\r\nA: 1\r\nB: two words\r\n\r\n"
    assert serialize_head(299, []) == b"HTTP/1.1 299 Unknown\r\n\r\n"


def test_error_response_escapes_its_message():
    response = error_response(400, "<script>alert(1)</script>", close=True, headers=[("Allow", "GET")])
    assert response.status == 400 and response.close
    assert b"<script>" not in response.body and b"&lt;script&gt;alert(1)&lt;/script&gt;" in response.body
    assert response.headers == [("Content-Type", "text/html; charset=utf-8"), ("Allow", "GET")]
    assert response.content_length == len(response.body)


IMF_FIXDATE = re.compile(r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d\d:\d\d:\d\d GMT")


def test_http_date_is_an_imf_fixdate():
    assert http_date(0) == "Thu, 01 Jan 1970 00:00:00 GMT"
    assert http_date(1_700_000_000.9) == "Tue, 14 Nov 2023 22:13:20 GMT"
    now = http_date()
    assert IMF_FIXDATE.fullmatch(now)
    assert abs(email.utils.parsedate_to_datetime(now).timestamp() - time.time()) < 5


def test_real_responses_carry_the_current_date(monkeypatch):
    monkeypatch.undo()  # this one test wants the real clock
    raw, _ = converse(http("GET / HTTP/1.1", "Host: h"))
    [date] = [line[6:] for line in head_of(raw) if line.startswith("Date: ")]
    assert IMF_FIXDATE.fullmatch(date)
    assert abs(email.utils.parsedate_to_datetime(date).timestamp() - time.time()) < 5


def test_file_body_advance():
    body = FileBody(io.BytesIO(b"abc"), 10, 100)
    body.advance(30)
    assert (body.offset, body.count) == (40, 70)


def test_escape_for_log_neutralizes_control_characters():
    assert escape_for_log('GET /\x1b[31m"\\\r\n\x85 HTTP/1.1') == 'GET /\\x1b[31m\\"\\\\\\x0d\\x0a\\x85 HTTP/1.1'


# ---------------------------------------------------------------------------
# Property-based: fuzzing and round trips

# Sized so that the whole file runs in about ten seconds; raise max_examples
# locally (or use a Hypothesis profile) for a longer hunt.
FUZZ = settings(max_examples=200, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
GENERATED = settings(FUZZ, max_examples=100)  # valid_requests() is slower to draw


def outcome(chunks):
    """What the parser makes of these chunks: the requests, and the error status
    that ended it (None if it just wants more bytes). Only HTTPError may escape."""
    parser = RequestParser()
    requests = []
    try:
        with cpu_limit(5):
            for chunk in chunks:
                parser.feed(chunk)
                while (request := parser.next_request()) is not None:
                    requests.append((request.method, request.target, request.version, request.headers, request.body))
    except HTTPError as error:
        assert error.close
        return requests, error.status
    return requests, None


def split_at(data, cuts):
    """data cut at these points; no empty chunks, since b"" means the peer closed."""
    cuts = sorted({c % (len(data) + 1) for c in cuts} - {0, len(data)})
    return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)])]


# Pieces of HTTP, so that random sequences often get deep into the parser.
PIECES = [
    b"GET ", b"POST ", b"HEAD ", b"BREW ", b"/", b"/a?b", b"*", b"http://h/x", b" HTTP/1.1", b" HTTP/1.0",
    b" HTTP/2.0", b"\r\n", b"\n", b"\r", b" ", b"\t", b":", b",", b";", b"\x00", b"\xff",
    b"Host: h", b"Host:", b"Content-Length: ", b"Transfer-Encoding: ", b"chunked", b"gzip",
    b"Expect: 100-continue", b"Connection: close", b"0", b"1", b"5", b"a", b"ff", b"hello", b"x=y",
]
protocolish = st.lists(st.sampled_from(PIECES), max_size=40).map(b"".join)
cut_points = st.lists(st.integers(min_value=0, max_value=10_000), max_size=12)


@FUZZ
@given(data=st.one_of(st.binary(max_size=400), protocolish), cuts=cut_points)
def test_fuzz_only_http_errors_and_split_never_matters(data, cuts):
    assert outcome(split_at(data, cuts)) == outcome([data])
    assert outcome(byte_by_byte(data)) == outcome([data])


# Valid requests, generated: the round trip, and the seeds for mutation.

TCHAR = "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
VCHAR = "".join(chr(c) for c in range(0x21, 0x7F)) + "".join(chr(c) for c in range(0x80, 0x100))
PCHAR = "abcXYZ019-._~!$&'()*+,;=:@%"
FRAMING = {"host", "content-length", "transfer-encoding", "expect", "connection"}

tokens = st.text(TCHAR, min_size=1, max_size=10)
field_values = st.builds(
    lambda words: " ".join(words), st.lists(st.text(VCHAR, min_size=1, max_size=8), max_size=3))
ows = st.sampled_from(["", " ", "\t", "  "])
fields = st.lists(
    st.tuples(tokens.filter(lambda name: name.lower() not in FRAMING), ows, field_values, ows), max_size=6)
targets = st.builds(
    lambda segments, query: "/" + "/".join(segments) + (f"?{query}" if query is not None else ""),
    st.lists(st.text(PCHAR, max_size=6), max_size=4), st.none() | st.text(PCHAR + "/?", max_size=8))


@st.composite
def valid_requests(draw):
    """(bytes on the wire, what the parser must report)."""
    method = draw(st.sampled_from(["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"]))
    target = draw(targets)
    body = draw(st.binary(max_size=300))
    framing = draw(st.sampled_from(["length", "chunked"] if body else ["none", "length", "chunked"]))
    lines = [f"{method} {target} HTTP/1.1", "Host: example.com"]
    expected_fields = [("host", "example.com")]
    for name, before, value, after in draw(fields):
        lines.append(f"{name}:{before}{value}{after}")
        expected_fields.append((name.lower(), value))
    if framing == "length":
        lines.append(f"Content-Length: {len(body)}")
        expected_fields.append(("content-length", str(len(body))))
        wire_body = body
    elif framing == "chunked":
        lines.append("Transfer-Encoding: chunked")
        expected_fields.append(("transfer-encoding", "chunked"))
        wire_body = b""
        rest = body
        while rest:
            size = draw(st.integers(1, len(rest)))
            extension = draw(st.sampled_from([b"", b";a=b", b" ; x", b';q="v"']))
            wire_body += b"%X%s\r\n%s\r\n" % (size, extension, rest[:size])
            rest = rest[size:]
        wire_body += b"0\r\n" + draw(st.sampled_from([b"", b"Trailer-One: 1\r\n", b"A: b\r\nC: d\r\n"])) + b"\r\n"
    else:
        wire_body = b""
    data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + wire_body
    return data, (method, target, (1, 1), expected_fields, body)


@GENERATED
@given(requests=st.lists(valid_requests(), min_size=1, max_size=3), cuts=cut_points)
def test_round_trip_however_it_is_split(requests, cuts):
    data = b"".join(wire for wire, _ in requests)
    expected = ([parsed for _, parsed in requests], None)
    assert outcome([data]) == expected
    assert outcome(split_at(data, cuts)) == expected


@GENERATED
@given(request=valid_requests())
def test_round_trip_byte_by_byte(request):
    data, parsed = request
    assert outcome(byte_by_byte(data)) == ([parsed], None)


@GENERATED
@given(request=valid_requests())
def test_generated_fields_read_like_the_stdlib_reads_them(request):
    data, _ = request
    head = data.split(b"\r\n\r\n", 1)[0]
    fields_only = head.split(b"\r\n", 1)[1] + b"\r\n"
    [(_, _, _, headers, _)], _ = outcome([data])
    assert headers == stdlib_fields(fields_only)


mutations = st.lists(
    st.tuples(st.sampled_from(["insert", "delete", "replace"]), st.integers(0, 10_000),
              st.sampled_from(list(b"\r\n \t:;,0aZ\x00\x7f\xff/?%-") + list(range(256)))),
    min_size=1, max_size=4)


def mutate(data, edits):
    data = bytearray(data)
    for op, position, byte in edits:
        i = position % (len(data) + 1)
        if op == "insert":
            data[i:i] = bytes([byte])
        elif op == "delete" and i < len(data):
            del data[i]
        elif i < len(data):
            data[i] = byte
    return bytes(data)


@GENERATED
@given(requests=st.lists(valid_requests(), min_size=1, max_size=2), edits=mutations, cuts=cut_points)
def test_fuzz_mutated_requests(requests, edits, cuts):
    data = mutate(b"".join(wire for wire, _ in requests), edits)
    whole_outcome = outcome([data])
    assert outcome(split_at(data, cuts)) == whole_outcome
    assert outcome(byte_by_byte(data)) == whole_outcome


@GENERATED
@given(requests=st.lists(valid_requests(), min_size=1, max_size=2), edits=mutations, cuts=cut_points)
def test_fuzz_connection_always_sends_well_framed_responses(requests, edits, cuts):
    """Whatever arrives, each response parses with http.client, and the client
    learns the connection closes exactly when the server closes it."""
    data = mutate(b"".join(wire for wire, _ in requests), edits)
    conn = Connection(echo)
    methods, sent = [], []

    def app(request):
        methods.append(request.method)
        return echo(request)

    conn.app = app
    with cpu_limit(5):
        for chunk in split_at(data, cuts):
            conn.feed(chunk)
            while (chunks := conn.next_response()) is not None:
                sent.extend(chunks)
            if conn.closing:
                break
    responses = read_responses(b"".join(sent), methods)
    assert len(responses) <= len(methods) + 1  # at most one error, from the parser
    for status, headers, body, will_close in responses[:-1]:
        assert not will_close
    if responses:
        status, headers, body, will_close = responses[-1]
        assert will_close == conn.closing
        if status >= 400:
            assert will_close and ("Connection", "close") in headers


# ---------------------------------------------------------------------------
# ResponseReader: the client's side, fed the bytes a server sends.


def resp(*lines, body=b""):
    """A response from its head lines (CRLF-joined, latin-1), then the body."""
    return http(*lines, body=body)


def read(data, feed, methods=(), close=True, on_body=None):
    """Every response in data, fed in the chunks feed() makes, then (close=True) the server's close."""
    reader = ResponseReader(on_body=on_body)
    for method in methods:
        reader.expect(method)
    responses = []
    for chunk in [*feed(data), *([b""] if close else [])]:
        reader.feed(chunk)
        while (response := reader.next_response()) is not None:
            responses.append(response)
    return responses, reader


def read_one(data, feed, **options):
    responses, _ = read(data, feed, **options)
    assert len(responses) == 1, responses
    return responses[0]


def read_error(data, feed, **options):
    with pytest.raises(ResponseError) as info:
        read(data, feed, **options)
    return info.value


def test_reader_content_length_and_pipelined_responses(feed):
    data = (resp("HTTP/1.1 200 OK", "Content-Length: 5", "Content-Type: text/plain", body=b"hello")
            + resp("HTTP/1.1 404 Not Found", "Content-Length: 0")
            + resp("HTTP/1.1 200 OK", "Content-Length: 3", body=b"abc"))
    responses, reader = read(data, feed)
    assert [(r.status, r.reason, r.body, r.framing) for r in responses] == [
        (200, "OK", b"hello", "length"), (404, "Not Found", b"", "length"), (200, "OK", b"abc", "length")]
    assert responses[0].headers == [("content-length", "5"), ("content-type", "text/plain")]
    assert responses[0].header("CONTENT-type") == "text/plain" and responses[0].header("x") is None
    assert reader.closed and not reader.has_partial_response


def test_reader_a_body_that_looks_like_a_response_is_a_body(feed):
    inner = resp("HTTP/1.1 200 OK", "Content-Length: 0")
    data = resp("HTTP/1.1 200 OK", f"Content-Length: {len(inner)}", body=inner)
    assert read_one(data, feed).body == inner


def test_reader_chunked_body_with_extensions_trailers_and_bare_lf(feed):
    body = b"5;name=value\r\nhello\r\nA\r\n, world!!!\r\n0 ; last\r\nExpires: never\r\nX-Sum: 9\r\n\r\n"
    data = resp("HTTP/1.1 200 OK", "Transfer-Encoding: gzip, Chunked", body=body)
    (response, after), _ = read(data + resp("HTTP/1.1 204 No Content"), feed, close=False)
    assert (response.body, response.framing, after.status) == (b"hello, world!!!", "chunked", 204)
    assert response.trailers == [("expires", "never"), ("x-sum", "9")]
    lf = b"HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n3\nabc\n0\n\n"
    assert read_one(lf, feed).body == b"abc"


def test_reader_without_a_length_the_body_runs_until_the_close(feed):
    response = read_one(resp("HTTP/1.1 200 OK", "Content-Type: text/plain", body=b"all of it\r\n\r\nmore"), feed)
    assert (response.body, response.framing, response.keep_alive) == (b"all of it\r\n\r\nmore", "close", False)
    # A transfer coding whose last coding is not chunked cannot be delimited either (RFC 9112 6.3).
    response = read_one(resp("HTTP/1.1 200 OK", "Transfer-Encoding: chunked, gzip", body=b"\x1f\x8b..."), feed)
    assert (response.body, response.framing) == (b"\x1f\x8b...", "close")
    responses, reader = read(resp("HTTP/1.1 200 OK", body=b"so far"), feed, close=False)
    assert responses == [] and reader.has_partial_response
    assert reader.waiting_for == "the end of the body, that is the server closing the connection (6 body bytes so far)"


def test_reader_no_body_after_head_or_for_204_and_304_whatever_the_headers_say(feed):
    data = (resp("HTTP/1.1 200 OK", "Content-Length: 1000")  # HEAD: the length of the GET
            + resp("HTTP/1.1 200 OK", "Transfer-Encoding: chunked")  # HEAD again
            + resp("HTTP/1.1 204 No Content", "Content-Length: 7")
            + resp("HTTP/1.1 304 Not Modified", "Content-Length: 7")
            + resp("HTTP/1.1 200 OK", "Content-Length: 2", body=b"ok"))
    responses, _ = read(data, feed, methods=["HEAD", "head", "GET", "GET", "GET"])
    assert [(r.method, r.status, r.body, r.framing) for r in responses] == [
        ("HEAD", 200, b"", "none"), ("HEAD", 200, b"", "none"), ("GET", 204, b"", "none"),
        ("GET", 304, b"", "none"), ("GET", 200, b"ok", "length")]


def test_reader_interim_responses_are_kept_with_the_final_one(feed):
    data = (resp("HTTP/1.1 100 Continue") + resp("HTTP/1.1 103 Early Hints", "Link: </style.css>; rel=preload")
            + resp("HTTP/1.1 201 Created", "Content-Length: 2", body=b"ok"))
    response = read_one(data, feed, methods=["POST"])
    assert (response.status, response.method, response.body) == (201, "POST", b"ok")
    assert [(r.status, r.headers) for r in response.interim] == [
        (100, []), (103, [("link", "</style.css>; rel=preload")])]


def test_reader_101_switching_protocols_is_the_final_answer(feed):
    response = read_one(resp("HTTP/1.1 101 Switching Protocols", "Upgrade: websocket"), feed)
    assert (response.status, response.body, response.framing) == (101, b"", "none")


def test_reader_repeated_equal_lengths_folding_and_odd_status_lines(feed):
    data = (resp("HTTP/1.1 200 OK", "Content-Length: 3, 3", "Content-Length: 3", "X-Long: one", " \ttwo ",
                 body=b"abc")
            + resp("HTTP/1.1 200", "Content-Length: 0")  # no reason phrase at all
            + resp("HTTP/1.1 299 ", "X-Latin: caf\xe9", "Content-Length: 0"))  # an empty one; a status we do not know
    first, second, third = read(data, feed)[0]
    assert (first.body, first.header("x-long")) == (b"abc", "one two")
    assert (second.status, second.reason) == (200, "")
    assert (third.status, third.reason, third.header("x-latin")) == (299, "", "caf\xe9")


@pytest.mark.parametrize("version, connection, keep_alive", [
    ("1.1", None, True), ("1.1", "close", False), ("1.1", "Keep-Alive, CLOSE", False),
    ("1.0", None, False), ("1.0", "keep-alive", True),
])
def test_reader_keep_alive_rules(feed, version, connection, keep_alive):
    lines = [f"HTTP/{version} 200 OK", "Content-Length: 0"] + ([f"Connection: {connection}"] if connection else [])
    assert read_one(resp(*lines), feed).keep_alive is keep_alive


@pytest.mark.parametrize("data, message", [
    (b"<html>hello</html>", "not an HTTP response (no status line)"),
    (b"HTTP/1.1 2000 OK\r\n\r\n", "malformed status line"),
    (b"HTTP/1.1 OK\r\n\r\n", "malformed status line"),
    (b"HTTP/1.1  200 OK\r\n\r\n", "malformed status line"),
    (b"HTTP/2.0 200 OK\r\n\r\n", "not an HTTP/1.x response"),
    (b"HTTP/1.1 200 OK\r\nNoColon\r\n\r\n", "malformed header field"),
    (b"HTTP/1.1 200 OK\r\nName : value\r\n\r\n", "malformed header field"),
    (b"HTTP/1.1 200 OK\r\nX: a\x00b\r\n\r\n", "malformed header field"),
    (b"HTTP/1.1 200 OK\r\n Folded: first\r\n\r\n", "malformed header field"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nhello!", "conflicting Content-Length values"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", "conflicting Content-Length"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "Content-Length is not a number"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello", "Content-Length is not a number"),
    (b"HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n", "Content-Length is not a number"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "both Content-Length"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nxyz\r\n", "malformed chunk size line"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\n", "malformed chunk size line"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"1" * 17 + b"\r\n", "malformed chunk size line"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n0\r\n\r\n", "chunk data not followed by CRLF"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nbad trailer\r\n\r\n", "malformed trailer field"),
])
def test_reader_rejections(feed, data, message):
    error = read_error(data, feed)
    assert message in str(error) and not isinstance(error, IncompleteResponse)


def test_reader_refuses_junk_at_once_without_waiting_for_a_head_end():
    reader = ResponseReader()
    reader.feed(b"HTTP")
    assert reader.next_response() is None
    reader.feed(b"S/1.1 200 OK")  # no line end yet, and never: not HTTP/
    with pytest.raises(ResponseError, match="no status line"):
        reader.next_response()


def test_reader_head_and_chunk_lines_have_limits(feed):
    start = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX: "
    at_limit = start + b"a" * (READER_MAX_HEAD - len(start))
    assert read_one(at_limit + b"\r\n\r\n", feed).status == 200
    assert "longer than 65,536 bytes" in str(read_error(at_limit + b"a\r\n\r\n", feed))
    assert "longer than 65,536 bytes" in str(read_error(at_limit + b"a" * 4, feed, close=False))
    chunk_line = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;" + b"x" * 10_000
    assert "longer than 8,192 bytes" in str(read_error(chunk_line, feed, close=False))
    endless_trailers = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n" + b"X: 1234567890\r\n" * 6000
    assert "trailer fields are longer than 65,536 bytes" in str(read_error(endless_trailers, whole, close=False))


@pytest.mark.parametrize("data, message", [
    (b"HTTP/1.1 200 OK\r\nContent-Len", "closed in the middle of the response head"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello", "closed after 5 body bytes, 5 short"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", "in the middle of a chunked body"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: 1\r\n", "in the middle of a chunked body"),
])
def test_reader_a_close_in_the_middle_is_an_incomplete_response(feed, data, message):
    error = read_error(data, feed)
    assert isinstance(error, IncompleteResponse) and message in str(error)


def test_reader_a_close_between_responses_is_no_error(feed):
    responses, reader = read(resp("HTTP/1.1 200 OK", "Content-Length: 2", body=b"ok"), feed)
    assert len(responses) == 1 and reader.closed and reader.next_response() is None
    responses, reader = read(b"", feed)
    assert responses == [] and reader.closed
    with pytest.raises(ResponseError, match="after the server closed"):
        reader.feed(b"HTTP/1.1")


def test_reader_says_what_it_waits_for():
    reader = ResponseReader()
    assert reader.waiting_for == "a response"
    reader.feed(b"HTTP/1.1 200 OK\r\n")
    assert reader.next_response() is None and reader.waiting_for == "the rest of the response head"
    assert reader.current is None  # no head yet
    reader.feed(b"Content-Length: 10\r\n\r\nabc")
    assert reader.next_response() is None and reader.waiting_for == "the rest of the body (3 of 10 bytes)"
    assert (reader.current.status, reader.current.body_length) == (200, 3)  # the head, before the body is in
    reader = ResponseReader()
    reader.feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
    assert reader.next_response() is None and reader.waiting_for == "the rest of the chunked body (3 body bytes so far)"


def test_reader_streams_a_big_body_without_keeping_it():
    """16 MiB in 64 KiB pieces: on_body sees every byte in order; nothing is kept."""
    size, piece = 16 * 1024 * 1024, bytes(range(256)) * 256
    reader = ResponseReader(on_body=lambda data: seen.append((len(data), data[:1])))
    seen = []
    reader.feed(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
    responses = []
    for _ in range(size // len(piece)):
        reader.feed(piece)
        while (response := reader.next_response()) is not None:
            responses.append(response)
    [response] = responses
    assert (response.body, response.body_length) == (b"", size)
    assert sum(n for n, _ in seen) == size and all(first == b"\x00" for _, first in seen)


# The independent second reading: http.client, on the same bytes.

def reader_view(responses):
    return [(r.status, [(n.lower(), v) for n, v in r.headers], r.body, not r.keep_alive) for r in responses]


def stdlib_view(raw, methods):
    return [(status, [(n.lower(), v.rstrip(" \t")) for n, v in headers], body, will_close)  # as stdlib_fields
            for status, headers, body, will_close in read_responses(raw, methods)]


def test_reader_reads_what_every_response_of_our_connection_says(feed):
    """Whole conversations of the server's Connection, read by both."""
    data = (http("GET /a HTTP/1.1", "Host: h") + http("HEAD /b HTTP/1.1", "Host: h")
            + http("POST /c HTTP/1.1", "Host: h", "Expect: 100-continue", "Content-Length: 3", body=b"xyz")
            + http("GET /d HTTP/1.0"))
    raw, _ = converse(data)
    methods = ["GET", "HEAD", "POST", "GET"]
    responses, _ = read(raw, feed, methods=methods)
    assert reader_view(responses) == stdlib_view(raw, methods)
    assert [r.method for r in responses] == methods


statuses = st.sampled_from([200, 201, 204, 206, 301, 304, 404, 418, 500, 503])
reasons = st.sampled_from(["OK", "Not Found", "", "Some Reason Phrase", "caf\xe9"])


@st.composite
def valid_responses(draw, last=False):
    """(bytes on the wire, the method asked, what the reader must report), as http.client sees it too."""
    method = draw(st.sampled_from(["GET", "GET", "HEAD", "POST"]))
    status = draw(statuses)
    version = draw(st.sampled_from(["1.1", "1.1", "1.0"]))
    no_body = method == "HEAD" or status in (204, 304)
    body = b"" if no_body else draw(st.binary(max_size=300))
    framing = draw(st.sampled_from(["length", "chunked"] + (["close"] if last else [])))
    if status in (204, 304):
        framing = "length"  # never chunked (RFC 9112 6.1), and http.client would read chunks there
    lines = [f"HTTP/{version} {status} {draw(reasons)}"]
    for name, before, value, after in draw(fields):
        if name.lower() not in ("keep-alive", "proxy-connection"):  # http.client reads these as keep-alive too
            lines.append(f"{name}:{before}{value}{after}")
    if draw(st.booleans()):
        lines.append(f"Connection: {draw(st.sampled_from(['close', 'keep-alive', 'Upgrade, close']))}")
    wire = b""
    if framing == "length":
        lines.append(f"Content-Length: {len(body) if not no_body else draw(st.integers(0, 999))}")
        wire = body
    elif framing == "chunked":
        lines.append("Transfer-Encoding: chunked")
        if not no_body:
            rest = body
            while rest:
                size = draw(st.integers(1, len(rest)))
                wire += b"%x%s\r\n%s\r\n" % (size, draw(st.sampled_from([b"", b";a=b"])), rest[:size])
                rest = rest[size:]
            wire += b"0\r\n" + draw(st.sampled_from([b"", b"Trailer-One: 1\r\n"])) + b"\r\n"
    else:
        wire = body
    interim = b"HTTP/1.1 100 Continue\r\n\r\n" if draw(st.booleans()) else b""
    return interim + ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + wire, method


@GENERATED
@given(conversation=st.lists(valid_responses(), max_size=3), final=valid_responses(last=True), cuts=cut_points)
def test_reader_reads_generated_responses_as_http_client_does(conversation, final, cuts):
    raw = b"".join(wire for wire, _ in [*conversation, final])
    methods = [method for _, method in [*conversation, final]]
    expected = stdlib_view(raw, methods)
    assert reader_view(read(raw, whole, methods=methods)[0]) == expected
    assert reader_view(read(raw, lambda data: split_at(data, cuts), methods=methods)[0]) == expected


def reader_outcome(chunks):
    """What the reader makes of these chunks and a close: the responses, and the
    error that ended it (its kind and its words, not the bytes it quotes, which
    are what had arrived). Only ResponseError may escape."""
    reader = ResponseReader()
    seen = []
    try:
        with cpu_limit(5):
            for chunk in [*chunks, b""]:
                reader.feed(chunk)
                while (response := reader.next_response()) is not None:
                    seen.append((response.status, response.headers, response.body, response.trailers))
    except ResponseError as error:
        return seen, type(error).__name__, re.split(r"[:(]| b['\"]", str(error))[0]
    return seen, None, None


RESPONSE_PIECES = [
    b"HTTP/1.1 ", b"HTTP/1.0 ", b"HTTP/2 ", b"200 OK", b"100 Continue", b"204 ", b"304 ", b"\r\n", b"\n", b"\r",
    b" ", b"\t", b":", b",", b";", b"\x00", b"\xff", b"Content-Length: ", b"Transfer-Encoding: ", b"chunked",
    b"gzip", b"Connection: close", b"0", b"1", b"5", b"a", b"ff", b"hello", b"X: y",
]
response_ish = st.lists(st.sampled_from(RESPONSE_PIECES), max_size=40).map(b"".join)


@FUZZ
@given(data=st.one_of(st.binary(max_size=400), response_ish), cuts=cut_points)
def test_reader_fuzz_only_response_errors_and_split_never_matters(data, cuts):
    assert reader_outcome(split_at(data, cuts)) == reader_outcome([data])
    assert reader_outcome(byte_by_byte(data)) == reader_outcome([data])


@GENERATED
@given(conversation=st.lists(valid_responses(), min_size=1, max_size=2), edits=mutations, cuts=cut_points)
def test_reader_fuzz_mutated_responses(conversation, edits, cuts):
    data = mutate(b"".join(wire for wire, _ in conversation), edits)
    whole_outcome = reader_outcome([data])
    assert reader_outcome(split_at(data, cuts)) == whole_outcome
    assert reader_outcome(byte_by_byte(data)) == whole_outcome
