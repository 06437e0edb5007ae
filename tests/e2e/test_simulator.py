"""The load simulator and the benchmark, over real sockets.

The peer baseline (gateway/sim/peer_central_system.py, shipped with the project) runs as a subprocess on
a free port; a small in-test central system that answers every 1.6 action
covers the ``full`` mix, which the peer does not answer.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.typing import Subprotocol

from gateway.sim import bench, simulator
from gateway.sim.ports import free_port
from gateway.sim.simulator import HOLD_MARKER, SimOptions
from gateway.sim.station import utc_now

PEER = bench.DEFAULT_PEER
START_DEADLINE = 20.0


def wait_for_port(port: int, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + START_DEADLINE
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"port {port} not listening after {START_DEADLINE} s")


@pytest.fixture(scope="module")
def peer_url() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(PEER), str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, proc)
        yield f"ws://127.0.0.1:{port}"
    finally:
        proc.kill()
        proc.wait(timeout=10)


class CompleteCentralSystem:
    """Answers every charge-point-initiated 1.6 action; asks each station GetConfiguration once."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"ws://127.0.0.1:{self.port}"
        self.actions: dict[str, int] = {}
        self.authorization: list[str] = []
        self.config_answers: list[object] = []
        self._ready = threading.Event()
        self._stop: asyncio.Future | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tx = itertools.count(1)
        self._thread = threading.Thread(target=asyncio.run, args=(self._main(),), daemon=True)

    def __enter__(self) -> CompleteCentralSystem:
        self._thread.start()
        assert self._ready.wait(START_DEADLINE)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set_result, None)
        self._thread.join(timeout=10)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = self._loop.create_future()
        async with serve(self._handler, "127.0.0.1", self.port, subprotocols=[Subprotocol("ocpp1.6")]):
            self._ready.set()
            await self._stop

    def _result(self, action: str) -> dict[str, object]:
        tag: dict[str, object] = {"idTagInfo": {"status": "Accepted"}}
        results: dict[str, dict[str, object]] = {
            "BootNotification": {"status": "Accepted", "currentTime": utc_now(), "interval": 300},
            "Heartbeat": {"currentTime": utc_now()},
            "Authorize": tag,
            "StartTransaction": {"transactionId": next(self._tx), **tag},
            "StopTransaction": tag,
        }
        return results.get(action, {})

    async def _handler(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        self.authorization.append(ws.request.headers.get("Authorization", ""))
        asked = False
        async for raw in ws:
            frame = json.loads(raw)
            if frame[0] == 3:
                self.config_answers.append(frame[2])
                continue
            _, uid, action, _payload = frame
            self.actions[action] = self.actions.get(action, 0) + 1
            await ws.send(json.dumps([3, uid, self._result(action)]))
            if action == "BootNotification" and not asked:
                asked = True
                await ws.send(json.dumps([2, "cs-1", "GetConfiguration", {}]))


# --- against the peer -------------------------------------------------------------


def test_simulated_stations_boot_and_exchange_messages_with_the_peer(peer_url: str) -> None:
    report = simulator.run(SimOptions(url=peer_url, stations=5, duration=1.0, warmup=0.2))
    doc = report.to_json()
    assert doc["booted"] == 5
    assert doc["messages"] > 0
    assert doc["errors"] == 0, doc["error_samples"]
    assert doc["msg_per_s"] == pytest.approx(doc["messages"] / 1.0)
    lat = doc["latency_ms"]
    assert 0 < lat["p50"] <= lat["p99"] <= lat["max"]
    assert doc["boot_latency_ms"]["p50"] > 0
    # boot latency runs from the TCP connect, so it includes the connect latency
    assert 0 < doc["connect_latency_ms"]["max"] <= doc["boot_latency_ms"]["max"]
    assert doc["answered"] == doc["messages"] and doc["workers"] == 1


def test_json_output_with_two_workers_is_one_document_and_announces_the_hold(
        peer_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = simulator.main(["--url", peer_url, "--stations", "4", "--duration", "1",
                           "--warmup", "0.2", "--workers", "2", "--hold", "0.2", "--json"])
    out, err = capsys.readouterr()
    assert code == 0
    doc = json.loads(out)
    assert (doc["stations"], doc["booted"], doc["held"], doc["errors"]) == (4, 4, 4, 0)
    assert doc["messages"] > 0 and doc["latency_ms"]["p99"] is not None
    assert HOLD_MARKER in err.splitlines()


def test_rate_limits_each_station_to_r_messages_per_second(peer_url: str) -> None:
    report = simulator.run(SimOptions(url=peer_url, stations=3, duration=1.0, warmup=0.2,
                                      rate=10))
    # 3 stations x 10/s x 1 s = 30 in the window, give or take the edges.
    assert 20 <= report.stats.messages <= 40
    assert report.stats.errors == 0


def test_callerrors_from_the_peer_in_the_full_mix_are_counted_not_fatal(peer_url: str) -> None:
    report = simulator.run(SimOptions(url=peer_url, stations=2, duration=0.5, warmup=0.1,
                                      mix="full"))
    assert report.stats.booted == 2
    assert report.stats.errors > 0
    assert report.stats.error_kinds["callerror"] == report.stats.errors
    assert any("NotImplemented" in sample for sample in report.stats.error_samples)
    assert report.stats.messages > 0  # MeterValues and Heartbeat still answered


# --- against a central system that answers everything ------------------------------


def test_full_mix_runs_transactions_without_errors_and_sends_basic_auth() -> None:
    with CompleteCentralSystem() as cs:
        report = simulator.run(SimOptions(url=cs.url, stations=2, duration=0.8, warmup=0.1,
                                          mix="full", password="s3cret", connectors=2))
    assert report.stats.errors == 0, report.stats.error_samples
    assert report.stats.booted == 2
    for action in ("StatusNotification", "Authorize", "StartTransaction", "MeterValues",
                   "StopTransaction", "Heartbeat"):
        assert cs.actions.get(action, 0) > 0, action
    # connector 0 and both connectors reported Available after boot, per station
    assert cs.actions["StatusNotification"] >= 2 * 3
    assert report.stats.server_calls == 2
    assert cs.config_answers == [{"configurationKey": [], "unknownKey": []}] * 2
    decoded = sorted(base64.b64decode(h.split()[1]).decode() for h in cs.authorization)
    assert decoded == ["SIM1:s3cret", "SIM2:s3cret"]


def test_bench_measures_the_peer_end_to_end(capsys: pytest.CaptureFixture[str]) -> None:
    code = bench.main(["--only", "peer", "--sizes", "4", "--duration", "0.5", "--ramp", "0",
                       "--warmup", "0.1", "--hold", "0.5", "--peer", str(PEER), "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0
    peer = doc["sizes"][0]["peer"]
    assert peer["started"] and peer["error"] is None
    assert peer["sim"]["booted"] == 4 and peer["sim"]["messages"] > 0
    assert peer["pss_loaded_kb"] > 0 and peer["kb_per_station"] is not None


