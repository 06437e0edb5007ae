"""Messages between actors (and from the control script), as frozen dataclasses.

Naming: commands are imperative (``SendCall``), facts past tense
(``StationStarted``), answers end in ``Reply``. OCPP payloads travel inside
these envelopes as plain dicts, never as the ``ocpp`` library's classes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from actors.settings import Settings


@dataclass(frozen=True)
class StartRegistry:
    """run.py -> RegistryActor: configure and start. Answer: RegistryStarted."""

    settings: Settings


@dataclass(frozen=True)
class RegistryStarted:
    """RegistryActor -> run.py: the registry, its supervisors, the scheduler and the exporter are up.

    ``supervisors``: the station supervisors' addresses, in shard order."""

    started_at: str
    supervisors: tuple[Any, ...] = ()


@dataclass(frozen=True)
class StartSupervisor:
    """RegistryActor -> StationSupervisorActor: configure shard ``index``. Answer: SupervisorStarted."""

    settings: Settings
    index: int
    scheduler: Any = None


@dataclass(frozen=True)
class SupervisorStarted:
    index: int


@dataclass(frozen=True)
class PrespawnStations:
    """RegistryActor -> StationSupervisorActor: start these known stations' actors, a batch at a time."""

    station_ids: tuple[str, ...]


@dataclass(frozen=True)
class RetireStation:
    """RegistryActor -> StationSupervisorActor: the station was removed; stop its actor."""

    station_id: str


@dataclass(frozen=True)
class EnsureStation:
    """GatewayActor -> StationSupervisorActor (of the station's shard): make sure
    the station actor runs and listens.

    Answer: StationReady (or StationFailed)."""

    station_id: str
    token: int


@dataclass(frozen=True)
class StationReady:
    """StationSupervisorActor -> GatewayActor: the station actor listens on ``socket_name``."""

    station_id: str
    token: int
    socket_name: str


@dataclass(frozen=True)
class StationFailed:
    """StationSupervisorActor -> GatewayActor: the station actor could not be started."""

    station_id: str
    token: int
    reason: str


@dataclass(frozen=True)
class StartStation:
    """StationSupervisorActor -> StationActor: configure. Answer: StationStarted."""

    settings: Settings
    station_id: str
    socket_name: str
    scheduler: Any = None


@dataclass(frozen=True)
class StationStarted:
    """StationActor -> StationSupervisorActor: listening for connection hand-offs."""

    station_id: str
    pid: int


@dataclass(frozen=True)
class LookupStation:
    """Control script -> RegistryActor -> StationSupervisorActor: where is this station's actor?

    Answer (to ``reply_to``, set by the registry when it forwards): StationAddressReply
    (address None when the station is unknown or its actor is not running).
    """

    station_id: str
    reply_to: Any = None


@dataclass(frozen=True)
class StationAddressReply:
    station_id: str
    address: Any
    known: bool
    call_timeout: float = 30.0


@dataclass(frozen=True)
class SendCall:
    """Control script -> StationActor: send one OCPP CALL to the charge point.

    ``payload`` has been validated against the 1.6 schema by the sender.
    ``options`` asks the station actor to build or complete the payload
    (``allocate_reservation_id``; ``plan``/``tags`` for SendLocalList, see
    ``actors.bookkeeping``). Answer: CallReply, once the charge point answered,
    errored, timed out, or the connection is gone.
    """

    action: str
    payload: dict[str, Any]
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CallReply:
    """StationActor -> control script: how a SendCall ended.

    ``outcome``: "result" | "error" | "timeout" | "not-connected" | "refused".
    """

    station: str
    action: str
    request: dict[str, Any]
    outcome: str
    response: dict[str, Any] | None = None
    error: dict[str, Any] | None = None


@dataclass(frozen=True)
class GetStationState:
    """Control script / tests -> StationActor. Answer: StationStateReply."""


@dataclass(frozen=True)
class StationStateReply:
    station_id: str
    connected: bool
    ever_accepted: bool
    pid: int
    outstanding: str | None
    queued: int


@dataclass(frozen=True)
class AdminCommand:
    """Control script -> RegistryActor: a data-management command (``station.add`` ...).

    Answer: AdminReply."""

    command: str
    args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AdminReply:
    """RegistryActor -> control script: ``result`` on success, else ``error`` + ``exit_code``."""

    result: Any = None
    error: str | None = None
    exit_code: int = 0


@dataclass(frozen=True)
class StartGateway:
    """run.py -> GatewayActor: open the OCPP listener. Answer: GatewayStarted or GatewayFailed."""

    settings: Settings
    supervisors: tuple[Any, ...]


@dataclass(frozen=True)
class GatewayStarted:
    port: int


@dataclass(frozen=True)
class GatewayFailed:
    reason: str


@dataclass(frozen=True)
class StartScheduler:
    """RegistryActor -> SchedulerActor: load persistent timers and start. Answer: SchedulerStarted."""

    settings: Settings
    registry: Any


@dataclass(frozen=True)
class SchedulerStarted:
    timers: int


@dataclass(frozen=True)
class ScheduleTimer:
    """Any actor -> SchedulerActor: persist a timer that fires at ``due`` (ISO UTC).

    When due, the scheduler sends TimerFired to the registry, which routes it to
    the station actor of ``station_id`` (starting it if needed). Re-scheduling
    the same ``key`` replaces the timer."""

    key: str
    station_id: str
    kind: str
    due: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CancelTimer:
    """Any actor -> SchedulerActor: drop the timer ``key`` (no answer)."""

    key: str


@dataclass(frozen=True)
class TimerFired:
    """SchedulerActor -> RegistryActor -> StationSupervisorActor -> StationActor: a persistent timer came due."""

    key: str
    station_id: str
    kind: str
    due: str
    data: dict[str, Any] = field(default_factory=dict)
