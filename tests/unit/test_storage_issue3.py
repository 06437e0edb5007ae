"""Store: reservations, local authorization lists, firmware/diagnostics history."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from actors.ocpp.local_list import entries_after, plan_updates
from storage import Store

NOW = datetime(2026, 11, 25, 10, 0, 0, 123456, tzinfo=timezone.utc)
LATER = NOW + timedelta(minutes=5)


def reserve(reservation_id: int, connector: int = 1, id_tag: str = "TAG1",
            expiry: str = "2026-11-25T12:00:00+02:00", **extra: Any) -> dict[str, Any]:
    return {"connectorId": connector, "expiryDate": expiry, "idTag": id_tag,
            "reservationId": reservation_id, **extra}


# -- reservation ids -------------------------------------------------------------


def allocate(store: Store) -> int:
    """A reservationId handed out as the ReserveNow prepare hook does: read, then recorded."""
    rid = store.next_reservation_id()
    store.record_reservation_request("CP9", reserve(rid), NOW)
    return rid


def test_allocated_reservation_ids_never_repeat(store: Store) -> None:
    ids = [allocate(store) for _ in range(50)]
    assert len(set(ids)) == 50 and all(i > 0 for i in ids)


def test_allocation_skips_past_an_explicit_id_and_survives_reopening(db_path: str) -> None:
    store = Store(db_path)
    first = allocate(store)
    store.record_reservation_request("CP1", reserve(first + 10), NOW)
    store.record_reservation_request("CP1", reserve(first + 5), NOW)
    store.close()
    store = Store(db_path)
    allocated = [allocate(store) for _ in range(20)]
    assert min(allocated) == first + 11
    assert len(set(allocated)) == 20
    store.close()


def test_the_next_id_is_handed_out_only_once_recorded(store: Store) -> None:
    rid = store.next_reservation_id()
    assert store.next_reservation_id() == rid  # reading hands nothing out
    store.record_reservation_request("CP1", reserve(rid), NOW)
    assert store.next_reservation_id() == rid + 1


# -- reservations ------------------------------------------------------------------


def test_reservation_request_is_stored_requested_with_normalised_expiry(store: Store) -> None:
    row = store.record_reservation_request(
        "CP1", reserve(7, connector=2, parentIdTag="GROUP"), NOW)
    assert row == {
        "id": 7, "station_id": "CP1", "connector_id": 2, "id_tag": "TAG1",
        "parent_id_tag": "GROUP", "expiry_date": "2026-11-25T10:00:00.000Z",
        "status": "Requested", "created_at": "2026-11-25T10:00:00.123Z",
        "updated_at": "2026-11-25T10:00:00.123Z", "transaction_id": None, "note": None,
    }
    assert store.get_reservation(7) == row
    assert store.get_reservation(8) is None


@pytest.mark.parametrize(
    "bad",
    [reserve(1, connector=-1), reserve(1, expiry="soon"), reserve(1, id_tag="X" * 21),
     reserve(1, parentIdTag=""), reserve("1"), reserve(2**31), reserve(True)],  # type: ignore[arg-type]
)
def test_invalid_reservation_request_raises_value_error(store: Store, bad: dict) -> None:
    with pytest.raises(ValueError):
        store.record_reservation_request("CP1", bad, NOW)


def test_reused_reservation_id_replaces_the_old_reservation(store: Store) -> None:
    store.record_reservation_request("CP1", reserve(3, connector=1), NOW)
    store.set_reservation_status(3, "Used", NOW, transaction_id=99, note="started")
    row = store.record_reservation_request("CP1", reserve(3, connector=2, id_tag="TAG2"), LATER)
    assert (row["status"], row["connector_id"], row["id_tag"]) == ("Requested", 2, "TAG2")
    assert (row["transaction_id"], row["note"]) == (None, None)
    assert row["created_at"] == "2026-11-25T10:05:00.123Z"
    assert len(store.list_reservations()) == 1


def test_reservation_id_active_on_another_station_is_refused(store: Store) -> None:
    store.record_reservation_request("CP1", reserve(3), NOW)
    store.set_reservation_status(3, "Accepted", NOW)
    with pytest.raises(ValueError):
        store.record_reservation_request("CP2", reserve(3), NOW)
    store.set_reservation_status(3, "Expired", NOW)
    assert store.record_reservation_request("CP2", reserve(3), NOW)["station_id"] == "CP2"


def test_set_reservation_status_keeps_unspecified_fields(store: Store) -> None:
    store.record_reservation_request("CP1", reserve(4), NOW)
    row = store.set_reservation_status(4, "Accepted", LATER, note="answered")
    assert row is not None
    assert (row["status"], row["note"], row["updated_at"]) == (
        "Accepted", "answered", "2026-11-25T10:05:00.123Z")
    row = store.set_reservation_status(4, "Used", LATER, transaction_id=12)
    assert row is not None
    assert (row["status"], row["note"], row["transaction_id"]) == ("Used", "answered", 12)
    assert store.set_reservation_status(404, "Accepted", NOW) is None
    with pytest.raises(ValueError):
        store.set_reservation_status(4, "Maybe", NOW)


def test_list_reservations_filters_by_station_and_activity(store: Store) -> None:
    for rid, station, status in [(1, "CP1", "Accepted"), (2, "CP1", "Rejected"),
                                 (3, "CP2", "Requested"), (4, "CP2", "Cancelled")]:
        store.record_reservation_request(station, reserve(rid), NOW + timedelta(seconds=rid))
        store.set_reservation_status(rid, status, NOW)
    assert [r["id"] for r in store.list_reservations()] == [4, 3, 2, 1]
    assert [r["id"] for r in store.list_reservations(station_id="CP1")] == [2, 1]
    assert [r["id"] for r in store.list_reservations(active_only=True)] == [3, 1]
    assert [r["id"] for r in store.list_reservations(station_id="CP2", active_only=True)] == [3]


def test_reservation_for_start_needs_accepted_station_and_connector(store: Store) -> None:
    store.record_reservation_request("CP1", reserve(1, connector=2), NOW)
    assert store.reservation_for_start("CP1", 2, 1) is None  # still Requested
    store.set_reservation_status(1, "Accepted", NOW)
    found = store.reservation_for_start("CP1", 2, 1)
    assert found is not None and found["id"] == 1
    assert store.reservation_for_start("CP1", 1, 1) is None
    assert store.reservation_for_start("CP2", 2, 1) is None
    assert store.reservation_for_start("CP1", 2, 2) is None
    store.set_reservation_status(1, "Used", NOW, transaction_id=5)
    assert store.reservation_for_start("CP1", 2, 1) is None


def test_reservation_of_connector_zero_is_used_on_any_connector(store: Store) -> None:
    store.record_reservation_request("CP1", reserve(9, connector=0), NOW)
    store.set_reservation_status(9, "Accepted", NOW)
    found = store.reservation_for_start("CP1", 3, 9)
    assert found is not None and found["connector_id"] == 0


def test_reservation_parent_for_a_group_member(store: Store) -> None:
    store.upsert_tag("MEMBER", parent="group1", now=NOW)
    store.upsert_tag("LONER", now=NOW)
    store.record_reservation_request(
        "CP1", reserve(1, parentIdTag="GROUP1", expiry="2026-11-25T12:00:00Z"), NOW)
    store.set_reservation_status(1, "Accepted", NOW)
    assert store.reservation_parent_for("member", NOW) == "GROUP1"
    assert store.reservation_parent_for("LONER", NOW) is None
    assert store.reservation_parent_for("UNKNOWN", NOW) is None
    past_expiry = datetime(2026, 11, 25, 12, 0, 0, tzinfo=timezone.utc)
    assert store.reservation_parent_for("MEMBER", past_expiry) is None
    store.set_reservation_status(1, "Used", NOW)
    assert store.reservation_parent_for("MEMBER", NOW) is None


# -- local list ----------------------------------------------------------------------


def test_local_list_state_of_a_new_station_is_version_zero_and_empty(store: Store) -> None:
    found = store.local_list_state("CP1")
    assert (found["version"], found["entries"], found["reported_version"],
            found["last_status"]) == (0, {}, None, None)


def test_accepted_update_becomes_what_the_station_holds(store: Store) -> None:
    entries = {"TAG1": {"status": "Accepted"}, "TAG2": {"status": "Blocked"}}
    store.record_local_list_version("CP1", 4, NOW)
    store.record_local_list_result("CP1", version=5, update_type="Full", entries_after=entries,
                                   status="Accepted", entry_count=2, now=LATER)
    found = store.local_list_state("CP1")
    assert (found["version"], found["entries"], found["reported_version"],
            found["last_status"]) == (5, entries, None, "Accepted")
    assert found["updated_at"] == "2026-11-25T10:05:00.123Z"


@pytest.mark.parametrize("status", ["Failed", "VersionMismatch", "NotSupported", "Error"])
def test_refused_update_only_records_history_and_status(store: Store, status: str) -> None:
    held = {"TAG1": {"status": "Accepted"}}
    store.record_local_list_result("CP1", version=1, update_type="Full", entries_after=held,
                                   status="Accepted", entry_count=1, now=NOW)
    store.record_local_list_result("CP1", version=2, update_type="Differential",
                                   entries_after={}, status=status, entry_count=1, now=LATER)
    found = store.local_list_state("CP1")
    assert (found["version"], found["entries"], found["last_status"]) == (1, held, status)
    assert [(h["version"], h["status"]) for h in store.local_list_history("CP1")] == [
        (2, status), (1, "Accepted")]


def test_refused_first_update_creates_state_at_version_zero(store: Store) -> None:
    store.record_local_list_result("CP1", version=1, update_type="Full", entries_after={},
                                   status="NotSupported", entry_count=0, now=NOW)
    found = store.local_list_state("CP1")
    assert (found["version"], found["entries"], found["last_status"]) == (0, {}, "NotSupported")


@pytest.mark.parametrize("kwargs", [{"update_type": "Partial"}, {"status": "Rejected"}])
def test_local_list_result_with_unknown_values_raises(store: Store, kwargs: dict) -> None:
    args: dict[str, Any] = {"version": 1, "update_type": "Full", "entries_after": {},
                            "status": "Accepted", "entry_count": 0, "now": NOW, **kwargs}
    with pytest.raises(ValueError):
        store.record_local_list_result("CP1", **args)


@pytest.mark.parametrize("reported", [-1, 0, 3])
def test_reported_local_list_version_is_kept_beside_the_believed_one(
    store: Store, reported: int
) -> None:
    store.record_local_list_version("CP1", reported, NOW)
    found = store.local_list_state("CP1")
    assert (found["version"], found["reported_version"]) == (0, reported)
    assert found["reported_at"] == "2026-11-25T10:00:00.123Z"


def test_local_list_round_trip_with_the_planner(store: Store) -> None:
    store.upsert_tag("TAG1", now=NOW)
    store.upsert_tag("TAG2", now=NOW)

    def send(update_type: str, status: str = "Accepted") -> list[int]:
        st = store.local_list_state("CP1")
        updates = plan_updates(store.list_tags(), st, update_type=update_type, now=NOW)
        entries = st["entries"]
        for u in updates:
            entries = entries_after(entries, u)
            store.record_local_list_result(
                "CP1", version=u.version, update_type=u.update_type, status=status,
                entries_after=entries, entry_count=len(u.entries), now=NOW)
        return [u.version for u in updates]

    assert send("Full") == [1]
    store.upsert_tag("TAG3", now=NOW)
    assert send("Differential", status="Failed") == [2]
    st = store.local_list_state("CP1")
    assert plan_updates(store.list_tags(), st, update_type="Differential",
                        now=NOW)[0].update_type == "Full"  # §5.15: retry with Full
    assert send("Differential") == [2]
    assert set(store.local_list_state("CP1")["entries"]) == {"TAG1", "TAG2", "TAG3"}
    store.record_local_list_version("CP1", 0, NOW)  # the station lost its list
    assert plan_updates(store.list_tags(), store.local_list_state("CP1"),
                        update_type="Differential", now=NOW)[0].version == 3


# -- firmware and diagnostics ------------------------------------------------------------


def test_station_events_are_listed_newest_first_with_detail(store: Store) -> None:
    store.record_station_event("CP1", "firmware-request", "Sent", NOW,
                               {"location": "ftp://x/fw.bin"})
    store.record_station_event("CP1", "firmware", "Downloading", LATER)
    store.record_station_event("CP2", "diagnostics", "Uploading", LATER)
    events = store.station_events("CP1")
    assert [(e["kind"], e["status"]) for e in events] == [
        ("firmware", "Downloading"), ("firmware-request", "Sent")]
    assert events[1]["detail"] == {"location": "ftp://x/fw.bin"}
    assert events[0]["detail"] is None
    assert [e["status"] for e in store.station_events("CP1", kind="firmware-request")] == ["Sent"]
    assert len(store.station_events("CP1", limit=1)) == 1


@pytest.mark.parametrize("kind, status", [("boot", "Accepted"), ("firmware-request", "Installed")])
def test_unknown_event_kind_or_request_status_raises(store: Store, kind: str, status: str) -> None:
    with pytest.raises(ValueError):
        store.record_station_event("CP1", kind, status, NOW)


def test_firmware_update_stays_in_progress_across_a_boot_until_installed(store: Store) -> None:
    store.record_boot("CP1", {"chargePointVendor": "V", "chargePointModel": "M",
                              "firmwareVersion": "1.0"}, "Accepted", NOW)
    assert store.firmware_state("CP1")["update_in_progress"] is False
    store.record_station_event("CP1", "firmware-request", "Accepted", NOW)
    for status in ("Downloading", "Downloaded", "Installing"):
        store.record_station_event("CP1", "firmware", status, NOW)
    store.record_boot("CP1", {"chargePointVendor": "V", "chargePointModel": "M",
                              "firmwareVersion": "2.0"}, "Accepted", LATER)
    state = store.firmware_state("CP1")
    assert state["update_in_progress"] is True
    assert (state["firmware_version"], state["last_firmware_status"]) == ("2.0", "Installing")
    store.record_station_event("CP1", "firmware", "Installed", LATER)
    state = store.firmware_state("CP1")
    assert state["update_in_progress"] is False
    assert (state["last_firmware_status"], state["last_firmware_status_at"]) == (
        "Installed", "2026-11-25T10:05:00.123Z")
    assert state["last_firmware_request"]["status"] == "Accepted"


@pytest.mark.parametrize("final", ["DownloadFailed", "InstallationFailed"])
def test_failed_firmware_update_is_no_longer_in_progress(store: Store, final: str) -> None:
    store.upsert_station("CP1")
    store.record_station_event("CP1", "firmware-request", "Accepted", NOW)
    store.record_station_event("CP1", "firmware", "Idle", NOW)  # triggered, before retrieveDate
    assert store.firmware_state("CP1")["update_in_progress"] is True
    store.record_station_event("CP1", "firmware", final, NOW)
    assert store.firmware_state("CP1")["update_in_progress"] is False


def test_failed_request_starts_no_update_and_an_old_result_does_not_end_a_new_one(
    store: Store,
) -> None:
    store.upsert_station("CP1")
    store.record_station_event("CP1", "firmware-request", "Failed", NOW)
    assert store.firmware_state("CP1")["update_in_progress"] is False
    store.record_station_event("CP1", "firmware", "Installed", NOW)
    store.record_station_event("CP1", "firmware-request", "Accepted", LATER)
    assert store.firmware_state("CP1")["update_in_progress"] is True


def test_diagnostics_upload_state(store: Store) -> None:
    store.upsert_station("CP1")
    store.record_station_event("CP1", "diagnostics-request", "Accepted", NOW,
                               {"fileName": "diag.zip"})
    store.record_station_event("CP1", "diagnostics", "Uploading", NOW)
    state = store.firmware_state("CP1")
    assert state["upload_in_progress"] is True
    assert state["last_diagnostics_status"] == "Uploading"
    assert state["last_diagnostics_request"]["detail"] == {"fileName": "diag.zip"}
    store.record_station_event("CP1", "diagnostics", "UploadFailed", LATER)
    state = store.firmware_state("CP1")
    assert state["upload_in_progress"] is False
    assert (state["last_diagnostics_status"], state["last_diagnostics_status_at"]) == (
        "UploadFailed", "2026-11-25T10:05:00.123Z")


def test_firmware_state_of_an_unknown_station_is_empty(store: Store) -> None:
    state = store.firmware_state("nobody")
    assert state["firmware_version"] is None
    assert state["update_in_progress"] is False and state["upload_in_progress"] is False
