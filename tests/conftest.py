"""Shared fixtures: a small site on disk, a running server, a raw-socket client;
and the helpers several test modules use (import them: from conftest import get).

    def test_x(server, connect):
        client = connect(server.port)
        client.send(b"GET / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")
        assert client.response().status == 200
"""

import os
import signal
import socket
import subprocess
import sys
import threading
import time

import psutil
import pytest

from labserver import ThreadPoolServer
from labserver.protocol import ReceivedResponse, ResponseReader

WINDOWS = sys.platform == "win32"
# Popen options for a child that the tests interrupt as a student would with
# Ctrl-C: on Windows only a console event reaches another process, and only
# one started in a process group of its own (CTRL_BREAK_EVENT; Python: SIGBREAK).
NEW_GROUP = {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP} if WINDOWS else {}
SIGTERM_IS_A_SIGNAL = pytest.mark.skipif(WINDOWS, reason="on Windows SIGTERM is TerminateProcess: "
                                                         "nothing the program can handle")


def interrupt(proc):
    """Ctrl-C for a child started with **NEW_GROUP."""
    proc.send_signal(signal.CTRL_BREAK_EVENT if WINDOWS else signal.SIGINT)


def readline_within(stream, seconds, what="a line"):
    """The next line of a child's pipe, waiting at most `seconds`: select() on a pipe is POSIX-only."""
    lines = []
    reader = threading.Thread(target=lambda: lines.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(seconds)
    assert lines, f"no {what} within {seconds} s"
    return lines[0]


def symlink(link, target, target_is_directory=False):
    """os.symlink, or a skip where the system refuses (Windows without Developer Mode)."""
    try:
        os.symlink(target, link, target_is_directory=target_is_directory)
    except (OSError, NotImplementedError) as error:
        pytest.skip(f"this system cannot create symlinks ({error}); on Windows they need Developer Mode")


# Outside the document root, next to it: no request may ever return this.
SECRET = b"secret outside the root: 7f3a9c2e\n"


@pytest.fixture
def site(tmp_path):
    """tmp_path/root, a small site, and tmp_path/secret.txt (+ outside/) beside it."""
    (tmp_path / "secret.txt").write_bytes(SECRET)
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.txt").write_bytes(SECRET)
    root = tmp_path / "root"
    root.mkdir()
    (root / "index.html").write_bytes(b"<!DOCTYPE html><title>home</title><p>home page</p>\n")
    (root / "hello.txt").write_bytes(b"hello, world\n")
    (root / "other.txt").write_bytes(b"the other file\n")
    (root / "docs").mkdir()
    (root / "docs" / "index.html").write_bytes(b"<!DOCTYPE html><title>docs</title><p>docs index</p>\n")
    return root


@pytest.fixture
def server(site):
    with ThreadPoolServer(root=site, port=0) as srv:
        yield srv


class RawResponse(ReceivedResponse):
    """A response read by labserver.protocol's ResponseReader, with a stricter header()."""

    def header(self, name, default=None):
        """The value of a header that must appear at most once, or None."""
        values = [value for key, value in self.headers if key == name.lower()]
        assert len(values) <= 1, f"{name} appears {len(values)} times"
        return values[0] if values else default


class RawClient:
    """One TCP connection: send any bytes, read back exactly one response at a time.

    The framing is read by labserver.protocol's ResponseReader, the client side
    of the kit's HTTP core, so the tests need no parser of their own."""

    def __init__(self, port, timeout=10.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.timeout = timeout
        self.reader = ResponseReader()

    def send(self, data):
        self.sock.sendall(data)

    def response(self, head=False):
        """The next response; `head=True` for the answer to HEAD (no body)."""
        self.reader.expect("HEAD" if head else "GET")
        while (response := self.reader.next_response()) is None:
            if self.reader.closed:
                raise EOFError("server closed the connection before a whole response")
            self.reader.feed(self.sock.recv(1 << 16))
        # The kit's servers frame every body by its length: a body that ends at the close would be a bug.
        assert response.framing in ("length", "none"), f"a body framed by {response.framing!r}"
        return RawResponse(**vars(response))

    def closed_by_server(self, timeout=5.0):
        """True if the server closes (EOF or reset) within `timeout` without
        sending anything more; False if the connection is still open then."""
        assert not self.reader.has_partial_response, "unexpected extra bytes"
        deadline = time.monotonic() + timeout
        try:
            while (left := deadline - time.monotonic()) > 0:
                self.sock.settimeout(left)
                data = self.sock.recv(1 << 16)
                assert not data, f"unexpected extra bytes {data[:200]!r}"
                return True
            return False
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True
        finally:
            self.sock.settimeout(self.timeout)

    def close(self):
        self.sock.close()


@pytest.fixture
def connect():
    """connect(port) -> RawClient; every one is closed at teardown."""
    clients = []

    def connect(port, timeout=10.0):
        client = RawClient(port, timeout)
        clients.append(client)
        return client

    yield connect
    for client in clients:
        client.close()


# Helpers shared by several test modules.


def get(path, method=b"GET", extra=b""):
    """The bytes of a small HTTP/1.1 request for `path`."""
    return method + b" " + path + b" HTTP/1.1\r\nHost: test\r\n" + extra + b"\r\n"


def read_response(sock):
    """One whole response on a blocking socket: (status, body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(1 << 16)
        assert chunk, f"closed before the head ended: {data!r}"
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.split(b"\r\n")
    length = int(next(line.split(b":", 1)[1] for line in lines if line.lower().startswith(b"content-length:")))
    while len(body) < length:
        chunk = sock.recv(1 << 16)
        assert chunk, "closed in the middle of the body"
        body += chunk
    assert len(body) == length, "more bytes than Content-Length"
    return int(lines[0].split(b" ")[1]), body


def labserver_threads(before=()):
    """The names of the server threads running now, except those in `before`."""
    return [t.name for t in threading.enumerate() if t.name.startswith("labserver-") and t not in before]


def child_processes(before=()):
    """Our child processes (recursively) whose pid is not in `before`, except
    multiprocessing's resource tracker: one per parent process, started with
    the first worker process, it lives as long as we do."""
    children = []
    for child in psutil.Process().children(recursive=True):
        try:
            if child.pid not in before and "resource_tracker" not in " ".join(child.cmdline()):
                children.append(child)
        except psutil.NoSuchProcess:
            pass
    return children


def open_fds():
    """File descriptors (handles on Windows) this process holds."""
    proc = psutil.Process()
    return proc.num_fds() if hasattr(proc, "num_fds") else proc.num_handles()


def server_side_connections(port, proc=None, accepted_only=False):
    """The TCP sockets of `proc` (default: this process) on local port
    `port`: the listener and every accepted connection (only those, with
    accepted_only)."""
    proc = proc or psutil.Process()
    conns = proc.net_connections("tcp") if hasattr(proc, "net_connections") else proc.connections("tcp")
    return [c for c in conns if c.laddr and c.laddr.port == port and (c.raddr or not accepted_only)]


def wait_until(condition, timeout):
    """True as soon as condition() is; False if it still is not after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()
