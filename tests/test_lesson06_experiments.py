"""Lesson 06's experiments measure what the lesson says they measure."""

import threading

import psutil
import pytest

from labserver import limits
from labserver.experiments import PausingDict, idle_clients_and_a_newcomer, record_hits_in_threads
from labserver.servers import BlockingPoolServer, ThreadPerConnectionServer, ThreadPoolServer

try:
    import resource
except ImportError:  # Windows
    resource = None


def test_a_thread_per_idle_client_and_a_newcomer_served_at_once():
    with ThreadPerConnectionServer() as server:
        result = idle_clients_and_a_newcomer(server.url, clients=20)
    assert result["threads_during"] - result["threads_before"] >= 20
    assert result["first_byte_s"] is not None and result["first_byte_s"] < 1.0
    assert result["vms_during_mb"] >= result["vms_before_mb"]


def test_on_a_pool_the_newcomer_waits_for_the_idle_clients_to_time_out():
    # 8 idle clients, 4 workers, idle timeout 0.5 s: the newcomer is in the third group, after 2 x 0.5 s.
    with BlockingPoolServer(workers=4, idle_timeout=0.5) as server:
        result = idle_clients_and_a_newcomer(server.url, clients=8, settle=0.1, timeout=5)
    assert result["threads_during"] == result["threads_before"]
    assert 0.6 < result["first_byte_s"] < 2.5


def test_the_hybrid_serves_the_newcomer_with_no_thread_for_the_idle_clients():
    with ThreadPoolServer(workers=4) as server:
        result = idle_clients_and_a_newcomer(server.url, clients=20)
    assert result["threads_during"] == result["threads_before"]
    assert result["first_byte_s"] is not None and result["first_byte_s"] < 1.0


def unlocked(hits, path):
    hits[path] = hits.get(path, 0) + 1


LOCK = threading.Lock()


def locked(hits, path):
    with LOCK:
        hits[path] = hits.get(path, 0) + 1


def test_a_pausing_dict_loses_updates_without_a_lock_and_none_with_one():
    lost = record_hits_in_threads(unlocked, threads=4, per_thread=50, hits=PausingDict())
    assert lost["expected"] == 200 and lost["lost"] > 0
    kept = record_hits_in_threads(locked, threads=4, per_thread=50, hits=PausingDict())
    assert kept["lost"] == 0 and kept["hits"] == {"/": 67, "/about.html": 67, "/style.css": 66}



@pytest.mark.skipif(resource is None, reason="the open-file limit is a POSIX resource limit (Windows has none)")
def test_idle_clients_fit_in_the_open_file_limit_and_say_so(monkeypatch):
    """A pod or a Mac with 256 files that cannot be raised: fewer idle clients, a one-line note, no EMFILE."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    low = psutil.Process().num_fds() + 60  # room for about 20 connections, both ends in this process
    monkeypatch.setattr(limits, "raise_open_files_limit", lambda needed=None: low)  # a hard limit of `low`
    resource.setrlimit(resource.RLIMIT_NOFILE, (low, hard))
    try:
        with ThreadPerConnectionServer() as server:
            result = idle_clients_and_a_newcomer(server.url, clients=100)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert 1 <= result["clients"] < 100 and "instead of 100" in result["note"]
    assert result["first_byte_s"] is not None
