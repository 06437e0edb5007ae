"""RegistryActor: the node's root; routes station ids to their supervisor shard.

One per node, created by run.py with the global name ``csms-registry`` so the
control script can find it. It starts the station supervisors (shards, see
``actors.supervisor``), the scheduler and the metrics exporter; answers the
control script's data-management commands (``actors.admin``); forwards
station lookups, timers and removals to the station's shard; and stops the
whole node if run.py dies, rather than living on as an orphan.

Per-connection traffic never passes here: the gateway talks to the shards.
"""

from __future__ import annotations

import gc
import logging
import os
import signal
from datetime import datetime, timezone
from typing import Any

from thespian.actors import Actor, ActorExitRequest, ChildActorExited, WakeupMessage

from actors import admin
from actors.errors import CommandError
from actors.exporter import MetricsExporterActor, StartExporter
from actors.messages import (
    AdminCommand,
    AdminReply,
    LookupStation,
    PrespawnStations,
    RegistryStarted,
    RetireStation,
    SchedulerStarted,
    StartRegistry,
    StartScheduler,
    StartSupervisor,
    SupervisorStarted,
    TimerFired,
)
from actors.scheduler import SchedulerActor
from actors.settings import Settings
from actors.supervisor import SUPERVISORS, StationSupervisorActor, shard_of
from storage import Store, iso, parse_time

log = logging.getLogger(__name__)

GLOBAL_NAME = "csms-registry"
HOUSEKEEPING = "housekeeping"  # every second: WAL checkpoint, orphan guard


class RegistryActor(Actor):
    def __init__(self) -> None:
        super().__init__()
        self.settings: Settings | None = None
        self.store: Store | None = None
        self.supervisors: list[Any] = []
        self.started: set[int] = set()
        self.scheduler: Any = None
        self.exporter: Any = None
        self.starter: Any = None
        self.started_at = ""
        self.stopping = False

    def receiveMessage(self, message: Any, sender: Any) -> None:
        try:
            self._dispatch(message, sender)
        except Exception:
            log.exception("registry: error handling %s", type(message).__name__)

    def _dispatch(self, message: Any, sender: Any) -> None:
        if isinstance(message, LookupStation):
            self.send(self._shard(message.station_id), LookupStation(message.station_id, reply_to=sender))
        elif isinstance(message, AdminCommand):
            self.send(sender, self._admin(message))
        elif isinstance(message, TimerFired):
            self.send(self._shard(message.station_id), message)
        elif isinstance(message, WakeupMessage) and message.payload == HOUSEKEEPING:
            self._housekeeping()
        elif isinstance(message, SupervisorStarted):
            self._supervisor_started(message)
        elif isinstance(message, StartRegistry):
            self._start(message, sender)
        elif isinstance(message, SchedulerStarted):
            log.info("scheduler started with %d timers", message.timers)
        elif isinstance(message, ChildActorExited):
            if not self.stopping:
                log.error("registry: child actor %s exited", message.childAddress)
        elif isinstance(message, ActorExitRequest):
            self.stopping = True

    def _shard(self, station_id: str) -> Any:
        return self.supervisors[shard_of(station_id, len(self.supervisors))]

    def _start(self, message: StartRegistry, sender: Any) -> None:
        if self.settings is not None:
            if len(self.started) == len(self.supervisors):
                self.send(sender, RegistryStarted(self.started_at, tuple(self.supervisors)))
            return
        self.settings, self.starter = message.settings, sender
        logging.getLogger().setLevel(self.settings.log_level)
        self.store = Store(self.settings.db, migrate_schema=False)
        self.store.mark_all_disconnected()
        self.started_at = iso(datetime.now(timezone.utc))
        # Everything is imported by now: freeze it so the forked children share
        # those pages copy-on-write (ARCHITECTURE.md, ~5 MB PSS per station).
        gc.collect()
        gc.freeze()
        self.scheduler = self.createActor(SchedulerActor)
        self.supervisors = [self.createActor(StationSupervisorActor) for _ in range(SUPERVISORS)]
        for index, supervisor in enumerate(self.supervisors):
            self.send(supervisor, StartSupervisor(self.settings, index, self.scheduler))
        self.send(self.scheduler, StartScheduler(self.settings, self.myAddress))
        self.exporter = self.createActor(MetricsExporterActor)
        self.send(self.exporter, StartExporter(self.settings))
        self.wakeupAfter(1.0, payload=HOUSEKEEPING)

    def _supervisor_started(self, message: SupervisorStarted) -> None:
        assert self.store is not None
        self.started.add(message.index)
        if len(self.started) < len(self.supervisors):
            return
        # Known stations get their actor at once, so that a reconnect storm after
        # a restart finds them ready (ARCHITECTURE.md).
        shards: list[list[str]] = [[] for _ in self.supervisors]
        for row in self.store.list_stations():
            shards[shard_of(row["id"], len(self.supervisors))].append(row["id"])
        for supervisor, station_ids in zip(self.supervisors, shards, strict=True):
            if station_ids:
                self.send(supervisor, PrespawnStations(tuple(station_ids)))
        self.send(self.starter, RegistryStarted(self.started_at, tuple(self.supervisors)))

    def _housekeeping(self) -> None:
        """Every second: checkpoint the WAL (station actors do not, see Store), and
        if run.py died, end the whole system rather than live on as an orphan."""
        assert self.settings is not None and self.store is not None
        try:
            self.store.checkpoint()
        except Exception:
            log.warning("registry: WAL checkpoint failed", exc_info=True)
        try:
            if self.settings.parent_pid:
                os.kill(self.settings.parent_pid, 0)
        except ProcessLookupError:
            log.error("registry: run.py (pid %d) is gone; stopping the actor system", self.settings.parent_pid)
            self.stopping = True
            kill_instance(self.settings.admin_port, exclude=os.getpid())
            os._exit(0)
        self.wakeupAfter(1.0, payload=HOUSEKEEPING)

    # -- control script ----------------------------------------------------------

    def _admin(self, message: AdminCommand) -> AdminReply:
        assert self.store is not None
        now = datetime.now(timezone.utc)
        try:
            result = admin.run_admin(self.store, message.command, dict(message.args), now)
        except CommandError as error:  # admin.AdminError included
            return AdminReply(error=error.message, exit_code=error.exit_code)
        if message.command == "status":
            uptime = (now - parse_time(self.started_at)).total_seconds()
            result = dict(result, started_at=self.started_at, uptime_s=round(uptime))
        elif message.command == "station.remove":
            station_id = str(message.args.get("id"))
            self.send(self._shard(station_id), RetireStation(station_id))
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
