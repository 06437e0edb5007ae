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
    """RegistryActor -> run.py: scheduler, gateway, exporter and every station host are up.

    ``pid``: the registry's process, which run.py watches (it restores a
    registry killed with -9); ``port``: the OCPP port the hosts accept on."""

    started_at: str
    pid: int = 0
    port: int = 0


@dataclass(frozen=True)
class RegistryFailed:
    """RegistryActor -> run.py: the node cannot start (``reason`` says why)."""

    reason: str


@dataclass(frozen=True)
class StopNode:
    """run.py -> RegistryActor: the node is stopping (``reason``: the signal run.py got);
    the actors that end from now on end for good, they are not restarted. Answer: NodeStopping."""

    reason: str


@dataclass(frozen=True)
class NodeStopping:
    """RegistryActor -> run.py: StopNode seen; the actor system may be shut down."""


@dataclass(frozen=True)
class StartHost:
    """RegistryActor -> StationHostActor: configure host ``index`` and start
    accepting on the OCPP port. Answer: HostStarted, or HostFailed."""

    settings: Settings
    index: int
    registry: Any


@dataclass(frozen=True)
class HostStarted:
    """StationHostActor -> RegistryActor: host ``index`` accepts connections."""

    index: int
    pid: int


@dataclass(frozen=True)
class HostFailed:
    """StationHostActor -> RegistryActor: host ``index`` could not start."""

    index: int
    reason: str


@dataclass(frozen=True)
class AcquireLeases:
    """StationHostActor -> RegistryActor: these handshakes passed admission here.

    Each ticket is (station id, the host's ticket number for that handshake).
    The registry settles them (``actors.leases``): the newest handshake of a
    station is granted (LeasesGranted), an older one still waiting is refused
    (LeasesRefused), and a host that held the station before is told to close
    that connection (RevokeLeases). The host answers 101 only after the grant."""

    index: int
    tickets: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class LeasesGranted:
    """RegistryActor -> StationHostActor: upgrade these handshakes and serve their stations."""

    tickets: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class LeasesRefused:
    """RegistryActor -> StationHostActor: a newer handshake of each station came:
    answer these ones 409 with ``reason``, before any upgrade."""

    tickets: tuple[tuple[str, int], ...]
    reason: str


@dataclass(frozen=True)
class RevokeLeases:
    """RegistryActor -> StationHostActor: these stations connected to another
    host: close their connections here and drop their station actors."""

    station_ids: tuple[str, ...]
    reason: str = "replaced by a new connection"


@dataclass(frozen=True)
class ReleaseLeases:
    """StationHostActor -> RegistryActor: these stations' connections here ended;
    each names the newest ticket the host was granted for it."""

    index: int
    tickets: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class RetireStation:
    """RegistryActor -> StationHostActor: the station was removed: close its
    connection and drop its station actor."""

    station_id: str


@dataclass(frozen=True)
class LookupStation:
    """Control script -> RegistryActor -> StationSupervisorActor: where is this station's actor?

    Answer (to ``reply_to``, set by the registry when it forwards): StationAddressReply
    (address None when the station is unknown or its actor is not running), with
    the same ``request_id``: an asker with several questions open (the HTTP API)
    matches the answers by it.
    """

    station_id: str
    reply_to: Any = None
    request_id: int = 0
    # For an operator's request (ctl, the HTTP API): what it is and who asks. When the
    # station is unknown or not connected the request ends here, so the registry audits it.
    action: str = ""
    payload: dict[str, Any] = field(default_factory=dict)
    requested_by: str = ""


@dataclass(frozen=True)
class StationAddressReply:
    """RegistryActor -> the asker of LookupStation: the holding host (or None) and the LookupStation's ``request_id``."""

    station_id: str
    address: Any
    known: bool
    call_timeout: float = 30.0
    request_id: int = 0


@dataclass(frozen=True)
class SendCall:
    """Control script -> StationHostActor holding ``station_id``: send one OCPP
    CALL to that charge point, through its station actor.

    ``payload`` has been validated against the 1.6 schema by the sender.
    ``options`` asks the station actor to build or complete the payload
    (``allocate_reservation_id``; ``plan``/``tags`` for SendLocalList, see
    ``actors.ocpp.bookkeeping``). Answer: CallReply, once the charge point answered,
    errored, timed out, or the connection is gone, carrying the same ``request_id``.
    """

    action: str
    payload: dict[str, Any]
    options: dict[str, Any] = field(default_factory=dict)
    station_id: str = ""
    request_id: int = 0
    # Who asked (the audit log): an API key's name, or ``local:<unix user>`` for ctl.
    requested_by: str = ""


@dataclass(frozen=True)
class CallReply:
    """StationActor -> the sender of SendCall (control script, ApiActor): how a SendCall ended.

    ``outcome``: "result" | "error" | "timeout" | "not-connected" | "refused";
    ``request_id``: the SendCall's.
    """

    station: str
    action: str
    request: dict[str, Any]
    outcome: str
    response: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    request_id: int = 0


@dataclass(frozen=True)
class GetStationState:
    """Control script / tests -> StationHostActor. Answer: StationStateReply."""

    station_id: str = ""


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
    """Control script or ApiActor -> RegistryActor: a data-management command (``station.add`` ...).

    Answer: AdminReply, with the same ``request_id``."""

    command: str
    args: dict[str, Any] = field(default_factory=dict)
    request_id: int = 0
    # Who asked (the audit log of commands that change something): as SendCall's.
    requested_by: str = ""


@dataclass(frozen=True)
class AdminReply:
    """RegistryActor -> the sender of AdminCommand: ``result`` on success, else ``error`` + ``exit_code``."""

    result: Any = None
    error: str | None = None
    exit_code: int = 0
    request_id: int = 0


@dataclass(frozen=True)
class StartGateway:
    """RegistryActor -> GatewayActor: reserve the OCPP address for the station
    hosts. Answer: GatewayStarted or GatewayFailed. ``rejoin`` is set when a
    killed gateway is replaced: the hosts listening on the port are ours, so the
    "something listens there" probe is skipped."""

    settings: Settings
    rejoin: bool = False


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


@dataclass(frozen=True)
class CheckReadiness:
    """MetricsExporterActor -> RegistryActor: is the node up (``/readyz``)? Answer: ReadinessReply
    with the same ``token``."""

    token: int = 0


@dataclass(frozen=True)
class ReadinessReply:
    """RegistryActor -> the asker of CheckReadiness.

    ``hosts``: one ``(index, address)`` per station host, the address None
    while that host is not running (died, restarting); ``down``: the other
    supervised actors that are not running ("scheduler", "gateway"), or
    "registry" while the registry itself has not been configured yet."""

    token: int
    hosts: tuple[Any, ...] = ()
    down: tuple[str, ...] = ()


@dataclass(frozen=True)
class PingHost:
    """MetricsExporterActor -> StationHostActor: answer HostPong once the host's writer has taken
    this ping from its queue (so the actor, the writer and the event loop all run)."""

    token: int = 0


@dataclass(frozen=True)
class HostPong:
    """StationHostActor -> the sender of PingHost: host ``index`` is serving (or not)."""

    token: int
    index: int
    serving: bool


@dataclass(frozen=True)
class StartApi:
    """RegistryActor -> ApiActor: serve the HTTP API on ``settings.api_host:settings.api_port``,
    asking ``registry`` for data commands and station addresses.

    Answer: ApiStarted, or ApiFailed when the port cannot be bound."""

    settings: Settings
    registry: Any


@dataclass(frozen=True)
class ApiStarted:
    """ApiActor -> RegistryActor: the HTTP API listens on ``port``."""

    port: int
    pid: int


@dataclass(frozen=True)
class ApiFailed:
    """ApiActor -> RegistryActor: the HTTP API cannot listen (``reason`` says why)."""

    reason: str
