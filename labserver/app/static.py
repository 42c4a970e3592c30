"""Lesson 09 (HTTP by hand): serving files from a folder, safely.

StaticFiles maps a request target to a file under a document root and answers
GET and HEAD: Content-Type from the extension, Last-Modified and ETag with
conditional requests (304), byte ranges (206/416) so a big download can resume,
index.html or a listing for folders. It reads the file system but never a
socket: it returns a Response, and a big file travels as an open FileBody that
the server streams.

Path safety is the part to study. The target is percent-decoded exactly once;
NUL and backslash are refused; ".." may not climb above the root; and the
path, with every symlink resolved, must still lie inside the resolved root.
Python's http.server has had several bugs in exactly this area.

Trade-off: resolving a path (realpath: one lstat per folder level) costs more
than the rest of a small request, so resolved paths are kept for one second.
A file that moves, or a symlink that changes, is seen up to a second late.
Small files are kept in memory too, but checked with one stat() per request,
so a changed file is never served stale; the memory they take is bounded.
"""

import html
import mimetypes
import os
import stat
import time
from functools import lru_cache
from email.utils import parsedate_to_datetime
from urllib.parse import quote, unquote_to_bytes

from ..protocol import FileBody, Response, error_response, http_date

# Files up to this size are read and sent with the head in one write, and
# kept in memory; bigger ones are streamed from disk in slices.
SMALL_FILE = 64 * 1024
CACHE_BYTES = 32 * 1024 * 1024  # at most this much small-file content in memory
# A file modified in the last second may be modified again within the file
# system's clock tick, leaving its mtime unchanged: such a file is not cached
# (git calls this "racily clean" and does the same).
RACY = 1.0

# Our own table first, so every platform (the Windows registry, a bare Linux
# without /etc/mime.types) sends the same types for the demo site.
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8", ".htm": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8", ".json": "application/json",
    ".txt": "text/plain; charset=utf-8", ".md": "text/markdown; charset=utf-8",
    ".csv": "text/csv; charset=utf-8", ".xml": "application/xml",
    ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif",
    ".svg": "image/svg+xml", ".webp": "image/webp", ".ico": "image/x-icon",
    ".pdf": "application/pdf", ".wasm": "application/wasm", ".zip": "application/zip",
    ".woff": "font/woff", ".woff2": "font/woff2", ".mp4": "video/mp4", ".webm": "video/webm",
}

ALLOWED = "GET, HEAD, OPTIONS"


RESOLVE_TTL = 1.0  # seconds a resolved path is trusted
# O_NONBLOCK: opening a named pipe (FIFO) would otherwise wait for a writer
# forever, holding the thread; regular files ignore it. O_BINARY: Windows.
OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
FILE, FOLDER, INDEX, OUTSIDE = "file", "folder", "index", "outside"  # what a path leads to


@lru_cache(maxsize=256)
def content_type(path):
    ext = os.path.splitext(path)[1].lower()
    if ext in CONTENT_TYPES:
        return CONTENT_TYPES[ext]
    guessed, _ = mimetypes.guess_type(path)
    return guessed or "application/octet-stream"


class StaticFiles:
    """An application: call it with a Request, get a Response."""

    def __init__(self, root):
        self.root = os.path.realpath(root)
        if not os.path.isdir(self.root):
            raise NotADirectoryError(f"document root is not a folder: {root}")
        self._resolved = {}  # request path -> (expiry, segments, real path, kind)
        # Small files: real path -> (stat signature, os.stat_result, content).
        # A hit costs one stat() instead of open, fstat, read and close: on a
        # 1 KiB file that is most of the system calls of a whole request.
        self._small = {}
        self._small_bytes = 0

    def __call__(self, request):
        if request.method == "OPTIONS":
            return Response(204, [("Allow", ALLOWED)])
        if request.method not in ("GET", "HEAD"):
            return error_response(405, f"{request.method} is not allowed here", headers=[("Allow", ALLOWED)])
        try:
            segments, real, kind = self.resolve(request.path)
        except ValueError as error:
            return error_response(400, str(error))
        if kind == OUTSIDE:
            return error_response(403, "That path leads outside the site.")  # a symlink out
        if kind in (FOLDER, INDEX) and not request.path.endswith("/"):
            # Built from the cleaned segments, so it always starts with exactly
            # one "/" and can never point at another host ("//evil", "/\\evil").
            location = "/" + "".join(quote(s) + "/" for s in segments)
            if request.query:
                location += "?" + request.query
            return Response(301, [("Location", location)], b"")
        if kind == FOLDER:
            return self._listing(segments, real)
        return self._file(request, real)

    def resolve(self, path):
        """(segments, real path, kind) for a request path; ValueError if it is bad.

        kind is FILE, FOLDER, INDEX (a folder with an index.html: `real` is
        that file) or OUTSIDE (symlinks lead out of the root)."""
        now = time.monotonic()
        cached = self._resolved.get(path)
        if cached is not None and cached[0] > now:
            return cached[1:]
        segments = url_segments(path)
        real = os.path.realpath(os.path.join(self.root, *segments))
        kind = FILE
        if not self._inside(real):
            kind = OUTSIDE
        elif os.path.isdir(real):
            kind = FOLDER
            # index.html may itself be a symlink: it must stay inside the root too.
            index = os.path.realpath(os.path.join(real, "index.html"))
            if os.path.isfile(index):
                real, kind = index, INDEX if self._inside(index) else OUTSIDE
        if len(self._resolved) > 10_000:  # bound the memory a scan of many URLs can take
            self._resolved.clear()
        self._resolved[path] = (now + RESOLVE_TTL, segments, real, kind)
        return segments, real, kind

    def _inside(self, real):
        return real == self.root or real.startswith(self.root + os.sep)

    def _listing(self, segments, real):
        try:
            names = sorted(os.listdir(real))
        except OSError:
            return error_response(403, "This folder cannot be listed.")
        title = html.escape("/" + "".join(s + "/" for s in segments))
        items = []
        for name in names:
            slash = "/" if os.path.isdir(os.path.join(real, name)) else ""
            # A name that is not UTF-8 comes as surrogates: keep its bytes in the link.
            items.append(f'<li><a href="{quote(name, errors="surrogateescape")}{slash}">{html.escape(name)}{slash}</a></li>')
        body = (
            f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>Index of {title}</title></head>\n'
            f"<body><h1>Index of {title}</h1>\n<ul>\n" + "\n".join(items) + "\n</ul></body></html>\n"
        ).encode("utf-8", "surrogateescape")
        return Response(200, [("Content-Type", "text/html; charset=utf-8")], body)

    def _file(self, request, real):
        cached = self._small.get(real)
        if cached is not None:
            try:
                if _signature(os.stat(real)) == cached[0]:
                    return self._file_response(request, real, cached[1], cached[2])
            except OSError:
                pass  # gone or unreadable now: the slow path gives the right error
            self._forget(real)
        try:
            fd = os.open(real, OPEN_FLAGS)
        except FileNotFoundError:
            return error_response(404, "There is no such page here.")
        except (PermissionError, IsADirectoryError):
            return error_response(403, "That file cannot be read.")
        except OSError:
            return error_response(404, "There is no such page here.")
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):  # a device, a pipe, a socket
                os.close(fd)
                return error_response(403, "Only regular files are served.")
            if st.st_size > SMALL_FILE:
                return self._file_response(request, real, st, fd)  # streamed from fd
            content = os.read(fd, st.st_size)
            os.close(fd)
        except BaseException:
            os.close(fd)
            raise
        if len(content) != st.st_size:  # the file changed since fstat()
            return error_response(500, "The file changed while it was being read.", close=True)
        self._remember(real, st, content)
        return self._file_response(request, real, st, content)

    def _remember(self, real, st, content):
        if st.st_mtime > time.time() - RACY:
            return
        if self._small_bytes + len(content) > CACHE_BYTES:
            self._small.clear()  # crude but bounded: a site bigger than the cache
            self._small_bytes = 0
        self._small[real] = (_signature(st), st, content)
        self._small_bytes += len(content)

    def _forget(self, real):
        dropped = self._small.pop(real, None)  # pop: another thread may have got there first
        if dropped is not None:
            self._small_bytes -= len(dropped[2])

    def _file_response(self, request, real, st, content):
        """The response for a regular file: `content` is its bytes (a small
        file) or an open fd, which is closed or handed on in a FileBody."""
        streamed = isinstance(content, int)
        size = st.st_size
        etag = f'"{st.st_mtime_ns:x}-{size:x}"'
        headers = [
            ("Content-Type", content_type(real)),
            ("Last-Modified", http_date(st.st_mtime)),
            ("ETag", etag),
            ("Accept-Ranges", "bytes"),
        ]
        start, end, status = 0, size, 200
        if not_modified(request, etag, st.st_mtime):
            response = Response(304, headers)
        elif (byte_range := requested_range(request, etag, st.st_mtime, size)) == "unsatisfiable":
            response = error_response(416, "That range is not in the file.", headers=[("Content-Range", f"bytes */{size}")])
        else:
            if byte_range is not None:
                (start, end), status = byte_range, 206
                headers.append(("Content-Range", f"bytes {start}-{end - 1}/{size}"))
            if streamed and end - start > SMALL_FILE:
                return Response(status, headers, file=FileBody(os.fdopen(content, "rb"), start, end - start))
            if streamed:  # a small range of a big file: read it, send it with the head
                try:
                    os.lseek(content, start, os.SEEK_SET)
                    body = os.read(content, end - start)
                finally:
                    os.close(content)
                if len(body) != end - start:  # the file shrank since fstat()
                    return error_response(500, "The file changed while it was being read.", close=True)
                return Response(status, headers, body)
            return Response(status, headers, content[start:end] if status == 206 else content)
        if streamed:
            os.close(content)
        return response


def _signature(st):
    """What changes when a file is rewritten, replaced or made unreadable."""
    return st.st_mtime_ns, st.st_size, st.st_ino, st.st_mode


def url_segments(path):
    """The path of a request as clean segments, or ValueError.

    Percent-decoding happens once, here: "%2e%2e" becomes "..", which is then
    treated as "..", while "%252e" stays the literal name "%2e".
    """
    # The parser decoded the target's bytes as latin-1; undo that exactly, so a
    # raw UTF-8 byte in the target means the same as its %XX escape.
    raw = unquote_to_bytes(path.encode("latin-1"))
    if b"\x00" in raw or b"\\" in raw:
        raise ValueError("NUL and backslash are not allowed in paths.")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("The path is not valid UTF-8.") from None
    segments = []
    for segment in text.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if not segments:
                raise ValueError("The path climbs above the site's root.")
            segments.pop()
            continue
        segments.append(segment)
    return segments


def _parse_date(value):
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def not_modified(request, etag, mtime):
    """RFC 9110 13.1: If-None-Match wins over If-Modified-Since."""
    if request.method not in ("GET", "HEAD"):
        return False
    none_match = request.header("if-none-match")
    if none_match is not None:
        tags = {t.strip().removeprefix("W/") for t in none_match.split(",")}
        return "*" in tags or etag in tags
    since = request.header("if-modified-since")
    if since is not None:
        when = _parse_date(since)
        return when is not None and int(mtime) <= when
    return False


def _digits_or_empty(text):
    # ASCII only: "\u00b2" (a latin-1 header byte) passes isdigit() but not int().
    return text == "" or (text.isascii() and text.isdigit())


def requested_range(request, etag, mtime, size):
    """(start, end) for one satisfiable byte range, "unsatisfiable", or None
    to send the whole file (no Range, an If-Range that no longer matches, a
    syntax we ignore, or several ranges, which RFC 9110 lets us ignore)."""
    value = request.header("range")
    if value is None or request.method != "GET":
        return None
    if_range = request.header("if-range")
    if if_range is not None:
        if if_range.startswith('"') or if_range.startswith("W/"):
            if if_range != etag:
                return None
        elif _parse_date(if_range) != int(mtime):
            return None
    unit, _, spec = value.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash or not _digits_or_empty(first) or not _digits_or_empty(last):
        return None
    if first == "":
        if last == "":
            return None
        suffix = int(last)  # the last N bytes
        if suffix == 0 or size == 0:
            return "unsatisfiable"
        return max(0, size - suffix), size
    start = int(first)
    end = size if last == "" else min(int(last) + 1, size)
    if last != "" and int(last) < start:
        return None  # invalid range: ignore it
    if start >= size:
        return "unsatisfiable"
    return start, end
