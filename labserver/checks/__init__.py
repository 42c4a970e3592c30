"""Check cells' helpers: test a student's code by its behaviour, on real sockets.

A notebook's check cell calls one function per exercise, for example

    from labserver.checks import lesson01 as check
    check.recv_exactly(recv_exactly)

It runs the student's function against real peers, some of them adversarial
(a sender that dribbles one byte at a time, a peer that closes early, a
client that speaks before the others have connected...), and either prints
one line saying what passed or raises CheckFailed with a message a student
can act on: what was expected, what happened, and where to look.

Three rules hold for every check, and this module provides them:

* Student code runs under a deadline (`run_student`), in a helper thread. A
  hang becomes a message that says what the code was doing when time ran
  out ("recv() returned b'' and you called it again 1,204 times"), read from
  the line it was stuck on and from `WatchedSocket`s, sockets that count what
  is done with them. Then the call is stopped: its sockets are shut down,
  and the thread is sent an exception, so nothing is left spinning.
* No raw exception reaches the student. Exceptions from the student's code
  are reported with the line that raised them; anything else a check trips
  over is turned into a CheckFailed that says so (`@check`).
* A stub that still raises NotImplementedError fails with "not written yet".

The trade-off: a thread cannot be killed from outside, only asked. A call
stuck in C code that nothing wakes (a lock acquired twice) stays behind as a
daemon thread until the kernel restarts; the message says so.

One module per lesson (lesson01.py, ...), each independent of the others.
"""

import contextlib
import ctypes
import functools
import linecache
import platform
import socket
import sys
import sysconfig
import threading
import time
import traceback
from pathlib import Path

DEADLINE = 10.0  # seconds a student's function may take, unless a check says otherwise
SPINNING = 0.3  # share of a core above which a waiting loop is called a busy loop


class CheckFailed(AssertionError):
    """An exercise's answer is not right yet; the message says why."""


class Abandoned(BaseException):
    """Raised inside a student's call the check has given up on, to end it.
    A BaseException, so that an `except Exception:` in the student's loop
    does not swallow it."""


def expect(condition, message):
    if not condition:
        raise CheckFailed(message)


def passed(message):
    print(f"\u2714 {message}")


# Where an exception or a hang happened: the student's line, not ours.

_OURS = [str(Path(__file__).resolve().parent.parent)] + sorted(
    {sysconfig.get_paths()[name] for name in ("stdlib", "platstdlib", "purelib", "platlib")}, key=len, reverse=True)


def _is_student_code(filename):
    if filename.startswith("<frozen"):
        return False
    try:
        path = str(Path(filename).resolve())
    except (OSError, ValueError):
        return True
    return not any(path.startswith(ours) for ours in _OURS)


def _where(filename, lineno, function):
    line = linecache.getline(filename, lineno).strip()
    place = "your code" if function == "<module>" else f"{function}()"
    return f"{place}, line {lineno}: `{line}`" if line else f"{place}, line {lineno}"


def student_line(error):
    """'poll_until(), line 5: `data = sock.recv(1024)`' for the last line of
    student code in the exception's traceback, or None if none is there."""
    frames = [f for f in traceback.extract_tb(error.__traceback__) if _is_student_code(f.filename)]
    return _where(frames[-1].filename, frames[-1].lineno, frames[-1].name) if frames else None


def stuck_line(thread):
    """Where a running thread is in student code ("f(), line 3: `...`, called
    from g(), line 7: `...`"), or None."""
    frame, places = sys._current_frames().get(thread.ident), []
    while frame is not None and len(places) < 2:
        name = frame.f_code.co_name
        if _is_student_code(frame.f_code.co_filename) and not (name.startswith("<") and name != "<module>"):
            places.append(_where(frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name))
        frame = frame.f_back
    return ", called from ".join(places) or None


def describe(error, name="your function"):
    """One line for an exception raised by student code."""
    where = student_line(error)
    text = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    return f"{name} raised {text}" + (f" (at {where})" if where else "")


def not_written(error, function):
    """The CheckFailed for a stub, naming the function whose stub raised:
    if poll_until() calls an unwritten try_recv(), try_recv() is the one to write first."""
    frame = error.__traceback__
    while frame.tb_next is not None:
        frame = frame.tb_next
    name = frame.tb_frame.f_code.co_name
    if name in ("<module>", "__init__") or name.startswith("_"):
        name = getattr(function, "__qualname__", None) or getattr(function, "__name__", "your function")
    return CheckFailed(f"{name}() is not written yet: replace `raise NotImplementedError` with your code")


def check(function):
    """Decorator for a check: a failure the check itself runs into (a socket
    the student's code closed under it, a value of an unexpected type) is
    reported in words, never as a traceback from inside labserver."""
    @functools.wraps(function)
    def checked(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except CheckFailed:
            raise
        except Abandoned:
            raise CheckFailed("the check gave up on your code (it ran past its deadline)") from None
        except Exception as error:
            where = student_line(error)
            if where is not None:
                raise CheckFailed(f"your code raised {type(error).__name__}: {error} (at {where})") from None
            raise CheckFailed(f"the check could not go on: {type(error).__name__}: {error}. Most often your code "
                              f"returned something of another kind than asked, or closed or changed a socket "
                              f"it was only lent; if the message makes no sense, show it to your teacher") from None
    return checked


# Running student code under a deadline.


class StudentCall:
    """function(*args) in a daemon thread, timed; see run_student()."""

    def __init__(self, function, args, name=None):
        self.function, self.args = function, args
        self.name = name or f"{getattr(function, '__name__', 'your function')}()"
        self.result = self.error = None
        self.cpu_s = self.wall_s = None
        self.returned_at = None  # perf_counter() when the call returned or raised
        self.thread = threading.Thread(target=self._run, name="labserver-check-student", daemon=True)

    def _run(self):
        start, cpu = time.perf_counter(), time.thread_time()
        try:
            try:
                self.result = self.function(*self.args)
            except BaseException as error:  # handed to the check, never printed by threading
                self.error = error
            finally:
                self.returned_at = time.perf_counter()
                self.cpu_s, self.wall_s = time.thread_time() - cpu, self.returned_at - start
        except Abandoned:
            pass  # stop() asked just as the call was ending on its own

    def start(self):
        self.started_at = time.perf_counter()
        self.thread.start()
        return self

    def run(self, deadline=DEADLINE, sockets=(), doing=None):
        """Start, wait up to `deadline` s, and return the result (see run_student)."""
        self.start()
        if not self.wait(deadline):
            headline = f"{self.name} did not return within {deadline:g} s" + (f" ({doing})" if doing else "")
            raise CheckFailed(hang_message(self, headline, sockets))
        if self.error is not None:
            if isinstance(self.error, NotImplementedError):
                raise not_written(self.error, self.function)
            raise self.error
        return self.result

    def raise_error(self, name, before=""):
        """Once the call has ended: raise "not written yet", or what it raised, in words (`before` first)."""
        if isinstance(self.error, NotImplementedError):
            raise not_written(self.error, self.function)
        if self.error is not None:
            raise CheckFailed(before + describe(self.error, name))

    def wait(self, seconds):
        self.thread.join(seconds)
        return not self.thread.is_alive()

    def cpu_share(self):
        """CPU seconds per wall second the call has used so far (None if unknown)."""
        if self.cpu_s is not None:
            return self.cpu_s / max(self.wall_s, 1e-6)
        cpu = thread_cpu(self.thread)
        return None if cpu is None else cpu / max(time.perf_counter() - self.started_at, 1e-6)

    def stop(self, sockets=()):
        """Wake and end a call that ran past its deadline; True if it ended."""
        for sock in sockets:
            sock.abandon()
        for _ in range(3):
            if not self.thread.is_alive():
                return True
            if self.returned_at is None:  # still in the student's code: never once it is on its way out
                raise_in(self.thread, Abandoned)
            self.thread.join(0.3)
        return not self.thread.is_alive()


def thread_cpu(thread):
    """CPU seconds a running thread has used, where the OS tells (Linux, or psutil)."""
    try:
        return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))
    except (AttributeError, OSError, TypeError):
        pass
    try:
        import psutil

        native = getattr(thread, "native_id", None)
        for row in psutil.Process().threads():
            if row.id == native:
                return row.user_time + row.system_time
    except Exception:  # psutil may not see threads here: then we do not know
        pass
    return None


def raise_in(thread, exception):
    """Ask `thread` to raise `exception` at its next Python instruction (CPython only)."""
    if platform.python_implementation() != "CPython" or thread.ident is None:
        return
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread.ident), ctypes.py_object(exception))


def run_student(function, *args, deadline=DEADLINE, name=None, sockets=(), doing=None):
    """Call function(*args) in a helper thread and return what it returns.

    If it raises, the exception is raised here (NotImplementedError as "not
    written yet"). If it has not returned after `deadline` seconds, the call
    is stopped and CheckFailed says what it was doing, from `sockets`
    (WatchedSockets it was given) and from the line it was on; `doing` is
    what the check had arranged ("the peer sent 30 bytes one at a time")."""
    return StudentCall(function, args, name).run(deadline, sockets, doing)


def hang_message(attempt, headline, sockets=()):
    """`headline` ("client 4 got no echo within 2 s"), then what the call was
    doing, from `sockets` and from the line it was on; stops it on the way."""
    where = stuck_line(attempt.thread)
    share = attempt.cpu_share()
    reasons = [sock.diagnosis() for sock in sockets]
    reason = next((r for r in reasons if r and r.startswith("recv() returned b''")), None) or \
        next((r for r in reasons if r), None)
    if reason is None and share is not None and share > SPINNING:
        reason = (f"it kept a CPU core {share:.0%} busy in a loop that never ended: does each turn make "
                  f"progress, and is there a way out (a deadline; select() that sleeps, not timeout 0)?")
    ended = attempt.stop(sockets)
    message = headline
    if reason:
        message += f" {reason[0].upper()}{reason[1:]}" if headline.endswith(("?", ".")) else f": {reason}"
    if where:
        message += _sentence(message, f"It was at {where}")
    if not ended:
        message += _sentence(message, "It is still running in the background and the check cannot stop it: "
                                      "restart the kernel (Kernel > Restart) before you try again")
    return message


def _sentence(text, more):
    return (" " if text.endswith(("?", ".", "!")) else ". ") + more


class ThreadWatch:
    """Installed as the profiler of one thread (sys.setprofile), it sees every
    Thread.start() and Thread.join() that thread makes, even inside a
    ThreadPoolExecutor."""

    START, JOIN = threading.Thread.start.__code__, threading.Thread.join.__code__

    def __init__(self):
        self.started, self.joined = [], set()

    def __call__(self, frame, event, arg):
        if event == "call" and frame.f_code is self.START:
            self.started.append(frame.f_locals.get("self"))
        elif event == "return" and frame.f_code is self.JOIN:
            thread = frame.f_locals.get("self")
            if thread is not None and not thread.is_alive():
                self.joined.add(id(thread))

    def run(self, function, *args):
        """function(*args), watched; returns (result, threads still alive, threads never joined)."""
        sys.setprofile(self)
        try:
            result = function(*args)
        finally:
            sys.setprofile(None)
        alive = [t for t in self.started if t is not None and t.is_alive()]
        unjoined = [t for t in self.started if t is not None and id(t) not in self.joined]
        return (list(result) if isinstance(result, list) else result), alive, unjoined


# Sockets that remember what was done with them.


class WatchedSocket(socket.socket):
    """A real socket that counts what the code under test does with it:
    recv() calls, how many found nothing (BlockingIOError), calls made after
    recv() had already returned b"" (the peer closed), how often select()
    looked at it (fileno()), mode changes (settimeout, setblocking), and
    which call is in progress. Once the check
    gives up (`abandon()`), the socket is shut down and every further call
    raises Abandoned, which ends a loop that ignores what recv() returns."""

    def __init__(self, sock):
        timeout = sock.gettimeout()
        super().__init__(sock.family, sock.type, sock.proto, fileno=sock.detach())
        super().settimeout(timeout)
        self.recv_calls = self.nothing_yet = self.eof_returns = self.calls_after_eof = self.looked_at = 0
        self.received = self.sent = 0
        self.modes = []  # what the code under test switched the socket to: "timeout 0.5 s", "blocking"
        self.busy = None  # the call in progress
        self.abandoned = False
        self.accepted = []  # for a listener: the sockets accept() returned, watched too

    def _enter(self, name):
        if self.abandoned:
            raise Abandoned(f"{name}() after the check gave up")
        self.busy = name

    def recv(self, bufsize, *flags):
        return self._receive("recv", super().recv, bufsize, bufsize, *flags)

    def recv_into(self, buffer, nbytes=0, *flags):
        return self._receive("recv_into", super().recv_into, nbytes or len(buffer), buffer, nbytes, *flags)

    def _receive(self, name, method, asked, *args):
        self._enter(name)
        try:
            result = method(*args)
        except BlockingIOError:
            self.nothing_yet += 1
            raise
        finally:
            self.busy = None
            self.recv_calls += 1
        received = result if isinstance(result, int) else len(result)
        self.received += received
        if received == 0 and asked > 0:
            if self.eof_returns:
                self.calls_after_eof += 1
            self.eof_returns += 1
        return result

    def send(self, data, *flags):
        self._enter("send")
        try:
            n = super().send(data, *flags)
        finally:
            self.busy = None
        self.sent += n
        return n

    def sendall(self, data, *flags):
        self._enter("sendall")
        try:
            super().sendall(data, *flags)
        finally:
            self.busy = None
        self.sent += len(data)

    def accept(self):
        self._enter("accept")
        try:
            conn, address = super().accept()
        except BlockingIOError:
            self.nothing_yet += 1
            raise
        finally:
            self.busy = None
        conn = WatchedSocket(conn)
        self.accepted.append(conn)
        return conn, address

    def fileno(self):
        self.looked_at += 1  # select() asks every socket it watches, on every call
        return super().fileno()

    def settimeout(self, value):
        self.modes.append("blocking" if value is None else f"a timeout of {value:g} s")
        super().settimeout(value)

    def setblocking(self, flag):
        self.modes.append("blocking" if flag else "non-blocking")
        super().setblocking(flag)

    def quietly(self):
        """The same descriptor as a plain socket, for the check's own calls (not counted).
        Closing it does not close this one."""
        return socket.socket(self.family, self.type, self.proto, fileno=socket.dup(self.fileno()))

    def abandon(self):
        """The check gave up: wake any call in progress, refuse every later one."""
        self.abandoned = True
        if self._listening():  # a connection wakes accept() and select() on every OS
            with contextlib.suppress(OSError):
                socket.create_connection(self.getsockname()[:2], timeout=0.5).close()
        for sock in [self, *self.accepted]:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.abandoned = True

    def _listening(self):
        if self.fileno() == -1 or self.family not in (socket.AF_INET, socket.AF_INET6):
            return False
        try:
            return bool(self.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN))
        except (AttributeError, OSError):  # no SO_ACCEPTCONN here: a listener has no peer
            try:
                self.getpeername()
                return False
            except OSError:
                return True

    def diagnosis(self):
        """What the code was doing with this socket, if it says something about a hang."""
        for sock in [self, *self.accepted]:
            if sock.calls_after_eof:
                return (f"recv() returned b'' (the peer had closed) and your code called recv() again "
                        f"{sock.calls_after_eof:,} times: b'' means the connection is closed for good; "
                        f"stop (return, raise, or close the socket) when you get it")
        spins = sum(sock.nothing_yet for sock in [self, *self.accepted])
        if spins > 1000:
            return (f"it called recv() {spins:,} times without data and never gave up: "
                    f"a busy loop needs a deadline")
        busy = next((sock.busy for sock in [self, *self.accepted] if sock.busy and sock.gettimeout() != 0), None)
        if busy == "accept":
            return "it was blocked in accept(), waiting for a client that had not come yet"
        if busy is not None:
            return f"it was blocked in {busy}() on a socket where nothing more was coming"
        return None

    def close(self):
        self.busy = None
        super().close()


def watched_pair():
    """(ours, theirs): a connected pair of sockets, ours a WatchedSocket."""
    ours, theirs = socket.socketpair()
    return WatchedSocket(ours), theirs


@contextlib.contextmanager
def dribbling_peer(data, interval=0.005, chunk=1, close_after=False):
    """A connected WatchedSocket whose peer sends `data` `chunk` bytes at a
    time, `interval` seconds apart, from a helper thread: recv() will return
    it in many small pieces, as a slow network would. With close_after, the
    peer then closes its side. Everything is closed on exit."""
    ours, theirs = watched_pair()
    stop = threading.Event()

    def send():
        try:
            for i in range(0, len(data), chunk):
                if i and interval and stop.wait(interval):
                    return
                theirs.sendall(data[i:i + chunk])
            if close_after:
                theirs.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    sender = threading.Thread(target=send, name="labserver-check-sender", daemon=True)
    sender.start()
    try:
        yield ours
    finally:
        stop.set()
        with contextlib.suppress(OSError):
            theirs.shutdown(socket.SHUT_RDWR)  # wakes a sender blocked on a full buffer
        sender.join()
        ours.close()
        theirs.close()


def plain(value, *kinds):
    """True if value is exactly of one of these types: an object whose class
    redefines == (to say yes to everything) is not an answer."""
    return type(value) in kinds


def nothing_left_running():
    """The last cell of every lesson: no server thread, child process or
    listening socket may outlive the notebook, so it can be run again."""
    import os

    import psutil

    alive = [t.name for t in threading.enumerate() if t.name.startswith("labserver-") and t.is_alive()]
    stuck = [name for name in alive if name.startswith("labserver-check")]
    expect(not stuck, f"{len(stuck)} call(s) of your code that a check gave up on are still running in the "
                      f"background: restart the kernel (Kernel > Restart) to stop them")
    expect(not alive, f"{len(alive)} server threads still running ({', '.join(alive[:3])}"
                      f"{', ...' if len(alive) > 3 else ''}): stop() every server you started")
    me = psutil.Process()
    # multiprocessing keeps one helper (its resource tracker) for the whole session: not ours to stop.
    children = [p for p in me.children(recursive=True) if "resource_tracker" not in " ".join(_cmdline(p))]
    expect(not children, f"child processes still running: {[p.pid for p in children]}: stop() launched servers")
    from ..servers.server import LISTENERS

    listening = [sock.getsockname() for sock in list(LISTENERS) if sock.fileno() != -1]
    expect(not listening, f"sockets still listening at {listening}: a server was not stopped")
    passed(f"nothing left running (process {os.getpid()}): this notebook can be run again from the top")


def _cmdline(process):
    try:
        return process.cmdline()
    except Exception:  # it ended meanwhile, or we may not look
        return []
