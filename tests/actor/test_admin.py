"""Data-management commands of the control script."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import pytest

from actors.admin import AdminError, run_admin
from storage import Store

NOW = datetime(2026, 11, 25, 10, 0, 0, tzinfo=timezone.utc)


def admin(store: Store, command: str, **args: Any) -> Any:
    result = run_admin(store, command, args, NOW)
    json.dumps(result)  # every result must be JSON-serialisable
    assert "password_hash" not in json.dumps(result)
    return result


def fails(store: Store, command: str, **args: Any) -> int:
    with pytest.raises(AdminError) as caught:
        run_admin(store, command, args, NOW)
    return caught.value.exit_code


def test_station_add_then_list_and_show(store: Store) -> None:
    added = admin(store, "station.add", id="CP1", password="pw-123456", registration="Pending",
                  connectors="2")
    assert (added["registration"], added["connectors"], added["has_password"]) == (
        "pending", 2, True)
    assert [s["id"] for s in admin(store, "station.list")] == ["CP1"]
    shown = admin(store, "station.show", id="CP1")
    assert shown["station"]["id"] == "CP1"
    assert shown["connectors"] == [] and shown["active_transactions"] == []
    assert shown["configuration"] == [] and shown["unknown_configuration_keys"] == []


def test_station_show_includes_connectors_configuration_and_active_transactions(
    store: Store,
) -> None:
    admin(store, "station.add", id="CP1")
    store.record_status("CP1", {"connectorId": 1, "status": "Charging", "errorCode": "NoError"},
                        NOW)
    store.set_configuration_value("CP1", "HeartbeatInterval", "60", NOW)
    tx, _ = store.start_transaction("CP1", {"connectorId": 1, "idTag": "T", "meterStart": 0,
                                            "timestamp": "2026-11-25T09:00:00Z"}, "Accepted", NOW)
    shown = admin(store, "station.show", id="CP1")
    assert shown["connectors"][0]["status"] == "Charging"
    assert shown["configuration"][0]["value"] == "60"
    assert [t["id"] for t in shown["active_transactions"]] == [tx]


def test_station_set_password_replaces_the_password(store: Store) -> None:
    admin(store, "station.add", id="CP1", password="first")
    assert admin(store, "station.set-password", id="CP1", password="second") == {
        "id": "CP1", "password_set": True}
    assert store.check_password("CP1", "second") and not store.check_password("CP1", "first")


def test_station_remove_forgets_the_station(store: Store) -> None:
    admin(store, "station.add", id="CP1")
    assert admin(store, "station.remove", id="CP1") == {"id": "CP1", "removed": True}
    assert admin(store, "station.list") == []


@pytest.mark.parametrize(
    "command, args",
    [("station.show", {"id": "ghost"}), ("station.remove", {"id": "ghost"}),
     ("station.set-password", {"id": "ghost", "password": "x"}),
     ("tag.remove", {"id_tag": "ghost"}), ("tx.show", {"id": 99})],
)
def test_unknown_station_tag_or_transaction_exits_3(
    store: Store, command: str, args: dict[str, Any]
) -> None:
    assert fails(store, command, **args) == 3


@pytest.mark.parametrize(
    "command, args",
    [("station.add", {}), ("station.add", {"id": "CP1", "registration": "maybe"}),
     ("station.add", {"id": "CP1", "connectors": "two"}),
     ("station.add", {"id": "CP1", "connectors": -1}),
     ("tag.add", {"id_tag": "X" * 21}), ("tag.add", {"id_tag": "T", "status": "Fine"}),
     ("tag.add", {"id_tag": "T", "expiry": "next week"}),
     ("tag.add", {"id_tag": "T", "parent": "P" * 21}),
     ("tx.show", {"id": "abc"}), ("tx.show", {}), ("no.such-command", {})],
)
def test_bad_input_exits_2(store: Store, command: str, args: dict[str, Any]) -> None:
    assert fails(store, command, **args) == 2


def test_tag_add_normalises_status_and_expiry(store: Store) -> None:
    tag = admin(store, "tag.add", id_tag="AbC", status="blocked",
                expiry="2030-01-01T02:00:00+02:00", parent="Fleet")
    assert (tag["id_tag"], tag["status"], tag["expiry"], tag["parent"]) == (
        "AbC", "Blocked", "2030-01-01T00:00:00.000Z", "Fleet")
    assert [t["id_tag"] for t in admin(store, "tag.list")] == ["AbC"]
    assert admin(store, "tag.remove", id_tag="abc") == {"id_tag": "abc", "removed": True}
    assert admin(store, "tag.list") == []


def test_tx_list_and_show(store: Store) -> None:
    req = {"connectorId": 1, "idTag": "T", "meterStart": 10, "timestamp": "2026-11-25T09:00:00Z"}
    a, _ = store.start_transaction("CP1", req, "Accepted", NOW)
    b, _ = store.start_transaction("CP2", req, "Accepted", NOW)
    store.stop_transaction("CP1", {"transactionId": a, "meterStop": 30,
                                   "timestamp": "2026-11-25T09:10:00Z"}, NOW)
    store.record_meter_values("CP1", {"connectorId": 1, "transactionId": a, "meterValue": [
        {"timestamp": "2026-11-25T09:05:00Z", "sampledValue": [{"value": "20"}]}]}, NOW)
    assert [t["id"] for t in admin(store, "tx.list")] == [b, a]
    assert [t["id"] for t in admin(store, "tx.list", active="true")] == [b]
    assert [t["id"] for t in admin(store, "tx.list", station="CP1")] == [a]
    shown = admin(store, "tx.show", id=str(a))
    assert shown["energy_wh"] == 20 and shown["meter_values"][0]["sampled_value"][0]["value"] == "20"


def test_status_summarises_stations_and_transactions(store: Store) -> None:
    admin(store, "station.add", id="CP1")
    store.mark_connected("CP1", True, NOW)
    store.start_transaction("CP1", {"connectorId": 1, "idTag": "T", "meterStart": 0,
                                     "timestamp": "2026-11-25T09:00:00Z"}, "Accepted", NOW)
    assert admin(store, "status") == {"stations_known": 1, "stations_connected": 1,
                                      "transactions_active": 1, "transactions_total": 1}
