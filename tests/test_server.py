"""ThreadPoolServer over real sockets, with real clients.

Three independent clients (requests, http.client, curl) check the happy paths:
byte-exact bodies, keep-alive, HEAD, conditional requests, ranges, folders.
A raw socket checks what no polite client would send: every malformed request
must get its status, a Content-Length, and (when framing is in doubt) a closed
connection; and no path, however encoded, may read a file outside the root.
"""

import http.client
import os
import re
import shutil
import socket
import subprocess
from email.utils import formatdate
from urllib.parse import unquote, urljoin, urlsplit

import psutil
import pytest
import requests
from conftest import symlink

CURL = shutil.which("curl")
needs_curl = pytest.mark.skipif(CURL is None, reason="curl is not installed")

BIG_SIZE = 3 * 1024 * 1024 + 12345  # several MB, and not a multiple of any buffer size
HELLO = b"hello, world\n"


def curl(*args, timeout=60):
    """Run curl; subprocess.run kills it if it outlives `timeout`."""
    result = subprocess.run([CURL, "--silent", "--show-error", *args], capture_output=True, timeout=timeout)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return result.stdout.decode()


@pytest.fixture
def secret(site):
    """The content of the files beside the root, which no response may contain."""
    return (site.parent / "secret.txt").read_bytes()


@pytest.fixture
def big(site):
    data = os.urandom(BIG_SIZE)
    (site / "big.bin").write_bytes(data)
    return data


def get(path, version=b"HTTP/1.1", extra=b""):
    return b"GET " + path + b" " + version + b"\r\nHost: test\r\n" + extra + b"\r\n"


def connections():
    proc = psutil.Process()  # this process holds both ends
    return proc.net_connections("tcp") if hasattr(proc, "net_connections") else proc.connections("tcp")


def server_side_connections(port):
    """The server's accepted sockets for `port`."""
    return [c for c in connections() if c.laddr and c.laddr.port == port and c.raddr]


def client_ports(port):
    """The local ports of our open connections to the server."""
    return {c.laddr.port for c in connections() if c.raddr and c.raddr.port == port}


def without_date(response_headers):
    return [(n, v) for n, v in response_headers if n != "date"]


# Byte-exact bodies with three independent clients.


def test_requests_small_file(server, site):
    response = requests.get(server.url + "hello.txt", timeout=10)
    assert response.status_code == 200
    assert response.content == HELLO
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert response.headers["Content-Length"] == str(len(HELLO))


def test_requests_big_file_is_byte_exact(server, big):
    response = requests.get(server.url + "big.bin", timeout=30)
    assert response.status_code == 200
    assert response.headers["Content-Length"] == str(BIG_SIZE)
    assert response.content == big


def test_http_client_big_file_is_byte_exact(server, big):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request("GET", "/big.bin")
        response = conn.getresponse()
        assert response.status == 200
        assert response.read() == big
    finally:
        conn.close()


@needs_curl
def test_curl_big_file_is_byte_exact(server, big, tmp_path):
    out = tmp_path / "download.bin"
    written = curl("-o", str(out), "-w", "%{http_code} %{size_download}", server.url + "big.bin")
    assert written == f"200 {BIG_SIZE}"
    assert out.read_bytes() == big


# Keep-alive.


def test_http_client_reuses_one_connection(server, big):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        seen = set()
        for path, body in [("/hello.txt", HELLO), ("/big.bin", big), ("/missing", None), ("/hello.txt", HELLO)]:
            conn.request("GET", path)
            response = conn.getresponse()
            data = response.read()
            if body is not None:
                assert data == body
            # http.client drops its socket when the server says Connection: close.
            assert conn.sock is not None, f"connection closed after {path}"
            seen.add((id(conn.sock), conn.sock.getsockname()))
        assert len(seen) == 1
        assert len(server_side_connections(server.port)) == 1
    finally:
        conn.close()


def test_requests_session_uses_one_connection(server):
    with requests.Session() as session:
        ports = set()
        for _ in range(5):
            assert session.get(server.url + "hello.txt", timeout=10).content == HELLO
            ports |= client_ports(server.port)
        assert len(ports) == 1  # one local port: one TCP connection throughout
        assert len(server_side_connections(server.port)) == 1


@needs_curl
def test_curl_reuses_the_connection(server):
    out = curl("-o", os.devnull, "-o", os.devnull, "-o", os.devnull, "-w", "%{num_connects}\n",
               server.url + "hello.txt", server.url + "other.txt", server.url + "docs/")
    assert out.split() == ["1", "0", "0"]


def test_http_1_0_closes_unless_asked_to_keep_alive(server, connect):
    client = connect(server.port)
    client.send(get(b"/hello.txt", b"HTTP/1.0", b"Connection: keep-alive\r\n"))
    response = client.response()
    assert (response.status, response.body) == (200, HELLO)
    assert response.header("connection").lower() == "keep-alive"
    client.send(get(b"/other.txt", b"HTTP/1.0"))
    response = client.response()
    assert response.status == 200 and response.header("connection") == "close"
    assert client.closed_by_server()


# HEAD, conditional requests, ranges.


@pytest.mark.parametrize("path", [b"/hello.txt", b"/big.bin", b"/docs/", b"/missing.txt"])
def test_head_has_the_headers_of_get_and_no_body(server, connect, big, path):
    client = connect(server.port)
    # HEAD then GET in one send: if HEAD sent any body, the GET's status line
    # would not come next.
    client.send(get(path).replace(b"GET", b"HEAD", 1) + get(path))
    head = client.response(head=True)
    full = client.response()
    assert head.status == full.status
    assert without_date(head.headers) == without_date(full.headers)
    assert int(head.header("content-length")) == len(full.body) > 0
    assert not client.closed_by_server(timeout=0.3)
    assert requests.head(server.url + path.decode()[1:], timeout=10).content == b""


@pytest.fixture
def dated(site):
    """hello.txt with a fixed modification time, and its validators."""
    path = site / "hello.txt"
    mtime = 1_700_000_000
    os.utime(path, (mtime, mtime))
    return mtime


def test_if_none_match_gives_304(server, connect, dated):
    first = requests.get(server.url + "hello.txt", timeout=10)
    etag = first.headers["ETag"]
    assert etag.startswith('"') and etag.endswith('"')
    for value in [etag, "W/" + etag, f'"nope", {etag}', "*"]:
        response = requests.get(server.url + "hello.txt", headers={"If-None-Match": value}, timeout=10)
        assert response.status_code == 304, value
        assert response.content == b""
        assert response.headers["ETag"] == etag
    changed = requests.get(server.url + "hello.txt", headers={"If-None-Match": '"other"'}, timeout=10)
    assert (changed.status_code, changed.content) == (200, HELLO)
    # Over a raw socket: the 304 carries no body, so the next response follows at once.
    client = connect(server.port)
    client.send(get(b"/hello.txt", extra=b"If-None-Match: " + etag.encode() + b"\r\n") + get(b"/other.txt"))
    assert client.response().status == 304
    assert client.response().body == b"the other file\n"


def test_if_modified_since_gives_304(server, dated):
    url = server.url + "hello.txt"
    last_modified = requests.get(url, timeout=10).headers["Last-Modified"]
    assert last_modified == formatdate(dated, usegmt=True)
    for since in [last_modified, formatdate(dated + 3600, usegmt=True)]:
        response = requests.get(url, headers={"If-Modified-Since": since}, timeout=10)
        assert (response.status_code, response.content) == (304, b"")
    for since in [formatdate(dated - 3600, usegmt=True), "not a date"]:
        response = requests.get(url, headers={"If-Modified-Since": since}, timeout=10)
        assert (response.status_code, response.content) == (200, HELLO)
    # If-None-Match wins over If-Modified-Since (RFC 9110 13.2.2).
    response = requests.get(url, headers={"If-Modified-Since": last_modified, "If-None-Match": '"x"'}, timeout=10)
    assert response.status_code == 200


@pytest.mark.parametrize("spec, start, end", [
    ("0-0", 0, 1),
    ("10-19", 10, 20),
    ("-100", BIG_SIZE - 100, BIG_SIZE),
    ("1000000-", 1000000, BIG_SIZE),
    ("65530-70000", 65530, 70001),  # across the small-file limit: a streamed slice
    ("2000000-2999999", 2000000, 3000000),
    ("0-999999999", 0, BIG_SIZE),  # clamped to the file
])
def test_range_gives_206(server, big, spec, start, end):
    response = requests.get(server.url + "big.bin", headers={"Range": "bytes=" + spec}, timeout=30)
    assert response.status_code == 206
    assert response.headers["Content-Range"] == f"bytes {start}-{end - 1}/{BIG_SIZE}"
    assert response.headers["Content-Length"] == str(end - start)
    assert response.content == big[start:end]


def test_range_on_a_small_file(server):
    response = requests.get(server.url + "hello.txt", headers={"Range": "bytes=7-"}, timeout=10)
    assert response.status_code == 206
    assert response.headers["Content-Range"] == f"bytes 7-{len(HELLO) - 1}/{len(HELLO)}"
    assert response.content == HELLO[7:]


@pytest.mark.parametrize("spec", [f"{BIG_SIZE}-", f"{BIG_SIZE + 10}-{BIG_SIZE + 20}"])
def test_unsatisfiable_range_gives_416(server, big, connect, spec):
    client = connect(server.port)
    client.send(get(b"/big.bin", extra=f"Range: bytes={spec}\r\n".encode()) + get(b"/hello.txt"))
    response = client.response()
    assert response.status == 416
    assert response.header("content-range") == f"bytes */{BIG_SIZE}"
    assert int(response.header("content-length")) == len(response.body)
    assert client.response().body == HELLO  # the connection stays usable


def test_resume_with_range(server, big):
    have = big[:1234567]
    response = requests.get(server.url + "big.bin", headers={"Range": f"bytes={len(have)}-"}, timeout=30)
    assert response.status_code == 206
    assert have + response.content == big


@needs_curl
def test_curl_resumes_a_download(server, big, tmp_path):
    out = tmp_path / "partial.bin"
    out.write_bytes(big[:1234567])
    written = curl("-C", "-", "-o", str(out), "-w", "%{http_code} %{size_download}", server.url + "big.bin")
    assert written == f"206 {BIG_SIZE - 1234567}"
    assert out.read_bytes() == big


# Folders.


def test_folder_without_slash_redirects(server, site):
    response = requests.get(server.url + "docs", allow_redirects=False, timeout=10)
    assert response.status_code == 301
    assert response.headers["Location"] == "/docs/"
    assert response.headers["Content-Length"] == "0"
    response = requests.get(server.url + "docs?x=1&y=%20", allow_redirects=False, timeout=10)
    assert response.headers["Location"] == "/docs/?x=1&y=%20"
    followed = requests.get(server.url + "docs", timeout=10)
    assert [r.status_code for r in followed.history] == [301]
    assert followed.content == (site / "docs" / "index.html").read_bytes()


def test_folder_with_a_space_redirects_percent_encoded(server, site):
    (site / "my docs").mkdir()
    response = requests.get(server.url + "my%20docs", allow_redirects=False, timeout=10)
    assert response.status_code == 301
    assert response.headers["Location"] == "/my%20docs/"


def test_folder_serves_its_index_html(server, site):
    assert requests.get(server.url, timeout=10).content == (site / "index.html").read_bytes()
    response = requests.get(server.url + "docs/", timeout=10)
    assert response.content == (site / "docs" / "index.html").read_bytes()
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"


def test_folder_without_index_is_listed(server, site):
    folder = site / "list"
    (folder / "sub").mkdir(parents=True)
    files = {"a.txt": b"A\n", "b c.txt": b"B C\n", "x&y<z>.txt": b"XYZ\n"}
    for name, data in files.items():
        (folder / name).write_bytes(data)
    response = requests.get(server.url + "list/", timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    page = response.text
    hrefs = re.findall(r'href="([^"]*)"', page)
    assert sorted(hrefs) == sorted(["a.txt", "b%20c.txt", "x%26y%3Cz%3E.txt", "sub/"])
    assert "x&amp;y&lt;z&gt;.txt" in page and "<z>" not in page  # names are escaped
    for href in hrefs:
        linked = requests.get(urljoin(response.url, href), timeout=10)
        assert linked.status_code == 200, href
        if not href.endswith("/"):
            assert linked.content == files[unquote(href)]


# Error pages.


def assert_html_error(response, status):
    assert response.status == status
    assert response.header("content-type") == "text/html; charset=utf-8"
    assert int(response.header("content-length")) == len(response.body)
    assert str(status).encode() in response.body


def test_404_keeps_the_connection(server, connect):
    client = connect(server.port)
    client.send(get(b"/missing.txt") + get(b"/docs/missing/") + get(b"/hello.txt"))
    assert_html_error(client.response(), 404)
    assert_html_error(client.response(), 404)
    assert client.response().body == HELLO


def test_403_for_a_symlink_out_of_the_root(server, site, connect, secret):
    symlink(site / "link.txt", site.parent / "secret.txt")
    client = connect(server.port)
    client.send(get(b"/link.txt"))
    response = client.response()
    assert_html_error(response, 403)
    assert secret not in response.body


@pytest.mark.parametrize("method", [b"POST", b"PUT", b"DELETE", b"PATCH"])
def test_405_for_methods_that_change_things(server, connect, method):
    client = connect(server.port)
    client.send(method + b" /hello.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n" + get(b"/hello.txt"))
    response = client.response()
    assert_html_error(response, 405)
    allowed = {m.strip() for m in response.header("allow").split(",")}
    assert {"GET", "HEAD"} <= allowed and method.decode() not in allowed
    assert client.response().body == HELLO


# Malformed requests: status, Content-Length, Connection: close, and a closed socket.

HOST = b"Host: x\r\n"
MANY_BIG_FIELDS = b"".join(b"X-Fill-%d: %s\r\n" % (i, b"v" * 1000) for i in range(40))  # 40 KB
MANY_FIELDS = b"".join(b"X-N%d: 1\r\n" % i for i in range(150))

BAD_REQUESTS = {
    "request line too long": (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n" + HOST + b"\r\n", 414),
    "request line too long, unfinished": (b"GET /" + b"a" * 20000, 414),
    "header section too large": (b"GET / HTTP/1.1\r\n" + HOST + MANY_BIG_FIELDS + b"\r\n", 431),
    "too many header fields": (b"GET / HTTP/1.1\r\n" + HOST + MANY_FIELDS + b"\r\n", 431),
    "method not a token": (b"GE(T / HTTP/1.1\r\n" + HOST + b"\r\n", 400),
    "method with a space": (b"G ET / HTTP/1.1\r\n" + HOST + b"\r\n", 400),
    "version HTTP/1.x": (b"GET / HTTP/1.x\r\n" + HOST + b"\r\n", 400),
    "version HTTP/11": (b"GET / HTTP/11\r\n" + HOST + b"\r\n", 400),
    "version in lowercase": (b"GET / http/1.1\r\n" + HOST + b"\r\n", 400),
    "no version": (b"GET /\r\n" + HOST + b"\r\n", 400),
    "header without colon": (b"GET / HTTP/1.1\r\n" + HOST + b"NoColonHere\r\n\r\n", 400),
    "whitespace before colon": (b"GET / HTTP/1.1\r\n" + HOST + b"X-Name : v\r\n\r\n", 400),
    "obs-fold": (b"GET / HTTP/1.1\r\n" + HOST + b"X-Name: v\r\n  folded\r\n\r\n", 400),
    "Content-Length not a number": (b"GET / HTTP/1.1\r\n" + HOST + b"Content-Length: abc\r\n\r\n", 400),
    "Content-Length negative": (b"GET / HTTP/1.1\r\n" + HOST + b"Content-Length: -1\r\n\r\n", 400),
    "Content-Length with a sign": (b"GET / HTTP/1.1\r\n" + HOST + b"Content-Length: +5\r\n\r\nabcde", 400),
    "Content-Length in hex": (b"GET / HTTP/1.1\r\n" + HOST + b"Content-Length: 0x5\r\n\r\nabcde", 400),
    "conflicting Content-Length list": (b"GET / HTTP/1.1\r\n" + HOST + b"Content-Length: 5, 6\r\n\r\nabcdef", 400),
    "conflicting Content-Length fields": (
        b"GET / HTTP/1.1\r\n" + HOST + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nabcdef", 400),
    "Content-Length and Transfer-Encoding": (
        b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    "HTTP/1.1 without Host": (b"GET / HTTP/1.1\r\n\r\n", 400),
    "two Hosts": (b"GET / HTTP/1.1\r\n" + HOST + b"Host: y\r\n\r\n", 400),
    "HTTP/2.0": (b"GET / HTTP/2.0\r\n" + HOST + b"\r\n", 505),
    "HTTP/3.0": (b"GET / HTTP/3.0\r\n" + HOST + b"\r\n", 505),
    "unknown method": (b"BREW /pot HTTP/1.1\r\n" + HOST + b"\r\n", 501),
    # RFC 9112 6.3: without chunked last, the body's end is unknown: 400, not 501.
    "Transfer-Encoding gzip": (b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: gzip\r\n\r\n", 400),
    # chunked frames the body, but gzip cannot be undone: RFC 9112 6.1 says 501.
    "Transfer-Encoding gzip, chunked": (
        b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: gzip, chunked\r\n\r\n5\r\nabcde\r\n0\r\n\r\n", 501),
    "chunked not last": (b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked, gzip\r\n\r\n", 400),
}


@pytest.mark.parametrize("data, status", list(BAD_REQUESTS.values()), ids=list(BAD_REQUESTS))
def test_malformed_request_gets_its_status_and_a_closed_connection(server, connect, data, status):
    client = connect(server.port)
    client.send(data)
    response = client.response()
    assert_html_error(response, status)
    assert response.header("connection") == "close"
    assert client.closed_by_server(), "the server kept the connection open"


def test_http_1_0_needs_no_host(server, connect):
    client = connect(server.port)
    client.send(b"GET /hello.txt HTTP/1.0\r\n\r\n")
    assert client.response().body == HELLO


def test_a_request_body_is_consumed_not_parsed_as_a_request(server, connect):
    smuggled = b"GET /other.txt HTTP/1.1\r\nHost: x\r\n\r\n"
    client = connect(server.port)
    client.send(b"GET /hello.txt HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(smuggled)
                + smuggled + get(b"/docs/"))
    assert client.response().body == HELLO
    assert b"docs index" in client.response().body
    assert not client.closed_by_server(timeout=0.5)  # and no third response


def test_a_chunked_body_is_consumed(server, connect):
    smuggled = b"GET /other.txt HTTP/1.1\r\nHost: x\r\n\r\n"
    client = connect(server.port)
    client.send(b"POST /hello.txt HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                + b"%x\r\n" % len(smuggled) + smuggled + b"\r\n0\r\n\r\n" + get(b"/hello.txt"))
    assert client.response().status == 405
    assert client.response().body == HELLO
    assert not client.closed_by_server(timeout=0.5)


def test_three_pipelined_requests_are_answered_in_order(server, connect, big):
    client = connect(server.port, timeout=30)
    client.send(get(b"/big.bin") + get(b"/hello.txt") + get(b"/other.txt"))
    assert client.response().body == big
    assert client.response().body == HELLO
    assert client.response().body == b"the other file\n"


def test_requests_trickled_one_byte_at_a_time(server, connect):
    client = connect(server.port)
    client.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # each byte its own segment
    for byte in get(b"/hello.txt") + get(b"/other.txt"):
        client.send(bytes([byte]))
    assert client.response().body == HELLO
    assert client.response().body == b"the other file\n"


# Path traversal: whatever the encoding, nothing outside the root.

TRAVERSALS = [
    b"/../secret.txt", b"/../outside/secret.txt", b"/../../../../../../etc/passwd",
    b"/%2e%2e/secret.txt", b"/%2E%2E/secret.txt", b"/.%2e/secret.txt", b"/%2e./secret.txt",
    b"/%2e%2e%2fsecret.txt", b"/..%2fsecret.txt", b"/docs/..%2f..%2fsecret.txt", b"/docs/../../secret.txt",
    b"/./../secret.txt", b"/%2f..%2fsecret.txt", b"/%2f%2e%2e%2fsecret.txt", b"/docs%2f..%2f..%2fsecret.txt",
    b"/..\\secret.txt", b"/..%5csecret.txt", b"/%5c..%5csecret.txt", b"/docs\\..\\..\\secret.txt",
    b"/..%5c..%5c..%5cetc/passwd", b"/secret.txt%00", b"/..%00/secret.txt", b"/%00/../secret.txt",
    b"/../secret.txt%00.html", b"/%252e%252e/secret.txt", b"/%c0%ae%c0%ae/secret.txt",
    b"http://x/../secret.txt", b"http://x/../../etc/passwd", b"HTTP://x/%2e%2e/secret.txt",
    b"http://x/docs/../../secret.txt", b"//etc/passwd", b"///etc/passwd", b"//../secret.txt",
    b"/link.txt", b"/docs/../link.txt", b"/linkdir/secret.txt", b"/linkdir/", b"/linkdir",
    b"/linkdir/../../secret.txt",
]


@pytest.fixture
def links(site):
    symlink(site / "link.txt", site.parent / "secret.txt")
    symlink(site / "linkdir", site.parent / "outside", target_is_directory=True)


@pytest.mark.parametrize("target", TRAVERSALS, ids=[t.decode("latin-1") for t in TRAVERSALS])
def test_no_path_escapes_the_root(server, connect, links, target, secret):
    client = connect(server.port)
    client.send(get(target))
    response = client.response()
    assert response.status in (400, 403, 404), response
    assert secret not in response.body
    assert b"root:" not in response.body


def test_raw_nul_and_absolute_file_paths(server, connect, site, secret):
    client = connect(server.port)
    client.send(get(b"/secret.txt\x00"))
    assert client.response().status == 400
    for target in [str(site.parent / "secret.txt"), "/etc/passwd"]:
        client = connect(server.port)
        client.send(get(target.encode()))
        response = client.response()
        assert response.status in (400, 403, 404) and secret not in response.body


@needs_curl
@pytest.mark.parametrize("path", ["../secret.txt", "%2e%2e/secret.txt", "..%2fsecret.txt", "link.txt"])
def test_curl_path_as_is_cannot_escape(server, links, path, secret):
    out = curl("--path-as-is", "-w", "\n%{http_code}", server.url + path)
    body, _, status = out.rpartition("\n")
    assert status in ("400", "403", "404")
    assert secret.decode() not in body


# A folder redirect must never point at another host ("//evil.example/" is
# a protocol-relative URL; browsers also read "/\evil.example" as one).

REDIRECT_TARGETS = [
    (b"//evil.example", 301), (b"///evil.example", 301), (b"/%2fevil.example", 301),
    (b"/%2F%2Fevil.example", 301), (b"/.//evil.example", 301), (b"/docs/..//evil.example", 301),
    (b"//evil.example?a=//b", 301), (b"http://h//evil.example", 301), (b"/%2f/evil.example", 301),
    (b"/%5cevil.example", 400), (b"/%5c%5cevil.example", 400), (b"/\\evil.example", 400),
    (b"/\\\\evil.example", 400),
]


@pytest.mark.parametrize("target, status", REDIRECT_TARGETS, ids=[t.decode() for t, _ in REDIRECT_TARGETS])
def test_folder_redirect_stays_on_this_host(server, connect, site, target, status):
    (site / "evil.example").mkdir()
    client = connect(server.port)
    client.send(get(target))
    response = client.response()
    assert response.status == status
    if status == 301:
        location = response.header("location")
        assert location.startswith("/") and not location.startswith(("//", "/\\"))
        assert urlsplit(location).netloc == "" and urlsplit(location).scheme == ""
        assert location.split("?")[0] == "/evil.example/"
