"""Lesson 07's experiments measure what the lesson says they measure.

The convoy effect (Beazley's perf2.py): a client in another process counts
small requests per second; while another client keeps one CPU-bound request
running, the rate of a thread server collapses (every thread that wakes up
from recv() waits for the GIL, often a whole switch interval) and the rate of
the process pool does not. Start-up cost: fork() is far cheaper than a
spawned interpreter. Crash isolation: a worker process that dies leaves the
others working; a thread that ends its process ends every thread.

The machine is shared: the timing tests compare the models side by side,
keep the best of two runs, and skip, with the numbers, when no second core
was free to show the difference.
"""

import os

import pytest
from test_thread_process_models import free_cores

from labserver.experiments import crash_one_worker, process_start_cost, small_request_rate, start_cost
from labserver.limits import usable_cpus
from labserver.load import launch


def rates(server, cpu_ms=200, seconds=0.7):
    """Best of two: small requests per second alone, and while /cpu runs."""
    alone = max(small_request_rate(server.url, seconds, server_pid=server.pid)["rps"] for _ in range(2))
    during = max(small_request_rate(server.url, seconds, cpu_ms=cpu_ms, server_pid=server.pid)["rps"]
                 for _ in range(2))
    return alone, during


def test_a_cpu_bound_request_collapses_the_small_request_rate_of_a_thread_server():
    with launch("threads") as server:
        alone, during = rates(server)
    # Measured on 2 cores: 4.8-6.7k alone, 180-700 during /cpu (10-35x less).
    assert alone > 200, f"{alone:.0f} small requests/s with nothing else running"
    assert during < 0.5 * alone, f"{alone:.0f} req/s alone, {during:.0f} req/s while /cpu runs"


@pytest.mark.skipif(usable_cpus() < 2, reason="a worker process can only run beside a busy one with 2 cores or more")
def test_the_process_pool_keeps_its_small_request_rate():
    cores = [free_cores()]
    with launch("threads") as threads, launch("processes", workers=2) as processes:
        t_alone, t_during = rates(threads)
        p_alone, p_during = rates(processes)
    cores.append(free_cores())
    kept = {"threads": t_during / t_alone, "processes": p_during / p_alone}
    report = (f"threads {t_alone:.0f} -> {t_during:.0f} req/s, processes {p_alone:.0f} -> {p_during:.0f} req/s "
              f"while /cpu runs; free cores seen: {[round(c, 2) for c in cores]}")
    # Measured on 2 cores: processes kept 45-65 % (the monitor shares the second core with a worker), threads 3-10 %.
    if kept["processes"] < 2 * kept["threads"] and min(cores) < 1.7:
        pytest.skip(f"the machine is too busy to run two things at once: {report}")
    assert kept["processes"] > 2 * kept["threads"], report


def test_the_monitor_and_the_cpu_client_are_served_by_different_workers():
    with launch("processes", workers=2) as server:
        run = small_request_rate(server.url, 0.2, cpu_ms=50, server_pid=server.pid)
    assert run["same_process"] is False, run
    assert run["cpu_requests"] >= 1 and run["requests"] > 0, run


@pytest.mark.skipif(not hasattr(os, "fork"), reason="Windows has no fork()")
def test_fork_is_far_cheaper_than_spawning_an_interpreter():
    fork = process_start_cost("fork", 10)["each_ms"]
    spawn = process_start_cost("spawn", 5)["each_ms"]
    thread = start_cost("thread", 50)["each_ms"]
    # Measured on 2 cores: thread 0.08 ms, fork 3-15 ms (more for a big process: pytest's page
    # tables), spawn 40-200 ms. Only the order is asserted: the lesson measures the figures.
    assert thread < fork < spawn, f"thread {thread:.3f} ms, fork {fork:.2f} ms, spawn {spawn:.1f} ms"


def test_a_dead_worker_process_leaves_the_others_working():
    run = crash_one_worker("processes", workers=3, jobs=12, crash_at=3)
    assert run["served"] == [12, 3, 12], run
    assert run["exit_codes"] == [0, 70, 0], run


def test_a_thread_that_ends_its_process_ends_every_thread():
    run = crash_one_worker("threads", workers=3, jobs=12, crash_at=3)
    assert run["served"][1] == 3 and max(run["served"]) < 12, run  # the others stopped mid-way too
    assert run["exit_codes"] == [70], run
