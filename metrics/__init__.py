"""Prometheus metrics: the catalogue station actors record on, and the exposition.

Called by the rest of the system, it calls nothing back (no imports of
``actors``, ``gateway`` or ``storage``).

Multiprocess mode: importing this package imports prometheus_client, which
picks its storage on first import. The process that starts the actor system
(run.py) must set ``PROMETHEUS_MULTIPROC_DIR`` to an existing, emptied
directory before it imports ``metrics``, ``actors`` or prometheus_client, so
that every forked actor process writes its values there.

Recording (cheap; labels are bounded, never idTags or station ids)::

    message(action, direction, outcome)   # direction "in" | "out";
                                          # outcome "result" | "error" | "timeout" | "rejected-frame"
    call_latency(action, direction, seconds)
    call_error(code, direction)
    transaction_started(); transaction_stopped()
    transaction_flagged(reason)           # one of actors.ocpp.core.FLAGS
    energy_delivered(wh)                  # at a transaction's stop: meterStop - meterStart
    energy_metered(wh)                    # as MeterValues arrive: the register's growth
    status_notification(status, error_code)
    authorization(action, status)         # action "Authorize" | "StartTransaction"
    actor_restarted(role)                 # by the registry: "host" | "scheduler" | "gateway" | "exporter"
    expose_restarts()                     # every role's restart count at 0 (the registry, at start)
    writer_turn(host, events, commit_seconds); loop_lag(host, seconds)
    host_process(host, cpu_seconds=, rss_bytes=, open_fds=)
    connection_event(event)               # "opened" | "closed" | "replaced" | "rejected"
    login_failure(reason)                 # "wrong-credentials" | "throttled"
    security_refusal(reason)              # "tls-handshake" | "certificate-identity" | "security-profile"
    security_event(type)                  # a SecurityEventNotification: the white paper's type, or "other"

    with batched(): ...                   # this thread's recordings added up, written at the end
    ProcessSampler().sample()             # a host's CPU since last time, RSS, open fds
    forget_process(pid, multiproc_dir)    # a dead host's live gauges removed (by the registry)

Exposing::

    render(summary, multiproc_dir=...) -> (body, content_type)
    StateCollector(summary)               # csms_stations_known/connected, csms_transactions_active
"""

from metrics.catalogue import (
    DEFAULT,
    LATENCY_BUCKETS,
    Metrics,
    actor_restarted,
    authorization,
    batched,
    call_error,
    call_latency,
    connection_event,
    energy_delivered,
    energy_metered,
    expose_restarts,
    host_process,
    login_failure,
    loop_lag,
    message,
    security_event,
    security_refusal,
    status_notification,
    transaction_flagged,
    transaction_started,
    transaction_stopped,
    writer_turn,
)
from metrics.exposition import StateCollector, render
from metrics.process import ProcessSampler, forget_process

__all__ = [
    "DEFAULT",
    "LATENCY_BUCKETS",
    "Metrics",
    "ProcessSampler",
    "StateCollector",
    "actor_restarted",
    "authorization",
    "batched",
    "call_error",
    "call_latency",
    "connection_event",
    "energy_delivered",
    "energy_metered",
    "expose_restarts",
    "forget_process",
    "host_process",
    "login_failure",
    "loop_lag",
    "message",
    "render",
    "security_event",
    "security_refusal",
    "status_notification",
    "transaction_flagged",
    "transaction_started",
    "transaction_stopped",
    "writer_turn",
]
