"""MetricsExporterActor: the node's HTTP ``/metrics`` endpoint.

One per node. Configured by a first message, :class:`StartExporter`; it then
listens on ``(settings.host, settings.metrics_port)`` and serves one HTTP/1.0
request per connection (see ``metrics.endpoint`` for the routes), without
threads: the listening socket and the client sockets still reading their
request head are watched with ``ThespianWatch``, returned from every
``receiveMessage`` call because Thespian replaces the watched set each time.

Bounds, so a scraper (or anyone else) cannot stall the actor: at most
``MAX_CLIENTS`` open clients, a request head of at most
``metrics.endpoint.MAX_HEAD`` bytes, ``CLIENT_TIMEOUT`` seconds to send it, and
``SEND_TIMEOUT`` seconds to take the whole response.

The state gauges come from ``summary_source(settings)``, a module-level hook
that by default opens ``storage.Store(settings.db)`` on the first scrape, in
the exporter's own process (never across a fork).
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from thespian.actors import ActorTypeDispatcher, ThespianWatch

import metrics
from actors.settings import Settings
from metrics import endpoint

__all__ = [
    "ExporterFailed",
    "ExporterStarted",
    "MetricsExporterActor",
    "StartExporter",
    "summary_source",
]

log = logging.getLogger(__name__)

MAX_CLIENTS = 64
CLIENT_TIMEOUT = 5.0
SEND_TIMEOUT = 1.0
ACCEPTS_PER_WAKE = 64
RECV_SIZE = 4096
SWEEP = "metrics-exporter-sweep"


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
        limits = current_limits(store)
        result["charging_limited_connectors"] = len(limits)
        if settings.per_station_labels:
            result["charging_limits"] = limits
        return result

    return summary


def current_limits(store: Any) -> list[dict[str, object]]:
    """The limit in force now on every connector that has charging profiles."""
    from datetime import datetime, timezone

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


@dataclass
class _Client:
    sock: socket.socket
    deadline: float
    received: bytearray = field(default_factory=bytearray)


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
        sock.listen(MAX_CLIENTS)
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
        self._listener: socket.socket | None = None
        self._clients: dict[int, _Client] = {}
        self._sweep_pending = False

    # -- Thespian entry point -------------------------------------------------

    def receiveMessage(self, message: Any, sender: Any) -> ThespianWatch:
        try:
            super().receiveMessage(message, sender)
        except Exception:
            log.error("metrics exporter failed on %s", type(message).__name__, exc_info=True)
        return ThespianWatch(self._watched())

    def _watched(self) -> list[int]:
        fds = list(self._clients)
        if self._listener is not None:
            fds.append(self._listener.fileno())
        return fds

    # -- handlers -------------------------------------------------------------

    def receiveMsg_StartExporter(self, message: StartExporter, sender: Any) -> None:
        if self._listener is not None:
            self.send(sender, ExporterStarted(self._listener.getsockname()[1]))
            return
        settings = message.settings
        try:
            self._listener = _listen(settings.host, settings.metrics_port)
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
        port = self._listener.getsockname()[1]
        log.info("metrics exporter listening on %s:%s", settings.host, port)
        self.send(sender, ExporterStarted(port))

    def receiveMsg_WatchMessage(self, message: Any, sender: Any) -> None:
        for fd in message.ready:
            if self._listener is not None and fd == self._listener.fileno():
                self._accept()
            elif fd in self._clients:
                self._read(fd)

    def receiveMsg_WakeupMessage(self, message: Any, sender: Any) -> None:
        if message.payload != SWEEP:
            return
        self._sweep_pending = False
        now = time.monotonic()
        for fd, client in list(self._clients.items()):
            if client.deadline <= now:
                log.debug("metrics client fd %s timed out before sending a request", fd)
                self._drop(fd)
        self._schedule_sweep()

    def receiveMsg_ActorExitRequest(self, message: Any, sender: Any) -> None:
        for fd in list(self._clients):
            self._drop(fd)
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def receiveUnrecognizedMessage(self, message: Any, sender: Any) -> None:
        log.debug("metrics exporter ignores %s", type(message).__name__)

    # -- socket glue ----------------------------------------------------------

    def _accept(self) -> None:
        assert self._listener is not None
        for _ in range(ACCEPTS_PER_WAKE):
            try:
                sock, _peer = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                log.warning("metrics exporter accept failed: %s", exc)
                break
            if len(self._clients) >= MAX_CLIENTS:
                log.warning("metrics exporter has %d clients; refusing one", MAX_CLIENTS)
                sock.close()
                continue
            sock.setblocking(False)
            self._clients[sock.fileno()] = _Client(sock, time.monotonic() + CLIENT_TIMEOUT)
        self._schedule_sweep()

    def _read(self, fd: int) -> None:
        client = self._clients[fd]
        try:
            data = client.sock.recv(RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop(fd)
            return
        if not data:
            self._drop(fd)
            return
        client.received += data
        if endpoint.head_complete(client.received):
            self._answer(fd, bytes(client.received))

    def _answer(self, fd: int, request: bytes) -> None:
        client = self._clients[fd]
        try:
            reply = endpoint.respond(request, self._render)
        except Exception:
            log.error("metrics exposition failed", exc_info=True)
            reply = endpoint.response(500, b"exposition failed\n", "text/plain; charset=utf-8")
        try:
            # A timeout on a socket bounds the whole sendall (Python >= 3.5).
            client.sock.settimeout(SEND_TIMEOUT)
            client.sock.sendall(reply)
        except OSError as exc:
            log.warning("metrics client fd %s did not take the response: %s", fd, exc)
        self._drop(fd)

    def _render(self) -> tuple[bytes, str]:
        assert self._settings is not None and self._summary is not None
        return metrics.render(self._summary, multiproc_dir=self._settings.metrics_dir or None)

    def _drop(self, fd: int) -> None:
        client = self._clients.pop(fd, None)
        if client is not None:
            client.sock.close()

    def _schedule_sweep(self) -> None:
        if self._clients and not self._sweep_pending:
            self._sweep_pending = True
            self.wakeupAfter(timedelta(seconds=CLIENT_TIMEOUT), payload=SWEEP)
