"""One HTTP conformance suite, run against every model in labserver.servers.MODELS.

The parameters come from MODELS when the tests are collected, so a model
added to the registry is covered without touching this file. Each model gets
one server for the whole module (a module-scoped fixture); only the stop test
starts fresh servers. Every client closes its connection as soon as it is
done: the iterative model serves one connection at a time, so a connection
left open would hold up the next test for its idle timeout.

Checked for each model: GET and HEAD byte-exact (demo-site pages, names with
spaces and non-ASCII letters), keep-alive, pipelining, the statuses of the
foundation's bad requests (with Connection: close and a closed socket), path
traversal, a file of several MB whole and in ranges, the workload routes,
a second client while a first one is connected (served at once, or for the
iterative model only once the first has gone: its documented behaviour), and
a prompt, clean stop() with idle keep-alive clients connected.
"""

import os
import select
import shutil
import socket
import threading
import time

import psutil
import pytest
from conftest import child_processes, get, labserver_threads

from labserver import DEMO_SITE
from labserver.servers import MODELS

MB = 1024 * 1024
BIG_SIZE = 5 * MB + 4321  # several MB, and not a multiple of any buffer size
SECRET = b"secret outside the root: 41c9e0d7\n"
STOP_BUDGET = {"processes": 3.0}  # seconds stop() may take; every other model: DEFAULT_STOP_BUDGET
DEFAULT_STOP_BUDGET = 1.5


def make_server(name, root, **options):
    if name == "processes":
        options.setdefault("workers", 2)  # the default is one per CPU: keep it small on any machine
    return MODELS[name](root=root, **options)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """A copy of the demo site plus big.bin, with a secret and a symlink to it beside."""
    base = tmp_path_factory.mktemp("conformance")
    (base / "secret.txt").write_bytes(SECRET)
    root = base / "root"
    shutil.copytree(DEMO_SITE, root)
    (root / "big.bin").write_bytes(os.urandom(BIG_SIZE))
    try:
        (root / "link.txt").symlink_to(base / "secret.txt")
    except OSError:  # Windows without Developer Mode: the symlink rows have nothing to test
        pass
    return root


@pytest.fixture(scope="module", params=list(MODELS))
def model(request):
    """A model's name; pytest runs every test of one model before the next model."""
    return request.param


@pytest.fixture(scope="module")
def srv(model, root):
    with make_server(model, root) as server:
        yield server


def one_response(connect, port, data, head=False):
    """Send `data` on a new connection, read one response, close."""
    client = connect(port)
    try:
        client.send(data)
        return client.response(head=head)
    finally:
        client.close()


def without_date(headers):
    return [(name, value) for name, value in headers if name != "date"]


# GET and HEAD, byte-exact.

PAGES = {
    b"/": "index.html",
    b"/about.html": "about.html",
    b"/lessons/": "lessons/index.html",
    b"/css/style.css": "css/style.css",
    b"/js/site.js": "js/site.js",
    b"/favicon.ico": "favicon.ico",
    b"/images/logo.svg": "images/logo.svg",
    b"/images/banner.png": "images/banner.png",
    b"/docs/na%C3%AFve%20notes.txt": "docs/naïve notes.txt",
    b"/images/caf%C3%A9%20au%20lait.png": "images/café au lait.png",
    b"/images/caf\xc3\xa9%20au%20lait.png": "images/café au lait.png",  # raw UTF-8 in the target
}


@pytest.mark.parametrize("path", list(PAGES), ids=[p.decode("utf-8") for p in PAGES])
def test_get_is_byte_exact(srv, root, connect, path):
    response = one_response(connect, srv.port, get(path))
    assert response.status == 200
    assert response.body == (root / PAGES[path]).read_bytes()


def test_head_has_the_headers_of_get_and_no_body(srv, connect):
    client = connect(srv.port)
    for path in [b"/", b"/images/caf%C3%A9%20au%20lait.png", b"/big.bin", b"/missing.html"]:
        # HEAD then GET in one send: had HEAD sent a body, the GET's status line would not come next.
        client.send(get(path, b"HEAD") + get(path))
        head = client.response(head=True)
        full = client.response()
        assert head.status == full.status, path
        assert without_date(head.headers) == without_date(full.headers), path
        assert int(head.header("content-length")) == len(full.body) > 0, path
    assert not client.closed_by_server(timeout=0.2)


def test_keep_alive_serves_several_requests_on_one_connection(srv, root, connect):
    client = connect(srv.port)
    for path in [b"/", b"/css/style.css", b"/missing.html", b"/images/banner.png", b"/"]:
        client.send(get(path))  # one at a time: the next only once this one is answered
        response = client.response()  # EOFError if the server closed after the previous one
        if path in PAGES:
            assert (response.status, response.body) == (200, (root / PAGES[path]).read_bytes())
        else:
            assert response.status == 404
        assert response.header("connection") != "close"
    assert not client.closed_by_server(timeout=0.2)


def test_three_pipelined_requests_are_answered_in_order(srv, root, connect):
    client = connect(srv.port, timeout=30)
    client.send(get(b"/big.bin") + get(b"/about.html") + get(b"/docs/na%C3%AFve%20notes.txt"))
    assert client.response().body == (root / "big.bin").read_bytes()
    assert client.response().body == (root / "about.html").read_bytes()
    assert client.response().body == (root / "docs" / "naïve notes.txt").read_bytes()
    client.send(get(b"/"))  # and the connection is still usable
    assert client.response().body == (root / "index.html").read_bytes()


def test_requests_trickled_one_byte_at_a_time(srv, root, connect):
    client = connect(srv.port)
    client.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # each byte its own segment
    for byte in get(b"/about.html") + get(b"/css/style.css"):
        client.send(bytes([byte]))
    assert client.response().body == (root / "about.html").read_bytes()
    assert client.response().body == (root / "css" / "style.css").read_bytes()


def test_http_1_0_gets_its_response_then_a_closed_connection(srv, root, connect):
    client = connect(srv.port)
    try:
        client.send(b"GET /about.html HTTP/1.0\r\n\r\n")
        response = client.response()
        assert (response.status, response.body) == (200, (root / "about.html").read_bytes())
        assert response.header("connection") == "close"
        assert client.closed_by_server(timeout=3.0)
    finally:
        client.close()


# Bad input: the foundation's statuses, then Connection: close and a closed socket.

HOST = b"Host: x\r\n"
BAD_REQUESTS = {
    "request line too long": (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n" + HOST + b"\r\n", 414),
    "request line too long, unfinished": (b"GET /" + b"a" * 20000, 414),
    "too many header fields": (
        b"GET / HTTP/1.1\r\n" + HOST + b"".join(b"X-N%d: 1\r\n" % i for i in range(150)) + b"\r\n", 431),
    "header section too large": (
        b"GET / HTTP/1.1\r\n" + HOST + b"".join(b"X-F%d: %s\r\n" % (i, b"v" * 1000) for i in range(40)) + b"\r\n",
        431),
    "malformed request line": (b"GE(T / HTTP/1.1\r\n" + HOST + b"\r\n", 400),
    "request line without version": (b"GET /\r\n" + HOST + b"\r\n", 400),
    "HTTP/1.1 without Host": (b"GET / HTTP/1.1\r\n\r\n", 400),
    "HTTP/2.0": (b"GET / HTTP/2.0\r\n" + HOST + b"\r\n", 505),
    "unknown method": (b"BREW /pot HTTP/1.1\r\n" + HOST + b"\r\n", 501),
    "Content-Length and Transfer-Encoding": (
        b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
}


@pytest.mark.parametrize("data, status", list(BAD_REQUESTS.values()), ids=list(BAD_REQUESTS))
def test_bad_request_gets_its_status_and_a_closed_connection(srv, connect, data, status):
    client = connect(srv.port)
    try:
        client.send(data)
        response = client.response()
        assert response.status == status
        assert response.header("content-type") == "text/html; charset=utf-8"
        assert str(status).encode() in response.body
        assert response.header("connection") == "close"
        assert client.closed_by_server(timeout=3.0), "the server kept the connection open"
    finally:
        client.close()


TRAVERSALS = [
    b"/../secret.txt", b"/%2e%2e/secret.txt", b"/.%2e/secret.txt", b"/..%2fsecret.txt",
    b"/docs/..%2f..%2fsecret.txt", b"/docs/../../secret.txt", b"/..%5csecret.txt", b"/..\\secret.txt",
    b"/%252e%252e/secret.txt", b"/secret.txt%00", b"http://x/../secret.txt", b"//../secret.txt",
    b"/link.txt", b"/../../../../../../etc/passwd",
]


def test_no_path_escapes_the_root(srv, connect):
    for target in TRAVERSALS:
        response = one_response(connect, srv.port, get(target))
        assert response.status in (400, 403, 404), (target, response)
        assert SECRET not in response.body, target
        assert b"root:" not in response.body, target


# A file of several MB, whole and in ranges.


def test_big_file_is_byte_exact(srv, root, connect):
    client = connect(srv.port, timeout=30)
    client.send(get(b"/big.bin"))
    response = client.response()
    assert response.status == 200
    assert response.header("content-length") == str(BIG_SIZE)
    assert response.body == (root / "big.bin").read_bytes()


@pytest.mark.parametrize("spec, start, end", [
    ("0-0", 0, 1),
    ("65530-70000", 65530, 70001),
    ("1000000-2999999", 1000000, 3000000),
    ("-100", BIG_SIZE - 100, BIG_SIZE),
    ("4000000-", 4000000, BIG_SIZE),
])
def test_range_gives_206(srv, root, connect, spec, start, end):
    client = connect(srv.port, timeout=30)
    client.send(get(b"/big.bin", extra=f"Range: bytes={spec}\r\n".encode()))
    response = client.response()
    assert response.status == 206
    assert response.header("content-range") == f"bytes {start}-{end - 1}/{BIG_SIZE}"
    assert response.body == (root / "big.bin").read_bytes()[start:end]


def test_unsatisfiable_range_gives_416_and_keeps_the_connection(srv, root, connect):
    client = connect(srv.port)
    client.send(get(b"/big.bin", extra=f"Range: bytes={BIG_SIZE}-\r\n".encode()) + get(b"/about.html"))
    response = client.response()
    assert response.status == 416
    assert response.header("content-range") == f"bytes */{BIG_SIZE}"
    assert client.response().body == (root / "about.html").read_bytes()


# The workload routes.


def expected_bytes(n):
    """What /bytes/N sends, written out independently: lines of 64 printable bytes."""
    line = bytes(range(ord("0"), ord("0") + 64)) + b"\n"
    return (line * (n // len(line) + 1))[:n]


def test_bytes_route_sends_exactly_n_bytes(srv, connect):
    client = connect(srv.port, timeout=30)
    sizes = [0, 1, 65, 100_000, 3 * MB + 1]
    client.send(b"".join(get(b"/bytes/%d" % n) for n in sizes))
    for n in sizes:
        response = client.response()
        assert response.status == 200, n
        assert response.header("content-type") == "application/octet-stream"
        assert len(response.body) == n
        assert response.body[:65] == expected_bytes(min(n, 65))  # the prefix a student sees
        assert response.body == expected_bytes(n)


def test_cpu_route(srv, connect):
    response = one_response(connect, srv.port, get(b"/cpu?ms=10"))
    assert response.status == 200
    assert response.body.startswith(b"burned 10 ms of CPU")


def test_sleep_route_waits(srv, connect):
    client = connect(srv.port)
    start = time.monotonic()
    client.send(get(b"/sleep?ms=50"))
    response = client.response()
    elapsed = time.monotonic() - start
    assert (response.status, response.body) == (200, b"waited 50 ms\n")
    assert elapsed >= 0.049, f"/sleep?ms=50 answered after {elapsed * 1000:.1f} ms"
    assert elapsed < 5.0


OUT_OF_RANGE = [b"/bytes/16777217", b"/bytes/-1", b"/bytes/1e3", b"/cpu?ms=2001", b"/cpu", b"/cpu?ms=-5",
                b"/sleep?ms=10001", b"/sleep?ms=abc", b"/sleep"]


def test_workload_params_out_of_range_give_400(srv, connect):
    # An application's 400 is not a framing error: the connection stays usable.
    client = connect(srv.port)
    client.send(b"".join(get(path) for path in OUT_OF_RANGE) + get(b"/bytes/3"))
    for path in OUT_OF_RANGE:
        response = client.response()
        assert response.status == 400, path
        assert int(response.header("content-length")) == len(response.body) > 0
    assert client.response().body == b"012"


# Two clients: a concurrent model serves the second at once; the iterative
# model, by design, only once the first has closed its connection.


def test_second_client_while_the_first_holds_a_keep_alive_connection(srv, root, connect):
    index = (root / "index.html").read_bytes()
    first, second = connect(srv.port), connect(srv.port)
    first.send(get(b"/"))
    assert first.response().body == index  # and now it sits idle, connection open
    second.send(get(b"/"))
    if type(srv).concurrent:
        start = time.monotonic()
        assert second.response().body == index
        assert time.monotonic() - start < 2.0
        assert not first.closed_by_server(timeout=0.1)  # the first still has its connection
    else:
        assert second.closed_by_server(timeout=0.5) is False  # connected, not answered
        first.close()
        start = time.monotonic()
        assert second.response().body == index
        assert time.monotonic() - start < 1.0  # right after the close, not after an idle timeout
    first.close()
    second.close()


# A slowloris: a request trickled in so slowly that it never ends.

TRICKLE_TIMEOUT = 1.0  # the request_timeout of this test's servers
TRICKLE_GAP = 0.2  # seconds between two bytes: never idle for long, never done


def test_a_trickled_request_gets_408_and_a_close_at_the_request_deadline(model, root, connect):
    """Every model, blocking ones included, enforces the total request
    deadline: a client sending a byte every 0.2 s is cut at request_timeout,
    not kept for as long as it keeps trickling (nor cut much earlier)."""
    with make_server(model, root, request_timeout=TRICKLE_TIMEOUT, idle_timeout=10.0) as srv:
        client = connect(srv.port)
        client.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # each byte its own segment
        trickle = iter(b"GET / HTTP/1.1\r\nHost: test\r\nX-Pad: " + b"p" * 1000)
        start = time.monotonic()
        while not select.select([client.sock], [], [], TRICKLE_GAP)[0]:  # until the server answers
            assert time.monotonic() - start < TRICKLE_TIMEOUT + 5.0, "still no answer: never cut off"
            client.send(bytes([next(trickle)]))
        answered = time.monotonic() - start
        response = client.response()
        assert response.status == 408
        assert response.header("connection") == "close"
        assert client.closed_by_server(timeout=2.0)
    # The deadline counts from the first byte; the server takes a moment to notice.
    assert TRICKLE_TIMEOUT - 0.1 <= answered <= TRICKLE_TIMEOUT + 2.0, f"cut after {answered:.2f} s"


# Stopping: prompt, with idle keep-alive clients connected, and nothing left behind.


def test_stop_with_idle_clients_is_prompt_and_leaves_nothing(model, root, connect):
    threads_before = set(threading.enumerate())  # including the module's own servers
    pids_before = {child.pid for child in psutil.Process().children(recursive=True)}
    index = (root / "index.html").read_bytes()
    srv = make_server(model, root).start()
    port = srv.port
    try:
        clients = [connect(port) for _ in range(3)]
        for n, client in enumerate(clients):
            client.send(get(b"/"))
            if n == 0 or MODELS[model].concurrent:  # the iterative model answers only the first
                assert client.response().body == index
        silent = connect(port)  # connected, never sends a byte
        time.sleep(0.2)  # let the server accept them
        start = time.monotonic()
        srv.stop()
        elapsed = time.monotonic() - start
        budget = STOP_BUDGET.get(model, DEFAULT_STOP_BUDGET)
        assert elapsed < budget, f"stop() took {elapsed:.2f} s (budget {budget} s)"
        assert not srv.running
        assert labserver_threads(threads_before) == []
        assert child_processes(pids_before) == []  # joined and reaped
        for client in [*clients, silent]:
            assert client.closed_by_server(timeout=1.0)
            client.close()
        start = time.monotonic()
        srv.stop()  # a second stop() does nothing
        assert time.monotonic() - start < 0.1
    finally:
        srv.stop()
    with socket.create_server(("127.0.0.1", port)):  # the port can be bound again
        pass
