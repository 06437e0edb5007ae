"""History tables (storage/history.py): the event stream's order, the frame ring's bound,
the audit and authorization logs, and pruning by age."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from actors.scheduler import history_retention
from actors.settings import Settings
from storage import Store

T0 = datetime(2026, 12, 7, 3, 0, 0, tzinfo=timezone.utc)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(str(tmp_path / "history.db"))
    yield s
    s.close()


def ring(store: Store, station: str, frames: list[tuple[str, str]], per_station: int) -> None:
    """Log ``frames`` as the host writer does: seq from storage, slot = seq % per_station."""
    seq = store.frame_seq(station)
    rows = []
    for direction, text in frames:
        seq += 1
        rows.append((station, seq % per_station, seq, "2026-12-07T03:00:00.000Z", direction, text))
    store.log_frames(rows)


def test_events_come_back_in_id_order_after_a_given_id_with_station_and_at() -> None:
    s = Store(":memory:")
    s.record_event("station.connected", "CP1", T0, {"peer": "1.2.3.4"})
    s.record_event("connector.status", "CP1", T0, {"connector": 1, "status": "Available"})
    s.record_event("station.disconnected", "CP1", T0, {"reason": "bye"})
    everything = s.events_after(0)
    assert [kind for _, kind, _ in everything] == ["station.connected", "connector.status", "station.disconnected"]
    first_id = everything[0][0]
    assert [i for i, _, _ in s.events_after(first_id)] == [first_id + 1, first_id + 2]
    assert json.loads(everything[1][2]) == {"station": "CP1", "at": "2026-12-07T03:00:00.000Z",
                                            "connector": 1, "status": "Available"}
    assert s.last_event_id() == first_id + 2


def test_the_frame_ring_keeps_only_the_last_n_frames_of_each_station(store: Store) -> None:
    for n in range(25):
        ring(store, "CP1", [("in", f"[2,\"{n}\",\"Heartbeat\",{{}}]"), ("out", f"[3,\"{n}\",{{}}]")], per_station=10)
    ring(store, "CP2", [("in", "other")], per_station=10)
    rows = store.frame_log("CP1", limit=100)
    assert len(rows) == 10  # 50 frames logged, the ring holds 10
    assert [r["seq"] for r in rows] == list(range(41, 51))  # the newest, oldest first
    assert rows[-1] == {"seq": 50, "at": "2026-12-07T03:00:00.000Z", "direction": "out", "frame": '[3,"24",{}]'}
    assert [r["frame"] for r in store.frame_log("CP2")] == ["other"]
    assert store.row("SELECT count(*) AS n FROM frame_log")["n"] == 11  # type: ignore[index]


@pytest.mark.parametrize("new_size", [4, 16])
def test_a_changed_ring_size_keeps_each_stations_newest_frames_in_the_new_slots(store: Store, new_size: int) -> None:
    for n in range(10):
        ring(store, "CP1", [("in", str(n))], per_station=10)
    ring(store, "CP2", [("in", "x")], per_station=10)
    dropped = store.trim_frame_log(new_size)
    assert dropped == (6 if new_size == 4 else 0)
    assert store.trim_frame_log(new_size) == 0  # fitted once
    ring(store, "CP1", [("in", "10"), ("in", "11")], per_station=new_size)
    expected = [str(n) for n in range(12)][-new_size:]
    assert [r["frame"] for r in store.frame_log("CP1", limit=100)] == expected
    assert [r["frame"] for r in store.frame_log("CP2")] == ["x"]


def test_a_ring_size_of_zero_drops_every_frame(store: Store) -> None:
    ring(store, "CP1", [("in", "a"), ("out", "b")], per_station=10)
    assert store.trim_frame_log(0) == 2
    assert store.frame_log("CP1") == []


def test_the_audit_log_lists_the_newest_actions_first_and_by_station(store: Store) -> None:
    store.record_audit("local:ops", "Reset", "CP1", {"type": "Soft"}, T0, "result", {"status": "Accepted"})
    store.record_audit("dashboard", "UnlockConnector", "CP2", {"connectorId": 1}, T0, "timeout",
                       {"code": "Timeout"})
    everything = store.audit_log()
    assert [r["command"] for r in everything] == ["UnlockConnector", "Reset"]
    (reset,) = store.audit_log(station_id="CP1")
    assert (reset["who"], reset["payload"], reset["outcome"], reset["answer"]) == (
        "local:ops", {"type": "Soft"}, "result", {"status": "Accepted"})


def test_authorization_decisions_are_found_by_tag_whatever_its_case(store: Store) -> None:
    store.record_authorization("Tag-1", "CP1", None, "Authorize", "Invalid", "unknown", T0)
    store.record_authorization("TAG-1", "CP2", 2, "StartTransaction", "Blocked", "blocked", T0 + timedelta(seconds=1))
    store.record_authorization("other", "CP2", 2, "Authorize", "Accepted", "accepted", T0)
    rows = store.authorization_decisions("tag-1")
    assert [(r["station_id"], r["connector_id"], r["status"], r["reason"]) for r in rows] == [
        ("CP2", 2, "Blocked", "blocked"), ("CP1", None, "Invalid", "unknown")]


@pytest.mark.parametrize("table", ["events", "audit_log", "authorization_log", "data_transfers"])
def test_pruning_deletes_only_rows_older_than_the_cutoff_in_batches(store: Store, table: str) -> None:
    def write(at: datetime) -> None:
        if table == "events":
            store.record_event("station.connected", "CP1", at, {})
        elif table == "audit_log":
            store.record_audit("x", "Reset", "CP1", {}, at, "result")
        elif table == "authorization_log":
            store.record_authorization("T", "CP1", None, "Authorize", "Accepted", "accepted", at)
        else:
            store.record_data_transfer("CP1", "ACME", "m", "d", at)

    for hours in range(30):
        write(T0 + timedelta(hours=hours))
    cutoff = T0 + timedelta(hours=24)
    assert store.prune_history(table, cutoff, batch=10) == 10
    assert store.prune_history(table, cutoff, batch=10) == 10
    assert store.prune_history(table, cutoff, batch=10) == 4
    assert store.prune_history(table, cutoff, batch=10) == 0
    assert store.row(f"SELECT count(*) AS n FROM {table}")["n"] == 6  # type: ignore[index]  # noqa: S608


def test_history_retention_follows_the_settings_and_zero_keeps_for_ever() -> None:
    kept = history_retention(Settings(event_retention_hours=2, audit_retention_days=0))
    assert kept["events"] == timedelta(hours=2)
    assert "audit_log" not in kept
    assert kept["authorization_log"] == timedelta(days=30)
    assert kept["data_transfers"] == timedelta(days=30)


def test_a_local_lists_decisions_are_stored_at_once(store: Store) -> None:
    store.record_authorizations([("A1", "CP1", None, "SendLocalList", "Accepted", "accepted", T0),
                                 ("B1", "CP1", None, "SendLocalList", "Blocked", "blocked", T0)])
    (row,) = store.authorization_decisions("b1")
    assert (row["action"], row["status"], row["reason"], row["at"]) == (
        "SendLocalList", "Blocked", "blocked", "2026-12-07T03:00:00.000Z")
