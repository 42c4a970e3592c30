"""The lesson checks judge answers correctly: a right answer passes, and each
kind of wrong one fails with a message a student can act on.

(test_assignments.py proves every check fails on its unfilled stub, and nbval
that it passes on the instructor's solution; these cover the wrong answers
in between, where a check is easiest to get wrong.)
"""

import threading

import pytest

from labserver.checks import CheckFailed, lesson06

LOCK = threading.Lock()


def locked(counter):
    with LOCK:
        counter["n"] = counter["n"] + 1


def racy(counter):
    counter["n"] = counter["n"] + 1


def lock_per_call(counter):
    with threading.Lock():  # a new lock each time protects nothing
        counter["n"] = counter["n"] + 1


UNSTICK = threading.Event()


def never_releases(counter):
    """Passes the check's first, single-threaded call; then every thread waits,
    as on a lock that is never released (until the test ends)."""
    if threading.current_thread() is not threading.main_thread():
        UNSTICK.wait()
    counter["n"] = counter["n"] + 1


def stub(counter):
    raise NotImplementedError


def test_a_shared_lock_passes(capsys):
    lesson06.safe_increment(locked)
    assert "none lost" in capsys.readouterr().out


@pytest.mark.parametrize("answer", [racy, lock_per_call], ids=["no lock", "a lock per call"])
def test_lost_updates_fail(answer):
    with pytest.raises(CheckFailed, match="updates lost"):
        lesson06.safe_increment(answer)


def test_a_lock_never_released_fails_instead_of_hanging(monkeypatch):
    monkeypatch.setattr(lesson06, "GIVE_UP", 1.0)
    try:
        with pytest.raises(CheckFailed, match="never released"):
            lesson06.safe_increment(never_releases)
    finally:
        UNSTICK.set()  # let the stuck threads finish: nothing left running


def test_the_unfilled_stub_fails():
    with pytest.raises(CheckFailed, match="not written yet"):
        lesson06.safe_increment(stub)
