"""train.threads: the cores a process may use (affinity, cgroup quota, torchrun's share), the other
processes' CPU use read from /proc/stat, and the auto policy's thread count following it."""

from __future__ import annotations

import pytest
import torch

from geometry import cpu_threads
from geometry.cpu_threads import CpuLoad, ThreadPolicy, choose_threads, parse_setting, usable_cores


def test_usable_cores_takes_affinity_quota_and_torchrun_share():
    assert usable_cores({0, 1, 2, 3}, quota=None, local_processes=1) == 4
    assert usable_cores({0, 1, 2, 3}, quota=2.5, local_processes=1) == 2  # a quota rounds down
    assert usable_cores({0, 1, 2, 3}, quota=None, local_processes=2) == 2
    assert usable_cores({0, 1}, quota=None, local_processes=4) == 1  # never below one
    assert usable_cores({0, 1}, quota=0.5, local_processes=1) == 1


def test_cgroup_quota_v2_and_v1(tmp_path):
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert cpu_threads._cgroup_quota(tmp_path) == 1.5
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert cpu_threads._cgroup_quota(tmp_path) is None
    (tmp_path / "cpu.max").unlink()
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("300000\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert cpu_threads._cgroup_quota(tmp_path) == 3.0
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")  # v1's "no limit"
    assert cpu_threads._cgroup_quota(tmp_path) is None
    assert cpu_threads._cgroup_quota(tmp_path / "missing") is None


def test_parse_setting():
    assert parse_setting("auto") is None and parse_setting("AUTO") is None
    assert parse_setting("3") == 3 and parse_setting(1) == 1
    for bad in ("0", "-1", "two", "", "1.5"):
        with pytest.raises(ValueError, match="auto or a thread count"):
            parse_setting(bad)


def stat_text(ticks: dict[str, list[int]]) -> str:
    """A /proc/stat with the summary line first (which must be ignored) and an interrupt line after."""
    lines = ["cpu  999999 0 999999 0 0 0 0 0 0 0"]
    lines += [f"{name} {' '.join(map(str, values))}" for name, values in ticks.items()]
    return "\n".join(lines + ["intr 12345 0 0", "ctxt 999"]) + "\n"


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_cpu_load_counts_other_processes_only(tmp_path):
    """Busy ticks of the affinity's CPUs (user, nice, system, irq, softirq, steal; not idle or iowait) less
    this process's own CPU time, per wall second."""
    stat = tmp_path / "stat"
    wall, own = Clock(), Clock()
    #          user nice system idle iowait irq softirq steal
    stat.write_text(stat_text({"cpu0": [0] * 8, "cpu1": [0] * 8, "cpu2": [0] * 8}))
    load = CpuLoad(stat, cpus={0, 1}, clock=wall, own=own)
    assert load.available
    # in 2 s: cpu0 fully busy (200 ticks over user/system/irq/softirq/steal), cpu1 half busy with idle
    # and iowait ignored, cpu2 outside the affinity; this process used 1.5 CPU seconds of it.
    stat.write_text(
        stat_text({"cpu0": [50, 50, 40, 0, 0, 20, 20, 20], "cpu1": [100, 0, 0, 80, 20, 0, 0, 0],
                   "cpu2": [200, 0, 0, 0, 0, 0, 0, 0]})
    )  # fmt: skip
    wall.now, own.now = 2.0, 1.5
    assert load.seconds_since() == 2.0
    assert load.others() == pytest.approx((3.0 - 1.5) / 2.0)  # 3 busy CPU seconds, 1.5 of them ours
    assert load.seconds_since() == 0.0  # the reading starts the next window
    wall.now, own.now = 3.0, 3.0  # our own use above the ticks read (their 10 ms resolution): never < 0
    assert load.others() == 0.0


def test_cpu_load_without_proc_stat(tmp_path):
    load = CpuLoad(tmp_path / "missing")
    assert not load.available and load.others() is None


@pytest.mark.parametrize(
    "current, free, ceiling, expected",
    [
        (2, 2.0, 2, 2),  # alone
        (2, 1.0, 2, 1),  # one busy neighbour on two cores
        (2, 1.5, 2, 1),  # half a core taken already stalls a thread of every region
        (2, 1.6, 2, 2),
        (1, 1.6, 2, 1),  # hysteresis: back up only with room to spare
        (1, 1.7, 2, 2),
        (1, 2.0, 2, 2),
        (8, 3.2, 8, 3),
        (3, 8.0, 8, 8),
        (4, 16.0, 4, 4),  # never above the ceiling
        (2, -1.0, 2, 1),  # nor below one
    ],
)
def test_choose_threads(current, free, ceiling, expected):
    assert choose_threads(current, free, ceiling) == expected


class FakeLoad:
    """Reports the given other-process loads, one per window, and counts the policy's looks."""

    available = True

    def __init__(self, loads: list[float]):
        self.loads, self.looks = list(loads), 0

    def seconds_since(self) -> float:
        self.looks += 1
        return 1.0  # a whole window each time

    def others(self) -> float:
        return self.loads.pop(0)


def test_auto_follows_the_load_and_installed_restores():
    before = torch.get_num_threads()
    load = FakeLoad([1.0, 1.0, 0.4, 0.1, 0.9])
    policy = ThreadPolicy(fixed=None, ceiling=2, cores=2, load=load, threads=2)
    with cpu_threads.installed(policy):
        assert torch.get_num_threads() == 2
        seen = []
        for _ in range(5):
            cpu_threads.adapt()
            seen.append(torch.get_num_threads())
        assert seen == [1, 1, 1, 2, 1]
        assert policy.changes == 3
    assert torch.get_num_threads() == before
    cpu_threads.adapt()  # no policy installed: nothing happens
    assert torch.get_num_threads() == before and load.looks == 5


def test_fixed_setting_never_changes():
    policy = ThreadPolicy.from_setting("1")
    assert policy.fixed == 1 and policy.load is None and "1 (fixed)" in policy.describe()
    with cpu_threads.installed(policy):
        cpu_threads.adapt()
        assert torch.get_num_threads() == 1


def test_auto_ceiling_is_the_torchrun_share(monkeypatch):
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    policy = ThreadPolicy.from_setting("auto", load=FakeLoad([]))
    assert policy.ceiling == max(1, policy.cores // 2) and policy.threads == policy.ceiling
    monkeypatch.delenv("LOCAL_WORLD_SIZE")
    policy = ThreadPolicy.from_setting("auto", load=FakeLoad([]))
    assert policy.ceiling == max(1, min(policy.cores, torch.get_num_threads()))
    assert "auto, 1-" in policy.describe()
