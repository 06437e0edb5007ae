"""Measure the edge as an attacker would try it (issue 9): ``python -m gateway.sim.edge``.

Starts this central system on free loopback ports (``--hosts`` as given, a
temporary database) and measures, in one run:

1. **bogus identities**: ``--bogus`` plain HTTP requests, each naming another
   identity (as a scanner does), then as many completed upgrades of unknown
   identities that close at once: the station rows and the PSS of the whole
   system before and after each.
2. **password guessing**: one identity with a password, wrong passwords sent
   one after the other for ``--seconds``: attempts answered per second, and
   how many were really checked (401) rather than refused before any hash (429).
3. **a good station during a flood**: ``--flooders`` processes send wrong
   passwords for other identities as fast as they are answered, while a
   station without a password connects and boots ``--samples`` times; its
   handshake-and-boot latency is compared with the same without the flood.

It prints one JSON document. Loopback only, bounded in count and time.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import multiprocessing
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from gateway.sim.bench import settled_pss_kb, start_ours

PASSWORD = "the-right-password"


def _rows(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM stations").fetchone()[0])


def _memory(server: Any) -> dict[str, int]:
    kb, procs = settled_pss_kb(server.proc.pid, server.marker)
    return {"pss_kb": kb, "processes": procs}


def _http_get(port: int, path: str) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as refused:
        return int(refused.code)


async def _attempt(url: str, password: str | None, identity: str) -> tuple[int, Any]:
    headers = {}
    if password is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{identity}:{password}".encode()).decode()
    try:
        ws = await connect(f"{url}/{identity}", subprotocols=["ocpp1.6"],  # type: ignore[list-item]
                           additional_headers=headers, open_timeout=30)
    except InvalidStatus as refused:
        return refused.response.status_code, None
    return 101, ws


async def _boot(url: str, identity: str) -> float:
    started = time.perf_counter()
    status, ws = await _attempt(url, None, identity)
    assert status == 101, status
    await ws.send(json.dumps([2, "1", "BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"}]))
    await ws.recv()
    elapsed = time.perf_counter() - started
    await ws.close()
    return elapsed


async def _boots(url: str, samples: int) -> list[float]:
    return [await _boot(url, "GOOD-1") for _ in range(samples)]


async def _wrong_passwords(url: str, identity: str, seconds: float) -> tuple[dict[int, int], int, float]:
    """Wrong passwords for ``identity``, one after the other, for ``seconds``: (answers by status, attempts, seconds)."""
    counts: dict[int, int] = {}
    started = time.monotonic()
    n = 0
    while time.monotonic() < started + seconds:
        n += 1
        status, ws = await _attempt(url, f"wrong-{n}", identity)
        if ws is not None:
            await ws.close()
        counts[status] = counts.get(status, 0) + 1
    return counts, n, time.monotonic() - started


def _flood(url: str, identity: str, seconds: float) -> None:
    asyncio.run(_wrong_passwords(url, identity, seconds))


async def _guess(url: str, identity: str, seconds: float) -> dict[str, Any]:
    counts, n, took = await _wrong_passwords(url, identity, seconds)
    right, ws = await _attempt(url, PASSWORD, identity)
    if ws is not None:
        await ws.close()
    return {"attempts": n, "seconds": round(took, 1), "attempts_per_s": round(n / took, 1),
            "answers": {str(k): v for k, v in sorted(counts.items())},
            "checked_guesses_per_s": round(counts.get(401, 0) / took, 2),
            "right_password_right_after": right}


def _summary(latencies: list[float]) -> dict[str, float]:
    ms = sorted(x * 1000 for x in latencies)
    return {"n": len(ms), "p50_ms": round(statistics.median(ms), 1), "max_ms": round(ms[-1], 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway.sim.edge", description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=2, help="station-host processes of the system measured")
    parser.add_argument("--bogus", type=int, default=1000, help="bogus identities of each kind")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the guessing run")
    parser.add_argument("--flooders", type=int, default=4, help="processes sending wrong passwords in the flood")
    parser.add_argument("--samples", type=int, default=20, help="boots of the good station, with and without the flood")
    opts = parser.parse_args(argv)
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        db = workdir / "csms.db"
        server = start_ours(workdir, db, "edge", extra=["--hosts", str(opts.hosts)])
        url = f"ws://127.0.0.1:{server.port}"
        try:
            ctl = [str(Path(__file__).resolve().parents[2] / "run.py"), "ctl", "--admin-port",
                   server.marker.split("=")[1] if server.marker else "1900"]
            def run_ctl(*args: str) -> None:
                subprocess.run([sys.executable, *ctl, *args], check=True, capture_output=True, timeout=60)

            out["idle"] = dict(_memory(server), station_rows=_rows(db))
            statuses = [_http_get(server.port, f"/ocpp/SCAN-{n}") for n in range(opts.bogus)]
            out["after_plain_http"] = dict(_memory(server), station_rows=_rows(db),
                                           answers={str(s): statuses.count(s) for s in sorted(set(statuses))})

            async def upgrades() -> list[int]:
                got = []
                for n in range(opts.bogus):
                    status, ws = await _attempt(url, None, f"BOGUS-{n}")
                    if ws is not None:
                        await ws.close()
                    got.append(status)
                return got

            upgraded = asyncio.run(upgrades())
            out["after_upgrades_of_unknown_identities"] = dict(
                _memory(server), station_rows=_rows(db), answers={str(s): upgraded.count(s) for s in sorted(set(upgraded))})

            run_ctl("station", "add", "GUESS-1", "--password", PASSWORD)
            out["guessing"] = asyncio.run(_guess(url, "GUESS-1", opts.seconds))

            out["good_station_quiet"] = _summary(asyncio.run(_boots(url, opts.samples)))
            for n in range(opts.flooders):
                run_ctl("station", "add", f"VICTIM-{n}", "--password", PASSWORD)
            flood_s = 120.0
            flooders = [multiprocessing.Process(target=_flood, args=(url, f"VICTIM-{n}", flood_s), daemon=True)
                        for n in range(opts.flooders)]
            for proc in flooders:
                proc.start()
            time.sleep(2.0)  # the flood is under way (a benchmark, not a test)
            out["good_station_during_flood"] = _summary(asyncio.run(_boots(url, opts.samples)))
            for proc in flooders:
                proc.terminate()
                proc.join(5)
        finally:
            server.stop()
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
