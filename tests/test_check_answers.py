"""Every check judges like a good TA: right answers pass, the classic bugs fail with a message.

The answers are in tests/answers/, one module per lesson, written the way
students write them: the classic bugs of each exercise (partial recv,
ignoring b"", send without looping, no lock or a lock per call, unjoined
threads, busy loops...) and correct answers written differently from the
instructor's solutions. Each runs through the real check function (no
notebook, no nbval). An answer that spins or blocks must fail within the
check's deadline, shortened here to keep the suite quick, and leave no
thread of the check behind.
"""

import importlib
import threading
import time

import pytest
import requests

import answers
from labserver import DEMO_SITE, ThreadPoolServer
from labserver.checks import CheckFailed, lesson00, lesson08

ANSWERS = answers.load()
SHORT = 1.5  # seconds: the deadlines of the checks, for answers that hang
DEADLINES = ["DEADLINE", "WAIT", "REPLY_TIMEOUT", "GIVE_UP", "STOP_WITHIN"]
# Lesson 08's answers get rows like a sweep's: the check adds rows of its own.
SWEEP = [{"model": m, "clients": c, "rps": r, "cpu_pct": cpu}
         for m, c, r, cpu in [("iterative", 1, 19.0, 2.0), ("threadpool", 1, 19.5, 3.0), ("busywait", 1, 19.8, 99.0),
                              ("iterative", 8, 20.0, 2.0), ("threadpool", 8, 150.0, 9.0), ("busywait", 8, 140.0, None)]]


def test_the_bank_covers_every_exercise_both_ways():
    covered = {(a.lesson, a.check, a.says is None) for a in ANSWERS}
    exercises = {(a.lesson, a.check) for a in ANSWERS}
    assert len(exercises) >= 17
    for lesson, check in exercises:
        assert (lesson, check, True) in covered, f"{lesson}.{check}: no right answer"
        assert (lesson, check, False) in covered, f"{lesson}.{check}: no wrong answer"


@pytest.mark.parametrize("answer", ANSWERS, ids=lambda a: a.name)
def test_the_check_judges_this_answer(answer, monkeypatch, capsys):
    module = importlib.import_module(f"labserver.checks.lesson{answer.lesson}")
    limit = 60.0
    if answer.hangs:
        # Lesson 05's checks run on lesson 04's loops: shorten the deadlines where they are defined.
        for owner in {module, importlib.import_module(getattr(module, answer.check).__module__)}:
            for name in DEADLINES:
                if hasattr(owner, name):
                    monkeypatch.setattr(owner, name, SHORT)
        limit = 4 * SHORT + 3  # a deadline or two, and the time to stop the call
    before = set(threading.enumerate())
    start = time.perf_counter()
    check = getattr(module, answer.check)
    args = (answer.function, SWEEP) if answer.lesson == "08" else (answer.function,)
    if answer.says is None:
        check(*args)
        assert "\u2714" in capsys.readouterr().out
    else:
        with pytest.raises(CheckFailed, match=answer.says) as failure:
            check(*args)
        message = str(failure.value)
        assert len(message) > 30 and "Traceback" not in message
    elapsed = time.perf_counter() - start
    assert elapsed < limit, f"the check took {elapsed:.1f} s"
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        left = [t for t in threading.enumerate() if t not in before and t.name.startswith("labserver-check")]
        if not left:
            break
        time.sleep(0.05)
    assert not left, f"the check left {[t.name for t in left]} running"


def test_a_stub_is_not_written_yet_for_every_check():
    def stub(*args):
        raise NotImplementedError("Exercise: replace this line with your code")

    for lesson, name in sorted({(a.lesson, a.check) for a in ANSWERS}):
        if (lesson, name) in {("05", "upper_echo_async"), ("09", "head_reader")}:
            continue  # a coroutine function and a class: their stubs are tried through the notebooks
        check = getattr(importlib.import_module(f"labserver.checks.lesson{lesson}"), name)
        args = (stub, [{"model": "a", "clients": 1, "rps": 1.0, "cpu_pct": 1.0}]) if lesson == "08" else (stub,)
        with pytest.raises(CheckFailed, match="not written yet"):
            check(*args)


def test_a_winner_decided_by_a_tie_accepts_every_tied_model():
    rows = [{"model": m, "clients": c, "rps": r, "cpu_pct": 5.0}
            for m, c, r in [("busywait", 8, 320.0), ("select", 8, 320.0), ("threadpool", 8, 320.0),
                            ("iterative", 8, 20.0), ("iterative", 1, 900.0)]]
    for tied in ["busywait", "select", "threadpool"]:
        lesson08.winner(lambda rows, tied=tied: tied if rows[0]["model"] in {"busywait", "iterative"} else
                        answers.lesson08.sorted_by_rate(rows), rows)
    with pytest.raises(CheckFailed, match="the highest rate"):
        lesson08.winner(lambda rows: "iterative", rows)


def test_the_about_page_must_come_from_the_server():
    with ThreadPoolServer(root=DEMO_SITE) as server:
        about = requests.get(server.url + "about.html", timeout=10)
        lesson00.about_page(about, server)
        made_up = requests.Response()
        made_up.status_code, made_up.url = 200, server.url + "about.html"
        made_up._content = (DEMO_SITE / "about.html").read_bytes()
        with pytest.raises(CheckFailed, match="headers are not the ones"):
            lesson00.about_page(made_up, server)
        with pytest.raises(CheckFailed, match="should be what requests.get\\(\\) returned"):
            lesson00.about_page(type("Response", (), {"status_code": 200, "url": about.url})(), server)
