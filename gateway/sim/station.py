"""One process's share of the load simulator: simulated charge points on one event loop.

Contract of a simulated station (``run_station``):

1. connect to ``<url>/<prefix><n>`` with subprotocol ``ocpp1.6`` (HTTP Basic when a
   password is configured), at its slot of the ramp;
2. BootNotification; only an ``Accepted`` answer makes the station *booted*;
3. with the ``full`` mix, StatusNotification for connector 0 and every connector;
4. until the end of the measuring window: one CALL outstanding at a time, the
   mix's next message, paced to ``rate`` messages per second (0: as soon as the
   previous answer arrived);
5. return the open connection, so that the shard can keep it open for ``hold``
   seconds (memory measurements) and close it afterwards.

A station never raises: refused connections, CALLERRORs, timeouts, unexpected
frames and closed connections are counted in ``ShardStats`` and the station
stops (CALLERRORs do not stop it). Only CALLRESULTs received inside the
measuring window count as messages; their latency is the time from sending the
CALL to receiving its CALLRESULT (``answered`` also counts the CALLERRORs
received inside the window: every answer the central system produced there).

Per station the shard also records the *connect latency* (from starting the
TCP connect to the completed WebSocket upgrade) and the *boot latency* (from
starting the TCP connect to the BootNotification answer): with every station
connecting at once (``ramp`` 0) these measure how the central system copes
with a connection storm, separately from the message latency of the loop.

Garbage collection: a full (generation 2) collection walks every live object,
and with a few thousand connections in one process it stalls the loop for
100-250 ms, which showed up as the p99 of an open-loop run against the peer.
While a shard runs, full collections are therefore off (young generations are
still collected, which frees the short-lived cycles), and at the start of the
window everything alive (the connections) is frozen out of the collector.

Frames are built from string templates and parsed with ``json.loads``: the ocpp
library's dataclasses are too slow for the hot loop, and the simulator must
never be the bottleneck.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import json
import random
import resource
import ssl
import time
from array import array
from collections import Counter
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State
from websockets.typing import Subprotocol

# The actions a mix can send; the peer baseline answers only the "basic" ones.
MIXES = ("basic", "full")
# Messages between transactions (and inside one) in the "full" mix.
TX_SPACING = 20
MAX_ERROR_SAMPLES = 10
# Generation-2 threshold while a shard runs: full collections never start on their own.
NO_FULL_COLLECTION = 1 << 30
WATCH_EVERY = 0.25  # seconds between checks of the CALL deadlines (a timeout fires up to this late)
# Young-generation threshold while a shard runs (CPython: 700): every frame allocates.
YOUNG_THRESHOLD = 50_000

# Answers to CALLs the central system sends us; anything else gets NotImplemented.
_SERVER_CALL_ANSWERS = {
    "GetConfiguration": '{"configurationKey":[],"unknownKey":[]}',
    "ChangeConfiguration": '{"status":"Accepted"}',
    "ChangeAvailability": '{"status":"Accepted"}',
    "ClearCache": '{"status":"Accepted"}',
    "TriggerMessage": '{"status":"Rejected"}',
    "Reset": '{"status":"Rejected"}',
    "RemoteStartTransaction": '{"status":"Rejected"}',
    "RemoteStopTransaction": '{"status":"Rejected"}',
    "UnlockConnector": '{"status":"NotSupported"}',
    "DataTransfer": '{"status":"UnknownVendorId"}',
    "GetLocalListVersion": '{"listVersion":0}',
    "SendLocalList": '{"status":"NotSupported"}',
    "ReserveNow": '{"status":"Rejected"}',
    "CancelReservation": '{"status":"Rejected"}',
    "SetChargingProfile": '{"status":"Rejected"}',
    "ClearChargingProfile": '{"status":"Unknown"}',
    "GetCompositeSchedule": '{"status":"Rejected"}',
    "UpdateFirmware": "{}",
    "GetDiagnostics": "{}",
}


@dataclass(frozen=True)
class ShardConfig:
    """What one worker needs; times are ``time.monotonic()`` values (system-wide on Linux)."""

    url: str
    stations: int  # total over all shards: spreads the ramp
    prefix: str
    connectors: int
    password: str | None
    mix: str
    rate: float
    timeout: float
    id_tag: str
    ca: str | None  # CA bundle for a wss:// url (None: the system's trust store)
    t_start: float  # first connection attempt
    ramp: float
    window_start: float
    window_end: float
    hold: float


@dataclass
class ShardStats:
    """Counters of one shard; ``merge`` adds another shard's."""

    stations: int = 0
    connected: int = 0
    booted: int = 0
    booted_late: int = 0  # booted after the window had opened (it overlaps the connects)
    held: int = 0  # connections still open when the window ended
    messages: int = 0  # CALLRESULTs inside the window
    answered: int = 0  # CALLRESULTs and CALLERRORs inside the window
    server_calls: int = 0
    errors: int = 0
    peak_rss_kb: int = 0  # summed over the shards' processes (an upper bound: shared pages)
    latencies: array = field(default_factory=lambda: array("d"))  # seconds
    boot_latencies: array = field(default_factory=lambda: array("d"))  # connect start -> Boot answer
    connect_latencies: array = field(default_factory=lambda: array("d"))  # connect start -> upgraded
    error_kinds: Counter = field(default_factory=Counter)
    error_samples: list[str] = field(default_factory=list)

    def error(self, kind: str, detail: str) -> None:
        self.errors += 1
        self.error_kinds[kind] += 1
        sample = f"{kind}: {detail}"[:300]
        if len(self.error_samples) < MAX_ERROR_SAMPLES and sample not in self.error_samples:
            self.error_samples.append(sample)

    def merge(self, other: ShardStats) -> None:
        self.stations += other.stations
        self.connected += other.connected
        self.booted += other.booted
        self.booted_late += other.booted_late
        self.held += other.held
        self.messages += other.messages
        self.answered += other.answered
        self.server_calls += other.server_calls
        self.errors += other.errors
        self.peak_rss_kb += other.peak_rss_kb
        self.latencies.extend(other.latencies)
        self.boot_latencies.extend(other.boot_latencies)
        self.connect_latencies.extend(other.connect_latencies)
        self.error_kinds.update(other.error_kinds)
        for sample in other.error_samples:
            if len(self.error_samples) < MAX_ERROR_SAMPLES and sample not in self.error_samples:
                self.error_samples.append(sample)


class StationFailed(Exception):
    """Raised when a station cannot go on (closed connection, timeout, bad frame)."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


# --- payloads -------------------------------------------------------------------

_ts_cache: list[Any] = [-1, ""]


def utc_now() -> str:
    """ISO 8601 UTC timestamp with a Z, cached per second (it is on the hot path)."""
    second = int(time.time())
    if second != _ts_cache[0]:
        _ts_cache[0] = second
        _ts_cache[1] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second))
    return _ts_cache[1]


def boot_payload(cp_id: str) -> str:
    return json.dumps({
        "chargePointVendor": "CSMS-Sim",
        "chargePointModel": "LoadSim",
        "chargePointSerialNumber": cp_id[-25:],
        "firmwareVersion": "1.0",
    })


def status_payload(connector: int, status: str) -> str:
    return (f'{{"connectorId":{connector},"errorCode":"NoError","status":"{status}",'
            f'"timestamp":"{utc_now()}"}}')


def meter_payload(connector: int, wh: int, transaction_id: int | None = None) -> str:
    tx = f',"transactionId":{transaction_id}' if transaction_id is not None else ""
    return (f'{{"connectorId":{connector}{tx},"meterValue":[{{"timestamp":"{utc_now()}",'
            f'"sampledValue":[{{"value":"{wh}","measurand":"Energy.Active.Import.Register",'
            f'"unit":"Wh"}}]}}]}}')


Script = Generator[tuple[str, str], Any, None]


def basic_script(connectors: int) -> Script:
    """Heartbeat and MeterValues, 1:3, cycling over the connectors (what the peer answers)."""
    wh = 0
    while True:
        for connector in range(1, connectors + 1):
            for _ in range(3):
                wh += 10
                yield "MeterValues", meter_payload(connector, wh)
            yield "Heartbeat", "{}"


def full_script(connectors: int, id_tag: str) -> Script:
    """Idle traffic, then a transaction (Authorize, Start, status, meter values, Stop), repeated.

    The generator receives each CALLRESULT payload (a dict) through ``send``.
    """
    wh = 0
    connector = 0
    while True:
        for i in range(TX_SPACING):
            wh += 10
            yield ("Heartbeat", "{}") if i % 4 == 3 else ("MeterValues", meter_payload(1, wh))
        connector = connector % connectors + 1
        yield "Authorize", f'{{"idTag":"{id_tag}"}}'
        yield "StatusNotification", status_payload(connector, "Preparing")
        reply = yield "StartTransaction", (
            f'{{"connectorId":{connector},"idTag":"{id_tag}","meterStart":{wh},'
            f'"timestamp":"{utc_now()}"}}')
        tx_id = reply.get("transactionId", 0) if isinstance(reply, dict) else 0
        yield "StatusNotification", status_payload(connector, "Charging")
        for i in range(TX_SPACING):
            wh += 100
            yield ("Heartbeat", "{}") if i % 4 == 3 else (
                "MeterValues", meter_payload(connector, wh, tx_id))
        yield "StopTransaction", (
            f'{{"transactionId":{tx_id},"idTag":"{id_tag}","meterStop":{wh},'
            f'"timestamp":"{utc_now()}","reason":"Local"}}')
        yield "StatusNotification", status_payload(connector, "Finishing")
        yield "StatusNotification", status_payload(connector, "Available")


# --- one station -------------------------------------------------------------------


class _Watch:
    """The CALL deadlines of one shard, checked every WATCH_EVERY seconds.

    ``asyncio.timeout`` per CALL (a TimerHandle pushed on and cancelled off the
    loop's heap every time) was 15% of the simulator's CPU in a closed loop;
    the simulator shares the machine with the central system it measures.
    """

    def __init__(self) -> None:
        self.links: list[_Link] = []

    async def run(self) -> None:
        while True:
            await asyncio.sleep(WATCH_EVERY)
            now = time.monotonic()
            for link in self.links:
                if 0.0 < link.deadline <= now and not link.timed_out and link.task is not None:
                    link.timed_out = True
                    link.task.cancel()


def _send_now(ws: ClientConnection, text: str) -> None:
    """Frame and write one text frame at once, as websockets' ``send`` does for a str.

    The sans-I/O protocol frames it and the transport writes it, without the
    send lock, the async context managers and the drain of ``Connection.send``
    (9% of the simulator's CPU at 12,000 msg/s, py-spy): a closed loop has one
    CALL in flight per connection, so there is nothing to drain.
    """
    if ws.protocol.state is not State.OPEN:
        raise ws.protocol.close_exc
    ws.protocol.send_text(text.encode())
    ws.send_data()


class _Link:
    """One connection's CALL/CALLRESULT exchange: unique ids, answers to the server's CALLs."""

    __slots__ = ("ws", "cp_id", "stats", "timeout", "hard_end", "next_id", "action", "deadline", "task",
                 "timed_out")

    def __init__(self, ws: ClientConnection, cp_id: str, stats: ShardStats,
                 timeout: float, hard_end: float, watch: _Watch) -> None:
        self.ws = ws
        self.cp_id = cp_id
        self.stats = stats
        self.timeout = timeout
        self.hard_end = hard_end
        self.next_id = 0
        self.action = "connect"  # the CALL in progress, for error reports
        self.deadline = 0.0  # of the CALL in progress; 0: none
        self.task = asyncio.current_task()
        self.timed_out = False
        watch.links.append(self)

    async def call(self, action: str, payload: str) -> tuple[bool, Any, float, float]:
        """Send one CALL; return (ok, result payload or error text, sent_at, answered_at)."""
        self.next_id += 1
        self.action = action
        uid = str(self.next_id)
        ws = self.ws
        sent = time.monotonic()
        self.deadline = min(sent + self.timeout, self.hard_end)
        try:
            _send_now(ws, f'[2,"{uid}","{action}",{payload}]')
            while True:
                raw = await ws.recv()
                now = time.monotonic()
                try:
                    frame = json.loads(raw)
                    kind = frame[0]
                    if kind == 2:
                        await self._answer(frame)
                        continue
                    if frame[1] != uid:
                        raise StationFailed("protocol", f"answer for unknown id {frame[1]!r}")
                except (ValueError, TypeError, IndexError, KeyError) as exc:
                    raise StationFailed("protocol", f"bad frame {str(raw)[:80]!r}: {exc}") from None
                if kind == 3:
                    return True, frame[2], sent, now
                if kind == 4:
                    return False, f"{action} -> {frame[2]}: {frame[3]}", sent, now
                raise StationFailed("protocol", f"unexpected frame {str(raw)[:80]!r}")
        except asyncio.CancelledError:
            if not self.timed_out:
                raise  # the shard is being stopped
            self.timed_out = False
            if self.task is not None:
                self.task.uncancel()
            raise StationFailed("timeout", f"no answer to {action}") from None
        finally:
            self.deadline = 0.0

    async def _answer(self, frame: list) -> None:
        self.stats.server_calls += 1
        uid, action = frame[1], frame[2]
        answer = _SERVER_CALL_ANSWERS.get(action)
        if answer is None:
            await self.ws.send(json.dumps(
                [4, uid, "NotImplemented", f"simulator does not implement {action}", {}]))
        else:
            await self.ws.send(f'[3,{json.dumps(uid)},{answer}]')


def _headers(cp_id: str, password: str | None) -> dict[str, str] | None:
    if password is None:
        return None
    token = base64.b64encode(f"{cp_id}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


_contexts: dict[str | None, ssl.SSLContext] = {}


def _tls(cfg: ShardConfig) -> dict[str, Any]:
    """``ssl=`` for a wss:// url: one context per worker (making one costs a millisecond)."""
    if not cfg.url.startswith("wss://"):
        return {}
    context = _contexts.get(cfg.ca)
    if context is None:
        context = _contexts[cfg.ca] = ssl.create_default_context(cafile=cfg.ca)
    return {"ssl": context}


async def _sleep_until(t: float) -> None:
    delay = t - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)


async def run_station(cfg: ShardConfig, index: int, stats: ShardStats, watch: _Watch) -> ClientConnection | None:
    """Simulate station number ``index`` (1-based); see the module docstring."""
    cp_id = f"{cfg.prefix}{index}"
    stats.stations += 1
    await _sleep_until(cfg.t_start + cfg.ramp * (index - 1) / cfg.stations)
    hard_end = cfg.window_end + cfg.timeout
    connect_started = time.monotonic()
    try:
        async with asyncio.timeout_at(min(time.monotonic() + cfg.timeout, cfg.window_end)):
            ws = await connect(
                f"{cfg.url.rstrip('/')}/{cp_id}",
                subprotocols=[Subprotocol("ocpp1.6")],
                additional_headers=_headers(cp_id, cfg.password),
                ping_interval=None, max_queue=None, compression=None, proxy=None,
                open_timeout=None, close_timeout=2, **_tls(cfg),
            )
    except Exception as exc:  # refused, HTTP 401/404, timeout, bad URL: all "connect"
        stats.error("connect", f"{cp_id}: {exc!r}")
        return None
    stats.connected += 1
    stats.connect_latencies.append(time.monotonic() - connect_started)
    if ws.subprotocol != "ocpp1.6":
        stats.error("protocol", f"{cp_id}: server selected subprotocol {ws.subprotocol!r}")
    link = _Link(ws, cp_id, stats, cfg.timeout, hard_end, watch)
    try:
        await _boot_and_loop(cfg, link, stats, connect_started)
        return ws
    except StationFailed as exc:
        stats.error(exc.kind, f"{cp_id}: {exc.detail}")
    except ConnectionClosed as exc:
        stats.error("closed", f"{cp_id}: {exc} (during {link.action})")
    except Exception as exc:  # a bug of ours or of the server: report, never crash
        stats.error("failure", f"{cp_id}: {exc!r} (during {link.action})")
    await _close(ws)
    return None


async def _boot_and_loop(cfg: ShardConfig, link: _Link, stats: ShardStats,
                         connect_started: float) -> None:
    ok, reply, _, answered = await link.call("BootNotification", boot_payload(link.cp_id))
    if not ok:
        raise StationFailed("callerror", reply)
    status = reply.get("status") if isinstance(reply, dict) else None
    if status != "Accepted":
        # OCPP 1.6 §4.2: a charge point not Accepted must not send other requests.
        raise StationFailed("boot", f"BootNotification answered {status!r}")
    stats.booted += 1
    stats.boot_latencies.append(answered - connect_started)
    if answered > cfg.window_start:
        stats.booted_late += 1
    if cfg.mix == "full":
        script = full_script(cfg.connectors, cfg.id_tag)
        for connector in range(cfg.connectors + 1):
            ok, reply, _, _ = await link.call("StatusNotification",
                                              status_payload(connector, "Available"))
            if not ok:
                stats.error("callerror", reply)
    else:
        script = basic_script(cfg.connectors)
    await _loop(cfg, link, stats, script)


async def _loop(cfg: ShardConfig, link: _Link, stats: ShardStats, script: Script) -> None:
    window_start, window_end = cfg.window_start, cfg.window_end
    interval = 1.0 / cfg.rate if cfg.rate > 0 else 0.0
    monotonic = time.monotonic
    latencies = stats.latencies
    call = link.call
    next_at = monotonic() + random.random() * interval  # de-synchronise the stations
    action, payload = next(script)
    while True:
        now = monotonic()
        if interval:
            if next_at > now:
                await asyncio.sleep(next_at - now)
                now = monotonic()
            next_at = max(next_at + interval, now)
        if now >= window_end:
            return
        ok, reply, sent, answered = await call(action, payload)
        in_window = window_start <= answered <= window_end
        stats.answered += in_window
        if ok:
            if in_window:
                stats.messages += 1
                latencies.append(answered - sent)
            action, payload = script.send(reply)
        else:
            stats.error("callerror", reply)
            action, payload = script.send(None)


async def _close(ws: ClientConnection) -> None:
    try:
        await ws.close()
    except Exception:  # already gone: nothing left to release
        pass


async def run_shard(cfg: ShardConfig, indices: Iterable[int],
                    on_hold: Callable[[], None] | None = None) -> ShardStats:
    """Run the given stations; call ``on_hold`` when the window is over and connections are held."""
    stats = ShardStats()
    loop = asyncio.get_running_loop()
    thresholds = gc.get_threshold()
    gc.set_threshold(max(thresholds[0], YOUNG_THRESHOLD), thresholds[1], NO_FULL_COLLECTION)
    gc.freeze()
    freezer = loop.call_at(cfg.window_start, gc.freeze)  # loop.time() is time.monotonic()
    watch = _Watch()
    watchdog = asyncio.create_task(watch.run())
    try:
        tasks = [asyncio.create_task(run_station(cfg, i, stats, watch)) for i in indices]
        connections = [ws for ws in await asyncio.gather(*tasks) if ws is not None]
        stats.held = len(connections)
        if cfg.hold > 0:
            if on_hold is not None:
                on_hold()
            if connections:
                await asyncio.sleep(cfg.hold)
        await asyncio.gather(*(_close(ws) for ws in connections))
    finally:
        watchdog.cancel()
        freezer.cancel()
        gc.unfreeze()
        gc.set_threshold(*thresholds)
    stats.peak_rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux
    return stats
