"""Store: schema, stations, tags, transactions, meter values, configuration memory."""

from __future__ import annotations

import multiprocessing
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from storage import Store, iso, parse_time
from storage.schema import MIGRATIONS, migrate

NOW = datetime(2026, 11, 25, 10, 0, 0, 123456, tzinfo=timezone.utc)


def start(connector: int = 1, id_tag: str = "TAG1", meter: int = 100,
          ts: str = "2026-11-25T09:00:00Z", **extra: object) -> dict:
    return {"connectorId": connector, "idTag": id_tag, "meterStart": meter, "timestamp": ts,
            **extra}


def stop(tx_id: int, meter: int = 1100, ts: str = "2026-11-25T09:30:00Z", **extra: object) -> dict:
    return {"transactionId": tx_id, "meterStop": meter, "timestamp": ts, **extra}


# -- time format -------------------------------------------------------------


def test_iso_formats_utc_with_milliseconds_and_z() -> None:
    assert iso(NOW) == "2026-11-25T10:00:00.123Z"
    assert iso(NOW.astimezone(timezone(timedelta(hours=2)))) == "2026-11-25T10:00:00.123Z"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2026-11-25T10:00:00Z", "2026-11-25T10:00:00.000Z"),
        ("2026-11-25T12:00:00.5+02:00", "2026-11-25T10:00:00.500Z"),
        ("2026-11-25T10:00:00.123456789Z", "2026-11-25T10:00:00.123Z"),
        ("2026-11-25T10:00:00", "2026-11-25T10:00:00.000Z"),
        ("2026-11-25T05:30:00-04:30", "2026-11-25T10:00:00.000Z"),
    ],
)
def test_parse_time_accepts_offsets_fractions_and_z(text: str, expected: str) -> None:
    parsed = parse_time(text)
    assert parsed.tzinfo is not None and parsed.utcoffset() == timedelta(0)
    assert iso(parsed) == expected


@pytest.mark.parametrize("garbage", ["", "yesterday", "2026-13-01T00:00:00Z", "12:00"])
def test_parse_time_rejects_garbage_with_value_error(garbage: str) -> None:
    with pytest.raises(ValueError):
        parse_time(garbage)


@given(st.datetimes(timezones=st.just(timezone.utc)))
def test_iso_output_parses_back_to_the_same_millisecond(dt: datetime) -> None:
    assert iso(parse_time(iso(dt))) == iso(dt)
    assert abs(parse_time(iso(dt)) - dt) < timedelta(milliseconds=1)


# -- schema ---------------------------------------------------------------------


def test_store_uses_wal_and_applies_each_migration_once(db_path: str) -> None:
    Store(db_path).close()
    store = Store(db_path)
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    names = [r[0] for r in store.conn.execute("SELECT name FROM _migrations ORDER BY name")]
    assert names == [m.__name__ for m in MIGRATIONS]
    assert migrate(store.db) == []
    store.close()


def test_failing_migration_rolls_back_and_stays_pending(store: Store) -> None:
    def m900_broken(db: object) -> None:
        store.conn.execute("CREATE TABLE half_done (x)")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        migrate(store.db, (*MIGRATIONS, m900_broken))
    assert "half_done" not in store.db.table_names()
    assert store.row("SELECT name FROM _migrations WHERE name = 'm900_broken'") is None


def _open_and_start(args: tuple[str, int]) -> list[int]:
    path, connector = args
    s = Store(path)
    ids = [s.start_transaction("CP", start(connector, meter=i), "Accepted", NOW)[0]
           for i in range(25)]
    s.close()
    return ids


def test_processes_opening_one_file_at_once_migrate_once_and_get_distinct_ids(
    db_path: str,
) -> None:
    with multiprocessing.get_context("fork").Pool(4) as pool:
        results = pool.map(_open_and_start, [(db_path, c) for c in range(1, 9)])
    ids = [i for r in results for i in r]
    assert len(set(ids)) == len(ids) == 200
    assert all(i > 0 for i in ids)
    store = Store(db_path)
    assert store.row("SELECT COUNT(*) AS n FROM _migrations") == {"n": len(MIGRATIONS)}
    store.close()


# -- stations ---------------------------------------------------------------------


def test_password_is_hashed_and_plaintext_never_reaches_the_file(db_path: str) -> None:
    store = Store(db_path)
    store.upsert_station("CP1", password="plain-Secret-4711")
    store.set_password("CP1", "other-Secret-0815")
    store.close()
    for f in Path(db_path).parent.iterdir():
        data = f.read_bytes()
        assert b"plain-Secret-4711" not in data
        assert b"other-Secret-0815" not in data


def test_check_password_is_true_only_for_a_set_and_matching_password(store: Store) -> None:
    store.upsert_station("CP1", password="s3cret")
    store.upsert_station("CP2")
    assert store.check_password("CP1", "s3cret")
    assert not store.check_password("CP1", "S3cret")
    assert not store.check_password("CP1", None)
    assert not store.check_password("CP2", None)
    assert not store.check_password("nope", "s3cret")
    assert store.station_requires_password("CP1")
    assert not store.station_requires_password("CP2")
    assert not store.station_requires_password("nope")


def test_set_password_on_unknown_station_returns_false(store: Store) -> None:
    assert store.set_password("ghost", "pw") is False


def test_station_rows_never_contain_password_material(store: Store) -> None:
    store.upsert_station("CP1", password="pw")
    for row in [store.get_station("CP1"), *store.list_stations()]:
        assert row is not None
        assert not {"password_hash", "password_salt"} & row.keys()
        assert row["has_password"] is True


def test_upsert_station_keeps_unspecified_fields(store: Store) -> None:
    store.upsert_station("CP1", password="pw", registration="pending", connectors=2)
    row = store.upsert_station("CP1", connectors=3)
    assert row["registration"] == "pending" and row["connectors"] == 3
    assert store.check_password("CP1", "pw")


def test_upsert_station_rejects_an_unknown_registration(store: Store) -> None:
    with pytest.raises(ValueError):
        store.upsert_station("CP1", registration="maybe")


def test_list_stations_is_sorted_by_id(store: Store) -> None:
    for sid in ("b", "C", "a"):
        store.upsert_station(sid)
    assert [s["id"] for s in store.list_stations()] == ["C", "a", "b"]


def test_record_boot_stores_fields_and_ever_accepted_sticks(store: Store) -> None:
    boot = {"chargePointVendor": "V", "chargePointModel": "M", "firmwareVersion": "1.2",
            "meterSerialNumber": "MS"}
    store.record_boot("CP1", boot, "Accepted", NOW)
    store.record_boot("CP1", boot, "Pending", NOW)
    row = store.get_station("CP1")
    assert row is not None
    assert (row["vendor"], row["model"], row["firmware_version"], row["meter_serial"]) == (
        "V", "M", "1.2", "MS")
    assert row["ever_accepted"] is True
    assert row["last_boot_status"] == "Pending"
    assert row["last_boot_at"] == "2026-11-25T10:00:00.123Z"


def test_a_replaced_connection_ending_late_leaves_the_newer_one_connected(store: Store) -> None:
    old, new = NOW, NOW + timedelta(seconds=1)
    store.mark_connected("CP1", True, old)
    store.mark_connected("CP1", True, new)  # a newer connection, on another host
    store.mark_connected("CP1", False, new + timedelta(seconds=1), opened=old)  # the old one ends after it
    assert store.get_station("CP1")["connected"] is True  # type: ignore[index]
    store.mark_connected("CP1", False, new + timedelta(seconds=2), opened=new)
    assert store.get_station("CP1")["connected"] is False  # type: ignore[index]


def test_presence_is_tracked_and_summarised(store: Store) -> None:
    store.upsert_station("CP1")
    store.upsert_station("CP2")
    store.mark_connected("CP1", True, NOW)
    store.mark_connected("CP2", True, NOW)
    store.mark_connected("CP2", False, NOW)
    store.touch("CP1", NOW + timedelta(seconds=5))
    assert store.get_station("CP1")["last_seen"] == "2026-11-25T10:00:05.123Z"  # type: ignore[index]
    assert store.summary()["stations_connected"] == 1
    store.mark_all_disconnected()
    assert store.summary() == {"stations_known": 2, "stations_connected": 0,
                               "transactions_active": 0, "transactions_total": 0}


def test_remove_station_forgets_it_but_keeps_transactions(store: Store) -> None:
    store.upsert_station("CP1")
    tx, _ = store.start_transaction("CP1", start(), "Accepted", NOW)
    assert store.remove_station("CP1") is True
    assert store.get_station("CP1") is None
    assert store.remove_station("CP1") is False
    assert store.get_transaction(tx) is not None


# -- connectors ---------------------------------------------------------------------


def test_record_status_keeps_the_latest_per_connector_and_the_whole_history(store: Store) -> None:
    for status in ("Available", "Preparing", "Charging"):
        store.record_status("CP1", {"connectorId": 1, "status": status, "errorCode": "NoError",
                                    "timestamp": "2026-11-25T11:00:00+01:00"}, NOW)
    store.record_status("CP1", {"connectorId": 0, "status": "Available",
                                "errorCode": "NoError"}, NOW)
    rows = store.connector_statuses("CP1")
    assert [(r["connector_id"], r["status"]) for r in rows] == [(0, "Available"), (1, "Charging")]
    assert rows[1]["timestamp"] == "2026-11-25T10:00:00.000Z"
    assert len(store.status_history("CP1")) == 4


# -- tags ------------------------------------------------------------------------------


def test_tags_are_found_case_insensitively_and_keep_their_spelling(store: Store) -> None:
    store.upsert_tag("AbCdEf", status="Blocked", parent="Group1")
    tag = store.get_tag("abcdef")
    assert tag is not None and tag["id_tag"] == "AbCdEf" and tag["status"] == "Blocked"
    store.upsert_tag("ABCDEF")
    assert len(store.list_tags()) == 1
    assert store.remove_tag("aBcDeF") is True
    assert store.get_tag("AbCdEf") is None
    assert store.remove_tag("AbCdEf") is False


def test_tag_expiry_is_stored_normalised(store: Store) -> None:
    tag = store.upsert_tag("T", expiry="2030-01-01T01:00:00+01:00")
    assert tag["expiry"] == "2030-01-01T00:00:00.000Z"


@pytest.mark.parametrize(
    "kwargs",
    [{"id_tag": "X" * 21}, {"id_tag": "T", "status": "accepted"},
     {"id_tag": "T", "expiry": "soon"}, {"id_tag": "T", "parent": "P" * 21}],
)
def test_upsert_tag_rejects_bad_input(store: Store, kwargs: dict) -> None:
    with pytest.raises(ValueError):
        store.upsert_tag(**kwargs)


# -- transactions -------------------------------------------------------------------


def test_transaction_ids_are_positive_increasing_and_survive_reopen_and_deletes(
    db_path: str,
) -> None:
    store = Store(db_path)
    first = [store.start_transaction("CP", start(c), "Accepted", NOW)[0] for c in (1, 2, 3)]
    store.conn.execute("DELETE FROM transactions")
    store.close()
    store = Store(db_path)
    later, _ = store.start_transaction("CP", start(1), "Accepted", NOW)
    store.close()
    assert first[0] > 0 and first == sorted(first) and len(set(first)) == 3
    assert later > max(first)


def test_retried_start_returns_the_same_id(store: Store) -> None:
    tx, retry = store.start_transaction("CP", start(), "Accepted", NOW)
    again, retry_again = store.start_transaction(
        "CP", start(id_tag="tag1", ts="2026-11-25T10:00:00.000+01:00"), "Accepted", NOW)
    assert (retry, retry_again) == (False, True)
    assert again == tx
    assert store.summary()["transactions_total"] == 1


def test_new_start_on_a_busy_connector_abandons_the_open_transaction(store: Store) -> None:
    old, _ = store.start_transaction("CP", start(meter=1), "Accepted", NOW)
    other, _ = store.start_transaction("CP", start(connector=2), "Accepted", NOW)
    new, retry = store.start_transaction("CP", start(meter=500), "Accepted", NOW)
    assert not retry and new != old
    abandoned = store.get_transaction(old)
    assert abandoned is not None
    assert abandoned["abandoned"] is True and abandoned["active"] is False
    assert abandoned["stopped_at"] == iso(NOW) and abandoned["stop_reason"] is None
    assert store.get_transaction(other)["active"] is True  # type: ignore[index]
    assert {t["id"] for t in store.list_transactions(active=True)} == {other, new}


def test_stop_stores_energy_and_defaults_the_reason_to_local(store: Store) -> None:
    tx, _ = store.start_transaction("CP", start(meter=100), "Accepted", NOW)
    data = [{"timestamp": "2026-11-25T09:30:00Z",
             "sampledValue": [{"value": "1100", "context": "Transaction.End"}]}]
    assert store.stop_transaction("CP", stop(tx, idTag="TAG1", transactionData=data), NOW)
    row = store.get_transaction(tx)
    assert row is not None
    assert (row["meter_stop"], row["energy_wh"], row["stop_reason"]) == (1100, 1000, "Local")
    assert row["stop_id_tag"] == "TAG1" and row["transaction_data"] == data
    assert row["stop_timestamp"] == "2026-11-25T09:30:00.000Z" and row["active"] is False


def test_repeated_identical_stop_is_idempotent(store: Store) -> None:
    tx, _ = store.start_transaction("CP", start(), "Accepted", NOW)
    assert store.stop_transaction("CP", stop(tx, reason="EVDisconnected"), NOW)
    assert store.stop_transaction("CP", stop(tx, reason="EVDisconnected"),
                                  NOW + timedelta(seconds=9))
    assert store.get_transaction(tx)["stopped_at"] == iso(NOW)  # type: ignore[index]
    assert store.unmatched_stops() == []


@pytest.mark.parametrize("tx_id", [-1, 999])
def test_stop_of_unknown_transaction_is_kept_in_unmatched_stops(store: Store, tx_id: int) -> None:
    assert store.stop_transaction("CP", stop(tx_id, reason="PowerLoss"), NOW) is False
    [kept] = store.unmatched_stops()
    assert kept["transaction_id"] == tx_id and kept["stop_reason"] == "PowerLoss"
    assert kept["payload"]["meterStop"] == 1100


def test_stop_for_another_stations_transaction_is_not_applied(store: Store) -> None:
    tx, _ = store.start_transaction("CP-A", start(), "Accepted", NOW)
    assert store.stop_transaction("CP-B", stop(tx), NOW) is False
    assert store.get_transaction(tx)["active"] is True  # type: ignore[index]
    assert store.unmatched_stops(station_id="CP-B")[0]["transaction_id"] == tx


def test_a_different_second_stop_is_kept_without_overwriting(store: Store) -> None:
    tx, _ = store.start_transaction("CP", start(), "Accepted", NOW)
    store.stop_transaction("CP", stop(tx, meter=1100), NOW)
    assert store.stop_transaction("CP", stop(tx, meter=2000), NOW) is True
    assert store.get_transaction(tx)["meter_stop"] == 1100  # type: ignore[index]
    assert store.unmatched_stops()[0]["meter_stop"] == 2000


def test_a_late_stop_completes_an_abandoned_transaction(store: Store) -> None:
    old, _ = store.start_transaction("CP", start(meter=0), "Accepted", NOW)
    store.start_transaction("CP", start(meter=700), "Accepted", NOW)
    assert store.stop_transaction("CP", stop(old, meter=600), NOW)
    row = store.get_transaction(old)
    assert row is not None and row["energy_wh"] == 600 and row["abandoned"] is True


def test_active_transaction_for_tag_is_case_insensitive(store: Store) -> None:
    tx, _ = store.start_transaction("CP", start(id_tag="MixedCase"), "Accepted", NOW)
    found = store.active_transaction_for_tag("MIXEDCASE")
    assert found is not None and found["id"] == tx
    store.stop_transaction("CP", stop(tx), NOW)
    assert store.active_transaction_for_tag("mixedcase") is None


def test_list_transactions_filters_by_station_and_activity_newest_first(store: Store) -> None:
    a, _ = store.start_transaction("A", start(), "Accepted", NOW)
    b, _ = store.start_transaction("B", start(), "Accepted", NOW)
    c, _ = store.start_transaction("A", start(connector=2), "Accepted", NOW)
    store.stop_transaction("A", stop(a), NOW)
    assert [t["id"] for t in store.list_transactions()] == [c, b, a]
    assert [t["id"] for t in store.list_transactions(station_id="A", active=True)] == [c]
    assert [t["id"] for t in store.list_transactions(limit=1)] == [c]


# -- meter values, configuration --------------------------------------------------------


def test_meter_values_are_stored_one_row_per_element(store: Store) -> None:
    tx, _ = store.start_transaction("CP", start(), "Accepted", NOW)
    store.record_meter_values("CP", {"connectorId": 1, "transactionId": tx, "meterValue": [
        {"timestamp": "2026-11-25T09:01:00Z", "sampledValue": [{"value": "150"}]},
        {"timestamp": "2026-11-25T09:02:00Z", "sampledValue": [{"value": "200"}]},
    ]}, NOW)
    store.record_meter_values("CP", {"connectorId": 0, "meterValue": [
        {"timestamp": "2026-11-25T09:02:00Z", "sampledValue": [{"value": "9"}]}]}, NOW)
    values = store.meter_values_for(tx)
    assert [v["sampled_value"][0]["value"] for v in values] == ["150", "200"]
    assert store.row("SELECT COUNT(*) AS n FROM meter_values") == {"n": 3}


def test_configuration_memory_follows_get_and_change_configuration(store: Store) -> None:
    store.record_configuration("CP", [
        {"key": "HeartbeatInterval", "value": "300", "readonly": False},
        {"key": "NumberOfConnectors", "value": "2", "readonly": True},
    ], ["Foo"], NOW)
    store.set_configuration_value("CP", "HeartbeatInterval", "60", NOW)
    assert [(c["key"], c["value"], c["readonly"]) for c in store.get_configuration("CP")] == [
        ("HeartbeatInterval", "60", False), ("NumberOfConnectors", "2", True)]
    assert store.unknown_configuration_keys("CP") == ["Foo"]
    store.record_configuration("CP", [{"key": "Foo", "readonly": False}], ["NumberOfConnectors"],
                               NOW)
    assert [c["key"] for c in store.get_configuration("CP")] == ["Foo", "HeartbeatInterval"]
    assert store.unknown_configuration_keys("CP") == ["NumberOfConnectors"]


def test_writes_from_a_second_connection_are_visible(db_path: str) -> None:
    writer, reader = Store(db_path), Store(db_path)
    writer.upsert_tag("T1")
    assert reader.get_tag("t1") is not None
    writer.close()
    reader.close()
    assert sqlite3.connect(db_path).execute("SELECT COUNT(*) FROM tags").fetchone() == (1,)


# -- remote start profiles ------------------------------------------------------------


def _take(store: Store, station_id: str, connector_id: int, id_tag: str) -> dict | None:
    """As the StartTransaction bookkeeping does: the waiting profile, then its row dropped."""
    found = store.remote_start_profile(station_id, connector_id, id_tag)
    if found is None:
        return None
    store.drop_remote_start_profile(found[0])
    return found[1]


def test_a_remote_start_profile_is_taken_once_by_the_matching_start(store: Store) -> None:
    now = datetime(2026, 11, 25, 10, 0, tzinfo=timezone.utc)
    store.add_remote_start_profile("CP1", 1, "Tag-A", {"chargingProfileId": 1}, now)
    store.add_remote_start_profile("CP1", None, "TAG-B", {"chargingProfileId": 2}, now)
    store.add_remote_start_profile("CP1", 1, "tag-a", {"chargingProfileId": 3}, now)
    assert _take(store, "CP2", 1, "TAG-A") is None  # another station
    assert _take(store, "CP1", 2, "TAG-A") is None  # another connector
    assert _take(store, "CP1", 1, "TAG-A") == {"chargingProfileId": 1}  # oldest first, any case
    assert _take(store, "CP1", 1, "TAG-A") == {"chargingProfileId": 3}
    assert _take(store, "CP1", 1, "TAG-A") is None
    assert _take(store, "CP1", 2, "tag-b") == {"chargingProfileId": 2}  # no connector: any


def test_pruning_deletes_the_oldest_meter_values_in_batches_and_stops_at_recent_ones(store: Store) -> None:
    from datetime import datetime, timedelta, timezone

    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    for day in range(10):
        store.record_meter_values("CP", {"connectorId": 1, "meterValue": [
            {"timestamp": "2026-01-01T00:00:00Z", "sampledValue": [{"value": str(day)}]}] * 3}, start + timedelta(days=day))
    cutoff = start + timedelta(days=6)  # days 0..5 are older: 18 rows

    assert store.prune_meter_values(cutoff, batch=10) == 10
    assert store.prune_meter_values(cutoff, batch=10) == 8
    assert store.prune_meter_values(cutoff, batch=10) == 0
    left = [r[0] for r in store.conn.execute("SELECT received_at FROM meter_values ORDER BY id")]
    assert len(left) == 12 and min(left) >= "2026-01-07"
