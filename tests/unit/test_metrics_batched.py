"""Batched recording (``Metrics.batched``): the same samples as recording one by one, written once.

The host's writer wraps each turn in ``batched()``; what a scrape sees must
not depend on it. The multiprocess case runs in a child Python process, as in
``test_metrics``, because prometheus_client picks its value storage on first
import.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from metrics import LATENCY_BUCKETS, Metrics

ROOT = Path(__file__).resolve().parents[2]

# Every bound exactly, values between and beyond them, zero, negative, infinite.
LATENCIES = [*LATENCY_BUCKETS, 0.0, -0.25, 0.0007, 0.003, 7.5, 31.0, 1e9, math.inf, 0.0005000001]


def _record(m: Metrics) -> None:
    for n, seconds in enumerate(LATENCIES):
        action = ("Heartbeat", "MeterValues", "NoSuchAction")[n % 3]
        m.message(action, "in", "result")
        m.call_latency(action, "in", seconds)
        m.call_latency("Reset", "out", seconds / 2)
    m.call_error("FormationViolation", "in")
    m.call_error("Invented", "out")
    m.transaction_started()
    m.transaction_started()
    m.transaction_stopped()
    m.energy_delivered(12.5)
    m.energy_delivered(-3.0)  # ignored, batched or not
    m.energy_delivered(0.25)
    m.connection_event("opened")
    m.connection_event("opened")
    m.connection_event("rejected")


def _samples(registry: CollectorRegistry) -> list[str]:
    return sorted(line for line in generate_latest(registry).decode().splitlines()
                  if line and not line.startswith("#") and "_created" not in line)


def test_a_batch_writes_the_same_samples_as_recording_one_by_one():
    direct_registry, batched_registry = CollectorRegistry(), CollectorRegistry()
    direct, batched = Metrics(registry=direct_registry), Metrics(registry=batched_registry)

    _record(direct)
    with batched.batched():
        _record(batched)

    assert _samples(batched_registry) == _samples(direct_registry)
    assert any('le="0.0005"' in line and line.endswith(" 2.0") for line in _samples(batched_registry))


def test_a_batch_is_written_when_it_ends_not_before():
    registry = CollectorRegistry()
    m = Metrics(registry=registry)

    with m.batched():
        m.message("Heartbeat", "in", "result")
        m.call_latency("Heartbeat", "in", 0.002)
        inside = registry.get_sample_value(
            "csms_ocpp_messages_total", {"action": "Heartbeat", "direction": "in", "outcome": "result"})
        count_inside = registry.get_sample_value(
            "csms_ocpp_call_duration_seconds_count", {"action": "Heartbeat", "direction": "in"})

    assert inside in (None, 0.0) and count_inside in (None, 0.0)
    assert registry.get_sample_value(
        "csms_ocpp_messages_total", {"action": "Heartbeat", "direction": "in", "outcome": "result"}) == 1.0
    assert registry.get_sample_value(
        "csms_ocpp_call_duration_seconds_bucket", {"action": "Heartbeat", "direction": "in", "le": "0.001"}) == 0.0
    assert registry.get_sample_value(
        "csms_ocpp_call_duration_seconds_bucket", {"action": "Heartbeat", "direction": "in", "le": "0.0025"}) == 1.0


def test_other_threads_record_directly_while_one_thread_batches():
    registry = CollectorRegistry()
    m = Metrics(registry=registry)
    labels = {"event": "rejected"}

    with m.batched():
        m.connection_event("opened")  # this thread: held until the end
        other = threading.Thread(target=m.connection_event, args=("rejected",))
        other.start()
        other.join()
        seen_meanwhile = registry.get_sample_value("csms_connection_events_total", labels)
        opened_meanwhile = registry.get_sample_value("csms_connection_events_total", {"event": "opened"})

    assert seen_meanwhile == 1.0
    assert opened_meanwhile in (None, 0.0)
    assert registry.get_sample_value("csms_connection_events_total", {"event": "opened"}) == 1.0


def test_a_batch_is_written_even_when_the_block_raises_and_batches_do_not_nest():
    registry = CollectorRegistry()
    m = Metrics(registry=registry)

    with pytest.raises(ZeroDivisionError):
        with m.batched():
            m.transaction_started()
            raise ZeroDivisionError("the turn failed")
    assert registry.get_sample_value("csms_transactions_started_total") == 1.0

    with m.batched():
        with pytest.raises(RuntimeError, match="nest"):
            with m.batched():
                pass
        m.transaction_started()
    assert registry.get_sample_value("csms_transactions_started_total") == 2.0


CHILD = """
import os, sys
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client import generate_latest
sys.path.insert(0, sys.argv[1])
from tests.unit.test_metrics_batched import _record, _samples
from metrics.catalogue import Metrics
mode = sys.argv[2]
m = Metrics(registry=CollectorRegistry())
if mode == "batched":
    with m.batched():
        _record(m)
else:
    _record(m)
merged = CollectorRegistry()
MultiProcessCollector(merged, path=os.environ["PROMETHEUS_MULTIPROC_DIR"])
print("\\n".join(_samples(merged)))
"""


def _child(tmp: Path, mode: str) -> str:
    tmp.mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp)}
    done = subprocess.run([sys.executable, "-c", CHILD, str(ROOT), mode], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_in_multiprocess_mode_a_batch_adds_up_to_the_same_exposition(tmp_path):
    direct = _child(tmp_path / "direct", "direct")
    batched = _child(tmp_path / "batched", "batched")

    assert "csms_ocpp_call_duration_seconds_bucket" in batched
    assert batched == direct
