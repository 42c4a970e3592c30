"""What the lessons say about the models as a whole, asserted.

- The registry lists the nine models in lesson order, and `labserver models`
  prints them that way, one line each: name, then description.
- Eight slow clients (GET /sleep?ms=300 each): the iterative model serves
  them one after the other (>= 8 x 0.3 s, each answer >= 0.3 s after the one
  before); every concurrent model overlaps them (well under 8 x 0.3 s).
- `labserver serve --model NAME --port 0` serves GET / for every model and
  exits 0 on Ctrl-C (SIGINT).

The CPU cost of busy-waiting and the GIL (processes vs threads on /cpu) are
measured in test_early_models.py and test_thread_process_models.py.
"""

import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from labserver import DEMO_SITE
from labserver.servers import MODELS

LESSON_ORDER = ["iterative", "busywait", "select", "callbacks", "coroutines", "asyncio",
                "threads", "pool", "threadpool", "processes"]
INDEX = (DEMO_SITE / "index.html").read_bytes()
COMMAND = [sys.executable, "-m", "labserver"]
URL = re.compile(r"http://127\.0\.0\.1:(\d+)/")


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


# The registry and `labserver models`.


def test_registry_is_in_lesson_order():
    assert list(MODELS) == LESSON_ORDER
    for name, cls in MODELS.items():
        assert cls.name == name
        assert cls.concurrent == (name != "iterative"), name
        assert cls.description and "\n" not in cls.description, name


def test_models_command_prints_one_line_per_model():
    result = subprocess.run([*COMMAND, "models"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split(None, 1) for line in lines] == [[name, cls.description] for name, cls in MODELS.items()]


# Eight slow clients.

SLOW_CLIENTS = 8
SLEEP = 0.3


def slow_clients(port):
    """SLOW_CLIENTS clients at once, each GET /sleep?ms=300 on its own
    connection; returns (start, sorted times at which each got its answer)."""
    request = b"GET /sleep?ms=%d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % (SLEEP * 1000)
    done, errors = [], []

    def client():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
                sock.sendall(request)
                assert read_response(sock) == (200, b"waited %d ms\n" % (SLEEP * 1000))
                done.append(time.monotonic())
        except Exception as error:  # reported by the main thread
            errors.append(error)

    threads = [threading.Thread(target=client) for _ in range(SLOW_CLIENTS)]
    start = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    return start, sorted(done)


@pytest.mark.parametrize("name", list(MODELS))
def test_slow_clients_are_serialized_or_overlap(name):
    options = {"workers": 2} if name == "processes" else {}
    with MODELS[name](**options) as srv:  # a fresh server: the busywait one spins only this long
        start, done = slow_clients(srv.port)
    total = done[-1] - start
    serial = SLOW_CLIENTS * SLEEP
    if MODELS[name].concurrent:
        assert total >= SLEEP * 0.98
        assert total < serial / 2, f"{SLOW_CLIENTS} x /sleep?ms=300 took {total:.2f} s: they did not overlap"
    else:
        # Each client is accepted only once the one before has closed, so its
        # 0.3 s begin after the previous answer arrived.
        gaps = [later - earlier for earlier, later in zip(done, done[1:])]
        assert min(gaps) >= SLEEP * 0.95, f"answers {gaps} apart: two clients were served at once"
        assert serial * 0.98 <= total < serial + 4.0, f"{total:.2f} s"


# `labserver serve --model NAME` for every model.


def test_serve_command_serves_every_model():
    """All models start together; each is fetched and stopped as soon as it
    prints its URL (so the busywait one spins only briefly)."""
    procs = {name: subprocess.Popen([*COMMAND, "serve", "--model", name, "--port", "0", "--quiet"],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for name in MODELS}
    try:
        waiting = {proc.stdout: name for name, proc in procs.items()}
        deadline = time.monotonic() + 60
        while waiting:
            ready, _, _ = select.select(list(waiting), [], [], max(0.0, deadline - time.monotonic()))
            assert ready, f"no Serving line within 60 s from {sorted(waiting.values())}"
            for stdout in ready:
                name = waiting.pop(stdout)
                proc = procs[name]
                line = stdout.readline().decode()
                match = URL.search(line)
                assert match and f"with the {name} model" in line, (name, line, proc.poll())
                with socket.create_connection(("127.0.0.1", int(match.group(1))), timeout=10) as sock:
                    sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                    assert read_response(sock) == (200, INDEX), name
                proc.send_signal(signal.SIGINT)  # with the keep-alive connection closed: no idle wait
        for name, proc in procs.items():
            out, err = proc.communicate(timeout=15)
            assert proc.returncode == 0, (name, proc.returncode, err)
            assert out.decode().strip() == "Stopped.", (name, out)
            assert b"Traceback" not in err, (name, err)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
            proc.communicate()
