"""The OCPP listener: accept, run the opening handshake, hand the socket over.

Runs an asyncio loop in one thread of the gateway actor's process (the one
thread allowed in the system, ARCHITECTURE.md). It uses raw non-blocking
sockets (``loop.sock_recv``), never asyncio streams, so that no byte past the
handshake is read into a buffer the station actor cannot see: what the gateway
did read past the request head travels with the descriptor.

Hand-off: connect to the station actor's abstract UNIX socket and send the
descriptor with SCM_RIGHTS, together with one header line (the peer address)
and the extra bytes. When the station actor is not listening yet, ask the
gateway actor (``ensure``) to have the registry start it, then retry.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from websockets.datastructures import Headers
from websockets.http11 import Request
from websockets.server import ServerProtocol
from websockets.typing import Subprotocol

import metrics
from actors.settings import Settings
from actors.supervisor import socket_name
from gateway import handshake
from storage import Store

log = logging.getLogger(__name__)

HANDSHAKE_TIMEOUT = 10.0
MAX_HEAD = 16384
ENSURE_TIMEOUT = 60.0  # a reconnect storm may queue many station starts


class Listener:
    """OCPP WebSocket listener; ``ensure(station_id)`` awaits the station actor's readiness."""

    def __init__(self, settings: Settings, ensure: Callable[[str], Awaitable[bool]]):
        self.settings = settings
        self.ensure = ensure
        self.executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="gateway-auth")
        self._stores: dict[int, Store] = {}
        self.server_socket: socket.socket | None = None

    def bind(self) -> int:
        sock = socket.socket(socket.AF_INET6 if ":" in self.settings.host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.settings.host, self.settings.port))
        sock.listen(1024)
        sock.setblocking(False)
        self.server_socket = sock
        return sock.getsockname()[1]

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        assert self.server_socket is not None
        while True:
            conn, addr = await loop.sock_accept(self.server_socket)
            conn.setblocking(False)
            loop.create_task(self._handle(conn, addr))

    # -- one connection -----------------------------------------------------------

    async def _handle(self, conn: socket.socket, addr: Any) -> None:
        peer = f"{addr[0]}:{addr[1]}"
        handed_off = False
        try:
            handed_off = await asyncio.wait_for(self._handshake(conn, peer), HANDSHAKE_TIMEOUT + ENSURE_TIMEOUT)
        except (asyncio.TimeoutError, OSError) as exc:
            log.info("gateway: connection from %s dropped during handshake: %s", peer, exc or type(exc).__name__)
        except Exception:
            log.exception("gateway: error during handshake with %s", peer)
        finally:
            conn.close()  # after a hand-off the station actor holds its own descriptor
        if not handed_off:
            metrics.connection_event("rejected")

    async def _handshake(self, conn: socket.socket, peer: str) -> bool:
        loop = asyncio.get_running_loop()
        head, rest = await asyncio.wait_for(_read_head(loop, conn), HANDSHAKE_TIMEOUT)
        protocol = ServerProtocol(
            select_subprotocol=_select_subprotocol,
            max_size=self.settings.max_frame_size,
        )
        protocol.receive_data(head)
        events = protocol.events_received()
        if not events or not isinstance(events[0], Request):
            await loop.sock_sendall(conn, b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return False
        request = events[0]
        station_id = handshake.identity_from_path(request.path)
        status, reason = 0, ""
        if station_id is None:
            status, reason = 404, "no charge point identity in the URL"
        else:
            status, reason = await loop.run_in_executor(self.executor, self._authorise, station_id, request.headers)
        if status:
            response = protocol.reject(status, reason + "\n")
            if status == 401:
                response.headers["WWW-Authenticate"] = 'Basic realm="ocpp", charset="UTF-8"'
            log.info("gateway: %s from %s refused: %d %s", station_id, peer, status, reason)
            protocol.send_response(response)
            await _flush(loop, conn, protocol)
            return False
        assert station_id is not None
        response = protocol.accept(request)
        if response.status_code != 101:
            protocol.send_response(response)
            await _flush(loop, conn, protocol)
            return False
        if response.headers.get("Sec-WebSocket-Protocol") is None:
            # OCPP-J §3.2: no agreed subprotocol -> finish the handshake without the header and close.
            log.info("gateway: %s from %s offered no supported subprotocol; closing", station_id, peer)
            protocol.send_response(response)
            protocol.send_close(1002, "subprotocol ocpp1.6 required")
            await _flush(loop, conn, protocol)
            return False
        # The station actor must be listening before the upgrade is confirmed:
        # when it cannot be started in time the charge point gets 503 and retries.
        channel = await self._station_channel(loop, station_id)
        if channel is None:
            log.warning("gateway: station actor for %s unavailable; answering 503 to %s", station_id, peer)
            refusal = protocol.reject(503, "station not available, retry later\n")
            refusal.headers["Retry-After"] = "10"
            protocol.send_response(refusal)
            await _flush(loop, conn, protocol)
            return False
        with channel:
            protocol.send_response(response)
            await _flush(loop, conn, protocol)
            return _hand_off(channel, conn, peer, rest)

    def _authorise(self, station_id: str, headers: Headers) -> tuple[int, str]:
        """Run in the executor: registration and HTTP Basic check. (0, "") means accepted."""
        store = self._store()
        if store.get_station(station_id) is None:
            if self.settings.unknown_stations != "accept":
                return 404, "unknown charge point"
            store.upsert_station(station_id)
            log.info("gateway: registered unknown charge point %s", station_id)
        if store.station_requires_password(station_id):
            credentials = handshake.basic_credentials(headers.get("Authorization"))
            if credentials is None:
                return 401, "authorization required"
            user, password = credentials
            if user != station_id or not store.check_password(station_id, password):
                return 401, "invalid credentials"
        return 0, ""

    def _store(self) -> Store:
        key = threading.get_ident()
        store = self._stores.get(key)
        if store is None:
            store = self._stores[key] = Store(self.settings.db, migrate_schema=False)
        return store

    async def _station_channel(self, loop: asyncio.AbstractEventLoop, station_id: str) -> socket.socket | None:
        """Connect to the station actor's hand-off socket, asking for the actor when needed."""
        name = socket_name(self.settings.admin_port, station_id)
        for attempt in range(3):
            channel = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            channel.setblocking(False)
            try:
                await loop.sock_connect(channel, name)
                return channel
            except (ConnectionRefusedError, FileNotFoundError):
                channel.close()
                if attempt == 2 or not await self.ensure(station_id):
                    return None
        return None


def _hand_off(channel: socket.socket, conn: socket.socket, peer: str, rest: bytes) -> bool:
    """Send the connection's descriptor, the peer address and the bytes read past the handshake."""
    channel.setblocking(True)
    channel.settimeout(2.0)
    payload = peer.encode() + b"\n" + rest
    sent = socket.send_fds(channel, [payload], [conn.fileno()])
    if sent < len(payload):
        channel.sendall(payload[sent:])
    return True


def _select_subprotocol(_protocol: ServerProtocol, offered: Sequence[Subprotocol]) -> Subprotocol | None:
    chosen = handshake.select_subprotocol(offered)
    return Subprotocol(chosen) if chosen else None


async def _read_head(loop: asyncio.AbstractEventLoop, conn: socket.socket) -> tuple[bytes, bytes]:
    buffer = b""
    while True:
        chunk = await loop.sock_recv(conn, 4096)
        if not chunk:
            raise ConnectionResetError("closed before the request head was complete")
        buffer += chunk
        end = buffer.find(b"\r\n\r\n")
        if end >= 0:
            return buffer[: end + 4], buffer[end + 4 :]
        if len(buffer) > MAX_HEAD:
            raise ConnectionResetError("request head too large")


async def _flush(loop: asyncio.AbstractEventLoop, conn: socket.socket, protocol: ServerProtocol) -> None:
    for chunk in protocol.data_to_send():
        if chunk:
            await loop.sock_sendall(conn, chunk)
