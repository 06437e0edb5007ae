"""End to end: what a Prometheus scrape of a running central system shows.

A charge point boots, is sent a CALL by the control script, sends a bad
frame, and charges 2.5 kWh in one transaction. The module scrapes
``/metrics`` before and after, and each test checks one metric: counters by
how much they grew, gauges by their value.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.chargepoint import ChargePoint, now_iso
from tests.support.system import CentralSystem, wait_for

pytestmark = pytest.mark.e2e

STATION = "METRICS-1"
TAG = "METRICS-TAG"
ENERGY_WH = 2500


def scrape(system: CentralSystem) -> dict[tuple[str, frozenset], float]:
    """Every sample of one scrape: (sample name, labels) -> value."""
    with urllib.request.urlopen(
        f"http://127.0.0.1:{system.metrics_port}/metrics", timeout=10
    ) as response:
        assert response.status == 200
        text = response.read().decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@dataclass
class Scrapes:
    before: dict[tuple[str, frozenset], float]
    after: dict[tuple[str, frozenset], float]

    def value(self, name: str, **labels: str) -> float | None:
        return self.after.get((name, frozenset(labels.items())))

    def growth(self, name: str, **labels: str) -> float:
        key = (name, frozenset(labels.items()))
        assert key in self.after, f"{name}{labels} is not exposed"
        return self.after[key] - self.before.get(key, 0.0)


@pytest.fixture(scope="module")
def scrapes(csms: CentralSystem) -> Iterator[Scrapes]:
    csms.ctl_ok("tag", "add", TAG)
    before = scrape(csms)
    cp = ChargePoint(
        csms.url, STATION, handlers={"ClearCache": lambda payload: {"status": "Accepted"}}
    ).connect()
    try:
        cp.booted()
        assert csms.ctl_ok("clear-cache", STATION)["response"] == {"status": "Accepted"}
        cp.send_raw("this is not OCPP")
        assert cp.wait_answer("-1")[2] == "FormationViolation"
        tx = cp.start(1, TAG, meter_start=40_000)["transactionId"]
        cp.call(
            "MeterValues",
            {
                "connectorId": 1,
                "transactionId": tx,
                "meterValue": [{"timestamp": now_iso(), "sampledValue": [{"value": "41000"}]}],
            },
        )
        cp.stop(tx, 40_000 + ENERGY_WH)
        # Scraped while the charge point is still connected.
        yield Scrapes(before, scrape(csms))
    finally:
        cp.close()


def test_connected_and_known_stations_are_gauges(scrapes: Scrapes) -> None:
    connected = scrapes.value("csms_stations_connected")
    known = scrapes.value("csms_stations_known")
    assert connected is not None and connected >= 1
    assert known is not None and known >= connected


def test_an_answered_boot_notification_is_counted_as_an_incoming_result(scrapes: Scrapes) -> None:
    assert (
        scrapes.growth(
            "csms_ocpp_messages_total", action="BootNotification", direction="in", outcome="result"
        )
        == 1
    )


def test_call_latency_is_observed_for_incoming_and_outgoing_calls(scrapes: Scrapes) -> None:
    assert (
        scrapes.growth(
            "csms_ocpp_call_duration_seconds_count", action="BootNotification", direction="in"
        )
        == 1
    )
    assert (
        scrapes.growth(
            "csms_ocpp_call_duration_seconds_count", action="ClearCache", direction="out"
        )
        == 1
    )
    assert (
        scrapes.growth(
            "csms_ocpp_call_duration_seconds_bucket",
            action="ClearCache",
            direction="out",
            le="+Inf",
        )
        == 1
    )
    assert (
        scrapes.growth(
            "csms_ocpp_messages_total", action="ClearCache", direction="out", outcome="result"
        )
        == 1
    )


def test_a_callerror_sent_for_a_bad_frame_is_counted_by_code(scrapes: Scrapes) -> None:
    assert (
        scrapes.growth("csms_ocpp_callerrors_total", code="FormationViolation", direction="in") == 1
    )


def test_started_and_stopped_transactions_are_counted(scrapes: Scrapes) -> None:
    assert scrapes.growth("csms_transactions_started_total") == 1
    assert scrapes.growth("csms_transactions_stopped_total") == 1


def test_energy_of_a_stopped_transaction_is_added_up(scrapes: Scrapes) -> None:
    assert scrapes.growth("csms_energy_delivered_wh_total") == ENERGY_WH


PROFILE = {
    "chargingProfileId": 71, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile",
    "chargingProfileKind": "Absolute",
    "chargingSchedule": {"startSchedule": "2020-01-01T00:00:00Z", "chargingRateUnit": "A",
                         "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16.0}]},
}


def test_the_charging_limit_in_force_is_a_gauge_labelled_only_when_enabled(tmp_path) -> None:
    import json

    system = CentralSystem(tmp_path, extra_args=["--per-station-labels"]).start()
    try:
        with ChargePoint(system.url, "METRICS-LIMIT", handlers={"SetChargingProfile": lambda p: {"status": "Accepted"}}) as cp:
            cp.booted()
            system.ctl_ok("set-profile", "METRICS-LIMIT", "--connector", "1", "--profile", json.dumps(PROFILE))
            samples = scrape(system)
            assert samples[("csms_charging_limited_connectors", frozenset())] == 1
            labels = frozenset({"station": "METRICS-LIMIT", "connector": "1"}.items())
            assert samples[("csms_charging_limit_amperes", labels)] == 16.0
    finally:
        system.stop()


def test_idle_connections_to_the_metrics_port_do_not_take_it_offline(csms: CentralSystem) -> None:
    """Issue 9: 70 idle TCP connections took /metrics offline for everyone (a cap of 64)."""
    import socket

    idle = [socket.create_connection(("127.0.0.1", csms.metrics_port), timeout=10) for _ in range(150)]
    try:
        samples = scrape(csms)
        assert ("csms_stations_known", frozenset()) in samples
        assert idle[0].recv(1) == b""  # and the idle ones are closed by the server's timeout
    finally:
        for sock in idle:
            sock.close()


# -- issue 12: what an operator alerts on --------------------------------------------------------


def sample(system: CentralSystem, name: str, **labels: str) -> float:
    return scrape(system).get((name, frozenset(labels.items())), 0.0)


def grows_to(system: CentralSystem, name: str, value: float, **labels: str) -> None:
    """Counters are written after the writer's turn, just after the reply: wait for the scrape to show it."""
    wait_for(lambda: sample(system, name, **labels) == value, 10, interval=0.05,
             message=f"{name}{labels} to reach {value} (now {sample(system, name, **labels)})")


def test_a_connector_reported_faulted_is_in_the_connectors_gauge_and_its_notification_counted(
        csms: CentralSystem) -> None:
    faulted = sample(csms, "csms_connectors", status="Faulted")
    ground = sample(csms, "csms_connector_errors", error_code="GroundFailure")
    notified = sample(csms, "csms_status_notifications_total", status="Faulted", error_code="GroundFailure")
    with ChargePoint(csms.url, "METRICS-FAULT") as cp:
        cp.booted()
        cp.status(1, "Faulted", "GroundFailure")
        assert sample(csms, "csms_connectors", status="Faulted") == faulted + 1  # from storage: committed
        assert sample(csms, "csms_connector_errors", error_code="GroundFailure") == ground + 1
        grows_to(csms, "csms_status_notifications_total", notified + 1, status="Faulted", error_code="GroundFailure")
    # Its charge point gone, the connector's status is stale: no longer counted.
    wait_for(lambda: sample(csms, "csms_connectors", status="Faulted") == faulted, 10,
             message="the disconnected station's connector to leave the gauge")


def test_an_authorize_with_an_unknown_tag_is_counted_under_invalid(csms: CentralSystem) -> None:
    before = sample(csms, "csms_authorizations_total", action="Authorize", status="Invalid")
    with ChargePoint(csms.url, "METRICS-AUTH") as cp:
        cp.booted()
        assert cp.authorize("NO-SUCH-TAG") == {"status": "Invalid"}
        grows_to(csms, "csms_authorizations_total", before + 1, action="Authorize", status="Invalid")


def test_metered_energy_moves_on_meter_values_of_a_running_transaction_delivered_energy_at_its_stop(
        csms: CentralSystem) -> None:
    csms.ctl_ok("tag", "add", "METER-TAG")
    with ChargePoint(csms.url, "METRICS-METER") as cp:
        cp.booted()
        tx = cp.start(1, "METER-TAG", meter_start=5_000)["transactionId"]
        metered, delivered = sample(csms, "csms_energy_metered_wh_total"), sample(csms, "csms_energy_delivered_wh_total")
        cp.call("MeterValues", {"connectorId": 1, "transactionId": tx, "meterValue": [{
            "timestamp": now_iso(),
            "sampledValue": [{"value": "5.75", "unit": "kWh", "measurand": "Energy.Active.Import.Register"}]}]})
        grows_to(csms, "csms_energy_metered_wh_total", metered + 750)
        assert sample(csms, "csms_energy_delivered_wh_total") == delivered  # only at the stop
        cp.stop(tx, 6_000)
        grows_to(csms, "csms_energy_delivered_wh_total", delivered + 1_000)
        grows_to(csms, "csms_energy_metered_wh_total", metered + 1_000)  # the tail, at the stop


def test_per_host_writer_loop_and_process_metrics_and_build_info_are_exposed(csms: CentralSystem) -> None:
    with ChargePoint(csms.url, "METRICS-HOST") as cp:
        cp.booted()
    samples = scrape(csms)
    hosts = {dict(labels)["host"] for name, labels in samples if name == "csms_host_resident_memory_bytes"}
    assert hosts and hosts == {str(i) for i in range(len(hosts))}, hosts  # one per --hosts, by index
    for host in hosts:
        assert samples[("csms_host_resident_memory_bytes", frozenset({"host": host}.items()))] > 10e6
        assert samples[("csms_host_open_fds", frozenset({"host": host}.items()))] > 3
        assert ("csms_host_cpu_seconds_total", frozenset({"host": host}.items())) in samples
        assert samples[("csms_event_loop_lag_seconds_count", frozenset({"host": host}.items()))] >= 1
    turns = [v for (name, labels), v in samples.items() if name == "csms_writer_batch_events_count"]
    commits = [v for (name, labels), v in samples.items() if name == "csms_writer_commit_seconds_count"]
    assert sum(turns) >= 1 and sum(commits) == sum(turns)
    info = [dict(labels) for name, labels in samples if name == "csms_build_info"]
    assert [i["version"] for i in info] == ["0.1.0"]
    assert samples[("csms_database_filesystem_free_bytes", frozenset())] > 0
    assert samples[("csms_stations_silent", frozenset({"connected": "true"}.items()))] == 0
