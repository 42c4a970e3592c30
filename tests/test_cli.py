"""`python -m labserver`, run as a student runs it: in a subprocess.

`serve` prints where it listens (flushed, so a pipe sees it at once), serves
until SIGINT or SIGTERM, then prints "Stopped." and exits 0. A mistake gets
exactly one line on stderr and exit status 2. Every process is killed in a
finally block, whatever the test's outcome.
"""

import os
import re
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager

import pytest
import requests

from conftest import NEW_GROUP, SIGTERM_IS_A_SIGNAL, WINDOWS, interrupt, readline_within
from labserver import DEMO_SITE, ThreadPoolServer

COMMAND = [sys.executable, "-m", "labserver"]
URL = re.compile(r"http://127\.0\.0\.1:(\d+)/")


@contextmanager
def serving(*args):
    """Start `labserver serve --port 0 ARGS`; yield (process, first stdout line, url)."""
    proc = subprocess.Popen([*COMMAND, "serve", "--port", "0", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8", **NEW_GROUP)
    try:
        line = readline_within(proc.stdout, 30, "Serving line (is it flushed?)")
        match = URL.search(line)
        assert match, f"no URL in {line!r}; stderr: {proc.stderr.read() if proc.poll() is not None else ''}"
        yield proc, line, match.group(0)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def stop(proc, sig=signal.SIGINT):
    """Send `sig` (SIGINT: Ctrl-C, on every OS); return (exit status, rest of stdout, stderr)."""
    interrupt(proc) if sig == signal.SIGINT else proc.send_signal(sig)
    out, err = proc.communicate(timeout=15)
    return proc.returncode, out, err


def test_serves_the_demo_site_by_default():
    with serving("--quiet") as (proc, line, url):
        assert line.startswith("Serving ")
        assert str(DEMO_SITE) in line and "threadpool" in line
        assert url.startswith("http://127.0.0.1:")  # the default host
        home = requests.get(url, timeout=10)
        assert home.status_code == 200
        assert home.content == (DEMO_SITE / "index.html").read_bytes()
        css = requests.get(url + "css/style.css", timeout=10)
        assert css.content == (DEMO_SITE / "css" / "style.css").read_bytes()
        status, out, err = stop(proc)
    assert status == 0
    assert out.strip() == "Stopped."
    assert err == ""


def test_root_option_serves_that_folder(tmp_path):
    (tmp_path / "page.html").write_bytes(b"<p>mine</p>\n")
    with serving("--root", str(tmp_path), "--quiet") as (proc, line, url):
        assert str(tmp_path) in line
        assert requests.get(url + "page.html", timeout=10).content == b"<p>mine</p>\n"
        listing = requests.get(url, timeout=10)  # no index.html: a listing
        assert listing.status_code == 200 and "page.html" in listing.text
        assert requests.get(url + "index.html", timeout=10).status_code == 404  # not the demo site
        assert stop(proc)[0] == 0


@pytest.mark.parametrize("sig", [signal.SIGINT, pytest.param(signal.SIGTERM, marks=SIGTERM_IS_A_SIGNAL)],
                         ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_it_cleanly_even_with_a_client_connected(sig):
    with serving("--quiet") as (proc, line, url):
        port = int(URL.search(line).group(1))
        with socket.create_connection(("127.0.0.1", port), timeout=10) as idle:
            idle.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert idle.recv(100).startswith(b"HTTP/1.1 200 ")
            status, out, err = stop(proc, sig)  # the keep-alive client is still connected
            assert status == 0
            assert "Stopped." in out
            assert "Traceback" not in err
        # Nothing listens any more.
        with pytest.raises(requests.ConnectionError):
            requests.get(url, timeout=5)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("sig", [signal.SIGINT, pytest.param(signal.SIGTERM, marks=SIGTERM_IS_A_SIGNAL)],
                         ids=["SIGINT", "SIGTERM"])
@pytest.mark.skipif(WINDOWS, reason="needs a full pipe that os.set_blocking() can fill: POSIX pipes")
def test_a_signal_while_the_serving_line_is_printed(sig):
    # A student's early Ctrl-C, made deterministic: stdout is a pipe that we
    # fill first, so the server's flushed print blocks until we read.
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    filled = 0
    try:
        while True:
            filled += os.write(write_end, b"." * 4096)
    except BlockingIOError:
        pass
    os.set_blocking(write_end, True)
    port = free_port()
    proc = subprocess.Popen([*COMMAND, "serve", "--port", str(port), "--quiet"],
                            stdout=write_end, stderr=subprocess.PIPE, text=True, encoding="utf-8")
    os.close(write_end)
    stdout = os.fdopen(read_end, "rb")
    try:
        deadline = time.monotonic() + 30
        while True:  # listening: so it is at, or in, its blocked print
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None, "the server did not start"
                time.sleep(0.05)
        time.sleep(0.3)
        proc.send_signal(sig)
        out = stdout.read()[filled:].decode()
        assert proc.wait(timeout=15) == 0
        assert "Stopped." in out
        assert "Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
        stdout.close()


def test_access_log_on_stderr_unless_quiet():
    with serving() as (proc, line, url):
        assert requests.get(url + "about.html", timeout=10).status_code == 200
        assert requests.get(url + "nope.html", timeout=10).status_code == 404
        _, _, err = stop(proc)
    assert re.search(r'"GET /about\.html HTTP/1\.1" 200 \d+', err), err
    assert re.search(r'"GET /nope\.html HTTP/1\.1" 404 \d+', err), err
    with serving("--quiet") as (proc, line, url):
        requests.get(url + "about.html", timeout=10)
        _, _, err = stop(proc)
    assert err == ""


def test_explicit_host_is_shown_in_the_url():
    with serving("--host", "127.0.0.1", "--quiet") as (proc, line, url):
        assert " at http://127.0.0.1:" in line
        assert requests.get(url, timeout=10).status_code == 200
        assert stop(proc)[0] == 0


def run(*args):
    """Run the CLI to completion; subprocess.run kills it after the timeout."""
    return subprocess.run([*COMMAND, *args], capture_output=True, text=True, encoding="utf-8", timeout=30)


@pytest.fixture
def busy_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield str(sock.getsockname()[1])


BAD_ARGS = {
    "nonexistent root": ["serve", "--root", "/no/such/folder", "--port", "0"],
    "root is a file": ["serve", "--root", str(DEMO_SITE / "index.html"), "--port", "0"],
    "port in use": ["serve", "--port", "BUSY"],
    "unknown model": ["serve", "--model", "nosuchmodel", "--port", "0"],
    "port not a number": ["serve", "--port", "abc"],
    "port too big": ["serve", "--port", "70000"],
    "zero workers": ["serve", "--workers", "0", "--port", "0"],
    "negative workers": ["serve", "--workers=-3", "--port", "0"],
    "workers for a model without": ["serve", "--model", "select", "--workers", "2", "--port", "0"],
    "unknown option": ["serve", "--colour", "blue"],
    "unknown command": ["launch"],
    "no command": [],
}


@pytest.mark.parametrize("args", list(BAD_ARGS.values()), ids=list(BAD_ARGS))
def test_bad_arguments_give_one_line_and_exit_2(args, busy_port):
    result = run(*[busy_port if a == "BUSY" else a for a in args])
    assert result.returncode == 2, result
    assert result.stdout == ""  # in particular, never "Serving ..."
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and result.stderr.endswith("\n"), result.stderr
    assert lines[0].startswith("labserver") and "error" in lines[0], lines[0]


def test_port_in_use_message_names_the_port(busy_port):
    result = run("serve", "--port", busy_port)
    assert busy_port in result.stderr and "in use" in result.stderr


def test_models_lists_threadpool_with_its_description():
    result = run("models")
    assert result.returncode == 0 and result.stderr == ""
    rows = {line.split(None, 1)[0]: line.split(None, 1)[1] for line in result.stdout.splitlines()}
    assert rows["threadpool"] == ThreadPoolServer.description
    assert ThreadPoolServer.description  # not empty
