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
# Lesson 08's answers get rows like a sweep's: the check adds rows of its own. A /block sweep: select
# stalls at once, processes (2) at 4 clients, threadpool still climbs; one CPU figure not measured.
SWEEP = [{"model": m, "clients": c, "rps": r, "requests": round(r * 0.5), "duration_s": 0.5, "cpu_pct": cpu}
         for m, c, r, cpu in [("select", 1, 20.0, 2.0), ("processes", 1, 20.0, 3.0), ("threadpool", 1, 20.0, None),
                              ("select", 4, 20.0, 2.0), ("processes", 4, 38.0, 4.0), ("threadpool", 4, 80.0, 2.5),
                              ("select", 16, 20.0, 2.0), ("processes", 16, 38.0, 4.0), ("threadpool", 16, 320.0, 6.0)]]


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
        args = (stub, SWEEP) if lesson == "08" else (stub,)
        with pytest.raises(CheckFailed, match="not written yet"):
            check(*args)


def test_where_the_block_sweep_stops_scaling():
    assert lesson08.knees(SWEEP) == {"select": 1, "processes": 4, "threadpool": 16}
    lesson08.stops_scaling(answers.lesson08.from_the_top, SWEEP)
    with pytest.raises(CheckFailed, match="select .* stops scaling at 1 clients"):
        lesson08.stops_scaling(lambda rows: {"select": 16, "processes": 4, "threadpool": 16}, SWEEP)


def test_the_cost_per_request_of_a_sweep_row():
    row = {"model": "select", "clients": 16, "rps": 32_000.0, "requests": 16_000, "duration_s": 0.5, "cpu_pct": 96.0}
    assert abs(lesson08.cost_us(row) - 30.0) < 1e-9  # 0.96 core-seconds per second / 32,000 requests per second
    assert lesson08.cost_us(dict(row, cpu_pct=None)) is None and lesson08.cost_us(dict(row, requests=0)) is None


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
