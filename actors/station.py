"""StationActor: one per charge point, long-lived; owns its WebSocket connection.

The gateway hands the connected socket over a UNIX socket (SCM_RIGHTS); from
then on every frame of this charge point is read, handled and answered here.
The actor also keeps the queue of CALLs the central system sends to the charge
point (one outstanding at a time, ``actors.calls``).

Handlers of OCPP actions live in ``actors.core`` (pure, taking ``now``); this
module is the glue between them, the socket and the other actors.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections import OrderedDict
from datetime import datetime, timezone
from typing import Any

from thespian.actors import (
    Actor,
    ActorExitRequest,
    ThespianWatch,
    WakeupMessage,
    WatchMessage,
)

import metrics
from actors import bookkeeping, core, ocppj
from actors.calls import CallQueue, OutgoingCall
from actors.connection import Connection, ConnectionClosed
from actors.errors import CommandError, OcppCallError
from actors.messages import (
    CallReply,
    GetStationState,
    SendCall,
    StartStation,
    StationStarted,
    StationStateReply,
    TimerFired,
)
from actors.settings import Settings
from storage import Store

log = logging.getLogger(__name__)

HANDOFF_TIMEOUT = 2.0
SEEN_IDS = 1000  # message ids remembered per connection (J §4.1.4 uniqueness)
STATION_NICENESS = 19
PING_TICK = "ping"
CALL_TIMEOUT = "call-timeout"


class StationActor(Actor):
    """The central system's side of one charge point."""

    def __init__(self) -> None:
        super().__init__()
        self.settings: Settings | None = None
        self.station_id = ""
        self.store: Store | None = None
        self.listener: socket.socket | None = None
        self.conn: Connection | None = None
        self.ever_accepted = False
        self.boot_status: str | None = None
        self.scheduler: Any = None
        self.calls = CallQueue()
        self.seen_ids: OrderedDict[str, None] = OrderedDict()
        self.window_start = 0.0
        self.window_calls = 0

    # -- actor plumbing -------------------------------------------------------

    def receiveMessage(self, message: Any, sender: Any) -> Any:
        # This process was forked inside stackroom.fork_room (the supervisor's
        # _spawn): its whole call stack has room in one data-stack chunk.
        try:
            if isinstance(message, WatchMessage):
                self._on_watch(message.ready)
            elif isinstance(message, WakeupMessage):
                self._on_wakeup(message.payload)
            elif isinstance(message, SendCall):
                self._on_send_call(message, sender)
            elif isinstance(message, TimerFired):
                self._on_timer(message)
            elif isinstance(message, StartStation):
                self._start(message, sender)
            elif isinstance(message, GetStationState):
                self.send(sender, self._state())
            elif isinstance(message, ActorExitRequest):
                self._shutdown()
                return None
        except Exception:
            log.exception("station %s: unexpected error handling %s", self.station_id, type(message).__name__)
        return self._watch()

    def _watch(self) -> ThespianWatch:
        fds = []
        if self.listener is not None:
            fds.append(self.listener.fileno())
        if self.conn is not None and not self.conn.closed:
            fds.append(self.conn.fileno())
        return ThespianWatch(fds)

    def _start(self, message: StartStation, sender: Any) -> None:
        if self.settings is not None:  # already configured: just confirm
            self.send(sender, StationStarted(self.station_id, os.getpid()))
            return
        self.settings = message.settings
        self.station_id = message.station_id
        self.scheduler = message.scheduler
        logging.getLogger().setLevel(self.settings.log_level)
        # The data plane yields to the control plane: under full load the gateway
        # and the supervisors must still take connects and start stations. With a
        # thousand busy stations, niceness 5 left the control plane ~5% of the CPU
        # and 30% of a reconnect storm timed out; at 19 it keeps about half
        # (measured with run.py bench: 691 -> 996 of 1000 stations booted).
        os.nice(STATION_NICENESS)
        self.store = Store(self.settings.db, migrate_schema=False, checkpoints=False)
        row = self.store.get_station(self.station_id)
        # OCPP-J §5.4: a station Accepted before is served without a new BootNotification.
        self.ever_accepted = bool(row and row.get("ever_accepted"))
        self.boot_status = (row or {}).get("last_boot_status")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(message.socket_name)
        listener.listen(16)
        listener.setblocking(False)
        self.listener = listener
        if self.settings.ping_interval > 0:
            self.wakeupAfter(self.settings.ping_interval, payload=PING_TICK)
        self.send(sender, StationStarted(self.station_id, os.getpid()))

    def _shutdown(self) -> None:
        if self.conn is not None:
            self.conn.close(1001, "central system shutting down")
            self._connection_lost("central system shutting down")
        if self.listener is not None:
            self.listener.close()
            self.listener = None
        if self.store is not None:
            self.store.close()

    def _state(self) -> StationStateReply:
        out = self.calls.outstanding
        return StationStateReply(
            self.station_id,
            self.conn is not None and not self.conn.closed,
            self.ever_accepted,
            os.getpid(),
            out.action if out else None,
            len(self.calls.queued),
        )

    # -- sockets ----------------------------------------------------------------

    def _on_watch(self, ready: list[int]) -> None:
        if self.listener is not None and self.listener.fileno() in ready:
            self._accept_handoff()
        conn = self.conn
        if conn is not None and not conn.closed and conn.fileno() in ready:
            self._read(conn)

    def _accept_handoff(self) -> None:
        assert self.listener is not None
        try:
            channel, _ = self.listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        with channel:
            channel.settimeout(HANDOFF_TIMEOUT)
            try:
                data, fds, _flags, _addr = socket.recv_fds(channel, 1 << 18, 1)
                chunks = [data]
                while chunk := channel.recv(1 << 18):
                    chunks.append(chunk)
            except OSError as exc:
                log.warning("station %s: hand-off failed: %s", self.station_id, exc)
                return
        if not fds:
            log.warning("station %s: hand-off carried no descriptor", self.station_id)
            return
        header, _, initial = b"".join(chunks).partition(b"\n")
        sock = socket.socket(fileno=fds[0])
        for extra in fds[1:]:
            os.close(extra)
        peer = header.decode("utf-8", "replace")
        if self.conn is not None and not self.conn.closed:
            # Newest connection wins: no zombie lock-out after a silent drop.
            log.info("station %s: new connection from %s replaces the old one", self.station_id, peer)
            metrics.connection_event("replaced")
            self.conn.close(1000, "replaced by a new connection")
            self._connection_lost("replaced by a new connection")
        assert self.settings is not None and self.store is not None
        self.conn = Connection(sock, peer=peer, max_size=self.settings.max_frame_size, initial=initial)
        self.seen_ids.clear()
        self.window_start, self.window_calls = time.monotonic(), 0  # the flood limit is per connection
        self.store.mark_connected(self.station_id, True, _now())
        metrics.connection_event("opened")
        log.info("station %s: connected from %s", self.station_id, peer)
        if initial:
            self._read(self.conn)

    def _read(self, conn: Connection) -> None:
        try:
            messages = conn.read()
        except ConnectionClosed as closed:
            if conn is self.conn:
                log.info("station %s: connection %s", self.station_id, closed)
                self._connection_lost(str(closed))
            return
        for message in messages:
            if conn.closed:
                break
            try:
                self._on_message(conn, message)
            except ConnectionClosed as closed:
                log.info("station %s: connection lost: %s", self.station_id, closed)
                self._connection_lost(str(closed))
                return

    def _connection_lost(self, reason: str) -> None:
        self.conn = None
        if self.store is not None:
            self.store.mark_connected(self.station_id, False, _now())
        metrics.connection_event("closed")
        # "When the connection drops, the outstanding and queued CALLs fail at once."
        for call in self.calls.drain():
            self._reply(call, "not-connected", error={"code": "NotConnected", "description": reason, "details": {}})

    # -- inbound frames ---------------------------------------------------------

    def _on_message(self, conn: Connection, message: str | bytes) -> None:
        received = time.perf_counter()
        if isinstance(message, bytes):
            conn.send_text(ocppj.error_frame(ocppj.UNKNOWN_ID, "FormationViolation", "OCPP-J frames are text frames"))
            metrics.call_error("FormationViolation", "in")
            return
        try:
            frame = ocppj.parse(message)
        except ocppj.Ignored as ignored:
            log.warning("station %s: frame ignored: %s", self.station_id, ignored)
            return
        except OcppCallError as error:
            log.warning("station %s: malformed frame: %s", self.station_id, error)
            self._send_error(conn, getattr(error, "message_id", ocppj.UNKNOWN_ID), error, "?")
            return
        if isinstance(frame, ocppj.Call):
            self._on_call(conn, frame, received)
        else:
            self._on_answer(frame)

    def _on_call(self, conn: Connection, call: ocppj.Call, received: float) -> None:
        action = call.action if call.action in ocppj.CP_ACTIONS else "unknown"
        try:
            self._check_rate(conn)
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
            reply = handler(ctx, call.payload)
            self._after_inbound(ctx, call, reply)
        except OcppCallError as error:
            log.warning("station %s: %s %s refused: %s", self.station_id, call.action[:40], call.message_id, error)
            self._send_error(conn, call.message_id, error, action)
            return
        except ConnectionClosed:
            raise
        except Exception:
            log.exception("station %s: error handling %s", self.station_id, call.action)
            self._send_error(conn, call.message_id, OcppCallError("InternalError", "internal error"), action)
            return
        if call.action == "BootNotification":
            self.boot_status = reply.get("status")
            self.ever_accepted = self.ever_accepted or self.boot_status == "Accepted"
        conn.send_text(ocppj.result_frame(call.message_id, reply))
        metrics.message(action, "in", "result")
        metrics.call_latency(action, "in", time.perf_counter() - received)

    def _context(self) -> core.Context:
        assert self.store is not None and self.settings is not None
        return core.Context(store=self.store, station_id=self.station_id, settings=self.settings, now=_now())

    def _after_inbound(self, ctx: core.Context, call: ocppj.Call, reply: dict[str, Any]) -> None:
        """Bookkeeping of other profiles that a Core message triggers (reservations, profiles)."""
        try:
            if call.action == "StartTransaction":
                bookkeeping.on_transaction_started(ctx, call.payload, reply["transactionId"])
            elif call.action == "StopTransaction":
                bookkeeping.on_transaction_stopped(ctx, call.payload["transactionId"])
        except Exception:  # the reply is committed already: never fail it for bookkeeping
            log.exception("station %s: bookkeeping after %s failed", self.station_id, call.action)
        self._apply(ctx)

    def _apply(self, ctx: core.Context) -> None:
        """Send a handler's timer effects (ScheduleTimer / CancelTimer) to the scheduler."""
        if self.scheduler is not None:
            for effect in ctx.effects:
                self.send(self.scheduler, effect)
        ctx.effects.clear()

    def _on_timer(self, timer: TimerFired) -> None:
        ctx = self._context()
        bookkeeping.on_timer(ctx, timer.kind, timer.data)
        self._apply(ctx)

    def _send_error(self, conn: Connection, message_id: str, error: OcppCallError, action: str) -> None:
        conn.send_text(ocppj.error_frame(message_id, error.code, error.description, error.details))
        metrics.message(action, "in", "error")
        metrics.call_error(error.code, "in")

    def _remember(self, message_id: str) -> None:
        self.seen_ids[message_id] = None
        if len(self.seen_ids) > SEEN_IDS:
            self.seen_ids.popitem(last=False)

    def _check_rate(self, conn: Connection) -> None:
        assert self.settings is not None
        limit = self.settings.max_call_rate
        if limit <= 0:
            return
        now = time.monotonic()
        if now - self.window_start >= 1.0:
            self.window_start, self.window_calls = now, 0
        self.window_calls += 1
        if self.window_calls > limit:
            log.warning("station %s: more than %d CALLs per second: closing", self.station_id, limit)
            conn.close(1008, "message rate exceeded")
            raise ConnectionClosed("message rate exceeded")

    # -- outbound CALLs -----------------------------------------------------------

    def _on_send_call(self, message: SendCall, sender: Any) -> None:
        options = dict(message.options)
        call = OutgoingCall(str(uuid.uuid4()), message.action, dict(message.payload), requester=sender, extra={"options": options})
        refusal = refusal_reason(self.boot_status, message.action, message.payload)
        if refusal is not None:
            self._reply(call, "refused", error={"code": "Refused", "description": refusal, "details": {}})
            return
        if self.conn is None or self.conn.closed:
            self._reply(call, "not-connected", error={"code": "NotConnected", "description": "charge point is not connected", "details": {}})
            return
        ctx = self._context()
        try:
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
        assert self.settings is not None
        call.sent_at = time.perf_counter()
        conn = self.conn
        if conn is None or conn.closed:
            self._connection_lost("charge point is not connected")
            return
        try:
            conn.send_text(ocppj.call_frame(call.message_id, call.action, call.payload))
        except ConnectionClosed as closed:
            self._connection_lost(str(closed))
            return
        self.wakeupAfter(self.settings.call_timeout, payload=(CALL_TIMEOUT, call.message_id))

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
            hook = core.RESULT_HOOKS.get(call.action)
            if hook is not None:
                hook(ctx, call.payload, payload)
            follow_ups = bookkeeping.result(ctx, call.action, call.payload, payload, call.extra.get("options", {}))
        except Exception:
            log.exception("station %s: bookkeeping after %s failed", self.station_id, call.action)
        self._apply(ctx)
        then = follow_ups or (call.extra.get("then", []) if payload.get("status", "Accepted") == "Accepted" else [])
        if then and self.conn is not None and not self.conn.closed:
            # The next part of a multi-part request (a split or fallback SendLocalList).
            follow = OutgoingCall(str(uuid.uuid4()), call.action, then[0], requester=call.requester, extra={"options": call.extra.get("options", {})})
            self._submit(follow, then)
            return
        self._reply(call, "result", response=payload)

    def _reply(self, call: OutgoingCall, outcome: str, *, response: dict | None = None, error: dict | None = None) -> None:
        if outcome in ("timeout", "not-connected"):
            metrics.message(call.action, "out", outcome)
        if outcome in ("timeout", "not-connected", "error") and self.store is not None:
            try:
                bookkeeping.failure(self._context(), call.action, call.payload, outcome)
            except Exception:
                log.exception("station %s: bookkeeping after a failed %s failed", self.station_id, call.action)
        if call.requester is not None:
            self.send(call.requester, CallReply(self.station_id, call.action, call.payload, outcome, response, error))

    # -- timers ---------------------------------------------------------------------

    def _on_wakeup(self, payload: Any) -> None:
        if payload == PING_TICK:
            self._ping()
        elif isinstance(payload, tuple) and payload[:1] == (CALL_TIMEOUT,):
            ended, next_call = self.calls.finish(payload[1])
            if ended is not None:
                log.warning("station %s: no answer to %s within %ss", self.station_id, ended.action, self.settings and self.settings.call_timeout)
                self._reply(ended, "timeout", error={"code": "Timeout", "description": "no answer within the call timeout", "details": {}})
                if next_call is not None:
                    self._transmit(next_call)

    def _ping(self) -> None:
        assert self.settings is not None
        self.wakeupAfter(self.settings.ping_interval, payload=PING_TICK)
        conn = self.conn
        if conn is None or conn.closed:
            return
        if conn.ping_outstanding is not None and time.monotonic() - conn.last_received > self.settings.ping_interval:
            log.info("station %s: no pong and no data for %ss: dropping the connection", self.station_id, self.settings.ping_interval)
            conn.close(1011, "keep-alive ping timeout")
            self._connection_lost("keep-alive ping timeout")
            return
        try:
            conn.send_ping(os.urandom(4))
        except ConnectionClosed as closed:
            self._connection_lost(str(closed))


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
