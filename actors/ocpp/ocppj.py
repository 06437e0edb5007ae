"""OCPP-J 1.6 framing and schema validation, with no I/O.

Rules (OCPP-J 1.6 §4, errata JE 3.2, 5.1/5.2):

| inbound frame                                  | outcome                                     |
|------------------------------------------------|---------------------------------------------|
| not JSON, not an array, wrong element count    | CALLERROR FormationViolation                |
| MessageTypeId not an integer                   | CALLERROR FormationViolation                |
| unknown MessageTypeId                          | ignored (J §4.1.3), logged                  |
| message id not a string, or longer than 36     | CALLERROR FormationViolation                |
| CALL with an action that is not OCPP 1.6       | CALLERROR NotImplemented                    |
| CALL with a 1.6 action a CP may not send       | CALLERROR NotSupported                      |
| payload wrong type / CiString too long         | CALLERROR TypeConstraintViolation           |
| an integer outside 64 bits, a number that      | CALLERROR TypeConstraintViolation (a CALL); |
| overflows to infinity (1e400)                  | an invalid answer (a CALLRESULT: ``invalid``) |
| required field missing, array cardinality      | CALLERROR OccurenceConstraintViolation      |
| enum / range / multipleOf / date-time invalid  | CALLERROR PropertyConstraintViolation       |
| (also a date-time beyond year 9999 in UTC)     |                                             |
| unexpected property, other structure problems  | CALLERROR FormationViolation                |

When the message id of a broken frame cannot be read, the CALLERROR carries
``"-1"``. ``errorDetails`` is ``{}`` when empty (J §4.2.3).
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from typing import Any

import ocpp
from jsonschema import Draft4Validator, FormatChecker
from jsonschema.exceptions import ValidationError

from actors.errors import OcppCallError
from actors.ocpp.schemacheck import Check, compile_schema
from storage.timefmt import parse_time

CALL, CALLRESULT, CALLERROR = 2, 3, 4
MAX_ID_LENGTH = 36  # OCPP-J 1.6 §4.1.4: "maximum of 36 characters"
# JSON numbers have no size limit; what we store (SQLite INTEGER) and send has 64
# bits, and 1e400 parses to infinity. A frame can hold one only if its text has a
# run of 19 digits (2**63 has 19) or a three-digit exponent: only then is the
# parsed frame walked (_out_of_range), so ordinary frames pay one regex search.
INT64 = 2**63
_BIG_NUMBER_HINT = re.compile(r"\d{19}|[eE]\+?\d{3}")
UNKNOWN_ID = "-1"

# OCPP 1.6 §4 plus the security white paper: what a charge point may send.
CP_ACTIONS = frozenset(
    {
        "Authorize",
        "BootNotification",
        "DataTransfer",
        "DiagnosticsStatusNotification",
        "FirmwareStatusNotification",
        "Heartbeat",
        "MeterValues",
        "StartTransaction",
        "StatusNotification",
        "StopTransaction",
        "LogStatusNotification",
        "SecurityEventNotification",
        "SignCertificate",
        "SignedFirmwareStatusNotification",
    }
)

# OCPP 1.6 §5 plus the security white paper: what the central system may send.
CSMS_ACTIONS = frozenset(
    {
        "CancelReservation",
        "ChangeAvailability",
        "ChangeConfiguration",
        "ClearCache",
        "ClearChargingProfile",
        "DataTransfer",
        "GetCompositeSchedule",
        "GetConfiguration",
        "GetDiagnostics",
        "GetLocalListVersion",
        "RemoteStartTransaction",
        "RemoteStopTransaction",
        "ReserveNow",
        "Reset",
        "SendLocalList",
        "SetChargingProfile",
        "TriggerMessage",
        "UnlockConnector",
        "UpdateFirmware",
        "CertificateSigned",
        "DeleteCertificate",
        "ExtendedTriggerMessage",
        "GetInstalledCertificateIds",
        "GetLog",
        "InstallCertificate",
        "SignedUpdateFirmware",
    }
)

# Schemas whose `limit` fields carry multipleOf 0.1: validated with Decimal.
_DECIMAL_SCHEMAS = frozenset(
    {"SetChargingProfile", "RemoteStartTransaction", "GetCompositeScheduleResponse"}
)

_SCHEMA_DIR = os.path.join(os.path.dirname(ocpp.__file__), "v16", "schemas")

_FORMATS = FormatChecker(formats=())


@_FORMATS.checks("date-time", raises=ValueError)
def _is_date_time(value: object) -> bool:
    if isinstance(value, str):
        parse_time(value)
    return True


@dataclass(frozen=True)
class Call:
    message_id: str
    action: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class CallResult:
    message_id: str
    payload: dict[str, Any]
    # A payload number 64 bits cannot hold: the answer is invalid, as a schema violation is.
    invalid: OcppCallError | None = field(default=None, compare=False)


@dataclass(frozen=True)
class CallError:
    message_id: str
    code: str
    description: str
    details: dict[str, Any]


@dataclass(frozen=True)
class MalformedAnswer:
    """A CALLRESULT or CALLERROR with a readable message id but the wrong shape.

    It is not answered (OCPP-J §4.2.3: a CALLERROR answers a CALL, never an
    answer); the station ends the matching outstanding CALL with an error at
    once instead of waiting for the call timeout.
    """

    message_id: str
    description: str


Frame = Call | CallResult | CallError | MalformedAnswer


class Ignored(Exception):
    """Raised when a frame must be ignored (unknown MessageTypeId, J §4.1.3)."""


def parse(text: str | bytes) -> Frame:
    """Parse one OCPP-J frame; raise OcppCallError (with ``message_id``) or Ignored.

    A malformed CALL raises (it is answered with a CALLERROR); a malformed
    CALLRESULT or CALLERROR whose id can be read comes back as MalformedAnswer.
    """
    try:
        frame = _DECODER.decode(text) if type(text) is str else json.loads(text, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError):
        raise _error(UNKNOWN_ID, "FormationViolation", "frame is not valid JSON") from None
    except RecursionError:
        raise _error(UNKNOWN_ID, "FormationViolation", "frame is nested too deeply") from None
    if not isinstance(frame, list) or len(frame) < 3:
        raise _error(UNKNOWN_ID, "FormationViolation", "frame is not a JSON array of 3 to 5 elements")
    kind, message_id = frame[0], frame[1]
    if not isinstance(message_id, str) or not message_id:
        raise _error(UNKNOWN_ID, "FormationViolation", "message id must be a non-empty string")
    if len(message_id) > MAX_ID_LENGTH:
        raise _error(message_id, "FormationViolation", "message id longer than 36 characters")
    if not isinstance(kind, int) or isinstance(kind, bool):
        raise _error(message_id, "FormationViolation", "MessageTypeId must be an integer")
    if kind == CALL:
        if len(frame) != 4 or not isinstance(frame[2], str):
            raise _error(message_id, "FormationViolation", "CALL must be [2, id, action, payload]")
        if not isinstance(frame[3], dict):
            raise _error(message_id, "FormationViolation", "CALL payload must be a JSON object")
        if (where := _big_number(text, frame[3])) is not None:
            raise _error(message_id, "TypeConstraintViolation", f"{where}: number out of range (64-bit integers, finite numbers)")
        return Call(message_id, frame[2], frame[3])
    if kind == CALLRESULT:
        if len(frame) != 3 or not isinstance(frame[2], dict):
            return MalformedAnswer(message_id, "CALLRESULT must be [3, id, payload] with an object payload")
        if (where := _big_number(text, frame[2])) is not None:
            return CallResult(message_id, frame[2], _error(
                message_id, "TypeConstraintViolation", f"{where}: number out of range (64-bit integers, finite numbers)"))
        return CallResult(message_id, frame[2])
    if kind == CALLERROR:
        if len(frame) != 5 or not isinstance(frame[2], str) or not isinstance(frame[3], str):
            return MalformedAnswer(message_id, "CALLERROR must be [4, id, code, text, details]")
        details = frame[4] if isinstance(frame[4], dict) else {"value": frame[4]}
        return CallError(message_id, frame[2], frame[3], details)
    raise Ignored(f"unknown MessageTypeId {kind!r}")


def _big_number(text: str | bytes, payload: dict[str, Any]) -> str | None:
    """Where in ``payload`` a number is that 64 bits cannot hold, or None."""
    hint = text if isinstance(text, str) else text.decode("utf-8", "replace")
    if not _BIG_NUMBER_HINT.search(hint):
        return None
    stack: list[tuple[Any, str]] = [(payload, "payload")]  # iterative: nesting depth is the sender's
    while stack:
        value, where = stack.pop()
        kind = type(value)
        if kind is int:
            if not -INT64 <= value < INT64:
                return where
        elif kind is float:
            if math.isinf(value):
                return where
        elif kind is dict:
            stack.extend((v, f"{where}/{k}") for k, v in value.items())
        elif kind is list:
            stack.extend((v, f"{where}/{i}") for i, v in enumerate(value))
    return None


@dataclass(frozen=True, slots=True)
class Parsed:
    """A text frame parsed and, for a CALL, checked against its schema.

    Neither depends on the session, so a station host does both before its
    writer takes the database lock (``actors.host.worker``); the station
    machine acts on the result in order. ``error``: the frame could not be
    parsed (OcppCallError or Ignored). ``invalid``: what ``check_inbound_call``
    raised for a CALL, raised again by the machine where it would have checked.
    """

    frame: Frame | None
    error: Exception | None = None
    invalid: Exception | None = None


def parse_checked(text: str | bytes) -> Parsed:
    """``parse`` and, for a CALL, ``check_inbound_call``; their refusals kept, not raised."""
    try:
        frame = parse(text)
    except (OcppCallError, Ignored) as refused:
        return Parsed(None, refused)
    if not isinstance(frame, Call):
        return Parsed(frame)
    try:
        check_inbound_call(frame)
    except Exception as invalid:  # noqa: BLE001 - a bug is answered InternalError by the machine
        return Parsed(frame, None, invalid)
    return Parsed(frame)


def _reject_constant(name: str) -> Any:
    # NaN and Infinity are not JSON (RFC 8259); Python's parser would accept them.
    raise ValueError(f"{name} is not valid JSON")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def check_inbound_call(call: Call) -> None:
    """Validate a CALL from a charge point: action known and payload valid, else OcppCallError."""
    if call.action not in CP_ACTIONS:
        if call.action in CSMS_ACTIONS:
            raise _error(call.message_id, "NotSupported", f"{call.action} is not sent by a charge point")
        raise _error(call.message_id, "NotImplemented", f"unknown action {call.action[:40]!r}")
    validate(call.action, call.payload, message_id=call.message_id)


def validate(schema_name: str, payload: dict[str, Any], *, message_id: str = UNKNOWN_ID) -> None:
    """Validate ``payload`` against the OCPP 1.6 schema ``schema_name`` (e.g. ``ResetResponse``).

    Raises OcppCallError with the matching 1.6 code and the first problem found.
    A payload the compiled check (``actors.ocpp.schemacheck``) accepts is valid;
    jsonschema runs only for the others, to find and describe the problem.
    """
    validator = _validator(schema_name)
    if schema_name not in _DECIMAL_SCHEMAS and _quick_check(schema_name)(payload):
        return
    try:
        if schema_name in _DECIMAL_SCHEMAS:
            payload = json.loads(json.dumps(payload), parse_float=Decimal, parse_constant=_reject_constant)
        error = next(iter(sorted(validator.iter_errors(payload), key=lambda e: e.path)), None)
    except (ValueError, TypeError, ArithmeticError) as exc:  # e.g. NaN in a multipleOf field
        raise _error(message_id, "PropertyConstraintViolation", f"payload: invalid number ({exc})") from None
    if error is not None:
        raise _error(message_id, _code_for(error), _describe(error))


def _code_for(error: ValidationError) -> str:
    keyword = error.validator
    if keyword in ("type", "maxLength", "minLength"):
        return "TypeConstraintViolation"
    if keyword in ("required", "minItems", "maxItems"):
        return "OccurenceConstraintViolation"
    if keyword in ("enum", "minimum", "maximum", "multipleOf", "format", "uniqueItems"):
        return "PropertyConstraintViolation"
    return "FormationViolation"


def _describe(error: ValidationError) -> str:
    where = "/".join(str(p) for p in error.absolute_path) or "payload"
    message = error.message if len(error.message) <= 200 else error.message[:200] + "..."
    return f"{where}: {message}"


@lru_cache(maxsize=None)
def _validator(schema_name: str) -> Draft4Validator:
    path = os.path.join(_SCHEMA_DIR, f"{schema_name}.json")
    try:
        with open(path, encoding="utf-8-sig") as f:
            text = f.read()
    except OSError:
        raise _error(UNKNOWN_ID, "NotImplemented", f"no OCPP 1.6 schema {schema_name!r}") from None
    parse_float = Decimal if schema_name in _DECIMAL_SCHEMAS else float
    return Draft4Validator(json.loads(text, parse_float=parse_float), format_checker=_FORMATS)


@lru_cache(maxsize=None)
def _quick_check(schema_name: str) -> Check:
    return compile_schema(_validator(schema_name).schema, formats=_FORMATS)


def _error(message_id: str, code: str, description: str) -> OcppCallError:
    error = OcppCallError(code, description)
    error.message_id = message_id  # type: ignore[attr-defined]
    return error


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


# One decoder and one encoder for every frame: json.loads/json.dumps with options
# build a new JSONDecoder/JSONEncoder on each call (1-2% of a host's GIL time).
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=_json_default)


def dumps(obj: Any) -> str:
    return _ENCODER.encode(obj)


def call_frame(message_id: str, action: str, payload: dict[str, Any]) -> str:
    return dumps([CALL, message_id, action, payload])


def result_frame(message_id: str, payload: dict[str, Any]) -> str:
    return dumps([CALLRESULT, message_id, payload])


def error_frame(message_id: str, code: str, description: str, details: dict[str, Any] | None = None) -> str:
    return dumps([CALLERROR, message_id, code, description, details or {}])
