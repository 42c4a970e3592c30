"""Lessons 01 and 06: serving a connection with blocking calls.

    while not conn.closing:
        ...
        data = recv_in_time(sock, conn, recv_deadline)  # blocks until the client sends something
        ...
        conn.feed(data)
        while (chunks := conn.next_response()) is not None:
            send_blocking(sock, chunks, stopping)  # blocks until the client has taken it all

That loop is serve_blocking(), the whole of a connection for the iterative,
thread-per-connection and pool models: recv() a request, send() its
response, again, until the client leaves; while a call waits, the OS puts the
thread to sleep. Its deadlines are the socket's timeout: the idle timeout
between requests and for each wait for room to send; within a request, what
is left of the request deadline (recv_in_time). So a client trickling one
byte a second gets its 408 at request_timeout all the same (a "slowloris"
cannot hold a thread for ever), as it does on the event loops.

BlockingServer is what those three models share: accept() until stop(), and
the sockets being served, so that stop() can make their blocking calls return.
"""

import socket
import threading
import time
from collections import deque

from ..protocol import Connection, Delay, FileBody
from .server import ACCEPT_PAUSE, Server, Timeouts, log

RECV_SIZE = 64 * 1024  # bytes asked of one recv()
LINGER = 2.0  # seconds to drain a client's leftover bytes before closing


def serve_blocking(sock, addr, app, timeouts=Timeouts(), stopping=None):
    """Serve one client with blocking calls until the connection ends.

    `stopping` (the server's Event) lets stop() cut a /sleep short."""
    conn = Connection(app, peer=peer_name(addr))
    recv_deadline = RecvDeadline(timeouts)
    tune_client_socket(sock)
    # Each wait: for the next request, and for room in the client's buffer while we
    # send (a slow reader that keeps reading is never cut off). Set once: changing a
    # socket's timeout costs a system call, and twice per request would show.
    sock.settimeout(timeouts.idle)
    try:
        while not conn.closing:
            try:
                data = recv_in_time(sock, conn, recv_deadline)  # blocks until the client sends something
            except TimeoutError:  # idle for too long, or a request arriving too slowly
                sock.setblocking(False)  # best effort: a 408 if a request was half-way in
                sock.send(b"".join(conn.timeout_response()))
                return
            conn.feed(data)
            while (chunks := conn.next_response()) is not None:
                send_blocking(sock, chunks, stopping)  # blocks until the client has taken it all
        linger(sock)
    except OSError:
        pass  # the client went away or stopped reading, or the server is stopping
    finally:
        sock.close()


class RecvDeadline:
    """When to stop waiting for a client's bytes: `idle` seconds after the
    last response; once a request has begun, `request` seconds after its
    first bytes came, however slowly the rest trickles in."""

    def __init__(self, timeouts):
        self.timeouts = timeouts
        self.started = None  # when the request being received began

    def at(self, conn, now):
        if not conn.parser.has_partial_request:
            self.started = None
            return now + self.timeouts.idle
        self.started = self.started or now
        return self.started + self.timeouts.request


def recv_in_time(sock, conn, recv_deadline):
    """sock.recv(), waiting at most until recv_deadline: between requests the
    socket's own timeout (idle); within a request, what is left of its
    deadline, which a client trickling its bytes cannot push back."""
    deadline = recv_deadline.at(conn, time.monotonic())
    if recv_deadline.started is None:  # between two requests
        return sock.recv(RECV_SIZE)
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError
    idle = sock.gettimeout()
    sock.settimeout(left)
    try:
        return sock.recv(RECV_SIZE)
    finally:
        sock.settimeout(idle)


def send_blocking(sock, chunks, stopping=None):
    chunks = deque(chunks)
    try:
        while chunks:
            chunk = chunks.popleft()
            if isinstance(chunk, Delay):
                # A blocking wait: this thread does nothing else. Event.wait()
                # sleeps like time.sleep(), but stop() can end it early.
                if (stopping or threading.Event()).wait(chunk.seconds):
                    raise ConnectionAbortedError("the server is stopping")
            elif isinstance(chunk, FileBody):
                try:
                    sock.sendfile(chunk.file, chunk.offset, chunk.count)
                finally:
                    chunk.close()
            else:
                send_all(sock, chunk)
    finally:
        close_chunks(chunks)  # files of a response that will never be sent


def send_all(sock, data):
    """sock.sendall(), but the socket's timeout limits each wait for room in
    the send buffer, not the whole transfer: sendall() would cut off a slow
    client downloading for longer than the timeout."""
    view = memoryview(data)
    while view:
        view = view[sock.send(view):]  # blocks until the client has taken some


def linger(sock, seconds=LINGER):
    """Close gently: send FIN, then read until the client closes too.

    Closing a socket with unread bytes in it makes the kernel send a RST,
    which can destroy the response we just sent (say, a 400 for a request
    whose body is still arriving)."""
    sock.shutdown(socket.SHUT_WR)
    sock.settimeout(seconds)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and sock.recv(RECV_SIZE):
        pass


def close_chunks(chunks):
    """Close the files of responses that will never be sent."""
    for chunk in chunks:
        if isinstance(chunk, FileBody):
            chunk.close()
    chunks.clear()


def tune_client_socket(sock):
    """Turn off Nagle's algorithm: a response head and its file body go out
    in two writes, and Nagle plus delayed ACKs would hold the second ~40 ms."""
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:
        pass  # not TCP (a Unix socket in a test), nothing to tune


def peer_name(addr):
    """The client's address, for the access log."""
    return str(addr[0]) if addr else "-"


def unblock_accept(listener):
    """Make a thread blocked in listener.accept() return: connecting to
    ourselves works on every OS. If the backlog is full the connect fails,
    but then accept() is not blocked either."""
    try:
        host, port = listener.getsockname()[:2]
        host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
        socket.create_connection((host, port), timeout=1.0).close()
    except OSError as error:
        log.warning("could not unblock accept(): %s", error)


class BlockingServer(Server):
    """The base of the blocking models (iterative, threads, pool): accept()
    until stop(), serve() a client with serve_blocking(), and on stop() make
    every blocked call return."""

    def __init__(self, *args, **options):
        super().__init__(*args, **options)
        self.connections = set()  # sockets accepted and not closed yet; guarded by conn_lock
        self.conn_lock = threading.Lock()

    def accept(self):
        """The next client, (sock, addr), or None once stop() has been called."""
        while True:
            try:
                sock, addr = self.listener.accept()  # blocks until a client connects
            except OSError as error:  # out of file descriptors, say: let some close
                log.warning("accept failed, trying again in %.1f s: %s", ACCEPT_PAUSE, error)
                if self.stopping.wait(ACCEPT_PAUSE):
                    return None
                continue
            # Under the lock, so that interrupt() either sees this socket or we see `stopping`.
            with self.conn_lock:
                if self.stopping.is_set():  # interrupt()'s own connection, or a late client
                    sock.close()
                    return None
                self.connections.add(sock)
            return sock, addr

    def serve(self, sock, addr):
        """Serve one client until it leaves (or stop() makes its calls return)."""
        try:
            serve_blocking(sock, addr, self.app, self.timeouts, self.stopping)
        except Exception:  # a bug: log it, or threading would print it to the notebook
            log.exception("%s crashed", threading.current_thread().name)
        finally:
            with self.conn_lock:
                self.connections.discard(sock)

    def interrupt(self):
        # A thread blocked in recv(), accept() or send() never looks at
        # `stopping`: we make the blocked calls themselves return.
        with self.conn_lock:
            for sock in self.connections:
                try:
                    sock.shutdown(socket.SHUT_RDWR)  # recv() returns b"", send() fails
                except OSError:
                    pass  # already closed: its thread is ending anyway
        unblock_accept(self.listener)

    def cleanup(self):
        with self.conn_lock:  # what is left was accepted and never served: the pool's queue at stop()
            left, self.connections = self.connections, set()
        for sock in left:
            sock.close()
