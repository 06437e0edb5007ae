"""The station actor: one per connected charge point, an object inside its station host.

It owns the charge point's session (accepted or not, the last boot status,
the message ids seen on this connection, the flood window), the queue of CALLs
the central system sends to it (one outstanding at a time, ``actors.ocpp.calls``),
and, through storage, its connectors, transactions, reservations, profiles and
local-list version. It handles one event at a time, in order; the host
(``actors.host.worker``) calls it from its writer thread, inside the turn's
group-commit transaction, and the station says what should happen next
through ``Effects``: frames to send, connections to close, actor messages to
send, call timeouts to arm. None of those happen before the turn's commit.

Handlers of OCPP actions live in ``actors.ocpp.core`` and ``actors.ocpp.bookkeeping``;
this module is the glue between them, the connection and the other actors.
One place, ``_on_call``, turns an exception into a CALLERROR.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import OrderedDict
from datetime import datetime, timezone
from typing import Any, Protocol

import metrics
from actors.errors import CommandError, OcppCallError
from actors.messages import CallReply, SendCall, StationStateReply, TimerFired
from actors.ocpp import bookkeeping, core, ocppj
from actors.ocpp.calls import CallQueue, OutgoingCall
from actors.settings import Settings
from storage import Store

log = logging.getLogger(__name__)

SEEN_IDS = 1000  # message ids remembered per connection (J §4.1.4 uniqueness)
SCHEDULER = "scheduler"  # Effects.tell address of the node's scheduler (routed by the registry)


class Link(Protocol):
    """A charge point's connection, as its station actor sees it."""

    peer: str


class Effects(Protocol):
    """What a station actor asks its host to do once the turn has committed."""

    def send(self, link: Link, text: str) -> None: ...

    def close(self, link: Link, code: int, reason: str) -> None: ...

    def tell(self, address: Any, message: Any) -> None: ...

    def call_timeout(self, station_id: str, message_id: str, seconds: float) -> None: ...


class Station:
    """The central system's side of one charge point."""

    def __init__(self, station_id: str, *, settings: Settings, store: Store, effects: Effects, pid: int = 0) -> None:
        self.station_id = station_id
        self.settings = settings
        self.store = store
        self.out = effects
        self.pid = pid
        row = store.get_station(station_id)
        self.registered = row is not None
        # OCPP-J §5.4: a station Accepted before is served without a new BootNotification.
        self.ever_accepted = bool(row and row.get("ever_accepted"))
        self.boot_status: str | None = (row or {}).get("last_boot_status")
        self.link: Link | None = None
        self.calls = CallQueue()
        self.seen_ids: OrderedDict[str, None] = OrderedDict()
        self.window_start = 0.0
        self.window_calls = 0

    @property
    def idle(self) -> bool:
        """Nothing to keep in memory: no connection, no CALL outstanding or queued."""
        return self.link is None and self.calls.outstanding is None and not self.calls.queued

    def state(self) -> StationStateReply:
        out = self.calls.outstanding
        return StationStateReply(
            self.station_id, self.link is not None, self.ever_accepted, self.pid,
            out.action if out else None, len(self.calls.queued),
        )

    # -- connection -----------------------------------------------------------------

    def connected(self, link: Link) -> None:
        if self.link is not None:
            # Newest connection wins: no zombie lock-out after a silent drop.
            log.info("station %s: new connection from %s replaces the old one", self.station_id, link.peer)
            metrics.connection_event("replaced")
            self.out.close(self.link, 1000, "replaced by a new connection")
            self._connection_lost("replaced by a new connection")
        self.link = link
        self.seen_ids.clear()
        self.window_start, self.window_calls = time.monotonic(), 0  # the flood limit is per connection
        self.store.mark_connected(self.station_id, True, _now())  # creates the row of an unknown one
        if not self.registered:
            # Admitted by --unknown-stations accept: registered here, in the writer's
            # group commit, after the upgrade completed (never by the handshake).
            self.registered = True
            log.info("registered unknown charge point %s", self.station_id)
        metrics.connection_event("opened")
        log.info("station %s: connected from %s", self.station_id, link.peer)

    def disconnected(self, link: Link, reason: str) -> None:
        """The connection ``link`` ended (an older, replaced one is ignored)."""
        if link is self.link:
            log.info("station %s: connection %s", self.station_id, reason)
            self._connection_lost(reason)

    def close(self, code: int, reason: str) -> None:
        """Close the connection from the central system's side (revoked lease, removal, shutdown)."""
        if self.link is not None:
            self.out.close(self.link, code, reason)
            self._connection_lost(reason)

    def _connection_lost(self, reason: str) -> None:
        self.link = None
        self.store.mark_connected(self.station_id, False, _now())
        metrics.connection_event("closed")
        # "When the connection drops, the outstanding and queued CALLs fail at once."
        for call in self.calls.drain():
            self._reply(call, "not-connected", error={"code": "NotConnected", "description": reason, "details": {}})

    # -- inbound frames ---------------------------------------------------------

    def on_message(self, link: Link, message: str | bytes, received: float) -> None:
        if link is not self.link:
            return  # a frame of a connection that was replaced or closed meanwhile
        if isinstance(message, bytes):
            self.out.send(link, ocppj.error_frame(ocppj.UNKNOWN_ID, "FormationViolation", "OCPP-J frames are text frames"))
            metrics.call_error("FormationViolation", "in")
            return
        try:
            frame = ocppj.parse(message)
        except ocppj.Ignored as ignored:
            log.warning("station %s: frame ignored: %s", self.station_id, ignored)
            return
        except OcppCallError as error:
            log.warning("station %s: malformed frame: %s", self.station_id, error)
            self._send_error(link, getattr(error, "message_id", ocppj.UNKNOWN_ID), error, "?")
            return
        if isinstance(frame, ocppj.Call):
            self._on_call(link, frame, received)
        else:
            self._on_answer(frame)

    def _on_call(self, link: Link, call: ocppj.Call, received: float) -> None:
        action = call.action if call.action in ocppj.CP_ACTIONS else "unknown"
        try:
            if not self._within_rate(link):
                return
            if call.message_id in self.seen_ids:
                raise OcppCallError("ProtocolError", f"message id {call.message_id!r} was already used on this connection")
            self._remember(call.message_id)
            ocppj.check_inbound_call(call)
            if not self.ever_accepted and call.action != "BootNotification":
                # OCPP-J errata 3.8: answer a not-yet-accepted station with SecurityError.
                raise OcppCallError("SecurityError", "charge point has not been accepted: send BootNotification first")
            handler = core.HANDLERS.get(call.action)
            if handler is None:
                raise OcppCallError("NotSupported", f"{call.action} is not supported by this central system")
            ctx = self._context()
            with self.store.savepoint():  # a handler that raises leaves nothing behind
                reply = handler(ctx, call.payload)
            self._after_inbound(ctx, call, reply)
        except OcppCallError as error:
            log.warning("station %s: %s %s refused: %s", self.station_id, call.action[:40], call.message_id, error)
            self._send_error(link, call.message_id, error, action)
            return
        except Exception:
            log.exception("station %s: error handling %s", self.station_id, call.action)
            self._send_error(link, call.message_id, OcppCallError("InternalError", "internal error"), action)
            return
        if call.action == "BootNotification":
            self.boot_status = reply.get("status")
            self.ever_accepted = self.ever_accepted or self.boot_status == "Accepted"
        self.out.send(link, ocppj.result_frame(call.message_id, reply))
        metrics.message(action, "in", "result")
        metrics.call_latency(action, "in", time.perf_counter() - received)

    def _context(self) -> core.Context:
        return core.Context(store=self.store, station_id=self.station_id, settings=self.settings, now=_now())

    def _after_inbound(self, ctx: core.Context, call: ocppj.Call, reply: dict[str, Any]) -> None:
        """Bookkeeping of other profiles that a Core message triggers (reservations, profiles)."""
        if call.action not in ("StartTransaction", "StopTransaction"):
            self._apply(ctx)  # no bookkeeping: spare the savepoint (two statements per frame)
            return
        try:
            with self.store.savepoint():
                if call.action == "StartTransaction":
                    bookkeeping.on_transaction_started(ctx, call.payload, reply["transactionId"])
                else:
                    bookkeeping.on_transaction_stopped(ctx, call.payload["transactionId"])
        except Exception:  # never fail the reply for bookkeeping
            log.exception("station %s: bookkeeping after %s failed", self.station_id, call.action)
        self._apply(ctx)

    def _apply(self, ctx: core.Context) -> None:
        """Send a handler's timer effects (ScheduleTimer / CancelTimer) to the scheduler."""
        for effect in ctx.effects:
            self.out.tell(SCHEDULER, effect)
        ctx.effects.clear()

    def on_timer(self, timer: TimerFired) -> None:
        ctx = self._context()
        with self.store.savepoint():
            bookkeeping.on_timer(ctx, timer.kind, timer.data)
        self._apply(ctx)

    def _send_error(self, link: Link, message_id: str, error: OcppCallError, action: str) -> None:
        self.out.send(link, ocppj.error_frame(message_id, error.code, error.description, error.details))
        metrics.message(action, "in", "error")
        metrics.call_error(error.code, "in")

    def _remember(self, message_id: str) -> None:
        self.seen_ids[message_id] = None
        if len(self.seen_ids) > SEEN_IDS:
            self.seen_ids.popitem(last=False)

    def _within_rate(self, link: Link) -> bool:
        limit = self.settings.max_call_rate
        if limit <= 0:
            return True
        now = time.monotonic()
        if now - self.window_start >= 1.0:
            self.window_start, self.window_calls = now, 0
        self.window_calls += 1
        if self.window_calls > limit:
            log.warning("station %s: more than %d CALLs per second: closing", self.station_id, limit)
            self.close(1008, "message rate exceeded")
            return False
        return True

    # -- outbound CALLs -----------------------------------------------------------

    def on_send_call(self, message: SendCall, requester: Any) -> None:
        options = dict(message.options)
        call = OutgoingCall(str(uuid.uuid4()), message.action, dict(message.payload), requester=requester, extra={"options": options})
        refusal = refusal_reason(self.boot_status, message.action, message.payload)
        if refusal is not None:
            self._reply(call, "refused", error={"code": "Refused", "description": refusal, "details": {}})
            return
        if self.link is None:
            self._reply(call, "not-connected", error={"code": "NotConnected", "description": "charge point is not connected", "details": {}})
            return
        ctx = self._context()
        try:
            with self.store.savepoint():
                payloads = bookkeeping.prepare(ctx, message.action, call.payload, options)
                for payload in payloads:
                    ocppj.validate(message.action, payload)
        except (CommandError, OcppCallError) as error:
            description = error.message if isinstance(error, CommandError) else f"payload is not valid OCPP 1.6: {error.description}"
            self._reply(call, "refused", error={"code": "Refused", "description": description, "details": {}})
            return
        self._apply(ctx)
        if not payloads:
            self._reply(call, "refused", error={"code": "Refused", "description": "nothing to send", "details": {}})
            return
        self._submit(call, payloads)

    def _submit(self, call: OutgoingCall, payloads: list[dict[str, Any]]) -> None:
        """Queue the first payload; the others follow, one after the other, for the same requester."""
        call.payload, call.extra["then"] = payloads[0], payloads[1:]
        to_send = self.calls.submit(call)
        if to_send is not None:
            self._transmit(to_send)

    def _transmit(self, call: OutgoingCall) -> None:
        if self.link is None:
            self._connection_lost("charge point is not connected")
            return
        call.sent_at = time.perf_counter()
        self.out.send(self.link, ocppj.call_frame(call.message_id, call.action, call.payload))
        self.out.call_timeout(self.station_id, call.message_id, self.settings.call_timeout)

    def _on_answer(self, frame: ocppj.CallResult | ocppj.CallError | ocppj.MalformedAnswer) -> None:
        ended, next_call = self.calls.finish(frame.message_id)
        if ended is None:
            log.warning("station %s: answer to unknown or late CALL %s ignored", self.station_id, frame.message_id)
            return
        elapsed = time.perf_counter() - ended.sent_at
        metrics.call_latency(ended.action, "out", elapsed)
        if isinstance(frame, ocppj.CallResult):
            self._on_result(ended, frame.payload)
        elif isinstance(frame, ocppj.MalformedAnswer):
            log.warning("station %s: malformed answer to %s: %s", self.station_id, ended.action, frame.description)
            metrics.message(ended.action, "out", "error")
            self._reply(ended, "error", error={"code": "FormationViolation", "description": f"malformed answer from charge point: {frame.description}", "details": {}})
        else:
            metrics.message(ended.action, "out", "error")
            metrics.call_error(frame.code, "out")
            self._reply(ended, "error", error={"code": frame.code, "description": frame.description, "details": frame.details})
        if next_call is not None:
            self._transmit(next_call)

    def _on_result(self, call: OutgoingCall, payload: dict[str, Any]) -> None:
        try:
            ocppj.validate(call.action + "Response", payload)
        except OcppCallError as error:
            log.warning("station %s: invalid %s.conf: %s", self.station_id, call.action, error)
            metrics.message(call.action, "out", "error")
            self._reply(call, "error", error={"code": error.code, "description": f"invalid CALLRESULT from charge point: {error.description}", "details": {}})
            return
        metrics.message(call.action, "out", "result")
        ctx = self._context()
        follow_ups: list[dict[str, Any]] = []
        try:
            with self.store.savepoint():
                hook = core.RESULT_HOOKS.get(call.action)
                if hook is not None:
                    hook(ctx, call.payload, payload)
                follow_ups = bookkeeping.result(ctx, call.action, call.payload, payload, call.extra.get("options", {}))
        except Exception:
            log.exception("station %s: bookkeeping after %s failed", self.station_id, call.action)
        self._apply(ctx)
        then = follow_ups or (call.extra.get("then", []) if payload.get("status", "Accepted") == "Accepted" else [])
        if then and self.link is not None:
            # The next part of a multi-part request (a split or fallback SendLocalList).
            follow = OutgoingCall(str(uuid.uuid4()), call.action, then[0], requester=call.requester, extra={"options": call.extra.get("options", {})})
            self._submit(follow, then)
            return
        self._reply(call, "result", response=payload)

    def _reply(self, call: OutgoingCall, outcome: str, *, response: dict | None = None, error: dict | None = None) -> None:
        if outcome in ("timeout", "not-connected"):
            metrics.message(call.action, "out", outcome)
        if outcome in ("timeout", "not-connected", "error"):
            try:
                with self.store.savepoint():
                    bookkeeping.failure(self._context(), call.action, call.payload, outcome)
            except Exception:
                log.exception("station %s: bookkeeping after a failed %s failed", self.station_id, call.action)
        if call.requester is not None:
            self.out.tell(call.requester, CallReply(self.station_id, call.action, call.payload, outcome, response, error))

    def on_call_timeout(self, message_id: str) -> None:
        ended, next_call = self.calls.finish(message_id)
        if ended is not None:
            log.warning("station %s: no answer to %s within %ss", self.station_id, ended.action, self.settings.call_timeout)
            self._reply(ended, "timeout", error={"code": "Timeout", "description": "no answer within the call timeout", "details": {}})
            if next_call is not None:
                self._transmit(next_call)


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
    if action == "TriggerMessage" and payload.get("requestedMessage") == "BootNotification" and boot_status == "Accepted":
        return "the charge point is already Accepted: a BootNotification may not be triggered (errata 3.40)"
    return None


def _now() -> datetime:
    return datetime.now(timezone.utc)
