"""Metrics: the catalogue (pure), multiprocess aggregation, and the exporter actor.

The multiprocess and actor tests run in a child Python process, because
prometheus_client chooses multiprocess mode when it is first imported: the
child gets ``PROMETHEUS_MULTIPROC_DIR`` in its environment before that, as
run.py arranges in production, and the pytest process stays clean.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from metrics import LATENCY_BUCKETS, Metrics, StateCollector, endpoint, render

ROOT = Path(__file__).resolve().parents[2]


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


# -- HTTP: metrics.endpoint.MetricsServer on a real socket ---------------------------


def _render() -> tuple[bytes, str]:
    return b"csms_x 1.0\n", "text/plain; version=0.0.4; charset=utf-8"


@pytest.fixture
def server(monkeypatch):
    import socket

    monkeypatch.setattr(endpoint, "IDLE_TIMEOUT", 1.0)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    running = endpoint.MetricsServer(sock, _render)
    running.start()
    yield running
    running.stop()
    sock.close()


def _request(port: int, head: bytes, timeout: float = 5.0) -> bytes:
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(head)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
            if b"\r\n\r\n" in data and b"Connection: close" not in data:
                head_part, _, body = data.partition(b"\r\n\r\n")
                length = int(next((h.split(b":")[1] for h in head_part.split(b"\r\n") if h.lower().startswith(b"content-length:")), b"0"))
                if len(body) >= length:
                    break
        return data


def _status(reply: bytes) -> int:
    return int(reply.split(b" ", 2)[1])


def test_get_metrics_is_answered_with_the_exposition(server):
    reply = _request(server.port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")

    assert _status(reply) == 200
    assert reply.endswith(b"\r\n\r\ncsms_x 1.0\n")
    assert b"Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n" in reply
    assert _status(_request(server.port, b"HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n")) == 200


def test_health_paths_are_answered_ok_and_other_paths_and_methods_not(server):
    assert _request(server.port, b"GET /healthz HTTP/1.0\r\n\r\n").endswith(b"ok\n")
    assert _status(_request(server.port, b"GET / HTTP/1.0\r\n\r\n")) == 200
    assert _status(_request(server.port, b"GET /secret HTTP/1.0\r\n\r\n")) == 404
    assert _status(_request(server.port, b"POST /metrics HTTP/1.0\r\nContent-Length: 0\r\n\r\n")) == 405
    assert _status(_request(server.port, b"\x16\x03\x01garbage\r\n\r\n")) == 400


def test_an_oversized_request_head_is_refused(server):
    reply = _request(server.port, b"GET /metrics HTTP/1.1\r\nX: " + b"a" * (endpoint.MAX_LINE + 100) + b"\r\n\r\n")
    assert _status(reply) in (400, 431)


def test_idle_connections_do_not_starve_scrapers_and_are_closed_after_the_idle_timeout(server):
    """Issue 9: 70 idle TCP connections took /metrics offline for everyone (a cap of 64)."""
    import socket
    import time

    idle = [socket.create_connection(("127.0.0.1", server.port), timeout=10) for _ in range(200)]
    half = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    half.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # and never the end of the head
    try:
        assert _status(_request(server.port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")) == 200
        started = time.monotonic()
        for sock in [*idle[:5], half]:
            assert sock.recv(1) == b""  # closed by the server, not by our timeout
        assert time.monotonic() - started < 8.0
    finally:
        for sock in [*idle, half]:
            sock.close()


def test_a_failing_render_is_a_500_and_the_server_keeps_serving(monkeypatch):
    import socket

    calls = []

    def flaky() -> tuple[bytes, str]:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("database is locked")
        return _render()

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    running = endpoint.MetricsServer(sock, flaky)
    running.start()
    try:
        assert _status(_request(running.port, b"GET /metrics HTTP/1.0\r\n\r\n")) == 500
        assert _status(_request(running.port, b"GET /metrics HTTP/1.0\r\n\r\n")) == 200
    finally:
        running.stop()
        sock.close()


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
    from actors import errors
    from actors.ocpp import ocppj
    from metrics.catalogue import ACTIONS, ERROR_CODES

    assert ocppj.CP_ACTIONS | ocppj.CSMS_ACTIONS == ACTIONS
    assert errors.CODES <= ERROR_CODES


# -- issue 12: what an operator alerts on --------------------------------------------------


def test_status_notifications_are_counted_by_status_and_error_code_outside_values_folded(m, registry):
    m.status_notification("Faulted", "GroundFailure")
    m.status_notification("Faulted", "GroundFailure")
    m.status_notification("Exploded", "Sparks")

    assert registry.get_sample_value("csms_status_notifications_total",
                                     {"status": "Faulted", "error_code": "GroundFailure"}) == 2.0
    assert registry.get_sample_value("csms_status_notifications_total",
                                     {"status": "other", "error_code": "other"}) == 1.0


def test_authorizations_are_counted_by_action_and_status(m, registry):
    m.authorization("Authorize", "Invalid")
    m.authorization("StartTransaction", "Accepted")
    m.authorization("Authorize", "SomethingNew")

    assert registry.get_sample_value("csms_authorizations_total", {"action": "Authorize", "status": "Invalid"}) == 1.0
    assert registry.get_sample_value("csms_authorizations_total",
                                     {"action": "StartTransaction", "status": "Accepted"}) == 1.0
    assert registry.get_sample_value("csms_authorizations_total", {"action": "Authorize", "status": "other"}) == 1.0


def test_metered_energy_grows_by_positive_finite_amounts_only(m, registry):
    m.energy_metered(400.0)
    m.energy_metered(-50.0)
    m.energy_metered(float("inf"))
    m.energy_metered(float("nan"))
    m.energy_metered(100.0)

    assert registry.get_sample_value("csms_energy_metered_wh_total") == 500.0
    assert registry.get_sample_value("csms_energy_delivered_wh_total") == 0.0


def test_restarts_of_every_role_are_exposed_at_zero_before_the_first(m, registry):
    m.expose_restarts()
    m.actor_restarted("host")

    assert registry.get_sample_value("csms_actor_restarts_total", {"role": "host"}) == 1.0
    assert registry.get_sample_value("csms_actor_restarts_total", {"role": "exporter"}) == 0.0


def test_a_writer_turn_observes_its_batch_size_and_commit_time_per_host(m, registry):
    m.writer_turn("0", 37, 0.004)
    m.writer_turn("1", 1, 0.0002)

    assert registry.get_sample_value("csms_writer_batch_events_count", {"host": "0"}) == 1.0
    assert registry.get_sample_value("csms_writer_batch_events_sum", {"host": "0"}) == 37.0
    assert registry.get_sample_value("csms_writer_batch_events_bucket", {"host": "0", "le": "20.0"}) == 0.0
    assert registry.get_sample_value("csms_writer_batch_events_bucket", {"host": "0", "le": "50.0"}) == 1.0
    assert registry.get_sample_value("csms_writer_commit_seconds_bucket", {"host": "1", "le": "0.0005"}) == 1.0


def test_batched_histograms_keep_their_own_buckets(m, registry):
    with m.batched():
        m.writer_turn("0", 150, 0.02)
        m.loop_lag("0", 0.3)

    assert registry.get_sample_value("csms_writer_batch_events_bucket", {"host": "0", "le": "100.0"}) == 0.0
    assert registry.get_sample_value("csms_writer_batch_events_bucket", {"host": "0", "le": "200.0"}) == 1.0
    assert registry.get_sample_value("csms_event_loop_lag_seconds_bucket", {"host": "0", "le": "0.25"}) == 0.0
    assert registry.get_sample_value("csms_event_loop_lag_seconds_bucket", {"host": "0", "le": "0.5"}) == 1.0


def test_loop_lag_is_observed_per_host_and_never_negative(m, registry):
    m.loop_lag("1", -0.001)

    assert registry.get_sample_value("csms_event_loop_lag_seconds_bucket", {"host": "1", "le": "0.001"}) == 1.0
    assert registry.get_sample_value("csms_event_loop_lag_seconds_sum", {"host": "1"}) == 0.0


def test_a_host_process_sample_adds_cpu_and_sets_memory_and_descriptors(m, registry):
    m.host_process("0", cpu_seconds=0.0, rss_bytes=50e6, open_fds=12)
    assert registry.get_sample_value("csms_host_cpu_seconds_total", {"host": "0"}) == 0.0
    m.host_process("0", cpu_seconds=1.5, rss_bytes=60e6, open_fds=14)
    m.host_process("0", cpu_seconds=0.5, rss_bytes=55e6, open_fds=13)

    assert registry.get_sample_value("csms_host_cpu_seconds_total", {"host": "0"}) == 2.0
    assert registry.get_sample_value("csms_host_resident_memory_bytes", {"host": "0"}) == 55e6
    assert registry.get_sample_value("csms_host_open_fds", {"host": "0"}) == 13.0


def test_connectors_are_exposed_by_status_every_status_present_unknown_ones_folded(registry):
    rows = [{"status": "Faulted", "error_code": "GroundFailure", "n": 2},
            {"status": "Charging", "error_code": "NoError", "n": 3},
            {"status": "Melting", "error_code": "Smoke", "n": 1}]
    registry.register(StateCollector(lambda: {"connectors": rows}))

    assert registry.get_sample_value("csms_connectors", {"status": "Faulted"}) == 2.0
    assert registry.get_sample_value("csms_connectors", {"status": "Charging"}) == 3.0
    assert registry.get_sample_value("csms_connectors", {"status": "Available"}) == 0.0
    assert registry.get_sample_value("csms_connectors", {"status": "other"}) == 1.0
    assert registry.get_sample_value("csms_connector_errors", {"error_code": "GroundFailure"}) == 2.0
    assert registry.get_sample_value("csms_connector_errors", {"error_code": "other"}) == 1.0
    assert registry.get_sample_value("csms_connector_errors", {"error_code": "NoError"}) is None


def test_silent_stations_are_exposed_by_whether_they_are_connected(registry):
    registry.register(StateCollector(lambda: {"stations_silent": {True: 2, False: 5}}))

    assert registry.get_sample_value("csms_stations_silent", {"connected": "true"}) == 2.0
    assert registry.get_sample_value("csms_stations_silent", {"connected": "false"}) == 5.0


def test_the_database_disk_gauges_come_from_the_summary(registry):
    registry.register(StateCollector(lambda: {"database_bytes": 4096, "database_filesystem_free_bytes": 10,
                                              "database_filesystem_size_bytes": 100}))

    assert registry.get_sample_value("csms_database_bytes") == 4096.0
    assert registry.get_sample_value("csms_database_filesystem_free_bytes") == 10.0
    assert registry.get_sample_value("csms_database_filesystem_size_bytes") == 100.0


def test_build_info_names_the_running_versions(tmp_path):
    from prometheus_client.parser import text_string_to_metric_families

    body, _ = render(lambda: {}, multiproc_dir=str(tmp_path))
    (info,) = [f for f in text_string_to_metric_families(body.decode()) if f.name == "csms_build_info"]

    (sample,) = info.samples
    assert sample.value == 1.0
    assert sample.labels["version"] == "0.1.0" and sample.labels["thespian"] == "4.0.1"
    assert sample.labels["python"].count(".") == 2
