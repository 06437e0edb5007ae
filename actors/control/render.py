"""The control script's output for people: aligned tables, ``key: value`` lines, short sentences.

CONTROL.md: without ``--json`` the output is for people, with it exactly one
JSON document. So nothing here prints JSON, however deep a result nests: a
list of records is a table, a record is ``key: value`` lines (a nested one
indented under its key), a list of plain values is comma-separated, and
nothing at all is ``-`` (a value) or ``(none)`` (a list or a section).
"""

from __future__ import annotations

from typing import Any

INDENT = "  "

_COLUMNS = {
    "station.list": ["id", "registration", "connected", "ever_accepted", "vendor", "model", "firmware_version", "last_seen"],
    "station.pending": ["id", "address", "attempts", "first_seen", "last_seen"],
    "tag.list": ["id_tag", "status", "expiry", "parent"],
    "api-key.list": ["name", "scope", "created_at", "last_used_at"],
    "certificate.list": ["serial", "station_id", "subject", "not_after", "status", "issued_at"],
    "reservation.list": ["id", "station_id", "connector_id", "id_tag", "parent_id_tag", "expiry_date", "status", "transaction_id", "updated_at"],
    "station.log": ["seq", "at", "direction", "frame"],
    "audit.list": ["id", "at", "who", "command", "station_id", "payload", "outcome", "answer"],
    "tx.list": ["id", "station_id", "connector_id", "id_tag", "start_status", "meter_start", "meter_stop", "energy_wh", "stop_reason", "abandoned", "started_at", "stopped_at"],
}


def render_result(station: str, action: str, response: dict[str, Any]) -> str:
    """A charge point's CALLRESULT to a named command or ``call``."""
    status = response.get("status")
    if status is not None and len(response) == 1:
        return f"{station} {action}: {status}"
    if action == "GetConfiguration":
        rows = [
            {"key": k.get("key"), "value": k.get("value", ""), "readonly": k.get("readonly", "")}
            for k in response.get("configurationKey", [])
        ]
        text = table(rows, ["key", "value", "readonly"])
        unknown = response.get("unknownKey") or []
        return text + (f"\nunknown keys: {', '.join(unknown)}" if unknown else "")
    return f"{station} {action}:\n{human(response, 1)}"


def render_admin(command: str, result: Any) -> str:
    """The result of a data-management command (``actors.admin``)."""
    if command == "api-key.create" and isinstance(result, dict):
        return (f"API key {result.get('name')} ({result.get('scope')}); it is shown only this once:\n"
                f"{result.get('key')}")
    if command == "profile.list" and isinstance(result, list):
        return profiles(result)
    if command == "tag.explain" and isinstance(result, dict):
        return explained(result)
    if command in _COLUMNS and isinstance(result, list):
        return table(result, _COLUMNS[command]) if result else "(none)"
    return human(result)


def explained(result: dict[str, Any]) -> str:
    """``explain tag``: the tag as stored, then its decisions (where, when, what, why)."""
    tag = result.get("tag")
    head = (f"tag {result.get('id_tag')}: " + (f"{tag.get('status')}" + (f", expires {tag['expiry']}" if tag.get("expiry") else "")
                                              + (f", parent {tag['parent']}" if tag.get("parent") else "")
                                              if tag else "unknown to the central system"))
    decisions = result.get("decisions") or []
    if not decisions:
        return head + "\nno authorization decisions recorded (--authorization-log-days)"
    return head + "\n" + table(decisions, ["at", "station_id", "connector_id", "action", "status", "reason"])


def human(value: Any, depth: int = 0) -> str:
    """Any JSON-shaped value as lines for people, indented ``depth`` levels."""
    pad = INDENT * depth
    if isinstance(value, dict):
        if not value:
            return pad + "(none)"
        lines = []
        for key, item in value.items():
            if isinstance(item, (dict, list)) and not item:
                lines.append(f"{pad}{key}: (none)")
            elif _plain(item) or (isinstance(item, list) and all(_plain(i) for i in item)):
                lines.append(f"{pad}{key}: {_inline(item)}")
            else:
                lines.append(f"{pad}{key}:")
                lines.append(human(item, depth + 1))
        return "\n".join(lines)
    if isinstance(value, list):
        if not value:
            return pad + "(none)"
        if all(isinstance(item, dict) for item in value):
            columns = list(dict.fromkeys(key for item in value for key in item))
            return "\n".join(pad + line for line in table(value, columns).splitlines())
        return "\n".join(pad + _inline(item) for item in value)
    return pad + _inline(value)


def profiles(connectors: list[dict[str, Any]]) -> str:
    """``profile list``: per connector, the limit in force now and its stack, one profile a line."""
    lines = []
    for connector in connectors:
        limit = connector.get("limit_now_a")
        head = f"connector {connector.get('connector_id')}: " + (f"limit now {limit:g} A" if limit is not None else "no limit now")
        stack = connector.get("profiles") or []
        lines.append(head + ("" if stack else ", no profiles"))
        if stack:
            rows = [_profile_row(p) for p in stack]
            columns = ["id", "purpose", "stack_level", "kind", "unit", "periods", "valid_from", "valid_to", "transaction"]
            lines += [INDENT + line for line in table(rows, columns).splitlines()]
    return "\n".join(lines) or "(none)"


def _profile_row(profile: dict[str, Any]) -> dict[str, Any]:
    schedule = profile.get("chargingSchedule") or {}
    kind = profile.get("chargingProfileKind")
    if profile.get("recurrencyKind"):
        kind = f"{kind} {profile['recurrencyKind']}"
    periods = ", ".join(f"{p.get('startPeriod')} s: {p.get('limit')}" + (f" ({p['numberPhases']} phases)" if "numberPhases" in p else "")
                        for p in schedule.get("chargingSchedulePeriod") or [])
    return {"id": profile.get("chargingProfileId"), "purpose": profile.get("chargingProfilePurpose"),
            "stack_level": profile.get("stackLevel"), "kind": kind, "unit": schedule.get("chargingRateUnit"),
            "periods": periods, "valid_from": profile.get("validFrom"), "valid_to": profile.get("validTo"),
            "transaction": profile.get("transactionId")}


def table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    cells = [[_inline(row.get(c)) for c in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines)


def _plain(value: Any) -> bool:
    return not isinstance(value, (dict, list))


def _inline(value: Any) -> str:
    """One value on one line (a table cell, or after ``key:``)."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return ", ".join(f"{k}={_inline(v)}" for k, v in value.items()) or "-"
    if isinstance(value, list):
        return ", ".join(_inline(v) for v in value) or "-"
    return str(value)
