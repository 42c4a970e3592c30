"""What the lessons say about the models as a whole, asserted.

- The registry lists the ten models in lesson order, and `labserver models`
  prints them that way, one line each: name, then description.
- Eight slow clients (GET /sleep?ms=300 each): the iterative model serves
  them one after the other (>= 8 x 0.3 s, each answer >= 0.3 s after the one
  before); every concurrent model overlaps them (well under 8 x 0.3 s).
- `labserver serve --model NAME --port 0` serves GET / for every model and
  exits 0 on Ctrl-C (SIGINT).
- Out of file descriptors, accept() fails while clients wait: every model
  that accepts with our own accept loop backs off (no CPU burnt retrying)
  and serves them once descriptors are free again.

The CPU cost of busy-waiting and the GIL (processes vs threads on /cpu) are
measured in test_early_models.py and test_thread_process_models.py.
"""

import queue
import re
import select
import socket
import subprocess
import sys
import threading
import time

import psutil
import pytest
from conftest import NEW_GROUP, interrupt, read_response

from labserver import DEMO_SITE
from labserver.servers import MODELS

LESSON_ORDER = ["iterative", "busywait", "select", "callbacks", "coroutines", "asyncio",
                "threads", "pool", "threadpool", "processes"]
INDEX = (DEMO_SITE / "index.html").read_bytes()
COMMAND = [sys.executable, "-m", "labserver"]
URL = re.compile(r"http://127\.0\.0\.1:(\d+)/")


# The registry and `labserver models`.


def test_registry_is_in_lesson_order():
    assert list(MODELS) == LESSON_ORDER
    for name, cls in MODELS.items():
        assert cls.name == name
        assert cls.concurrent == (name != "iterative"), name
        assert cls.description and "\n" not in cls.description, name


def test_models_command_prints_one_line_per_model():
    result = subprocess.run([*COMMAND, "models"], capture_output=True, text=True, encoding="utf-8", timeout=60)
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
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, **NEW_GROUP)
             for name in MODELS}
    try:
        # Each first line as it comes, read by a thread per child (select() on pipes is POSIX-only).
        lines = queue.Queue()
        for name, proc in procs.items():
            threading.Thread(target=lambda name=name, proc=proc: lines.put((name, proc.stdout.readline())),
                             daemon=True).start()
        deadline = time.monotonic() + 60
        for _ in procs:
            try:
                name, line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError("no Serving line within 60 s from some models") from None
            proc = procs[name]
            line = line.decode()
            match = URL.search(line)
            assert match and f"with the {name} model" in line, (name, line, proc.poll())
            with socket.create_connection(("127.0.0.1", int(match.group(1))), timeout=10) as sock:
                sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                assert read_response(sock) == (200, INDEX), name
            interrupt(proc)  # Ctrl-C, with the keep-alive connection closed: no idle wait
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


# Out of file descriptors: back off, then recover.

# A server in a process of its own whose file descriptor limit, once it is
# listening, leaves room for FREE_FDS more: the rest of the clients must wait.
FREE_FDS = 4
EMFILE_SCRIPT = """
import resource, sys
import psutil
from labserver.servers import MODELS
with MODELS[sys.argv[1]]() as srv:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (psutil.Process().num_fds() + int(sys.argv[2]), hard))
    print(srv.port, flush=True)
    sys.stdin.read()  # serve until the test closes our stdin
"""
# Not here: the busy-wait model spins anyway, the iterative one accepts one
# client at a time, the processes model accepts in its workers (whose limit is
# not lowered), and asyncio accepts with asyncio's own loop, not ours.
OWN_ACCEPT = [name for name in MODELS if name not in ("busywait", "iterative", "processes", "asyncio")]


def cpu_seconds(proc):
    times = proc.cpu_times()
    return times.user + times.system


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX file descriptor limits")
@pytest.mark.parametrize("name", OWN_ACCEPT)
def test_out_of_file_descriptors_the_server_backs_off_then_recovers(name):
    proc = subprocess.Popen([sys.executable, "-c", EMFILE_SCRIPT, name, str(FREE_FDS)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    clients = []
    try:
        port = int(proc.stdout.readline())
        request = b"GET /bytes/10 HTTP/1.1\r\nHost: x\r\n\r\n"  # no file to open
        for _ in range(FREE_FDS + 4):  # the first ones take every free descriptor
            clients.append(socket.create_connection(("127.0.0.1", port), timeout=10))
            clients[-1].sendall(request)
        time.sleep(0.5)  # let the server hit the limit
        server = psutil.Process(proc.pid)
        before, start = cpu_seconds(server), time.monotonic()
        time.sleep(1.5)
        share = (cpu_seconds(server) - before) / (time.monotonic() - start)
        assert share < 0.2, f"the server used {share:.2f} of a core, clients waiting, accept() failing"
        waiting = [sock for sock in clients if not select.select([sock], [], [], 0)[0]]
        assert waiting, "every client was served: the descriptor limit did not bite"
        for sock in clients:
            if sock not in waiting:  # served: read and close, freeing a descriptor in the server
                assert read_response(sock) == (200, b"0123456789")
                sock.close()
        for sock in waiting:
            assert read_response(sock) == (200, b"0123456789")
    finally:
        for sock in clients:
            sock.close()
        proc.stdin.close()  # the server stops
        try:
            proc.wait(timeout=15)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()
            proc.stderr.close()
