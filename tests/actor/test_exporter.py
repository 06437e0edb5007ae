"""Metrics: the catalogue (pure), multiprocess aggregation, and the exporter actor.

The multiprocess and actor tests run in a child Python process, because
prometheus_client chooses multiprocess mode when it is first imported: the
child gets ``PROMETHEUS_MULTIPROC_DIR`` in its environment before that, as
run.py arranges in production, and the pytest process stays clean.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from metrics import Metrics

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def m(registry: CollectorRegistry) -> Metrics:
    return Metrics(registry=registry)


# -- in child processes -----------------------------------------------------------


def _run_child(script: str, multiproc_dir: Path, marker: str, *args: str) -> dict:
    # A dedicated directory: MultiProcessCollector reads every *.db file in it.
    multiproc_dir.mkdir()
    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(multiproc_dir),
        "PYTHONPATH": str(ROOT),
    }
    done = subprocess.run(
        [sys.executable, "-c", script, marker, str(multiproc_dir), *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


AGGREGATE = """
import json, multiprocessing
import metrics

def record():
    metrics.message("Heartbeat", "in", "result")
    metrics.call_latency("Heartbeat", "in", 0.002)
    metrics.energy_delivered(100.0)

ctx = multiprocessing.get_context("fork")
children = [ctx.Process(target=record) for _ in range(2)]
for child in children:
    child.start()
for child in children:
    child.join(10)
body, _ = metrics.render(lambda: {"stations_known": 4})
print(json.dumps({"exitcodes": [c.exitcode for c in children], "body": body.decode()}))
"""


def test_values_recorded_in_two_processes_are_summed_in_one_scrape(tmp_path):
    out = _run_child(AGGREGATE, tmp_path / "prom", "csms-test-aggregate")

    assert out["exitcodes"] == [0, 0]
    lines = out["body"].splitlines()
    assert 'csms_ocpp_messages_total{action="Heartbeat",direction="in",outcome="result"} 2.0' in lines
    assert 'csms_ocpp_call_duration_seconds_count{action="Heartbeat",direction="in"} 2.0' in lines
    assert "csms_energy_delivered_wh_total 200.0" in lines
    assert "csms_stations_known 4.0" in lines


EXPORTER = """
import json, socket, sys, urllib.error, urllib.request
from thespian.actors import ActorSystem
import actors.exporter as exporter
import metrics
from actors.settings import Settings

MULTIPROC_DIR, MODE, DB = sys.argv[2], sys.argv[3], sys.argv[4]

def fake_summary_source(settings):
    return lambda: {"stations_known": 7, "stations_connected": 5, "transactions_active": 2}

if MODE == "fake":
    # The hook is read when the exporter starts, in a process forked from this one.
    exporter.summary_source = fake_summary_source

from gateway.sim.ports import free_port

def get(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, ""

def status_line(sock):
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    sock.close()
    return data.split(b"\\r\\n", 1)[0].decode()

admin_port = free_port()
out = {"admin_port": admin_port}
taken = socket.socket()
taken.bind(("127.0.0.1", 0))
taken.listen(1)
asys = ActorSystem("multiprocTCPBase", capabilities={"Admin Port": admin_port},
                   transientUnique=True)
try:
    settings = Settings(host="127.0.0.1", metrics_port=0, metrics_dir=MULTIPROC_DIR, db=DB)
    addr = asys.createActor(exporter.MetricsExporterActor)
    started = asys.ask(addr, exporter.StartExporter(settings), timeout=10)
    out["started"] = type(started).__name__
    port = started.port
    metrics.message("BootNotification", "in", "result")
    base = "http://127.0.0.1:%d" % port
    out["metrics"] = get(base + "/metrics")
    if MODE == "fake":
        out["healthz"] = get(base + "/healthz")
        out["missing"] = get(base + "/missing")

        slow = socket.create_connection(("127.0.0.1", port), timeout=5)
        slow.sendall(b"GET /metr")
        out["served_while_slow"] = get(base + "/healthz")[0]
        slow.sendall(b"ics HTTP/1.0\\r\\n\\r\\n")
        out["slow"] = status_line(slow)

        big = socket.create_connection(("127.0.0.1", port), timeout=5)
        big.sendall(b"GET /metrics HTTP/1.0\\r\\nX: " + b"a" * 8300 + b"\\r\\n\\r\\n")
        out["big"] = status_line(big)

        again = asys.ask(addr, exporter.StartExporter(settings), timeout=10)
        out["again"] = [type(again).__name__, again.port == port]

        other = asys.createActor(exporter.MetricsExporterActor)
        busy = Settings(host="127.0.0.1", metrics_port=taken.getsockname()[1])
        failed = asys.ask(other, exporter.StartExporter(busy), timeout=10)
        out["failed"] = type(failed).__name__
finally:
    asys.shutdown()
    taken.close()
print(json.dumps(out))
"""


def _processes_with(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in cmdline:
            found.append(int(entry.name))
    return found


def _assert_no_process_with(marker: str) -> None:
    deadline = time.monotonic() + 10
    while _processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _processes_with(marker) == []


def _marker(name: str) -> str:
    return f"csms-test-{name}-{os.getpid()}-{time.monotonic_ns()}"


@pytest.mark.e2e
def test_exporter_actor_serves_metrics_and_state_gauges_over_http(tmp_path):
    marker = _marker("exporter")

    out = _run_child(EXPORTER, tmp_path / "prom", marker, "fake", str(tmp_path / "unused.db"))

    assert out["started"] == "ExporterStarted"
    status, body = out["metrics"]
    assert status == 200
    lines = body.splitlines()
    assert "csms_stations_known 7.0" in lines
    assert "csms_stations_connected 5.0" in lines
    assert "csms_transactions_active 2.0" in lines
    # Recorded in the process that started the system, summed by the exporter's process.
    assert (
        'csms_ocpp_messages_total{action="BootNotification",direction="in",outcome="result"} 1.0'
        in lines
    )
    assert out["healthz"] == [200, "ok\n"]
    assert out["missing"][0] == 404
    assert out["served_while_slow"] == 200
    assert out["slow"] == "HTTP/1.0 200 OK"
    assert out["big"].split(" ")[1] in ("400", "431"), out["big"]  # aiohttp: "Got more than 8190 bytes"
    assert out["again"] == ["ExporterStarted", True]
    assert out["failed"] == "ExporterFailed"
    _assert_no_process_with(marker)


@pytest.mark.e2e
def test_exporter_reads_the_state_gauges_from_the_store(tmp_path):
    from datetime import datetime, timezone

    from storage import Store

    db = str(tmp_path / "csms.db")
    store = Store(db)
    now = datetime.now(timezone.utc)
    store.upsert_station("CP-1", now=now)
    store.mark_connected("CP-2", True, now)
    store.close()
    marker = _marker("exporter-store")

    out = _run_child(EXPORTER, tmp_path / "prom", marker, "store", db)

    status, body = out["metrics"]
    assert status == 200
    lines = body.splitlines()
    assert "csms_stations_known 2.0" in lines
    assert "csms_stations_connected 1.0" in lines
    assert "csms_transactions_active 0.0" in lines
    _assert_no_process_with(marker)


