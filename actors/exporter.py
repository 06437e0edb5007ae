"""MetricsExporterActor: the node's HTTP ``/metrics`` endpoint.

One per node. Configured by a first message, :class:`StartExporter`; it then
listens on ``(settings.host, settings.metrics_port)`` and serves HTTP there with
``metrics.endpoint.MetricsServer`` (aiohttp on a thread of this process, with
its own event loop: routes, limits and idle timeouts are there). The actor
owns the server's life: started by StartExporter, stopped on ActorExitRequest.

``/readyz`` asks the registry, every station host and the database
(``actors.readiness``): the server's loop hands each question to this
actor's thread through an ``Outbox`` that the actor watches (ThespianWatch),
the actor sends it, and hands the answer back. The registry's address is
the sender of StartExporter (the registry creates the exporter).

The state gauges come from ``summary_source(settings)``, a module-level hook
that by default opens ``storage.Store(settings.db)`` on the first scrape, in
the exporter's own process (never across a fork).
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from thespian.actors import ActorExitRequest, ActorTypeDispatcher, ThespianWatch

import metrics
from actors.adapters.bridge import Outbox
from actors.messages import HostPong, ReadinessReply
from actors.readiness import Readiness
from actors.settings import Settings

__all__ = [
    "ExporterFailed",
    "ExporterStarted",
    "MetricsExporterActor",
    "StartExporter",
    "summary_source",
]

log = logging.getLogger(__name__)

LISTEN_BACKLOG = 128


@dataclass(frozen=True)
class StartExporter:
    """run.py -> MetricsExporterActor: listen and serve ``/metrics``.

    Answered with ExporterStarted, or ExporterFailed when the port cannot be bound.
    A second StartExporter is answered ExporterStarted with the port in use.
    """

    settings: Settings


@dataclass(frozen=True)
class ExporterStarted:
    """MetricsExporterActor -> the sender of StartExporter: listening on ``port``."""

    port: int


@dataclass(frozen=True)
class ExporterFailed:
    """MetricsExporterActor -> the sender of StartExporter: could not listen."""

    reason: str


Summary = Callable[[], Mapping[str, object]]


CERTIFICATE_WARNING = timedelta(days=30)  # csms_certificates_expiring: issued certificates ending this soon


def summary_source(settings: Settings) -> Summary:
    """Return the callable behind the state gauges: ``storage.Store(settings.db).summary``.

    The store is opened on the first call, in the process that scrapes.
    """
    store: Any = None

    def summary() -> Mapping[str, object]:
        nonlocal store
        if store is None:
            from storage import Store

            store = Store(settings.db, migrate_schema=False)
        result: dict[str, object] = dict(store.summary())
        result["connectors"] = store.connector_counts()
        now = datetime.now(timezone.utc)
        result["stations_silent"] = store.silent_station_counts(now, settings.heartbeat_interval)
        result["certificates_expiring"] = store.certificates_expiring(now, now + CERTIFICATE_WARNING)
        result.update(disk_usage(settings.db))
        limits = current_limits(store)
        result["charging_limited_connectors"] = len(limits)
        if settings.per_station_labels:
            result["charging_limits"] = limits
        return result

    return summary


def disk_usage(db: str) -> dict[str, object]:
    """The database's size (with its WAL) and its filesystem's free and total bytes."""
    found: dict[str, object] = {}
    try:
        found["database_bytes"] = sum(os.path.getsize(p) for p in (db, db + "-wal") if os.path.exists(p))
        fs = os.statvfs(os.path.dirname(os.path.abspath(db)))
        found["database_filesystem_free_bytes"] = fs.f_bavail * fs.f_frsize
        found["database_filesystem_size_bytes"] = fs.f_blocks * fs.f_frsize
    except OSError:
        log.warning("cannot measure the database's disk", exc_info=True)
    return found


def current_limits(store: Any) -> list[dict[str, object]]:
    """The limit in force now on every connector that has charging profiles."""
    from actors.profile_view import StationProfiles

    now = datetime.now(timezone.utc)
    found: list[dict[str, object]] = []
    for station_id in store.stations_with_profiles():
        view = StationProfiles.load(store, station_id)
        for connector_id in sorted({i.connector_id for i in view.installed}):
            limit = view.limit_now(connector_id, now)
            if limit is not None:
                found.append({"station": station_id, "connector": connector_id, "limit_a": limit})
    return found


def _inside(path: str, directory: str) -> bool:
    return bool(directory) and os.path.dirname(os.path.abspath(path)) == os.path.abspath(directory)


def _listen(host: str, port: int) -> socket.socket:
    """Open a non-blocking listening socket with SO_REUSEADDR; raises OSError."""
    family, kind, proto, _name, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(LISTEN_BACKLOG)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class MetricsExporterActor(ActorTypeDispatcher):
    """Serves ``/metrics`` for the node; see the module docstring."""

    def __init__(self) -> None:
        super().__init__()
        self._settings: Settings | None = None
        self._summary: Summary | None = None
        self._server: Any = None  # metrics.endpoint.MetricsServer, once started
        self._outbox = Outbox()  # questions of /readyz, from the server's loop to this thread
        self._readiness: Readiness | None = None

    # -- Thespian entry point -------------------------------------------------

    def receiveMessage(self, message: Any, sender: Any) -> Any:
        try:
            super().receiveMessage(message, sender)
        except Exception:
            log.error("metrics exporter failed on %s", type(message).__name__, exc_info=True)
        if isinstance(message, ActorExitRequest):
            return None
        return ThespianWatch([self._outbox.actor_end.fileno()])

    # -- handlers -------------------------------------------------------------

    def receiveMsg_StartExporter(self, message: StartExporter, sender: Any) -> None:
        if self._server is not None:
            self.send(sender, ExporterStarted(self._server.port))
            return
        settings = message.settings
        try:
            sock = _listen(settings.host, settings.metrics_port)
        except OSError as exc:
            log.error("metrics exporter cannot listen on %s:%s: %s",
                      settings.host, settings.metrics_port, exc)
            self.send(sender, ExporterFailed(f"{settings.host}:{settings.metrics_port}: {exc}"))
            return
        if _inside(settings.db, settings.metrics_dir):
            # MultiProcessCollector reads every *.db file of the directory.
            log.error("database %s lies in the metrics directory; scrapes will fail", settings.db)
        self._settings = settings
        self._summary = summary_source(settings)
        from storage import probe

        self._readiness = Readiness(send=lambda address, question: self._outbox.put("send", address, question),
                                    registry=sender, probe=lambda: probe(settings.db, timeout=1.0))
        # aiohttp is imported here, in the exporter's process only: imported at the top
        # it was loaded by every process of the node (+41 MB PSS over 10 processes idle).
        from metrics.endpoint import MetricsServer

        server = MetricsServer(sock, self._render, self._readiness.check)
        try:
            server.start()
        except Exception as exc:
            sock.close()
            log.error("metrics exporter cannot serve on %s:%s: %s", settings.host, settings.metrics_port, exc)
            self.send(sender, ExporterFailed(f"{settings.host}:{settings.metrics_port}: {exc}"))
            return
        self._server = server
        log.info("metrics exporter listening on %s:%s", settings.host, server.port)
        self.send(sender, ExporterStarted(server.port))

    def receiveMsg_ActorExitRequest(self, message: Any, sender: Any) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
        if self._readiness is not None:
            self._readiness.close()

    def receiveMsg_WatchMessage(self, message: Any, sender: Any) -> None:
        for _kind, address, question in self._outbox.take():
            self.send(address, question)

    def receiveMsg_ReadinessReply(self, message: ReadinessReply, sender: Any) -> None:
        if self._readiness is not None:
            self._readiness.answered(message.token, message)

    def receiveMsg_HostPong(self, message: HostPong, sender: Any) -> None:
        if self._readiness is not None:
            self._readiness.answered(message.token, message)

    def receiveUnrecognizedMessage(self, message: Any, sender: Any) -> None:
        log.debug("metrics exporter ignores %s", type(message).__name__)

    def _render(self) -> tuple[bytes, str]:
        """On the server's render thread."""
        assert self._settings is not None and self._summary is not None
        return metrics.render(self._summary, multiproc_dir=self._settings.metrics_dir or None)
