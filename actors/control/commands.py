"""The control script's commands: their arguments and the requests they become (output: ``render``).

Each named OCPP command builds its payload here; ``actors.operator_calls``
(shared with the HTTP API) validates it against the OCPP 1.6 schema before
anything is sent (exit 2 when invalid). Data-management
commands become ``AdminCommand``s for the registry (``actors.admin``).
"""

from __future__ import annotations

import argparse
import json
import os
from datetime import datetime, timedelta, timezone
from typing import Any

from actors.errors import CommandError
from actors.messages import AdminCommand
from actors.operator_calls import CallRequest, prepare_call

__all__ = ["CallRequest", "add_call_commands", "add_data_commands", "to_request"]


def add_data_commands(sub: Any) -> None:
    station = sub.add_parser("station", help="register and inspect charge points").add_subparsers(dest="verb", required=True)
    p = station.add_parser("add", help="register or update a charge point")
    p.add_argument("id")
    p.add_argument("--password")
    p.add_argument("--registration", choices=["accepted", "pending", "rejected"])
    p.add_argument("--connectors", type=int)
    p.add_argument("--security-profile", type=int, choices=[0, 1, 2, 3],
                   help="the lowest security profile it may connect with: 0 plain ws, 1 Basic auth, "
                        "2 Basic auth over wss, 3 client certificate (CN = identity) over wss")
    p = station.add_parser("set-password", help="set the HTTP Basic password (stored salted and hashed)")
    p.add_argument("id")
    p.add_argument("password", nargs="?",
                   help="omit it to type it at a prompt or pipe it on standard input (kept out of shell history)")
    p = station.add_parser("list", help="registered charge points")
    p.add_argument("--pending", action="store_true", default=None,
                   help="instead: identities waiting for approval (--unknown-stations pending)")
    station.add_parser("show", help="a charge point: connectors, configuration, transactions, events").add_argument("id")
    station.add_parser("remove", help="forget a charge point (closing its connection)").add_argument("id")
    station.add_parser("approve", help="register an identity that is waiting for approval").add_argument("id")
    p = station.add_parser("log", help="the last frames of a charge point, both directions, oldest first")
    p.add_argument("id")
    p.add_argument("--limit", type=int)

    p = sub.add_parser("audit", help="operator actions, newest first: who, what, when, the answer")
    p.add_argument("--station")
    p.add_argument("--limit", type=int)

    explain = sub.add_parser("explain", help="why something happened").add_subparsers(dest="verb", required=True)
    p = explain.add_parser("tag", help="the recent authorization decisions about an idTag: where, when, why")
    p.add_argument("id_tag")
    p.add_argument("--limit", type=int)

    tag = sub.add_parser("tag", help="authorization identifiers").add_subparsers(dest="verb", required=True)
    p = tag.add_parser("add", help="create or update an idTag")
    p.add_argument("id_tag")
    p.add_argument("--status", choices=["Accepted", "Blocked", "Expired", "Invalid"], default="Accepted")
    p.add_argument("--expiry")
    p.add_argument("--parent")
    tag.add_parser("list", help="every idTag")
    tag.add_parser("remove", help="delete an idTag").add_argument("id_tag")

    tx = sub.add_parser("tx", help="transactions").add_subparsers(dest="verb", required=True)
    p = tx.add_parser("list", help="transactions, newest first")
    p.add_argument("--station")
    p.add_argument("--active", action="store_true")
    tx.add_parser("show", help="one transaction with its meter values and flags").add_argument("id", type=int)

    reservation = sub.add_parser("reservation", help="reservations").add_subparsers(dest="verb", required=True)
    reservation.add_parser("list", help="reservations, with their state").add_argument("--station")

    profile = sub.add_parser("profile", help="charging profiles the central system believes are installed")
    profile_verbs = profile.add_subparsers(dest="verb", required=True)
    profile_verbs.add_parser("list", help="installed profiles per connector").add_argument("station")

    sub.add_parser("status", help="overview: stations, transactions, uptime")

    key = sub.add_parser("api-key", help="keys of the HTTP API").add_subparsers(dest="verb", required=True)
    p = key.add_parser("create", help="a new key, printed once (only its hash is kept)")
    p.add_argument("name")
    p.add_argument("--scope", choices=["read", "operate", "admin"], required=True)
    key.add_parser("list", help="names, scopes, created, last used (never the keys)")
    key.add_parser("revoke", help="delete a key: requests with it get 401 from now on").add_argument("name")

    ca = sub.add_parser("ca", help="the node's certificate authority (signs charge points' CSRs)")
    ca_verbs = ca.add_subparsers(dest="verb", required=True)
    p = ca_verbs.add_parser("init", help="make the CA next to the database (key file mode 0600); never replaces one")
    p.add_argument("--organisation", help="its subject O (default: --cpo-name, else CSMS)")
    ca_verbs.add_parser("show", help="the CA in use: files, subject, serial, validity")

    certificate = sub.add_parser("certificate", help="certificates the node's CA issued")
    certificate.add_subparsers(dest="verb", required=True).add_parser(
        "list", help="every certificate issued, newest first, with serial, expiry and the station's answer"
    ).add_argument("--station", help="only this charge point's (with the PEM)")

    p = sub.add_parser("security-events", help="a station's SecurityEventNotifications, or the central system's own")
    p.add_argument("id", nargs="?")
    p.add_argument("--own", action="store_true", default=None,
                   help="the central system's own security log: failed logins, refused TLS handshakes and certificates, "
                        "security-profile refusals")

    db = sub.add_parser("db", help="the database").add_subparsers(dest="verb", required=True)
    db.add_parser("backup", help="an online, consistent copy while charge points are served (a new file)").add_argument(
        "file", help="a new file to write the copy to (written by the central system's own user)")


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
    p.add_argument("--force", action="store_true",
                   help="send it even if the central system does not know the transaction as active on that station")
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
    p = _station_parser(sub, "send-local-list", "SendLocalList")
    kind = p.add_mutually_exclusive_group(required=True)
    kind.add_argument("--full", dest="update_type", action="store_const", const="Full")
    kind.add_argument("--differential", dest="update_type", action="store_const", const="Differential")
    p.add_argument("--tag", action="append", default=None, help="only these idTags (default: the whole tag store)")
    p = _station_parser(sub, "reserve", "ReserveNow")
    p.add_argument("--connector", type=int, required=True)
    p.add_argument("--id-tag", required=True)
    expiry = p.add_mutually_exclusive_group(required=True)
    expiry.add_argument("--expiry", help="ISO 8601 expiry date")
    expiry.add_argument("--expires-in", type=int, metavar="SECONDS")
    p.add_argument("--parent")
    p.add_argument("--reservation-id", type=int, help="default: allocated by the central system")
    p = _station_parser(sub, "set-profile", "SetChargingProfile")
    p.add_argument("--connector", type=int, required=True)
    p.add_argument("--profile", required=True, help="csChargingProfiles as JSON")
    p = _station_parser(sub, "clear-profile", "ClearChargingProfile")
    p.add_argument("--id", type=int)
    p.add_argument("--connector", type=int)
    p.add_argument("--purpose", choices=["ChargePointMaxProfile", "TxDefaultProfile", "TxProfile"])
    p.add_argument("--stack-level", type=int)
    p = _station_parser(sub, "composite-schedule", "GetCompositeSchedule")
    p.add_argument("--connector", type=int, required=True)
    p.add_argument("--duration", type=int, required=True)
    p.add_argument("--unit", choices=["A", "W"])
    p.add_argument("--local", action="store_true", help="compute it from the installed profiles, without asking the charge point")
    _add_security_commands(sub)


CERTIFICATE_TYPES = ["CentralSystemRootCertificate", "ManufacturerRootCertificate"]
HASH_ALGORITHMS = ["SHA256", "SHA384", "SHA512"]


def _add_security_commands(sub: Any) -> None:
    """The security extension's requests (white paper "Improved security for OCPP 1.6-J")."""
    p = _station_parser(sub, "extended-trigger", "ExtendedTriggerMessage")
    p.add_argument("message", choices=["BootNotification", "LogStatusNotification", "FirmwareStatusNotification",
                                       "Heartbeat", "MeterValues", "SignChargePointCertificate", "StatusNotification"])
    p.add_argument("--connector", type=int)
    p = _station_parser(sub, "install-certificate", "InstallCertificate")
    p.add_argument("--type", choices=CERTIFICATE_TYPES, required=True)
    p.add_argument("--certificate", required=True, metavar="FILE", help="the root certificate (PEM file)")
    p = _station_parser(sub, "delete-certificate", "DeleteCertificate")
    p.add_argument("--hash-algorithm", choices=HASH_ALGORITHMS, required=True)
    p.add_argument("--issuer-name-hash")
    p.add_argument("--issuer-key-hash")
    p.add_argument("--serial")
    p.add_argument("--certificate", metavar="FILE",
                   help="compute the three from this certificate (PEM; its issuer is the next one in the file, or itself)")
    p = _station_parser(sub, "installed-certificates", "GetInstalledCertificateIds")
    p.add_argument("--type", choices=CERTIFICATE_TYPES, required=True)
    p = _station_parser(sub, "get-log", "GetLog")
    p.add_argument("--type", choices=["SecurityLog", "DiagnosticsLog"], required=True)
    p.add_argument("--location", required=True)
    p.add_argument("--oldest")
    p.add_argument("--latest")
    p.add_argument("--retries", type=int)
    p.add_argument("--retry-interval", type=int)
    p.add_argument("--request-id", type=int, help="default: the station's next one, allocated by the central system")
    p = _station_parser(sub, "signed-update-firmware", "SignedUpdateFirmware")
    p.add_argument("--location", required=True)
    p.add_argument("--retrieve-date")
    p.add_argument("--install-date")
    p.add_argument("--signing-certificate", metavar="FILE", help="the firmware signing certificate (PEM file)")
    p.add_argument("--signature", help="the firmware's signature, base64")
    p.add_argument("--firmware", metavar="FILE",
                   help="instead of the two above: sign this firmware file with --firmware-signing-key (the node's)")
    p.add_argument("--retries", type=int)
    p.add_argument("--retry-interval", type=int)
    p.add_argument("--request-id", type=int, help="default: the station's next one, allocated by the central system")
    p = _station_parser(sub, "upgrade-security-profile", "ChangeConfiguration")
    p.add_argument("--to", type=int, choices=[1, 2, 3], required=True,
                   help="the new security profile: ChangeConfiguration SecurityProfile, then Reset Hard (TC_083)")


# Help for the arguments defined above without one: by "command dest", else by dest.
_HELP = {
    "station": "the charge point's identity",
    "id": "the charge point's identity",
    "tx show id": "transaction id",
    "clear-profile id": "chargingProfileId to clear",
    "id_tag": "the idTag (at most 20 characters, compared case-insensitively)",
    "password": "HTTP Basic password (security profile 1); stored salted and hashed",
    "registration": "how BootNotification is answered (default: accepted)",
    "connectors": "number of connectors (for status and profile checks)",
    "status": "the tag's status (default: %(default)s)",
    "expiry": "ISO 8601 expiry date of the tag",
    "parent": "parent idTag (a group)",
    "tx list station": "only this charge point's transactions",
    "reservation list station": "only this charge point's reservations",
    "active": "only transactions without a stop",
    "call action": "the OCPP 1.6 action, e.g. Reset",
    "payload": "the request payload as JSON (default: {})",
    "connector": "connector id",
    "remote-start connector": "connector to start on (default: the charge point chooses)",
    "transaction": "transactionId to stop",
    "reset type": "Soft: restart the software; Hard: reboot",
    "change-availability type": "Operative or Inoperative",
    "key": "configuration key",
    "get-config key": "configuration key to read (repeatable; default: all)",
    "value": "new value",
    "vendor": "vendorId",
    "message_id": "messageId",
    "data": "data, as text",
    "location": "URI for the file",
    "retrieve_date": "ISO 8601 date from which to retrieve (default: now)",
    "retries": "how many times to retry",
    "retry_interval": "seconds between retries",
    "start": "ISO 8601 start of the diagnostics period",
    "stop": "ISO 8601 end of the diagnostics period",
    "message": "the message to trigger, e.g. StatusNotification",
    "trigger connector": "the connector it concerns",
    "reservation_id": "reservationId",
    "update_type": "send the whole list (--full) or only changes (--differential)",
    "expires_in": "seconds from now until the reservation expires",
    "purpose": "only profiles of this purpose",
    "stack_level": "only profiles of this stack level",
    "clear-profile connector": "only profiles of this connector (0: the charge point)",
    "set-profile connector": "connector to install it on (0: the charge point)",
    "duration": "seconds the schedule covers",
    "unit": "rate unit of the schedule",
    "name": "the key's name (1-64 letters, digits, '.', '_', '-')",
    "limit": "at most this many (newest)",
    "audit station": "only actions on this charge point",
    "scope": "read: only GET; operate: also OCPP requests; admin: also stations, tags and keys",
    "certificate list station": "only this charge point's certificates",
    "security-events id": "the charge point's identity",
    "extended-trigger message": "the message to trigger (SignChargePointCertificate: the station sends a CSR)",
    "extended-trigger connector": "the connector it concerns (omit for SignChargePointCertificate)",
    "install-certificate type": "which kind of root certificate",
    "installed-certificates type": "which kind of root certificate",
    "hash_algorithm": "the hash algorithm the station reported it with (GetInstalledCertificateIds)",
    "issuer_name_hash": "issuerNameHash, hexadecimal",
    "issuer_key_hash": "issuerKeyHash, hexadecimal",
    "serial": "serialNumber, hexadecimal",
    "get-log type": "which log to upload",
    "get-log location": "URL the station uploads the log to",
    "oldest": "ISO 8601: the oldest entry wanted",
    "latest": "ISO 8601: the newest entry wanted",
    "signed-update-firmware location": "URL of the firmware",
    "signed-update-firmware retrieve_date": "ISO 8601 date from which to retrieve (default: now)",
    "install_date": "ISO 8601 date at which to install",
}


def document(parser: argparse.ArgumentParser, path: str = "") -> None:
    """Give every argument without help the one in _HELP (tests/unit/test_commands.py checks all have one)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                document(child, f"{path} {name}".strip())
        elif not action.help and action.dest != "help":
            command = path.split(" ")
            action.help = (_HELP.get(f"{' '.join(command[-2:])} {action.dest}")
                           or _HELP.get(f"{command[-1]} {action.dest}") or _HELP.get(action.dest))


def _station_parser(sub: Any, name: str, action: str) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=f"send {action}")
    p.add_argument("station")
    p.set_defaults(action=action)
    return p


def to_request(args: argparse.Namespace) -> AdminCommand | CallRequest:
    """Turn parsed arguments into what the control script sends (CommandError when invalid)."""
    command = args.command
    if command == "composite-schedule" and args.local:
        return AdminCommand("profile.composite", _drop_none(station=args.station, connector=args.connector, duration=args.duration, unit=args.unit))
    if command == "profile":
        return AdminCommand("profile.list", {"station": args.station})
    if command == "station" and args.verb == "list" and args.pending:
        return AdminCommand("station.pending", {})
    if command == "db":
        return AdminCommand("db.backup", {"file": os.path.abspath(args.file)})
    if command == "ca":
        return AdminCommand(f"ca.{args.verb}", _drop_none(organisation=getattr(args, "organisation", None)))
    if command == "certificate":
        return AdminCommand("certificate.list", _drop_none(station=args.station))
    if command == "security-events":
        return AdminCommand("security-events", _drop_none(id=args.id, own=args.own))
    if command in _SECURITY_PAYLOADS:
        return _security_request(args)
    if command in ("station", "tag", "tx", "reservation", "api-key"):
        fields = {k: v for k, v in vars(args).items() if k not in ("command", "verb", "admin_port", "json", "timeout") and v is not None}
        return AdminCommand(f"{command}.{args.verb}", fields)
    if command == "status":
        return AdminCommand("status", {})
    if command == "audit":
        return AdminCommand("audit.list", _drop_none(station=args.station, limit=args.limit))
    if command == "explain":
        return AdminCommand("tag.explain", _drop_none(id_tag=args.id_tag, limit=args.limit))
    if command == "call":
        try:
            payload = json.loads(args.payload)
        except ValueError as exc:
            raise CommandError(f"payload is not valid JSON: {exc}", 2) from None
        return prepare_call(args.station, args.action, payload)
    if command == "send-local-list":
        # Built by the station actor from the tag store and the version it tracks.
        return CallRequest(args.station, args.action, {}, {"plan": args.update_type, "tags": args.tag})
    payload = _PAYLOADS[command](args)
    # Without --reservation-id the station actor allocates one.
    allocate = command == "reserve" and args.reservation_id is None
    return prepare_call(args.station, args.action, payload, {"allocate_reservation_id": True} if allocate else None)


def _drop_none(**fields: Any) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}


def _remote_start(args: argparse.Namespace) -> dict[str, Any]:
    payload = _drop_none(idTag=args.id_tag, connectorId=args.connector)
    if args.profile:
        payload["chargingProfile"] = _json_arg(args.profile, "--profile")
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
    "reserve": lambda a: _drop_none(connectorId=a.connector, idTag=a.id_tag, parentIdTag=a.parent, reservationId=a.reservation_id,
                                    expiryDate=a.expiry or _iso_in(a.expires_in)),
    "set-profile": lambda a: {"connectorId": a.connector, "csChargingProfiles": _json_arg(a.profile, "--profile")},
    "clear-profile": lambda a: _drop_none(id=a.id, connectorId=a.connector, chargingProfilePurpose=a.purpose, stackLevel=a.stack_level),
    "composite-schedule": lambda a: _drop_none(connectorId=a.connector, duration=a.duration, chargingRateUnit=a.unit),
}


def _read(path: str, flag: str) -> str:
    try:
        with open(path, encoding="ascii") as f:
            return f.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise CommandError(f"{flag} {path}: cannot read it: {exc}", 2) from None


def _delete_certificate(a: argparse.Namespace) -> dict[str, Any]:
    if a.certificate is not None:
        from actors.ocpp import pki

        given = [f for f in ("issuer_name_hash", "issuer_key_hash", "serial") if getattr(a, f) is not None]
        if given:
            raise CommandError("give --certificate or the three hashes, not both", 2)
        try:
            return {"certificateHashData": pki.hash_data_of_pem(_read(a.certificate, "--certificate"), a.hash_algorithm)}
        except ValueError as exc:
            raise CommandError(f"--certificate {a.certificate}: {exc}", 2) from None
    if None in (a.issuer_name_hash, a.issuer_key_hash, a.serial):
        raise CommandError("give --issuer-name-hash, --issuer-key-hash and --serial, or --certificate FILE", 2)
    return {"certificateHashData": {"hashAlgorithm": a.hash_algorithm, "issuerNameHash": a.issuer_name_hash,
                                    "issuerKeyHash": a.issuer_key_hash, "serialNumber": a.serial}}


def _signed_firmware(a: argparse.Namespace) -> dict[str, Any]:
    firmware = _drop_none(location=a.location, retrieveDateTime=a.retrieve_date or _now_iso(), installDateTime=a.install_date)
    if a.firmware is not None:
        if a.signing_certificate is not None or a.signature is not None:
            raise CommandError("give --firmware (signed by the node's --firmware-signing-key) or "
                               "--signing-certificate and --signature, not both", 2)
        # Filled in by the client with what the node signs (the key never leaves it): stand-ins to check the rest.
        firmware.update(signingCertificate="", signature="")
    elif a.signing_certificate is None or a.signature is None:
        raise CommandError("give --signing-certificate FILE and --signature B64, or --firmware FILE", 2)
    else:
        firmware.update(signingCertificate=_read(a.signing_certificate, "--signing-certificate"), signature=a.signature)
    return _drop_none(requestId=a.request_id, firmware=firmware, retries=a.retries, retryInterval=a.retry_interval)


_SECURITY_PAYLOADS = {
    "extended-trigger": lambda a: _drop_none(requestedMessage=a.message, connectorId=a.connector),
    "install-certificate": lambda a: {"certificateType": a.type, "certificate": _read(a.certificate, "--certificate")},
    "delete-certificate": _delete_certificate,
    "installed-certificates": lambda a: {"certificateType": a.type},
    "get-log": lambda a: _drop_none(logType=a.type, requestId=a.request_id, retries=a.retries, retryInterval=a.retry_interval,
                                    log=_drop_none(remoteLocation=a.location, oldestTimestamp=a.oldest, latestTimestamp=a.latest)),
    "signed-update-firmware": _signed_firmware,
    "upgrade-security-profile": lambda a: {"key": "SecurityProfile", "value": str(a.to)},
}


def _security_request(args: argparse.Namespace) -> CallRequest:
    payload = _SECURITY_PAYLOADS[args.command](args)
    options: dict[str, Any] = {}
    if args.action in ("GetLog", "SignedUpdateFirmware") and "requestId" not in payload:
        options["allocate_request_id"] = True
    if args.command == "signed-update-firmware" and args.firmware is not None:
        options["sign_firmware"] = _sha256_of(args.firmware)
    if args.command == "upgrade-security-profile":
        options["upgrade_to"] = args.to
    return prepare_call(args.station, args.action, payload, options)


def _sha256_of(path: str) -> str:
    import hashlib

    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    except OSError as exc:
        raise CommandError(f"--firmware {path}: cannot read it: {exc}", 2) from None
    return digest.hexdigest()


def _json_arg(text: str, flag: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise CommandError(f"{flag} is not valid JSON: {exc}", 2) from None


def _iso_in(seconds: int) -> str:
    from storage import iso

    return iso(datetime.now(timezone.utc) + timedelta(seconds=seconds))


def _now_iso() -> str:
    from datetime import datetime, timezone

    from storage import iso

    return iso(datetime.now(timezone.utc))
