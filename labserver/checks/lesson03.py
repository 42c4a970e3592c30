"""Checks for lesson 03 (select())."""

import contextlib
import select
import socket
import threading
import time

from . import CheckFailed, call, expect, passed

REPLY_TIMEOUT = 2.0  # seconds a check client waits for its echo


@contextlib.contextmanager
def socket_pairs(n):
    """n connected pairs (ours, theirs); all closed on exit."""
    pairs = [socket.socketpair() for _ in range(n)]
    try:
        yield pairs
    finally:
        for ours, theirs in pairs:
            ours.close()
            theirs.close()


def indexes(result, socks):
    """The student's answer as sorted indexes into socks (or None if it is not a collection of them)."""
    try:
        found = [socks.index(sock) for sock in result]
    except (TypeError, ValueError):
        return None
    return sorted(found)


def ready_to_read(ready_to_read):
    """ready_to_read(socks, timeout) returns the sockets that have data waiting,
    as soon as one has, or an empty list after `timeout` seconds."""
    with socket_pairs(6) as pairs:
        socks = [sock for sock, _ in pairs]
        for i in (1, 4):
            pairs[i][1].send(b"hello")
        start = time.perf_counter()
        got = call(ready_to_read, socks, 2.0)
        took = time.perf_counter() - start
        found = indexes(got, socks)
        expect(not (isinstance(got, tuple) and len(got) == 3 and found is None),
               "you returned all three lists select() gives back; return only the first: ready to read")
        expect(found is not None, f"expected a list of the sockets you were given, got {got!r}")
        expect(found == [1, 4], f"data waits in sockets 1 and 4 of 6: expected those two, got sockets {found}")
        expect(took < 1.0, f"two sockets were ready already, but ready_to_read took {took:.2f} s")
        left = select.select([socks[1]], [], [], 0)[0] and socks[1].recv(1024)
        expect(left == b"hello", "ready_to_read took the data out of socket 1: it should only "
                                 "find the ready sockets and leave recv() to its caller")
        socks[4].recv(1024)

        start = time.perf_counter()
        got = call(ready_to_read, socks, 0.2)
        took = time.perf_counter() - start
        expect(indexes(got, socks) == [], f"no socket has data: expected an empty list, got {got!r}")
        expect(took >= 0.15, f"nothing was ready and ready_to_read returned after {took:.2f} s: "
                             "pass the timeout to select() so that it waits")
        expect(took < 1.0, f"with timeout=0.2, ready_to_read returned after {took:.2f} s")

        timer = threading.Timer(0.2, pairs[2][1].send, [b"late"])
        timer.start()
        try:
            start = time.perf_counter()
            got = call(ready_to_read, socks, 3.0)
            took = time.perf_counter() - start
        finally:
            timer.cancel()
            timer.join()
        expect(indexes(got, socks) == [2], f"socket 2 got data after 0.2 s: expected [socket 2], got {got!r}")
        expect(took < 1.5, f"socket 2 was ready after 0.2 s, but ready_to_read returned after {took:.2f} s: "
                           "select() returns as soon as one socket is ready")
    passed("ready_to_read finds exactly the ready sockets, sleeps until one is ready, and honours its timeout")


def echo_server(echo_server):
    """echo_server(listener, n) accepts n clients and sends each one back what
    it sends, all in one thread, until all n have closed; then returns."""
    clients_count = 4
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)  # a wrong answer stuck in accept() gives up instead of lingering
    outcome = {}

    def run():
        try:
            outcome["result"] = call(echo_server, listener, clients_count)
        except BaseException as error:  # reported by the check, never printed by the thread
            outcome["error"] = error

    thread = threading.Thread(target=run, name="labserver-check-echo", daemon=True)
    thread.start()
    clients = []
    try:
        clients = [socket.create_connection(listener.getsockname(), timeout=REPLY_TIMEOUT)
                   for _ in range(clients_count)]

        def fail(message):
            thread.join(0.1)
            error = outcome.get("error")
            if isinstance(error, CheckFailed):
                raise error
            if error is not None:
                raise CheckFailed(f"echo_server raised {type(error).__name__}: {error}")
            raise CheckFailed(message)

        def talk(number, message):
            thread.join(0.01)
            if "error" in outcome:  # it stopped already: say why, do not wait for an echo
                fail("")
            sock = clients[number - 1]
            sock.sendall(message)
            got = b""
            try:
                while len(got) < len(message):
                    chunk = sock.recv(1024)
                    if not chunk:
                        break
                    got += chunk
            except socket.timeout:
                fail(f"client {number} sent {message!r} and got no echo within {REPLY_TIMEOUT:g} s "
                     f"(got {got!r}): is your loop waiting on another client, in accept() or a blocking recv()?")
            if got != message:
                fail(f"client {number} sent {message!r} and got back {got!r}")

        # Clients 1-3 are connected and silent: only select() notices client 4.
        talk(4, b"I am client 4")
        talk(2, b"and I am 2")
        clients[2].close()  # client 3 leaves without a word
        talk(1, b"one")
        talk(4, b"client 4 again")
        for sock in clients:
            sock.close()
        thread.join(REPLY_TIMEOUT)
        if thread.is_alive():
            fail(f"all {clients_count} clients closed, but echo_server did not return: "
                 "recv() returning b'' means a client left; stop when all have left")
        if "error" in outcome:
            fail("")
    finally:
        for sock in clients:
            sock.close()
        listener.close()
    passed(f"echo_server served {clients_count} clients in one thread, in the order they spoke, and returned")
