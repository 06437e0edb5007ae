"""Planning SendLocalList updates (pure)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.ocpp.authorization import id_tag_info
from actors.ocpp.local_list import (
    LocalListUpdate,
    differential_is_safe,
    entries_after,
    payload,
    plan_updates,
)
from actors.ocpp.ocppj import validate

NOW = datetime(2026, 11, 25, 10, 0, 0, tzinfo=timezone.utc)


def tag(id_tag: str, status: str = "Accepted", expiry: str | None = None,
        parent: str | None = None) -> dict[str, Any]:
    return {"id_tag": id_tag, "status": status, "expiry": expiry, "parent": parent,
            "updated_at": "2026-11-25T09:00:00.000Z"}


def state(version: int = 0, entries: dict | None = None, reported: int | None = None,
          last_status: str | None = None) -> dict[str, Any]:
    return {"version": version, "entries": entries or {}, "reported_version": reported,
            "last_status": last_status}


def accept(st_: dict[str, Any], updates: list[LocalListUpdate]) -> dict[str, Any]:
    """The state after the station Accepted every update."""
    entries = st_["entries"]
    for u in updates:
        entries = entries_after(entries, u)
    return state(updates[-1].version if updates else st_["version"], entries)


TAGS = [tag("TAG1"), tag("TAG2", parent="GROUP"),
        tag("TAG3", expiry="2027-01-01T00:00:00Z"), tag("OLD", expiry="2020-01-01T00:00:00Z")]


# -- Full ------------------------------------------------------------------


def test_full_update_carries_id_tag_info_for_every_tag() -> None:
    [update] = plan_updates(TAGS, state(), update_type="Full", now=NOW)
    assert update.update_type == "Full"
    assert update.version == 1
    assert {e["idTag"]: e["idTagInfo"] for e in update.entries} == {
        t["id_tag"]: id_tag_info(t, NOW) for t in TAGS
    }
    assert {e["idTag"]: e["idTagInfo"]["status"] for e in update.entries}["OLD"] == "Expired"
    validate("SendLocalList", payload(update))


def test_full_update_with_only_sends_just_those_known_tags() -> None:
    [update] = plan_updates(TAGS, state(), update_type="Full", now=NOW,
                            only=["tag2", "TAG1", "nobody"])
    assert [e["idTag"] for e in update.entries] == ["TAG1", "TAG2"]
    assert all("idTagInfo" in e for e in update.entries)


def test_empty_full_update_clears_the_list() -> None:
    [update] = plan_updates([], state(3, {"TAG1": {"status": "Accepted"}}),
                            update_type="Full", now=NOW)
    assert payload(update) == {"listVersion": 4, "updateType": "Full", "localAuthorizationList": []}
    assert entries_after({"TAG1": {"status": "Accepted"}}, update) == {}
    validate("SendLocalList", payload(update))


# -- Differential ------------------------------------------------------------


def test_differential_sends_exactly_the_added_changed_and_removed_tags() -> None:
    held = accept(state(), plan_updates(TAGS, state(), update_type="Full", now=NOW))
    assert held["version"] == 1

    added = [*TAGS, tag("NEW")]
    [update] = plan_updates(added, held, update_type="Differential", now=NOW)
    assert update.update_type == "Differential" and update.version == 2
    assert update.entries == [{"idTag": "NEW", "idTagInfo": {"status": "Accepted"}}]
    validate("SendLocalList", payload(update))
    held = accept(held, [update])

    blocked = [tag("TAG1", status="Blocked"), *added[1:]]
    [update] = plan_updates(blocked, held, update_type="Differential", now=NOW)
    assert update.version == 3
    assert update.entries == [{"idTag": "TAG1", "idTagInfo": {"status": "Blocked"}}]
    held = accept(held, [update])

    removed = [t for t in blocked if t["id_tag"] != "TAG2"]
    [update] = plan_updates(removed, held, update_type="Differential", now=NOW)
    assert update.version == 4
    assert update.entries == [{"idTag": "TAG2"}]
    validate("SendLocalList", payload(update))
    held = accept(held, [update])

    assert held["entries"] == {t["id_tag"]: id_tag_info(t, NOW) for t in removed}
    assert plan_updates(removed, held, update_type="Differential", now=NOW) == []


def test_differential_notices_a_tag_that_expired_since_it_was_sent() -> None:
    tags = [tag("TAG1", expiry="2026-11-25T11:00:00Z")]
    held = accept(state(), plan_updates(tags, state(), update_type="Full", now=NOW))
    later = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
    [update] = plan_updates(tags, held, update_type="Differential", now=later)
    assert update.entries[0]["idTagInfo"]["status"] == "Expired"


def test_differential_with_only_sends_those_tags_and_deletes_unknown_ones() -> None:
    held = accept(state(), plan_updates(TAGS, state(), update_type="Full", now=NOW))
    [update] = plan_updates([t for t in TAGS if t["id_tag"] != "TAG3"], held,
                            update_type="Differential", now=NOW, only=["tag1", "TAG3"])
    assert update.entries == [{"idTag": "TAG1", "idTagInfo": {"status": "Accepted"}},
                              {"idTag": "TAG3"}]
    assert set(accept(held, [update])["entries"]) == {"TAG1", "TAG2", "OLD"}


def test_differential_compares_id_tags_case_insensitively() -> None:
    held = state(1, {"tag1": {"status": "Accepted"}})
    assert plan_updates([tag("TAG1")], held, update_type="Differential", now=NOW) == []


@pytest.mark.parametrize(
    "unsafe",
    [state(2, {"TAG1": {"status": "Accepted"}}, reported=0),
     state(2, {"TAG1": {"status": "Accepted"}}, reported=-1),
     state(2, {"TAG1": {"status": "Accepted"}}, last_status="Failed"),
     state(2, {"TAG1": {"status": "Accepted"}}, last_status="VersionMismatch"),
     state(2, {"TAG1": {"status": "Accepted"}}, last_status="Error")],
)
def test_unsafe_differential_becomes_a_full_of_the_intended_list(unsafe: dict) -> None:
    assert not differential_is_safe(unsafe)
    [update] = plan_updates([tag("TAG1"), tag("TAG2")], unsafe, update_type="Differential",
                            now=NOW, only=["TAG2"])
    assert update.update_type == "Full"
    assert update.version == 3
    assert update.entries == [{"idTag": "TAG1", "idTagInfo": {"status": "Accepted"}},
                              {"idTag": "TAG2", "idTagInfo": {"status": "Accepted"}}]
    validate("SendLocalList", payload(update))


def test_unsafe_state_without_changes_still_resyncs_with_a_full() -> None:
    unsafe = state(2, {"TAG1": {"status": "Accepted"}}, reported=7)
    [update] = plan_updates([tag("TAG1")], unsafe, update_type="Differential", now=NOW)
    assert (update.update_type, update.version) == ("Full", 8)


def test_forced_differential_is_sent_even_when_unsafe() -> None:
    unsafe = state(2, {"TAG1": {"status": "Accepted"}}, reported=5)
    [update] = plan_updates([tag("TAG1"), tag("TAG2")], unsafe, update_type="Differential",
                            now=NOW, force=True)
    assert (update.update_type, update.version) == ("Differential", 6)
    assert [e["idTag"] for e in update.entries] == ["TAG2"]


def test_safe_when_reported_version_matches_and_last_update_was_accepted() -> None:
    assert differential_is_safe(state(3, reported=3, last_status="Accepted"))
    assert differential_is_safe(state(0, reported=0))
    assert differential_is_safe(state(3, last_status="NotSupported"))


# -- versions, splitting, uniqueness ------------------------------------------------


@pytest.mark.parametrize("version, reported", [(0, None), (0, 0), (0, -1), (-1, -1), (4, 9), (9, 4)])
def test_versions_go_up_and_are_never_zero_or_minus_one(version: int, reported: int | None) -> None:
    updates = plan_updates([tag(f"T{i}") for i in range(5)],
                           state(version, reported=reported), update_type="Full", now=NOW,
                           max_length=2)
    expected = max(version, reported or 0, 0) + 1
    assert [u.version for u in updates] == [expected, expected + 1, expected + 2]
    assert all(u.version > 0 for u in updates)


def test_long_full_is_split_into_a_full_then_differential_additions() -> None:
    tags = [tag(f"T{i:02d}") for i in range(7)]
    updates = plan_updates(tags, state(), update_type="Full", now=NOW, max_length=3)
    assert [(u.version, u.update_type, len(u.entries)) for u in updates] == [
        (1, "Full", 3), (2, "Differential", 3), (3, "Differential", 1)]
    assert all("idTagInfo" in e for u in updates for e in u.entries)
    for u in updates:
        validate("SendLocalList", payload(u))
    assert accept(state(), updates)["entries"] == {t["id_tag"]: {"status": "Accepted"} for t in tags}


def test_long_differential_is_split_with_increasing_versions() -> None:
    updates = plan_updates([tag(f"T{i}") for i in range(5)], state(2), update_type="Differential",
                           now=NOW, max_length=2)
    assert [(u.version, u.update_type, len(u.entries)) for u in updates] == [
        (3, "Differential", 2), (4, "Differential", 2), (5, "Differential", 1)]


def test_id_tags_in_one_request_are_unique_case_insensitively() -> None:
    [update] = plan_updates([tag("abc"), tag("XYZ")], state(), update_type="Differential",
                            now=NOW, only=["ABC", "abc", "Abc", "xyz"])
    assert [e["idTag"] for e in update.entries] == ["abc", "XYZ"]
    with pytest.raises(ValueError):
        plan_updates([tag("abc"), tag("ABC")], state(), update_type="Full", now=NOW)


@pytest.mark.parametrize("kwargs", [{"update_type": "Partial"},
                                    {"update_type": "Full", "max_length": 0}])
def test_bad_arguments_raise_value_error(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        plan_updates([tag("A")], state(), now=NOW, **kwargs)


@given(
    names=st.lists(st.text("abcAB", min_size=1, max_size=4), max_size=12),
    max_length=st.integers(1, 5),
    update_type=st.sampled_from(["Full", "Differential"]),
)
def test_every_planned_request_is_schema_valid_and_bounded(
    names: list[str], max_length: int, update_type: str
) -> None:
    tags = list({n.lower(): tag(n) for n in names}.values())
    held = {"a": {"status": "Blocked"}, "zz": {"status": "Accepted"}}
    updates = plan_updates(tags, state(1, held), update_type=update_type, now=NOW,
                           max_length=max_length)
    for u in updates:
        validate("SendLocalList", payload(u))
        assert len(u.entries) <= max_length
        keys = [e["idTag"].lower() for e in u.entries]
        assert len(keys) == len(set(keys))
    after = accept(state(1, held), updates)["entries"] if updates else held
    assert {k.lower(): v for k, v in after.items()} == {
        t["id_tag"].lower(): {"status": "Accepted"} for t in tags}


# -- entries_after ---------------------------------------------------------------------


def test_entries_after_full_replaces_and_differential_applies() -> None:
    held = {"Keep": {"status": "Accepted"}, "drop": {"status": "Accepted"},
            "change": {"status": "Accepted"}}
    full = LocalListUpdate(5, "Full", [{"idTag": "Only", "idTagInfo": {"status": "Accepted"}}])
    assert entries_after(held, full) == {"Only": {"status": "Accepted"}}
    diff = LocalListUpdate(5, "Differential", [
        {"idTag": "DROP"},
        {"idTag": "CHANGE", "idTagInfo": {"status": "Blocked"}},
        {"idTag": "new", "idTagInfo": {"status": "Accepted"}},
        {"idTag": "absent"},
    ])
    assert entries_after(held, diff) == {"Keep": {"status": "Accepted"},
                                         "CHANGE": {"status": "Blocked"},
                                         "new": {"status": "Accepted"}}
    assert "drop" in held  # the input is not changed


def test_payload_is_a_send_local_list_request() -> None:
    update = LocalListUpdate(7, "Differential", [{"idTag": "A"},
                                                 {"idTag": "B", "idTagInfo": {"status": "Blocked"}}])
    body = payload(update)
    assert body == {"listVersion": 7, "updateType": "Differential",
                    "localAuthorizationList": [{"idTag": "A"},
                                               {"idTag": "B", "idTagInfo": {"status": "Blocked"}}]}
    validate("SendLocalList", body)
    body["localAuthorizationList"][1]["idTagInfo"]["status"] = "Accepted"
    assert update.entries[1]["idTagInfo"]["status"] == "Blocked"
