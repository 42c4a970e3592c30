"""Lesson 09 (HTTP by hand): responses as data, and their bytes on the wire.

An application returns a Response: a status, header fields, and a body that is
either bytes or a slice of an open file. Serializing turns the status line and
header fields into bytes. A file body is not read here: the server streams it
(with socket.sendfile where it can), so a 1 GiB download never sits in memory.

Trade-off: the server, not the application, owns framing headers (Date,
Content-Length, Connection). That keeps every model's responses identical and
correct, at the price of an application that cannot frame bytes its own way.
"""

import html
import time
from dataclasses import dataclass, field
from email.utils import formatdate
from functools import lru_cache
from http import HTTPStatus

SERVER_NAME = "labserver"


@dataclass
class FileBody:
    """`count` bytes of an open binary file, starting at `offset`.

    Whoever ends up holding it (the server) must close() it, sent or not.
    """

    file: object
    offset: int
    count: int

    def close(self):
        self.file.close()

    def advance(self, sent):
        self.offset += sent
        self.count -= sent


@dataclass
class Delay:
    """A chunk that says: wait this long before sending what follows.

    How to wait is the server model's business: a thread sleeps, an event
    loop sets a timer and serves other clients meanwhile."""

    seconds: float


@dataclass
class Response:
    status: int
    headers: list = field(default_factory=list)  # [(name, value)]
    body: bytes = b""  # or any bytes-like object (a memoryview slice, say)
    file: FileBody = None  # instead of body, for files streamed by the server
    close: bool = False  # the server must close the connection after this
    delay: float = 0.0  # seconds to wait before sending: stands for slow I/O

    @property
    def content_length(self):
        return self.file.count if self.file is not None else len(self.body)


def reason(status):
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


_date_cache = (0, "")


def http_date(when=None):
    """An IMF-fixdate (RFC 9110 5.6.7). Formatting a date costs more than the
    rest of a response head, so the current one is made once a second and
    file times are remembered."""
    global _date_cache
    if when is not None:
        return _file_date(int(when))
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, formatdate(now, usegmt=True))
    return _date_cache[1]


@lru_cache(maxsize=4096)
def _file_date(when):
    return formatdate(when, usegmt=True)


def serialize_head(status, headers):
    """Status line and header fields, ending with the empty line."""
    lines = [f"HTTP/1.1 {status} {reason(status)}"]
    lines += [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def error_response(status, message=None, close=False, headers=()):
    """A small HTML error page, the message HTML-escaped."""
    title = f"{status} {reason(status)}"
    text = html.escape(message or reason(status))
    body = (
        f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title></head>\n"
        f"<body><h1>{title}</h1><p>{text}</p></body></html>\n"
    ).encode()
    headers = [("Content-Type", "text/html; charset=utf-8"), *headers]
    return Response(status, headers, body, close=close)
