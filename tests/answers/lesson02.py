"""try_recv, poll_until, first_ready (lesson 02)."""

import select
import socket
import time

from . import right, wrong


def try_recv(sock):
    try:
        return sock.recv(1024)
    except BlockingIOError:
        return None


@right("02", "try_recv")
def asks_select_first(sock):
    ready, _, _ = select.select([sock], [], [], 0)
    return sock.recv(1024) if ready else None


@right("02", "try_recv")
def catches_the_errno(sock):
    try:
        return sock.recv(1024)
    except OSError as error:
        if error.errno in (11, 35, 10035):  # EAGAIN / EWOULDBLOCK on Linux, macOS, Windows
            return None
        raise


@wrong("02", "try_recv", "switched the socket to a timeout")
def uses_a_timeout(sock):
    sock.settimeout(0.05)
    try:
        return sock.recv(1024)
    except socket.timeout:
        return None


@wrong("02", "try_recv", "b'' then, and try_recv should too")
def turns_close_into_none(sock):
    try:
        return sock.recv(1024) or None
    except BlockingIOError:
        return None


@wrong("02", "try_recv", "let BlockingIOError out")
def lets_the_exception_out(sock):
    return sock.recv(1024)


@right("02", "poll_until")
def counts_with_a_for_loop(sock, timeout):
    end = time.perf_counter() + timeout
    attempts = 0
    while True:
        attempts += 1
        data = try_recv(sock)
        if data is not None or time.perf_counter() >= end:
            return data, attempts


@right("02", "poll_until")
def counts_only_empty_attempts(sock, timeout):
    deadline, wasted = time.monotonic() + timeout, 0
    while time.monotonic() < deadline:
        data = try_recv(sock)
        if data is not None:
            return data, wasted
        wasted += 1
    return None, wasted


@wrong("02", "poll_until", "recv\\(\\) returned b'' and your loop called it again")
def treats_close_as_nothing(sock, timeout):
    deadline, attempts = time.monotonic() + timeout, 0
    while time.monotonic() < deadline:
        attempts += 1
        data = try_recv(sock)
        if data:
            return data, attempts
    return None, attempts


@wrong("02", "poll_until", "without data and never gave up", hangs=True)
def no_deadline(sock, timeout):
    attempts = 0
    while True:
        attempts += 1
        data = try_recv(sock)
        if data is not None:
            return data, attempts


@wrong("02", "poll_until", "count every recv\\(\\) call")
def does_not_count(sock, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        data = try_recv(sock)
        if data is not None:
            return data, 1
    return None, 1


@right("02", "first_ready")
def with_select_zero_in_a_loop(socks, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for index, sock in enumerate(socks):
            try:
                return index, sock.recv(1024)
            except BlockingIOError:
                pass
    return None


@right("02", "first_ready")
def sleeping_in_select(socks, timeout):
    ready, _, _ = select.select(socks, [], [], timeout)
    if not ready:
        return None
    index = socks.index(ready[0])
    return index, socks[index].recv(1024)


@wrong("02", "first_ready", "do you try every socket")
def only_the_first_socket(socks, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        data = try_recv(socks[0])
        if data is not None:
            return 0, data
    return None


@wrong("02", "first_ready", "b'' is not \"nothing yet\"")
def skips_closed_sockets(socks, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for index, sock in enumerate(socks):
            data = try_recv(sock)
            if data:
                return index, data
    return None


@wrong("02", "first_ready", "did not return within", hangs=True)
def never_gives_up(socks, timeout):
    while True:
        for index, sock in enumerate(socks):
            data = try_recv(sock)
            if data is not None:
                return index, data
