"""What this machine allows: open files, select()'s set size, CPUs.

A server with 1000 clients needs 1000 sockets, and a laptop may not allow
that many. Each operating system draws the line somewhere else:

* Open files. Linux usually allows 1024 per process (a soft limit that a
  process may raise up to a hard one), macOS only 256, and a JupyterHub pod
  may have a hard limit of 256 that nothing can raise. Every socket counts.
* select(). On Linux and macOS it cannot watch a descriptor numbered 1024 or
  more (FD_SETSIZE); on Windows it watches at most 512 sockets (CPython is
  built with FD_SETSIZE 512), and on Windows every event loop of the
  selectors module is a select() loop: there is no epoll or kqueue.
* CPUs. A container may see every core of its host while its CPU quota is
  one or two: os.cpu_count() says 32, and 32 worker processes share 1 CPU.

Every place that starts a server, a load worker or a big experiment asks
here first, so that it raises what it may, sizes itself to the rest, and
says in one line what it had to leave out, instead of failing half-way.
"""

import errno
import math
import os
import selectors
import sys

WINDOWS = sys.platform == "win32"
# select()'s FD_SETSIZE: on Windows a number of sockets, elsewhere the first
# descriptor number it cannot watch.
FD_SETSIZE = 512 if WINDOWS else 1024
# Descriptors a process holds besides its clients: the listener, stdio, the
# interpreter's own files, a notebook kernel's sockets, log files.
RESERVE = 48
# macOS refuses a soft limit above OPEN_MAX (10240), even when the hard limit
# says "unlimited".
OPEN_MAX = 10240


def open_files_limit():
    """How many files this process may have open now (the soft limit), or
    None where there is no such per-process limit on sockets (Windows)."""
    try:
        import resource
    except ImportError:
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY else soft


def raise_open_files_limit(needed=None):
    """Let this process open `needed` files (None: as many as it may), as far
    as the hard limit allows; returns the soft limit now in force (None: no
    limit). Child processes inherit it, so call it before starting them."""
    try:
        import resource
    except ImportError:  # Windows: no such limit on sockets
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return None
    ceiling = OPEN_MAX if hard == resource.RLIM_INFINITY else hard
    if sys.platform == "darwin":
        ceiling = min(ceiling, OPEN_MAX)
    target = ceiling if needed is None else min(max(needed, soft), ceiling)
    if target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass  # a sandbox that forbids it: the soft limit stays
    return soft


def select_watches_everything():
    """True where the selectors module's best loop is select() itself
    (Windows): then every event loop is bound by FD_SETSIZE, not only
    lesson 03's select server."""
    return selectors.DefaultSelector is selectors.SelectSelector


def connection_cap(select_based=None):
    """(cap, reason): how many client connections one event loop, or one
    process, can hold here, and why; (None, None) if no limit is known.
    The cap is FD_SETSIZE where the loop is a select() loop (`select_based`,
    by default: whether the selectors module's best loop is select()), and
    the open-file limit minus RESERVE everywhere."""
    if select_based is None:
        select_based = select_watches_everything()
    caps = []
    if select_based:  # the listener and the waker are in the set too
        caps.append((FD_SETSIZE - RESERVE // 2, f"select() watches at most {FD_SETSIZE} sockets here"))
    limit = open_files_limit()
    if limit is not None:
        caps.append((max(1, limit - RESERVE), f"a process may open {limit} files here"))
    return min(caps) if caps else (None, None)


def fit_clients(wanted, in_one_process=False):
    """(clients, note): `wanted` clients, or fewer if this machine cannot hold
    them all (after raising the open-file limit as far as it may); `note` is
    one line saying why, or None. The server holds one socket per client; a
    load generator in the same process holds another (in_one_process)."""
    raise_open_files_limit()
    cap, reason = connection_cap()
    if cap is None:
        return wanted, None
    if in_one_process:
        cap = max(1, cap // 2)
    if wanted <= cap:
        return wanted, None
    return cap, f"{wanted} clients scaled down to {cap}: {reason}."


def fit_client_counts(counts, in_one_process=False):
    """(counts, note): the client counts of a sweep that this machine can
    hold, those above the cap replaced by the cap itself (once); `note` is
    one line saying what was left out and why, or None."""
    counts = list(counts)
    if not counts:
        return counts, None
    cap, note = fit_clients(max(counts), in_one_process)
    if note is None:
        return counts, None
    kept = [n for n in counts if n < cap] + [cap]
    left_out = ", ".join(str(n) for n in counts if n > cap)
    return kept, f"{left_out} clients left out, {cap} instead: {note.split(': ', 1)[1]}"


def out_of_files(error):
    """True if an OSError says this process (or the system) has no file
    descriptor left: accept() and socket() fail so, and the socket waiting
    in the backlog stays there, so retrying at once would spin."""
    return getattr(error, "errno", None) in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM,
                                               getattr(errno, "WSAEMFILE", errno.EMFILE))


def usable_cpus(cap=None):
    """CPUs this process can really use: the ones it may run on (affinity)
    and no more than its CPU quota (a container's cgroup limit, rounded up);
    at most `cap` if given."""
    if hasattr(os, "process_cpu_count"):  # Python 3.13: affinity-aware
        count = os.process_cpu_count() or 1
    elif hasattr(os, "sched_getaffinity"):
        count = len(os.sched_getaffinity(0)) or 1
    else:
        count = os.cpu_count() or 1
    quota = cgroup_cpu_quota()
    if quota is not None:
        count = min(count, max(1, math.ceil(quota)))
    return min(count, cap) if cap else count


def cgroup_cpu_quota(root="/sys/fs/cgroup"):
    """The CPU quota of this process's cgroup in CPUs (1.5 = one and a half),
    or None if there is none (or this is not Linux)."""
    try:  # cgroup v2: "max 100000" (no quota) or "150000 100000"
        with open(os.path.join(root, "cpu.max"), encoding="utf-8") as file:
            quota, period = file.read().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:  # cgroup v1: -1 means no quota
        with open(os.path.join(root, "cpu", "cpu.cfs_quota_us"), encoding="utf-8") as file:
            quota = int(file.read())
        with open(os.path.join(root, "cpu", "cpu.cfs_period_us"), encoding="utf-8") as file:
            period = int(file.read())
        return None if quota <= 0 or period <= 0 else quota / period
    except (OSError, ValueError):
        return None
