"""A station host's event loop: accept, upgrade, admit, and move frames.

One asyncio loop on a thread of the host process runs websockets' own server
on the node's OCPP port (every host binds it with ``SO_REUSEPORT``: the
kernel spreads new connections over the hosts, pre-fork style). The library
does the HTTP upgrade, the frame size limit (close 1009), invalid UTF-8
(close 1007), ping keep-alive (close 1011) and the close handshake; this
module configures it and decides admission:

| request                                               | answer                                   |
|-------------------------------------------------------|------------------------------------------|
| no identity in the path                               | 404                                      |
| identity with ``/``, control characters, > 48 chars   | 400 (``handshake.BadIdentity``)          |
| no ``ocpp1.6`` among the offered subprotocols         | 400, before any upgrade (TC_088)         |
| unknown identity, ``--unknown-stations reject``       | 404                                      |
| unknown identity, ``--unknown-stations pending``      | 404, and listed for ``ctl station approve`` (a write, by the writer) |
| unknown identity past a cap (per minute, in total)    | accept: 503 with ``Retry-After``; pending: 404, not listed; logged once a minute |
| password set, Authorization missing or wrong          | 401 with ``WWW-Authenticate: Basic``     |
| too many failed logins of the identity or the address | 429 with ``Retry-After``, before hashing (``gateway.throttle``) |
| otherwise                                             | 101 with ``Sec-WebSocket-Protocol: ocpp1.6`` |

After the upgrade the host asks the registry for the station's lease (newest
connection wins, also across hosts) and only then serves it. Frames go to the
host's writer (``actors.host.worker``) as they arrive; what the writer
releases after its commit comes back here with ``deliver``. Nothing on this
loop sleeps, waits for a lock or blocks on a socket: the station lookup and
password check (PBKDF2) run in a small thread pool, which only reads.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import queue
import socket
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from http import HTTPStatus
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.protocol import State

import metrics
from actors.host.worker import (
    CallTimedOut,
    Closed,
    HostWorker,
    Opened,
    PendingAttempt,
    Received,
    Turn,
)
from actors.settings import Settings
from gateway import handshake
from gateway.throttle import LoginThrottle
from storage import Store

log = logging.getLogger(__name__)

LEASE_TIMEOUT = 30.0  # a reconnect storm of thousands queues many lease requests
WRITE_BUFFER_LIMIT = 4 * 1024 * 1024  # a charge point that stops reading is dropped past this
# Connections the kernel may hold ready for one host to accept. A reconnect storm
# (10,000 stations at once) overflowed the queue thousands of times while asyncio's
# default of 100 was in force: the SYN retries put boot p99 at 7.6 s. The kernel
# caps it at net.core.somaxconn; listening_socket says so when that cap is lower.
LISTEN_BACKLOG = 16384
SOMAXCONN = "/proc/sys/net/core/somaxconn"
AUTH_THREADS = 2
AUTH_BATCH = 64  # admission answers handed to the loop at once
LAG_TICK = 0.5  # seconds between the ticks that measure the loop's lag (csms_event_loop_lag_seconds)

# An admission decision: HTTP status (0: admitted), reason, Retry-After seconds or None.
Admission = tuple[int, str, int | None]


def listening_socket(host: str, port: int) -> socket.socket:
    """The OCPP listening socket of one host, in the node's SO_REUSEPORT group."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(LISTEN_BACKLOG)
    sock.setblocking(False)
    cap = _somaxconn()
    if cap is not None and cap < LISTEN_BACKLOG:
        log.warning(
            "net.core.somaxconn is %d: at most %d connections can wait to be accepted by this host; "
            "raise it to %d for reconnect storms (README, 'Operating system settings')", cap, cap, LISTEN_BACKLOG,
        )
    return sock


def _somaxconn() -> int | None:
    try:
        with open(SOMAXCONN) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


class WsLink:
    """One charge point's connection (``actors.host.station.Link``)."""

    __slots__ = ("ws", "peer", "number")

    def __init__(self, ws: ServerConnection, peer: str, number: int) -> None:
        self.ws = ws
        self.peer = peer
        self.number = number

    def send_text(self, text: str) -> None:
        """Frame and write at once (sans-I/O, no task per frame)."""
        ws = self.ws
        if ws.protocol.state is not State.OPEN:
            return
        ws.protocol.send_text(text.encode("utf-8"))
        ws.send_data()
        if ws.transport.get_write_buffer_size() > WRITE_BUFFER_LIMIT:
            log.warning("connection from %s is not reading: dropping it", self.peer)
            ws.transport.abort()

    def __repr__(self) -> str:
        return f"<link {self.number} {self.peer}>"


class HostLoop:
    """The loop thread of one station host."""

    def __init__(
        self, settings: Settings, worker: HostWorker, *, request_lease: Callable[[str], None],
        release_lease: Callable[[str], None],
    ) -> None:
        self.settings = settings
        self.worker = worker
        self.request_lease = request_lease
        self.release_lease = release_lease
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name="station-loop", daemon=True)
        self.sock: socket.socket | None = None
        self.server: Server | None = None
        self.ready = threading.Event()
        self.failure: str | None = None
        self.leases: dict[str, list[asyncio.Future[bool]]] = {}
        self.links: dict[str, set[WsLink]] = {}
        self.numbers = itertools.count(1)
        # Admission checks (storage reads, password hashes) run on AUTH_THREADS threads
        # fed by one queue, and come back to the loop in batches: run_in_executor
        # cost a concurrent.futures.Future (with its Condition) and a chained
        # asyncio future per handshake, 11% of a host's GIL time in a
        # 10,000-station connection storm (py-spy --gil).
        self.auth_queue: queue.SimpleQueue[tuple[str, str, Headers, asyncio.Future[Admission]] | None] = queue.SimpleQueue()
        self.throttle = LoginThrottle()
        self.newcomers = NewcomerCap(settings)
        self.auth_threads = [
            threading.Thread(target=self._auth_worker, name=f"station-auth-{n}", daemon=True) for n in range(AUTH_THREADS)
        ]
        self._stores: dict[int, Store] = {}

    # -- lifecycle (called from the host actor's thread) -----------------------------------

    def start(self, timeout: float = 10.0) -> str | None:
        """Bind and start serving; None when listening, else why not."""
        try:
            self.sock = listening_socket(self.settings.host, self.settings.port)
        except OSError as exc:
            return f"cannot listen on {self.settings.host}:{self.settings.port}: {exc}"
        for thread in self.auth_threads:
            thread.start()
        self.thread.start()
        if not self.ready.wait(timeout):
            return "the station host's loop did not start"
        return self.failure

    def stop(self, timeout: float) -> None:
        """Stop accepting and end the loop (the writer closes the connections)."""
        if self.thread.is_alive():
            self.loop.call_soon_threadsafe(self._stop_serving)
            self.thread.join(timeout)
        for _ in self.auth_threads:
            self.auth_queue.put(None)

    def deliver(self, turn: Turn) -> None:
        """From the writer, after a commit: frames, closes and call timeouts (thread-safe)."""
        if turn.sends or turn.closes or turn.timeouts:
            self.loop.call_soon_threadsafe(self._deliver, turn)

    def granted(self, station_ids: tuple[str, ...]) -> None:
        """From the host actor: the registry granted these leases (thread-safe)."""
        self.loop.call_soon_threadsafe(self._granted, station_ids)

    # -- on the loop ---------------------------------------------------------------------

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._serve())
        except Exception as exc:  # pragma: no cover - reported to the actor
            self.failure = f"the station host's server did not start: {exc}"
            self.ready.set()
            return
        self.ready.set()
        try:
            self.loop.run_forever()
        finally:
            self.loop.close()

    async def _serve(self) -> None:
        ping = self.settings.ping_interval or None
        # websockets logs request headers (Authorization among them) at DEBUG,
        # and every connection at INFO, which the station actors log already.
        quiet = logging.getLogger("websockets.csms")
        quiet.setLevel(logging.WARNING)
        self.server = await serve(
            self._connection,
            sock=self.sock,
            backlog=LISTEN_BACKLOG,  # asyncio listens again on a given socket, with 100 unless told
            process_request=self._admit,
            select_subprotocol=_select_subprotocol,
            max_size=self.settings.max_frame_size,
            ping_interval=ping,
            ping_timeout=ping,
            close_timeout=2.0,
            max_queue=64,
            compression=None,  # OCPP frames are small; deflate would cost ~100 KB per connection
            logger=quiet,
            server_header=None,
        )
        self.loop.call_later(LAG_TICK, self._tick, self.loop.time() + LAG_TICK)

    def _tick(self, due: float) -> None:
        """How late this call ran is how long every connection of the host waited (no I/O here)."""
        now = self.loop.time()
        metrics.loop_lag(self.worker.host, now - due)
        self.loop.call_later(LAG_TICK, self._tick, now + LAG_TICK)

    def _stop_serving(self) -> None:
        if self.server is not None:
            self.server.close(close_connections=False)
        self.loop.call_later(1.0, self.loop.stop)  # time for the close frames to go out

    def _deliver(self, turn: Turn) -> None:
        for link, text in turn.sends:
            try:
                link.send_text(text)  # type: ignore[attr-defined]
            except Exception:  # the transport may be gone; its close event follows
                log.debug("send to %s failed", link.peer, exc_info=True)
        for link, code, reason in turn.closes:
            ws = link.ws  # type: ignore[attr-defined]
            if ws.protocol.state is State.OPEN:
                self.loop.create_task(ws.close(code, reason))
        for station_id, message_id, seconds in turn.timeouts:
            self.loop.call_later(seconds, self.worker.put, CallTimedOut(station_id, message_id))

    def _granted(self, station_ids: tuple[str, ...]) -> None:
        for station_id in station_ids:
            for future in self.leases.pop(station_id, []):
                if not future.done():
                    future.set_result(True)

    async def _admit(self, connection: ServerConnection, request: Request) -> Response | None:
        try:
            station_id = handshake.identity_from_path(request.path)
        except handshake.BadIdentity as bad:
            return self._refuse(connection, HTTPStatus.BAD_REQUEST, str(bad), "?")
        if station_id is None:
            return self._refuse(connection, HTTPStatus.NOT_FOUND, "no charge point identity in the URL", "?")
        offered = [p.strip() for v in request.headers.get_all("Sec-WebSocket-Protocol") for p in v.split(",")]
        if handshake.select_subprotocol(offered) is None:
            # OCPP-J §3.2 and TC_088: no ocpp1.6 offered -> refused before the upgrade.
            return self._refuse(connection, HTTPStatus.BAD_REQUEST, "subprotocol ocpp1.6 required", station_id)
        answer: asyncio.Future[Admission] = self.loop.create_future()
        self.auth_queue.put((station_id, _host_of(connection), request.headers, answer))
        status, reason, retry_after = await answer
        if status:
            response = self._refuse(connection, HTTPStatus(status), reason, station_id)
            if retry_after is not None:
                response.headers["Retry-After"] = str(retry_after)
            return response
        connection.csms_station_id = station_id  # type: ignore[attr-defined]
        return None

    def _refuse(self, connection: ServerConnection, status: HTTPStatus, reason: str, station_id: str) -> Response:
        log.info("connection for %s from %s refused: %d %s", station_id, _peer(connection), status, reason)
        metrics.connection_event("rejected")
        response = connection.respond(status, reason + "\n")
        if status == HTTPStatus.UNAUTHORIZED:
            response.headers["WWW-Authenticate"] = 'Basic realm="ocpp", charset="UTF-8"'
        return response

    def _auth_worker(self) -> None:
        """An admission thread: takes what is queued, answers the loop once per batch."""
        while True:
            item = self.auth_queue.get()
            batch = []
            while item is not None:
                station_id, address, headers, answer = item
                try:
                    result = self._authorise(station_id, address, headers)
                except Exception:
                    log.exception("station %s: admission check failed", station_id)
                    result = (503, "try again later", None)
                batch.append((answer, result))
                if len(batch) >= AUTH_BATCH:
                    break
                try:
                    item = self.auth_queue.get_nowait()
                except queue.Empty:
                    break
            try:
                self.loop.call_soon_threadsafe(_answer_all, batch)
            except RuntimeError:  # the loop is closed: shutting down
                return
            if item is None:
                return

    def _authorise(self, station_id: str, address: str, headers: Headers) -> Admission:
        """In the auth pool: known or admissible, and HTTP Basic. Status 0 means admitted."""
        store = self._store()
        if store.get_station(station_id) is None:
            mode = self.settings.unknown_stations
            if mode == "pending":
                if store.is_pending(station_id) or self.newcomers.admit(store, mode):
                    self.worker.put(PendingAttempt(station_id, address, datetime.now(timezone.utc)))
                return 404, "unknown charge point (waiting for an operator's approval)", None
            if mode != "accept":
                return 404, "unknown charge point", None
            if not self.newcomers.admit(store, mode):
                return 503, "too many new charge points; try again later", 60
            # Admitted; its row is written by the writer when the connection opens
            # (actors.host.station), in one group commit with the rest of that turn.
            return 0, "", None
        if store.station_requires_password(station_id):
            now = time.monotonic()
            wait = self.throttle.retry_after(station_id, address, now)
            if wait is not None:  # answered before any hash: a flood costs the other stations nothing
                metrics.login_failure("throttled")
                return 429, "too many failed logins; try again later", wait
            credentials = handshake.basic_credentials(headers.get("Authorization"))
            if credentials is None:
                return 401, "authorization required", None  # a first try without credentials is no guess
            user, password = credentials
            if user != station_id or not store.check_password(station_id, password):
                failures = self.throttle.failed(station_id, address, now)
                metrics.login_failure("wrong-credentials")
                log.warning("station %s: failed login from %s (%d in a row)", station_id, address, failures)
                return 401, "invalid credentials", None
            self.throttle.succeeded(station_id)
        return 0, "", None

    def _store(self) -> Store:
        key = threading.get_ident()
        store = self._stores.get(key)
        if store is None:
            store = self._stores[key] = Store(self.settings.db, migrate_schema=False, checkpoints=False)
        return store

    async def _connection(self, ws: ServerConnection) -> None:
        station_id: str = ws.csms_station_id  # type: ignore[attr-defined]
        link = WsLink(ws, _peer(ws), next(self.numbers))
        future: asyncio.Future[bool] = self.loop.create_future()
        self.leases.setdefault(station_id, []).append(future)
        self.request_lease(station_id)
        try:
            await asyncio.wait_for(future, LEASE_TIMEOUT)
        except asyncio.TimeoutError:
            log.warning("station %s: no lease from the registry within %ss; closing", station_id, LEASE_TIMEOUT)
            await ws.close(1013, "try again later")
            return
        held = self.links.setdefault(station_id, set())
        held.add(link)
        put = self.worker.put
        put(Opened(station_id, link))
        reason = "closed"
        try:
            while True:
                message = await ws.recv()
                put(Received(station_id, link, message, time.perf_counter()))
        except ConnectionClosed as closed:
            reason = _close_reason(closed)
        finally:
            put(Closed(station_id, link, reason))
            held.discard(link)
            if not held:
                del self.links[station_id]
                self.release_lease(station_id)


class NewcomerCap:
    """How many unknown identities one host registers (accept) or lists (pending): per minute and in total.

    Shared by the admission threads. The totals are read from storage at most
    once a second (a count per attempt would cost a storm of new stations
    dearly); when a cap bites it is said in the log, once a minute.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.lock = threading.Lock()
        self.minute_start = 0.0
        self.this_minute = 0
        self.total = 0
        self.total_read_at = -1.0
        self.said_at: dict[str, float] = {}

    def admit(self, store: Store, mode: str) -> bool:
        now = time.monotonic()
        with self.lock:
            if now - self.total_read_at >= 1.0:
                self.total = store.pending_count() if mode == "pending" else store.station_count()
                self.total_read_at = now
            limit = self.settings.max_pending if mode == "pending" else self.settings.max_stations
            if self.total >= limit:
                option = "--max-pending" if mode == "pending" else "--max-stations"
                self._say(now, "total", f"{self.total} {'identities are waiting for approval' if mode == 'pending' else 'stations are known'}: "
                                        f"no more unknown identities {'are listed' if mode == 'pending' else 'register themselves'} ({option} {limit})")
                return False
            if now - self.minute_start >= 60.0:
                self.minute_start, self.this_minute = now, 0
            if self.this_minute >= self.settings.unknown_per_minute:
                self._say(now, "minute", f"{self.this_minute} new unknown identities this minute on this host: "
                                         f"the others wait (--unknown-per-minute {self.settings.unknown_per_minute})")
                return False
            self.this_minute += 1
            self.total += 1
            return True

    def _say(self, now: float, which: str, text: str) -> None:
        if now - self.said_at.get(which, -60.0) >= 60.0:
            self.said_at[which] = now
            log.warning("admission cap: %s", text)
            metrics.connection_event("capped")


def _answer_all(batch: list[tuple[asyncio.Future[Admission], Admission]]) -> None:
    for answer, result in batch:
        if not answer.done():  # the handshake may have been cancelled meanwhile
            answer.set_result(result)


def _select_subprotocol(connection: ServerConnection, offered: Any) -> Any:
    return handshake.select_subprotocol(offered)


def _host_of(connection: ServerConnection) -> str:
    try:
        return str(connection.remote_address[0])
    except Exception:
        return "?"


def _peer(connection: ServerConnection) -> str:
    try:
        host, port = connection.remote_address[:2]
        return f"{host}:{port}"
    except Exception:
        return "?"


def _close_reason(closed: ConnectionClosed) -> str:
    frame = closed.rcvd or closed.sent
    if frame is None:
        return "closed without a close frame (1006)"
    return f"closed ({frame.code} {frame.reason})".strip()
