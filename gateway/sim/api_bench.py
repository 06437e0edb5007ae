"""Does the HTTP API keep up with the data plane? (issue 11): ``python -m gateway.sim.api_bench``.

Starts this central system on free loopback ports, makes a read key, loads
``--stations`` simulated charge points in a closed loop (every station has one
CALL outstanding at all times) and, while they run, asks ``GET
/api/v1/stations`` (every station, as JSON) over and over from one client,
``--interval`` seconds apart. Prints the simulator's msg/s and the API's
latency p50/p99/max over the window, as one JSON document with ``--json``.
Loopback only, bounded in count and time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from gateway.sim.bench import REPO, start_ours


def _ctl(server: Any, *args: str) -> Any:
    admin_port = server.marker.split("=")[1]
    done = subprocess.run([sys.executable, str(REPO / "run.py"), "ctl", "--admin-port", admin_port, "--json", *args],
                          capture_output=True, text=True, timeout=60, check=True)
    return json.loads(done.stdout)


def _api_port(server: Any) -> int:
    argv = server.proc.args
    return int(argv[argv.index("--api-port") + 1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway.sim.api_bench", description=__doc__.splitlines()[0])
    parser.add_argument("--stations", type=int, default=1000, help="simulated stations, closed loop")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of the measuring window")
    parser.add_argument("--interval", type=float, default=0.1, help="seconds between two API requests")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    opts = parser.parse_args(argv)
    latencies: list[float] = []
    sizes: list[int] = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        server = start_ours(workdir, workdir / "csms.db", "api", extra=["--log-level", "WARNING"])
        try:
            key = _ctl(server, "api-key", "create", "bench", "--scope", "read")["key"]
            url = f"http://127.0.0.1:{_api_port(server)}/api/v1/stations"
            request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"})
            ramp, warmup = 5.0, 2.0
            sim = subprocess.Popen(
                [sys.executable, "-m", "gateway.sim.simulator", "--url", f"ws://127.0.0.1:{server.port}",
                 "--stations", str(opts.stations), "--duration", str(opts.duration), "--ramp", str(ramp),
                 "--warmup", str(warmup), "--json"],
                cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            window = threading.Event()
            start = time.monotonic() + ramp + warmup + 1.0
            end = start + opts.duration - 1.0
            while time.monotonic() < start:
                time.sleep(0.2)
            while time.monotonic() < end:
                began = time.perf_counter()
                with urllib.request.urlopen(request, timeout=10) as answer:
                    body = answer.read()
                latencies.append(time.perf_counter() - began)
                sizes.append(len(json.loads(body)))
                window.wait(max(0.0, opts.interval - (time.perf_counter() - began)))
            out, _ = sim.communicate(timeout=opts.duration + 120)
            doc = json.loads(out)
        finally:
            server.stop()
    ms = sorted(x * 1000 for x in latencies)
    result = {
        "stations": opts.stations, "booted": doc["booted"], "msg_per_s": round(doc["msg_per_s"]),
        "ocpp_p99_ms": doc["latency_ms"].get("p99"), "api_requests": len(ms),
        "stations_listed": max(sizes) if sizes else 0,
        "api_p50_ms": round(statistics.median(ms), 1), "api_p99_ms": round(statistics.quantiles(ms, n=100)[98], 1),
        "api_max_ms": round(ms[-1], 1),
    }
    if opts.json:
        print(json.dumps(result))
    else:
        for name, value in result.items():
            print(f"{name:>16}  {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
