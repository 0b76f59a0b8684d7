"""How many threads the CPU operators run on (``train.threads=auto|N``), adapted to the other programs
sharing the machine.

A training step on the CPU is a few thousand operators; each big enough one is a parallel region over
torch's OpenMP threads (and numba's, for the compiled loops), whose threads spin at a barrier until the
last one finishes. On a shared CPU a thread that has no core keeps the whole region waiting for the
scheduler's next time slice: beside one single-threaded busy process, two threads on two cores made a
step 4-10x slower, one thread barely slower at all (docs/benchmarks.md, "A shared CPU"). So ``auto``
measures, every half second, how much CPU the *other* processes use (``/proc/stat`` less this
process's own CPU time) and runs on the cores left free, never fewer than one::

    threads = ThreadPolicy.from_setting("auto")   # once, at the start of a run
    threads.apply()                               # torch's and numba's thread counts now
    for step in ...:
        threads.adapt()                           # at every step boundary: cheap, rate-limited

The policy is process-wide (torch's thread count is), so the long loops of every phase call
:func:`adapt` on the policy made current by :func:`installed`. A fixed ``N`` never changes; only it (or 1)
makes a run bitwise reproducible, as an operator's reductions follow its thread count.

The ceiling of ``auto`` is the cores this process may use: its CPU affinity, the cgroup's CPU quota
(containers), torch's own default (physical cores, or ``OMP_NUM_THREADS``), and under torchrun its share
of them (``LOCAL_WORLD_SIZE`` processes split the cores, as torchrun's own ``OMP_NUM_THREADS=1`` default
would leave most of a large machine idle). Without ``/proc/stat`` (macOS, Windows) ``auto`` stays at the
ceiling.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

WINDOW_S = 0.5
"""Seconds of CPU accounting behind each decision: long enough for /proc/stat's 10 ms ticks, short
enough to follow a neighbour that starts or stops within a step or two."""
DOWN_MARGIN = 0.5
"""Drop to fewer threads once the free cores fall this far below the threads in use: a neighbour using
half a core already stalls a thread of every parallel region half the time."""
UP_MARGIN = 0.7
"""Add threads only once that many cores more than in use are free (hysteresis against flapping)."""


def _cgroup_quota(root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """The cgroup's CPU quota in cores (cgroup v2 ``cpu.max``, or v1 ``cpu.cfs_quota_us`` /
    ``cpu.cfs_period_us``), or None when there is none or it cannot be read."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return None if quota <= 0 or period <= 0 else quota / period
    except (OSError, ValueError):
        return None


def _affinity() -> set[int] | None:
    """The CPUs this process may run on (None where the OS does not say)."""
    try:
        return set(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None


def _local_processes() -> int:
    """torchrun's process count on this machine (``LOCAL_WORLD_SIZE``; 1 without torchrun)."""
    return max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1))


def usable_cores(
    cpus: set[int] | None = None, quota: float | None = None, local_processes: int | None = None
) -> int:
    """The cores this process may keep busy: the affinity's CPUs (``cpus``), capped by the cgroup's
    ``quota`` (cores, rounded down), divided among torchrun's ``local_processes`` on this machine
    (``LOCAL_WORLD_SIZE``); at least 1. Arguments left None are read from the system."""
    cpus = _affinity() if cpus is None else cpus
    count = len(cpus) if cpus else (os.cpu_count() or 1)
    quota = _cgroup_quota() if quota is None else quota
    if quota is not None:
        count = min(count, max(1, math.floor(quota)))
    local_processes = _local_processes() if local_processes is None else max(1, local_processes)
    return max(1, count // local_processes)


def parse_setting(value: str | int) -> int | None:
    """``auto`` -> None, ``N`` (>= 1) -> N; a ValueError for anything else (``train.threads``' one
    check, recon.config.RULES)."""
    text = str(value).lower()
    if text == "auto":
        return None
    if text.isdigit() and int(text) >= 1:
        return int(text)
    raise ValueError(f"threads: expected auto or a thread count >= 1, got {value!r}")


class CpuLoad:
    """The cores the other processes used since the previous :meth:`others` call: busy time of the
    affinity's CPUs in ``/proc/stat`` (user, nice, system, irq, softirq, steal: a hypervisor's stolen time
    is contention too) less this process's own CPU time (all its threads)."""

    def __init__(
        self, stat: Path = Path("/proc/stat"), cpus: set[int] | None = None, clock=time.monotonic,
        own=time.process_time,
    ):  # fmt: skip
        """``clock`` (wall seconds) and ``own`` (this process's CPU seconds) are the system's unless a
        test gives its own."""
        self.stat, self.clock, self.own = Path(stat), clock, own
        self.cpus = _affinity() if cpus is None else cpus
        self.ticks_per_s = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self._last = self._sample()

    @property
    def available(self) -> bool:
        """Whether the machine reports its CPU time (Linux)."""
        return self._last is not None

    def _busy_s(self) -> float | None:
        try:
            lines = self.stat.read_text().splitlines()
        except OSError:
            return None
        busy = 0
        seen = False
        for line in lines:
            name, _, values = line.partition(" ")
            if not name.startswith("cpu") or not name[3:].isdigit():  # cpuN lines; "cpu" is their sum
                continue
            if self.cpus is not None and int(name[3:]) not in self.cpus:
                continue
            ticks = [int(v) for v in values.split()]
            busy += sum(ticks[0:3]) + sum(ticks[5:8])  # user nice system | irq softirq steal
            seen = True
        return busy / self.ticks_per_s if seen else None

    def _sample(self) -> tuple[float, float, float] | None:
        busy = self._busy_s()
        return None if busy is None else (self.clock(), busy, self.own())

    def seconds_since(self) -> float:
        """Wall seconds since the last reading."""
        return 0.0 if self._last is None else self.clock() - self._last[0]

    def others(self) -> float | None:
        """Cores used by other processes since the last call (None without /proc/stat, or when no time
        passed)."""
        now = self._sample()
        if now is None or self._last is None or now[0] <= self._last[0]:
            return None
        (t0, busy0, own0), (t1, busy1, own1) = self._last, now
        self._last = now
        return max(0.0, ((busy1 - busy0) - (own1 - own0)) / (t1 - t0))


def choose_threads(current: int, free: float, ceiling: int) -> int:
    """The thread count for ``free`` cores (the usable cores less the others' use), starting from
    ``current``: fewer once ``free <= current - DOWN_MARGIN``, more once ``free >= current + UP_MARGIN``,
    always within [1, ceiling]."""
    if free <= current - DOWN_MARGIN:
        current = math.ceil(free - DOWN_MARGIN)
    elif free >= current + UP_MARGIN:
        current = math.floor(free + 1 - UP_MARGIN)
    return max(1, min(ceiling, current))


def _set_threads(count: int) -> None:
    """torch's (OpenMP's, MKL's) thread count for this thread; the compiled loops follow it
    (``geometry.jit.use_torch_threads`` at each launch)."""
    if torch.get_num_threads() != count:
        torch.set_num_threads(count)


@dataclass
class ThreadPolicy:
    """A fixed thread count (``fixed``), or ``auto``: between 1 and ``ceiling`` threads, following the
    cores that ``cores`` less the other processes' use leaves free (``load``)."""

    fixed: int | None
    ceiling: int
    cores: int
    load: CpuLoad | None = None
    threads: int = 0
    changes: int = 0

    @classmethod
    def from_setting(cls, setting: str | int, load: CpuLoad | None = None) -> ThreadPolicy:
        """The policy for ``train.threads``; ``load`` (default: this machine's /proc/stat) for auto."""
        fixed = parse_setting(setting)
        processes = _local_processes()
        cores = usable_cores(local_processes=1)
        share = max(1, cores // processes)
        # torch's default is the physical cores (or OMP_NUM_THREADS); torchrun sets OMP_NUM_THREADS=1
        # itself, so under torchrun the share of the cores is the ceiling.
        ceiling = share if processes > 1 else max(1, min(share, torch.get_num_threads()))
        if fixed is not None:
            return cls(fixed=fixed, ceiling=fixed, cores=cores, threads=fixed)
        load = CpuLoad() if load is None else load
        reading = load if load.available else None
        return cls(fixed=None, ceiling=ceiling, cores=cores, load=reading, threads=ceiling)

    def apply(self) -> None:
        """Set torch's thread count to the policy's current one, and size numba's pool (not yet imported)
        to the ceiling, so that it can grow back after a busy spell."""
        os.environ.setdefault("NUMBA_NUM_THREADS", str(self.ceiling))
        _set_threads(self.threads)

    def adapt(self) -> int:
        """With ``auto``: look at the other processes' CPU use of the last ``WINDOW_S`` seconds and move
        the thread count (:func:`choose_threads`); cheap between windows. Returns the count in use."""
        if self.load is None or self.load.seconds_since() < WINDOW_S:
            return self.threads
        others = self.load.others()
        if others is not None:
            chosen = choose_threads(self.threads, self.cores - others, self.ceiling)
            if chosen != self.threads:
                self.threads, self.changes = chosen, self.changes + 1
        _set_threads(self.threads)
        return self.threads

    def describe(self) -> str:
        """One line for the run's first lines, e.g. ``threads: auto, 1-2 of 2 cores (follows the other
        programs' load)``."""
        if self.fixed is not None:
            return f"threads: {self.fixed} (fixed)"
        follows = "follows the other programs' load" if self.load else "no load readings here: fixed"
        return f"threads: auto, 1-{self.ceiling} of {self.cores} cores ({follows})"


_current: ThreadPolicy | None = None


@contextlib.contextmanager
def installed(policy: ThreadPolicy) -> Iterator[ThreadPolicy]:
    """Within the block ``policy`` is the process's: applied at once and adapted by :func:`adapt`; after
    it the previous policy and thread count come back."""
    global _current
    previous, threads = _current, torch.get_num_threads()
    _current = policy
    policy.apply()
    try:
        yield policy
    finally:
        _current = previous
        _set_threads(threads)


def adapt() -> None:
    """Adapt the installed policy's thread count (no-op without one): the long loops call it between
    steps, views or chunks of work, always from the thread that runs the operators."""
    if _current is not None:
        _current.adapt()
