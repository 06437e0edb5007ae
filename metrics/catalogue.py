"""The metric catalogue: every counter and histogram the central system records.

Station actors record in their own processes. With prometheus_client's
multiprocess mode (``PROMETHEUS_MULTIPROC_DIR`` set by run.py before the first
import of prometheus_client) each process writes its values to files in that
directory and the exporter adds them up at scrape time (see ``exposition``).

Label values stay bounded: action names, directions, outcomes, OCPP error codes
and connection events, never idTags or station ids. ``action`` and ``code`` come
from the wire, so values outside the OCPP vocabulary are folded into
``"unknown"`` and ``"other"``: a charge point that invents action names cannot
grow the number of series.

Every metric is created against the ``registry=`` given to :class:`Metrics`;
tests build one on a fresh ``CollectorRegistry()``. The module-level functions
record on :data:`DEFAULT`, built on the default ``REGISTRY``.

Batching: in multiprocess mode every increment is a lock, a ``getpid()`` and
a write into the process's mmapped file, and a CALL answered costs three of
them (its count, its latency's sum and bucket): 10% of a station host's GIL
time at 9,000 msg/s (py-spy --gil). Inside ``with DEFAULT.batched():`` the
calling thread's recordings are added up in memory instead and written once
when the block ends, one increment per series touched; the host's writer
wraps each turn in it. Other threads record directly meanwhile. What a scrape
sees is the same, one turn later.

Two energy counters, on purpose: ``csms_energy_delivered_wh_total`` moves
only when a transaction stops (by meterStop - meterStart: billing's figure);
``csms_energy_metered_wh_total`` moves as MeterValues of a running
transaction arrive (the growth of its Energy.Active.Import.Register) and takes
the rest at its stop, so over finished transactions both reach the same sum,
but the second one shows a four-hour charge while it happens.

Per station host (label ``host``, its index, bounded by ``--hosts``): the
writer's batch size and commit time, the event loop's lag, and the process's
CPU, memory and descriptors, which each host samples itself
(prometheus_client's process collector does not work in multiprocess mode).
"""

from __future__ import annotations

import math
import threading
from bisect import bisect_left
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

__all__ = [
    "ACTIONS",
    "AUTHORIZATION_STATUSES",
    "BATCH_BUCKETS",
    "CONNECTOR_ERROR_CODES",
    "CONNECTOR_STATUSES",
    "DEFAULT",
    "ERROR_CODES",
    "LAG_BUCKETS",
    "LATENCY_BUCKETS",
    "Metrics",
    "actor_restarted",
    "authorization",
    "batched",
    "call_error",
    "call_latency",
    "connection_event",
    "energy_delivered",
    "energy_metered",
    "expose_restarts",
    "host_process",
    "login_failure",
    "loop_lag",
    "message",
    "security_refusal",
    "status_notification",
    "transaction_flagged",
    "transaction_started",
    "transaction_stopped",
    "writer_turn",
]

# OCPP 1.6 actions, both directions, plus the Security Whitepaper extension.
ACTIONS: frozenset[str] = frozenset(
    {
        # Charge point -> central system
        "Authorize",
        "BootNotification",
        "DataTransfer",
        "DiagnosticsStatusNotification",
        "FirmwareStatusNotification",
        "Heartbeat",
        "MeterValues",
        "StartTransaction",
        "StatusNotification",
        "StopTransaction",
        # Central system -> charge point
        "CancelReservation",
        "ChangeAvailability",
        "ChangeConfiguration",
        "ClearCache",
        "ClearChargingProfile",
        "GetCompositeSchedule",
        "GetConfiguration",
        "GetDiagnostics",
        "GetLocalListVersion",
        "RemoteStartTransaction",
        "RemoteStopTransaction",
        "ReserveNow",
        "Reset",
        "SendLocalList",
        "SetChargingProfile",
        "TriggerMessage",
        "UnlockConnector",
        "UpdateFirmware",
        # Security extension for 1.6
        "CertificateSigned",
        "DeleteCertificate",
        "ExtendedTriggerMessage",
        "GetInstalledCertificateIds",
        "GetLog",
        "InstallCertificate",
        "LogStatusNotification",
        "SecurityEventNotification",
        "SignCertificate",
        "SignedFirmwareStatusNotification",
        "SignedUpdateFirmware",
    }
)

# OCPP-J 1.6 §4.2.3 error codes with their 1.6 spellings, plus the 2.0.1
# spellings a charge point may send back to us.
ERROR_CODES: frozenset[str] = frozenset(
    {
        "NotImplemented",
        "NotSupported",
        "InternalError",
        "ProtocolError",
        "SecurityError",
        "FormationViolation",
        "PropertyConstraintViolation",
        "OccurenceConstraintViolation",
        "TypeConstraintViolation",
        "GenericError",
        "FormatViolation",
        "OccurrenceConstraintViolation",
        "MessageTypeNotSupported",
        "RpcFrameworkError",
    }
)

# OCPP 1.6 §7.7 ChargePointStatus and §7.6 ChargePointErrorCode: the label values of
# StatusNotification counts (schema-checked before a handler sees them; folded anyway).
CONNECTOR_STATUSES: frozenset[str] = frozenset(
    {"Available", "Preparing", "Charging", "SuspendedEVSE", "SuspendedEV", "Finishing", "Reserved",
     "Unavailable", "Faulted"}
)
CONNECTOR_ERROR_CODES: frozenset[str] = frozenset(
    {"ConnectorLockFailure", "EVCommunicationError", "GroundFailure", "HighTemperature", "InternalError",
     "LocalListConflict", "NoError", "OtherError", "OverCurrentFailure", "OverVoltage", "PowerMeterFailure",
     "PowerSwitchFailure", "ReaderFailure", "ResetFailure", "UnderVoltage", "WeakSignal"}
)
# OCPP 1.6 §7.2 AuthorizationStatus.
AUTHORIZATION_STATUSES: frozenset[str] = frozenset({"Accepted", "Blocked", "Expired", "Invalid", "ConcurrentTx"})
# Where an idTag was checked (the label ``action`` of csms_authorizations_total).
AUTHORIZING_ACTIONS: frozenset[str] = frozenset({"Authorize", "StartTransaction"})
# Supervised actors (the label ``role`` of csms_actor_restarts_total).
ROLES: tuple[str, ...] = ("host", "scheduler", "gateway", "exporter")

# 0.5 ms .. 30 s: a handled Heartbeat takes well under a millisecond, a charge
# point answering a CALL may take up to the call timeout (30 s by default).
LATENCY_BUCKETS: tuple[float, ...] = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)


# Events per writer turn: 1 when idle, up to MAX_TURN (2000) in a storm.
BATCH_BUCKETS: tuple[float, ...] = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000)
# Event loop lag: a healthy loop is late by well under a millisecond; seconds mean
# every connection of the host waits (a blocking call on the loop).
LAG_BUCKETS: tuple[float, ...] = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _action_label(action: str) -> str:
    return action if action in ACTIONS else "unknown"


def _code_label(code: str) -> str:
    return code if code in ERROR_CODES else "other"


def _in(value: str, allowed: frozenset[str]) -> str:
    return value if value in allowed else "other"


class Metrics:
    """The counters and histograms of one registry.

    ``direction`` is ``"in"`` (charge point -> central system) or ``"out"``
    (central system -> charge point).
    """

    def __init__(self, *, registry: CollectorRegistry) -> None:
        self._children: dict[tuple[Any, ...], Any] = {}
        # While batched(): the batching thread's counter increments and histogram
        # observations (sum, per-bucket counts), written out when the block ends.
        self._batch_thread: int | None = None
        self._counts: dict[Any, float] = {}
        self._observed: dict[Any, list[Any]] = {}
        self.messages = Counter(
            "csms_ocpp_messages",
            "OCPP-J messages by action, direction and outcome "
            "(result, error, timeout, rejected-frame).",
            ["action", "direction", "outcome"],
            registry=registry,
        )
        self.call_duration = Histogram(
            "csms_ocpp_call_duration_seconds",
            "Round trip of a CALL: for direction in, from frame received to reply "
            "written; for direction out, from send to answer.",
            ["action", "direction"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.callerrors = Counter(
            "csms_ocpp_callerrors",
            "CALLERRORs by OCPP error code and direction.",
            ["code", "direction"],
            registry=registry,
        )
        self.transactions_started = Counter(
            "csms_transactions_started",
            "Transactions started (StartTransaction accepted).",
            registry=registry,
        )
        self.transactions_stopped = Counter(
            "csms_transactions_stopped",
            "Transactions stopped (StopTransaction received).",
            registry=registry,
        )
        self.energy = Counter(
            "csms_energy_delivered_wh",
            "Energy of stopped transactions, in Wh (meterStop - meterStart), counted when each stops; "
            "csms_energy_metered_wh_total moves as meter values arrive.",
            registry=registry,
        )
        self.transactions_flagged = Counter(
            "csms_transactions_flagged",
            "Transactions accepted with an implausible value, by what it is (see ctl tx show).",
            ["reason"],
            registry=registry,
        )
        self.login_failures = Counter(
            "csms_login_failures",
            "Failed HTTP Basic logins at the handshake: wrong-credentials, or throttled "
            "(answered 429 without checking, after too many failures of the identity or address).",
            ["reason"],
            registry=registry,
        )
        self.security_refusals = Counter(
            "csms_security_refusals",
            "Connections refused for their security: tls-handshake (old protocol, no common cipher "
            "suite, a client certificate that does not verify), certificate-identity (a client "
            "certificate for another identity), security-profile (below the station's own).",
            ["reason"],
            registry=registry,
        )
        self.security_events = Counter(
            "csms_security_events",
            "SecurityEventNotifications received, by type (the white paper's list; anything else: other).",
            ["type"],
            registry=registry,
        )
        self.connections = Counter(
            "csms_connection_events",
            "Charge point connection events (opened, closed, replaced, rejected).",
            ["event"],
            registry=registry,
        )
        self.status_notifications = Counter(
            "csms_status_notifications",
            "StatusNotifications received, by connector status and error code (connector 0 included).",
            ["status", "error_code"],
            registry=registry,
        )
        self.authorizations = Counter(
            "csms_authorizations",
            "idTags checked, by where (Authorize, StartTransaction) and the idTagInfo status answered.",
            ["action", "status"],
            registry=registry,
        )
        self.metered = Counter(
            "csms_energy_metered_wh",
            "Energy of transactions in progress, in Wh, counted as MeterValues arrive "
            "(Energy.Active.Import.Register growth) and completed by their StopTransaction.",
            registry=registry,
        )
        self.restarts = Counter(
            "csms_actor_restarts",
            "Supervised actors restarted by the registry after they died, by role.",
            ["role"],
            registry=registry,
        )
        # Per station host (label host = its index): the writer, the event loop, the process.
        self.writer_batch = Histogram(
            "csms_writer_batch_events",
            "Events (frames, connects, closes, commands) handled in one writer turn, that is one commit.",
            ["host"],
            buckets=BATCH_BUCKETS,
            registry=registry,
        )
        self.writer_commit = Histogram(
            "csms_writer_commit_seconds",
            "Time of one writer turn's COMMIT (synchronous=FULL: the fsync).",
            ["host"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.lag = Histogram(
            "csms_event_loop_lag_seconds",
            "How late a periodic tick of a station host's event loop ran.",
            ["host"],
            buckets=LAG_BUCKETS,
            registry=registry,
        )
        self.host_cpu = Counter(
            "csms_host_cpu_seconds",
            "User and system CPU time of a station host's process (all its incarnations).",
            ["host"],
            registry=registry,
        )
        # livemostrecent: the value of the host's live process; the registry removes a
        # dead one's file (metrics.process_exited), and a restarted host's newer write wins.
        self.host_memory = Gauge(
            "csms_host_resident_memory_bytes",
            "Resident memory of a station host's process.",
            ["host"],
            multiprocess_mode="livemostrecent",
            registry=registry,
        )
        self.host_fds = Gauge(
            "csms_host_open_fds",
            "Open file descriptors of a station host's process (one per connection, plus a few).",
            ["host"],
            multiprocess_mode="livemostrecent",
            registry=registry,
        )

    def _child(self, metric: Any, labels: tuple[str, ...]) -> Any:
        """``metric.labels(*labels)``, remembered: ``labels()`` validates and locks
        on every call, about 3 us, paid on every frame otherwise. Label values
        are bounded (``_action_label``, ``_code_label``), and so is the cache."""
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    @contextmanager
    def batched(self) -> Iterator[None]:
        """Add up this thread's recordings in memory; write them when the block ends."""
        if self._batch_thread is not None:
            raise RuntimeError("Metrics.batched() does not nest")
        self._batch_thread = threading.get_ident()
        try:
            yield
        finally:
            self._batch_thread = None
            self._flush()

    def _flush(self) -> None:
        counts, self._counts = self._counts, {}
        observed, self._observed = self._observed, {}
        for counter, amount in counts.items():
            counter.inc(amount)
        for histogram, (total, buckets, _bounds) in observed.items():
            # Histogram.observe(x) of prometheus_client 0.26 is _sum.inc(x) and one
            # _buckets[i].inc(1), for the first bound >= x: the same, added up
            # (tests/unit/test_metrics_batched.py compares both, sample by sample).
            histogram._sum.inc(total)
            for i, n in enumerate(buckets):
                if n:
                    histogram._buckets[i].inc(n)

    def _inc(self, counter: Any, amount: float = 1) -> None:
        if self._batch_thread is not None and self._batch_thread == threading.get_ident():
            self._counts[counter] = self._counts.get(counter, 0) + amount
        else:
            counter.inc(amount)

    def _observe(self, histogram: Any, seconds: float) -> None:
        if self._batch_thread is None or self._batch_thread != threading.get_ident() or math.isnan(seconds):
            histogram.observe(seconds)
            return
        entry = self._observed.get(histogram)
        if entry is None:
            bounds = histogram._upper_bounds  # the histogram's own buckets, +Inf last
            entry = self._observed[histogram] = [0.0, [0] * len(bounds), bounds]
        entry[0] += seconds
        entry[1][bisect_left(entry[2], seconds)] += 1

    def message(self, action: str, direction: str, outcome: str) -> None:
        """Count one message; ``outcome`` is result, error, timeout or rejected-frame."""
        self._inc(self._child(self.messages, (_action_label(action), direction, outcome)))

    def call_latency(self, action: str, direction: str, seconds: float) -> None:
        """Observe the round trip of one CALL, in seconds."""
        self._observe(self._child(self.call_duration, (_action_label(action), direction)), seconds)

    def call_error(self, code: str, direction: str) -> None:
        """Count one CALLERROR by its OCPP error code."""
        self._inc(self._child(self.callerrors, (_code_label(code), direction)))

    def transaction_started(self) -> None:
        self._inc(self.transactions_started)

    def transaction_stopped(self) -> None:
        self._inc(self.transactions_stopped)

    def energy_delivered(self, wh: float) -> None:
        """Add the energy of a stopped transaction; negative or NaN amounts are ignored.

        A charge point whose meterStop is below its meterStart must not make the
        counter go backwards (prometheus_client would raise).
        """
        if wh > 0 and not math.isinf(wh):
            self._inc(self.energy, wh)

    def energy_metered(self, wh: float) -> None:
        """Add energy of a transaction in progress (a register's growth); NaN, infinite or <= 0 ignored."""
        if wh > 0 and not math.isinf(wh):
            self._inc(self.metered, wh)

    def status_notification(self, status: str, error_code: str) -> None:
        """Count one StatusNotification by its status and errorCode (outside OCPP 1.6: "other")."""
        self._inc(self._child(self.status_notifications, (_in(status, CONNECTOR_STATUSES),
                                                          _in(error_code, CONNECTOR_ERROR_CODES))))

    def authorization(self, action: str, status: str) -> None:
        """Count one idTag check: ``action`` Authorize or StartTransaction, ``status`` as answered."""
        self._inc(self._child(self.authorizations, (_in(action, AUTHORIZING_ACTIONS),
                                                    _in(status, AUTHORIZATION_STATUSES))))

    def actor_restarted(self, role: str) -> None:
        """Count one restart of a supervised actor (host, scheduler, gateway, exporter)."""
        self._inc(self._child(self.restarts, (role,)))

    def expose_restarts(self) -> None:
        """Make every role's restart count visible at 0, so that increase() sees the first one."""
        for role in ROLES:
            self._child(self.restarts, (role,))

    def writer_turn(self, host: str, events: int, commit_seconds: float) -> None:
        """One writer turn of station host ``host``: its events and the time of its COMMIT."""
        self._observe(self._child(self.writer_batch, (host,)), events)
        self._observe(self._child(self.writer_commit, (host,)), commit_seconds)

    def loop_lag(self, host: str, seconds: float) -> None:
        """How late station host ``host``'s periodic loop tick ran."""
        self._observe(self._child(self.lag, (host,)), max(0.0, seconds))

    def host_process(self, host: str, *, cpu_seconds: float, rss_bytes: float, open_fds: float) -> None:
        """Station host ``host``'s process: CPU used since the last call, memory and descriptors now."""
        if cpu_seconds > 0:
            self._inc(self._child(self.host_cpu, (host,)), cpu_seconds)
        else:
            self._child(self.host_cpu, (host,))  # exposed at 0 from the first sample
        self._child(self.host_memory, (host,)).set(rss_bytes)
        self._child(self.host_fds, (host,)).set(open_fds)

    def connection_event(self, event: str) -> None:
        """Count one connection event: opened, closed, replaced or rejected."""
        self._inc(self._child(self.connections, (event,)))

    def transaction_flagged(self, reason: str) -> None:
        """Count one implausible value on a transaction; ``reason`` is one of actors.ocpp.core.FLAGS."""
        self._inc(self._child(self.transactions_flagged, (reason[:60],)))

    def login_failure(self, reason: str) -> None:
        """Count one failed login: wrong-credentials or throttled."""
        self._inc(self._child(self.login_failures, (reason,)))

    def security_event(self, event_type: str) -> None:
        """Count one SecurityEventNotification (its type already folded to the white paper's list or other)."""
        self._inc(self._child(self.security_events, (event_type,)))

    def security_refusal(self, reason: str) -> None:
        """Count one connection refused for its security (reasons: see the metric's help)."""
        self._inc(self._child(self.security_refusals, (reason,)))


DEFAULT = Metrics(registry=REGISTRY)

message = DEFAULT.message
call_latency = DEFAULT.call_latency
call_error = DEFAULT.call_error
transaction_started = DEFAULT.transaction_started
transaction_stopped = DEFAULT.transaction_stopped
energy_delivered = DEFAULT.energy_delivered
connection_event = DEFAULT.connection_event
login_failure = DEFAULT.login_failure
security_refusal = DEFAULT.security_refusal
security_event = DEFAULT.security_event
transaction_flagged = DEFAULT.transaction_flagged
energy_metered = DEFAULT.energy_metered
status_notification = DEFAULT.status_notification
authorization = DEFAULT.authorization
actor_restarted = DEFAULT.actor_restarted
expose_restarts = DEFAULT.expose_restarts
writer_turn = DEFAULT.writer_turn
loop_lag = DEFAULT.loop_lag
host_process = DEFAULT.host_process
batched = DEFAULT.batched
