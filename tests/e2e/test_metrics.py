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
from tests.support.system import CentralSystem

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
