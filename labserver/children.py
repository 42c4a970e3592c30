"""Child processes that always end: start a command, wait until it serves, stop all of it.

    with Child(["python", "server.py", "--port", "8080"]) as child:   # an argument list
        child.wait_for_port(8080)        # or child.wait_for_output(r"http://\\S+")
        ...
    child.killed                         # what had to be killed, in words ([] if it stopped when asked)

The kit runs every server it measures, grades or benchmarks in a child
process (launch, grade, benchmarks/bench.py), and a child must never outlive
its purpose: an orphaned busy-wait server burns a core under every later
measurement, and a student's server left behind holds its port. So:

* A command is a list of arguments, never one string to split (a path with a
  space, "C:\\Users\\Jane Doe", stays one argument); `python` means this Python.
* The child runs in its own session and process group (POSIX), or its own
  process group (Windows): Ctrl-C in a terminal reaches us, not it, and we can
  signal the child together with every process it started.
* stop() asks, then insists: interrupt (SIGINT, or CTRL_BREAK_EVENT on
  Windows: the child's own Ctrl-C, so it closes its sockets), then terminate,
  then kill: the whole group, and every descendant seen while it ran, even
  one that moved to a session of its own. The child is always reaped, and
  `killed` says what did not stop when asked.
* A parent that dies cannot stop anything, and os.getppid() cannot tell a
  child so on Windows (it keeps returning the dead parent's pid). So each
  child comes with a guard: a small process that holds a pipe from us. When
  the pipe ends without a word from us (we were killed, even with SIGKILL, on
  any OS), the guard stops the child's group and descendants. A restarted
  notebook kernel or a killed grader leaves nothing running.

Trade-off: one more small process per child (the guard, run from this file
without importing the rest of labserver), for a guarantee that no other
mechanism gives on every OS. A descendant that detaches faster than we look
(every SAMPLE_EVERY seconds) and leaves its group is beyond reach.
"""

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import weakref

try:
    import psutil
except ImportError:  # a labserver dependency; without it we know only the group
    psutil = None

SAMPLE_EVERY = 0.5  # seconds between two looks at the child's descendants
STOP_TIMEOUT = 3.0  # seconds the child has after each request to stop
POSIX = os.name == "posix"
GUARD_RELEASE = b"stopped"  # what we tell the guard when the child has been stopped by us


class ChildError(Exception):
    """The command could not run, exited, or did not get ready in time."""


def command_list(cmd):
    """cmd as a list of strings; a leading `python` (or python3) is this Python."""
    if isinstance(cmd, (str, bytes)):
        raise TypeError(f"a command is a list of arguments, not one string: {cmd!r}")
    words = [os.fspath(word) if isinstance(word, os.PathLike) else str(word) for word in cmd]
    if not words:
        raise ChildError("the command is empty")
    if words[0] in ("python", "python3"):
        words[0] = sys.executable
    return words


class Child:
    """One command in a child process; see the module docstring.

    output: where its stdout and stderr go. By default a temporary file, read
    by wait_for_output() and output_tail(); any open binary file will do.
    """

    def __init__(self, cmd, env=None, cwd=None, stop_timeout=STOP_TIMEOUT, output=None):
        self.words = command_list(cmd)
        self.env = env
        self.cwd = cwd
        self.stop_timeout = stop_timeout
        self.process = None
        self.killed = []  # what had to be killed, in words
        self._output = output
        self._own_output = output is None
        self._final_output = ""  # what it printed, kept once the output file is closed
        self._guard = None
        self._seen = {}  # pid -> psutil.Process: every descendant seen while it ran
        self._stopping = threading.Event()
        self._sampler = None
        self._finalizer = None

    # Starting.

    def start(self):
        if self.process is not None:
            raise ChildError("this child was started already: make a new Child to run it again")
        if self._own_output:
            self._output = tempfile.TemporaryFile()
        options = {"start_new_session": True} if POSIX else {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
        try:
            self.process = subprocess.Popen(self.words, stdin=subprocess.DEVNULL, stdout=self._output,
                                            stderr=subprocess.STDOUT, env=self.env, cwd=self.cwd, **options)
        except OSError as error:
            self._close_output()
            raise ChildError(f"cannot run {self.words[0]!r}: {error.strerror or error}") from None
        try:
            self._guard = start_guard(self.process.pid)
        except OSError as error:
            kill_all(self.process, {})
            self._close_output()
            raise ChildError(f"cannot start the guard process: {error.strerror or error}") from None
        # At exit, or if the Child is dropped unstopped, its processes go too.
        self._finalizer = weakref.finalize(self, abandon, self.process, self._seen, self._guard, self._stopping)
        if psutil is not None:  # (not a method: the thread must not keep the Child alive)
            self._sampler = threading.Thread(target=sample, args=(self.process.pid, self._seen, self._stopping),
                                             name="labserver-child-sampler", daemon=True)
            self._sampler.start()
        return self

    def wait_for_port(self, port, host="127.0.0.1", timeout=10.0):
        """Return once (host, port) accepts a connection; ChildError if the child
        exits first or `timeout` seconds pass."""
        def accepts():
            try:
                socket.create_connection((host, port), timeout=0.5).close()
                return True
            except OSError:
                return False

        self._wait(accepts, timeout, f"did not accept connections on {host}:{port} within {timeout:g} s")

    def wait_for_output(self, pattern, timeout=10.0):
        """The first match of the regular expression `pattern` in the child's
        output (decoded as UTF-8), once it appears; ChildError as wait_for_port."""
        found = []

        def printed():
            match = re.search(pattern, self.output_text())
            if match:
                found.append(match)
            return bool(match)

        self._wait(printed, timeout, f"printed nothing that matches {pattern!r} within {timeout:g} s")
        return found[0]

    def _wait(self, ready, timeout, problem):
        deadline = time.monotonic() + timeout
        while True:
            if ready():
                return
            status = self.process.poll()
            if status is not None:
                raise ChildError(f"exited with status {status} before it was ready" + self.output_tail(prefix=":\n"))
            if time.monotonic() > deadline:
                raise ChildError(problem + self.output_tail(prefix=":\n"))
            time.sleep(0.05)

    # Stopping.

    def stop(self):
        """Interrupt, terminate, kill (group and descendants); always reap.
        Returns `killed`: what did not stop when asked. Safe to call twice."""
        if self._finalizer is None or not self._finalizer.alive:
            return self.killed
        self._finalizer.detach()
        process = self.process
        self._stopping.set()
        if self._sampler is not None:
            self._sampler.join()
        self._seen.update(descendants(process.pid))  # a last look while it may still run
        self.resume()  # a paused process would not act on what we ask
        for how in ("interrupt", "terminate"):
            if process.poll() is not None:
                break
            signal_group(process, how)
            try:
                process.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                self.killed.append(f"pid {process.pid} ({self.name}) did not stop within "
                                   f"{self.stop_timeout:g} s of the {how} signal")
        if process.poll() is None:
            signal_group(process, "kill")
            self.killed.append(f"pid {process.pid} ({self.name}) killed")
        process.wait()  # reaped: no zombie
        self.killed += kill_all(process, self._seen, self._guard, release=True)
        self._close_output()
        return self.killed

    def pause(self):
        """Freeze the child and everything it started until resume(): it takes no
        CPU meanwhile (a benchmark measures one server while the others wait)."""
        self._freeze("pause")

    def resume(self):
        self._freeze("resume")

    def _freeze(self, how):
        if not self.running:
            return
        if POSIX:
            signal_group(self.process, how)
        elif psutil is not None:  # Windows: no SIGSTOP; suspend each process
            for proc in [psutil.Process(self.pid), *descendants(self.pid).values()]:
                try:
                    (proc.suspend if how == "pause" else proc.resume)()
                except psutil.Error:
                    pass

    @property
    def name(self):
        return os.path.basename(self.words[0])

    @property
    def pid(self):
        return self.process.pid if self.process is not None else None

    @property
    def running(self):
        return self.process is not None and self.process.poll() is None

    def output_text(self):
        """Everything the child has printed so far (stdout and stderr), as text."""
        if self._output is None or not self._own_output:
            return ""
        if self._output.closed:
            return self._final_output
        self._output.seek(0)
        return self._output.read().decode("utf-8", errors="replace")

    def output_tail(self, lines=10, prefix=""):
        text = "\n".join(self.output_text().splitlines()[-lines:])
        return prefix + text if text else ""

    def _close_output(self):
        if self._own_output and self._output is not None and not self._output.closed:
            self._final_output = self.output_text()
            self._output.close()

    def __enter__(self):
        return self.start() if self.process is None else self

    def __exit__(self, *exc_info):
        self.stop()

    def __repr__(self):
        state = "running" if self.running else "not running"
        return f"<Child {' '.join(self.words)[:60]!r} {state}>"


def signal_group(process, how):
    """Send the child's group the interrupt (its Ctrl-C), terminate or kill (POSIX: pause, resume too)."""
    try:
        if POSIX:
            signum = {"interrupt": signal.SIGINT, "terminate": signal.SIGTERM, "kill": signal.SIGKILL,
                      "pause": signal.SIGSTOP, "resume": signal.SIGCONT}[how]
            os.killpg(process.pid, signum)  # its pgid is its pid: it leads its own session
        elif how == "interrupt":
            process.send_signal(signal.CTRL_BREAK_EVENT)  # reaches its process group
        elif how == "terminate":
            process.terminate()
        else:
            process.kill()
    except (ProcessLookupError, PermissionError, OSError):
        pass  # gone already (or a zombie about to be reaped)


def descendants(pid):
    """{pid: psutil.Process} of every process below `pid` right now."""
    if psutil is None:
        return {}
    try:
        return {p.pid: p for p in psutil.Process(pid).children(recursive=True)}
    except psutil.Error:
        return {}


def sample(pid, seen, stopping):
    """Note every descendant of `pid`, every SAMPLE_EVERY seconds, until `stopping` is set."""
    while not stopping.wait(SAMPLE_EVERY):
        seen.update(descendants(pid))


def abandon(process, seen, guard, stopping):
    """A Child dropped (or left at exit) without stop(): end it all the same."""
    stopping.set()
    kill_all(process, seen, guard)


def kill_all(process, seen, guard=None, release=False):
    """Kill whatever is left of the child's group and of `seen`; returns what was
    still running, in words. release=True tells the guard that we did it."""
    leftovers = {proc.pid: proc for proc in group_members(process.pid, wait=1.0)}  # (leavers may take a moment)
    leftovers.update((pid, proc) for pid, proc in seen.items() if alive(proc))
    if POSIX:
        signal_group(process, "kill")  # the group at once, then each one that left it
    killed = []
    for proc in leftovers.values():
        try:  # psutil checks that the pid still names the same process
            name = proc.name()
            proc.kill()
            killed.append(f"pid {proc.pid} ({name}) left behind, killed")
        except psutil.Error:
            pass
    if process.poll() is None:
        process.kill()
        process.wait()
    if guard is not None:
        stop_guard(guard, release)
    return killed


def alive(proc):
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def group_members(pgid, wait=0.0):
    """The live processes of process group `pgid` (POSIX; zombies do not count:
    an orphan waits for init to reap it), after up to `wait` seconds for them to go."""
    if not POSIX or psutil is None:
        return []
    deadline = time.monotonic() + wait
    while True:
        members = []
        for proc in psutil.process_iter():
            try:
                if os.getpgid(proc.pid) == pgid and alive(proc):
                    members.append(proc)
            except (OSError, psutil.Error):
                pass  # gone meanwhile
        if not members or time.monotonic() >= deadline:
            return members
        time.sleep(0.05)


# The guard: a process of its own that stops the child if we die.

def start_guard(pid):
    """Run this file as a guard over `pid`; it holds the read end of a pipe from us."""
    options = {"start_new_session": True} if POSIX else {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
    return subprocess.Popen([sys.executable, os.path.abspath(__file__), str(pid)], stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **options)


def stop_guard(guard, release):
    try:
        if release:
            guard.stdin.write(GUARD_RELEASE)
        guard.stdin.close()  # the guard reads EOF: it acts (or not, if released) and exits
    except OSError:
        pass
    try:
        guard.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        guard.kill()
        guard.wait()


def guard(pid):
    """Wait for the end of stdin. Released: exit. Not released (the parent
    died): stop pid's group and every descendant seen, as stop() would."""
    seen = {}
    said = []
    ended = threading.Event()

    def read():
        said.append(sys.stdin.buffer.read())  # returns at EOF: our parent closed the pipe or died
        ended.set()

    threading.Thread(target=read, daemon=True).start()
    while not ended.wait(SAMPLE_EVERY):
        seen.update(descendants(pid))
    if said[0] == GUARD_RELEASE:
        return
    victims = [p for p in [psutil.Process(pid) if psutil and psutil.pid_exists(pid) else None, *seen.values()] if p]
    if POSIX:
        for signum in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(pid, signum)
            except (ProcessLookupError, PermissionError):
                break
            if not group_members(pid, wait=STOP_TIMEOUT):
                break
    for proc in victims:
        try:
            proc.kill()
        except Exception:  # psutil.Error: gone already, as it should be
            pass


if __name__ == "__main__":  # the guard, run by path: only the standard library and psutil are imported
    guard(int(sys.argv[1]))
