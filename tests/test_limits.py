"""labserver.limits: each platform's limit injected, and the decision it leads to."""

import errno
import subprocess
import sys

import pytest

from labserver import limits


def test_a_select_loop_is_capped_below_fd_setsize(monkeypatch):
    monkeypatch.setattr(limits, "FD_SETSIZE", 512)  # Windows
    monkeypatch.setattr(limits, "open_files_limit", lambda: None)
    cap, reason = limits.connection_cap(select_based=True)
    assert cap < 512 and "512" in reason and "select()" in reason
    assert limits.connection_cap(select_based=False) == (None, None)


def test_on_windows_every_event_loop_is_a_select_loop(monkeypatch):
    import selectors

    monkeypatch.setattr(selectors, "DefaultSelector", selectors.SelectSelector)
    assert limits.select_watches_everything()
    monkeypatch.setattr(limits, "open_files_limit", lambda: None)
    assert limits.connection_cap()[0] < limits.FD_SETSIZE


def test_the_open_file_limit_caps_connections(monkeypatch):
    monkeypatch.setattr(limits, "select_watches_everything", lambda: False)
    monkeypatch.setattr(limits, "open_files_limit", lambda: 256)
    monkeypatch.setattr(limits, "raise_open_files_limit", lambda needed=None: 256)
    cap, reason = limits.connection_cap()
    assert cap == 256 - limits.RESERVE and "256 files" in reason
    clients, note = limits.fit_clients(1000)
    assert clients == cap and note.startswith("1000 clients scaled down to") and "256" in note
    assert limits.fit_clients(1000, in_one_process=True)[0] == cap // 2
    assert limits.fit_clients(10) == (10, None)


def test_the_smaller_limit_gives_the_reason(monkeypatch):
    monkeypatch.setattr(limits, "FD_SETSIZE", 512)
    monkeypatch.setattr(limits, "open_files_limit", lambda: 8192)
    assert "select()" in limits.connection_cap(select_based=True)[1]
    monkeypatch.setattr(limits, "open_files_limit", lambda: 256)
    assert "files" in limits.connection_cap(select_based=True)[1]


@pytest.mark.skipif(sys.platform == "win32", reason="Windows has no per-process limit on open sockets")
def test_raise_open_files_limit_goes_as_far_as_the_hard_limit():
    # In a child, so that this process keeps its limits: soft 64, hard 300 (or less, if
    # this process may not have 300: a pod with a hard limit of 256).
    import resource

    hard = min(300, resource.getrlimit(resource.RLIMIT_NOFILE)[1])
    code = ("import resource, sys\n"
            "resource.setrlimit(resource.RLIMIT_NOFILE, (64, int(sys.argv[1])))\n"
            "from labserver.limits import raise_open_files_limit, open_files_limit\n"
            "print(raise_open_files_limit(100), raise_open_files_limit(50), raise_open_files_limit(),"
            " raise_open_files_limit(10_000), open_files_limit())\n")
    done = subprocess.run([sys.executable, "-c", code, str(hard)], capture_output=True, text=True,
                          encoding="utf-8", timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["100", "100", str(hard), str(hard), str(hard)]


@pytest.mark.parametrize("number", [errno.EMFILE, errno.ENFILE])
def test_out_of_files(number):
    assert limits.out_of_files(OSError(number, "Too many open files"))
    assert not limits.out_of_files(OSError(errno.ECONNRESET, "reset"))
    assert not limits.out_of_files(ValueError("no errno"))


@pytest.mark.parametrize("content, expected", [("max 100000\n", None), ("150000 100000\n", 1.5),
                                               ("100000 100000", 1.0), ("garbage", None)])
def test_cgroup_v2_quota(tmp_path, content, expected):
    (tmp_path / "cpu.max").write_text(content, encoding="utf-8")
    assert limits.cgroup_cpu_quota(str(tmp_path)) == expected


@pytest.mark.parametrize("quota, period, expected", [("-1", "100000", None), ("50000", "100000", 0.5),
                                                     ("200000", "100000", 2.0)])
def test_cgroup_v1_quota(tmp_path, quota, period, expected):
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text(quota, encoding="utf-8")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text(period, encoding="utf-8")
    assert limits.cgroup_cpu_quota(str(tmp_path)) == expected


def test_no_cgroup_no_quota(tmp_path):
    assert limits.cgroup_cpu_quota(str(tmp_path)) is None


def test_usable_cpus_follows_the_quota(monkeypatch):
    monkeypatch.setattr(limits, "cgroup_cpu_quota", lambda: 1.5)  # a pod with 1.5 CPUs on a big host
    assert limits.usable_cpus() <= 2
    monkeypatch.setattr(limits, "cgroup_cpu_quota", lambda: 0.2)
    assert limits.usable_cpus() == 1
    monkeypatch.setattr(limits, "cgroup_cpu_quota", lambda: None)
    assert 1 <= limits.usable_cpus(cap=1) == 1


def test_a_sweep_keeps_the_counts_the_machine_can_hold(monkeypatch):
    monkeypatch.setattr(limits, "fit_clients", lambda wanted, in_one_process=False:
                        (208, f"{wanted} clients scaled down to 208: a process may open 256 files here."))
    counts, note = limits.fit_client_counts([1, 16, 256, 1000])
    assert counts == [1, 16, 208]
    assert note == "256, 1000 clients left out, 208 instead: a process may open 256 files here."
    monkeypatch.setattr(limits, "fit_clients", lambda wanted, in_one_process=False: (wanted, None))
    assert limits.fit_client_counts([1, 1000]) == ([1, 1000], None)


def test_load_workers_never_hold_more_than_one_event_loop_can_watch():
    from labserver.load.generator import choose_processes

    assert choose_processes(1000, cpus=[0, 1], cap=488) >= 3  # Windows: 512 sockets per select()
    assert choose_processes(1000, cpus=[0], cap=488) >= 3  # even on one CPU
    assert choose_processes(8, cpus=[0], cap=488) == 0  # few clients: this process
    assert choose_processes(64, cpus=[0, 1], cap=100_000) == 2  # no limit in sight: one per core


def test_the_generator_counts_running_out_of_files(monkeypatch, site):
    """EMFILE on socket(): a counted error and a retry, not a crash and not a spin."""
    import socket as socket_module

    from labserver import ThreadPoolServer
    from labserver.load import engine, run

    real_socket, made = socket_module.socket, []

    def socket_or_emfile(*args, **kwargs):
        if len(made) >= 2:  # this process "has" two descriptors for clients
            raise OSError(errno.EMFILE, "Too many open files")
        made.append(1)
        return real_socket(*args, **kwargs)

    class SocketModule:  # the engine's view of the socket module; the server's is untouched
        socket = staticmethod(socket_or_emfile)

        def __getattr__(self, name):
            return getattr(socket_module, name)

    with ThreadPoolServer(root=site) as server:
        monkeypatch.setattr(engine, "socket", SocketModule())
        result = run(server.url + "hello.txt", clients=4, duration=0.5, processes=0)
    assert result.errors_files > 0 and result.requests > 0, result
    assert result.errors_files < 200, "retried once a round, not in a spin"


EVENT_LOOPS = ["busywait", "select", "callbacks", "coroutines", "threadpool"]


@pytest.mark.parametrize("name", EVENT_LOOPS)
def test_an_event_loop_at_the_platforms_cap_leaves_new_clients_waiting(name, monkeypatch, caplog, site):
    """The platform's cap injected (3 sockets, as select()'s 512 on Windows): the
    loop keeps serving the clients it holds, the next ones wait in the backlog,
    the cap is counted and logged with its reason, and a place that frees up
    is taken by a waiting client. Without the cap, Windows' loop would die."""
    import socket as socket_module

    from labserver.servers import MODELS, nonblocking

    monkeypatch.setattr(nonblocking, "connection_cap",
                        lambda select_based=None: (3, "select() watches at most 512 sockets here"))
    request = b"GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n"
    with MODELS[name](root=site) as server:
        held = [socket_module.create_connection(("127.0.0.1", server.port), timeout=5) for _ in range(3)]
        for sock in held:
            sock.sendall(request)
            assert sock.recv(4096).startswith(b"HTTP/1.1 200")  # served, and kept open
        waiting = socket_module.create_connection(("127.0.0.1", server.port), timeout=0.5)
        waiting.sendall(request)
        with pytest.raises(socket_module.timeout):
            waiting.recv(4096)  # in the backlog: connected, not answered
        assert server.at_cap >= 1
        assert any("select() watches at most 512" in r.getMessage() for r in caplog.records)
        held.pop().close()  # a place frees up
        waiting.settimeout(5)
        assert waiting.recv(4096).startswith(b"HTTP/1.1 200")
        for sock in [*held, waiting]:
            sock.close()


def test_the_process_pool_follows_the_container_quota(monkeypatch, site):
    """A JupyterHub pod that sees 32 cores with a quota of 1.5 CPUs starts 2 workers, not 32."""
    from labserver.servers.processes import ProcessPoolServer

    monkeypatch.setattr(limits, "cgroup_cpu_quota", lambda: 1.5)
    assert ProcessPoolServer(root=site).workers <= 2
    monkeypatch.setattr(limits, "cgroup_cpu_quota", lambda: None)
    monkeypatch.setattr(limits.os, "process_cpu_count", lambda: 64, raising=False)
    monkeypatch.setattr(limits.os, "sched_getaffinity", lambda pid: set(range(64)), raising=False)
    assert ProcessPoolServer(root=site).workers == 8  # a big host: a handful, not 64 interpreters
