"""What TLS costs this central system (issue 10): ``python -m gateway.sim.tls_bench``.

In one run, on this machine, with throwaway certificates (``gateway.sim.certs``):

1. **handshakes**: ``--storm`` stations connect at once (``--ramp 0``) to a node
   serving plain ws://, then wss:// with an RSA 2048 certificate, then wss://
   with an ECDSA P-256 one. Admitted per second = stations upgraded / the time
   the last upgrade took (each connection runs its TLS handshake and the HTTP
   upgrade; the simulator's clients run theirs on the same two cores).
2. **throughput**: ``--stations`` stations in a closed loop for ``--duration``
   seconds over ws:// and over wss:// (RSA 2048): msg/s and p99.

Prints a table, or one JSON document with ``--json``. Loopback only, bounded.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from gateway.sim.bench import REPO, start_ours
from gateway.sim.certs import issue, make_ca


def _sim(url: str, ca: Path, stations: int, duration: float, ramp: float, prefix: str) -> dict[str, Any]:
    argv = [sys.executable, "-m", "gateway.sim.simulator", "--url", url, "--stations", str(stations),
            "--duration", str(duration), "--ramp", str(ramp), "--warmup", "1", "--prefix", prefix,
            "--ca", str(ca), "--json"]
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=duration + ramp + 180)
    try:
        doc: dict[str, Any] = json.loads(done.stdout)
    except ValueError:
        raise RuntimeError(f"simulator exited {done.returncode}: {done.stderr[-500:]}") from None
    return doc


def _variant(workdir: Path, name: str, tls: list[str]) -> Any:
    return start_ours(workdir, workdir / f"{name}.db", name, extra=[*tls, "--log-level", "WARNING"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway.sim.tls_bench", description=__doc__.splitlines()[0])
    parser.add_argument("--storm", type=int, default=1000, help="stations connecting at once, per variant")
    parser.add_argument("--stations", type=int, default=1000, help="stations of the closed-loop runs")
    parser.add_argument("--duration", type=float, default=15.0, help="seconds of each closed-loop window")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    opts = parser.parse_args(argv)
    out: dict[str, Any] = {"handshakes": {}, "closed_loop": {}}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        ca = make_ca(workdir)
        rsa = issue(ca, workdir, "rsa", "localhost", server=True, kind="rsa2048")
        ec = issue(ca, workdir, "ec", "localhost", server=True, kind="ec")
        variants = {"ws": [], "wss-rsa2048": ["--tls-cert", str(rsa.cert), "--tls-key", str(rsa.key)],
                    "wss-ecdsa-p256": ["--tls-cert", str(ec.cert), "--tls-key", str(ec.key)]}
        for name, tls in variants.items():
            server = _variant(workdir, name, tls)
            scheme = "wss" if tls else "ws"
            try:
                storm = _sim(f"{scheme}://127.0.0.1:{server.port}", ca.cert, opts.storm, 2.0, 0.0, "STORM")
                connect = storm["connect_latency_ms"]
                last_s = (connect.get("max") or 0) / 1000
                out["handshakes"][name] = {
                    "stations": opts.storm, "upgraded": storm["connected"], "booted": storm["booted"],
                    "connect_p50_ms": connect.get("p50"), "connect_p99_ms": connect.get("p99"),
                    "last_upgrade_s": round(last_s, 2),
                    "admitted_per_s": round(storm["connected"] / last_s) if last_s else None,
                    "errors": storm["errors"],
                }
                if name != "wss-ecdsa-p256":
                    loop = _sim(f"{scheme}://127.0.0.1:{server.port}", ca.cert, opts.stations, opts.duration, 5.0, "LOOP")
                    out["closed_loop"][name] = {"stations": opts.stations, "booted": loop["booted"],
                                                "msg_per_s": round(loop["msg_per_s"]),
                                                "p99_ms": loop["latency_ms"].get("p99"), "errors": loop["errors"]}
            finally:
                server.stop()
    loops = out["closed_loop"]
    if loops.get("ws", {}).get("msg_per_s") and "wss-rsa2048" in loops:
        out["wss_over_ws_msg_per_s"] = round(loops["wss-rsa2048"]["msg_per_s"] / loops["ws"]["msg_per_s"], 2)
    if opts.json:
        print(json.dumps(out))
        return 0
    print("handshakes (all at once)       upgraded  admitted/s  connect p50  p99 ms  errors")
    for name, row in out["handshakes"].items():
        print(f"  {name:<28} {row['upgraded']:>8}  {row['admitted_per_s'] or '-':>10}  {row['connect_p50_ms']:>11}  "
              f"{row['connect_p99_ms']:>6}  {row['errors']}")
    print(f"closed loop, {opts.stations} stations       msg/s   p99 ms  errors")
    for name, row in loops.items():
        print(f"  {name:<28} {row['msg_per_s']:>7}  {row['p99_ms']:>7}  {row['errors']}")
    if "wss_over_ws_msg_per_s" in out:
        print(f"wss / ws msg/s: {out['wss_over_ws_msg_per_s']}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
