"""RegistryActor: station id -> station actor; creates, supervises and restarts them.

One per node, created by run.py with the global name ``csms-registry`` so the
control script can find it. It also answers the control script's
data-management commands (``actors.admin``) and creates the scheduler and the
metrics exporter.

Supervision: when a station actor's process dies (ChildActorExited), the
registry marks the station disconnected and starts a fresh actor at once, which
reloads its state from storage; the charge point's reconnect is handed to it.
Repeated crashes back off (1 s, 2 s, ... 30 s) instead of looping.
"""

from __future__ import annotations

import gc
import hashlib
import logging
import os
import signal
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from thespian.actors import (
    Actor,
    ActorExitRequest,
    ChildActorExited,
    WakeupMessage,
)

from actors import admin
from actors.errors import CommandError
from actors.exporter import MetricsExporterActor, StartExporter
from actors.messages import (
    AdminCommand,
    AdminReply,
    EnsureStation,
    LookupStation,
    RegistryStarted,
    SchedulerStarted,
    StartRegistry,
    StartScheduler,
    StartStation,
    StationAddressReply,
    StationFailed,
    StationReady,
    StationStarted,
    TimerFired,
)
from actors.scheduler import SchedulerActor
from actors.settings import Settings
from actors.station import StationActor
from storage import Store, iso, parse_time

log = logging.getLogger(__name__)

GLOBAL_NAME = "csms-registry"
PARENT_CHECK = "parent-check"
PRESPAWN = "prespawn"
PRESPAWN_BATCH = 20  # station actors started per tick, so connects are still served in between
RESTART = "restart"
MAX_BACKOFF = 30.0
HEALTHY_AFTER = 60.0


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


class RegistryActor(Actor):
    def __init__(self) -> None:
        super().__init__()
        self.settings: Settings | None = None
        self.store: Store | None = None
        self.stations: dict[str, _Entry] = {}
        self.scheduler: Any = None
        self.exporter: Any = None
        self.starter: Any = None
        self.started_at = ""
        self.stopping = False
        self.pending_timers: dict[str, list[TimerFired]] = {}
        self.prespawn: list[str] = []

    def receiveMessage(self, message: Any, sender: Any) -> None:
        try:
            self._dispatch(message, sender)
        except Exception:
            log.exception("registry: error handling %s", type(message).__name__)

    def _dispatch(self, message: Any, sender: Any) -> None:
        if isinstance(message, EnsureStation):
            self._ensure(message.station_id, sender, message.token)
        elif isinstance(message, StationStarted):
            self._station_started(message, sender)
        elif isinstance(message, LookupStation):
            self._lookup(message, sender)
        elif isinstance(message, AdminCommand):
            self.send(sender, self._admin(message))
        elif isinstance(message, TimerFired):
            self._route_timer(message)
        elif isinstance(message, ChildActorExited):
            self._child_exited(message.childAddress)
        elif isinstance(message, WakeupMessage):
            self._wakeup(message.payload)
        elif isinstance(message, StartRegistry):
            self._start(message, sender)
        elif isinstance(message, SchedulerStarted):
            log.info("scheduler started with %d timers", message.timers)
        elif isinstance(message, ActorExitRequest):
            self.stopping = True

    def _start(self, message: StartRegistry, sender: Any) -> None:
        if self.settings is not None:
            self.send(sender, RegistryStarted(self.started_at))
            return
        self.settings = message.settings
        logging.getLogger().setLevel(self.settings.log_level)
        self.store = Store(self.settings.db)
        self.store.mark_all_disconnected()
        self.started_at = iso(datetime.now(timezone.utc))
        self.scheduler = self.createActor(SchedulerActor)
        self.send(self.scheduler, StartScheduler(self.settings, self.myAddress))
        self.exporter = self.createActor(MetricsExporterActor)
        self.send(self.exporter, StartExporter(self.settings))
        # Station actors are forked from this process: freeze what is loaded so
        # copy-on-write pages stay shared (ARCHITECTURE.md, ~5 MB PSS per station).
        gc.collect()
        gc.freeze()
        if self.settings.parent_pid:
            self.wakeupAfter(1.0, payload=PARENT_CHECK)
        # Known stations get their actor at once, so that a reconnect storm after
        # a restart finds them ready (ARCHITECTURE.md).
        self.prespawn = [row["id"] for row in self.store.list_stations()]
        if self.prespawn:
            self.wakeupAfter(0.05, payload=PRESPAWN)
        self.send(sender, RegistryStarted(self.started_at))

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
        address = self.createActor(StationActor)
        entry = _Entry(address, crashes=crashes)
        self.stations[station_id] = entry
        self.send(address, StartStation(self.settings, station_id, socket_name(self.settings.admin_port, station_id)))
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
        assert self.store is not None
        entry = self.stations.get(message.station_id)
        known = entry is not None or self.store.get_station(message.station_id) is not None
        address = entry.address if entry is not None and entry.ready else None
        assert self.settings is not None
        self.send(sender, StationAddressReply(message.station_id, address, known, self.settings.call_timeout))

    def _route_timer(self, timer: TimerFired) -> None:
        entry = self.stations.get(timer.station_id)
        if entry is not None and entry.ready:
            self.send(entry.address, timer)
            return
        self.pending_timers.setdefault(timer.station_id, []).append(timer)
        if entry is None:
            self._spawn(timer.station_id)

    def _child_exited(self, address: Any) -> None:
        # Compare addresses as objects: right after createActor an address is
        # still Thespian's local placeholder, whose string form differs.
        station_id = next((sid for sid, e in self.stations.items() if e.address == address), None)
        if station_id is None:
            if not self.stopping and address in (self.scheduler, self.exporter):
                log.error("registry: helper actor %s exited", address)
            return
        entry = self.stations.get(station_id)
        if entry is None or entry.address != address:
            return
        del self.stations[station_id]
        if self.stopping:
            return
        assert self.store is not None
        self.store.mark_connected(station_id, False, datetime.now(timezone.utc))
        for waiter, token in entry.waiters:
            self.send(waiter, StationFailed(station_id, token, "station actor exited while starting"))
        # A station that ran for a while before dying starts a fresh crash count.
        crashes = 1 if time.monotonic() - entry.spawned > HEALTHY_AFTER else entry.crashes + 1
        delay = min(MAX_BACKOFF, float(2 ** (crashes - 1))) if crashes > 1 else 0.0
        log.warning("registry: station actor %s exited unexpectedly (crash %d); restarting in %.0fs", station_id, crashes, delay)
        if delay:
            self.wakeupAfter(delay, payload=(RESTART, station_id, crashes))
        else:
            self._spawn(station_id, crashes)

    def _wakeup(self, payload: Any) -> None:
        if payload == PARENT_CHECK:
            self._check_parent()
        elif payload == PRESPAWN:
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

    def _check_parent(self) -> None:
        """If run.py died, end the whole system rather than live on as an orphan."""
        assert self.settings is not None
        try:
            os.kill(self.settings.parent_pid, 0)
        except ProcessLookupError:
            log.error("registry: run.py (pid %d) is gone; stopping the actor system", self.settings.parent_pid)
            self.stopping = True
            kill_instance(self.settings.admin_port, exclude=os.getpid())
            os._exit(0)
        self.wakeupAfter(1.0, payload=PARENT_CHECK)

    # -- control script ----------------------------------------------------------

    def _admin(self, message: AdminCommand) -> AdminReply:
        assert self.store is not None
        if message.command == "status":
            result = admin.run_admin(self.store, "status", dict(message.args), datetime.now(timezone.utc))
            uptime = (datetime.now(timezone.utc) - parse_time(self.started_at)).total_seconds()
            result = dict(result, started_at=self.started_at, uptime_s=round(uptime), station_actors=len(self.stations))
            return AdminReply(result=result)
        try:
            result = admin.run_admin(self.store, message.command, dict(message.args), datetime.now(timezone.utc))
        except (CommandError, admin.AdminError) as error:
            return AdminReply(error=error.message, exit_code=error.exit_code)
        if message.command == "station.remove":
            entry = self.stations.pop(str(message.args.get("id")), None)
            if entry is not None:
                self.send(entry.address, ActorExitRequest())
        return AdminReply(result=result)


def instance_pids(admin_port: int) -> list[int]:
    """PIDs of every process of the node with this admin port (marked CSMS_INSTANCE)."""
    marker = f"CSMS_INSTANCE={admin_port}".encode()
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                if marker in f.read().split(b"\0"):
                    pids.append(int(name))
        except OSError:
            continue
    return pids


def kill_instance(admin_port: int, *, exclude: int = 0) -> None:
    for pid in instance_pids(admin_port):
        if pid != exclude:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
