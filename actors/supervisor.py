"""StationSupervisorActor: one shard of the station actors; creates, supervises, restarts them.

The registry starts ``SUPERVISORS`` of these and a station belongs to shard
``shard_of(station_id)``. Sharding keeps each supervisor's peer count small:
Thespian's TCP transport rebuilds its selector from every open socket on every
loop, so one parent of a thousand station actors slows down as it grows
(measured: spawns fell from ~80/s to ~20/s past 600 stations with one parent;
with 1000 stations arriving over 15 s, 4 shards booted 894 and 16 shards 976).

Supervision: when a station actor's process dies (ChildActorExited), the
supervisor marks the station disconnected and starts a fresh actor at once,
which reloads its state from storage; the charge point's reconnect is handed
to it. Repeated crashes back off (1 s, 2 s, ... 30 s) instead of looping; a
station that ran for a minute starts a fresh count.
"""

from __future__ import annotations

import gc
import hashlib
import logging
import time
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from thespian.actors import Actor, ActorExitRequest, ChildActorExited, WakeupMessage

from actors import stackroom
from actors.messages import (
    EnsureStation,
    LookupStation,
    PrespawnStations,
    RetireStation,
    StartStation,
    StartSupervisor,
    StationAddressReply,
    StationFailed,
    StationReady,
    StationStarted,
    SupervisorStarted,
    TimerFired,
)
from actors.settings import Settings
from actors.station import StationActor
from storage import Store

log = logging.getLogger(__name__)

SUPERVISORS = 16
RESTART = "restart"
PRESPAWN = "prespawn"
PRESPAWN_BATCH = 10  # station actors started per tick, so connects are still served in between
MAX_BACKOFF = 30.0
HEALTHY_AFTER = 60.0


def shard_of(station_id: str, shards: int = SUPERVISORS) -> int:
    """The supervisor shard of a station (stable across processes, unlike hash())."""
    return zlib.crc32(station_id.encode("utf-8")) % shards


def socket_name(admin_port: int, station_id: str) -> str:
    """Abstract UNIX socket where a station actor takes connection hand-offs.

    The node's admin port is part of the name so two systems can run side by side.
    """
    digest = hashlib.sha1(station_id.encode("utf-8")).hexdigest()[:24]
    return f"\0csms-{admin_port}-{digest}"


@dataclass
class _Entry:
    address: Any
    ready: bool = False
    pid: int = 0
    waiters: list[tuple[Any, int]] = field(default_factory=list)
    crashes: int = 0
    spawned: float = field(default_factory=time.monotonic)


class StationSupervisorActor(Actor):
    def __init__(self) -> None:
        super().__init__()
        self.settings: Settings | None = None
        self.scheduler: Any = None
        self.store: Store | None = None
        self.stations: dict[str, _Entry] = {}
        self.pending_timers: dict[str, list[TimerFired]] = {}
        self.prespawn: list[str] = []
        self.stopping = False

    def receiveMessage(self, message: Any, sender: Any) -> None:
        try:
            self._dispatch(message, sender)
        except Exception:
            log.exception("supervisor: error handling %s", type(message).__name__)

    def _dispatch(self, message: Any, sender: Any) -> None:
        if isinstance(message, EnsureStation):
            self._ensure(message.station_id, sender, message.token)
        elif isinstance(message, StationStarted):
            self._station_started(message, sender)
        elif isinstance(message, LookupStation):
            self._lookup(message, sender)
        elif isinstance(message, TimerFired):
            self._route_timer(message)
        elif isinstance(message, ChildActorExited):
            self._child_exited(message.childAddress)
        elif isinstance(message, WakeupMessage):
            self._wakeup(message.payload)
        elif isinstance(message, RetireStation):
            self._retire(message.station_id)
        elif isinstance(message, PrespawnStations):
            self.prespawn.extend(message.station_ids)
            self.wakeupAfter(0.05, payload=PRESPAWN)
        elif isinstance(message, StartSupervisor):
            self._start(message, sender)
        elif isinstance(message, ActorExitRequest):
            self.stopping = True

    def _start(self, message: StartSupervisor, sender: Any) -> None:
        if self.settings is None:
            self.settings, self.scheduler = message.settings, message.scheduler
            logging.getLogger().setLevel(self.settings.log_level)
            self.store = Store(self.settings.db, migrate_schema=False)
            # Station actors are forked from this process: freeze what is loaded
            # so copy-on-write pages stay shared (ARCHITECTURE.md).
            gc.collect()
            gc.freeze()
        self.send(sender, SupervisorStarted(message.index))

    # -- stations ---------------------------------------------------------------

    def _ensure(self, station_id: str, waiter: Any, token: int) -> None:
        assert self.settings is not None
        entry = self.stations.get(station_id)
        if entry is not None and entry.ready:
            self.send(waiter, StationReady(station_id, token, socket_name(self.settings.admin_port, station_id)))
            return
        if entry is None:
            entry = self._spawn(station_id)
        entry.waiters.append((waiter, token))

    def _spawn(self, station_id: str, crashes: int = 0) -> _Entry:
        assert self.settings is not None
        # Thespian forks the station's process inside createActor: give it room
        # on the frame data stack for life (actors.stackroom).
        address = stackroom.fork_room(self.createActor, StationActor)
        entry = _Entry(address, crashes=crashes)
        self.stations[station_id] = entry
        self.send(address, StartStation(self.settings, station_id, socket_name(self.settings.admin_port, station_id), self.scheduler))
        return entry

    def _station_started(self, message: StationStarted, sender: Any) -> None:
        assert self.settings is not None
        entry = self.stations.get(message.station_id)
        if entry is None or entry.address != sender:
            return
        entry.ready, entry.pid = True, message.pid
        name = socket_name(self.settings.admin_port, message.station_id)
        for waiter, token in entry.waiters:
            self.send(waiter, StationReady(message.station_id, token, name))
        entry.waiters.clear()
        for timer in self.pending_timers.pop(message.station_id, []):
            self.send(entry.address, timer)

    def _lookup(self, message: LookupStation, sender: Any) -> None:
        assert self.store is not None and self.settings is not None
        entry = self.stations.get(message.station_id)
        known = entry is not None or self.store.get_station(message.station_id) is not None
        address = entry.address if entry is not None and entry.ready else None
        reply = StationAddressReply(message.station_id, address, known, self.settings.call_timeout)
        self.send(message.reply_to or sender, reply)

    def _route_timer(self, timer: TimerFired) -> None:
        entry = self.stations.get(timer.station_id)
        if entry is not None and entry.ready:
            self.send(entry.address, timer)
            return
        self.pending_timers.setdefault(timer.station_id, []).append(timer)
        if entry is None:
            self._spawn(timer.station_id)

    def _retire(self, station_id: str) -> None:
        entry = self.stations.pop(station_id, None)
        if entry is not None:
            self.send(entry.address, ActorExitRequest())

    def _child_exited(self, address: Any) -> None:
        # Compare addresses as objects: right after createActor an address is
        # still Thespian's local placeholder, whose string form differs.
        station_id = next((sid for sid, e in self.stations.items() if e.address == address), None)
        if station_id is None or self.stopping:
            return
        entry = self.stations.pop(station_id)
        assert self.store is not None
        self.store.mark_connected(station_id, False, datetime.now(timezone.utc))
        for waiter, token in entry.waiters:
            self.send(waiter, StationFailed(station_id, token, "station actor exited while starting"))
        # A station that ran for a while before dying starts a fresh crash count.
        crashes = 1 if time.monotonic() - entry.spawned > HEALTHY_AFTER else entry.crashes + 1
        delay = min(MAX_BACKOFF, float(2 ** (crashes - 1))) if crashes > 1 else 0.0
        log.warning("supervisor: station actor %s exited unexpectedly (crash %d); restarting in %.0fs", station_id, crashes, delay)
        if delay:
            self.wakeupAfter(delay, payload=(RESTART, station_id, crashes))
        else:
            self._spawn(station_id, crashes)

    def _wakeup(self, payload: Any) -> None:
        if payload == PRESPAWN:
            batch, self.prespawn = self.prespawn[:PRESPAWN_BATCH], self.prespawn[PRESPAWN_BATCH:]
            for station_id in batch:
                if station_id not in self.stations and not self.stopping:
                    self._spawn(station_id)
            if self.prespawn:
                self.wakeupAfter(0.1, payload=PRESPAWN)
        elif isinstance(payload, tuple) and payload[:1] == (RESTART,):
            _, station_id, crashes = payload
            if station_id not in self.stations and not self.stopping:
                self._spawn(station_id, crashes)
