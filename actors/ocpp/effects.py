"""What the OCPP logic reads, and the effects it returns instead of doing I/O.

The station machine (``actors.ocpp.machine``) and the handlers it calls take
parsed input, ``now`` and a read-only view of storage (``Reads``), and say
what should happen as a list of effects. The station host carries them out
(``actors.host.station``), in this order for one event:

| effect        | carried out by the host                                            |
|---------------|--------------------------------------------------------------------|
| ``Write``     | the named ``Store`` method, inside the turn's transaction; the writes of one event all or none (a savepoint when there are several): if one raises, the event's ``fallback`` replaces its other effects |
| ``Count``     | the named function of ``metrics``                                  |
| ``Tell``      | an actor message (the scheduler's timers, a ``CallReply`` to ``ctl``) |
| ``Send``      | a text frame on connection ``conn``, after the turn's commit       |
| ``Close``     | connection ``conn`` closed, after the turn's commit                |
| ``ArmTimeout``| the call timeout of an outgoing CALL started                       |

``StartCall`` never reaches the host: a handler asks for a CALL of the central
system's own (CertificateSigned after a SignCertificate), and the station
machine puts it in the station's CALL queue after the answer it goes with,
where it becomes a ``Send`` and an ``ArmTimeout`` like any other.

Writes run first, then the others in the order they were returned. A write
and its names are checked when the effect is made, so a typo fails in the
unit tests, not in production.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

Row = dict[str, Any]

SCHEDULER = "scheduler"  # Tell address of the node's scheduler (routed by the registry)

# The Store methods a Write may name (all of them write; none returns what the logic needs).
WRITES = frozenset({
    "mark_connected", "record_boot", "touch", "record_status", "start_transaction", "stop_transaction",
    "record_meter_values", "record_station_event", "record_configuration", "set_configuration_value",
    "set_password", "raise_security_profile", "record_reservation_request", "set_reservation_status",
    "record_local_list_result", "record_local_list_version", "replace_profiles", "add_remote_start_profile",
    "drop_remote_start_profile", "record_event", "record_authorization", "record_authorizations", "record_audit",
    "record_data_transfer",
    "record_issued_certificate", "set_issued_certificate_status",
    "replace_installed_certificates", "remove_installed_certificate",
})

# The functions of ``metrics`` a Count may name.
COUNTS = frozenset({
    "message", "call_latency", "call_error", "connection_event", "transaction_started",
    "transaction_stopped", "energy_delivered", "transaction_flagged", "energy_metered", "status_notification",
    "authorization", "security_event",
})


@dataclass(slots=True)
class Write:
    op: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.op not in WRITES:
            raise ValueError(f"not a storage write: {self.op!r}")


@dataclass(slots=True)
class Count:
    op: str
    args: tuple[Any, ...] = ()

    def __post_init__(self) -> None:
        if self.op not in COUNTS:
            raise ValueError(f"not a metric: {self.op!r}")


@dataclass(slots=True)
class Tell:
    to: Any
    message: Any


@dataclass(slots=True)
class Send:
    conn: int  # the connection's number, as given to ``StationMachine.connected``
    text: str


@dataclass(slots=True)
class Close:
    conn: int
    code: int
    reason: str


@dataclass(slots=True)
class ArmTimeout:
    message_id: str
    seconds: float


@dataclass(slots=True)
class StartCall:
    action: str
    payload: dict[str, Any]


Effect = Write | Count | Tell | Send | Close | ArmTimeout | StartCall


def _nothing() -> list[Effect]:
    return []


@dataclass(slots=True)
class Step:
    """The effects of one event, and what replaces them if its writes fail.

    ``fallback`` is called only then (building a CALLERROR for every frame
    that will almost never need one costs more than the frame's own reply).
    """

    effects: list[Effect] = field(default_factory=list)
    fallback: Callable[[], list[Effect]] = _nothing


class Reads(Protocol):
    """The storage queries the OCPP logic may make (``storage.Store`` implements them).

    Reads see every write of earlier events (the host carries out one event's
    writes before the next event), not the writes the current event returns.
    """

    def get_station(self, station_id: str) -> Row | None: ...

    def get_tag(self, id_tag: str) -> Row | None: ...

    def list_tags(self) -> list[Row]: ...

    def get_transaction(self, tx_id: int) -> Row | None: ...

    def transaction_station(self, tx_id: int) -> str | None: ...

    def list_transactions(self, *, station_id: str | None = None, active: bool = False,
                          limit: int = 1000) -> list[Row]: ...

    def active_transactions_for_tag(self, id_tag: str) -> list[Row]: ...

    def start_retry(self, station_id: str, payload: dict[str, Any]) -> int | None: ...

    def next_transaction_id(self) -> int: ...

    def next_reservation_id(self) -> int: ...

    def get_reservation(self, reservation_id: int) -> Row | None: ...

    def reservation_for_start(self, station_id: str, connector_id: int, reservation_id: int) -> Row | None: ...

    def local_list_state(self, station_id: str) -> dict[str, Any]: ...

    def installed_profiles(self, station_id: str) -> list[Row]: ...

    def remote_start_profile(self, station_id: str, connector_id: int, id_tag: str) -> tuple[int, dict[str, Any]] | None: ...

    def get_configuration(self, station_id: str) -> list[Row]: ...

    def latest_meter_values(self, tx_id: int, count: int) -> list[Row]: ...

    def next_request_id(self, station_id: str) -> int: ...

