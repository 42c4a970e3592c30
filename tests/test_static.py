"""The static-file application, labserver.app.StaticFiles, on real folders.

Covers path safety (decode once; NUL, backslash and bad UTF-8 refused; ".."
never climbs out; symlinks resolved and held inside the root, index.html
included; redirects never leave the host), GET and HEAD, Content-Type,
Content-Length, Date, Server, Last-Modified/If-Modified-Since and
ETag/If-None-Match (304), index.html and HTML-escaped listings, byte ranges
(206/416, If-Range), the 64 KiB line between bytes and a streamed FileBody,
and the 403/404/405 error pages.

Requests are real bytes parsed by RequestParser, never Request objects built
by hand; wire-level checks go through Connection and are read back with the
stdlib http.client. The site is a pytest temp folder with a secret file
beside the root that no request may ever return; Hypothesis throws path
pieces (.., %2e, %2f, //, \\, %00, symlinks) at it.
"""

import email.utils
import os
import sys
import time
from html.parser import HTMLParser
from http import client as http_client
from io import BytesIO
from types import SimpleNamespace
from urllib.parse import quote, unquote, urljoin, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labserver.app import StaticFiles, content_type, url_segments
from labserver.app.static import SMALL_FILE
from labserver.protocol import Connection, FileBody, HTTPError, RequestParser

SECRET = b"top secret, outside the root\n"
MTIME = 1_700_000_000  # Tue, 14 Nov 2023 22:13:20 GMT
LAST_MODIFIED = "Tue, 14 Nov 2023 22:13:20 GMT"
BIG = bytes(range(256)) * 800  # 200 KiB
HEXDIGITS = b"0123456789abcdef"
XSS_FILE = "<img src=x onerror=alert(1)>.txt"
# "/" cannot be part of a POSIX file name, so "<script>alert(1)</script>.txt"
# becomes a folder "<script>alert(1)<" holding "script>.txt".
XSS_DIR, XSS_LEAF = "<script>alert(1)<", "script>.txt"


def write(path, data, mtime=MTIME):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, (mtime, mtime))
    return path


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """A site: root/ with files of every kind, outside/ beside it with the secret."""
    base = tmp_path_factory.mktemp("static")
    root, outside = base / "root", base / "outside"
    write(outside / "secret.txt", SECRET)
    write(outside / "index.html", SECRET)
    write(root / "index.html", b"<!DOCTYPE html><title>home</title>\n")
    write(root / "notes.txt", b"plain notes\n")
    write(root / "hex.txt", HEXDIGITS)
    write(root / "empty.txt", b"")
    write(root / "with space.txt", b"spaced\n")
    write(root / "caf\u00e9 au lait.png", b"\x89PNG fake\n")
    write(root / "na\u00efve notes.txt", b"naive\n")
    write(root / "big.bin", BIG)
    write(root / "exactly64k.bin", b"e" * SMALL_FILE)
    write(root / "over64k.bin", b"o" * (SMALL_FILE + 1))
    write(root / "%2e.txt", b"a literal percent name\n")
    write(root / "sub" / "index.html", b"<p>sub index</p>\n")
    write(root / "caf\u00e9" / "index.html", b"<p>accent folder</p>\n")
    write(root / "listing" / XSS_FILE, b"xss\n")
    write(root / "listing" / "a&b \"q\" 'x'.txt", b"amp\n")
    write(root / "listing" / XSS_DIR / XSS_LEAF, b"xss 2\n")
    (root / "listing" / "folder").mkdir()
    (root / "empty-dir").mkdir()
    for name in ["app.JS", "style.css", "data.json", "logo.svg", "noext", "archive.unknownext"]:
        write(root / "types" / name, b"x")
    symlinks = True
    try:
        os.symlink(outside / "secret.txt", root / "escape.txt")
        os.symlink(outside, root / "escape-dir")
        os.symlink(root / "notes.txt", root / "alias.txt")
        os.symlink(root / "sub", root / "alias-dir")
        (root / "index-escapes").mkdir()
        os.symlink(outside / "index.html", root / "index-escapes" / "index.html")
        os.symlink("../../outside/secret.txt", root / "sub" / "relative-escape.txt")
    except (OSError, NotImplementedError):
        symlinks = False  # Windows without the privilege
    return SimpleNamespace(root=root, outside=outside, app=StaticFiles(root), symlinks=symlinks)


@pytest.fixture
def needs_symlinks(tree):
    if not tree.symlinks:
        pytest.skip("this platform cannot create symlinks")


# ---------------------------------------------------------------------------
# Helpers: real request bytes in, through RequestParser (and Connection).


def request_bytes(target, *headers, method="GET"):
    """target: str (sent as UTF-8) or raw bytes; headers as latin-1 lines."""
    target = target if isinstance(target, bytes) else target.encode("utf-8")
    head = "".join(f"{h}\r\n" for h in ("Host: test", *headers)).encode("latin-1")
    return method.encode() + b" " + target + b" HTTP/1.1\r\n" + head + b"\r\n"


def parsed(target, *headers, method="GET"):
    parser = RequestParser()
    parser.feed(request_bytes(target, *headers, method=method))
    request = parser.next_request()
    assert request is not None
    return request


def call(app, target, *headers, method="GET"):
    """The Response the app gives; a FileBody is read back and closed."""
    response = app(parsed(target, *headers, method=method))
    if response.file is not None:
        response.streamed = read_file_body(response.file)
    return response


def read_file_body(body):
    try:
        body.file.seek(body.offset)
        return body.file.read(body.count)
    finally:
        body.close()


class Wire(BytesIO):
    def makefile(self, mode):
        return self


def fetch(app, target, *headers, method="GET"):
    """Through Connection, as a client sees it: (status, headers dict, body, raw head)."""
    conn = Connection(app)
    conn.feed(request_bytes(target, *headers, method=method))
    chunks = conn.next_response()
    raw = b"".join(c if isinstance(c, bytes) else read_file_body(c) for c in chunks)
    response = http_client.HTTPResponse(Wire(raw), method=method)
    response.begin()
    return response.status, dict(response.getheaders()), response.read(), raw.split(b"\r\n\r\n")[0]


def body_of(response):
    return response.streamed if response.file is not None else response.body


# ---------------------------------------------------------------------------
# GET and HEAD


def test_get_a_file(tree):
    status, headers, body, _ = fetch(tree.app, "/notes.txt")
    assert (status, body) == (200, b"plain notes\n")
    assert headers["Content-Type"] == "text/plain; charset=utf-8"
    assert headers["Content-Length"] == "12"
    assert headers["Last-Modified"] == LAST_MODIFIED
    assert headers["Server"] == "labserver"
    assert abs(email.utils.parsedate_to_datetime(headers["Date"]).timestamp() - time.time()) < 5
    assert headers["ETag"].startswith('"') and headers["Accept-Ranges"] == "bytes"


def test_last_modified_matches_the_file_system(tree):
    st_mtime = os.stat(tree.root / "notes.txt").st_mtime
    assert call(tree.app, "/notes.txt").headers[1] == ("Last-Modified", email.utils.formatdate(st_mtime, usegmt=True))


@pytest.mark.parametrize("target", ["/notes.txt", "/", "/big.bin", "/missing", "/sub", "/listing/"])
def test_head_sends_the_headers_of_get_and_no_body(tree, target):
    get_status, get_headers, get_body, _ = fetch(tree.app, target)
    head_status, head_headers, head_body, raw_head = fetch(tree.app, target, method="HEAD")
    get_headers.pop("Date"), head_headers.pop("Date")
    assert (head_status, head_headers) == (get_status, get_headers)
    assert head_body == b""
    assert int(head_headers["Content-Length"]) == len(get_body)


def test_head_of_a_big_file_closes_it(tree):
    response = tree.app(parsed("/big.bin", method="HEAD"))
    conn = Connection(lambda request: response)
    conn.feed(request_bytes("/big.bin", method="HEAD"))
    [head] = conn.next_response()
    assert f"Content-Length: {len(BIG)}".encode() in head
    assert response.file.file.closed


@pytest.mark.parametrize("name, expected", [
    ("page.html", "text/html; charset=utf-8"), ("PAGE.HTM", "text/html; charset=utf-8"),
    ("style.css", "text/css; charset=utf-8"), ("app.JS", "text/javascript; charset=utf-8"),
    ("data.json", "application/json"), ("logo.svg", "image/svg+xml"), ("a.png", "image/png"),
    ("a.jpeg", "image/jpeg"), ("notes.txt", "text/plain; charset=utf-8"), ("a.wasm", "application/wasm"),
    ("noext", "application/octet-stream"), ("archive.unknownext", "application/octet-stream"),
])
def test_content_type_from_the_extension(name, expected):
    assert content_type(name) == expected


def test_content_type_is_sent(tree):
    assert call(tree.app, "/types/app.JS").headers[0] == ("Content-Type", "text/javascript; charset=utf-8")
    assert call(tree.app, "/types/noext").headers[0] == ("Content-Type", "application/octet-stream")


def test_empty_file(tree):
    status, headers, body, _ = fetch(tree.app, "/empty.txt")
    assert (status, headers["Content-Length"], body) == (200, "0", b"")


# ---------------------------------------------------------------------------
# Names with spaces, non-ASCII, percent signs


@pytest.mark.parametrize("target, body", [
    ("/with%20space.txt", b"spaced\n"),
    ("/caf%C3%A9%20au%20lait.png", b"\x89PNG fake\n"),
    ("/na%C3%AFve%20notes.txt", b"naive\n"),
    ("/na\u00efve%20notes.txt".encode("utf-8"), b"naive\n"),  # raw UTF-8 bytes in the target
    ("/%252e.txt", b"a literal percent name\n"),  # decoded once: the name "%2e.txt"
    ("/n%6Ftes.txt", b"plain notes\n"),
    ("http://test/notes.txt", b"plain notes\n"),  # absolute form
    ("/notes.txt?v=1#x", b"plain notes\n"),
])
def test_names_that_need_decoding(tree, target, body):
    response = call(tree.app, target)
    assert (response.status, response.body) == (200, body)


def test_content_type_of_a_non_ascii_name(tree):
    assert call(tree.app, "/caf%C3%A9%20au%20lait.png").headers[0] == ("Content-Type", "image/png")


# ---------------------------------------------------------------------------
# Path safety


@pytest.mark.parametrize("target, status", [
    ("/../outside/secret.txt", 400),
    ("/%2e%2e/outside/secret.txt", 400),
    ("/%2E%2E%2Foutside%2Fsecret.txt", 400),
    ("/sub/../../outside/secret.txt", 400),
    ("/sub/..%2f..%2foutside/secret.txt", 400),
    ("/./../outside/secret.txt", 400),
    ("http://test/../outside/secret.txt", 400),
    ("/%252e%252e/outside/secret.txt", 404),  # decoded once: a folder literally named "%2e%2e"
    ("/notes.txt%00.html", 400),
    ("/sub%5c..%5cnotes.txt", 400),
    ("/sub\\..\\notes.txt", 400),
    ("/%ff.txt", 400),  # not UTF-8
    ("/missing.txt", 404),
    ("/notes.txt/more", 404),  # a file is not a folder
])
def test_paths_that_must_not_be_served(tree, target, status):
    status_got, headers, body, _ = fetch(tree.app, target)
    assert status_got == status
    assert SECRET not in body and "Location" not in headers
    assert headers["Content-Type"] == "text/html; charset=utf-8" and body.startswith(b"<!DOCTYPE html>")


def test_a_raw_nul_never_reaches_the_app():
    parser = RequestParser()
    parser.feed(request_bytes("/notes.txt\x00"))
    with pytest.raises(HTTPError) as info:
        parser.next_request()
    assert info.value.status == 400


@pytest.mark.parametrize("target, body", [
    ("/sub/../notes.txt", b"plain notes\n"),
    ("/sub/%2e%2e/notes.txt", b"plain notes\n"),
    ("/./notes.txt", b"plain notes\n"),
    ("//notes.txt", b"plain notes\n"),
])
def test_dot_segments_that_stay_inside_are_fine(tree, target, body):
    response = call(tree.app, target)
    assert (response.status, response.body) == (200, body)


@pytest.mark.parametrize("target", [
    "/escape.txt", "/escape-dir/secret.txt", "/escape-dir", "/escape-dir/", "/sub/relative-escape.txt",
    "/index-escapes/", "/alias-dir/../escape.txt",
])
def test_symlinks_out_of_the_root_are_403(tree, needs_symlinks, target):
    status, headers, body, _ = fetch(tree.app, target)
    assert status == 403
    assert SECRET not in body and "Location" not in headers


def test_symlinks_inside_the_root_are_followed(tree, needs_symlinks):
    assert body_of(call(tree.app, "/alias.txt")) == b"plain notes\n"
    assert body_of(call(tree.app, "/alias-dir/")) == b"<p>sub index</p>\n"


def test_a_root_given_through_a_symlink_still_serves(tree, needs_symlinks, tmp_path):
    link = tmp_path / "root-link"
    os.symlink(tree.root, link)
    app = StaticFiles(link)
    assert call(app, "/notes.txt").status == 200
    assert call(app, "/escape.txt").status == 403


@pytest.mark.parametrize("path, segments", [
    ("/", []), ("/a/b/", ["a", "b"]), ("//a///b", ["a", "b"]), ("/a/./b/../c", ["a", "c"]),
    ("/a/%2e%2e/x", ["x"]), ("/%252e", ["%2e"]),
    ("/caf%C3%A9", ["caf\u00e9"]), ("/caf\u00c3\u00a9", ["caf\u00e9"]),  # raw UTF-8, read as latin-1 by the parser
    ("/a%2Fb", ["a", "b"]),
])
def test_url_segments(path, segments):
    assert url_segments(path) == segments


@pytest.mark.parametrize("path", ["/..", "/a/../..", "/%2e%2e", "/x%00", "/a%5cb", "/a\\b", "/%c3", "/%ff"])
def test_url_segments_refuses(path):
    with pytest.raises(ValueError):
        url_segments(path)


PATH_PIECES = ["/", "//", "..", ".", "%2e", "%2E%2e", "%2f", "%2F", "%5c", "\\", "%00", "%25", "%ff", "%c3%a9",
               "sub", "escape.txt", "escape-dir", "alias-dir", "index-escapes", "secret.txt", "outside",
               "notes.txt", "listing", "?", "?x=/../", "caf\u00e9"]


@settings(max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(pieces=st.lists(st.sampled_from(PATH_PIECES), max_size=8), method=st.sampled_from(["GET", "HEAD"]))
def test_no_path_reaches_the_secret_or_leaves_the_host(tree, pieces, method):
    target = "/" + "".join(pieces)
    status, headers, body, _ = fetch(tree.app, target, method=method)
    assert status in (200, 301, 400, 403, 404)
    assert SECRET not in body
    if status == 301:
        assert_local_redirect(headers["Location"])


# ---------------------------------------------------------------------------
# Folders: redirect, index.html, listing


def assert_local_redirect(location):
    """A Location that a browser resolves on this same host."""
    assert location.startswith("/") and not location.startswith(("//", "/\\"))
    assert urlsplit(urljoin("http://test/some/page", location)).netloc == "test"


@pytest.mark.parametrize("target, location", [
    ("/sub", "/sub/"),
    ("/sub?x=1&y=/z", "/sub/?x=1&y=/z"),
    ("//sub", "/sub/"),
    ("///sub", "/sub/"),
    ("/./sub", "/sub/"),
    ("/%2Fsub", "/sub/"),
    ("/%2F%2Fsub", "/sub/"),
    ("/sub/.", "/sub/"),
    ("/sub/..", "/"),
    ("/caf%C3%A9", "/caf%C3%A9/"),
    ("/listing/%3Cscript%3Ealert(1)%3C", "/listing/%3Cscript%3Ealert%281%29%3C/"),
    ("http://test/sub", "/sub/"),
])
def test_folder_without_slash_redirects_on_the_same_host(tree, target, location):
    status, headers, body, _ = fetch(tree.app, target)
    assert (status, headers["Location"], body) == (301, location, b"")
    assert_local_redirect(headers["Location"])


@pytest.mark.parametrize("target", ["/\\sub", "/%5Csub", "/%5C%5Csub", "/\\\\sub"])
def test_backslash_paths_get_no_redirect(tree, target):
    status, headers, _, _ = fetch(tree.app, target)
    assert status == 400 and "Location" not in headers


def test_double_slash_to_a_missing_folder_is_404_not_a_redirect(tree):
    status, headers, _, _ = fetch(tree.app, "//evil.example")
    assert status == 404 and "Location" not in headers


def test_folder_serves_its_index_html(tree):
    assert body_of(call(tree.app, "/")) == b"<!DOCTYPE html><title>home</title>\n"
    response = call(tree.app, "/sub/")
    assert (response.status, response.body) == (200, b"<p>sub index</p>\n")
    assert response.headers[0] == ("Content-Type", "text/html; charset=utf-8")


class Links(HTMLParser):
    """The <a> elements of a page: (href, text), entities resolved."""

    def __init__(self, page):
        super().__init__()
        self.links, self._href = [], None
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self._href = dict(attrs)["href"]
            self.links.append([self._href, ""])

    def handle_data(self, data):
        if self._href is not None:
            self.links[-1][1] += data

    def handle_endtag(self, tag):
        if tag == "a":
            self._href = None


def test_listing_escapes_names(tree):
    response = call(tree.app, "/listing/")
    assert response.status == 200 and response.headers == [("Content-Type", "text/html; charset=utf-8")]
    page = response.body.decode("utf-8")
    assert "<script" not in page and "<img" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;.txt" in page
    assert "&lt;script&gt;alert(1)&lt;/" in page
    # An independent HTML parser reads back exactly the names on disk.
    texts = sorted(text for _, text in Links(page).links)
    expected = sorted(n + "/" if (tree.root / "listing" / n).is_dir() else n for n in os.listdir(tree.root / "listing"))
    assert texts == expected


def test_listing_of_the_script_folder_escapes_its_title(tree):
    page = call(tree.app, "/listing/%3Cscript%3Ealert(1)%3C/").body.decode("utf-8")
    assert "<script" not in page
    assert "<title>Index of /listing/&lt;script&gt;alert(1)&lt;/</title>" in page
    assert ">script&gt;.txt</a>" in page


def test_every_listed_link_works(tree):
    page = call(tree.app, "/listing/").body.decode("utf-8")
    for href, text in Links(page).links:
        assert '"' not in href and "<" not in href and " " not in href
        status, _, body, _ = fetch(tree.app, "/listing/" + href)
        assert status == 200, (href, text)
        assert unquote(href) == text


def test_empty_folder_lists_nothing(tree):
    response = call(tree.app, "/empty-dir/")
    assert response.status == 200 and Links(response.body.decode()).links == []
    assert b"<title>Index of /empty-dir/</title>" in response.body


@pytest.mark.skipif(sys.platform in ("darwin", "win32"), reason="the file system wants valid UTF-8 names")
def test_listing_a_name_that_is_not_utf8(tmp_path):
    (tmp_path / "ok.txt").write_bytes(b"")
    open(os.path.join(os.fsencode(tmp_path), b"caf\xe9.txt"), "wb").close()
    response = call(StaticFiles(tmp_path), "/")
    assert response.status == 200
    assert b'href="caf%E9.txt"' in response.body and b'href="ok.txt"' in response.body


# ---------------------------------------------------------------------------
# Conditional requests


def etag_of(tree, target="/notes.txt"):
    return dict(call(tree.app, target).headers)["ETag"]


@pytest.mark.parametrize("header, status", [
    (f"If-Modified-Since: {LAST_MODIFIED}", 304),
    ("If-Modified-Since: Wed, 15 Nov 2023 00:00:00 GMT", 304),
    ("If-Modified-Since: Tue, 14 Nov 2023 22:13:19 GMT", 200),
    ("If-Modified-Since: Tuesday, 14-Nov-23 22:13:20 GMT", 304),  # RFC 850 form, still valid
    ("If-Modified-Since: not a date", 200),
    ("If-None-Match: *", 304),
    ('If-None-Match: "other"', 200),
])
def test_conditional_get(tree, header, status):
    got, headers, body, raw_head = fetch(tree.app, "/notes.txt", header)
    assert got == status
    if status == 304:
        assert body == b"" and b"Content-Length" not in raw_head
        assert headers["ETag"] and headers["Last-Modified"] == LAST_MODIFIED


def test_if_none_match_with_our_etag_weak_or_in_a_list(tree):
    etag = etag_of(tree)
    for value in [etag, f"W/{etag}", f'"a", {etag}, "b"']:
        assert call(tree.app, "/notes.txt", f"If-None-Match: {value}").status == 304
        assert call(tree.app, "/notes.txt", f"If-None-Match: {value}", method="HEAD").status == 304


def test_if_none_match_wins_over_if_modified_since(tree):
    response = call(tree.app, "/notes.txt", 'If-None-Match: "stale"', f"If-Modified-Since: {LAST_MODIFIED}")
    assert response.status == 200 and response.body == b"plain notes\n"


def test_etag_changes_when_the_file_does(tmp_path):
    path = write(tmp_path / "f.txt", b"one")
    app = StaticFiles(tmp_path)
    before = dict(call(app, "/f.txt").headers)["ETag"]
    write(path, b"two!", mtime=MTIME + 10)
    response = call(app, "/f.txt", f"If-None-Match: {before}")
    assert response.status == 200 and response.body == b"two!"


# ---------------------------------------------------------------------------
# Byte ranges


@pytest.mark.parametrize("spec, content_range, body", [
    ("bytes=0-4", "bytes 0-4/16", b"01234"),
    ("bytes=10-", "bytes 10-15/16", b"abcdef"),
    ("bytes=-3", "bytes 13-15/16", b"def"),
    ("bytes=-100", "bytes 0-15/16", HEXDIGITS),
    ("bytes=14-1000", "bytes 14-15/16", b"ef"),
    ("bytes=15-15", "bytes 15-15/16", b"f"),
    ("Bytes = 2-3", "bytes 2-3/16", b"23"),
])
def test_satisfiable_range_is_206(tree, spec, content_range, body):
    status, headers, got, _ = fetch(tree.app, "/hex.txt", f"Range: {spec}")
    assert (status, headers["Content-Range"], got) == (206, content_range, body)
    assert headers["Content-Length"] == str(len(body))


@pytest.mark.parametrize("spec", ["bytes=16-", "bytes=100-200", "bytes=-0"])
def test_unsatisfiable_range_is_416(tree, spec):
    status, headers, body, _ = fetch(tree.app, "/hex.txt", f"Range: {spec}")
    assert (status, headers["Content-Range"]) == (416, "bytes */16")
    assert headers["Content-Length"] == str(len(body))


def test_range_on_an_empty_file_is_416(tree):
    assert call(tree.app, "/empty.txt", "Range: bytes=0-").status == 416


@pytest.mark.parametrize("spec", [
    "bytes=5-2",  # invalid: last before first
    "bytes=0-1,4-5",  # several ranges: we may send the whole file
    "items=0-1", "bytes=", "bytes=-", "bytes=a-b", "bytes=1", "bytes=0x1-2",
    "bytes=\u00b2-",  # a latin-1 byte that str.isdigit() accepts but int() does not
    "bytes=1-\u00b9",
])
def test_ignored_range_sends_the_whole_file(tree, spec):
    response = call(tree.app, "/hex.txt", f"Range: {spec}")
    assert (response.status, response.body) == (200, HEXDIGITS)
    assert "Content-Range" not in dict(response.headers)


def test_range_is_for_get_only(tree):
    status, headers, _, _ = fetch(tree.app, "/hex.txt", "Range: bytes=0-1", method="HEAD")
    assert status == 200 and headers["Content-Length"] == "16" and "Content-Range" not in headers


def test_if_range(tree):
    etag = etag_of(tree, "/hex.txt")
    assert call(tree.app, "/hex.txt", "Range: bytes=0-1", f"If-Range: {etag}").status == 206
    assert call(tree.app, "/hex.txt", "Range: bytes=0-1", f"If-Range: {LAST_MODIFIED}").status == 206
    for stale in ['"old"', f"W/{etag}", "Mon, 13 Nov 2023 00:00:00 GMT", "garbage"]:
        response = call(tree.app, "/hex.txt", "Range: bytes=0-1", f"If-Range: {stale}")
        assert (response.status, response.body) == (200, HEXDIGITS), stale


# ---------------------------------------------------------------------------
# Big files travel as a FileBody


def test_big_file_is_a_file_body_not_bytes(tree):
    response = tree.app(parsed("/big.bin"))
    try:
        assert response.status == 200 and response.body == b""
        assert isinstance(response.file, FileBody)
        assert (response.file.offset, response.file.count) == (0, len(BIG))
        assert response.content_length == len(BIG)
    finally:
        assert read_file_body(response.file) == BIG


def test_the_64_kib_line(tree):
    exactly = tree.app(parsed("/exactly64k.bin"))
    assert exactly.file is None and len(exactly.body) == SMALL_FILE
    over = tree.app(parsed("/over64k.bin"))
    assert over.file is not None and over.body == b""
    assert read_file_body(over.file) == b"o" * (SMALL_FILE + 1)


def test_big_file_through_the_wire(tree):
    status, headers, body, _ = fetch(tree.app, "/big.bin")
    assert (status, headers["Content-Length"], body) == (200, str(len(BIG)), BIG)
    assert headers["Content-Type"] == "application/octet-stream"


def test_range_of_a_big_file(tree):
    response = call(tree.app, "/big.bin", "Range: bytes=100000-")
    assert response.status == 206 and response.file.offset == 100000 and response.file.count == len(BIG) - 100000
    assert response.streamed == BIG[100000:]
    small = call(tree.app, "/big.bin", "Range: bytes=1000-1009")
    assert small.file is None and small.body == BIG[1000:1010]


# ---------------------------------------------------------------------------
# Methods and error pages


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "TRACE"])
def test_other_methods_are_405_with_allow(tree, method):
    status, headers, body, _ = fetch(tree.app, "/notes.txt", method=method)
    assert status == 405 and headers["Allow"] == "GET, HEAD, OPTIONS"
    assert f"{method} is not allowed here".encode() in body


def test_connect_is_405(tree):
    conn = Connection(tree.app)
    conn.feed(b"CONNECT test:443 HTTP/1.1\r\nHost: test:443\r\n\r\n")
    assert conn.next_response()[0].startswith(b"HTTP/1.1 405 ")


def test_options(tree):
    for target in ["*", "/notes.txt"]:
        status, headers, body, raw_head = fetch(tree.app, target, method="OPTIONS")
        assert (status, headers["Allow"], body) == (204, "GET, HEAD, OPTIONS", b"")
        assert b"Content-Length" not in raw_head


def test_a_refused_post_body_is_not_read_as_a_request(tree):
    smuggled = b"GET /escape.txt HTTP/1.1\r\nHost: test\r\n\r\n"
    conn = Connection(tree.app)
    conn.feed(request_bytes("/notes.txt", f"Content-Length: {len(smuggled)}", method="POST") + smuggled)
    conn.feed(request_bytes("/notes.txt"))
    first, second = conn.next_response(), conn.next_response()
    assert first[0].startswith(b"HTTP/1.1 405 ") and second[0].startswith(b"HTTP/1.1 200 ")
    assert second[0].endswith(b"plain notes\n") and conn.next_response() is None


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads every file")
def test_unreadable_file_and_folder_are_403(tmp_path):
    write(tmp_path / "locked.txt", b"x").chmod(0)
    (tmp_path / "locked-dir").mkdir()
    (tmp_path / "locked-dir").chmod(0)
    try:
        app = StaticFiles(tmp_path)
        assert call(app, "/locked.txt").status == 403
        assert call(app, "/locked-dir/").status == 403
    finally:
        (tmp_path / "locked-dir").chmod(0o755)


def test_error_pages_are_html_with_a_length(tree):
    for target, method, status in [("/missing", "GET", 404), ("/%00", "GET", 400), ("/", "PUT", 405)]:
        got, headers, body, _ = fetch(tree.app, target, method=method)
        assert got == status
        assert headers["Content-Type"] == "text/html; charset=utf-8"
        assert int(headers["Content-Length"]) == len(body) and b"<h1>%d " % status in body


def test_the_root_must_be_a_folder(tmp_path):
    with pytest.raises(NotADirectoryError):
        StaticFiles(write(tmp_path / "file", b""))
    with pytest.raises(NotADirectoryError):
        StaticFiles(tmp_path / "missing")


def test_quote_matches_what_the_listing_links_to():
    # The listing links with urllib's quote; it must round-trip through url_segments.
    for name in [XSS_FILE, "a&b \"q\" 'x'.txt", "caf\u00e9 au lait.png", "%2e.txt", "100%.txt"]:
        assert url_segments("/" + quote(name)) == [name]


# ---------------------------------------------------------------------------
# The small-file cache: one stat() per hit, never stale


def test_a_cached_small_file_is_served_without_opening_it(tmp_path, monkeypatch):
    write(tmp_path / "a.txt", b"old enough to cache\n")
    app = StaticFiles(tmp_path)
    assert call(app, "/a.txt").body == b"old enough to cache\n"

    def no_open(*args, **kwargs):
        raise AssertionError("the file was opened again")

    monkeypatch.setattr("labserver.app.static.os.open", no_open)
    again = call(app, "/a.txt")
    assert (again.status, again.body) == (200, b"old enough to cache\n")
    assert call(app, "/a.txt", "Range: bytes=4-8").body == b"enoug"


def test_a_changed_file_is_never_served_stale(tmp_path):
    path = write(tmp_path / "a.txt", b"version 1\n")
    app = StaticFiles(tmp_path)
    assert call(app, "/a.txt").body == b"version 1\n"  # cached now
    write(path, b"version 2\n", mtime=MTIME + 1)  # same size
    assert call(app, "/a.txt").body == b"version 2\n"
    path.unlink()
    assert call(app, "/a.txt").status == 404


def test_a_file_written_just_now_is_not_cached(tmp_path):
    # Two writes within one tick of the file system's clock can leave the
    # same mtime: a file that young is read from disk every time.
    path = tmp_path / "a.txt"
    path.write_bytes(b"version 1\n")
    app = StaticFiles(tmp_path)
    assert call(app, "/a.txt").body == b"version 1\n"
    before = path.stat()
    path.write_bytes(b"version 2\n")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # the same tick
    assert call(app, "/a.txt").body == b"version 2\n"


def test_a_file_made_unreadable_is_not_served_from_the_cache(tmp_path, monkeypatch):
    path = write(tmp_path / "a.txt", b"was public\n")
    app = StaticFiles(tmp_path)
    assert call(app, "/a.txt").status == 200
    opened = []
    real_open = os.open
    monkeypatch.setattr("labserver.app.static.os.open", lambda *a: opened.append(a) or real_open(*a))
    call(app, "/a.txt")
    assert opened == []  # a hit
    path.chmod(0)
    try:
        response = call(app, "/a.txt")
        assert len(opened) == 1  # the mode changed: the file system decides again
        assert response.status == (200 if os.access(path, os.R_OK) else 403)  # root reads anything
    finally:
        path.chmod(0o644)
