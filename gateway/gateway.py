"""GatewayActor: owns the OCPP listening socket (one per node).

The listener (``gateway.listener``) runs its asyncio loop in a thread of this
actor's process. The thread reaches the actor through a socketpair that the
actor watches with ThespianWatch: a line ``ensure <token> <station id>`` asks
for a station actor, and the actor answers ``<token> ok|fail`` once the
station's supervisor replied. Station actors are created by the supervisors, never here
(a fork taken from a threaded process can inherit held locks).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from typing import Any

from thespian.actors import Actor, ActorExitRequest, ThespianWatch, WatchMessage

from actors.messages import (
    EnsureStation,
    GatewayFailed,
    GatewayStarted,
    StartGateway,
    StationFailed,
    StationReady,
)
from actors.settings import Settings
from actors.supervisor import shard_of
from gateway.listener import ENSURE_TIMEOUT, Listener

log = logging.getLogger(__name__)


class GatewayActor(Actor):
    def __init__(self) -> None:
        super().__init__()
        self.settings: Settings | None = None
        self.supervisors: tuple[Any, ...] = ()
        self.actor_end: socket.socket | None = None
        self.buffer = b""
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread: threading.Thread | None = None

    def receiveMessage(self, message: Any, sender: Any) -> Any:
        try:
            if isinstance(message, WatchMessage):
                self._read_requests()
            elif isinstance(message, (StationReady, StationFailed)):
                ok = isinstance(message, StationReady)
                self._answer(message.token, ok)
            elif isinstance(message, StartGateway):
                self._start(message, sender)
            elif isinstance(message, ActorExitRequest):
                self._stop()
                return None
        except Exception:
            log.exception("gateway: error handling %s", type(message).__name__)
        return ThespianWatch([self.actor_end.fileno()] if self.actor_end else [])

    def _start(self, message: StartGateway, sender: Any) -> None:
        if self.settings is not None:
            return
        self.settings, self.supervisors = message.settings, message.supervisors
        logging.getLogger().setLevel(self.settings.log_level)
        self.actor_end, thread_end = socket.socketpair()
        self.actor_end.setblocking(False)
        bridge = _Bridge(thread_end)
        listener = Listener(self.settings, bridge.ensure)
        try:
            port = listener.bind()
        except OSError as exc:
            self.send(sender, GatewayFailed(f"cannot listen on {self.settings.host}:{self.settings.port}: {exc}"))
            return
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=_run, args=(self.loop, listener, bridge), name="ocpp-listener", daemon=True)
        self.thread.start()
        log.info("gateway: OCPP listener on %s:%d", self.settings.host, port)
        self.send(sender, GatewayStarted(port))

    def _read_requests(self) -> None:
        assert self.actor_end is not None
        try:
            while chunk := self.actor_end.recv(65536):
                self.buffer += chunk
        except BlockingIOError:
            pass
        *lines, self.buffer = self.buffer.split(b"\n")
        for line in lines:
            verb, token, station_id = line.decode("utf-8").split(" ", 2)
            if verb == "ensure":
                supervisor = self.supervisors[shard_of(station_id, len(self.supervisors))]
                self.send(supervisor, EnsureStation(station_id, int(token)))

    def _answer(self, token: int, ok: bool) -> None:
        assert self.actor_end is not None
        self.actor_end.setblocking(True)
        try:
            self.actor_end.sendall(f"{token} {'ok' if ok else 'fail'}\n".encode())
        finally:
            self.actor_end.setblocking(False)

    def _stop(self) -> None:
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self.loop.stop)
        if self.thread is not None:
            self.thread.join(timeout=2.0)


class _Bridge:
    """The listener thread's side of the socketpair: ``await ensure(station_id)``."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.sock.setblocking(False)
        self.next_token = 0
        self.waiting: dict[int, asyncio.Future[bool]] = {}
        self.buffer = b""

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.add_reader(self.sock.fileno(), self._readable)

    async def ensure(self, station_id: str) -> bool:
        loop = asyncio.get_running_loop()
        self.next_token += 1
        token = self.next_token
        future: asyncio.Future[bool] = loop.create_future()
        self.waiting[token] = future
        try:
            await loop.sock_sendall(self.sock, f"ensure {token} {station_id}\n".encode("utf-8"))
            return await asyncio.wait_for(future, ENSURE_TIMEOUT)
        except asyncio.TimeoutError:
            return False
        finally:
            self.waiting.pop(token, None)

    def _readable(self) -> None:
        try:
            while chunk := self.sock.recv(65536):
                self.buffer += chunk
        except BlockingIOError:
            pass
        *lines, self.buffer = self.buffer.split(b"\n")
        for line in lines:
            token, _, verdict = line.decode().partition(" ")
            future = self.waiting.get(int(token))
            if future is not None and not future.done():
                future.set_result(verdict == "ok")


def _run(loop: asyncio.AbstractEventLoop, listener: Listener, bridge: _Bridge) -> None:
    asyncio.set_event_loop(loop)
    bridge.start(loop)
    loop.create_task(listener.serve())
    try:
        loop.run_forever()
    finally:
        loop.close()
