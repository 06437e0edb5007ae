"""ApiActor: the node's HTTP API (issue 11; spec/CONTROL.md, "HTTP API and web console").

One per node, created and supervised by the RegistryActor like the metrics
exporter. Configured by a first message, StartApi; it listens on
``(settings.api_host, settings.api_port)`` and serves HTTP there with
``actors.httpapi.server.ApiServer`` (aiohttp on a thread of this process,
with its own event loop). Answered ApiStarted, or ApiFailed when the port
cannot be bound (the node does not start: one line in run.py's log).

The server reaches the rest of the node the way ``ctl`` does: AdminCommand
and LookupStation to the registry, SendCall to the host holding a station.
Thespian's transport may only be used from this actor's thread, so the
server's messages come here through an ``Outbox`` (a deque and a
socketpair byte this actor watches with ThespianWatch, returned from every
receiveMessage), and the answers go back with ``ApiServer.deliver``, matched
by their request id. Log records of the server's threads come through the
outbox too (``ThreadSafeLogs``).

API keys are looked up in ``storage`` from this process (a Store opened on the
server's key thread, never across a fork).
"""

from __future__ import annotations

import logging
import os
from datetime import datetime, timezone
from typing import Any

from thespian.actors import Actor, ActorExitRequest, ThespianWatch, WatchMessage

from actors.adapters.bridge import Outbox, ThreadSafeLogs
from actors.exporter import _listen as listen
from actors.messages import (
    AdminReply,
    ApiFailed,
    ApiStarted,
    CallReply,
    HostPong,
    ReadinessReply,
    StartApi,
    StationAddressReply,
)
from actors.readiness import Readiness
from actors.settings import Settings

__all__ = ["ApiActor"]

log = logging.getLogger(__name__)


class ApiActor(Actor):
    """Serves the HTTP API for the node; see the module docstring."""

    def __init__(self) -> None:
        super().__init__()
        self.settings: Settings | None = None
        self.registry: Any = None
        self.outbox = Outbox()
        self.logs: ThreadSafeLogs | None = None
        self.server: Any = None  # actors.httpapi.server.ApiServer, once started
        self.store: Any = None  # storage.Store, opened on the server's key thread
        self.readiness: Readiness | None = None  # /readyz, as the metrics port's

    def receiveMessage(self, message: Any, sender: Any) -> Any:
        try:
            self._dispatch(message, sender)
        except Exception:
            log.error("HTTP API actor failed on %s", type(message).__name__, exc_info=True)
        if isinstance(message, ActorExitRequest):
            return None
        return ThespianWatch([self.outbox.actor_end.fileno()])

    def _dispatch(self, message: Any, sender: Any) -> None:
        if isinstance(message, WatchMessage):
            self._drain()
        elif isinstance(message, (AdminReply, StationAddressReply, CallReply)):
            if self.server is not None:
                self.server.deliver(message)
        elif isinstance(message, (ReadinessReply, HostPong)):
            if self.readiness is not None:
                self.readiness.answered(message.token, message)
        elif isinstance(message, StartApi):
            self._start(message, sender)
        elif isinstance(message, ActorExitRequest):
            if self.server is not None:
                self.server.stop()
                self.server = None
            if self.readiness is not None:
                self.readiness.close()

    def _start(self, message: StartApi, sender: Any) -> None:
        if self.server is not None:
            self.send(sender, ApiStarted(self.server.port, os.getpid()))
            return
        settings = message.settings
        self.settings, self.registry = settings, message.registry
        root = logging.getLogger()
        root.setLevel(settings.log_level)
        self.logs = ThreadSafeLogs(root.handlers[:], self.outbox)
        root.handlers = [self.logs]
        where = f"{settings.api_host}:{settings.api_port}"
        try:
            sock = listen(settings.api_host, settings.api_port)
        except OSError as exc:
            log.error("HTTP API cannot listen on %s: %s", where, exc)
            self.send(sender, ApiFailed(f"the HTTP API cannot listen on {where} (--api-port): {exc}"))
            return
        # aiohttp is imported here, in this process only (as in the exporter).
        from actors.httpapi.server import ApiServer
        from storage import Store, probe

        tell = lambda to, m: self.outbox.put("tell", to, m)  # noqa: E731
        self.readiness = Readiness(send=tell, registry=self.registry, probe=lambda: probe(settings.db, timeout=1.0))
        server = ApiServer(sock, registry=self.registry, send=tell, find_key=self._find_key,
                           touch_key=self._touch_key, readiness=self.readiness.check,
                           open_store=lambda: Store(settings.db, migrate_schema=False))
        try:
            server.start()
        except Exception as exc:
            sock.close()
            log.error("HTTP API cannot serve on %s: %s", where, exc)
            self.send(sender, ApiFailed(f"the HTTP API cannot serve on {where}: {exc}"))
            return
        self.server = server
        log.info("HTTP API listening on http://%s:%s/api/v1/", settings.api_host, server.port)
        self.send(sender, ApiStarted(server.port, os.getpid()))

    def _drain(self) -> None:
        for kind, address, item in self.outbox.take():
            if kind == "log" and self.logs is not None:
                self.logs.forward(item)
            elif kind == "tell" and address is not None:
                self.send(address, item)

    # -- on the server's key thread ------------------------------------------------------

    def _keys(self) -> Any:
        if self.store is None:
            from storage import Store

            assert self.settings is not None
            self.store = Store(self.settings.db, migrate_schema=False)
        return self.store

    def _find_key(self, key: str) -> dict[str, Any] | None:
        found: dict[str, Any] | None = self._keys().find_api_key(key)
        return found

    def _touch_key(self, name: str) -> None:
        self._keys().touch_api_key(name, datetime.now(timezone.utc))
