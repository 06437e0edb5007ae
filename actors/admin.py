"""Data-management commands of the control script, run against the Store.

``run_admin(store, command, args, now)`` returns a JSON-serialisable result or
raises ``AdminError``:

    AdminError            Raised when a command cannot be carried out.
    |  exit_code 2        bad input: unknown command, missing or malformed argument
    |                     (idTag over 20 characters, bad status, bad ISO date,
    |                     registration not accepted/pending/rejected)
    |  exit_code 3        the named station, tag or transaction does not exist

Password hashes never leave this module (the Store does not return them).
An API key is in the result of ``api-key.create`` only, once; the Store
keeps its hash, which no command returns.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime
from typing import Any

from actors import certificate_authority
from actors.errors import CommandError
from actors.profile_view import StationProfiles
from actors.settings import Settings
from gateway import handshake
from storage import ID_TAG_MAX, REGISTRATIONS, SCOPES, TAG_STATUSES, Store, iso, parse_time

Args = dict[str, Any]
Result = dict[str, Any] | list[Any]

BAD_INPUT = 2
NOT_FOUND = 3


class AdminError(CommandError):
    """Raised when a data-management command cannot be carried out; ``exit_code`` is for the script."""


# -- argument parsing (pure) ---------------------------------------------------


def _text(args: Args, name: str, *, required: bool = True) -> str | None:
    value = args.get(name)
    if value is None:
        if required:
            raise AdminError(f"missing argument: {name}")
        return None
    if not isinstance(value, str) or not value:
        raise AdminError(f"{name} must be a non-empty string")
    return value


def _required(args: Args, name: str) -> str:
    value = _text(args, name)
    assert value is not None
    return value


def _station_id(args: Args, *, new: bool = False) -> str:
    """The station named; a ``new`` one must pass the handshake's rule, or it could never connect.

    Existing rows are named as they are (a database from before the 48-character
    limit may hold longer ones, which ``ctl`` can still show and remove).
    """
    station_id = _required(args, "id")
    problem = handshake.identity_problem(station_id) if new else ("station id contains '/'" if "/" in station_id else None)
    if problem is not None:
        raise AdminError(problem.replace("charge point identity", "station id", 1))
    return station_id


def _id_tag(value: str | None, name: str) -> str | None:
    # OCPP 1.6 errata 3.73/3.74: IdToken is a CiString20.
    if value is not None and len(value) > ID_TAG_MAX:
        raise AdminError(f"{name} longer than {ID_TAG_MAX} characters")
    return value


def _int(args: Args, name: str, *, minimum: int) -> int | None:
    value = args.get(name)
    if value is None:
        return None
    if isinstance(value, bool):
        raise AdminError(f"{name} must be an integer")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise AdminError(f"{name} must be an integer") from None
    if number < minimum:
        raise AdminError(f"{name} must be at least {minimum}")
    return number


def _flag(args: Args, name: str) -> bool:
    value = args.get(name, False)
    if isinstance(value, str):
        return value.lower() in ("1", "true", "yes", "on")
    return bool(value)


def _choice(value: str | None, choices: tuple[str, ...], name: str) -> str | None:
    """Match ``value`` case-insensitively against ``choices``; canonical spelling back."""
    if value is None:
        return None
    for choice in choices:
        if choice.lower() == value.lower():
            return choice
    raise AdminError(f"{name} must be one of {', '.join(choices)}")


# -- commands ---------------------------------------------------------------------


def station_add(store: Store, args: Args, now: datetime) -> Result:
    station_id = _station_id(args, new=True)
    password = _text(args, "password", required=False)
    profile = _int(args, "security_profile", minimum=0)
    if profile is not None and profile > 3:
        raise AdminError("security_profile must be 0, 1, 2 or 3")
    if profile in (1, 2) and password is None:
        known = store.get_station(station_id)
        if known is None or not known["has_password"]:
            raise AdminError(f"security profile {profile} is HTTP Basic authentication: give the station a --password")
    return store.upsert_station(
        station_id,
        password=password,
        registration=_choice(_text(args, "registration", required=False), REGISTRATIONS,
                             "registration"),
        connectors=_int(args, "connectors", minimum=0),
        security_profile=profile,
        now=now,
    )


def station_set_password(store: Store, args: Args, now: datetime) -> Result:
    station_id = _station_id(args)
    if not store.set_password(station_id, _required(args, "password")):
        raise AdminError(f"unknown station: {station_id}", NOT_FOUND)
    return {"id": station_id, "password_set": True}


def station_list(store: Store, args: Args, now: datetime) -> Result:
    return store.list_stations()


def station_pending(store: Store, args: Args, now: datetime) -> Result:
    """Identities that tried to connect while unknown (--unknown-stations pending)."""
    return store.list_pending()


def station_approve(store: Store, args: Args, now: datetime) -> Result:
    station_id = _station_id(args, new=True)
    station = store.approve_pending(station_id)
    if station is None:
        raise AdminError(f"no charge point {station_id} is waiting for approval (station list --pending)", NOT_FOUND)
    return station


def station_show(store: Store, args: Args, now: datetime) -> Result:
    station_id = _station_id(args)
    station = store.get_station(station_id)
    if station is None:
        raise AdminError(f"unknown station: {station_id}", NOT_FOUND)
    return {
        "station": station,
        "connectors": store.connector_statuses(station_id),
        "configuration": store.get_configuration(station_id),
        "unknown_configuration_keys": store.unknown_configuration_keys(station_id),
        "active_transactions": store.list_transactions(station_id=station_id, active=True),
        "firmware": store.firmware_state(station_id),
        "events": store.station_events(station_id, limit=20),
        "local_list": store.local_list_state(station_id),
        "reservations": store.list_reservations(station_id=station_id, active_only=True),
        "data_transfers": store.data_transfers(station_id, limit=10),
        "installed_certificates": store.installed_certificates(station_id),
        "issued_certificates": [{k: v for k, v in row.items() if k != "certificate"}
                                for row in store.list_issued_certificates(station_id)],
    }


def station_remove(store: Store, args: Args, now: datetime) -> Result:
    station_id = _station_id(args)
    if not store.remove_station(station_id):
        raise AdminError(f"unknown station: {station_id}", NOT_FOUND)
    return {"id": station_id, "removed": True}


def tag_add(store: Store, args: Args, now: datetime) -> Result:
    id_tag = _id_tag(_required(args, "id_tag"), "id_tag")
    assert id_tag is not None
    status = _choice(_text(args, "status", required=False), TAG_STATUSES, "status")
    expiry = _text(args, "expiry", required=False)
    if expiry is not None:
        try:
            expiry = iso(parse_time(expiry))
        except ValueError:
            raise AdminError(f"expiry is not an ISO 8601 date: {expiry}") from None
    return store.upsert_tag(
        id_tag,
        status=status or "Accepted",
        expiry=expiry,
        parent=_id_tag(_text(args, "parent", required=False), "parent"),
        now=now,
    )


def tag_list(store: Store, args: Args, now: datetime) -> Result:
    return store.list_tags()


def tag_remove(store: Store, args: Args, now: datetime) -> Result:
    id_tag = _required(args, "id_tag")
    if not store.remove_tag(id_tag):
        raise AdminError(f"unknown tag: {id_tag}", NOT_FOUND)
    return {"id_tag": id_tag, "removed": True}


def tx_list(store: Store, args: Args, now: datetime) -> Result:
    return store.list_transactions(
        station_id=_text(args, "station", required=False),
        active=_flag(args, "active"),
        limit=_int(args, "limit", minimum=1) or 1000,
    )


def tx_show(store: Store, args: Args, now: datetime) -> Result:
    tx_id = _int(args, "id", minimum=-(2**63))
    if tx_id is None:
        raise AdminError("missing argument: id")
    transaction = store.get_transaction(tx_id)
    if transaction is None:
        raise AdminError(f"unknown transaction: {tx_id}", NOT_FOUND)
    return {**transaction, "meter_values": store.meter_values_for(tx_id)}


def station_log(store: Store, args: Args, now: datetime) -> Result:
    """The station's last frames, both directions, oldest first (the ring of --frame-log-per-station)."""
    station_id = _station_id(args)
    if store.get_station(station_id) is None:
        raise AdminError(f"unknown station: {station_id}", NOT_FOUND)
    return store.frame_log(station_id, limit=_int(args, "limit", minimum=1) or 50)


def audit_list(store: Store, args: Args, now: datetime) -> Result:
    """Operator actions, newest first: who, what, when and the answer."""
    return store.audit_log(station_id=_text(args, "station", required=False),
                           limit=_int(args, "limit", minimum=1) or 50)


def tag_explain(store: Store, args: Args, now: datetime) -> Result:
    """Why a tag was answered as it was, and where: its recent authorization decisions."""
    id_tag = _id_tag(_required(args, "id_tag"), "id_tag")
    assert id_tag is not None
    return {"id_tag": id_tag, "tag": store.get_tag(id_tag),
            "decisions": store.authorization_decisions(id_tag, limit=_int(args, "limit", minimum=1) or 20)}


def db_backup(store: Store, args: Args, now: datetime) -> Result:
    """An online, consistent copy of the database (SQLite's backup API) while stations are served."""
    path = _text(args, "file", required=True)
    assert path is not None
    try:
        size = store.backup_to(path)
    except FileExistsError as exc:
        raise AdminError(str(exc)) from None
    except OSError as exc:
        raise AdminError(f"cannot write {path}: {exc}") from None
    return {"file": os.path.abspath(path), "bytes": size, "at": iso(now)}


def status(store: Store, args: Args, now: datetime) -> Result:
    return store.summary()


def reservation_list(store: Store, args: Args, now: datetime) -> Result:
    return store.list_reservations(station_id=_text(args, "station", required=False))


def _known_station(store: Store, args: Args) -> str:
    station_id = _required(args, "station")
    if store.get_station(station_id) is None:
        raise AdminError(f"unknown station: {station_id}", NOT_FOUND)
    return station_id


def profile_list(store: Store, args: Args, now: datetime) -> Result:
    """Each connector's stack as the central system believes it, and the limit in force now."""
    station_id = _known_station(store, args)
    view = StationProfiles.load(store, station_id)
    station = store.get_station(station_id) or {}
    connectors = {i.connector_id for i in view.installed} | set(view.active)
    connectors |= set(range(0, (station.get("connectors") or 0) + 1))
    return [
        {
            "connector_id": connector_id,
            "profiles": [i.profile for i in view.installed if i.connector_id == connector_id],
            "limit_now_a": view.limit_now(connector_id, now),
        }
        for connector_id in sorted(connectors)
    ]


def profile_composite(store: Store, args: Args, now: datetime) -> Result:
    """composite-schedule --local: computed from the installed profiles, the charge point is not asked."""
    station_id = _known_station(store, args)
    connector_id = _int(args, "connector", minimum=0)
    duration = _int(args, "duration", minimum=1)
    assert connector_id is not None and duration is not None
    schedule = StationProfiles.load(store, station_id).composite(
        connector_id, start=now, duration=duration, unit=_text(args, "unit", required=False)
    )
    return {"station": station_id, "connectorId": connector_id, "scheduleStart": iso(now), "chargingSchedule": schedule}


def api_key_create(store: Store, args: Args, now: datetime) -> Result:
    """A new HTTP API key: the only result that ever holds it."""
    scope = _choice(_required(args, "scope"), SCOPES, "scope")
    assert scope is not None
    row, key = store.create_api_key(_required(args, "name"), scope, now=now)
    return {**row, "key": key}


def api_key_list(store: Store, args: Args, now: datetime) -> Result:
    return store.list_api_keys()


def api_key_revoke(store: Store, args: Args, now: datetime) -> Result:
    name = _required(args, "name")
    if not store.revoke_api_key(name):
        raise AdminError(f"unknown API key: {name}", NOT_FOUND)
    return {"name": name, "revoked": True}


def certificate_list(store: Store, args: Args, now: datetime) -> Result:
    """Certificates the node's CA issued (per station with --station), newest first; the PEM only for one station."""
    station_id = _text(args, "station", required=False)
    found = store.list_issued_certificates(station_id)
    if station_id is None:
        for row in found:
            row.pop("certificate", None)
    return found


def security_events(store: Store, args: Args, now: datetime) -> Result:
    """A station's SecurityEventNotifications, or (--own) the central system's own security log."""
    limit = _int(args, "limit", minimum=1) or 1000
    if _flag(args, "own"):
        return store.own_security_events(limit=limit)
    station_id = _text(args, "id", required=False)
    if station_id is None:
        raise AdminError("give a station id, or --own for the central system's own security events")
    if store.get_station(station_id) is None:
        raise AdminError(f"unknown station: {station_id}", NOT_FOUND)
    return store.security_events(station_id, limit=limit)


def ca_init(settings: Settings, store: Store, args: Args, now: datetime) -> Result:
    """Make the node's CA next to the database (the key 0600); an existing one is never replaced."""
    organisation = _text(args, "organisation", required=False) or settings.cpo_name or "CSMS"
    try:
        return certificate_authority.init(settings, organisation, now)
    except FileExistsError as exc:
        raise AdminError(str(exc)) from None
    except OSError as exc:
        raise AdminError(f"cannot write the CA: {exc}") from None


def ca_show(settings: Settings, store: Store, args: Args, now: datetime) -> Result:
    cert_path, key_path = certificate_authority.paths(settings)
    try:
        authority = certificate_authority.load(cert_path, key_path)
    except FileNotFoundError:
        raise AdminError(f"no certificate authority: {cert_path} (make one with 'ctl ca init')", NOT_FOUND) from None
    except (OSError, ValueError, TypeError) as exc:
        raise AdminError(f"the certificate authority cannot be used: {exc}") from None
    return certificate_authority.describe(authority.certificate, cert_path, key_path)


def firmware_sign(settings: Settings, store: Store, args: Args, now: datetime) -> Result:
    """Sign a firmware's SHA-256 (hex) with --firmware-signing-key: the signature and certificate to send."""
    digest = _required(args, "sha256")
    if not (settings.firmware_signing_cert and settings.firmware_signing_key):
        raise AdminError("no firmware signing key configured (--firmware-signing-cert, --firmware-signing-key); "
                         "give --signing-certificate and --signature")
    try:
        return certificate_authority.sign_firmware(settings.firmware_signing_cert, settings.firmware_signing_key,
                                                   bytes.fromhex(digest))
    except (OSError, ValueError, TypeError) as exc:
        raise AdminError(f"cannot sign the firmware: {exc}") from None


SETTINGS_COMMANDS: dict[str, Callable[[Settings, Store, Args, datetime], Result]] = {
    "ca.init": ca_init,
    "ca.show": ca_show,
    "firmware.sign": firmware_sign,
}


COMMANDS: dict[str, Callable[[Store, Args, datetime], Result]] = {
    "certificate.list": certificate_list,
    "security-events": security_events,
    "station.add": station_add,
    "station.set-password": station_set_password,
    "db.backup": db_backup,
    "station.list": station_list,
    "station.pending": station_pending,
    "station.approve": station_approve,
    "station.show": station_show,
    "station.remove": station_remove,
    "station.log": station_log,
    "audit.list": audit_list,
    "tag.explain": tag_explain,
    "tag.add": tag_add,
    "tag.list": tag_list,
    "tag.remove": tag_remove,
    "tx.list": tx_list,
    "tx.show": tx_show,
    "status": status,
    "reservation.list": reservation_list,
    "profile.list": profile_list,
    "profile.composite": profile_composite,
    "api-key.create": api_key_create,
    "api-key.list": api_key_list,
    "api-key.revoke": api_key_revoke,
}


# Commands that change something: each is recorded in the audit log (by the registry).
CHANGES = frozenset({"station.add", "station.set-password", "station.approve", "station.remove", "tag.add",
                     "tag.remove", "api-key.create", "api-key.revoke", "db.backup"})
_SECRET_ARGS = frozenset({"password"})


def audited_args(args: Args) -> Args:
    """A command's arguments as the audit log keeps them: a password only as "***"."""
    return {k: ("***" if k in _SECRET_ARGS and v is not None else v) for k, v in args.items()}


def run_admin(store: Store, command: str, args: Args, now: datetime, settings: Settings | None = None) -> Result:
    """Run one data-management command; JSON-serialisable result or AdminError.

    The CA's and the firmware signing key's commands need the node's ``settings``.
    """
    if command in SETTINGS_COMMANDS:
        if settings is None:
            raise AdminError(f"{command} needs the node's settings")
        try:
            return SETTINGS_COMMANDS[command](settings, store, args, now)
        except ValueError as exc:
            raise AdminError(str(exc)) from None
    try:
        handler = COMMANDS[command]
    except KeyError:
        raise AdminError(f"unknown command: {command}") from None
    try:
        return handler(store, args, now)
    except ValueError as exc:  # a Store guard the checks above did not anticipate
        raise AdminError(str(exc)) from None
