"""Checks for lesson 09 (HTTP by hand): parts of the parser, rebuilt.

parse_request_line is compared with labserver's own parser on hand-picked
lines (each with the RFC's reason) and on a few hundred mutated ones: its
verdict must be the same as the core's on every one. HeadReader is fed whole
heads, single bytes and pipelined requests. split_responses gets what a real
server sent back for pipelined requests, and a few responses crafted to fool
a parser that searches the text instead of following the framing (RFC 9112
section 6.3): a 1xx, 204 or 304 has no body whatever its fields say, and a
response with no Content-Length (and no chunking) runs until the server
closes, i.e. to the end of the data.

Every call of the student's code runs under a deadline (a parsing loop that
never advances fails instead of hanging the notebook).
"""

import random

from . import CheckFailed, check, describe, expect, passed, plain, run_student
from ..experiments import send_raw

DEADLINE = 2.0  # seconds for one call: each is a few microseconds of work
from ..protocol.request import REQUEST_LINE

# Request lines the RFC accepts, with what they contain.
GOOD_LINES = [
    (b"GET / HTTP/1.1", ("GET", "/", (1, 1))),
    (b"HEAD /index.html?lang=en HTTP/1.0", ("HEAD", "/index.html?lang=en", (1, 0))),
    (b"OPTIONS * HTTP/1.1", ("OPTIONS", "*", (1, 1))),
    (b"GET http://lab.example/a%20b HTTP/1.1", ("GET", "http://lab.example/a%20b", (1, 1))),
    (b"M-SEARCH * HTTP/1.1", ("M-SEARCH", "*", (1, 1))),
    (b"BREW /pot HTTP/1.1", ("BREW", "/pot", (1, 1))),  # well-formed; the server answers 501 later
    (b"GET / HTTP/2.0", ("GET", "/", (2, 0))),  # well-formed; the server answers 505 later
    (b"GET /caf\xc3\xa9 HTTP/1.1", ("GET", "/caf\xc3\xa9", (1, 1))),  # bytes >= 0x80 are visible: latin-1
    (b"GET /\x80\xff HTTP/1.1", ("GET", "/\x80\xff", (1, 1))),
]

# Request lines the RFC's grammar rejects, and why (section 3 lets a server be lenient about whitespace; labserver is not).
BAD_LINES = [
    (b"GET  / HTTP/1.1", "two spaces: exactly one space separates the three parts"),
    (b"GET / http/1.1", "'HTTP' is case-sensitive: http/1.1 is not a version"),
    (b"GET /", "no version"),
    (b"GET / HTTP/1.1 ", "a space after the version"),
    (b" GET / HTTP/1.1", "a space before the method"),
    (b"GET /a b HTTP/1.1", "a space inside the target"),
    (b"GET\t/\tHTTP/1.1", "tabs instead of single spaces"),
    (b"GET / HTTP/1", "the version needs a major and a minor digit: HTTP/1.1"),
    (b"GET / HTTP/1.10", "one digit after the dot"),
    (b"GET / HTTP/x.1", "the version's numbers are digits"),
    (b"", "an empty line"),
    (b"/ HTTP/1.1", "no method"),
    (b"G(T / HTTP/1.1", "'(' is not allowed in a method (a token)"),
    (b"GET /\x01 HTTP/1.1", "a control character in the target"),
    (b"GET / HTTP/1.1\r", "a stray CR: the line was given without its CRLF"),
]


def core_verdict(line):
    """What labserver's parser (labserver.protocol.request) makes of a line."""
    match = REQUEST_LINE.fullmatch(line)
    if match is None:
        return None
    method, target, major, minor = match.groups()
    return method.decode("ascii"), target.decode("latin-1"), (int(major), int(minor))


def mutations(count=400, seed=5):
    """Good lines with a byte or two inserted, deleted or replaced, or lowercased."""
    rng = random.Random(seed)
    alphabet = b" \t/(:.aH1x\x01\x7f*\x80\xc3\xff"
    lines = set()
    while len(lines) < count:
        line = bytearray(rng.choice(GOOD_LINES)[0])
        for _ in range(rng.choice((1, 1, 2))):
            where = rng.randrange(len(line) + 1)
            kind = rng.choice(("insert", "delete", "replace", "lower"))
            if kind == "insert":
                line[where:where] = bytes([rng.choice(alphabet)])
            elif kind == "delete" and line:
                del line[min(where, len(line) - 1)]
            elif kind == "replace" and line:
                line[min(where, len(line) - 1)] = rng.choice(alphabet)
            elif kind == "lower":
                line = bytearray(line.lower())
        lines.add(bytes(line))
    return sorted(lines)


def _judge(parse, line):
    """("ok", result) or ("rejected", None), or CheckFailed for any other exception."""
    try:
        return "ok", run_student(parse, line, deadline=DEADLINE, name=f"parse_request_line({line!r})")
    except ValueError:
        return "rejected", None
    except CheckFailed:
        raise
    except UnicodeDecodeError as error:
        raise CheckFailed(f"parse_request_line({line!r}) raised UnicodeDecodeError ({error}): a target may "
                          f"hold any byte from 0x21 up, except 0x7f; decode it with latin-1, which never fails") from None
    except Exception as error:
        raise CheckFailed(describe(error, f"parse_request_line({line!r})") + "; raise ValueError for a malformed line") from None


@check
def parse_request_line(parse):
    for line, expected in GOOD_LINES:
        verdict, got = _judge(parse, line)
        expect(verdict == "ok", f"parse_request_line({line!r}) raised ValueError, but the line is valid")
        expect(got == expected, f"parse_request_line({line!r}) returned {got!r}; expected {expected!r}"
                                + ("; decode the target with latin-1, one character per byte" if max(line, default=0) > 0x7f else ""))
    for line, reason in BAD_LINES:
        verdict, got = _judge(parse, line)
        expect(verdict == "rejected", f"parse_request_line({line!r}) returned {got!r}; it should raise "
                                      f"ValueError: {reason}")
    tried = mutations()
    for line in tried:
        expected = core_verdict(line)
        verdict, got = _judge(parse, line)
        if expected is None:
            expect(verdict == "rejected", f"parse_request_line({line!r}) returned {got!r}; labserver's parser "
                                          f"rejects that line (RFC 9112 section 3): it should raise ValueError")
        else:
            expect(verdict == "ok", f"parse_request_line({line!r}) raised ValueError; labserver's parser "
                                    f"accepts that line as {expected!r}")
            expect(got == expected, f"parse_request_line({line!r}) returned {got!r}; expected {expected!r}")
    passed(f"parse_request_line agrees with labserver's parser on {len(GOOD_LINES) + len(BAD_LINES)} "
           f"chosen lines and {len(tried)} mutated ones")


# HeadReader

HEADS = [
    b"GET / HTTP/1.1\r\nHost: lab\r\n\r\n",
    b"HEAD /about.html HTTP/1.1\r\nHost: lab\r\nUser-Agent: check\r\nAccept: */*\r\n\r\n",
    b"GET /bytes/5 HTTP/1.0\r\n\r\n",
]


def _stub_named(name, function, *args):
    """run_student(), with the class's name in the "not written yet" message."""
    try:
        return run_student(function, *args, deadline=DEADLINE, name=f"{name}()")
    except NotImplementedError:
        raise CheckFailed(f"{name}() is not written yet: replace `raise NotImplementedError` with your code") from None
    except CheckFailed as failure:
        if "not written yet" in str(failure):
            raise CheckFailed(f"{name}() is not written yet: replace `raise NotImplementedError` with your code") from None
        raise


def _feed(reader, data):
    got = _stub_named(f"{type(reader).__name__}.feed", reader.feed, data)
    expect(got is None or isinstance(got, (bytes, bytearray)),
           f"feed() should return the head's bytes or None, not {type(got).__name__}")
    return None if got is None else bytes(got)


@check
def head_reader(HeadReader):
    a, b, c = HEADS
    def new():
        return _stub_named(f"{getattr(HeadReader, '__name__', 'HeadReader')}.__init__", HeadReader)

    got = _feed(new(), a)
    expect(got == a, f"fed one whole head {a!r}; feed() should return it (with its \\r\\n\\r\\n), got {got!r}")

    reader = new()
    for i in range(len(a)):
        got = _feed(reader, a[i:i + 1])
        if i < len(a) - 1:
            expect(got is None, f"fed {a[:i + 1]!r} one byte at a time, feed() returned {got!r}: "
                                "the head is not complete before its empty line")
    expect(got == a, f"fed {a!r} one byte at a time; the last byte should return the head, got {got!r}")

    reader = new()
    got = _feed(reader, a + b)
    expect(got == a, f"fed two pipelined heads in one chunk; feed() should return the first, got {got!r}")
    got = _feed(reader, b"")
    expect(got == b, f"then feed(b'') should return the second head, already received; got {got!r}")
    got = _feed(reader, b"")
    expect(got is None, f"both heads were handed out; feed(b'') should return None, got {got!r}")

    reader = new()
    got = _feed(reader, a + b[:7])
    expect(got == a, f"fed a head and 7 bytes of the next; feed() should return the first head, got {got!r}")
    got = _feed(reader, b[7:])
    expect(got == b, f"fed the rest of the second head; feed() should return it whole, got {got!r}")

    reader, stream, heads = new(), a + b + c, []
    for i in range(len(stream)):
        got = _feed(reader, stream[i:i + 1])
        if got is not None:
            heads.append((got, i + 1))
    ends = [len(a), len(a + b), len(stream)]
    expect([h for h, _ in heads] == [a, b, c],
           f"fed three pipelined heads one byte at a time; expected them back in order, got {[h for h, _ in heads]!r}")
    expect([at for _, at in heads] == ends, f"each head should come back at its last byte ({ends}); "
                                            f"yours came back after {[at for _, at in heads]} bytes")

    first, second = new(), new()
    _feed(first, a[:10])
    got = _feed(second, b)
    expect(got == b, f"two HeadReaders must not share their buffer: after first.feed({a[:10]!r}), "
                     f"second.feed(<a head>) returned {got!r}; create the buffer in __init__")
    passed("HeadReader finds heads whole, one byte at a time, and pipelined")


# split_responses


def _reference_split(data):
    """An independent answer, for the real server's bytes (RFC 9112 6.3, without chunked)."""
    responses = []
    while data:
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ")[1])
        length = len(rest)  # no Content-Length: until the server closed
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        if status < 200 or status in (204, 304):
            length = 0
        responses.append((status, rest[:length]))
        data = rest[length:]
    return responses


CRAFTED = [
    ("a body that contains text looking like a response head",
     b"HTTP/1.1 200 OK\r\ncontent-length: 19\r\n\r\nHTTP/1.1 200 OK\r\n\r\n"
     b"HTTP/1.1 204 No Content\r\nContent-Length:0\r\n\r\n",
     [(200, b"HTTP/1.1 200 OK\r\n\r\n"), (204, b"")],
     "the body is exactly Content-Length bytes, whatever they look like; header names are case-insensitive "
     "and the space after the colon is optional"),
    ("a header whose value mentions Content-Length",
     b"HTTP/1.1 404 Not Found\r\nX-Note: Content-Length: 99\r\nContent-Length: 4\r\n\r\nnope",
     [(404, b"nope")],
     "look at each header's name, not at the text of the head"),
    ("a response without Content-Length (a 304 has no body), then another",
     b"HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi",
     [(304, b""), (200, b"hi")],
     "a 304 never has a body (RFC 9112 section 6.3): the next response starts right after its head"),
    ("a 304 with the Content-Length of the page it stands for, then another",
     b"HTTP/1.1 304 Not Modified\r\nContent-Length: 1708\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi",
     [(304, b""), (200, b"hi")],
     "a 1xx, 204 or 304 response has no body, whatever its Content-Length says (RFC 9112 section 6.3; a 304 "
     "may carry the length of the page it stands for)"),
    ("a 100 Continue, then the final response",
     b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 4\r\n\r\ndone",
     [(100, b""), (201, b"done")],
     "a 1xx response has no body: the final response starts right after its head"),
    ("a response with no Content-Length: its body runs until the server closed",
     b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n"
     b"all of this, until the close.\r\n\r\nHTTP/1.1 200 OK\r\n\r\n(still the body)",
     [(200, b"ok"), (200, b"all of this, until the close.\r\n\r\nHTTP/1.1 200 OK\r\n\r\n(still the body)")],
     "with no Content-Length (and not a 1xx, 204 or 304), the body runs until the server closes the connection "
     "(RFC 9112 section 6.3): here, to the end of the data, whatever it looks like"),
    ("CONTENT-LENGTH in capitals, with spaces around its value",
     b"HTTP/1.1 200 OK\r\nCONTENT-LENGTH:   3  \r\n\r\nabcHTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n",
     [(200, b"abc"), (500, b"")],
     "header names are case-insensitive, and the spaces around a value are not part of it"),
    ("no responses at all", b"", [], "no bytes, no responses"),
]


def _summary(responses):
    if not isinstance(responses, list):
        return repr(responses)
    return "[" + ", ".join(f"({s!r}, {len(b)} bytes {bytes(b[:12])!r}...)" if isinstance(b, (bytes, bytearray))
                           and len(b) > 12 else repr((s, b)) for s, b in responses) + "]"


def _split(split, data, what):
    try:
        got = run_student(split, data, deadline=DEADLINE, name="split_responses()", doing=what)
    except CheckFailed:
        raise
    except Exception as error:
        raise CheckFailed(f"{what}: {describe(error, 'split_responses')}") from None
    expect(isinstance(got, list), f"{what}: split_responses should return a list, got {type(got).__name__}")
    for item in got:
        expect(isinstance(item, tuple) and len(item) == 2 and plain(item[0], int) and plain(item[1], bytes, bytearray),
               f"{what}: each response should be a tuple (status as an int, body as bytes), got {item!r:.60}")
    return [(status, bytes(body)) for status, body in got]


@check
def split_responses(split):
    from ..servers import ThreadPoolServer

    requests = (b"GET /bytes/5 HTTP/1.1\r\nHost: lab\r\n\r\n"
                b"GET /no-such-page.html HTTP/1.1\r\nHost: lab\r\n\r\n"
                b"GET /bytes/100000 HTTP/1.1\r\nHost: lab\r\n\r\n"
                b"GET /bytes/0 HTTP/1.1\r\nHost: lab\r\nConnection: close\r\n\r\n")
    with ThreadPoolServer() as server:
        data = send_raw(server.url, requests)
    expected = _reference_split(data)
    expect([s for s, _ in expected] == [200, 404, 200, 200], "the server's answer was not what the check expected: run it again")
    got = _split(split, data, "four pipelined responses from a real server")
    expect(got == expected, f"four pipelined responses from a real server: expected {_summary(expected)}, "
                            f"got {_summary(got)}")
    for what, data_, wanted, hint in CRAFTED:
        try:
            got = _split(split, data_, what)
        except CheckFailed as failure:
            if "not written yet" in str(failure):
                raise
            raise CheckFailed(f"{failure}: {hint}") from None
        expect(got == wanted, f"{what}: expected {_summary(wanted)}, got {_summary(got)}: {hint}")
    for what, cut in [("the last byte missing", data[:-1]), ("a head cut short", data[:30])]:
        try:
            got = run_student(split, cut, deadline=DEADLINE, name="split_responses()", doing=what)
        except ValueError:
            continue
        except CheckFailed:
            raise
        except Exception as error:
            raise CheckFailed(f"{what}: {describe(error, 'split_responses')}; raise ValueError for an "
                              f"incomplete response") from None
        raise CheckFailed(f"{what}: split_responses returned {_summary(got)}; it should raise ValueError: "
                          "the framing says more bytes were coming")
    passed("split_responses follows RFC 9112's framing through pipelined, tricky, bodiless, close-delimited and "
           "incomplete responses")
