"""RegistryActor: the node's root; supervises the node and knows where each station is served.

One per node, created by run.py with the global name ``csms-registry`` so the
control script can find it. It creates and supervises the scheduler, the
gateway (the OCPP address), ``--hosts`` station hosts, the metrics
exporter and the HTTP API (``actors.api``): any of them that dies is created again at once (repeated deaths
back off up to ``MAX_BACKOFF``). run.py restores the registry itself.

The directory (``actors.leases``): station id -> the host holding its
connection, as a lease. A host asks for a station's lease when a handshake
has passed admission, before its 101 (AcquireLeases). The request settles
for a tenth of a second: the newest of overlapping handshakes of one station
is granted (LeasesGranted), the older ones are refused (LeasesRefused: 409,
no upgrade), and a lease held by another host is revoked there
(RevokeLeases: that host closes the old connection). A host whose process
died loses all its leases, and those stations are marked disconnected.

Routing: ``ctl`` asks LookupStation and gets the holding host's address (or
None: not connected, answered at once); scheduler timers go to the holding
host, or to any host for a station that is not connected (its station actor
is made from storage for the timer and dropped after). Timer requests from
hosts (ScheduleTimer / CancelTimer) go on to the current scheduler.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import time
import zlib
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from thespian.actors import Actor, ActorExitRequest, ChildActorExited, WakeupMessage

from actors import admin, leases
from actors.api import ApiActor
from actors.errors import CommandError
from actors.exporter import ExporterFailed, ExporterStarted, MetricsExporterActor, StartExporter
from actors.host.actor import StationHostActor
from actors.messages import (
    AcquireLeases,
    AdminCommand,
    AdminReply,
    ApiFailed,
    ApiStarted,
    CancelTimer,
    CheckReadiness,
    GatewayFailed,
    GatewayStarted,
    HostFailed,
    HostStarted,
    LeasesGranted,
    LeasesRefused,
    LookupStation,
    NodeStopping,
    ReadinessReply,
    RegistryFailed,
    RegistryStarted,
    ReleaseLeases,
    RetireStation,
    RevokeLeases,
    SchedulerStarted,
    ScheduleTimer,
    StartApi,
    StartGateway,
    StartHost,
    StartRegistry,
    StartScheduler,
    StationAddressReply,
    StopNode,
    TimerFired,
)
from actors.scheduler import SchedulerActor
from actors.settings import Settings
from metrics import actor_restarted, expose_restarts, forget_process
from storage import Store, iso, parse_time

log = logging.getLogger(__name__)

GLOBAL_NAME = "csms-registry"
HOUSEKEEPING = "housekeeping"  # every second: WAL checkpoint, orphan guard
RESTART = "restart"
SETTLED = "leases-settled"
MAX_BACKOFF = 10.0
HEALTHY_AFTER = 60.0


@dataclass
class _Child:
    """One supervised actor: what it is, its address, and its crash history."""

    role: str  # "scheduler" | "gateway" | "exporter" | "api" | "host"
    index: int = 0
    address: Any = None
    ready: bool = False
    pid: int = 0
    crashes: int = 0
    started: float = 0.0

    @property
    def name(self) -> str:
        """For the log: ``host 1``, ``scheduler``."""
        return f"host {self.index}" if self.role == "host" else self.role


class RegistryActor(Actor):
    def __init__(self) -> None:
        super().__init__()
        self.settings: Settings | None = None
        self.store: Store | None = None
        self.children: list[_Child] = []
        self.directory = leases.LeaseDirectory()
        self.starter: Any = None
        self.started_at = ""
        self.port = 0
        self.announced = False
        self.stopping = False
        self.stop_reason = ""
        self.said_stopping = False
        self._sigterm_before: Any = None

    def receiveMessage(self, message: Any, sender: Any) -> None:
        try:
            self._dispatch(message, sender)
        except Exception:
            log.exception("registry: error handling %s", type(message).__name__)

    def _dispatch(self, message: Any, sender: Any) -> None:
        if isinstance(message, AcquireLeases):
            self._acquire(message, sender)
        elif isinstance(message, ReleaseLeases):
            self.directory.release(message.index, message.tickets)
        elif isinstance(message, LookupStation):
            self._lookup(message, sender)
        elif isinstance(message, (ScheduleTimer, CancelTimer)):
            scheduler = self._child("scheduler")
            if scheduler.address is not None:
                self.send(scheduler.address, message)
        elif isinstance(message, TimerFired):
            self._route_timer(message)
        elif isinstance(message, AdminCommand):
            self.send(sender, dataclasses.replace(self._admin(message), request_id=message.request_id))
        elif isinstance(message, CheckReadiness):
            self.send(sender, self._readiness(message.token))
        elif isinstance(message, WakeupMessage):
            self._wakeup(message.payload)
        elif isinstance(message, (HostStarted, GatewayStarted, ExporterStarted, SchedulerStarted, ApiStarted)):
            self._child_started(message, sender)
        elif isinstance(message, (HostFailed, GatewayFailed, ExporterFailed, ApiFailed)):
            self._child_failed(message)
        elif isinstance(message, ChildActorExited):
            self._child_exited(message.childAddress)
        elif isinstance(message, StartRegistry):
            self._start(message, sender)
        elif isinstance(message, StopNode):
            self._stop(message.reason)
            self.send(sender, NodeStopping())
        elif isinstance(message, ActorExitRequest):
            self._stop("the actor system is shutting down")

    # -- start and supervision ----------------------------------------------------

    def _start(self, message: StartRegistry, sender: Any) -> None:
        if self.settings is not None:
            if self.announced:
                self.send(sender, RegistryStarted(self.started_at, os.getpid(), self.port))
            return
        self.settings, self.starter = message.settings, sender
        try:
            self._sigterm_before = signal.signal(signal.SIGTERM, self._on_sigterm)
        except ValueError:  # not the main thread: Thespian's own handling alone, as before
            pass
        logging.getLogger().setLevel(self.settings.log_level)
        self.store = Store(self.settings.db, migrate_schema=False)
        self.store.mark_all_disconnected()
        expose_restarts()
        self.started_at = iso(datetime.now(timezone.utc))
        # The gateway first: a port in use is reported before any host starts.
        self.children = [_Child("gateway"), _Child("scheduler"), _Child("exporter"), _Child("api")]
        self.children += [_Child("host", index) for index in range(max(1, self.settings.hosts))]
        self._create(self._child("gateway"))
        self.wakeupAfter(1.0, payload=HOUSEKEEPING)

    def _child(self, role: str, index: int = 0) -> _Child:
        return next(c for c in self.children if c.role == role and c.index == index)

    def _hosts(self) -> list[_Child]:
        return [c for c in self.children if c.role == "host"]

    def _create(self, child: _Child) -> None:
        assert self.settings is not None
        kind = {"scheduler": SchedulerActor, "gateway": _gateway_class(), "exporter": MetricsExporterActor,
                "api": ApiActor, "host": StationHostActor}[child.role]
        child.address, child.ready, child.started = self.createActor(kind), False, time.monotonic()
        if child.role == "scheduler":
            self.send(child.address, StartScheduler(self.settings, self.myAddress))
        elif child.role == "gateway":
            self.send(child.address, StartGateway(self.settings, rejoin=self.announced))
        elif child.role == "exporter":
            self.send(child.address, StartExporter(self.settings))
        elif child.role == "api":
            self.send(child.address, StartApi(self.settings, self.myAddress))
        else:
            self.send(child.address, StartHost(self.settings, child.index, self.myAddress))

    def _child_started(self, message: Any, sender: Any) -> None:
        child = next((c for c in self.children if c.address == sender), None)
        if child is None:
            return
        child.ready = True
        child.pid = getattr(message, "pid", 0)
        if isinstance(message, GatewayStarted):
            self.port = message.port
            if not self.announced:  # the rest of the node, now that the port is ours
                for other in self.children:
                    if other.role != "gateway" and other.address is None:
                        self._create(other)
        elif isinstance(message, SchedulerStarted):
            log.info("scheduler started with %d timers", message.timers)
        if not self.announced and all(c.ready for c in self.children):
            self.announced = True
            self.send(self.starter, RegistryStarted(self.started_at, os.getpid(), self.port))

    def _child_failed(self, message: Any) -> None:
        reason = message.reason
        if not self.announced:
            log.error("registry: the node cannot start: %s", reason)
            self.announced = True  # answered: a failure
            self.send(self.starter, RegistryFailed(reason))
        else:
            log.error("registry: a restarted actor failed: %s", reason)

    def _stop(self, reason: str) -> None:
        """The node is stopping: from now on a child that ends is not restarted, nor a crash."""
        self.stopping = True
        self.stop_reason = self.stop_reason or reason
        if not self.said_stopping:
            self.said_stopping = True
            log.info("registry: the node is stopping (%s); its actors end", self.stop_reason)

    def _on_sigterm(self, signum: int, frame: Any) -> None:
        """SIGTERM to the whole process group (systemd's default KillMode, ``kill -- -PGID``) reaches
        every actor of the node at once, and a child can end before the registry has read its own
        exit request. Known here, in the signal handler, its exit is not taken for a crash. (Only
        flags: logging from a signal handler could interrupt logging itself.)"""
        self.stopping = True
        self.stop_reason = self.stop_reason or "SIGTERM"
        if callable(self._sigterm_before):
            self._sigterm_before(signum, frame)

    def _child_exited(self, address: Any) -> None:
        # Compare addresses as objects: right after createActor an address is
        # still Thespian's local placeholder, whose string form differs.
        child = next((c for c in self.children if c.address == address), None)
        if child is None:
            return
        if self.stopping:
            self._stop("its actors are ending")  # said once, unless said already
            log.debug("registry: %s ended (the node is stopping)", child.name)
            return
        child.address, child.ready = None, False
        actor_restarted(child.role)
        if child.role == "host":
            self._host_lost(child.index)
            # Its live gauges (memory, descriptors) would otherwise linger beside its successor's.
            assert self.settings is not None
            forget_process(child.pid, self.settings.metrics_dir or None)
        child.crashes = 1 if time.monotonic() - child.started > HEALTHY_AFTER else child.crashes + 1
        delay = min(MAX_BACKOFF, 0.5 * 2 ** (child.crashes - 2)) if child.crashes > 1 else 0.0
        log.warning("registry: %s exited unexpectedly (crash %d); restarting in %.1fs", child.name, child.crashes, delay)
        if delay:
            self.wakeupAfter(delay, payload=(RESTART, child.role, child.index))
        else:
            self._create(child)

    def _host_lost(self, index: int) -> None:
        """A host died: its connections are gone; its stations are not connected."""
        assert self.store is not None
        lost = self.directory.host_lost(index)
        now = datetime.now(timezone.utc)
        for station_id in lost:
            try:
                self.store.mark_connected(station_id, False, now)
            except Exception:
                log.warning("station %s: could not mark it disconnected after its host was lost", station_id, exc_info=True)
        log.warning("registry: station host %d lost %d connections", index, len(lost))

    def _wakeup(self, payload: Any) -> None:
        if payload == HOUSEKEEPING:
            self._housekeeping()
        elif isinstance(payload, tuple) and payload[:1] == (SETTLED,):
            self._settled(payload[1])
        elif isinstance(payload, tuple) and payload[:1] == (RESTART,):
            _, role, index = payload
            child = self._child(role, index)
            if child.address is None and not self.stopping:
                self._create(child)

    def _housekeeping(self) -> None:
        """Every second: checkpoint the WAL (the hosts' writers do not), and if
        run.py died, end the whole system rather than live on as an orphan."""
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

    def _readiness(self, token: int) -> ReadinessReply:
        """For /readyz: which hosts run (the asker pings them), which other actors do not."""
        if self.settings is None:
            return ReadinessReply(token, (), ("registry",))
        hosts = tuple((h.index, h.address if h.ready else None) for h in self._hosts())
        down = tuple(c.role for c in self.children if c.role in ("scheduler", "gateway") and not c.ready)
        return ReadinessReply(token, hosts, down)

    # -- the directory --------------------------------------------------------------

    def _acquire(self, message: AcquireLeases, sender: Any) -> None:
        number, refused = self.directory.request(message.index, message.tickets)
        for index, tickets in refused.items():
            self._tell_host(index, LeasesRefused(tuple(tickets), leases.REFUSED))
        self.wakeupAfter(leases.SETTLE, payload=(SETTLED, number))

    def _settled(self, number: int) -> None:
        settled = self.directory.settle(number)
        for index, station_ids in settled.revoked.items():
            self._tell_host(index, RevokeLeases(tuple(station_ids), "replaced by a new connection"))
        for index, tickets in settled.granted.items():
            self._tell_host(index, LeasesGranted(tuple(tickets)))

    def _tell_host(self, index: int, message: Any) -> None:
        host = self._child("host", index)
        if host.address is not None:
            self.send(host.address, message)

    def _holder(self, station_id: str) -> Any:
        index = self.directory.holder(station_id)
        return self._child("host", index).address if index is not None else None

    def _lookup(self, message: LookupStation, sender: Any) -> None:
        assert self.store is not None and self.settings is not None
        address = self._holder(message.station_id)
        known = address is not None or self.store.get_station(message.station_id) is not None
        self.send(message.reply_to or sender, StationAddressReply(
            message.station_id, address, known, self.settings.call_timeout, message.request_id))
        if address is None and message.action:
            # The operator's request ends here (answered NotConnected): the audit log says so.
            description = "charge point is not connected" if known else "unknown charge point"
            try:
                self.store.record_audit(message.requested_by or "unknown", message.action, message.station_id,
                                        message.payload, datetime.now(timezone.utc), "not-connected",
                                        {"code": "NotConnected", "description": description, "details": {}})
            except Exception:
                log.error("registry: could not record %s in the audit log", message.action, exc_info=True)

    def _route_timer(self, timer: TimerFired) -> None:
        address = self._holder(timer.station_id)
        if address is None:
            hosts = [h for h in self._hosts() if h.address is not None]
            if not hosts:
                log.error("station %s: no station host for timer %s", timer.station_id, timer.key)
                return
            address = hosts[zlib.crc32(timer.station_id.encode("utf-8")) % len(hosts)].address
        self.send(address, timer)

    # -- control script ----------------------------------------------------------

    def _admin(self, message: AdminCommand) -> AdminReply:
        if self.store is None:
            # A registry that was never started: the control script created it by its
            # global name while run.py was restoring a killed one.
            return AdminReply(error="the central system is restarting; try again in a few seconds", exit_code=6)
        now = datetime.now(timezone.utc)
        try:
            result = admin.run_admin(self.store, message.command, dict(message.args), now, self.settings)
        except CommandError as error:  # admin.AdminError included
            self._audit(message, now, "error", {"description": error.message, "exit_code": error.exit_code})
            return AdminReply(error=error.message, exit_code=error.exit_code)
        self._audit(message, now, "done", None)
        if message.command == "status":
            uptime = (now - parse_time(self.started_at)).total_seconds()
            result = dict(result, started_at=self.started_at, uptime_s=round(uptime))
        elif message.command == "station.remove":
            station_id = str(message.args.get("id"))
            address = self._holder(station_id)
            if address is not None:
                self.send(address, RetireStation(station_id))
        return AdminReply(result=result)


    def _audit(self, message: AdminCommand, now: datetime, outcome: str, answer: Any) -> None:
        """Record a command that changes something (admin.CHANGES) in the audit log; never a secret."""
        if message.command not in admin.CHANGES or self.store is None:
            return
        args = admin.audited_args(message.args)
        try:
            self.store.record_audit(message.requested_by or "unknown", message.command,
                                    args.get("id") if message.command.startswith("station.") else None,
                                    args, now, outcome, answer)
        except Exception:
            log.error("registry: could not record %s in the audit log", message.command, exc_info=True)


def _gateway_class() -> type:
    # gateway imports actors, never the other way round at import time.
    from gateway.gateway import GatewayActor

    return GatewayActor


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
