"""A station host's self-sampled process metrics (metrics.process)."""

from __future__ import annotations

import os
from pathlib import Path

from metrics.process import ProcessSampler, forget_process


def test_the_first_sample_reports_cpu_so_far_then_only_what_was_used_since() -> None:
    sampler = ProcessSampler()
    first_cpu, rss, fds = sampler.sample()
    sum(i * i for i in range(300_000))  # burn a little CPU
    second_cpu, _, _ = sampler.sample()

    times = os.times()
    assert 0 < first_cpu <= times.user + times.system
    assert 0 <= second_cpu < first_cpu + 5
    assert rss > 10 * 1024 * 1024  # a Python process holds more than 10 MB
    assert fds >= 3


def test_without_proc_the_sample_falls_back_to_peak_memory_and_no_descriptors(tmp_path: Path) -> None:
    _, rss, fds = ProcessSampler(proc=str(tmp_path / "nothing")).sample()

    assert rss > 0 and fds == 0.0


def test_forgetting_a_dead_process_removes_only_its_live_gauge_files(tmp_path: Path) -> None:
    for name in ("gauge_livemostrecent_123.db", "gauge_livemostrecent_456.db", "counter_123.db"):
        (tmp_path / name).write_bytes(b"")

    forget_process(123, str(tmp_path))

    assert sorted(p.name for p in tmp_path.iterdir()) == ["counter_123.db", "gauge_livemostrecent_456.db"]
