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
| a newer handshake of the same identity came meanwhile | 409, before any upgrade (``actors.leases``) |
| no lease from the registry within ``LEASE_WAIT``      | 503 with ``Retry-After``                 |
| otherwise                                             | 101 with ``Sec-WebSocket-Protocol: ocpp1.6`` |

Before the 101 the host asks the registry for the station's lease, with a
ticket of its own for this handshake, and upgrades only once it is granted:
of overlapping handshakes of one identity (on any host) the newest is
upgraded and the others are answered 409; a connection upgraded earlier is
closed when a newer one is granted (newest wins). Frames go to the
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
import ssl
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from http import HTTPStatus
from typing import Any, NamedTuple

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.frames import CLOSE_CODE_EXPLANATIONS, Close, CloseCode
from websockets.http11 import Request, Response
from websockets.protocol import State

import metrics
from actors.host.worker import (
    CallTimedOut,
    Closed,
    FromActor,
    HostWorker,
    Opened,
    OwnSecurityEvent,
    PendingAttempt,
    Received,
    SecurityLogBudget,
    Turn,
)
from actors.messages import RevokeLeases
from actors.settings import Settings
from gateway import handshake, tls
from gateway.throttle import LoginThrottle
from storage import Store

log = logging.getLogger(__name__)

# Seconds a handshake waits for its lease before it is answered 503: within websockets'
# open_timeout (10 s), which would drop it without an answer.
LEASE_WAIT = 8.0
# Seconds a granted handshake has to complete its upgrade before its lease is given back.
CLAIM_TIMEOUT = 10.0
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

    __slots__ = ("ws", "station_id", "peer", "number")

    def __init__(self, ws: ServerConnection, station_id: str, peer: str, number: int) -> None:
        self.ws = ws
        self.station_id = station_id
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
            log.warning("station %s: connection from %s is not reading: dropping it", self.station_id, self.peer)
            ws.transport.abort()

    def __repr__(self) -> str:
        return f"<link {self.number} {self.peer}>"


class HostLoop:
    """The loop thread of one station host."""

    def __init__(
        self, settings: Settings, worker: HostWorker, *, request_lease: Callable[[tuple[str, int]], None],
        release_lease: Callable[[tuple[str, int]], None],
    ) -> None:
        self.settings = settings
        self.worker = worker
        self.request_lease = request_lease
        self.release_lease = release_lease
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name="station-loop", daemon=True)
        self.sock: socket.socket | None = None
        self.plain_sock: socket.socket | None = None  # --plain-port beside a TLS --port
        self.tls: ssl.SSLContext | None = None
        self.servers: list[Server] = []
        self.ready = threading.Event()
        self.failure: str | None = None
        # Handshakes waiting for their lease, or granted and not yet upgraded:
        # station -> ticket number -> ticket. Numbers grow across restarts of the host.
        self.tickets: dict[str, dict[int, _Ticket]] = {}
        self.ticket_numbers = itertools.count(time.time_ns() // 1000)
        self.granted_max: dict[str, int] = {}  # station -> the newest ticket granted here
        self.links: dict[str, set[WsLink]] = {}
        self.numbers = itertools.count(1)
        # Admission checks (storage reads, password hashes) run on AUTH_THREADS threads
        # fed by one queue, and come back to the loop in batches: run_in_executor
        # cost a concurrent.futures.Future (with its Condition) and a chained
        # asyncio future per handshake, 11% of a host's GIL time in a
        # 10,000-station connection storm (py-spy --gil).
        self.auth_queue: queue.SimpleQueue[tuple[str, str, Headers, Security, asyncio.Future[Admission]] | None] = queue.SimpleQueue()
        self.throttle = LoginThrottle()
        self.security_budget = SecurityLogBudget()  # the node's own security log: writes per minute, bounded
        self.newcomers = NewcomerCap(settings)
        self.auth_threads = [
            threading.Thread(target=self._auth_worker, name=f"station-auth-{n}", daemon=True) for n in range(AUTH_THREADS)
        ]
        self._stores: dict[int, Store] = {}

    # -- lifecycle (called from the host actor's thread) -----------------------------------

    def start(self, timeout: float = 10.0) -> str | None:
        """Bind and start serving; None when listening, else why not."""
        settings = self.settings
        if settings.tls_cert:
            try:
                self.tls = tls.server_context(settings.tls_cert, settings.tls_key, settings.tls_client_ca,
                                              on_failure=self._tls_refused)
            except tls.TlsConfigError as exc:
                return str(exc)
        try:
            self.sock = listening_socket(settings.host, settings.port)
            if settings.plain_port:
                self.plain_sock = listening_socket(settings.host, settings.plain_port)
        except OSError as exc:
            return f"cannot listen on {settings.host}:{settings.port}: {exc}"
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

    def granted(self, tickets: tuple[tuple[str, int], ...]) -> None:
        """From the host actor: the registry granted these leases (thread-safe)."""
        self.loop.call_soon_threadsafe(self._granted, tickets)

    def refused(self, tickets: tuple[tuple[str, int], ...], reason: str) -> None:
        """From the host actor: newer handshakes of these stations came (thread-safe)."""
        self.loop.call_soon_threadsafe(self._refused, tickets, reason)

    def revoked(self, message: RevokeLeases) -> None:
        """From the host actor: these stations are served by another host now (thread-safe)."""
        self.loop.call_soon_threadsafe(self._revoked, message)

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
        listeners: list[tuple[socket.socket | None, ssl.SSLContext | None]] = [(self.sock, self.tls)]
        if self.plain_sock is not None:
            listeners.append((self.plain_sock, None))
        for sock, context in listeners:
            self.servers.append(await self._listen(sock, context, ping, quiet))
        self.loop.call_later(LAG_TICK, self._tick, self.loop.time() + LAG_TICK)

    async def _listen(self, sock: socket.socket | None, context: ssl.SSLContext | None, ping: float | None,
                      quiet: logging.Logger) -> Server:
        return await serve(
            self._connection,
            sock=sock,
            ssl=context,
            ssl_handshake_timeout=10.0 if context is not None else None,
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

    def _tick(self, due: float) -> None:
        """How late this call ran is how long every connection of the host waited (no I/O here)."""
        now = self.loop.time()
        metrics.loop_lag(self.worker.host, now - due)
        self.loop.call_later(LAG_TICK, self._tick, now + LAG_TICK)

    def _stop_serving(self) -> None:
        for server in self.servers:
            server.close(close_connections=False)
        self.loop.call_later(1.0, self.loop.stop)  # time for the close frames to go out

    def _deliver(self, turn: Turn) -> None:
        for link, text in turn.sends:
            try:
                link.send_text(text)  # type: ignore[attr-defined]
            except Exception:  # the transport may be gone; its close event follows
                log.debug("station %s: send to %s failed", link.station_id, link.peer, exc_info=True)
        for link, code, reason in turn.closes:
            ws = link.ws  # type: ignore[attr-defined]
            if ws.protocol.state is State.OPEN:
                self.loop.create_task(ws.close(code, reason))
        for station_id, message_id, seconds in turn.timeouts:
            self.loop.call_later(seconds, self.worker.put, CallTimedOut(station_id, message_id))

    def _granted(self, tickets: tuple[tuple[str, int], ...]) -> None:
        for station_id, number in tickets:
            self.granted_max[station_id] = max(self.granted_max.get(station_id, 0), number)
            ticket = self.tickets.get(station_id, {}).get(number)
            if ticket is None:  # its handshake gave up meanwhile
                self._release_if_unused(station_id)
                continue
            ticket.granted = True
            if not ticket.answer.done():
                ticket.answer.set_result(None)

    def _refused(self, tickets: tuple[tuple[str, int], ...], reason: str) -> None:
        for station_id, number in tickets:
            ticket = self.tickets.get(station_id, {}).get(number)
            if ticket is not None and not ticket.answer.done():
                ticket.answer.set_result(reason)

    def _revoked(self, message: RevokeLeases) -> None:
        """Every lease of these stations granted here so far is another host's now
        (the registry's messages arrive in order): refuse what is not upgraded yet,
        close what is."""
        connected = []
        for station_id in message.station_ids:
            self.granted_max.pop(station_id, None)
            for ticket in self.tickets.get(station_id, {}).values():
                if ticket.granted:
                    ticket.revoked = message.reason
            if station_id in self.links:
                connected.append(station_id)
        if connected:
            self.worker.put(FromActor(RevokeLeases(tuple(connected), message.reason), None))

    async def _lease(self, connection: ServerConnection, station_id: str) -> Response | None:
        """Ask the registry for the station's lease and wait for it: no 101 before it is granted."""
        ticket = _Ticket(station_id, next(self.ticket_numbers), self.loop.create_future())
        self.tickets.setdefault(station_id, {})[ticket.number] = ticket
        self.request_lease((station_id, ticket.number))
        try:
            refusal = await asyncio.wait_for(asyncio.shield(ticket.answer), LEASE_WAIT)
        except asyncio.TimeoutError:
            self._drop_ticket(ticket)
            log.warning("station %s: no lease from the registry within %ss", station_id, LEASE_WAIT)
            response = self._refuse(connection, HTTPStatus.SERVICE_UNAVAILABLE, "try again later", station_id)
            response.headers["Retry-After"] = "5"
            return response
        refusal = refusal or ticket.revoked  # granted, then taken by a newer one before the upgrade
        if refusal is not None:
            self._drop_ticket(ticket)
            return self._refuse(connection, HTTPStatus.CONFLICT, refusal, station_id)
        connection.csms_ticket = ticket  # type: ignore[attr-defined]
        self.loop.call_later(CLAIM_TIMEOUT, self._unclaimed, ticket)
        return None

    def _drop_ticket(self, ticket: _Ticket) -> None:
        """Forget a handshake's ticket; give its station's lease back if nothing here uses it."""
        mine = self.tickets.get(ticket.station_id)
        if mine is None or mine.pop(ticket.number, None) is None:
            return
        if not mine:
            del self.tickets[ticket.station_id]
        self._release_if_unused(ticket.station_id)

    def _unclaimed(self, ticket: _Ticket) -> None:
        """A granted handshake that never became a connection (the upgrade failed)."""
        if ticket.number in self.tickets.get(ticket.station_id, {}):
            log.info("station %s: granted handshake was not completed; lease given back", ticket.station_id)
            self._drop_ticket(ticket)

    def _release_if_unused(self, station_id: str) -> None:
        if station_id in self.links or any(t.granted for t in self.tickets.get(station_id, {}).values()):
            return
        number = self.granted_max.pop(station_id, None)
        if number is not None:
            self.release_lease((station_id, number))

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
        ssl_object = connection.transport.get_extra_info("ssl_object")
        security = Security(ssl_object is not None, tls.certificate_identity(ssl_object),
                            tls.certificate_organisation(ssl_object))
        self.auth_queue.put((station_id, _host_of(connection), request.headers, security, answer))
        status, reason, retry_after = await answer
        if status:
            response = self._refuse(connection, HTTPStatus(status), reason, station_id)
            if retry_after is not None:
                response.headers["Retry-After"] = str(retry_after)
            return response
        return await self._lease(connection, station_id)

    def _refuse(self, connection: ServerConnection, status: HTTPStatus, reason: str, station_id: str) -> Response:
        if station_id == "?":  # no usable identity in the URL: about no station
            log.info("connection from %s refused: %d %s", _peer(connection), status, reason)
        else:
            log.info("station %s: connection from %s refused: %d %s", station_id, _peer(connection), status, reason)
        metrics.connection_event("rejected")
        response = connection.respond(status, reason + "\n")
        if status == HTTPStatus.UNAUTHORIZED:
            response.headers["WWW-Authenticate"] = 'Basic realm="ocpp", charset="UTF-8"'
        return response

    def _tls_refused(self, reason: str) -> None:
        """A TLS handshake failed (on the loop): counted, and kept in the node's security log by the writer."""
        metrics.security_refusal("tls-handshake")
        self._security_log("tls-handshake", None, None, reason)

    def _security_log(self, event_type: str, station_id: str | None, address: str | None, detail: str) -> None:
        """Keep a refusal in the node's own security log: this thread only reads, the writer stores it."""
        stored, dropped = self.security_budget.admit()
        if dropped:
            log.warning("%d security events not stored in the last minute (more than %d a minute)",
                        dropped, self.security_budget.per_minute)
        if stored:
            self.worker.put(OwnSecurityEvent(event_type, station_id, address, detail, datetime.now(timezone.utc)))

    def _auth_worker(self) -> None:
        """An admission thread: takes what is queued, answers the loop once per batch."""
        while True:
            item = self.auth_queue.get()
            batch = []
            while item is not None:
                station_id, address, headers, security, answer = item
                try:
                    result = self._authorise(station_id, address, headers, security)
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

    def _authorise(self, station_id: str, address: str, headers: Headers, security: Security) -> Admission:
        """In the auth pool: known or admissible, authenticated, and at the station's
        security profile or above. Status 0 means admitted."""
        store = self._store()
        station = store.get_station(station_id)
        if station is None:
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
        if security.certificate_identity is not None and security.certificate_identity != station_id:
            # WP A00.FR.403-408: the certificate's CN is the charge point's identity.
            return self._insecure(station_id, address, "certificate-identity",
                                  f"client certificate is for {security.certificate_identity!r}")
        cpo = self.settings.cpo_name
        if security.certificate_identity is not None and cpo and security.certificate_organisation != cpo:
            # WP A00.FR.403-408: "O = CPO name" too, when the operator named the CPO (--cpo-name).
            return self._insecure(station_id, address, "certificate-identity",
                                  f"client certificate is for organisation {security.certificate_organisation!r}, "
                                  f"not the CPO {cpo!r}")
        if security.certificate_identity == station_id:
            profile = 3  # a client certificate verified against --tls-client-ca, for this identity
        elif station["has_password"]:
            refused = self._check_password(station_id, address, headers, store)
            if refused is not None:
                return refused
            profile = 2 if security.tls else 1
        else:
            profile = 0
        required = int(station["security_profile"])
        if profile < required:
            return self._insecure(station_id, address, "security-profile",
                                  f"security profile {required} required, the connection has {profile}")
        return 0, "", None

    def _check_password(self, station_id: str, address: str, headers: Headers, store: Store) -> Admission | None:
        """HTTP Basic (security profiles 1 and 2): None when the password is right."""
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
            self._security_log("failed-login", station_id, address,
                               "wrong user name" if user != station_id else "wrong password")
            return 401, "invalid credentials", None
        self.throttle.succeeded(station_id)
        return None

    def _insecure(self, station_id: str, address: str, reason: str, why: str) -> Admission:
        log.warning("station %s: connection from %s refused: %s", station_id, address, why)
        metrics.security_refusal(reason)
        self._security_log(reason, station_id, address, why)
        return 403, why, None

    def _store(self) -> Store:
        key = threading.get_ident()
        store = self._stores.get(key)
        if store is None:
            store = self._stores[key] = Store(self.settings.db, migrate_schema=False, checkpoints=False)
        return store

    async def _connection(self, ws: ServerConnection) -> None:
        ticket: _Ticket = ws.csms_ticket  # type: ignore[attr-defined]
        station_id = ticket.station_id
        mine = self.tickets.get(station_id, {})
        mine.pop(ticket.number, None)  # claimed: from now on the connection holds the lease
        if not mine:
            self.tickets.pop(station_id, None)
        if ticket.revoked is not None:  # a newer connection was granted after this upgrade
            log.info("station %s: connection from %s %s", station_id, _peer(ws), ticket.revoked)
            metrics.connection_event("replaced")
            await ws.close(1000, ticket.revoked)
            return
        link = WsLink(ws, station_id, _peer(ws), next(self.numbers))
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
                self._release_if_unused(station_id)


class _Ticket:
    """One handshake's request for its station's lease."""

    __slots__ = ("station_id", "number", "answer", "granted", "revoked")

    def __init__(self, station_id: str, number: int, answer: asyncio.Future[str | None]) -> None:
        self.station_id = station_id
        self.number = number
        self.answer = answer  # None: granted; else why it was refused
        self.granted = False
        self.revoked: str | None = None  # granted, then revoked before the connection was served


class Security(NamedTuple):
    """What the transport says of a connection: TLS, and the identity its verified client certificate names."""

    tls: bool
    certificate_identity: str | None
    certificate_organisation: str | None = None  # its subject O


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
    """What ended a connection, said for the log (``station ID: connection <this>``) and for
    the NotConnected answers of the CALLs that were waiting on it."""
    rcvd, sent = closed.rcvd, closed.sent
    if rcvd is None and sent is None:
        return "lost: the TCP connection ended without a close frame (1006)"
    if rcvd is not None and (sent is None or closed.rcvd_then_sent):
        said = f"closed by the charge point: {_close_frame(rcvd)}"
        return said if sent is not None else said + "; the TCP connection ended before the answer"
    assert sent is not None
    said = f"closed by the central system: {_close_frame(sent)}"
    return said if rcvd is not None else said + "; no close frame came back"


def _close_frame(frame: Close) -> str:
    """``1000 (OK)``, ``1009 (message too big): over 65536 bytes``; a frame without a code says so."""
    if frame.code == CloseCode.NO_STATUS_RCVD:
        return "no status code (1005)"
    explanation = CLOSE_CODE_EXPLANATIONS.get(frame.code, "private" if 4000 <= frame.code < 5000 else "unknown")
    return f"{int(frame.code)} ({explanation})" + (f": {frame.reason}" if frame.reason else "")
