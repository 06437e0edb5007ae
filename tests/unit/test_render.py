"""actors.control.render: output for people is tables and ``key: value`` lines, never JSON (CONTROL.md)."""

from __future__ import annotations

from actors.control import render


def _no_json(text: str) -> bool:
    return not any(mark in text for mark in ('{"', '["', '":', "[]", "{}"))


def test_a_record_is_key_value_lines_with_nested_records_indented_under_their_key() -> None:
    text = render.human({"id": 1, "active": True, "stopped_at": None, "flags": ["late", "negative"],
                         "firmware": {"version": "2.1", "update_in_progress": False}, "events": []})
    assert text.splitlines() == ["id: 1", "active: yes", "stopped_at: -", "flags: late, negative", "firmware:",
                                 "  version: 2.1", "  update_in_progress: no", "events: (none)"]


def test_a_list_of_records_is_a_table_with_every_column_any_of_them_has() -> None:
    text = render.human({"connectors": [{"connector_id": 0, "status": "Available"},
                                        {"connector_id": 1, "status": "Charging", "info": "x"}]})
    assert text.splitlines() == ["connectors:", "  connector_id  status     info", "  0             Available  -",
                                 "  1             Charging   x"]


def test_a_nested_value_inside_a_table_cell_is_inline_text() -> None:
    text = render.human([{"timestamp": "T", "sampledValue": [{"value": "150", "unit": "Wh"}]}])
    assert "value=150, unit=Wh" in text and _no_json(text)


def test_a_charge_points_answer_with_nested_fields_is_printed_without_json() -> None:
    answer = {"status": "Accepted", "connectorId": 1, "scheduleStart": "2026-12-07T10:00:00Z",
              "chargingSchedule": {"chargingRateUnit": "A", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16.0}]}}
    text = render.render_result("CP1", "GetCompositeSchedule", answer)
    assert text.splitlines()[0] == "CP1 GetCompositeSchedule:" and "  status: Accepted" in text
    assert "startPeriod" in text and _no_json(text)
    assert render.render_result("CP1", "Reset", {"status": "Accepted"}) == "CP1 Reset: Accepted"


def test_an_empty_list_or_result_says_none() -> None:
    assert render.render_admin("tag.list", []) == "(none)"
    assert render.render_admin("profile.list", []) == "(none)"
    assert render.human({}) == "(none)"
