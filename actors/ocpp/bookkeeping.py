"""What the central system remembers around the requests it sends (profiles 2-6).

For each CSMS-initiated action there may be:

| hook     | when                                   | does                                             |
|----------|----------------------------------------|--------------------------------------------------|
| prepare  | before sending (station actor)         | builds/checks the payload(s); CommandError = refused, nothing sent |
| result   | the charge point answered CALLRESULT   | records the outcome; may return follow-up payloads to send |
| failure  | CALLERROR, timeout or connection gone  | records that the request did not take effect      |

and the charge-point-initiated handlers in ``actors.ocpp.core`` call the
``on_*`` functions at the end of this module. Like the handlers they read
through ``ctx.view`` and return what to store as ``Write`` effects; effects on
timers (reservation expiry, profile validTo) are the scheduler's own
``ScheduleTimer`` / ``CancelTimer`` messages, told to ``SCHEDULER``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from actors.errors import CommandError
from actors.messages import CancelTimer, ScheduleTimer
from actors.ocpp import local_list, reservations, security, smart_charging
from actors.ocpp.authorization import status_reason
from actors.ocpp.core import Context
from actors.ocpp.effects import SCHEDULER

log = logging.getLogger(__name__)

Payload = dict[str, Any]


RESERVATION_EXPIRY = "reservation-expiry"
PROFILE_EXPIRY = "profile-expiry"
LOCAL_LIST_FAILED = ("Failed", "VersionMismatch")


def reservation_timer(station_id: str, reservation_id: int) -> str:
    return f"reservation:{station_id}:{reservation_id}"


def profile_timer(station_id: str, connector_id: int, profile_id: int) -> str:
    return f"profile:{station_id}:{connector_id}:{profile_id}"


# -- prepare ----------------------------------------------------------------------


def prepare(ctx: Context, action: str, payload: Payload, options: dict[str, Any]) -> list[Payload]:
    """The payloads to send for this request (usually exactly ``[payload]``)."""
    hook = _PREPARE.get(action)
    return hook(ctx, payload, options) if hook else [payload]


def _prepare_reserve(ctx: Context, payload: Payload, options: dict[str, Any]) -> list[Payload]:
    payload = dict(payload)
    if options.get("allocate_reservation_id") or "reservationId" not in payload:
        payload["reservationId"] = ctx.view.next_reservation_id()
    held = ctx.view.get_reservation(payload["reservationId"]) if isinstance(payload["reservationId"], int) else None
    if held is not None and reservations.is_active(held["status"]) and held["station_id"] != ctx.station_id:
        # §5.13 lets the charge point replace a reservation of its own, not another station's.
        raise CommandError(f"reservationId {payload['reservationId']} is active on station {held['station_id']}", 2)
    ctx.write("record_reservation_request", ctx.station_id, payload, ctx.now)
    return [payload]


def _prepare_local_list(ctx: Context, payload: Payload, options: dict[str, Any]) -> list[Payload]:
    if "plan" not in options:  # a raw `call ... SendLocalList {...}`: sent as given
        return [payload]
    return _plan_local_list(ctx, options["plan"], options.get("tags"))


def _plan_local_list(ctx: Context, update_type: str, only: list[str] | None) -> list[Payload]:
    state = ctx.view.local_list_state(ctx.station_id)
    updates = local_list.plan_updates(
        ctx.view.list_tags(), state, update_type=update_type, now=ctx.now, only=only,
        max_length=_config_int(ctx, "SendLocalListMaxLength"),
    )
    return [local_list.payload(update) for update in updates]


def _prepare_set_profile(ctx: Context, payload: Payload, options: dict[str, Any]) -> list[Payload]:
    connector_id = payload["connectorId"]
    try:
        smart_charging.validate(
            connector_id, payload["csChargingProfiles"], installed=_installed(ctx), limits=_limits(ctx),
            active_transaction=_active_transaction(ctx, connector_id), now=ctx.now,
        )
    except smart_charging.ProfileError as error:
        raise CommandError(f"charging profile refused: {error}", 2) from None
    return [payload]


def _prepare_remote_start(ctx: Context, payload: Payload, options: dict[str, Any]) -> list[Payload]:
    profile = payload.get("chargingProfile")
    if profile is not None:
        try:
            smart_charging.validate(
                payload.get("connectorId", 1), profile, installed=_installed(ctx), limits=_limits(ctx),
                active_transaction=None, now=ctx.now, remote_start=True,
            )
        except smart_charging.ProfileError as error:
            raise CommandError(f"charging profile refused: {error}", 2) from None
    return [payload]


_PREPARE: dict[str, Callable[[Context, Payload, dict[str, Any]], list[Payload]]] = {
    "GetLog": lambda ctx, payload, options: [security.prepare(ctx, "GetLog", payload)],
    "SignedUpdateFirmware": lambda ctx, payload, options: [security.prepare(ctx, "SignedUpdateFirmware", payload)],
    "ReserveNow": _prepare_reserve,
    "SendLocalList": _prepare_local_list,
    "SetChargingProfile": _prepare_set_profile,
    "RemoteStartTransaction": _prepare_remote_start,
}


# -- results ------------------------------------------------------------------------


def _advance(ctx: Context, reservation_id: int, event: str, **fields: Any) -> str | None:
    """Move a reservation along ``actors.ocpp.reservations``' table; its new status, or None.

    An event the table does not allow in the current status (a cancel of an
    Expired reservation, a late ReserveNow answer, a second use) changes
    nothing and is logged: the table, not the caller, decides.
    """
    found = ctx.view.get_reservation(reservation_id)
    if found is None:
        return None
    try:
        status = reservations.next_status(found["status"], event)
    except reservations.ReservationError as refused:
        log.warning("station %s: reservation %s left %s: %s", ctx.station_id, reservation_id, found["status"], refused)
        return None
    ctx.write("set_reservation_status", reservation_id, status, ctx.now, **fields)
    return status


def result(ctx: Context, action: str, request: Payload, response: Payload, options: dict[str, Any]) -> list[Payload]:
    """Record a CALLRESULT; return follow-up payloads of the same action to send next."""
    hook = _RESULT.get(action)
    return (hook(ctx, request, response, options) or []) if hook else []


def _reserve_result(ctx: Context, request: Payload, response: Payload, options: dict[str, Any]) -> None:
    reservation_id, status = request["reservationId"], response["status"]
    if _advance(ctx, reservation_id, f"answer:{status}") == "Accepted":
        ctx.tell(SCHEDULER, ScheduleTimer(reservation_timer(ctx.station_id, reservation_id), ctx.station_id,
                                         RESERVATION_EXPIRY, request["expiryDate"], {"reservation_id": reservation_id}))


def _cancel_result(ctx: Context, request: Payload, response: Payload, options: dict[str, Any]) -> None:
    reservation_id = request["reservationId"]
    if response["status"] == "Accepted" and _advance(ctx, reservation_id, "cancelled") == "Cancelled":
        ctx.tell(SCHEDULER, CancelTimer(reservation_timer(ctx.station_id, reservation_id)))


def _local_list_result(ctx: Context, request: Payload, response: Payload, options: dict[str, Any]) -> list[Payload]:
    status = response["status"]
    update = local_list.LocalListUpdate(request["listVersion"], request["updateType"], request.get("localAuthorizationList", []))
    state = ctx.view.local_list_state(ctx.station_id)
    after = local_list.entries_after(state["entries"], update) if status == "Accepted" else state["entries"]
    ctx.write(
        "record_local_list_result", ctx.station_id, version=update.version, update_type=update.update_type, entries_after=after,
        status=status, entry_count=len(update.entries), now=ctx.now,
    )
    if status == "Accepted":
        # The charge point now decides these tags itself, offline too: each entry is an
        # authorization decision of the central system (ctl explain tag). Removals have no idTagInfo.
        decided = [(e["idTag"], ctx.station_id, None, "SendLocalList", e["idTagInfo"]["status"],
                    status_reason(e["idTagInfo"]["status"]), ctx.now) for e in update.entries if "idTagInfo" in e]
        if decided:
            ctx.write("record_authorizations", decided)
    differential = update.update_type == "Differential"
    if status in LOCAL_LIST_FAILED and differential and "plan" in options and not options.get("fallback"):
        # OCPP 1.6 §5.15: after a Differential update answered Failed or VersionMismatch
        # the Central System SHOULD send a Full update (resending a failed Full is pointless).
        options["fallback"] = True
        log.info("station %s: SendLocalList %s; falling back to a Full update", ctx.station_id, status)
        payloads = _plan_local_list(ctx, "Full", options.get("tags"))
        # Version numbers only go up: past the refused one too.
        shift = update.version + 1 - payloads[0]["listVersion"] if payloads else 0
        for payload in payloads if shift > 0 else []:
            payload["listVersion"] += shift
        return payloads
    return []


def _local_list_version_result(ctx: Context, request: Payload, response: Payload, options: dict[str, Any]) -> None:
    ctx.write("record_local_list_version", ctx.station_id, response["listVersion"], ctx.now)


def _firmware_result(ctx: Context, request: Payload, response: Payload, options: dict[str, Any]) -> None:
    ctx.write("record_station_event", ctx.station_id, "firmware-request", "Accepted", ctx.now, detail=request)


def _diagnostics_result(ctx: Context, request: Payload, response: Payload, options: dict[str, Any]) -> None:
    ctx.write("record_station_event", ctx.station_id, "diagnostics-request", "Accepted", ctx.now,
                                   detail={**request, "fileName": response.get("fileName")})


def _set_profile_result(ctx: Context, request: Payload, response: Payload, options: dict[str, Any]) -> None:
    if response["status"] != "Accepted":
        return
    connector_id, profile = request["connectorId"], request["csChargingProfiles"]
    _install(ctx, connector_id, profile)


def _clear_profile_result(ctx: Context, request: Payload, response: Payload, options: dict[str, Any]) -> None:
    if response["status"] != "Accepted":
        return
    kept, cleared = smart_charging.clear(
        _installed(ctx), profile_id=request.get("id"), connector_id=request.get("connectorId"),
        purpose=request.get("chargingProfilePurpose"), stack_level=request.get("stackLevel"),
    )
    _save(ctx, kept)
    for item in cleared:
        ctx.tell(SCHEDULER, CancelTimer(profile_timer(ctx.station_id, item.connector_id, item.profile["chargingProfileId"])))


def _remote_start_result(ctx: Context, request: Payload, response: Payload, options: dict[str, Any]) -> None:
    if response["status"] == "Accepted" and "chargingProfile" in request:
        # The TxProfile applies to the transaction this remote start creates (errata 3.41):
        # installed once StartTransaction tells its transactionId. Kept in storage, so
        # that a restart of the station actor in between does not lose it.
        ctx.write(
            "add_remote_start_profile", ctx.station_id, request.get("connectorId"), request["idTag"], request["chargingProfile"], ctx.now
        )


_RESULT: dict[str, Callable[[Context, Payload, Payload, dict[str, Any]], Any]] = {
    "ReserveNow": _reserve_result,
    "CancelReservation": _cancel_result,
    "SendLocalList": _local_list_result,
    "GetLocalListVersion": _local_list_version_result,
    "UpdateFirmware": _firmware_result,
    "GetDiagnostics": _diagnostics_result,
    "SetChargingProfile": _set_profile_result,
    "ClearChargingProfile": _clear_profile_result,
    "RemoteStartTransaction": _remote_start_result,
}


def failure(ctx: Context, action: str, request: Payload, outcome: str) -> None:
    """Record that a request did not take effect (CALLERROR, timeout, not connected)."""
    security.failure(ctx, action, request, outcome)
    if action == "ReserveNow" and "reservationId" in request:
        _advance(ctx, request["reservationId"], "error", note=outcome)
    elif action == "SendLocalList" and "listVersion" in request:
        state = ctx.view.local_list_state(ctx.station_id)
        ctx.write(
            "record_local_list_result", ctx.station_id, version=request["listVersion"], update_type=request["updateType"],
            entries_after=state["entries"], status="Error", entry_count=len(request.get("localAuthorizationList", [])), now=ctx.now,
        )
    elif action in ("UpdateFirmware", "GetDiagnostics"):
        kind = "firmware-request" if action == "UpdateFirmware" else "diagnostics-request"
        ctx.write("record_station_event", ctx.station_id, kind, "Failed", ctx.now, detail={**request, "outcome": outcome})


# -- timers and charge-point messages ------------------------------------------------


def on_timer(ctx: Context, kind: str, data: dict[str, Any]) -> None:
    if kind == RESERVATION_EXPIRY:
        if _advance(ctx, data["reservation_id"], "expired") == "Expired":
            log.info("station %s: reservation %s expired", ctx.station_id, data["reservation_id"])
    elif kind == PROFILE_EXPIRY:
        kept, gone = _split_expired(ctx)
        if gone:
            _save(ctx, kept)
            log.info("station %s: %d charging profile(s) past validTo removed", ctx.station_id, len(gone))


def on_transaction_started(ctx: Context, request: Payload, transaction_id: int) -> None:
    """StartTransaction: consume its reservation; install a remote start's TxProfile."""
    reservation_id = request.get("reservationId")
    if reservation_id is not None:
        found = ctx.view.reservation_for_start(ctx.station_id, request["connectorId"], reservation_id)
        if found is not None and _advance(ctx, found["id"], "used", transaction_id=transaction_id) == "Used":
            ctx.tell(SCHEDULER, CancelTimer(reservation_timer(ctx.station_id, found["id"])))
    waiting = ctx.view.remote_start_profile(ctx.station_id, request["connectorId"], request["idTag"])
    if waiting is not None:
        row_id, profile = waiting
        ctx.write("drop_remote_start_profile", row_id)
        _install(ctx, request["connectorId"], {**profile, "transactionId": transaction_id})


def on_transaction_stopped(ctx: Context, transaction_id: int) -> None:
    """A TxProfile leaves the stack when its transaction stops."""
    kept, gone = smart_charging.drop_transaction(_installed(ctx), transaction_id)
    if gone:
        _save(ctx, kept)


# -- helpers ------------------------------------------------------------------------


def _installed(ctx: Context) -> list[smart_charging.Installed]:
    return smart_charging.installed_from_rows(ctx.view.installed_profiles(ctx.station_id))


def _save(ctx: Context, installed: list[smart_charging.Installed]) -> None:
    ctx.write("replace_profiles", ctx.station_id, [(i.connector_id, i.profile) for i in installed], ctx.now)


def _install(ctx: Context, connector_id: int, profile: Payload) -> None:
    _save(ctx, smart_charging.install(_installed(ctx), connector_id, profile))
    if profile.get("validTo"):
        ctx.tell(SCHEDULER, ScheduleTimer(profile_timer(ctx.station_id, connector_id, profile["chargingProfileId"]),
                                         ctx.station_id, PROFILE_EXPIRY, profile["validTo"]))


def _split_expired(ctx: Context) -> tuple[list[smart_charging.Installed], list[smart_charging.Installed]]:
    installed = _installed(ctx)
    gone = smart_charging.expired(installed, ctx.now)
    return [i for i in installed if i not in gone], gone


def _config(ctx: Context, key: str) -> str | None:
    for row in ctx.view.get_configuration(ctx.station_id):
        if row["key"] == key:
            return row["value"]
    return None


def _config_int(ctx: Context, key: str) -> int | None:
    value = _config(ctx, key)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _limits(ctx: Context) -> smart_charging.StationLimits:
    return smart_charging.StationLimits(
        allowed_units=_config(ctx, "ChargingScheduleAllowedChargingRateUnit"),
        max_stack_level=_config_int(ctx, "ChargeProfileMaxStackLevel"),
        max_installed=_config_int(ctx, "MaxChargingProfilesInstalled"),
    )


def _active_transaction(ctx: Context, connector_id: int) -> int | None:
    for tx in ctx.view.list_transactions(station_id=ctx.station_id, active=True):
        if tx["connector_id"] == connector_id:
            return int(tx["id"])
    return None
