"""OCPP requests an operator sends to a charge point: checked here, once, for every front end.

The control script (``actors.control``) and the HTTP API (``actors.api``)
both turn what an operator asked for into a :class:`CallRequest` with
:func:`prepare_call`, send it as ``SendCall`` to the host holding the station,
and turn the ``CallReply`` into the one JSON shape of spec/CONTROL.md with
:func:`call_document`::

    {"station": "CP1", "action": "Reset", "request": {"type": "Hard"}, "response": {"status": "Accepted"}}
    {"station": "CP1", "action": "Reset", "request": {...}, "error": {"code": ..., "description": ..., "details": {}}}

What a request does to the central system's own state (a ReserveNow recorded
as a reservation, a SetChargingProfile installed once Accepted, ...) is done
by the station actor (``actors.ocpp.bookkeeping``), whoever sent it; the
``options`` of a CallRequest only ask it to complete the payload
(``allocate_reservation_id``; ``plan``/``tags`` for SendLocalList).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from actors.errors import CommandError, OcppCallError
from actors.messages import CallReply
from actors.ocpp import ocppj

__all__ = ["OUTCOMES", "CallRequest", "call_document", "error_document", "invalid_payload", "prepare_call"]

# CallReply.outcome -> what it means for an operator (each front end maps it to its own codes).
OUTCOMES = ("result", "error", "timeout", "not-connected", "refused")


@dataclass(frozen=True)
class CallRequest:
    """One OCPP request for ``station``, its payload valid against the 1.6 schema."""

    station: str
    action: str
    payload: dict[str, Any]
    options: dict[str, Any] = field(default_factory=dict)


def prepare_call(station: str, action: str, payload: Any, options: dict[str, Any] | None = None) -> CallRequest:
    """Check an operator's request; return it ready to send.

    Raises CommandError (exit 2) when ``action`` is not a request the central
    system sends or ``payload`` is not a JSON object, and OcppCallError when the
    payload is not valid against the OCPP 1.6 schema (:func:`invalid_payload`
    words it for the operator). With ``allocate_reservation_id`` in ``options``
    a ReserveNow without reservationId is checked with a stand-in id: the
    station actor allocates the real one.
    """
    options = dict(options or {})
    if action not in ocppj.CSMS_ACTIONS:
        raise CommandError(f"{action!r} is not an OCPP 1.6 request the central system sends", 2)
    if not isinstance(payload, dict):
        raise CommandError("payload must be a JSON object", 2)
    if action == "ReserveNow" and options.get("allocate_reservation_id") and "reservationId" not in payload:
        ocppj.validate(action, {**payload, "reservationId": 1})
    elif action in ("GetLog", "SignedUpdateFirmware") and options.get("allocate_request_id") and "requestId" not in payload:
        ocppj.validate(action, {**payload, "requestId": 1})  # the station actor allocates the real one
    else:
        options.pop("allocate_reservation_id", None)
        options.pop("allocate_request_id", None)
        ocppj.validate(action, payload)
    return CallRequest(station, action, payload, options)


def invalid_payload(error: OcppCallError) -> str:
    """How an operator is told that a payload broke the schema."""
    return f"payload is not valid OCPP 1.6: {error.description}"


def call_document(reply: CallReply) -> dict[str, Any]:
    """The JSON answer to a request that reached the station actor (CONTROL.md, ``--json`` of ``call``)."""
    document: dict[str, Any] = {"station": reply.station, "action": reply.action, "request": reply.request}
    if reply.outcome == "result":
        document["response"] = reply.response
    else:
        document["error"] = reply.error
    return document


def error_document(code: str, description: str, request: CallRequest | None = None) -> dict[str, Any]:
    """The JSON answer to a request that ended before (or without) the station actor."""
    document: dict[str, Any] = {"error": {"code": code, "description": description, "details": {}}}
    if request is not None:
        document = {"station": request.station, "action": request.action, "request": request.payload, **document}
    return document
