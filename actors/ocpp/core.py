"""Core profile: handlers for charge-point-initiated CALLs, and result hooks.

A handler takes a ``Context`` and the request payload (a dict as parsed from
JSON, already valid against the OCPP 1.6 request schema) and returns the
response payload (camelCase, valid against the 1.6 response schema). Handlers
do no I/O: they read through ``ctx.view`` (``actors.ocpp.effects.Reads``) and
say what to store, count and tell as effects (``ctx.write``, ``ctx.count``,
``ctx.tell``) that the station host carries out; decisions live in the pure
functions above them. ``RESULT_HOOKS`` do the bookkeeping once a
central-system-initiated CALL has been answered.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from actors.errors import OcppCallError
from actors.ocpp import energy, security
from actors.ocpp.authorization import decide, id_tag_info, status_reason
from actors.ocpp.effects import Count, Effect, Reads, StartCall, Tell, Write
from actors.settings import Settings
from storage.timefmt import iso, parse_time

log = logging.getLogger(__name__)

Payload = dict[str, Any]

# Keys whose value is a secret: never remembered (OCPP 1.6 JSON errata 3.10 /
# Security whitepaper: "AuthorizationKey is write-only").
SECRET_KEYS = frozenset({"AuthorizationKey"})


@dataclass(frozen=True)
class Context:
    """Who is calling, when, what may be read, and the effects asked for so far.

    ``effects`` collects what a handler wants done beyond its reply: storage
    writes, metrics, actor messages (timers to schedule or cancel, see
    ``actors.ocpp.bookkeeping``); the station host carries them out, writes
    first. Whatever must outlive one call is written: a station actor can be
    evicted between any two messages. Reads through ``view`` see the writes of
    earlier events, not this event's own.
    """

    view: Reads
    station_id: str
    settings: Settings
    now: datetime
    effects: list[Effect] = field(default_factory=list)
    # Transaction ids known to be this station's (a cache the station machine keeps
    # across calls): a MeterValues naming one needs no read to check its owner.
    own_transactions: set[int] = field(default_factory=set)
    # The highest energy register reading (Wh) counted so far per transaction in
    # progress (kept by the station machine too): csms_energy_metered_wh_total grows
    # by what a MeterValues adds to it, with no read while the station actor lives.
    energy_seen: dict[int, float] = field(default_factory=dict)
    # The node's certificate authority, or None (actors.certificate_authority.AuthoritySource,
    # given by the station host: it reads the files, the logic only asks).
    authority: Callable[[], Any] = lambda: None

    def write(self, op: str, *args: Any, **kwargs: Any) -> None:
        self.effects.append(Write(op, args, kwargs))

    def count(self, op: str, *args: Any) -> None:
        self.effects.append(Count(op, args))

    def tell(self, to: Any, message: Any) -> None:
        self.effects.append(Tell(to, message))

    def event(self, kind: str, **data: Any) -> None:
        """An event of the stream (GET /api/v1/events), written with what it reports."""
        self.effects.append(Write("record_event", (kind, self.station_id, self.now, data)))

    def decided(self, id_tag: str, connector_id: int | None, action: str, status: str, reason: str) -> None:
        """An authorization decision and its reason, for ``ctl explain tag``."""
        self.effects.append(Write("record_authorization",
                                  (id_tag, self.station_id, connector_id, action, status, reason, self.now)))

    def call(self, action: str, payload: dict[str, Any]) -> None:
        """Send ``action`` to this charge point after the current answer (the station's CALL queue)."""
        self.effects.append(StartCall(action, payload))


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
    station = ctx.view.get_station(ctx.station_id)
    # The gateway registers stations before they get here: no row means accepted.
    reply = boot_reply(station["registration"] if station else "accepted", ctx.settings, ctx.now)
    ctx.write("record_boot", ctx.station_id, req, reply["status"], ctx.now)
    ctx.event("station.booted", status=reply["status"], vendor=req.get("chargePointVendor"),
              model=req.get("chargePointModel"), firmware_version=req.get("firmwareVersion"))
    log.info("station %s: booted (%s)", ctx.station_id, reply["status"])
    return reply


def heartbeat(ctx: Context, req: Payload) -> Payload:
    ctx.write("touch", ctx.station_id, ctx.now)
    return {"currentTime": iso(ctx.now)}


def status_notification(ctx: Context, req: Payload) -> Payload:
    ctx.write("record_status", ctx.station_id, req, ctx.now)
    ctx.event("connector.status", connector=req["connectorId"], status=req["status"], error_code=req["errorCode"],
              info=req.get("info"), vendor_error_code=req.get("vendorErrorCode"), timestamp=req.get("timestamp"))
    ctx.count("status_notification", req["status"], req["errorCode"])
    return {}


def check_tag(ctx: Context, id_tag: str) -> tuple[Payload, str]:
    """The idTagInfo for ``id_tag`` and why (``authorization.decide``), its parent looked up."""
    tag = ctx.view.get_tag(id_tag)
    parent = ctx.view.get_tag(tag["parent"]) if tag and tag.get("parent") and tag["status"] == "Accepted" else None
    return decide(tag, ctx.now, parent)


def authorize(ctx: Context, req: Payload) -> Payload:
    info, reason = check_tag(ctx, req["idTag"])
    ctx.count("authorization", "Authorize", info["status"])
    ctx.decided(req["idTag"], None, "Authorize", info["status"], reason)
    return {"idTagInfo": info}


# Implausible but valid values: accepted (OCPP asks the central system to answer them
# as usual), flagged on the transaction for `ctl tx show` and counted by reason.
FUTURE_SLACK = timedelta(days=1)  # charge point clocks drift; a day ahead is not drift
PAST_SLACK = timedelta(days=365)  # offline transactions arrive late, but not years late
FLAGS = ("start timestamp in the future", "start timestamp over a year old", "negative meterStart",
         "stop timestamp in the future", "stop timestamp over a year old", "stops before it starts",
         "meterStop below meterStart")


def _when(value: str) -> datetime | None:
    try:
        return parse_time(value)
    except ValueError:
        return None


def _timestamp_flags(which: str, at: datetime | None, now: datetime) -> list[str]:
    if at is not None and at > now + FUTURE_SLACK:
        return [f"{which} timestamp in the future"]
    if at is not None and at < now - PAST_SLACK:
        return [f"{which} timestamp over a year old"]
    return []


def start_flags(req: Payload, now: datetime) -> list[str]:
    flags = _timestamp_flags("start", _when(req["timestamp"]), now)
    if req["meterStart"] < 0:
        flags.append("negative meterStart")
    return flags


def stop_flags(req: Payload, started: Payload, now: datetime) -> list[str]:
    at = _when(req["timestamp"])
    flags = _timestamp_flags("stop", at, now)
    began = _when(started["start_timestamp"])
    if at is not None and began is not None and at < began:
        flags.append("stops before it starts")
    if req["meterStop"] < started["meter_start"]:
        flags.append("meterStop below meterStart")
    return flags


def _flagged(ctx: Context, tx_id: int, flags: list[str]) -> None:
    for flag in flags:
        ctx.count("transaction_flagged", flag)
    if flags:
        log.warning("station %s: transaction %s accepted and flagged: %s", ctx.station_id, tx_id, "; ".join(flags))


def start_transaction(ctx: Context, req: Payload) -> Payload:
    if req["connectorId"] <= 0:
        # OCPP 1.6 §6.45: "connectorId > 0"; connector 0 is the charge point itself.
        raise OcppCallError("PropertyConstraintViolation", f"connectorId must be greater than 0, not {req['connectorId']}")
    # OCPP 1.6 §4.8: the Central System "MUST verify validity of the identifier".
    info, reason = check_tag(ctx, req["idTag"])
    if ctx.settings.concurrent_tx and info["status"] == "Accepted":
        # A transaction open on this very connector is a retry or is about to be
        # abandoned by this start: only transactions elsewhere count.
        open_elsewhere = any(
            (tx["station_id"], tx["connector_id"]) != (ctx.station_id, req["connectorId"])
            for tx in ctx.view.active_transactions_for_tag(req["idTag"])
        )
        info = start_status(info, open_elsewhere, concurrent_tx=True)
        reason = status_reason(info["status"])
    # TC_037_3: a transactionId is handed out whatever the status.
    retried = ctx.view.start_retry(ctx.station_id, req)
    retry = retried is not None
    if retried is not None:
        tx_id = retried
    else:
        tx_id = ctx.view.next_transaction_id()
        flags = start_flags(req, ctx.now)
        ctx.write("start_transaction", ctx.station_id, req, info["status"], ctx.now, transaction_id=tx_id, flags=flags)
        ctx.count("transaction_started")
        ctx.count("authorization", "StartTransaction", info["status"])
        ctx.decided(req["idTag"], req["connectorId"], "StartTransaction", info["status"], reason)
        ctx.event("transaction.started", transaction_id=tx_id, connector=req["connectorId"],
                  id_tag_status=info["status"], meter_start=req["meterStart"])
        _flagged(ctx, tx_id, flags)
        _remember_energy(ctx, tx_id, float(req["meterStart"]))
    _remember_own(ctx, tx_id)
    log.info(
        "station %s connector %s: transaction %d %s (%s)",
        ctx.station_id, req["connectorId"], tx_id, "retried" if retry else "started",
        info["status"],
    )
    return {"transactionId": tx_id, "idTagInfo": info}


def stop_transaction(ctx: Context, req: Payload) -> Payload:
    # OCPP 1.6 errata 3.18: unknown ids and -1 are answered "as if valid".
    before = ctx.view.get_transaction(req["transactionId"])
    known = before is not None and before["station_id"] == ctx.station_id
    first_stop = known and before is not None and before["stopped_at"] is None
    flags = stop_flags(req, before, ctx.now) if first_stop and before is not None else []
    ctx.write("stop_transaction", ctx.station_id, req, ctx.now, flags=flags)
    _flagged(ctx, req["transactionId"], flags)
    if first_stop and before is not None:
        # storage.transactions: the first stop of a known transaction stores energy = stop - start.
        ctx.count("transaction_stopped")
        ctx.count("energy_delivered", req["meterStop"] - before["meter_start"])
        ctx.event("transaction.stopped", transaction_id=req["transactionId"],
                  energy_wh=req["meterStop"] - before["meter_start"], reason=req.get("reason", "Local"),
                  connector=before.get("connector_id"))
        # What the MeterValues did not count yet: both energy counters agree once it stops.
        baseline = _energy_baseline(ctx, req["transactionId"], before)
        ctx.count("energy_metered", req["meterStop"] - baseline)
        ctx.energy_seen.pop(req["transactionId"], None)
    log.info(
        "station %s: transaction %s stopped (%s)%s", ctx.station_id, req.get("transactionId"),
        req.get("reason", "Local"), "" if known else " [unknown transaction]",
    )
    # OCPP 1.6 §6.50: idTagInfo only "if idTag was supplied in the request".
    if "idTag" in req:
        return {"idTagInfo": id_tag_info(ctx.view.get_tag(req["idTag"]), ctx.now)}
    return {}


FOREIGN_TRANSACTION = "transaction of another charge point"


def meter_values(ctx: Context, req: Payload) -> Payload:
    flag = None
    tx_id = req.get("transactionId")
    if tx_id is not None and tx_id not in ctx.own_transactions:
        owner = ctx.view.transaction_station(tx_id)
        if owner == ctx.station_id:
            _remember_own(ctx, tx_id)
        elif owner is not None:
            # Never attached to that transaction: kept for the sender, flagged (answered as usual).
            log.warning("station %s: MeterValues name transaction %s of another charge point; kept flagged",
                        ctx.station_id, tx_id)
            flag = FOREIGN_TRANSACTION
    ctx.write("record_meter_values", ctx.station_id, req, ctx.now, flag=flag)
    if tx_id is not None and flag is None:
        _meter_energy(ctx, tx_id, req["meterValue"])
    return {}


ENERGY_LOOKBACK = 5  # stored meterValue elements read for the baseline when a station actor is new


def _meter_energy(ctx: Context, tx_id: int, meter_value: list[Payload]) -> None:
    """Count the growth of the transaction's energy register since the highest reading counted."""
    reading = energy.reading_wh(meter_value)
    if reading is None:
        return
    if tx_id in ctx.energy_seen:
        baseline = ctx.energy_seen[tx_id]
    else:
        tx = ctx.view.get_transaction(tx_id)
        if tx is None or tx["station_id"] != ctx.station_id or tx["stopped_at"] is not None:
            return  # late values of a stopped transaction: its stop counted the rest
        baseline = _energy_baseline(ctx, tx_id, tx)
    if reading > baseline:
        ctx.count("energy_metered", reading - baseline)
        _remember_energy(ctx, tx_id, reading)


def _energy_baseline(ctx: Context, tx_id: int, tx: Payload) -> float:
    """The highest reading of ``tx_id`` counted already: remembered, else its meterStart or the
    highest of its last stored readings (the station actor was made anew since they came)."""
    if tx_id in ctx.energy_seen:
        return ctx.energy_seen[tx_id]
    stored = [r for row in ctx.view.latest_meter_values(tx_id, ENERGY_LOOKBACK)
              if (r := energy.register_wh(row["sampled_value"])) is not None]
    return max([float(tx["meter_start"]), *stored])


def _remember_energy(ctx: Context, tx_id: int, wh: float) -> None:
    if tx_id not in ctx.energy_seen and len(ctx.energy_seen) >= OWN_TRANSACTIONS_KEPT:
        ctx.energy_seen.clear()
    ctx.energy_seen[tx_id] = wh


OWN_TRANSACTIONS_KEPT = 16  # a station has a transaction per connector at a time


def _remember_own(ctx: Context, tx_id: int) -> None:
    if len(ctx.own_transactions) >= OWN_TRANSACTIONS_KEPT:
        ctx.own_transactions.clear()
    ctx.own_transactions.add(tx_id)


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
    # Kept (pruned after --data-transfer-retention-days) and streamed: the vendor's data is
    # what the operator configured the vendor for.
    ctx.write("record_data_transfer", ctx.station_id, req["vendorId"], req.get("messageId"), req.get("data"), ctx.now)
    ctx.event("datatransfer", vendor_id=req["vendorId"], message_id=req.get("messageId"), data=req.get("data"))
    return {"status": status}


def diagnostics_status_notification(ctx: Context, req: Payload) -> Payload:
    ctx.write("record_station_event", ctx.station_id, "diagnostics", req["status"], ctx.now)
    return {}


def firmware_status_notification(ctx: Context, req: Payload) -> Payload:
    ctx.write("record_station_event", ctx.station_id, "firmware", req["status"], ctx.now)
    return {}


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
    # The security extension: actors.ocpp.security.
    **security.HANDLERS,
}


# -- result hooks (CSMS -> CP CALL answered) -----------------------------------


def got_configuration(ctx: Context, req: Payload, res: Payload) -> None:
    ctx.write(
        "record_configuration", ctx.station_id,
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
        ctx.write("set_password", ctx.station_id, req["value"])
        ctx.write("set_configuration_value", ctx.station_id, req["key"], None, ctx.now)
        return
    if req["key"] == "SecurityProfile" and req["value"].strip() in ("1", "2", "3"):
        # Security whitepaper A05.FR.09 (TC_083): once the charge point accepted a
        # higher profile, the central system SHALL NOT accept the lower one any more.
        ctx.write("raise_security_profile", ctx.station_id, int(req["value"]))
    ctx.write("set_configuration_value", ctx.station_id, req["key"], req["value"], ctx.now)


RESULT_HOOKS: dict[str, Callable[[Context, Payload, Payload], None]] = {
    "GetConfiguration": got_configuration,
    "ChangeConfiguration": changed_configuration,
    **security.RESULT_HOOKS,
}
