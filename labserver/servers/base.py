"""The Server contract that every concurrency model follows.

    with ThreadPoolServer(root="site") as srv:    # start(): bound and listening
        requests.get(srv.url)                      # srv.url, srv.port
    # stop(): every thread joined, every socket closed; safe to call twice

A model only decides how it waits for sockets and who runs the handler; the
HTTP rules live in labserver.protocol and the files in labserver.app. This
module holds what all models share: the listening socket, start/stop, and the
non-blocking send helpers of the event-driven ones.

Servers never print: a background thread's print lands in whichever notebook
cell runs next. They log to the "labserver" loggers instead.
"""

import errno
import logging
import os
import socket
import sys
import threading
import time
import weakref
from collections import deque
from dataclasses import dataclass

from ..app import make_app
from ..protocol import Connection, Delay, FileBody

log = logging.getLogger("labserver.server")

# The queue of connections the kernel completes before we accept() them.
# socketserver's default of 5 drops SYNs as soon as a few dozen clients
# arrive together; each drop costs the client a 1 s retransmit.
BACKLOG = 1024


@dataclass(frozen=True)
class Timeouts:
    """How long a server waits for a client before it gives up on it."""

    idle: float = 15.0  # keep-alive: between two requests
    request: float = 20.0  # in total, to receive one request (slowloris)
    send: float = 60.0  # a client that stops reading its response


# Every listening socket a server opened, while it exists: so that a notebook
# can check that it left none open (checks.nothing_left_running).
LISTENERS = weakref.WeakSet()


class ServerError(RuntimeError):
    """Misuse of a server: started twice, port in use, bad option."""


def demo_site():
    from .. import DEMO_SITE

    return DEMO_SITE


def make_listener(host, port, backlog=BACKLOG, reuse_port=False):
    """A listening TCP socket, with an error a student can act on.

    reuse_port: SO_REUSEPORT, so that other sockets can listen on the same
    port (the processes model's workers). Other servers could join then too,
    so a port that is already taken is refused first, by a plain bind."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        if reuse_port and port != 0:
            with socket.socket(family) as probe:  # in use? then this raises EADDRINUSE
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as create_server does
                probe.bind((host, port))
        listener = socket.create_server((host, port), family=family, backlog=backlog, reuse_port=reuse_port)
        LISTENERS.add(listener)
        return listener
    except OSError as error:
        if error.errno in (errno.EADDRINUSE, getattr(errno, "WSAEADDRINUSE", -1)):
            raise ServerError(
                f"port {port} on {host} is already in use: stop the other server "
                f"(srv.stop()) or choose another port (port=0 picks a free one)"
            ) from None
        if error.errno in (errno.EADDRNOTAVAIL, errno.EACCES):
            raise ServerError(f"cannot listen on {host}:{port}: {error.strerror}") from None
        raise


class Server:
    """Base class: subclasses implement serve_forever() (the model itself)
    and may override wake() to interrupt it when stop() is called."""

    name = "base"
    description = ""
    concurrent = True  # serves several clients at once (the iterative model does not)
    reuse_port = False  # SO_REUSEPORT on the listener (see make_listener)

    default_idle_timeout = Timeouts.idle

    def __init__(self, root=None, host="127.0.0.1", port=0, app=None,
                 idle_timeout=None, request_timeout=Timeouts.request, send_timeout=Timeouts.send):
        self.app = app if app is not None else make_app(root if root is not None else demo_site())
        idle = self.default_idle_timeout if idle_timeout is None else idle_timeout
        self.timeouts = Timeouts(idle, request_timeout, send_timeout)
        self.host = host
        self.requested_port = port
        self.listener = None
        self._port = None
        self.stopping = threading.Event()
        self._threads = []
        self._lock = threading.Lock()
        self._started = False

    # The contract.

    def start(self):
        """Bind and listen, start the model in the background, return self."""
        with self._lock:
            if self._started:
                raise ServerError(f"{self!r} is already started; call stop() first or create a new server")
            # If binding fails (port in use), nothing has changed: fix and retry.
            self.listener = make_listener(self.host, self.requested_port, reuse_port=self.reuse_port)
            self._port = self.listener.getsockname()[1]  # port 0 resolved to the real one
            self._started = True
        try:
            self.launch()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout=5.0):
        """Stop serving, close every socket and join every thread. Idempotent."""
        with self._lock:
            if not self._started or self.stopping.is_set():
                return
            self.stopping.set()
        self.wake()
        for thread in self._threads:
            thread.join(timeout)
            if thread.is_alive():
                log.warning("%s did not stop within %.1f s", thread.name, timeout)
        self.cleanup()
        if self.listener is not None:
            self.listener.close()

    @property
    def port(self):
        """The port listened on (known once started, kept after stop())."""
        return self._port

    @property
    def url(self):
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    @property
    def running(self):
        return self._started and not self.stopping.is_set()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    def __repr__(self):
        state = "running" if self.running else "stopped"
        where = f" at {self.url}" if self._port is not None else ""
        return f"<{type(self).__name__} {state}{where}>"

    # What a model provides.

    def launch(self):
        """Start the model's threads; by default one, running serve_forever()."""
        self.spawn(self.serve_forever)

    def serve_forever(self):
        raise NotImplementedError

    def spawn(self, target, *args):
        """Start a background thread that stop() will join."""
        name = f"labserver-{self.name}-{len(self._threads)}"
        thread = threading.Thread(target=self._run, args=(target, *args), name=name, daemon=True)
        self._threads.append(thread)
        thread.start()
        return thread

    def wake(self):
        """Interrupt serve_forever() so that it notices `stopping`."""

    def cleanup(self):
        """Close what the model still holds, after its threads have ended."""

    def wake_accept(self):
        """Make a thread blocked in accept() return, for the blocking models:
        connecting to ourselves works on every OS. If the backlog is full the
        connect fails, but then accept() is not blocked either."""
        try:
            host, port = self.listener.getsockname()[:2]
            host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
            socket.create_connection((host, port), timeout=1.0).close()
        except OSError as error:
            log.warning("could not wake accept(): %s", error)

    def _run(self, target, *args):
        try:
            target(*args)
        except Exception:
            if not self.stopping.is_set():
                log.exception("%s crashed", threading.current_thread().name)


class Waker:
    """A socket that another thread can make readable: how stop(), or a
    worker thread, interrupts an event loop blocked in select().

    A socketpair, not a pipe: Windows' select() takes only sockets. Wakes
    that come faster than the loop turns cost one byte, not one each."""

    def __init__(self):
        self.sock, self._writer = socket.socketpair()  # the loop selects on self.sock
        self.sock.setblocking(False)
        self._pending = False  # a byte is on its way: further wake() calls add nothing

    def wake(self):
        """From any thread: make the loop's next (or current) select() return."""
        if not self._pending:
            self._pending = True
            try:
                self._writer.send(b"x")
            except OSError:
                pass  # closed: the loop has ended anyway

    def drain(self):
        """In the loop, when self.sock is readable."""
        # Drain first, then clear the flag: the other order could swallow the
        # byte of a wake() that set the flag in between, and leave the flag
        # set with nothing left to wake the loop.
        try:
            while self.sock.recv(4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass
        self._pending = False

    def close(self):
        self.sock.close()
        self._writer.close()


def tune_client_socket(sock):
    """Turn off Nagle's algorithm: a response head and its file body go out
    in two writes, and Nagle plus delayed ACKs would hold the second ~40 ms."""
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:
        pass  # not TCP (a Unix socket in a test), nothing to tune


def send_some(sock, chunks, budget):
    """Send from the front of `chunks` (bytes and FileBody) without blocking.

    Returns how many bytes went out; stops at `budget`, when the socket's
    buffer is full (BlockingIOError), or when everything is sent. Sent bytes
    are removed from `chunks`; a finished FileBody is closed.
    """
    total = 0
    while chunks and total < budget:
        chunk = chunks[0]
        try:
            if isinstance(chunk, FileBody):
                sent = send_file_slice(sock, chunk, budget - total)
                if chunk.count == 0:
                    chunks.popleft().close()
            else:
                sent = sock.send(chunk)
                if sent == len(chunk):
                    chunks.popleft()
                else:
                    chunks[0] = chunk[sent:]
        except BlockingIOError:
            break
        total += sent
    return total


def send_file_slice(sock, body, size):
    """Send up to `size` bytes of a FileBody: os.sendfile copies file to
    socket inside the kernel; platforms without it read and send."""
    size = min(size, body.count)
    if hasattr(os, "sendfile") and sys.platform != "win32":
        sent = os.sendfile(sock.fileno(), body.file.fileno(), body.offset, size)
        if sent == 0 and size > 0:
            raise ConnectionError("file shrank while it was being sent")
        body.advance(sent)
        return sent
    body.file.seek(body.offset)
    sent = sock.send(body.file.read(size))
    body.advance(sent)
    return sent


def close_chunks(chunks):
    """Close the files of responses that will never be sent."""
    for chunk in chunks:
        if isinstance(chunk, FileBody):
            chunk.close()
    chunks.clear()


READ, WRITE, SLEEP, CLOSE = "read", "write", "sleep", "close"
RECV_SIZE = 64 * 1024
LINGER = 2.0  # seconds to drain a client's leftover bytes before closing


class Client:
    """One accepted socket and its HTTP state, for the event-driven models.

    handle() does everything that can be done right now without blocking and
    says what to wait for next: READ, WRITE, SLEEP (until `wake_at`, for a
    /sleep request) or CLOSE. Whoever calls it, an event loop or a worker
    thread, only has to wait for that and call handle() again.
    """

    def __init__(self, sock, addr, app):
        sock.setblocking(False)
        tune_client_socket(sock)
        self.sock = sock
        self.conn = Connection(app, peer=str(addr[0]) if addr else "-")
        self.out = deque()  # bytes and FileBody chunks waiting to be sent
        self.lingering = False
        self.deadline = 0.0  # when to give up waiting (set by the model)
        self.wake_at = 0.0  # when a SLEEP ends
        self.request_started = None  # when the current request's first byte arrived

    def handle(self, budget=1 << 20):
        try:
            if self.lingering:
                return self._drain()
            if not self.out:
                try:
                    self.conn.feed(self.sock.recv(RECV_SIZE))
                except BlockingIOError:
                    pass
            sent = 0
            while True:
                if not self.out:
                    chunks = self.conn.next_response()
                    if chunks is None:
                        break
                    self.out.extend(chunks)
                if isinstance(self.out[0], Delay):
                    self.wake_at = time.monotonic() + self.out.popleft().seconds
                    return SLEEP
                sent += send_some(self.sock, self.out, budget - sent)
                if self.out:
                    return WRITE  # the socket is full, or this turn's budget is spent
        except OSError:  # reset by the peer, broken pipe...
            return CLOSE
        if self.conn.closing:
            return self._start_lingering()
        return READ

    def set_deadline(self, want, timeouts, now=None):
        """When to give up if what we wait for (`want`) does not happen."""
        now = time.monotonic() if now is None else now
        if self.lingering:
            pass  # fixed when lingering began: bytes the client still sends do not extend it
        elif want == WRITE:
            self.deadline = now + timeouts.send
        elif self.conn.parser.has_partial_request:
            self.request_started = self.request_started or now
            self.deadline = self.request_started + timeouts.request
        else:
            self.request_started = None
            self.deadline = now + timeouts.idle
        return self.deadline

    def out_of_time(self, now):
        """True if a request has been arriving for longer than its deadline
        allows, however busily. Models check this when the socket is ready:
        their deadline sweeps only see clients that are waiting, and a client
        trickling a byte every millisecond is often being served instead."""
        return not self.lingering and self.conn.parser.has_partial_request and now >= self.deadline

    def give_up(self):
        """Deadline passed: a 408 if a request was half-way in (best effort), then close."""
        if not self.lingering and not self.out:
            try:
                self.sock.send(b"".join(self.conn.timeout_response()))
            except OSError:
                pass
        self.close()

    def _start_lingering(self):
        # Closing a socket with unread bytes in it makes the kernel send a
        # RST, which can destroy the response we just sent (say, a 400 for
        # a request whose body is still arriving). So: send FIN, read and
        # discard until the client closes too, then close.
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            return CLOSE
        self.lingering = True
        self.deadline = time.monotonic() + LINGER
        return self._drain()

    def _drain(self):
        while True:
            try:
                if not self.sock.recv(RECV_SIZE):
                    return CLOSE
            except BlockingIOError:
                return READ
            except OSError:
                return CLOSE

    def close(self):
        close_chunks(self.out)
        self.sock.close()


# The blocking models (iterative, thread per connection) serve one connection
# from start to end with ordinary blocking calls.

def serve_blocking(sock, addr, app, timeout=Timeouts.idle, stopping=None):
    """Serve one client with blocking calls until the connection ends.

    `stopping` (the server's Event) lets stop() cut a /sleep short."""
    conn = Connection(app, peer=str(addr[0]) if addr else "-")
    tune_client_socket(sock)
    sock.settimeout(timeout)  # without it, a silent client would hold us forever
    try:
        while not conn.closing:
            conn.feed(sock.recv(RECV_SIZE))  # blocks until the client sends something
            while (chunks := conn.next_response()) is not None:
                send_blocking(sock, chunks, stopping)  # blocks until the client has taken it all
        linger(sock)
    except socket.timeout:
        try:
            sock.sendall(b"".join(conn.timeout_response()))
        except OSError:
            pass
    except OSError:
        pass  # the client went away, or the server is stopping
    finally:
        sock.close()


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
    """Send FIN, then read until the client closes too (see Client._start_lingering)."""
    sock.shutdown(socket.SHUT_WR)
    sock.settimeout(seconds)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and sock.recv(RECV_SIZE):
        pass
