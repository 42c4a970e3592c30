"""What the server under test costs: CPU, memory and connections, from outside.

A background thread samples the server's whole process tree with psutil (the
processes model has children; so does nginx): CPU time at the start and end
of the measured window (-> % of one core: 200 % is two cores busy), the
resident memory every sample (-> the peak, in MB), and the connections the
server holds (-> how many clients it really serves at once).

Why count connections at the server: the kernel completes a client's connect()
before the server calls accept(), so a client cannot tell a connection that
is being served from one waiting in the accept queue. The iterative server
holds one connection whatever the clients think; only its file descriptors
say so. On Linux we list them (/proc/PID/fd) and count the sockets that were
not there before the run (the listening socket, wake-up pipes); elsewhere
psutil lists the server's TCP connections on its port.

Watching must not disturb what it watches: it shares the two cores. Parsing
the kernel's whole TCP table (what psutil's connection list does) took tens
of milliseconds on a machine with 30k sockets in TIME_WAIT and cut the
server's req/s by ~20 %; reading the fds costs a millisecond, and the
sampling still slows itself down to keep its cost under 2 % of a core.

Trade-offs: the peak memory is the largest sampled sum of RSS, so a spike
shorter than a sample can be missed, and memory that forked children share is
counted once per child; CPU time of a child that lived and died between two
samples still counts (its parent's children_user/children_system hold it).
"""

import os
import threading
import time

try:
    import psutil
except ImportError:  # a dependency of labserver; without it we simply know less
    psutil = None

INTERVAL = 0.1  # seconds between samples
TREE_REFRESH = 1.0  # seconds between two listings of the server's processes (costly: every pid)
OWN_SHARE = 0.02  # at most this share of a core spent sampling
HAVE_PROC_FDS = os.path.isdir("/proc/self/fd")


def process_tree(pid):
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def tree_cpu_seconds(procs):
    """User + system CPU seconds used so far by processes, and by the
    children they have already reaped."""
    total = 0.0
    for proc in procs:
        try:
            times = proc.cpu_times()
            total += times.user + times.system + times.children_user + times.children_system
        except psutil.Error:
            pass  # exited while we looked
    return total


def tree_rss_bytes(procs):
    total = 0
    for proc in procs:
        try:
            total += proc.memory_info().rss
        except psutil.Error:
            pass
    return total


def socket_inodes(procs):
    """The sockets that processes hold, as 'socket:[inode]' (Linux); a socket
    shared by a parent and a forked child counts once."""
    found = set()
    for proc in procs:
        folder = f"/proc/{proc.pid}/fd"
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        for name in names:
            try:
                target = os.readlink(f"{folder}/{name}")
            except OSError:
                continue  # closed meanwhile
            if target.startswith("socket:"):
                found.add(target)
    return found


def tcp_connections(procs, port):
    """Established TCP connections on `port` held by processes (any OS, slower)."""
    count = 0
    for proc in procs:
        try:
            lister = getattr(proc, "net_connections", None) or proc.connections  # psutil < 6
            count += sum(1 for c in lister(kind="tcp")
                         if c.status == psutil.CONN_ESTABLISHED and c.laddr and c.laddr[1] == port)
        except psutil.Error:
            pass
    return count


class ServerMonitor:
    """Samples a server's process tree while a load runs.

        monitor = ServerMonitor(pid, port).start()     # before the clients connect
        monitor.begin_window(); ...load...; monitor.end_window()
        monitor.stop(); monitor.results()
    """

    def __init__(self, pid, port=None, interval=INTERVAL):
        self.pid = pid
        self.port = port
        self.interval = interval
        self.available = psutil is not None and pid is not None and psutil.pid_exists(pid)
        self._done = threading.Event()
        self._now = threading.Event()  # "sample now": the window has just begun
        self._thread = None
        self._tree, self._tree_time = [], -TREE_REFRESH
        self._cpu_start = self._cpu_end = self._t_start = self._t_end = None
        self._idle_sockets = set()
        self.rss_peak = 0
        self.connection_samples = []

    def start(self):
        if self.available:
            if HAVE_PROC_FDS:
                self._idle_sockets = socket_inodes(self.tree())  # the listener and such: not clients
            self._thread = threading.Thread(target=self._sample_forever, name="labserver-monitor", daemon=True)
            self._thread.start()
        return self

    def tree(self, now=None):
        """The server's processes, listed at most once per TREE_REFRESH."""
        now = time.perf_counter() if now is None else now
        if now - self._tree_time >= TREE_REFRESH:
            try:
                self._tree = process_tree(self.pid)
            except psutil.Error:
                self._tree = []
            self._tree_time = now
        return self._tree

    def begin_window(self):
        """The clock started: from now on samples count (the first one at once)."""
        self.rss_peak = 0
        self.connection_samples = []
        self._t_start, self._cpu_start = time.perf_counter(), self._cpu()
        self._now.set()

    def end_window(self):
        self._t_end, self._cpu_end = time.perf_counter(), self._cpu()
        if self.available and not self.connection_samples:
            # A loaded machine slows the sampling down (OWN_SHARE) and a short
            # window can end before its first sample: take one now, rather than
            # fall back to the clients' count, which cannot see the accept queue.
            procs = self.tree()
            if procs:
                self.connection_samples.append(self._connections(procs))

    def stop(self):
        self._done.set()
        self._now.set()
        if self._thread is not None:
            self._thread.join()

    def results(self):
        """{'cpu_pct', 'rss_mb', 'connections_max', 'connections_mean'}, None where unknown."""
        measured = None not in (self._cpu_start, self._cpu_end, self._t_start, self._t_end)
        elapsed = (self._t_end - self._t_start) if measured else 0
        samples = self.connection_samples
        return {
            "cpu_pct": 100 * (self._cpu_end - self._cpu_start) / elapsed if measured and elapsed > 0 else None,
            "rss_mb": self.rss_peak / 1e6 if self.rss_peak else None,
            "connections_max": max(samples) if samples else None,
            "connections_mean": sum(samples) / len(samples) if samples else None,
        }

    def _cpu(self):
        if not self.available:
            return None
        self._tree_time = -TREE_REFRESH  # list the processes afresh: CPU must count them all
        procs = self.tree()
        return tree_cpu_seconds(procs) if procs else None  # the server died: no figure, not a wrong one

    def _connections(self, procs):
        if HAVE_PROC_FDS:
            return len(socket_inodes(procs) - self._idle_sockets)
        return tcp_connections(procs, self.port)

    def _sample_forever(self):
        while not self._done.is_set():
            started = time.perf_counter()
            procs = self.tree(started)
            if not procs:
                return  # the server is gone
            self.rss_peak = max(self.rss_peak, tree_rss_bytes(procs))
            if self._t_start is not None and self._t_end is None:
                self.connection_samples.append(self._connections(procs))
            cost = time.perf_counter() - started
            self._now.wait(max(self.interval, cost / OWN_SHARE))
            self._now.clear()


# CPU pinning: which cores the server and the clients may run on.

def can_pin():
    return hasattr(os, "sched_setaffinity")


def pin(pid, cpus):
    """Restrict a process (0: this one) to `cpus`; returns False where unsupported."""
    if cpus is None or not can_pin():
        return False
    os.sched_setaffinity(pid, set(cpus))
    return True


# The cores this process may use when the package is imported: "all of them".
ALL_CPUS = frozenset(os.sched_getaffinity(0)) if can_pin() else frozenset()


def pinned_cpus(pid):
    """The cores a process is restricted to, or None if it may use all of them."""
    if pid is None or psutil is None or not ALL_CPUS:
        return None
    try:
        cpus = psutil.Process(pid).cpu_affinity()
    except (psutil.Error, AttributeError, OSError):
        return None
    return sorted(cpus) if set(cpus) != ALL_CPUS else None


def describe_pinning(server_cpus, client_cpus):
    """'server=0 clients=1' for the records, or None when nothing is pinned."""
    if server_cpus is None and client_cpus is None:
        return None
    show = lambda cpus: "any" if cpus is None else ",".join(str(c) for c in sorted(cpus))  # noqa: E731
    return f"server={show(server_cpus)} clients={show(client_cpus)}"
