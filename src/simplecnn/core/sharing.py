"""Sharing the machine: a training loop that gives up a thread when another process needs
the cores.

With every thread of two processes busy on two cores, each parallel region waits at its
barrier for a thread the scheduler has parked, and an epoch runs many times slower (measured
in ``benchmarks/contention.py``: 5× with libgomp's spinning, over 30× with passive waiting).
``ThreadGovernor`` watches, every couple of seconds, how many cores other processes used
(the system's busy time minus this process's) and sets torch's thread count to the cores left
(at least one); alone, it keeps every core. ``SIMPLECNN_SHARE=0`` turns it off. Thread counts
change float reductions, so a run that had to share is not bit-identical to one that did not.
"""

from __future__ import annotations

import os
import time

import psutil
import torch


def enabled() -> bool:
    return os.environ.get("SIMPLECNN_SHARE", "1") not in ("0", "false", "off")


class ThreadGovernor:
    """Call ``step()`` from a loop; every ``interval`` seconds it re-reads the load."""

    def __init__(self, interval: float = 2.0):
        self.interval, self.full = interval, torch.get_num_threads()
        self.proc = psutil.Process()
        self._mark = self._read()

    def _read(self) -> tuple[float, float, float]:
        t = psutil.cpu_times()
        own = self.proc.cpu_times()
        busy = t.user + t.system + getattr(t, "nice", 0.0) + getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0)
        return time.monotonic(), busy, own.user + own.system  # steal and guest time are no process's here

    def others(self) -> float:
        """Cores other processes used since the last reading."""
        now = self._read()
        wall = now[0] - self._mark[0]
        used = max(0.0, (now[1] - self._mark[1]) - (now[2] - self._mark[2]))
        self._mark = now
        return used / wall if wall > 0 else 0.0

    def step(self) -> int:
        """The thread count to use now (set in torch when it changes)."""
        if time.monotonic() - self._mark[0] < self.interval:
            return torch.get_num_threads()
        cores = os.cpu_count() or 1
        want = max(1, min(self.full, cores - int(round(self.others()))))
        if want != torch.get_num_threads():
            torch.set_num_threads(want)
        return want

    def restore(self) -> None:
        torch.set_num_threads(self.full)
