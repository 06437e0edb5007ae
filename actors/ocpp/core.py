"""Core profile: handlers for charge-point-initiated CALLs, and result hooks.

A handler takes a ``Context`` and the request payload (a dict as parsed from
JSON, already valid against the OCPP 1.6 request schema) and returns the
response payload (camelCase, valid against the 1.6 response schema). Handlers
persist through the ``Store`` and do no other I/O; decisions live in the pure
functions above them. ``RESULT_HOOKS`` do the bookkeeping once a
central-system-initiated CALL has been answered.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import metrics
from actors.ocpp.authorization import id_tag_info
from actors.settings import Settings
from storage import Store, iso

log = logging.getLogger(__name__)

Payload = dict[str, Any]

# Keys whose value is a secret: never remembered (OCPP 1.6 JSON errata 3.10 /
# Security whitepaper: "AuthorizationKey is write-only").
SECRET_KEYS = frozenset({"AuthorizationKey"})


@dataclass(frozen=True)
class Context:
    """Who is calling, when, and where to persist.

    ``effects`` collects what a handler wants done beyond its reply (timers to
    schedule or cancel, see ``actors.ocpp.bookkeeping``); the station actor carries
    them out. Whatever must outlive one call is in ``store``: a station actor
    can be restarted between any two messages.
    """

    store: Store
    station_id: str
    settings: Settings
    now: datetime
    effects: list[Any] = field(default_factory=list)


# -- pure decisions -----------------------------------------------------------


def boot_reply(registration: str, settings: Settings, now: datetime) -> Payload:
    """BootNotification.conf for the station's registration state.

    # OCPP 1.6 §4.2: Accepted -> interval is the heartbeat interval; Pending or
    # Rejected -> interval is the minimum wait before the next BootNotification.
    """
    status = {"accepted": "Accepted", "pending": "Pending", "rejected": "Rejected"}[registration]
    interval = settings.heartbeat_interval if status == "Accepted" else settings.boot_retry_interval
    return {"status": status, "currentTime": iso(now), "interval": interval}


def start_status(
    info: Payload, open_elsewhere: bool, *, concurrent_tx: bool
) -> Payload:
    """idTagInfo for a StartTransaction: ConcurrentTx when the policy is on, the
    tag is otherwise Accepted and already has a transaction open elsewhere."""
    if concurrent_tx and open_elsewhere and info["status"] == "Accepted":
        return {**info, "status": "ConcurrentTx"}
    return info


def data_transfer_status(
    vendors: tuple[tuple[str, tuple[str, ...]], ...], vendor_id: str, message_id: str | None
) -> str:
    """DataTransfer.conf status.

    # OCPP 1.6 §4.3: unknown vendorId -> UnknownVendorId; messageId mismatch ->
    # UnknownMessageId. An empty messageId tuple accepts every messageId.
    """
    accepted = dict(vendors)
    if vendor_id not in accepted:
        return "UnknownVendorId"
    message_ids = accepted[vendor_id]
    if message_ids and message_id not in message_ids:
        return "UnknownMessageId"
    return "Accepted"


def remembered_keys(configuration_key: list[Payload]) -> list[Payload]:
    """GetConfiguration keys as they may be stored: secret values dropped."""
    return [
        {**k, "value": None} if k.get("key") in SECRET_KEYS else k for k in configuration_key
    ]


# -- handlers ------------------------------------------------------------------


def boot_notification(ctx: Context, req: Payload) -> Payload:
    station = ctx.store.get_station(ctx.station_id)
    # The gateway registers stations before they get here: no row means accepted.
    reply = boot_reply(station["registration"] if station else "accepted", ctx.settings, ctx.now)
    ctx.store.record_boot(ctx.station_id, req, reply["status"], ctx.now)
    log.info("station %s booted: %s", ctx.station_id, reply["status"])
    return reply


def heartbeat(ctx: Context, req: Payload) -> Payload:
    ctx.store.touch(ctx.station_id, ctx.now)
    return {"currentTime": iso(ctx.now)}


def status_notification(ctx: Context, req: Payload) -> Payload:
    ctx.store.record_status(ctx.station_id, req, ctx.now)
    return {}


def authorize(ctx: Context, req: Payload) -> Payload:
    return {"idTagInfo": id_tag_info(ctx.store.get_tag(req["idTag"]), ctx.now)}


def start_transaction(ctx: Context, req: Payload) -> Payload:
    # OCPP 1.6 §4.8: the Central System "MUST verify validity of the identifier".
    info = id_tag_info(ctx.store.get_tag(req["idTag"]), ctx.now)
    if ctx.settings.concurrent_tx and info["status"] == "Accepted":
        # A transaction open on this very connector is a retry or is about to be
        # abandoned by this start: only transactions elsewhere count.
        open_elsewhere = any(
            (tx["station_id"], tx["connector_id"]) != (ctx.station_id, req["connectorId"])
            for tx in ctx.store.active_transactions_for_tag(req["idTag"])
        )
        info = start_status(info, open_elsewhere, concurrent_tx=True)
    # TC_037_3: a transactionId is handed out whatever the status.
    tx_id, retry = ctx.store.start_transaction(ctx.station_id, req, info["status"], ctx.now)
    if not retry:
        metrics.transaction_started()
    log.info(
        "station %s connector %s: transaction %d %s (%s)",
        ctx.station_id, req["connectorId"], tx_id, "retried" if retry else "started",
        info["status"],
    )
    return {"transactionId": tx_id, "idTagInfo": info}


def stop_transaction(ctx: Context, req: Payload) -> Payload:
    # OCPP 1.6 errata 3.18: unknown ids and -1 are answered "as if valid".
    before = ctx.store.get_transaction(req["transactionId"])
    known = ctx.store.stop_transaction(ctx.station_id, req, ctx.now)
    if known and before is not None and before["stopped_at"] is None:
        metrics.transaction_stopped()
        after = ctx.store.get_transaction(req["transactionId"])
        if after is not None and after["energy_wh"] is not None:
            metrics.energy_delivered(after["energy_wh"])
    log.info(
        "station %s: transaction %s stopped (%s)%s", ctx.station_id, req.get("transactionId"),
        req.get("reason", "Local"), "" if known else " [unknown transaction]",
    )
    # OCPP 1.6 §6.50: idTagInfo only "if idTag was supplied in the request".
    if "idTag" in req:
        return {"idTagInfo": id_tag_info(ctx.store.get_tag(req["idTag"]), ctx.now)}
    return {}


def meter_values(ctx: Context, req: Payload) -> Payload:
    ctx.store.record_meter_values(ctx.station_id, req, ctx.now)
    return {}


def data_transfer(ctx: Context, req: Payload) -> Payload:
    status = data_transfer_status(
        ctx.settings.data_transfer_vendors, req["vendorId"], req.get("messageId")
    )
    if status != "Accepted":
        log.warning(
            "station %s: DataTransfer vendorId %r messageId %r: %s",
            ctx.station_id, req["vendorId"], req.get("messageId"), status,
        )
    return {"status": status}


def diagnostics_status_notification(ctx: Context, req: Payload) -> Payload:
    ctx.store.record_station_event(ctx.station_id, "diagnostics", req["status"], ctx.now)
    return {}


def firmware_status_notification(ctx: Context, req: Payload) -> Payload:
    ctx.store.record_station_event(ctx.station_id, "firmware", req["status"], ctx.now)
    return {}


# -- security extension (white paper "Improved security for OCPP 1.6-J") ----------


def security_event_notification(ctx: Context, req: Payload) -> Payload:
    # A04.FR.03: "The Central System SHALL confirm every SecurityEventNotification".
    ctx.store.record_station_event(ctx.station_id, "security", req["type"], ctx.now, detail=req)
    log.warning("station %s: security event %s", ctx.station_id, req["type"])
    return {}


def log_status_notification(ctx: Context, req: Payload) -> Payload:
    ctx.store.record_station_event(ctx.station_id, "log", req["status"], ctx.now, detail=req)
    return {}


def signed_firmware_status_notification(ctx: Context, req: Payload) -> Payload:
    ctx.store.record_station_event(ctx.station_id, "signed-firmware", req["status"], ctx.now, detail=req)
    return {}


def sign_certificate(ctx: Context, req: Payload) -> Payload:
    # A02.FR.04: "Accepted if it can process the request, else Rejected": this central
    # system has no certificate authority (yet), so it cannot.
    log.warning("station %s: SignCertificate rejected: no certificate authority configured", ctx.station_id)
    return {"status": "Rejected"}


HANDLERS: dict[str, Callable[[Context, Payload], Payload]] = {
    "BootNotification": boot_notification,
    "Heartbeat": heartbeat,
    "StatusNotification": status_notification,
    "Authorize": authorize,
    "StartTransaction": start_transaction,
    "StopTransaction": stop_transaction,
    "MeterValues": meter_values,
    "DataTransfer": data_transfer,
    "DiagnosticsStatusNotification": diagnostics_status_notification,
    "FirmwareStatusNotification": firmware_status_notification,
    "SecurityEventNotification": security_event_notification,
    "LogStatusNotification": log_status_notification,
    "SignedFirmwareStatusNotification": signed_firmware_status_notification,
    "SignCertificate": sign_certificate,
}


# -- result hooks (CSMS -> CP CALL answered) -----------------------------------


def got_configuration(ctx: Context, req: Payload, res: Payload) -> None:
    ctx.store.record_configuration(
        ctx.station_id,
        remembered_keys(res.get("configurationKey", [])),
        res.get("unknownKey", []),
        ctx.now,
    )


def changed_configuration(ctx: Context, req: Payload, res: Payload) -> None:
    if res.get("status") not in ("Accepted", "RebootRequired"):
        return
    if req["key"] in SECRET_KEYS:
        # Security whitepaper §2 (Security Profile 1/2): after the charge point
        # accepted a new AuthorizationKey it uses it as its Basic-auth password.
        ctx.store.set_password(ctx.station_id, req["value"])
        ctx.store.set_configuration_value(ctx.station_id, req["key"], None, ctx.now)
        return
    ctx.store.set_configuration_value(ctx.station_id, req["key"], req["value"], ctx.now)


RESULT_HOOKS: dict[str, Callable[[Context, Payload, Payload], None]] = {
    "GetConfiguration": got_configuration,
    "ChangeConfiguration": changed_configuration,
}
