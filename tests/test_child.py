"""labserver.children: every child process of the kit ends, whatever happens.

Real processes, real signals: a child that stops when asked, one that ignores
Ctrl-C (and one that ignores terminate too), one that leaves a grandchild in a
session of its own (while it runs, and after it exited), a parent killed with
SIGKILL (its child must end all the same, by the guard), commands in a folder
whose name has a space. After each test no process of ours is left (psutil).
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from labserver.children import Child, ChildError
from processes import gone, nothing_left_running  # noqa: F401  (an autouse fixture)

POSIX = os.name == "posix"
PACKAGE_PARENT = str(Path(__file__).resolve().parent.parent)
SLEEP = "import time; time.sleep(60)"


def wait_for_file(path, within=10.0):
    deadline = time.monotonic() + within
    while not (path.exists() and path.read_text(encoding="utf-8").strip()):
        assert time.monotonic() < deadline, f"{path} never written"
        time.sleep(0.05)
    return path.read_text(encoding="utf-8").strip()


def test_start_wait_and_stop():
    listen = ("import socket, sys; s = socket.create_server(('127.0.0.1', 0)); "
              "print('port', s.getsockname()[1], flush=True); s.accept()")
    child = Child(["python", "-c", listen])
    assert child.words[0] == sys.executable  # `python` is this Python
    with child:
        port = int(child.wait_for_output(r"port (\d+)").group(1))
        child.wait_for_port(port)
        assert child.running and psutil.Process(child.pid).ppid() == os.getpid()
        process = child.process
    assert child.killed == [] and not child.running
    assert process.returncode is not None  # reaped
    assert child.stop() == []  # twice is fine
    assert "port" in child.output_text()  # kept after the stop


@pytest.mark.skipif(not POSIX, reason="SIGINT and SIGTERM are POSIX signals")
def test_a_child_that_ignores_ctrl_c_is_terminated_and_one_that_ignores_both_is_killed():
    ignore_int = f"import signal; signal.signal(signal.SIGINT, signal.SIG_IGN); print('ready', flush=True); {SLEEP}"
    with Child(["python", "-c", ignore_int], stop_timeout=0.3) as child:
        child.wait_for_output("ready")
    assert child.process.returncode == -signal.SIGTERM
    assert child.killed == [f"pid {child.pid} (python) did not stop within 0.3 s of the interrupt signal"
                            .replace("(python)", f"({os.path.basename(sys.executable)})")]
    ignore_both = ("import signal; signal.signal(signal.SIGINT, signal.SIG_IGN); "
                   f"signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); {SLEEP}")
    begin = time.monotonic()
    with Child(["python", "-c", ignore_both], stop_timeout=0.3) as child:
        child.wait_for_output("ready")
    assert child.process.returncode == -signal.SIGKILL
    assert len(child.killed) == 3 and child.killed[-1].endswith("killed")
    assert time.monotonic() - begin < 5


def grandchild_script(pidfile, then="time.sleep(60)"):
    """A child that starts a grandchild in a session of its own (out of its group), writes its pid, then `then`."""
    return ("import subprocess, sys, time\n"
            f"g = subprocess.Popen([sys.executable, '-c', {SLEEP!r}], start_new_session=True)\n"
            f"open({str(pidfile)!r}, 'w', encoding='utf-8').write(str(g.pid))\n"
            f"{then}\n")


def test_a_grandchild_in_its_own_session_is_killed_too(tmp_path):
    pidfile = tmp_path / "grandchild.pid"
    with Child(["python", "-c", grandchild_script(pidfile)]) as child:
        grandchild = int(wait_for_file(pidfile))
        assert psutil.Process(grandchild).ppid() == child.pid
        if POSIX:
            assert os.getsid(grandchild) != os.getsid(child.pid)
    assert gone(grandchild)
    assert any(f"pid {grandchild} " in line and "left behind" in line for line in child.killed)


def test_a_grandchild_orphaned_before_the_stop_is_found_too(tmp_path):
    """The child exits on its own, leaving the grandchild to init: seen while it ran, killed at stop()."""
    pidfile = tmp_path / "grandchild.pid"
    with Child(["python", "-c", grandchild_script(pidfile, then="time.sleep(1.5)")]) as child:
        grandchild = int(wait_for_file(pidfile))
        child.process.wait(10)
        assert psutil.Process(grandchild).ppid() != child.pid  # an orphan now
    assert gone(grandchild)
    assert any(f"pid {grandchild} " in line for line in child.killed)


PARENT = """\
import sys, time
from labserver.children import Child
child = Child(["python", "-c", sys.argv[1]]).start()
print(child.pid, flush=True)
time.sleep(60)
"""


def test_a_killed_parent_leaves_nothing_running(tmp_path):
    """The parent dies by SIGKILL (no handler, no atexit): the guard stops its child and the grandchild."""
    pidfile = tmp_path / "grandchild.pid"
    env = dict(os.environ, PYTHONPATH=PACKAGE_PARENT)
    parent = subprocess.Popen([sys.executable, "-c", PARENT, grandchild_script(pidfile)], env=env,
                              stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        child = int(parent.stdout.readline())
        grandchild = int(wait_for_file(pidfile))
        time.sleep(1)  # the guard has looked at the child's descendants by now
        parent.kill()  # SIGKILL on POSIX, TerminateProcess on Windows
        parent.wait()
        begin = time.monotonic()
        assert gone(child), "the child outlived its killed parent"
        assert gone(grandchild), "the grandchild outlived its grandparent"
        assert time.monotonic() - begin < 8
    finally:
        parent.kill()
        parent.wait()
        parent.stdout.close()


def test_a_path_and_arguments_with_spaces_stay_whole(tmp_path):
    folder = tmp_path / "Jane Doe"
    folder.mkdir()
    script = folder / "my server.py"
    script.write_text("import sys\nprint('args:', sys.argv[1:], flush=True)\nimport time\ntime.sleep(60)\n",
                      encoding="utf-8")
    with Child(["python", script, "--root", folder / "site files"]) as child:
        match = child.wait_for_output(r"args: (.*)")
    assert match.group(1) == repr(["--root", str(folder / "site files")])


def test_mistakes_are_explained():
    with pytest.raises(TypeError, match="a list of arguments, not one string"):
        Child("python server.py --port 8000")
    with pytest.raises(ChildError, match="empty"):
        Child([])
    with pytest.raises(ChildError, match="cannot run 'no-such-program-4f2a'"):
        Child(["no-such-program-4f2a"]).start()
    child = Child(["python", "-c", "print('giving up', flush=True); raise SystemExit(3)"]).start()
    with pytest.raises(ChildError, match="exited with status 3 before it was ready:\ngiving up"):
        child.wait_for_port(1)
    child.stop()
    begin = time.monotonic()
    with Child(["python", "-c", SLEEP]) as child:
        with pytest.raises(ChildError, match=r"did not accept connections on 127\.0\.0\.1:1 within 0\.3 s"):
            child.wait_for_port(1, timeout=0.3)
    assert time.monotonic() - begin < 5
    with pytest.raises(ChildError, match="started already"):
        child.start()


def test_pause_and_resume_freeze_the_child_and_its_children():
    """A benchmark pauses every server it is not measuring: paused, a busy child uses no CPU."""
    spin = ("import subprocess, sys\n"
            "subprocess.Popen([sys.executable, '-c', 'while True: pass'])\n"
            "print('spinning', flush=True)\n"
            "while True: pass\n")
    with Child(["python", "-c", spin]) as child:
        child.wait_for_output("spinning")
        tree = [psutil.Process(child.pid), *psutil.Process(child.pid).children()]
        child.pause()
        time.sleep(0.2)
        before = sum(sum(p.cpu_times()[:2]) for p in tree)
        time.sleep(0.5)
        assert sum(sum(p.cpu_times()[:2]) for p in tree) - before < 0.05
        child.resume()
        time.sleep(1.0)
        assert sum(sum(p.cpu_times()[:2]) for p in tree) - before > 0.1
        child.pause()  # stop() resumes it first, or Ctrl-C would never reach it
    assert child.killed == []  # the spinning grandchild stopped with it, at its Ctrl-C


def test_a_child_dropped_without_stop_is_stopped_all_the_same():
    import gc

    child = Child(["python", "-c", SLEEP]).start()
    pid = child.pid
    del child
    gc.collect()
    assert gone(pid, within=5)
