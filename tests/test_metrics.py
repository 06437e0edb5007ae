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
from prometheus_client import CollectorRegistry, generate_latest

from metrics import LATENCY_BUCKETS, Metrics, StateCollector, endpoint, render

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def m(registry: CollectorRegistry) -> Metrics:
    return Metrics(registry=registry)


# -- catalogue ----------------------------------------------------------------


def test_message_is_counted_by_action_direction_and_outcome(m, registry):
    m.message("Heartbeat", "in", "result")
    m.message("Heartbeat", "in", "result")
    m.message("Reset", "out", "timeout")

    labels = {"action": "Heartbeat", "direction": "in", "outcome": "result"}
    assert registry.get_sample_value("csms_ocpp_messages_total", labels) == 2.0
    labels = {"action": "Reset", "direction": "out", "outcome": "timeout"}
    assert registry.get_sample_value("csms_ocpp_messages_total", labels) == 1.0


def test_action_names_outside_ocpp_are_folded_into_unknown(m, registry):
    for i in range(10):
        m.message(f"Invented{i}", "in", "error")

    labels = {"action": "unknown", "direction": "in", "outcome": "error"}
    assert registry.get_sample_value("csms_ocpp_messages_total", labels) == 10.0
    assert b"Invented" not in generate_latest(registry)


def test_call_latency_lands_in_the_right_buckets(m, registry):
    m.call_latency("Authorize", "in", 0.0007)
    m.call_latency("Authorize", "in", 12.0)

    def bucket(le: str) -> float | None:
        labels = {"action": "Authorize", "direction": "in", "le": le}
        return registry.get_sample_value("csms_ocpp_call_duration_seconds_bucket", labels)

    assert bucket("0.0005") == 0.0
    assert bucket("0.001") == 1.0
    assert bucket("10.0") == 1.0
    assert bucket("30.0") == 2.0
    labels = {"action": "Authorize", "direction": "in"}
    assert registry.get_sample_value("csms_ocpp_call_duration_seconds_count", labels) == 2.0
    assert LATENCY_BUCKETS[0] == 0.0005 and LATENCY_BUCKETS[-1] == 30.0


def test_call_errors_are_counted_by_code_and_unknown_codes_become_other(m, registry):
    m.call_error("FormationViolation", "out")
    m.call_error("NoSuchCode", "in")

    labels = {"code": "FormationViolation", "direction": "out"}
    assert registry.get_sample_value("csms_ocpp_callerrors_total", labels) == 1.0
    labels = {"code": "other", "direction": "in"}
    assert registry.get_sample_value("csms_ocpp_callerrors_total", labels) == 1.0


def test_transactions_and_energy_are_counted_and_negative_energy_is_ignored(m, registry):
    m.transaction_started()
    m.transaction_started()
    m.transaction_stopped()
    m.energy_delivered(1500.0)
    m.energy_delivered(-20.0)
    m.energy_delivered(float("nan"))

    assert registry.get_sample_value("csms_transactions_started_total") == 2.0
    assert registry.get_sample_value("csms_transactions_stopped_total") == 1.0
    assert registry.get_sample_value("csms_energy_delivered_wh_total") == 1500.0


def test_connection_events_are_counted_by_event(m, registry):
    m.connection_event("opened")
    m.connection_event("replaced")
    m.connection_event("opened")

    assert registry.get_sample_value("csms_connection_events_total", {"event": "opened"}) == 2.0
    assert registry.get_sample_value("csms_connection_events_total", {"event": "replaced"}) == 1.0


# -- state gauges and exposition ------------------------------------------------


def test_state_collector_exposes_the_summary_as_gauges(registry):
    summary = {"stations_known": 7, "stations_connected": 5, "transactions_active": 2}
    registry.register(StateCollector(lambda: summary))

    assert registry.get_sample_value("csms_stations_known") == 7.0
    assert registry.get_sample_value("csms_stations_connected") == 5.0
    assert registry.get_sample_value("csms_transactions_active") == 2.0


def test_state_collector_is_not_called_at_registration():
    calls: list[int] = []

    def summary() -> dict:
        calls.append(1)
        return {}

    CollectorRegistry(auto_describe=True).register(StateCollector(summary))

    assert calls == []


def test_a_failing_summary_skips_the_gauges_but_not_the_scrape(tmp_path):
    def broken() -> dict:
        raise RuntimeError("database is locked")

    body, content_type = render(broken, multiproc_dir=str(tmp_path))

    assert content_type.startswith("text/plain")
    assert b"csms_stations_known" not in body


def test_render_joins_the_multiprocess_files_and_the_state_gauges(tmp_path):
    body, _ = render(lambda: {"stations_known": 3}, multiproc_dir=str(tmp_path))

    assert b"csms_stations_known 3.0" in body
    assert b"csms_stations_connected" not in body


# -- HTTP, without sockets ------------------------------------------------------


def _status(reply: bytes) -> int:
    return int(reply.split(b" ", 2)[1])


def _render() -> tuple[bytes, str]:
    return b"csms_x 1.0\n", "text/plain; version=0.0.4"


def test_get_metrics_is_answered_with_the_exposition():
    reply = endpoint.respond(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", _render)

    assert _status(reply) == 200
    assert reply.endswith(b"\r\n\r\ncsms_x 1.0\n")
    assert b"Content-Length: 11\r\n" in reply


def test_health_paths_are_answered_ok_and_other_paths_not_found():
    assert endpoint.respond(b"GET /healthz HTTP/1.0\r\n\r\n", _render).endswith(b"ok\n")
    assert _status(endpoint.respond(b"GET / HTTP/1.0\r\n\r\n", _render)) == 200
    assert _status(endpoint.respond(b"GET /secret HTTP/1.0\r\n\r\n", _render)) == 404
    assert _status(endpoint.respond(b"POST /metrics HTTP/1.0\r\n\r\n", _render)) == 405
    assert _status(endpoint.respond(b"\x16\x03\x01garbage\r\n\r\n", _render)) == 400


def test_an_oversized_request_head_is_refused():
    data = b"GET /metrics HTTP/1.1\r\nX: " + b"a" * endpoint.MAX_HEAD

    assert endpoint.head_complete(data)
    assert _status(endpoint.respond(data, _render)) == 431


def test_a_partial_request_head_is_not_complete():
    assert not endpoint.head_complete(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
    assert endpoint.head_complete(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")


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

from gateway.ports import free_port

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
        big.sendall(b"GET /metrics HTTP/1.0\\r\\nX: " + b"a" * 8300)
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
    assert out["big"] == "HTTP/1.0 431 Request Header Fields Too Large"
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


def test_exporter_messages_survive_pickling():
    import pickle

    from actors.exporter import ExporterFailed, ExporterStarted, StartExporter
    from actors.settings import Settings

    for message in (StartExporter(Settings(metrics_port=0)), ExporterStarted(9100),
                    ExporterFailed("in use")):
        assert pickle.loads(pickle.dumps(message)) == message


def test_charging_limit_gauges_come_from_the_summary() -> None:
    from metrics.exposition import StateCollector

    registry = CollectorRegistry()
    registry.register(StateCollector(lambda: {
        "charging_limited_connectors": 2,
        "charging_limits": [{"station": "CP1", "connector": 1, "limit_a": 16.0}, {"station": "CP1", "connector": 0, "limit_a": 32.0}],
    }))
    assert registry.get_sample_value("csms_charging_limited_connectors") == 2
    assert registry.get_sample_value("csms_charging_limit_amperes", {"station": "CP1", "connector": "1"}) == 16.0


def test_without_per_station_labels_only_the_count_is_exposed() -> None:
    from metrics.exposition import StateCollector

    registry = CollectorRegistry()
    registry.register(StateCollector(lambda: {"charging_limited_connectors": 1}))
    assert registry.get_sample_value("csms_charging_limited_connectors") == 1
    assert registry.get_sample_value("csms_charging_limit_amperes", {"station": "CP1", "connector": "1"}) is None


def test_the_catalogue_labels_every_action_and_error_code_the_station_can_report():
    # metrics imports nothing back from actors, so its label lists are copies: keep them in step.
    from actors import errors, ocppj
    from metrics.catalogue import ACTIONS, ERROR_CODES

    assert ocppj.CP_ACTIONS | ocppj.CSMS_ACTIONS == ACTIONS
    assert errors.CODES <= ERROR_CODES
