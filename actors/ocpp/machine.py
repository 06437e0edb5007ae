"""The station machine: one charge point's OCPP-J session, without I/O.

In the shape of websockets' sans-I/O protocol: an event goes in (a frame's
text with ``now``, a connection opened or closed, an operator's CALL, a timer,
a call timeout) and a ``Step`` of effects comes out (``actors.ocpp.effects``):
writes, metrics, frames to send, connections to close, actor messages, call
timeouts to arm. The station host (``actors.host.station``) carries them out in
order, writes first, and sends frames only after the turn's commit.

The machine owns the session: accepted or not, the last boot status, the
message ids seen on this connection, the flood window, and the queue of CALLs
the central system sends (one outstanding at a time, ``actors.ocpp.calls``).
What outlives a session is read through ``Reads`` and written as effects. One
place, ``_on_call``, turns an exception into a CALLERROR; if the writes of a
CALL fail when the host applies them, the step's ``fallback`` (an InternalError
CALLERROR) replaces its other effects.

Clocks are arguments: ``now`` (UTC, for what is stored and sent) and ``mono``
(``time.perf_counter``, for rates and latencies). Message ids of outgoing CALLs
come from ``new_id``.
"""

from __future__ import annotations

import logging
import uuid
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import Any

from actors.errors import CommandError, OcppCallError
from actors.messages import CallReply, SendCall, StationStateReply, TimerFired
from actors.ocpp import bookkeeping, core, ocppj
from actors.ocpp.calls import CallQueue, OutgoingCall
from actors.ocpp.effects import (
    SCHEDULER,
    ArmTimeout,
    Close,
    Count,
    Effect,
    Reads,
    Send,
    StartCall,
    Step,
    Tell,
    Write,
)
from actors.settings import Settings

log = logging.getLogger(__name__)

TOUCH_EVERY = 30.0  # seconds between last_seen writes for a station that talks but sends no Heartbeat

SEEN_IDS = 1000  # message ids remembered per connection (J §4.1.4 uniqueness)

__all__ = ["SCHEDULER", "SEEN_IDS", "StationMachine", "refusal_reason"]


class StationMachine:
    """The central system's side of one charge point, as a pure state machine."""

    def __init__(self, station_id: str, *, settings: Settings, view: Reads, pid: int = 0,
                 new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
                 authority: Callable[[], Any] = lambda: None) -> None:
        self.station_id = station_id
        self.authority = authority  # the node's CA or None (actors.certificate_authority.AuthoritySource)
        self.settings = settings
        self.view = view
        self.pid = pid
        self.new_id = new_id
        row = view.get_station(station_id)
        self.registered = row is not None
        # OCPP-J §5.4: a station Accepted before is served without a new BootNotification.
        self.ever_accepted = bool(row and row.get("ever_accepted"))
        self.boot_status: str | None = (row or {}).get("last_boot_status")
        self.conn: int | None = None  # the current connection's number
        self.opened_at: datetime | None = None  # when it was recorded connected (mark_connected)
        self.calls = CallQueue()
        self.seen_ids: OrderedDict[str, None] = OrderedDict()
        self.window_start = 0.0
        self.window_calls = 0
        self.own_transactions: set[int] = set()  # core.Context.own_transactions, kept between calls
        self.energy_seen: dict[int, float] = {}  # core.Context.energy_seen, kept between calls
        self.touched_at = 0.0  # mono time last_seen was last written (csms_stations_silent reads it)
        self.meter_window_start = 0.0  # meterValue elements stored this minute (a station's volume bound)
        self.meter_window_rows = 0

    @property
    def idle(self) -> bool:
        """Nothing to keep in memory: no connection, no CALL outstanding or queued."""
        return self.conn is None and self.calls.outstanding is None and not self.calls.queued

    def state(self) -> StationStateReply:
        out = self.calls.outstanding
        return StationStateReply(
            self.station_id, self.conn is not None, self.ever_accepted, self.pid,
            out.action if out else None, len(self.calls.queued),
        )

    # -- connection -----------------------------------------------------------------

    def connected(self, conn: int, peer: str, now: datetime, mono: float) -> Step:
        step = Step()
        if self.conn is not None:
            # Newest connection wins: no zombie lock-out after a silent drop.
            log.info("station %s: new connection from %s replaces the old one", self.station_id, peer)
            step.effects.append(Count("connection_event", ("replaced",)))
            step.effects.append(Close(self.conn, 1000, "replaced by a new connection"))
            self._connection_lost(step, "replaced by a new connection", now)
        self.conn, self.opened_at = conn, now
        self.seen_ids.clear()
        self.window_start, self.window_calls = mono, 0  # the flood limit is per connection
        self.touched_at = mono  # mark_connected sets last_seen
        step.effects.append(Write("mark_connected", (self.station_id, True, now)))  # creates an unknown one's row
        step.effects.append(Write("record_event", ("station.connected", self.station_id, now, {"peer": peer})))
        if not self.registered:
            # Admitted by --unknown-stations accept: registered here, in the writer's
            # group commit, after the upgrade completed (never by the handshake).
            self.registered = True
            log.info("station %s: registered (it was unknown; --unknown-stations accept)", self.station_id)
        step.effects.append(Count("connection_event", ("opened",)))
        log.info("station %s: connected from %s", self.station_id, peer)
        return step

    def disconnected(self, conn: int, reason: str, now: datetime) -> Step:
        """Connection ``conn`` ended (an older, replaced one is ignored)."""
        step = Step()
        if conn == self.conn:
            log.info("station %s: connection %s", self.station_id, reason)
            self._connection_lost(step, reason, now)
        step.fallback = partial(_without_writes, step.effects)
        return step

    def close(self, code: int, reason: str, now: datetime) -> Step:
        """Close the connection from the central system's side (revoked lease, removal, shutdown)."""
        step = Step()
        if self.conn is not None:
            log.info("station %s: connection closed by the central system: %s (%d)", self.station_id, reason, code)
            step.effects.append(Close(self.conn, code, reason))
            self._connection_lost(step, reason, now)
        step.fallback = partial(_without_writes, step.effects)
        return step

    def _connection_lost(self, step: Step, reason: str, now: datetime) -> None:
        self.conn = None
        # Only if no newer connection (on another host) was recorded since this one.
        step.effects.append(Write("mark_connected", (self.station_id, False, now, self.opened_at)))
        step.effects.append(Write("record_event", ("station.disconnected", self.station_id, now, {"reason": reason})))
        step.effects.append(Count("connection_event", ("closed",)))
        # "When the connection drops, the outstanding and queued CALLs fail at once."
        for call in self.calls.drain():
            self._reply(step, call, "not-connected", now,
                        error={"code": "NotConnected", "description": reason, "details": {}})

    # -- inbound frames ---------------------------------------------------------

    def received(self, conn: int, message: str | bytes, now: datetime, mono: float, received: float,
                 parsed: ocppj.Parsed | None = None) -> Step:
        """A frame arrived on ``conn`` at ``received`` (mono clock); handled at ``mono``.

        ``parsed``: ``ocppj.parse_checked(message)``, when the host did it beforehand.
        """
        step = Step()
        if conn != self.conn:
            return step  # a frame of a connection that was replaced or closed meanwhile
        if isinstance(message, bytes):
            step.effects.append(Send(conn, ocppj.error_frame(ocppj.UNKNOWN_ID, "FormationViolation", "OCPP-J frames are text frames")))
            step.effects.append(Count("call_error", ("FormationViolation", "in")))
            return step
        if parsed is None:
            parsed = ocppj.parse_checked(message)
        if isinstance(parsed.error, ocppj.Ignored):
            log.warning("station %s: frame ignored: %s", self.station_id, parsed.error)
            return step
        if isinstance(parsed.error, OcppCallError):
            log.warning("station %s: malformed frame: %s", self.station_id, parsed.error)
            step.effects.extend(self._error(conn, getattr(parsed.error, "message_id", ocppj.UNKNOWN_ID), parsed.error, "?"))
            return step
        frame = parsed.frame
        if isinstance(frame, ocppj.Call):
            self._on_call(step, conn, frame, now, mono, received, parsed.invalid)
        elif frame is not None:
            self._on_answer(step, frame, now, mono)
        return step

    def _on_call(self, step: Step, conn: int, call: ocppj.Call, now: datetime, mono: float, received: float,
                 invalid: Exception | None) -> None:
        action = call.action if call.action in ocppj.CP_ACTIONS else "unknown"
        try:
            if not self._within_rate(step, mono, now):
                return
            if call.message_id in self.seen_ids:
                raise OcppCallError("ProtocolError", f"message id {call.message_id!r} was already used on this connection")
            self._remember(call.message_id)
            if invalid is not None:  # ocppj.check_inbound_call refused it (unknown action, schema)
                raise invalid
            if call.action == "MeterValues":
                self._within_meter_budget(len(call.payload.get("meterValue", ())), mono)
            if not self.ever_accepted and call.action != "BootNotification":
                # OCPP-J errata 3.8: answer a not-yet-accepted station with SecurityError.
                raise OcppCallError("SecurityError", "charge point has not been accepted: send BootNotification first")
            handler = core.HANDLERS.get(call.action)
            if handler is None:
                raise OcppCallError("NotSupported", f"{call.action} is not supported by this central system")
            ctx = self._context(now)
            reply = handler(ctx, call.payload)
            self._after_inbound(ctx, call, reply)
        except OcppCallError as error:
            log.warning("station %s: %s %s refused: %s", self.station_id, call.action[:40], call.message_id, error)
            step.effects.extend(self._error(conn, call.message_id, error, action))
            return
        except Exception:
            log.exception("station %s: error handling %s", self.station_id, call.action)
            step.effects.extend(self._internal_error(conn, call.message_id, action))
            return
        session = (self.boot_status, self.ever_accepted)
        if call.action == "BootNotification":
            self.boot_status = reply.get("status")
            self.ever_accepted = self.ever_accepted or self.boot_status == "Accepted"
        started = [e for e in ctx.effects if type(e) is StartCall]
        step.effects.extend(e for e in ctx.effects if type(e) is not StartCall)
        step.effects.append(Send(conn, ocppj.result_frame(call.message_id, reply)))
        step.effects.append(Count("message", (action, "in", "result")))
        step.effects.append(Count("call_latency", (action, "in", mono - received)))
        if mono - self.touched_at >= TOUCH_EVERY and call.action != "Heartbeat":
            # OCPP 1.6 §4.6: any PDU proves liveness, not only a Heartbeat (which touches itself).
            self.touched_at = mono
            step.effects.append(Write("touch", (self.station_id, now)))
        # CALLs the handler starts (CertificateSigned) leave after its answer, through the queue.
        queued = [self._start(step, effect, now, mono) for effect in started]
        # If the host cannot store what the reply acknowledges, the charge point must retry.
        step.fallback = partial(self._not_stored, conn, call.message_id, action, session, queued, now, mono)

    def _context(self, now: datetime) -> core.Context:
        return core.Context(view=self.view, station_id=self.station_id, settings=self.settings, now=now,
                            own_transactions=self.own_transactions, energy_seen=self.energy_seen,
                            authority=self.authority)

    def _after_inbound(self, ctx: core.Context, call: ocppj.Call, reply: dict[str, Any]) -> None:
        """Bookkeeping of other profiles that a Core message triggers (reservations, profiles)."""
        if call.action not in ("StartTransaction", "StopTransaction"):
            return
        mark = len(ctx.effects)
        try:
            if call.action == "StartTransaction":
                bookkeeping.on_transaction_started(ctx, call.payload, reply["transactionId"])
            else:
                bookkeeping.on_transaction_stopped(ctx, call.payload["transactionId"])
        except Exception:  # never fail the reply for bookkeeping: drop only its effects
            log.exception("station %s: bookkeeping after %s failed", self.station_id, call.action)
            del ctx.effects[mark:]

    def timer(self, timer: TimerFired, now: datetime) -> Step:
        ctx = self._context(now)
        bookkeeping.on_timer(ctx, timer.kind, timer.data)
        return Step(ctx.effects)

    def _not_stored(self, conn: int, message_id: str, action: str, session: tuple[str | None, bool],
                     queued: list[str] | None = None, now: datetime | None = None, mono: float = 0.0) -> list[Effect]:
        """A CALL whose writes failed: as if it never arrived, and answered InternalError."""
        self.boot_status, self.ever_accepted = session
        self.seen_ids.pop(message_id, None)  # the charge point may resend it as it was
        effects = self._internal_error(conn, message_id, action)
        for started in queued or ():  # the CALLs it started are withdrawn unsent
            next_call = self.calls.withdraw(started)
            if next_call is not None and now is not None:
                step = Step()
                self._transmit(step, next_call, now, mono)
                effects.extend(step.effects)
        return effects

    def _start(self, step: Step, effect: StartCall, now: datetime, mono: float) -> str:
        """Queue a CALL the central system starts by itself (no requester waits for it); its message id."""
        call = OutgoingCall(self.new_id(), effect.action, dict(effect.payload), extra={"options": {}})
        self._submit(step, call, [call.payload], now, mono)
        return call.message_id

    def _internal_error(self, conn: int, message_id: str, action: str) -> list[Effect]:
        return self._error(conn, message_id, OcppCallError("InternalError", "internal error"), action)

    def _error(self, conn: int, message_id: str, error: OcppCallError, action: str) -> list[Effect]:
        return [
            Send(conn, ocppj.error_frame(message_id, error.code, error.description, error.details)),
            Count("message", (action, "in", "error")),
            Count("call_error", (error.code, "in")),
        ]

    def _remember(self, message_id: str) -> None:
        self.seen_ids[message_id] = None
        if len(self.seen_ids) > SEEN_IDS:
            self.seen_ids.popitem(last=False)

    def _within_meter_budget(self, rows: int, mono: float) -> None:
        """Bound what one station stores: per message, and per minute (then retried later)."""
        per_message = self.settings.max_meter_values_per_message
        if per_message > 0 and rows > per_message:
            raise OcppCallError("OccurenceConstraintViolation",
                                f"{rows} meterValue elements in one MeterValues; at most {per_message}")
        per_minute = self.settings.max_meter_values_per_minute
        if per_minute <= 0:
            return
        if mono - self.meter_window_start >= 60.0:
            self.meter_window_start, self.meter_window_rows = mono, 0
        if self.meter_window_rows + rows > per_minute:
            raise OcppCallError("GenericError", f"more than {per_minute} meter values this minute; send them later")
        self.meter_window_rows += rows

    def _within_rate(self, step: Step, mono: float, now: datetime) -> bool:
        limit = self.settings.max_call_rate
        if limit <= 0:
            return True
        if mono - self.window_start >= 1.0:
            self.window_start, self.window_calls = mono, 0
        self.window_calls += 1
        if self.window_calls > limit:
            log.warning("station %s: more than %d CALLs per second: closing", self.station_id, limit)
            step.effects.extend(self.close(1008, "message rate exceeded", now).effects)
            return False
        return True

    # -- outbound CALLs -----------------------------------------------------------

    def send_call(self, message: SendCall, requester: Any, now: datetime, mono: float) -> Step:
        step = Step()
        options = dict(message.options)
        call = OutgoingCall(self.new_id(), message.action, dict(message.payload), requester=requester,
                            request_id=message.request_id,
                            extra={"options": options, "who": message.requested_by or "unknown",
                                   "requested": dict(message.payload)})
        # Answered here without a frame: if the audit record cannot be written, the
        # requester is still told (the record is lost, not the answer).
        step.fallback = partial(_without_writes, step.effects)
        refusal = refusal_reason(self.boot_status, message.action, message.payload)
        if refusal is not None:
            self._reply(step, call, "refused", now, error={"code": "Refused", "description": refusal, "details": {}})
            return step
        if self.conn is None:
            self._reply(step, call, "not-connected", now,
                        error={"code": "NotConnected", "description": "charge point is not connected", "details": {}})
            return step
        ctx = self._context(now)
        try:
            payloads = bookkeeping.prepare(ctx, message.action, call.payload, options)
            for payload in payloads:
                ocppj.validate(message.action, payload)
        except (CommandError, OcppCallError) as error:
            description = error.message if isinstance(error, CommandError) else f"payload is not valid OCPP 1.6: {error.description}"
            self._reply(step, call, "refused", now, error={"code": "Refused", "description": description, "details": {}})
            return step
        if not payloads:
            self._reply(step, call, "refused", now, error={"code": "Refused", "description": "nothing to send", "details": {}})
            return step
        step.effects.extend(ctx.effects)
        self._submit(step, call, payloads, now, mono)
        step.fallback = partial(self._unrecorded, call, now, mono)
        return step

    def _unrecorded(self, call: OutgoingCall, now: datetime, mono: float) -> list[Effect]:
        """A CALL whose bookkeeping writes failed: withdrawn unsent, its requester told."""
        step = Step()
        next_call = self.calls.withdraw(call.message_id)
        step.effects.append(Tell(call.requester, CallReply(self.station_id, call.action, call.payload, "refused", None, {
            "code": "Refused", "description": "the central system could not record the request", "details": {}},
            call.request_id)))
        if next_call is not None:
            self._transmit(step, next_call, now, mono)
        return step.effects

    def _submit(self, step: Step, call: OutgoingCall, payloads: list[dict[str, Any]], now: datetime, mono: float) -> None:
        """Queue the first payload; the others follow, one after the other, for the same requester."""
        call.payload, call.extra["then"] = payloads[0], payloads[1:]
        to_send = self.calls.submit(call)
        if to_send is not None:
            self._transmit(step, to_send, now, mono)

    def _transmit(self, step: Step, call: OutgoingCall, now: datetime, mono: float) -> None:
        if self.conn is None:
            self._connection_lost(step, "charge point is not connected", now)
            return
        call.sent_at = mono
        step.effects.append(Send(self.conn, ocppj.call_frame(call.message_id, call.action, call.payload)))
        step.effects.append(ArmTimeout(call.message_id, self.settings.call_timeout))

    def _on_answer(self, step: Step, frame: ocppj.CallResult | ocppj.CallError | ocppj.MalformedAnswer,
                   now: datetime, mono: float) -> None:
        ended, next_call = self.calls.finish(frame.message_id)
        if ended is None:
            log.warning("station %s: answer to unknown or late CALL %s ignored", self.station_id, frame.message_id)
            return
        step.fallback = partial(_without_writes, step.effects)
        step.effects.append(Count("call_latency", (ended.action, "out", mono - ended.sent_at)))
        if isinstance(frame, ocppj.CallResult):
            self._on_result(step, ended, frame.payload, now, mono, frame.invalid)
        elif isinstance(frame, ocppj.MalformedAnswer):
            log.warning("station %s: malformed answer to %s: %s", self.station_id, ended.action, frame.description)
            step.effects.append(Count("message", (ended.action, "out", "error")))
            self._reply(step, ended, "error", now, error={
                "code": "FormationViolation", "description": f"malformed answer from charge point: {frame.description}", "details": {}})
        else:
            step.effects.append(Count("message", (ended.action, "out", "error")))
            step.effects.append(Count("call_error", (frame.code, "out")))
            self._reply(step, ended, "error", now, error={"code": frame.code, "description": frame.description, "details": frame.details})
        if next_call is not None:
            self._transmit(step, next_call, now, mono)

    def _on_result(self, step: Step, call: OutgoingCall, payload: dict[str, Any], now: datetime, mono: float,
                   invalid: OcppCallError | None = None) -> None:
        try:
            if invalid is not None:  # a number out of range, found by ocppj.parse
                raise invalid
            ocppj.validate(call.action + "Response", payload)
        except OcppCallError as error:
            log.warning("station %s: invalid %s.conf: %s", self.station_id, call.action, error)
            step.effects.append(Count("message", (call.action, "out", "error")))
            self._reply(step, call, "error", now, error={
                "code": error.code, "description": f"invalid CALLRESULT from charge point: {error.description}", "details": {}})
            return
        step.effects.append(Count("message", (call.action, "out", "result")))
        ctx = self._context(now)
        follow_ups: list[dict[str, Any]] = []
        try:
            hook = core.RESULT_HOOKS.get(call.action)
            if hook is not None:
                hook(ctx, call.payload, payload)
            follow_ups = bookkeeping.result(ctx, call.action, call.payload, payload, call.extra.get("options", {}))
        except Exception:
            log.exception("station %s: bookkeeping after %s failed", self.station_id, call.action)
            ctx.effects.clear()
        step.effects.extend(ctx.effects)
        then = follow_ups or (call.extra.get("then", []) if payload.get("status", "Accepted") == "Accepted" else [])
        if then and self.conn is not None:
            # The next part of a multi-part request (a split or fallback SendLocalList).
            follow = OutgoingCall(self.new_id(), call.action, then[0], requester=call.requester,
                                  request_id=call.request_id, extra={
                                      key: call.extra[key] for key in ("options", "who", "requested") if key in call.extra})
            self._submit(step, follow, then, now, mono)
            return
        self._reply(step, call, "result", now, response=payload)

    def _reply(self, step: Step, call: OutgoingCall, outcome: str, now: datetime, *,
               response: dict | None = None, error: dict | None = None) -> None:
        if outcome in ("timeout", "not-connected"):
            step.effects.append(Count("message", (call.action, "out", outcome)))
        if outcome in ("timeout", "not-connected", "error"):
            ctx = self._context(now)
            try:
                bookkeeping.failure(ctx, call.action, call.payload, outcome)
                step.effects.extend(ctx.effects)
            except Exception:
                log.exception("station %s: bookkeeping after a failed %s failed", self.station_id, call.action)
        if call.requester is not None:
            # The audit log: who asked for what, and the answer, once it is known.
            step.effects.append(Write("record_audit", (
                call.extra.get("who", "unknown"), call.action, self.station_id, call.extra.get("requested", call.payload),
                now, outcome, response if outcome == "result" else error)))
            step.effects.append(Tell(call.requester, CallReply(self.station_id, call.action, call.payload, outcome, response,
                                                               error, call.request_id)))

    def call_timed_out(self, message_id: str, now: datetime, mono: float) -> Step:
        step = Step()
        step.fallback = partial(_without_writes, step.effects)
        ended, next_call = self.calls.finish(message_id)
        if ended is not None:
            log.warning("station %s: no answer to %s within %ss", self.station_id, ended.action, self.settings.call_timeout)
            self._reply(step, ended, "timeout", now, error={"code": "Timeout", "description": "no answer within the call timeout", "details": {}})
            if next_call is not None:
                self._transmit(step, next_call, now, mono)
        return step


def _without_writes(effects: list[Effect]) -> list[Effect]:
    """A step's effects but its writes: what still must happen when they could not be stored
    (the requester told, the connection closed); the lost records are logged by the host."""
    return [effect for effect in effects if type(effect) is not Write]


def refusal_reason(boot_status: str | None, action: str, payload: dict[str, Any]) -> str | None:
    """Why the central system must not send this CALL now, or None.

    # OCPP 1.6 §4.2: Rejected -> "the Central System SHOULD NOT initiate any messages";
    # Pending -> "RemoteStartTransaction and RemoteStopTransaction are not allowed".
    # Errata 3.40: no TriggerMessage(BootNotification) once the CP was Accepted.
    """
    if boot_status == "Rejected":
        return "the charge point's BootNotification was answered Rejected: nothing may be sent to it"
    if boot_status == "Pending" and action in ("RemoteStartTransaction", "RemoteStopTransaction"):
        return f"{action} is not allowed while the charge point is Pending (OCPP 1.6 §4.2)"
    if (action in ("TriggerMessage", "ExtendedTriggerMessage") and payload.get("requestedMessage") == "BootNotification"
            and boot_status == "Accepted"):
        # The same reason holds for the security extension's ExtendedTriggerMessage.
        return "the charge point is already Accepted: a BootNotification may not be triggered (errata 3.40)"
    return None
