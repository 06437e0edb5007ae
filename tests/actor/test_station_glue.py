"""The station host's glue carries out a machine's effects on a real Store, writes first."""

from __future__ import annotations

import json
from typing import Any

import pytest

from actors.host.station import Station
from actors.settings import Settings
from storage import Store

BOOT = {"chargePointVendor": "ACME", "chargePointModel": "One"}


class Recorder:
    def __init__(self) -> None:
        self.sent: list[tuple[Any, str]] = []
        self.closed: list[tuple[Any, int, str]] = []
        self.told: list[tuple[Any, Any]] = []

    def send(self, link: Any, text: str) -> None:
        self.sent.append((link, text))

    def close(self, link: Any, code: int, reason: str) -> None:
        self.closed.append((link, code, reason))

    def tell(self, address: Any, message: Any) -> None:
        self.told.append((address, message))

    def call_timeout(self, station_id: str, message_id: str, seconds: float) -> None:
        pass


class Link:
    peer = "127.0.0.1:1"


def test_a_boot_is_stored_and_answered(store: Store) -> None:
    out, link = Recorder(), Link()
    station = Station("CP1", settings=Settings(), store=store, effects=out)
    station.connected(link)
    station.on_message(link, json.dumps([2, "b1", "BootNotification", BOOT]), 0.0)
    assert store.get_station("CP1")["last_boot_status"] == "Accepted"
    assert json.loads(out.sent[-1][1])[:2] == [3, "b1"] and out.sent[-1][0] is link


def test_a_write_that_fails_is_undone_and_answered_internal_error(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    out, link = Recorder(), Link()
    station = Station("CP1", settings=Settings(), store=store, effects=out)
    station.connected(link)
    station.on_message(link, json.dumps([2, "b1", "BootNotification", BOOT]), 0.0)
    tx_before = store.list_transactions(station_id="CP1")

    def full_disk(*args: Any, **kwargs: Any) -> None:
        raise OSError("disk full")

    store.upsert_tag("TAG", status="Accepted")
    monkeypatch.setattr(store, "record_meter_values", full_disk)
    start = {"connectorId": 1, "idTag": "TAG", "meterStart": 0, "timestamp": "2026-12-04T08:59:00Z"}
    station.on_message(link, json.dumps([2, "s1", "StartTransaction", start]), 0.0)
    assert json.loads(out.sent[-1][1])[:2] == [3, "s1"]
    meter = {"connectorId": 1, "meterValue": [{"timestamp": "2026-12-04T09:00:00Z", "sampledValue": [{"value": "5"}]}]}
    station.on_message(link, json.dumps([2, "m1", "MeterValues", meter]), 0.0)
    assert json.loads(out.sent[-1][1])[:3] == [4, "m1", "InternalError"]
    assert len(store.list_transactions(station_id="CP1")) == len(tx_before) + 1  # the start stayed


def test_frames_of_a_replaced_connection_are_closed_not_answered(store: Store) -> None:
    out, old, new = Recorder(), Link(), Link()
    station = Station("CP1", settings=Settings(), store=store, effects=out)
    station.connected(old)
    station.connected(new)
    assert out.closed == [(old, 1000, "replaced by a new connection")]
    station.on_message(old, json.dumps([2, "b1", "BootNotification", BOOT]), 0.0)
    assert out.sent == []
    station.disconnected(old, "gone")
    assert store.get_station("CP1")["connected"]
