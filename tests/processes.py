"""Helpers for the tests that start child processes (test_child.py, test_grade.py):
did a process end, and did a test leave any of ours running?

    from processes import gone, nothing_left_running  # noqa: F401  (an autouse fixture)

(Shared test helpers belong in conftest.py; these move there once the servers'
conftest and this branch are merged.)
"""

import time

import psutil
import pytest


def gone(pid, within=8.0):
    """True once `pid` no longer runs (exited, or a zombie that init has not reaped yet)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


def our_processes():
    """Every process below this one, but multiprocessing's resource tracker (it lives as long as we do)."""
    return [p for p in psutil.Process().children(recursive=True) if "resource_tracker" not in " ".join(cmdline(p))]


def cmdline(process):
    try:
        return process.cmdline()
    except psutil.Error:
        return []


@pytest.fixture(autouse=True)
def nothing_left_running():
    """After each test: none of the processes it started is still running (5 s to end)."""
    yield
    deadline = time.monotonic() + 5
    while our_processes() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert our_processes() == []
