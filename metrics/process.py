"""A station host's own process, sampled by the host itself.

prometheus_client's process collector reads ``/proc/self`` of the process
that is scraped: in multiprocess mode that is the exporter, never a host.
So each host samples itself every few seconds (``ProcessSampler``) into
gauges labelled with its index, and the registry forgets a dead host's
live gauges (``forget_process``) so that a restarted host is not counted
twice.
"""

from __future__ import annotations

import os
import resource

__all__ = ["ProcessSampler", "forget_process"]

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


class ProcessSampler:
    """CPU used since the previous sample, resident memory and open descriptors of this process."""

    def __init__(self, proc: str = "/proc/self") -> None:
        self.proc = proc
        self.cpu = 0.0

    def sample(self) -> tuple[float, float, float]:
        """``(cpu_seconds_since_last, rss_bytes, open_fds)``; the first sample's CPU is all used so far."""
        times = os.times()
        cpu = times.user + times.system
        used, self.cpu = max(0.0, cpu - self.cpu), cpu
        return used, self._rss(), self._fds()

    def _rss(self) -> float:
        try:
            with open(f"{self.proc}/statm") as f:
                return float(int(f.read().split()[1]) * PAGE_SIZE)
        except (OSError, ValueError, IndexError):
            return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)  # the peak: better than nothing

    def _fds(self) -> float:
        try:
            return float(len(os.listdir(f"{self.proc}/fd")))
        except OSError:
            return 0.0


def forget_process(pid: int, multiproc_dir: str | None) -> None:
    """Remove a dead process's live gauges from the multiprocess directory (nothing else of it)."""
    if not multiproc_dir or not pid:
        return
    from prometheus_client import multiprocess

    try:
        multiprocess.mark_process_dead(pid, multiproc_dir)
    except OSError:
        pass
