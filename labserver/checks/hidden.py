"""Hidden checks: run only when the instructor grades (`labserver assignments hidden`).

This module is left out of the student release. Each function tries one
exercise on cases its visible check does not show (other sizes, other
orders, more clients), so that an answer fitted to the visible check's cases
fails here. The instructor's notebooks call them between
`### BEGIN HIDDEN TESTS` and `### END HIDDEN TESTS` in the check cells.
"""

import random
import socket
import threading
import time

from . import CheckFailed, StudentCall, check, dribbling_peer, expect, passed, plain, run_student
from . import lesson02, lesson03, lesson04, lesson09, lesson06, lesson07, lesson08


@check
def about_page(about, server):
    """Lesson 00: the response carries the request that made it, to this server."""
    request = getattr(about, "request", None)
    expect(request is not None and request.method == "GET" and request.url == server.url + "about.html",
           "about should be the response of requests.get(server.url + 'about.html')")
    passed("about came from a GET of about.html on this server")


@check
def recv_exactly(recv_exactly):
    """Lesson 01: random piece sizes over 200 KB, asked for in random amounts; a peer that closes right after."""
    rng = random.Random(1)
    data = bytes(rng.randrange(256) for _ in range(200_000))
    sizes, total = [], 0
    while total < len(data):
        sizes.append(min(rng.choice([1, 7, 1000, 4096, 30_000]), len(data) - total))
        total += sizes[-1]
    with dribbling_peer(data, interval=0, chunk=3000, close_after=True) as sock:
        got = b""
        for n in sizes:
            piece = run_student(recv_exactly, sock, n, deadline=5.0, sockets=[sock],
                                doing=f"asked for {n} bytes after {len(got):,} of a 200 KB stream")
            expect(plain(piece, bytes, bytearray) and len(piece) == n,
                   f"asked for {n} bytes after {len(got):,}, got {len(piece) if plain(piece, bytes, bytearray) else piece!r}")
            got += piece
    expect(got == data, "200 KB asked for in pieces of random sizes came back in the wrong order or changed")
    passed("recv_exactly reads a 200 KB stream in pieces of any size, up to the peer's close")


@check
def try_recv(try_recv):
    """Lesson 02: 5000 bytes waiting: try_recv returns what recv(1024) returns, the first 1024."""
    with lesson02.nonblocking_pairs() as [(sock, peer)]:
        data = bytes(range(256)) * 20
        peer.sendall(data[:5000])
        got = run_student(try_recv, sock, deadline=2.0, sockets=[sock], doing="5000 bytes were waiting")
        expect(got == data[:1024], f"5000 bytes were waiting: expected the first 1024 (recv(1024)), got "
                                   f"{len(got) if plain(got, bytes) else got!r} bytes")
    passed("try_recv takes at most 1024 bytes")


@check
def first_ready(first_ready):
    """Lesson 02: 32 sockets, the data on the last one."""
    with lesson02.nonblocking_pairs(32) as pairs:
        socks = [sock for sock, _ in pairs]
        with lesson02.sends_at(pairs[31][1], 0.1, b"last"):
            got = run_student(first_ready, socks, 3.0, deadline=5.0, sockets=socks,
                              doing="socket 31 of 32 got b'last' after 0.1 s")
        expect(got == (31, b"last"), f"socket 31 of 32 got b'last': expected (31, b'last'), got {got!r:.60}")
    passed("first_ready finds the last of 32 sockets")


@check
def echo_server(echo_server):
    """Lesson 03: one client, then eight that speak in a random order, some several times."""
    with lesson03.EchoConversation(echo_server, 1) as talk:
        talk.connect(1)
        talk.talk(1, b"only one")
        talk.leave(1)
        if not talk.attempt.wait(lesson03.REPLY_TIMEOUT):
            talk.trouble("n=1: the only client had come and gone, but echo_server did not return")
    rng = random.Random(3)
    with lesson03.EchoConversation(echo_server, 8) as talk:
        for number in range(1, 9):
            talk.connect(number)
        for number in rng.sample(range(1, 9), 8) + rng.sample(range(1, 9), 4):
            talk.talk(number, f"client {number} says {rng.random()}".encode(), pieces=rng.choice([1, 2]))
        for number in list(talk.clients):
            talk.leave(number)
        if not talk.attempt.wait(lesson03.REPLY_TIMEOUT):
            talk.trouble("all 8 clients had come and gone, but echo_server did not return")
        if talk.attempt.error is not None:
            talk.trouble("after all 8 clients had left")
    passed("echo_server serves one client, and eight in a random order")


@check
def upper_echo(callback):
    """Lesson 04: eight clients of one selector loop, speaking in a random order, two leaving in the middle."""
    rng = random.Random(4)
    loop, clients = lesson04.SelectorLoop(callback), []
    try:
        for _ in range(8):
            clients.append(loop.connect())
        here = list(range(8))
        for turn in range(3):
            speakers = rng.sample(here, len(here))
            messages = {i: f"turn {turn}, client {i}: {rng.random()}\n".encode() for i in speakers}
            for i in speakers:  # all of them send before anyone reads
                clients[i].send(messages[i])
            for i in rng.sample(speakers, len(speakers)):
                lesson04._receive(loop, clients, i, messages[i], f"turn {turn}, eight clients sent at once; ")
            leaving = here.pop(rng.randrange(len(here)))
            lesson04._goodbye(loop, clients, leaving)
            loop.after_goodbye()
    finally:
        for client in clients:
            client.close()
        loop.close()
    passed("the callback serves eight clients in a random order while some leave")


@check
def upper_echo_task(task_function):
    """Lesson 05: the generator task, with a 1 MiB message through a full buffer."""
    lesson04._conversation(lesson04.Scheduler(task_function), big=lesson04.HUGE)
    passed("the generator task echoes 1 MiB through a full buffer")


@check
def parse_request_line(parse):
    """Lesson 09: 2000 other mutated lines."""
    for line in lesson09.mutations(2000, seed=17):
        expected = lesson09.core_verdict(line)
        verdict, got = lesson09._judge(parse, line)
        if expected is None:
            expect(verdict == "rejected", f"parse_request_line({line!r}) returned {got!r}; it should raise ValueError")
        else:
            expect(verdict == "ok" and got == expected, f"parse_request_line({line!r}) gave {got!r}; expected {expected!r}")
    passed("parse_request_line agrees with labserver's parser on 2000 more lines")


@check
def split_responses(split):
    """Lesson 09: 50 responses, bodies full of CRLFs and fake heads, some without Content-Length (a 304
    with the length of its page; the last one delimited by the close, RFC 9112 6.3)."""
    rng = random.Random(5)
    data, expected = b"", []
    for n in range(50):
        status = rng.choice([100, 200, 204, 304, 404]) if n < 49 else 200
        body = b"" if status in (100, 204, 304) else bytes(rng.choice(b"\r\nHTP/1. 200OK:") for _ in range(rng.randrange(0, 60)))
        length = (b"" if status in (100, 204) or n == 49 else b"Content-Length: %d\r\n" % rng.randrange(1, 9999)
                  if status == 304 and n % 2 else b"" if status == 304 else b"Content-Length: %d\r\n" % len(body))
        data += b"HTTP/1.1 %d X\r\nServer: s\r\n%s\r\n%s" % (status, length, body)
        expected.append((status, body))
    got = lesson09._split(split, data, "50 pipelined responses")
    expect(got == expected, "50 pipelined responses, bodies full of CRLFs and text that looks like a head, the last "
                            "one without Content-Length (it runs to the close): "
                            f"expected {lesson09._summary(expected[:3])}..., got {lesson09._summary(got[:3])}...")
    passed("split_responses cuts 50 tricky responses apart")


@check
def run_all(run_all):
    """Lesson 06: 40 tasks on 7 workers, and 3 tasks on 10 workers."""
    lesson06.run_all.__wrapped__(run_all, tasks=40, workers=7, task_s=0.03)
    results, _, _, alive, _ = lesson06._measure(run_all, 3, 10)
    expect(results == [0, 1, 4] and not alive, f"3 tasks on 10 workers: expected [0, 1, 4], got {results!r:.60}")
    passed("run_all handles 40 tasks on 7 workers")


@check
def record_hit(record_hit):
    """Lesson 06: 16 threads on 7 pages, and a table that already holds counts."""
    pages = ("/", "/a.html", "/b.html", "/c.css", "/d.js", "/e.png", "/f.txt")
    lesson06.record_hit.__wrapped__(record_hit, threads=16, per_thread=35, paths=pages)
    hits = {"/": 41, "/about.html": 7}
    StudentCall(record_hit, (hits, "/"), "record_hit()").run(lesson06.GIVE_UP, doing="one call, on {'/': 41, ...}")
    expect(hits == {"/": 42, "/about.html": 7},
           f"record_hit on {{'/': 41, '/about.html': 7}} with '/' should leave {{'/': 42, '/about.html': 7}}, "
           f"it left {hits!r:.80}")
    passed("record_hit counts right with 16 threads on 7 pages, and on a table that already holds counts")


@check
def time_burns(time_burns):
    """Lesson 07: 6 burns on 3 workers."""
    lesson07.time_burns.__wrapped__(time_burns, count=6, ms=20, workers=3)


@check
def cpu_per_request(cpu_us_per_request, rows):
    """Lesson 08: ten more made-up sweeps."""
    for seed in range(10, 20):
        trial = lesson08.made_up_costs(seed)
        expected = {(r["model"], r["clients"]): lesson08.cost_us(r) for r in trial if lesson08.cost_us(r) is not None}
        got = StudentCall(cpu_us_per_request, ([dict(r) for r in trial],)).run(5.0)
        expect(plain(got, dict) and set(got) == set(expected)
               and all(plain(got[k], int, float) and abs(got[k] - v) <= 0.01 * v for k, v in expected.items()),
               f"made-up rows ({seed}): expected {expected!r:.80}..., got {got!r:.80}")
    passed("cpu_us_per_request is right on ten more made-up sweeps")


@check
def stops_scaling(stops_scaling, rows):
    """Lesson 08: ten more made-up sweeps."""
    for seed in range(10, 20):
        trial = lesson08.made_up_lines(seed)
        expected = lesson08.knees(trial)
        got = StudentCall(stops_scaling, ([dict(r) for r in trial],)).run(5.0)
        expect(got == expected and plain(got, dict), f"made-up rows ({seed}): expected {expected}, got {got!r:.80}")
    passed("stops_scaling is right on ten more made-up sweeps")


@check
def serve_forever(serve_forever):
    """Lesson 10: stop is set while every handler is still busy: serve_forever must wait for them."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop, release = threading.Event(), threading.Event()
    done = []

    def handle(sock):
        release.wait(5)
        sock.close()
        done.append(1)

    attempt = StudentCall(serve_forever, (listener, handle, stop)).start()
    clients = []
    try:
        for _ in range(5):
            clients.append(socket.create_connection(listener.getsockname()[:2], timeout=5))
        time.sleep(0.5)
        stop.set()
        time.sleep(0.6)
        returned_early = not attempt.thread.is_alive()
        release.set()
        if not attempt.wait(5):
            raise CheckFailed("serve_forever() did not return within 5 s of stop.set() once its handlers were done")
    finally:
        release.set()
        stop.set()
        for sock in clients:
            sock.close()
        listener.close()
    attempt.raise_error("serve_forever")
    expect(not returned_early, "stop was set while 5 handlers were still busy, and serve_forever returned without "
                               "waiting for them: join() every thread before you return")
    expect(len(done) == 5, f"5 clients connected; {len(done)} were handled")
    passed("serve_forever waits for busy handlers after stop")


@check
def serve_echo(serve_echo):
    """Lesson 01: five clients connect at once (four wait in the backlog), each speaks in random
    pieces; one sends 200 KB while it reads the echo; n=5, then serve_echo returns."""
    from . import lesson01

    rng = random.Random(7)
    messages = [bytes(rng.randrange(256) for _ in range(rng.choice([1, 50, 3000]))) for _ in range(4)]
    messages.insert(2, bytes(rng.randrange(256) for _ in range(200_000)))
    results = [None] * len(messages)

    def client(number, sock, message):
        def send():
            pieces = random.Random(number)
            try:
                at = 0
                while at < len(message):
                    piece = pieces.choice([1, 7, 1000, 30_000])
                    sock.sendall(message[at:at + piece])
                    at += piece
                sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass  # the check gave up and closed the socket: the failure says why

        sender = threading.Thread(target=send, name="labserver-check-sender", daemon=True)
        sender.start()  # and read meanwhile: a server that echoes while we send never fills a buffer
        got, how = lesson01._read(sock, len(message), wait=8.0)
        results[number] = (got, how, how != "silent" and lesson01._closed(sock, 3.0))
        sender.join(3.0)

    with lesson01.EchoRun(serve_echo, len(messages)) as run:
        run.listening()
        socks = [run.connect(number + 1) for number in range(len(messages))]
        talkers = [threading.Thread(target=client, args=(i, sock, m), name="labserver-check-client", daemon=True)
                   for i, (sock, m) in enumerate(zip(socks, messages))]
        for thread in talkers:
            thread.start()
        for thread in talkers:
            thread.join(15.0)
        for number, (message, result) in enumerate(zip(messages, results), 1):
            got, how, closed = result or (b"", "silent", False)
            if got != message and how == "closed" and got:
                raise CheckFailed(f"5 clients connected at once; client {number} sent {len(message):,} bytes in "
                                  f"random pieces, got {len(got):,} back, and then its connection was closed: echo "
                                  f"until recv() returns b'', not what one recv() returned")
            if got != message:
                run.trouble(f"5 clients connected at once; client {number} sent {len(message):,} bytes in random "
                            f"pieces and got {len(got):,} back" + (", then the connection closed" if how == "closed" else ""))
            if not closed:
                run.trouble(f"client {number} had its echo and closed its side, but its connection was never closed")
        if not run.attempt.wait(lesson01.WAIT):
            run.trouble("all 5 clients had come and gone, but serve_echo(5, ready) did not return")
        run.attempt.raise_error("serve_echo")
    passed("serve_echo serves 5 clients that arrived together, 200 KB included, and returns")


@check
def task_step(step):
    """Lesson 05: a generator that returns at once, 30 tasks waiting for one future, a chain of 50 tasks."""
    from ..tasks import Future
    from .lesson05 import StudentTask, _run

    def scenario(step):
        def at_once():
            return "now"
            yield  # a generator all the same

        task = StudentTask(step, at_once())
        expect(task.done and task.result == "now", "a generator returned before its first yield: its task should be "
                                                   "done at once, with what the generator returned")
        shared = Future()

        def waiter(i):
            return (yield shared) + i

        waiters = [StudentTask(step, waiter(i)) for i in range(30)]
        shared.set_result(100)
        expect([t.result if t.done else None for t in waiters] == [100 + i for i in range(30)],
               "30 tasks waited for one future: each should have been resumed with its result")
        first = chain = Future()

        def link(previous):
            return (yield previous) + 1

        for _ in range(50):
            chain = StudentTask(step, link(chain))  # each task waits for the one before
        first.set_result(0)
        expect(chain.done and chain.result == 50, "50 tasks, each waiting for the one before: the last one should "
                                                  f"have finished with 50, got {chain.result if chain.done else 'no result'}")

    _run(step, scenario, "tasks sharing a future, and a chain of 50 tasks")
    passed("step() drives a generator that returns at once, 30 tasks on one future, and a chain of 50 tasks")
