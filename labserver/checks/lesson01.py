"""Checks for lesson 01 (blocking recv())."""

import socket

from . import CheckFailed, call, dribbling_peer, expect, passed


def recv_exactly(recv_exactly):
    """recv_exactly(sock, n) must return exactly n bytes, however they arrive,
    and raise ConnectionError if the peer closes first."""
    message = b"GET / HTTP/1.1\r\nHost: lab\r\n\r\n"
    with dribbling_peer(message) as sock:
        try:
            got = call(recv_exactly, sock, len(message))
        except socket.timeout:
            raise CheckFailed(f"recv_exactly waited for more than the {len(message)} bytes the peer sent") from None
    expect(isinstance(got, (bytes, bytearray)), f"expected bytes, got {type(got).__name__}")
    expect(bytes(got) == message,
           f"sent {len(message)} bytes one at a time; expected them all back, got {len(got)}: {bytes(got)[:40]!r}")
    with dribbling_peer(b"only 10 b.", close_after=True) as sock:
        try:
            got = call(recv_exactly, sock, 20)
        except ConnectionError:
            got = None
        except socket.timeout:
            raise CheckFailed("the peer closed after 10 bytes, but recv_exactly kept waiting: "
                              "recv() returning b'' means the peer closed") from None
    expect(got is None, f"asked for 20 bytes, the peer closed after 10; expected ConnectionError, got {got!r}")
    passed("recv_exactly returns whole messages from one-byte pieces and notices a closed peer")


def waiting_ratio(measured, ratio, pooled, size, rate):
    """Exercise 2: B's wait on the iterative server, measured, and the ratio to the pool's."""
    expect(isinstance(measured, dict) and "first_byte_s" in measured,
           "measured should be the dictionary first_byte_while_busy() returned")
    expect(measured.get("download_bytes") == size,
           f"A should download /bytes/{size}; it got {measured.get('download_bytes')} bytes")
    wait = measured["first_byte_s"]
    expect(wait is not None, "B timed out: call first_byte_while_busy without a short timeout")
    expect(wait > 0.5 * size / rate,
           f"on the iterative server B should wait about as long as A's download ({size / rate:.1f} s); "
           f"it waited {wait:.3f} s: did you start an IterativeServer?")
    expected = wait / pooled["first_byte_s"]
    expect(abs(ratio - expected) <= 0.01 * expected,
           f"ratio should be measured['first_byte_s'] / pooled['first_byte_s'] = {expected:.1f}, got {ratio!r}")
    passed(f"B waited {wait:.2f} s behind A's download: {ratio:.0f}x longer than with a thread pool")
