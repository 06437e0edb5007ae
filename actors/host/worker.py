"""A station host's writer: its station actors, run one event at a time, with group commit.

The host's event loop (``actors.host.loop``) only moves bytes; everything
that touches a station's state or storage happens here, on one thread of the
host process, which owns the host's one SQLite connection. Events arrive on a
queue; each turn takes every event waiting (up to ``MAX_TURN``), hands each
to its station actor inside one transaction, commits, and only then lets
anything out (ARCHITECTURE.md, "Group commit"):

| turn step      | what happens                                                         |
|----------------|----------------------------------------------------------------------|
| take           | every queued event, in arrival order (one station's stay in order)   |
| check          | each text frame parsed and schema-checked (``ocppj.parse_checked``), before the lock |
| handle         | each event to its station actor; writes go into the turn's transaction, each event in a savepoint |
| commit         | ``synchronous=FULL``: an acknowledged write survives power loss      |
| frame log      | the frames of committed turns, both directions, buffered and written into each station's ring at most every ``FRAME_FLUSH`` s (``Store.log_frames``, one executemany inside a turn's transaction; alone when the writer is idle) |
| release        | frames and closes to the loop, actor messages to the host actor, call timeouts armed |
| metrics        | the turn's counts, added up in memory (``metrics.batched``), written to the process's metric file; with them the turn's size and its COMMIT's time (``csms_writer_batch_events``, ``csms_writer_commit_seconds``) |
| commit failed  | nothing is released: the connections that had frames in the turn are closed 1011 and their station actors dropped, so the charge points reconnect and retry and are served from storage |

Waiting for the database lock (another host is committing) happens here,
in SQLite's busy handler, never on the event loop. Station actors that hold
no connection and no CALL are evicted after the event that left them idle:
a known but unconnected station costs a database row, nothing else.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import metrics
from actors.certificate_authority import AuthoritySource
from actors.host.station import Link, Station
from actors.messages import (
    GetStationState,
    HostPong,
    PingHost,
    RetireStation,
    RevokeLeases,
    SendCall,
    StationStateReply,
    TimerFired,
)
from actors.ocpp import ocppj
from actors.settings import Settings
from storage import Store, iso

log = logging.getLogger(__name__)

MAX_TURN = 2000  # events handled in one transaction at most
# The frame log is written at most this often (and whenever the writer is idle): a
# station's ring spans its own pages, so writing every turn rewrote a page per
# station per commit (measured: +26-30 us of CPU per CALL at 200 stations; buffered: +5-11).
FRAME_FLUSH = 0.5
FRAME_BUFFER = 200_000  # frames waiting at most (the oldest dropped beyond it)


@dataclass
class Opened:
    station_id: str
    link: Link


@dataclass
class Received:
    station_id: str
    link: Link
    message: str | bytes
    received: float
    parsed: ocppj.Parsed | None = None  # filled in before the turn takes the database lock


@dataclass
class Closed:
    station_id: str
    link: Link
    reason: str


@dataclass
class FromActor:
    """A control-plane message (SendCall, TimerFired, RevokeLeases...) with its sender."""

    message: Any
    sender: Any = None


@dataclass
class PendingAttempt:
    """An unknown identity tried to connect with --unknown-stations pending: list it."""

    station_id: str
    address: str
    at: datetime


@dataclass
class OwnSecurityEvent:
    """The admission refused a connection for its security: kept in the node's own security log.

    Admission threads and the loop only read the database; the writer writes this.
    """

    event_type: str
    station_id: str | None
    address: str | None
    detail: str
    at: datetime


class SecurityLogBudget:
    """How many of the node's own security events a host stores per minute (thread-safe).

    A flood of bad handshakes must not become a flood of writes: past
    ``per_minute`` in a minute the rest are dropped, and ``admit`` says how many
    were, once, when the next minute starts (the metrics still count them all).
    """

    def __init__(self, per_minute: int = 600, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute, self.clock = per_minute, clock
        self.lock = threading.Lock()
        self.window, self.used, self.dropped = clock(), 0, 0

    def admit(self) -> tuple[bool, int]:
        """(store this one?, how many were dropped in the minute that just ended)."""
        with self.lock:
            now, ended = self.clock(), 0
            if now - self.window >= 60.0:
                self.window, self.used, ended, self.dropped = now, 0, self.dropped, 0
            if self.used < self.per_minute:
                self.used += 1
                return True, ended
            self.dropped += 1
            return False, ended


@dataclass
class CallTimedOut:
    station_id: str
    message_id: str


@dataclass
class Turn:
    """What the station actors asked for during one turn, released after its commit."""

    sends: list[tuple[Link, str]] = field(default_factory=list)
    closes: list[tuple[Link, int, str]] = field(default_factory=list)
    tells: list[tuple[Any, Any]] = field(default_factory=list)
    timeouts: list[tuple[str, str, float]] = field(default_factory=list)



Release = Callable[[Turn], None]


class HostWorker:
    """The writer thread of one station host.

    ``release(turn)`` is called (on this thread) after each commit with what
    the turn produced; the host hands frames to its loop and messages to its
    actor thread from there.
    """

    def __init__(self, settings: Settings, *, release: Release, host: str = "0") -> None:
        self.settings = settings
        self.release = release
        self.host = host  # the metric label: the host's index
        self.inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.stations: dict[str, Station] = {}
        self.turn = Turn()
        self.store: Store | None = None
        self.thread = threading.Thread(target=self._run, name="station-writer", daemon=True)
        self.stopped = threading.Event()
        self.pid = os.getpid()
        self.turns = 0
        self.events = 0
        # The frame log (--frame-log-per-station): this turn's frames, and each station's
        # last seq while its station actor lives here (read from storage when it is made).
        self.frames: list[tuple[str, str, str]] = []  # (station_id, "in" | "out", text)
        self.frame_buffer: list[tuple[str, str, str, str]] = []  # committed turns' frames, with their time
        self.flushed_at = time.monotonic()
        self.frame_seqs: dict[str, int] = {}
        # The node's CA for SignCertificate, read from its files when they change (ctl ca init).
        self.authority = AuthoritySource(settings)

    def start(self) -> None:
        self.thread.start()

    def put(self, event: Any) -> None:
        """Queue an event (thread-safe)."""
        self.inbox.put(event)

    def stop(self, timeout: float) -> None:
        """Handle what is queued, close every connection 1001, commit, and end."""
        self.inbox.put(None)
        self.thread.join(timeout)

    # -- the thread ---------------------------------------------------------------

    def _run(self) -> None:
        self.store = Store(self.settings.db, migrate_schema=False, checkpoints=False, writer=True)
        try:
            while True:
                try:
                    first = self.inbox.get(timeout=FRAME_FLUSH if self.frame_buffer else None)
                except queue.Empty:
                    self._flush_frames()  # idle: the frames of the last turns, in a commit of their own
                    continue
                events = [first]
                while len(events) < MAX_TURN:
                    try:
                        events.append(self.inbox.get_nowait())
                    except queue.Empty:
                        break
                stopping = None in events
                # Metrics added up over the turn, written after its release: one
                # mmap write per series touched instead of three per CALL.
                with metrics.batched():
                    self._turn([e for e in events if e is not None], closing=stopping)
                if stopping:
                    self._flush_frames()
                    return
        except Exception:
            log.exception("station host writer failed")
        finally:
            self.stopped.set()
            if self.store is not None:
                self.store.close()

    def _turn(self, events: list[Any], *, closing: bool = False) -> None:
        assert self.store is not None
        self.turn = turn = Turn()
        touched: set[str] = set()
        # Parsing and schema checks need no storage: done before taking the lock that
        # the other hosts' writers wait for (their turns run meanwhile).
        for event in events:
            if type(event) is Received and type(event.message) is str:
                try:
                    event.parsed = ocppj.parse_checked(event.message)
                except Exception:  # parsed again, and answered, inside the turn
                    log.exception("station %s: frame check failed", event.station_id)
        self.frames = []
        flushing = bool(self.frame_buffer) and time.monotonic() - self.flushed_at >= FRAME_FLUSH
        try:
            with self.store.group():
                for event in events:
                    self._handle(event, touched)
                if closing:
                    for station in list(self.stations.values()):
                        station.close(1001, "central system shutting down")
                    self.stations.clear()
                if flushing:
                    self._log_frames(self.frame_buffer)
        except Exception:
            log.exception("station host writer: commit of %d events failed; closing their connections", len(events))
            self._abandon(events)
            return
        self.turns += 1
        self.events += len(events)
        self._buffer_frames(flushing)
        metrics.writer_turn(self.host, len(events), self.store.last_commit_seconds)
        self.release(turn)

    def _buffer_frames(self, flushed: bool) -> None:
        """After a commit: its frames wait for the next flush (a frame is logged only if its turn committed)."""
        if flushed:
            self.frame_buffer = []
            self.flushed_at = time.monotonic()
        if self.frames and self.settings.frame_log_per_station > 0:
            at = iso(datetime.now(timezone.utc))
            self.frame_buffer.extend((station_id, direction, text, at) for station_id, direction, text in self.frames)
            if len(self.frame_buffer) > FRAME_BUFFER:
                del self.frame_buffer[:len(self.frame_buffer) - FRAME_BUFFER]
        self.frames = []

    def _flush_frames(self) -> None:
        """Write the waiting frames in a transaction of their own (the writer is idle, or stopping)."""
        if not self.frame_buffer or self.store is None:
            return
        try:
            with self.store.group():
                self._log_frames(self.frame_buffer)
        except Exception:
            log.error("station host writer: logging %d frames failed", len(self.frame_buffer), exc_info=True)
            self.frame_seqs.clear()
        self.frame_buffer = []
        self.flushed_at = time.monotonic()

    def _log_frames(self, frames: list[tuple[str, str, str, str]]) -> None:
        """Frames into their stations' rings (slot = seq % --frame-log-per-station): one executemany.

        Cost (writer turns of 200 MeterValues from 200 stations, rings of 200 full, CPU
        time over 300 turns): the writer's 45-53 us per CALL grows by 26-30 us when the
        frames are written every turn (the commit rewrites a page of every station's
        ring), by 5-11 us (2.5-5.5 us per frame) when buffered for FRAME_FLUSH. A
        failure loses the log lines, never the turn. Frames of a station
        that moved to another host within the last FRAME_FLUSH may be logged after the
        new host's (their order across the move is not kept).
        """
        assert self.store is not None
        ring = self.settings.frame_log_per_station
        if ring <= 0:
            return
        seqs = self.frame_seqs
        rows = []
        try:
            for station_id, direction, text, at in frames:
                seq = seqs.get(station_id)
                if seq is None:
                    seq = self.store.frame_seq(station_id)
                seq += 1
                seqs[station_id] = seq
                rows.append((station_id, seq % ring, seq, at, direction, text))
            with self.store.savepoint():
                self.store.log_frames(rows)
        except Exception:
            log.error("station host writer: logging %d frames failed", len(frames), exc_info=True)
            seqs.clear()  # read again from storage next time

    def _abandon(self, events: list[Any]) -> None:
        """The turn did not commit: acknowledge nothing, drop the stations it touched."""
        self.frame_seqs.clear()  # the rolled-back frames' seqs are free again
        turn = Turn()
        for event in events:
            if isinstance(event, (Opened, Received)):
                turn.closes.append((event.link, 1011, "internal error: please reconnect"))
                self.stations.pop(event.station_id, None)
        self.release(turn)

    def _handle(self, event: Any, touched: set[str]) -> None:
        if isinstance(event, Received):
            station = self.stations.get(event.station_id)
            if station is not None:
                message = event.message
                self.frames.append((event.station_id, "in", message if isinstance(message, str)
                                    else message.decode("utf-8", "replace")))
                station.on_message(event.link, message, event.received, event.parsed)
        elif isinstance(event, Opened):
            self._station(event.station_id).connected(event.link)
        elif isinstance(event, Closed):
            station = self.stations.get(event.station_id)
            if station is not None:
                station.disconnected(event.link, event.reason)
                self._evict_if_idle(station)
        elif isinstance(event, CallTimedOut):
            station = self.stations.get(event.station_id)
            if station is not None:
                station.on_call_timeout(event.message_id)
                self._evict_if_idle(station)
        elif isinstance(event, FromActor):
            self._control(event.message, event.sender)
        elif isinstance(event, PendingAttempt):
            assert self.store is not None
            self.store.record_pending_attempt(event.station_id, event.address, event.at)
        elif isinstance(event, OwnSecurityEvent):
            assert self.store is not None
            self.store.record_own_security_event(event.event_type, event.at, station_id=event.station_id,
                                                 address=event.address, detail=event.detail)

    def _control(self, message: Any, sender: Any) -> None:
        if isinstance(message, SendCall):
            station = self.stations.get(message.station_id)
            if station is None:
                # Not (or no longer) connected here: answered at once by a transient actor.
                station = self._station(message.station_id)
            station.on_send_call(message, sender)
            self._evict_if_idle(station)
        elif isinstance(message, TimerFired):
            station = self._station(message.station_id)
            station.on_timer(message)
            self._evict_if_idle(station)
        elif isinstance(message, RetireStation):
            self._drop([message.station_id], "charge point removed by the operator")
        elif isinstance(message, GetStationState):
            station = self.stations.get(message.station_id)
            reply = station.state() if station else StationStateReply(message.station_id, False, False, self.pid, None, 0)
            self.tell(sender, reply)
        elif isinstance(message, RevokeLeases):
            self._drop(list(message.station_ids), message.reason)
        elif isinstance(message, PingHost):
            self.tell(sender, HostPong(message.token, int(self.host), True))

    def _drop(self, station_ids: list[str], reason: str) -> None:
        for station_id in station_ids:
            station = self.stations.get(station_id)
            if station is not None:
                station.close(1000, reason)
                self._evict_if_idle(station)

    def _station(self, station_id: str) -> Station:
        station = self.stations.get(station_id)
        if station is None:
            assert self.store is not None
            station = Station(station_id, settings=self.settings, store=self.store, effects=self, pid=self.pid,
                              authority=self.authority)
            self.stations[station_id] = station
        return station

    # -- actors.host.station.Effects: into the current turn --------------------------------

    def send(self, link: Link, text: str) -> None:
        self.turn.sends.append((link, text))
        self.frames.append((link.station_id, "out", text))

    def close(self, link: Link, code: int, reason: str) -> None:
        self.turn.closes.append((link, code, reason))

    def tell(self, address: Any, message: Any) -> None:
        self.turn.tells.append((address, message))

    def call_timeout(self, station_id: str, message_id: str, seconds: float) -> None:
        self.turn.timeouts.append((station_id, message_id, seconds))

    def _evict_if_idle(self, station: Station) -> None:
        if station.idle and self.stations.get(station.station_id) is station:
            del self.stations[station.station_id]
            # Its frames may be logged by another host next: read its seq again then.
            self.frame_seqs.pop(station.station_id, None)

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"<HostWorker stations={len(self.stations)} turns={self.turns} events={self.events} at {time.monotonic():.0f}>"
