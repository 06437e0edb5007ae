"""The storage queries behind the state gauges an operator alerts on (issue 12)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from storage import Store

T0 = datetime(2026, 12, 7, 10, 0, tzinfo=timezone.utc)
BOOT = {"chargePointVendor": "V", "chargePointModel": "M"}


def _status(store: Store, station: str, connector: int, status: str, code: str = "NoError") -> None:
    store.record_status(station, {"connectorId": connector, "status": status, "errorCode": code}, T0)


def test_connectors_of_connected_stations_are_counted_by_status_and_error_code(store: Store) -> None:
    for station in ("CP1", "CP2", "GONE"):
        store.mark_connected(station, True, T0)
    _status(store, "CP1", 0, "Faulted", "OtherError")  # the charge point itself: not a connector
    _status(store, "CP1", 1, "Faulted", "GroundFailure")
    _status(store, "CP1", 2, "Charging")
    _status(store, "CP2", 1, "Charging")
    _status(store, "GONE", 1, "Faulted", "GroundFailure")
    store.mark_connected("GONE", False, T0)

    counted = {(r["status"], r["error_code"]): r["n"] for r in store.connector_counts()}

    assert counted == {("Faulted", "GroundFailure"): 1, ("Charging", "NoError"): 2}


def test_a_station_is_silent_after_twice_its_heartbeat_interval_its_own_when_known(store: Store) -> None:
    for station in ("QUIET", "CHATTY", "OWN-INTERVAL", "OFFLINE", "NEVER-ACCEPTED"):
        store.mark_connected(station, True, T0)
        if station != "NEVER-ACCEPTED":
            store.record_boot(station, BOOT, "Accepted", T0)
    store.set_configuration_value("OWN-INTERVAL", "HeartbeatInterval", "3600", T0)
    store.touch("CHATTY", T0 + timedelta(seconds=590))
    store.mark_connected("OFFLINE", False, T0 + timedelta(seconds=1))

    now = T0 + timedelta(seconds=700)  # past 2 x 300 s for all but CHATTY; OWN-INTERVAL has 2 x 3600 s

    assert store.silent_station_counts(now, 300) == {True: 1, False: 1}
    assert store.silent_station_counts(T0 + timedelta(seconds=500), 300) == {True: 0, False: 0}
