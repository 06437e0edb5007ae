"""The control script's commands: arguments, the requests they become, and how results print.

Each named OCPP command builds its payload here and is validated against the
OCPP 1.6 schema before anything is sent (exit 2 when invalid). Data-management
commands become ``AdminCommand``s for the registry (``actors.admin``).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from typing import Any

from actors import ocppj
from actors.errors import CommandError
from actors.messages import AdminCommand


@dataclass(frozen=True)
class CallRequest:
    station: str
    action: str
    payload: dict[str, Any]


def add_data_commands(sub: Any) -> None:
    station = sub.add_parser("station", help="register and inspect charge points").add_subparsers(dest="verb", required=True)
    p = station.add_parser("add", help="register or update a charge point")
    p.add_argument("id")
    p.add_argument("--password")
    p.add_argument("--registration", choices=["accepted", "pending", "rejected"])
    p.add_argument("--connectors", type=int)
    p = station.add_parser("set-password", help="set the HTTP Basic password (stored salted and hashed)")
    p.add_argument("id")
    p.add_argument("password")
    station.add_parser("list")
    for verb in ("show", "remove"):
        station.add_parser(verb).add_argument("id")

    tag = sub.add_parser("tag", help="authorization identifiers").add_subparsers(dest="verb", required=True)
    p = tag.add_parser("add", help="create or update an idTag")
    p.add_argument("id_tag")
    p.add_argument("--status", choices=["Accepted", "Blocked", "Expired", "Invalid"], default="Accepted")
    p.add_argument("--expiry")
    p.add_argument("--parent")
    tag.add_parser("list")
    tag.add_parser("remove").add_argument("id_tag")

    tx = sub.add_parser("tx", help="transactions").add_subparsers(dest="verb", required=True)
    p = tx.add_parser("list")
    p.add_argument("--station")
    p.add_argument("--active", action="store_true")
    tx.add_parser("show").add_argument("id", type=int)

    sub.add_parser("status", help="overview: stations, transactions, uptime")


def add_call_commands(sub: Any) -> None:
    p = sub.add_parser("call", help="send any OCPP 1.6 request: call ID ACTION 'JSON'")
    p.add_argument("station")
    p.add_argument("action")
    p.add_argument("payload", nargs="?", default="{}")

    p = _station_parser(sub, "remote-start", "RemoteStartTransaction")
    p.add_argument("--id-tag", required=True)
    p.add_argument("--connector", type=int)
    p.add_argument("--profile", help="TxProfile chargingProfile as JSON (no transactionId)")
    p = _station_parser(sub, "remote-stop", "RemoteStopTransaction")
    p.add_argument("--transaction", type=int, required=True)
    p = _station_parser(sub, "reset", "Reset")
    p.add_argument("--type", choices=["Hard", "Soft"], required=True)
    p = _station_parser(sub, "unlock", "UnlockConnector")
    p.add_argument("--connector", type=int, required=True)
    p = _station_parser(sub, "get-config", "GetConfiguration")
    p.add_argument("--key", action="append", default=[])
    p = _station_parser(sub, "change-config", "ChangeConfiguration")
    p.add_argument("key")
    p.add_argument("value")
    p = _station_parser(sub, "change-availability", "ChangeAvailability")
    p.add_argument("--connector", type=int, required=True)
    p.add_argument("--type", choices=["Operative", "Inoperative"], required=True)
    _station_parser(sub, "clear-cache", "ClearCache")
    p = _station_parser(sub, "data-transfer", "DataTransfer")
    p.add_argument("--vendor", required=True)
    p.add_argument("--message-id")
    p.add_argument("--data")
    p = _station_parser(sub, "update-firmware", "UpdateFirmware")
    p.add_argument("--location", required=True)
    p.add_argument("--retrieve-date")
    p.add_argument("--retries", type=int)
    p.add_argument("--retry-interval", type=int)
    p = _station_parser(sub, "get-diagnostics", "GetDiagnostics")
    p.add_argument("--location", required=True)
    p.add_argument("--start")
    p.add_argument("--stop")
    p.add_argument("--retries", type=int)
    p.add_argument("--retry-interval", type=int)
    p = _station_parser(sub, "trigger", "TriggerMessage")
    p.add_argument("message")
    p.add_argument("--connector", type=int)
    _station_parser(sub, "local-list-version", "GetLocalListVersion")
    p = _station_parser(sub, "cancel-reservation", "CancelReservation")
    p.add_argument("--reservation-id", type=int, required=True)


def _station_parser(sub: Any, name: str, action: str) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=f"send {action}")
    p.add_argument("station")
    p.set_defaults(action=action)
    return p


def to_request(args: argparse.Namespace) -> AdminCommand | CallRequest:
    """Turn parsed arguments into what the control script sends (CommandError when invalid)."""
    command = args.command
    if command in ("station", "tag", "tx"):
        fields = {k: v for k, v in vars(args).items() if k not in ("command", "verb", "admin_port", "json", "timeout") and v is not None}
        return AdminCommand(f"{command}.{args.verb}", fields)
    if command == "status":
        return AdminCommand("status", {})
    if command == "call":
        action = args.action
        try:
            payload = json.loads(args.payload)
        except ValueError as exc:
            raise CommandError(f"payload is not valid JSON: {exc}", 2) from None
        if not isinstance(payload, dict):
            raise CommandError("payload must be a JSON object", 2)
    else:
        action = args.action
        payload = _PAYLOADS[command](args)
    if action not in ocppj.CSMS_ACTIONS:
        raise CommandError(f"{action!r} is not an OCPP 1.6 request the central system sends", 2)
    ocppj.validate(action, payload)
    return CallRequest(args.station, action, payload)


def _drop_none(**fields: Any) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}


def _remote_start(args: argparse.Namespace) -> dict[str, Any]:
    payload = _drop_none(idTag=args.id_tag, connectorId=args.connector)
    if args.profile:
        try:
            payload["chargingProfile"] = json.loads(args.profile)
        except ValueError as exc:
            raise CommandError(f"--profile is not valid JSON: {exc}", 2) from None
    return payload


_PAYLOADS = {
    "remote-start": _remote_start,
    "remote-stop": lambda a: {"transactionId": a.transaction},
    "reset": lambda a: {"type": a.type},
    "unlock": lambda a: {"connectorId": a.connector},
    "get-config": lambda a: {"key": a.key} if a.key else {},
    "change-config": lambda a: {"key": a.key, "value": a.value},
    "change-availability": lambda a: {"connectorId": a.connector, "type": a.type},
    "clear-cache": lambda a: {},
    "data-transfer": lambda a: _drop_none(vendorId=a.vendor, messageId=a.message_id, data=a.data),
    "update-firmware": lambda a: _drop_none(location=a.location, retrieveDate=a.retrieve_date or _now_iso(), retries=a.retries, retryInterval=a.retry_interval),
    "get-diagnostics": lambda a: _drop_none(location=a.location, startTime=a.start, stopTime=a.stop, retries=a.retries, retryInterval=a.retry_interval),
    "trigger": lambda a: _drop_none(requestedMessage=a.message, connectorId=a.connector),
    "local-list-version": lambda a: {},
    "cancel-reservation": lambda a: {"reservationId": a.reservation_id},
}


def _now_iso() -> str:
    from datetime import datetime, timezone

    from storage import iso

    return iso(datetime.now(timezone.utc))


# -- output for people -------------------------------------------------------------


def render_result(station: str, action: str, response: dict[str, Any]) -> str:
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
    return f"{station} {action}:\n{json.dumps(response, indent=2)}"


_COLUMNS = {
    "station.list": ["id", "registration", "connected", "ever_accepted", "vendor", "model", "firmware_version", "last_seen"],
    "tag.list": ["id_tag", "status", "expiry", "parent"],
    "tx.list": ["id", "station_id", "connector_id", "id_tag", "start_status", "meter_start", "meter_stop", "energy_wh", "stop_reason", "abandoned", "started_at", "stopped_at"],
}


def render_admin(command: str, result: Any) -> str:
    if command in _COLUMNS and isinstance(result, list):
        return table(result, _COLUMNS[command]) if result else "(none)"
    if isinstance(result, dict):
        return "\n".join(f"{k}: {_cell(v) if not isinstance(v, (list, dict)) else json.dumps(v, default=str)}" for k, v in result.items())
    if isinstance(result, list):
        return json.dumps(result, indent=2, default=str)
    return str(result)


def table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)
