"""Checks for lesson 01 (blocking recv()).

recv_exactly is run against peers that send one byte at a time, send two
messages in one go, close early, and send 256 KiB faster than it is read.
"""

import socket
import threading

from . import CheckFailed, check, dribbling_peer, expect, passed, plain, run_student, watched_pair

DEADLINE = 5.0  # seconds for one recv_exactly() call; the slowest peer here needs 0.3 s


def _got(got, n, what):
    expect(plain(got, bytes, bytearray), f"{what}: recv_exactly should return bytes, it returned "
                                         f"{type(got).__name__} {got!r:.60}")
    return bytes(got)


def _short(data):
    return repr(data) if len(data) <= 40 else f"{len(data)} bytes starting {data[:24]!r}"


@check
def recv_exactly(recv_exactly):
    """recv_exactly(sock, n) must return exactly n bytes, however they arrive,
    take no byte more, and raise ConnectionError if the peer closes first."""
    message = b"GET / HTTP/1.1\r\nHost: lab\r\n\r\n"
    doing = f"the peer sent {len(message)} bytes, one every 5 ms"
    with dribbling_peer(message) as sock:
        got = _got(run_student(recv_exactly, sock, len(message), deadline=DEADLINE, sockets=[sock],
                               doing=doing), len(message), doing)
    expect(got == message, f"{doing} and you asked for all {len(message)}; expected them all back, "
                           f"got {len(got)}: {_short(got)}. recv() returns what has arrived so far: call it again "
                           f"until you have n bytes")

    first, second = b"first message!", b"and the second one"
    doing = (f"the peer sent 5 bytes of a {len(first)}-byte message, then the other {len(first) - 5} together "
             f"with the next message ({len(second)} bytes)")
    sock, peer = watched_pair()
    with sock, peer:
        peer.sendall(first[:5])
        later = threading.Timer(0.05, _send_quietly, [peer, first[5:] + second])
        later.start()
        try:
            got = _got(run_student(recv_exactly, sock, len(first), deadline=DEADLINE, sockets=[sock], doing=doing),
                       len(first), doing)
        finally:
            later.join()
        expect(len(got) == len(first), f"{doing}; asked for {len(first)}, recv_exactly returned {len(got)} bytes: "
                                       f"{_short(got)}. Never return more than n: ask recv() for at most the "
                                       f"bytes still missing (n - len(data))")
        expect(got == first, f"{doing}; asked for {len(first)}, got {_short(got)}, expected {first!r}")
        peer.close()
        try:
            rest = _got(run_student(recv_exactly, sock, len(second), deadline=DEADLINE, sockets=[sock],
                                    doing=doing + ", then closed"), len(second), doing)
        except ConnectionError:
            raise CheckFailed(f"{doing}. The first call returned the first message; the second call raised "
                              f"ConnectionError, but the second message was there: did the first call take "
                              f"bytes it did not return?") from None
        expect(rest == second, f"{doing}: the second call should return {second!r}, got {_short(rest)}. "
                               f"Did the first call take bytes it did not return?")

    doing = "the peer sent 10 bytes and closed the connection"
    with dribbling_peer(b"only 10 b.", close_after=True) as sock:
        try:
            got = run_student(recv_exactly, sock, 20, deadline=DEADLINE, sockets=[sock], doing=doing)
        except ConnectionError:
            got = None
    expect(got is None, f"{doing}; you asked for 20 and got {got!r:.60} back, expected ConnectionError: "
                        f"recv() returning b'' means the peer closed and nothing more will come")

    size = 256 * 1024
    big = bytes(range(256)) * (size // 256)
    doing = f"the peer sent {size // 1024} KiB in large pieces"
    sock, peer = watched_pair()
    sender = threading.Thread(target=_send_quietly, args=(peer, big), name="labserver-check-sender", daemon=True)
    with sock, peer:
        sender.start()
        try:
            got = _got(run_student(recv_exactly, sock, size, deadline=DEADLINE, sockets=[sock], doing=doing),
                       size, doing)
        finally:
            peer.shutdown(socket.SHUT_RDWR)
            sender.join()
    expect(len(got) == size, f"{doing}; asked for all {size:,} bytes, got {len(got):,}: keep calling recv() "
                             f"until you have n bytes")
    if got != big:
        at = next(i for i in range(size) if got[i] != big[i])
        raise CheckFailed(f"{doing}; got {size:,} bytes, but not the ones sent (byte {at:,} differs): "
                          f"are the pieces joined in the order they came?")
    passed("recv_exactly returns whole messages from one-byte pieces and from big ones, takes no byte more "
           "than asked, and notices a closed peer")


def _send_quietly(sock, data):
    try:
        sock.sendall(data)
    except OSError:
        pass  # the check closed the pair: the answer failed, and says so


@check
def waiting_ratio(measured, ratio, pooled, size, rate):
    """Exercise 2: B's wait on the iterative server, measured, and the ratio to the pool's."""
    from ..experiments import first_byte_while_busy
    from ..servers import IterativeServer

    expect(plain(measured, dict) and "first_byte_s" in measured,
           "measured should be the dictionary first_byte_while_busy() returned")
    expect(measured.get("download_bytes") == size,
           f"A should download /bytes/{size}; it got {measured.get('download_bytes')} bytes")
    wait = measured["first_byte_s"]
    expect(wait is not None, "B timed out: call first_byte_while_busy without a short timeout")
    expect(plain(wait, float) and plain(ratio, float, int), "measured['first_byte_s'] and ratio should be numbers")
    download = size / rate
    expect(wait > 0.5 * download,
           f"B waited {wait:.3f} s, but A's download takes about {download:.1f} s and on the iterative server B "
           f"waits for all of it: measure with `with IterativeServer() as server:` around first_byte_while_busy")
    # The same measurement, made by the check: a dictionary typed in by hand will not match it.
    with IterativeServer() as server:
        again = first_byte_while_busy(server.url, big=f"/bytes/{size}", rate=rate)
    expect(again["first_byte_s"] is not None and 0.5 < wait / again["first_byte_s"] < 2,
           f"your measured['first_byte_s'] is {wait:.3f} s, but the same measurement made now gives "
           f"{again['first_byte_s'] or 0:.3f} s: store the dictionary first_byte_while_busy() returned")
    pooled_wait = pooled.get("first_byte_s") if plain(pooled, dict) else None
    expect(plain(pooled_wait, float) and pooled_wait < 0.5 * download,
           "pooled should be the thread pool's measurement from the demo above: run that cell again")
    expected = wait / pooled_wait
    expect(abs(ratio - expected) <= 0.01 * expected,
           f"ratio should be measured['first_byte_s'] / pooled['first_byte_s'] = {expected:.1f}, got {ratio!r}")
    passed(f"B waited {wait:.2f} s behind A's download: {ratio:.0f}x longer than with a thread pool")
