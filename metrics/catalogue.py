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
"""

from __future__ import annotations

import math
import threading
from bisect import bisect_left
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram

__all__ = [
    "ACTIONS",
    "DEFAULT",
    "ERROR_CODES",
    "LATENCY_BUCKETS",
    "Metrics",
    "batched",
    "call_error",
    "call_latency",
    "connection_event",
    "energy_delivered",
    "login_failure",
    "message",
    "security_refusal",
    "transaction_flagged",
    "transaction_started",
    "transaction_stopped",
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


def _action_label(action: str) -> str:
    return action if action in ACTIONS else "unknown"


def _code_label(code: str) -> str:
    return code if code in ERROR_CODES else "other"


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
        self._bounds = (*LATENCY_BUCKETS, math.inf)
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
            "Energy delivered in stopped transactions, in Wh.",
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
        self.connections = Counter(
            "csms_connection_events",
            "Charge point connection events (opened, closed, replaced, rejected).",
            ["event"],
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
        for histogram, (total, buckets) in observed.items():
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
            entry = self._observed[histogram] = [0.0, [0] * len(self._bounds)]
        entry[0] += seconds
        entry[1][bisect_left(self._bounds, seconds)] += 1

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

    def connection_event(self, event: str) -> None:
        """Count one connection event: opened, closed, replaced or rejected."""
        self._inc(self._child(self.connections, (event,)))

    def transaction_flagged(self, reason: str) -> None:
        """Count one implausible value on a transaction; ``reason`` is one of actors.ocpp.core.FLAGS."""
        self._inc(self._child(self.transactions_flagged, (reason[:60],)))

    def login_failure(self, reason: str) -> None:
        """Count one failed login: wrong-credentials or throttled."""
        self._inc(self._child(self.login_failures, (reason,)))

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
transaction_flagged = DEFAULT.transaction_flagged
batched = DEFAULT.batched
