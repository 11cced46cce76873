"""harness/procfs.py read against real child processes: the tree they form, the CPU they burn, the memory they hold."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness import procfs

MIB = 1 << 20
# A child that has touched 96 MiB reads >= 80 MiB resident; a bare interpreter stays far below that.
HELD_MIB = 96
Spawn = Callable[[str], tuple[subprocess.Popen[str], str]]

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux /proc")


@pytest.fixture
def spawn() -> Iterator[Spawn]:
    """Start `python -c code` (stdin a pipe); returns it and the first line it prints. Killed after the test."""
    procs: list[subprocess.Popen[str]] = []

    def start(code: str) -> tuple[subprocess.Popen[str], str]:
        proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        procs.append(proc)
        assert proc.stdout is not None
        return proc, proc.stdout.readline().strip()

    yield start
    for proc in procs:
        proc.kill()
        proc.wait(10)


BURN = "while True: pass"
# Burns until its own clock says 0.3 s of CPU (reading that clock is a system call: not too often), prints the figure,
# then sleeps: the test reads /proc after the line.
BURN_THEN_REPORT = """
import time
while time.process_time() < 0.3: sum(range(10_000))
print(time.process_time(), flush=True)
time.sleep(60)
"""
SLEEP = "import time; time.sleep(60)"
WRITE = "while time.process_time() < 0.3: os.write(fd, bytes(1))"


# Each level starts the next and prints its pid (the innermost only sleeps), then sleeps itself.
PARENT = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, '-c', sys.argv[1], sys.argv[2]], stdout=subprocess.PIPE, text=True)
print(child.pid, child.stdout.readline().strip(), flush=True)
time.sleep(60)
"""
CHILD = """
import subprocess, sys, time
grandchild = subprocess.Popen([sys.executable, '-c', sys.argv[1]])
print(grandchild.pid, flush=True)
time.sleep(60)
"""


def test_the_tree_holds_the_process_its_child_and_its_grandchild(spawn: Spawn) -> None:
    code = f"import sys; sys.argv[1:] = [{CHILD!r}, {SLEEP!r}]\n{PARENT}"
    top, line = spawn(code)
    child, grandchild = (int(p) for p in line.split())
    tree = procfs.process_tree(top.pid)
    assert tree[0] == top.pid
    assert {child, grandchild} <= set(tree)
    assert procfs.process_tree(grandchild) == [grandchild]


def test_cpu_time_is_what_the_process_burnt_and_stays_flat_while_it_sleeps(spawn: Spawn) -> None:
    sleeper, _ = spawn(f"print('ready', flush=True); {SLEEP}")
    start_sleep = procfs.cpu_seconds([sleeper.pid])
    burner, own = spawn(BURN_THEN_REPORT)
    assert procfs.cpu_seconds([burner.pid]) == pytest.approx(float(own), abs=0.1)  # start-up and ticks of rounding
    assert procfs.cpu_seconds([sleeper.pid]) - start_sleep < 0.05


def test_cpu_times_split_user_from_system_time(spawn: Spawn) -> None:
    # Writing to /dev/null is almost all system time; the busy loop almost all user time.
    syscalls, _ = spawn(
        f"import os, time; fd = os.open(os.devnull, os.O_WRONLY)\n{WRITE}\nprint('done', flush=True); {SLEEP}"
    )
    burner, _ = spawn(BURN_THEN_REPORT)
    sys_user, sys_system = procfs.cpu_times([syscalls.pid])
    burn_user, burn_system = procfs.cpu_times([burner.pid])
    assert burn_user > burn_system
    assert sys_system / (sys_user + sys_system) > burn_system / (burn_user + burn_system)


def test_a_process_that_has_gone_counts_no_cpu_and_no_memory(spawn: Spawn) -> None:
    proc, _ = spawn("print('ready', flush=True)")
    proc.wait(10)
    assert procfs.cpu_times([proc.pid]) == (0.0, 0.0)
    assert procfs.rss_bytes(proc.pid) is None
    assert procfs.memory_kib([proc.pid]) == 0
    assert procfs.thread_cpu(proc.pid) == {}


def test_rss_sees_the_memory_a_process_holds(spawn: Spawn) -> None:
    holder, _ = spawn(f"kept = bytearray({HELD_MIB * MIB}); print('ready', flush=True); {SLEEP}")
    idle, _ = spawn(f"print('ready', flush=True); {SLEEP}")
    held, bare = procfs.rss_bytes(holder.pid), procfs.rss_bytes(idle.pid)
    assert held is not None
    assert bare is not None
    assert held - bare >= (HELD_MIB - 16) * MIB
    assert procfs.memory_kib([holder.pid, idle.pid]) * 1024 == pytest.approx(held + bare, rel=0.05)


def test_the_peak_outlives_memory_given_back(spawn: Spawn) -> None:
    # A large bytearray is its own mapping: freeing it returns the pages, so VmRSS drops while VmHWM keeps the peak.
    proc, _ = spawn(f"kept = bytearray({HELD_MIB * MIB}); del kept; print('ready', flush=True); {SLEEP}")
    assert procfs.memory_kib([proc.pid], "VmHWM") >= (HELD_MIB - 16) * 1024
    assert procfs.memory_kib([proc.pid], "VmRSS") < (HELD_MIB - 16) * 1024


def test_each_thread_is_charged_its_own_cpu(spawn: Spawn) -> None:
    code = """
import threading, time
def burn():
    while time.thread_time() < 0.3: sum(range(10_000))
    print(threading.get_native_id(), time.thread_time(), flush=True)
    time.sleep(60)
threading.Thread(target=burn, daemon=True).start()
time.sleep(60)
"""
    proc, line = spawn(code)
    busy, own = int(line.split()[0]), float(line.split()[1])
    threads = procfs.thread_cpu(proc.pid)
    assert threads[busy][1] == pytest.approx(own, abs=0.05)
    assert threads[proc.pid][1] < 0.2  # the main thread only sleeps
    assert threads[proc.pid][0] == Path(f"/proc/{proc.pid}/comm").read_text().strip()


def test_a_core_running_a_burner_counts_at_least_the_burners_cpu_as_busy(spawn: Spawn) -> None:
    cpu = sorted(os.sched_getaffinity(0))[-1]
    burner, _ = spawn(f"import os; os.sched_setaffinity(0, {{{cpu}}}); print('ready', flush=True)\n{BURN}")
    core0, proc0 = procfs.core_busy(cpu), procfs.cpu_seconds([burner.pid])
    time.sleep(0.5)  # the window measured: both readings are differences over it
    core1, proc1 = procfs.core_busy(cpu), procfs.cpu_seconds([burner.pid])
    assert proc1 - proc0 > 0.05
    assert core1 - core0 >= (proc1 - proc0) - 2 / procfs.CLK_TCK  # two ticks of rounding at each end


def test_the_machine_is_busy_by_at_least_one_burner(spawn: Spawn) -> None:
    spawn(f"print('ready', flush=True)\n{BURN}")
    assert procfs.machine_busy(0.5) >= 0.5


def test_the_rss_sampler_reads_the_tree_when_its_block_begins_and_ends(spawn: Spawn) -> None:
    # The parent starts a child that allocates once a line arrives on its stdin, passed on by the parent.
    child = f"import sys; sys.stdin.readline(); kept = bytearray({HELD_MIB * MIB}); print('held', flush=True); {SLEEP}"
    parent = f"""
import subprocess, sys, time
child = subprocess.Popen([sys.executable, '-c', {child!r}], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
print('ready', flush=True)
child.stdin.write(sys.stdin.readline()); child.stdin.flush()
print(child.stdout.readline().strip(), flush=True)
time.sleep(60)
"""
    proc, _ = spawn(parent)
    assert proc.stdin is not None
    assert proc.stdout is not None
    with procfs.RssSampler(proc.pid, every=3600) as sampler:  # no sample on the thread: only the block's ends
        assert len(sampler.samples) == 1
        proc.stdin.write("go\n")
        proc.stdin.flush()
        assert proc.stdout.readline().strip() == "held"
    [(t0, before), (t1, after)] = sampler.samples
    assert t0 <= t1
    assert after - before >= HELD_MIB - 16


def test_the_rss_sampler_samples_on_its_thread_while_the_block_runs(spawn: Spawn) -> None:
    proc, _ = spawn(f"print('ready', flush=True); {SLEEP}")
    with procfs.RssSampler(proc.pid, every=0.01) as sampler:
        spawn(BURN_THEN_REPORT)  # the block lasts while another process burns 0.3 s of CPU: 30 intervals or more
        inside = sampler.samples[:]
    assert len(inside) >= 3
    assert [t for t, _ in inside] == sorted(t for t, _ in inside)


def test_the_rss_sampler_takes_no_sample_of_a_process_that_has_gone(spawn: Spawn) -> None:
    proc, _ = spawn("print('ready', flush=True)")
    proc.wait(10)
    with procfs.RssSampler(proc.pid, every=0.01) as sampler:
        time.sleep(0.1)  # ten sampling intervals
    assert sampler.samples == []
