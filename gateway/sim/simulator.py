"""Load simulator: ``python run.py sim --url ws://HOST:PORT --stations N --duration S ...``.

A client that can load any OCPP 1.6-J central system (this project or another
product). N simulated charge points connect over the ramp, boot, and then keep
one CALL outstanding each for ``warmup + duration`` seconds; the report covers
the measuring window (the last ``duration`` seconds). The per-station protocol
lives in ``gateway.sim.station``; this module parses options, splits the
stations over ``--workers`` processes, merges their counters and reports.

Mixes: ``basic`` (default) sends BootNotification, then Heartbeat and
MeterValues only, which is all the peer baseline answers; ``full`` also sends
StatusNotification for connector 0 and every connector after boot, and runs
transactions (Authorize, StartTransaction, MeterValues, StopTransaction).

Scale: one worker process holds a few thousand connections on one asyncio
loop (no thread per station). ``--workers 0`` (the default) picks one worker
per ``STATIONS_PER_WORKER`` stations, at most one per core, so 10,000 stations
run on 2 workers on a 2-core machine. The open-file limit is raised to the hard
limit (``ulimit -Hn``) before the workers fork; a warning is printed when a
worker's share of the stations does not fit under it.

Latencies reported: ``latency_ms`` (CALL sent -> CALLRESULT, inside the
window), ``connect_latency_ms`` (TCP connect started -> WebSocket upgraded) and
``boot_latency_ms`` (TCP connect started -> BootNotification answered), per
station. Run with ``--ramp 0`` to see the latter under a connection storm, and
a ``--warmup`` long enough for every station to boot before the window opens
(``booted_late`` counts those that did not: the window then overlaps the storm).

With ``--json``, stderr also carries one ``SIM-WINDOW <start> <end>`` line
(``time.monotonic()`` values, system-wide on Linux) before any station connects,
so that a benchmark can sample the central system's CPU over the window.

Exit codes (CONTROL.md): 0 the simulation ran (even with errors, which are
reported), 2 usage error, 6 not a single station could connect.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing
import os
import queue
import resource
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from gateway.sim.station import MIXES, ShardConfig, ShardStats, run_shard

# Written to stderr (one line) once the window is over and, with --hold, the
# connections are held open: the benchmark samples memory when it sees it.
HOLD_MARKER = "SIM-HOLDING"
# Written to stderr as "SIM-WINDOW <start> <end>" (monotonic seconds) before the run.
WINDOW_MARKER = "SIM-WINDOW"
# Stations one worker process is given before another worker is added (auto mode).
STATIONS_PER_WORKER = 2500
# File descriptors a worker needs beyond one per station (event loop, pipes, stdio).
FD_MARGIN = 64

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_UNREACHABLE = 6


@dataclass(frozen=True)
class SimOptions:
    """One simulation run; the command-line flags map one to one."""

    url: str
    stations: int
    duration: float
    rate: float = 0.0
    ramp: float = 0.0
    warmup: float = 1.0
    hold: float = 0.0
    workers: int = 0  # 0: auto_workers(stations)
    prefix: str = "SIM"
    connectors: int = 2
    password: str | None = None
    mix: str = "basic"
    ca: str | None = None  # CA bundle a wss:// central system's certificate chains to
    timeout: float = 30.0
    id_tag: str = "SIMTAG"


@dataclass(frozen=True)
class SimReport:
    """What a run measured; ``to_json`` is the ``--json`` document."""

    options: SimOptions
    duration_s: float
    stats: ShardStats
    client_cpu_s: float = 0.0  # CPU the simulator itself used (all workers), whole run
    workers: int = 1  # processes actually used

    @property
    def msg_per_s(self) -> float:
        return self.stats.messages / self.duration_s if self.duration_s > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        s = self.stats
        return {
            "url": self.options.url,
            "stations": self.options.stations,
            "connected": s.connected,
            "booted": s.booted,
            "booted_late": s.booted_late,
            "held": s.held,
            "messages": s.messages,
            "answered": s.answered,
            "duration_s": round(self.duration_s, 3),
            "msg_per_s": round(self.msg_per_s, 1),
            "latency_ms": latency_summary(s.latencies),
            "boot_latency_ms": latency_summary(s.boot_latencies),
            "connect_latency_ms": latency_summary(s.connect_latencies),
            "errors": s.errors,
            "error_kinds": dict(s.error_kinds),
            "error_samples": list(s.error_samples),
            "server_calls": s.server_calls,
            "client_cpu_s": round(self.client_cpu_s, 2),
            "client_peak_rss_kb": s.peak_rss_kb,
            "rate": self.options.rate,
            "ramp_s": self.options.ramp,
            "mix": self.options.mix,
            "workers": self.workers,
        }


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (``q`` in 0..100) of an ascending sequence; None when empty."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(q / 100.0 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def latency_summary(seconds: Sequence[float]) -> dict[str, float | None]:
    """p50/p99/max in milliseconds (None when nothing was measured)."""
    ordered = sorted(seconds)

    def ms(value: float | None) -> float | None:
        return None if value is None else round(value * 1000.0, 3)

    return {"p50": ms(percentile(ordered, 50)), "p99": ms(percentile(ordered, 99)),
            "max": ms(ordered[-1] if ordered else None)}


# --- running --------------------------------------------------------------------


def auto_workers(stations: int, cores: int | None = None) -> int:
    """One worker per STATIONS_PER_WORKER stations (rounded up), at least 1, at most ``cores``."""
    if cores is None:
        cores = len(os.sched_getaffinity(0))
    return max(1, min(math.ceil(stations / STATIONS_PER_WORKER), cores))


def raise_open_file_limit() -> tuple[int, int]:
    """Raise this process's RLIMIT_NOFILE soft limit to the hard limit; return (soft, hard).

    Also used as ``preexec_fn`` by the benchmark for the central systems it starts.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        # An infinite soft NOFILE limit is refused; the kernel's ceiling is nr_open.
        try:
            with open("/proc/sys/fs/nr_open") as f:
                target = int(f.read())
        except (OSError, ValueError):
            target = max(soft, 1 << 20)
    else:
        target = hard
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft, hard


def run(options: SimOptions, *, on_hold: Callable[[], None] | None = None,
        on_window: Callable[[float, float], None] | None = None) -> SimReport:
    """Run one simulation and return its report; never raises for the central system's faults.

    ``on_window(start, end)`` is called with the measuring window (monotonic
    seconds) before the first station connects.
    """
    requested = options.workers or auto_workers(options.stations)
    workers = max(1, min(requested, options.stations))
    cpu_before = _cpu_seconds()
    soft, _ = raise_open_file_limit()
    per_worker = math.ceil(options.stations / workers) + FD_MARGIN
    if soft != resource.RLIM_INFINITY and per_worker > soft:
        print(f"warning: {per_worker} open files needed per worker, limit {soft}: "
              f"stations beyond it will fail to connect; use more --workers",
              file=sys.stderr, flush=True)
    t_start = time.monotonic() + (0.3 if workers > 1 else 0.05)  # time to fork the workers
    window_start = t_start + options.ramp + options.warmup
    cfg = ShardConfig(
        url=options.url, stations=options.stations, prefix=options.prefix,
        connectors=options.connectors, password=options.password, mix=options.mix,
        rate=options.rate, timeout=options.timeout, id_tag=options.id_tag, ca=options.ca,
        t_start=t_start, ramp=options.ramp, window_start=window_start,
        window_end=window_start + options.duration, hold=options.hold,
    )
    if on_window is not None:
        on_window(cfg.window_start, cfg.window_end)
    if workers == 1:
        stats = asyncio.run(run_shard(cfg, range(1, options.stations + 1), on_hold))
    else:
        stats = _run_workers(cfg, workers, on_hold)
    return SimReport(options=options, duration_s=options.duration, stats=stats,
                     client_cpu_s=_cpu_seconds() - cpu_before, workers=workers)


def _cpu_seconds() -> float:
    """User+system CPU of this process and its reaped children (the workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _worker(cfg: ShardConfig, indices: range, number: int, results: Any) -> None:
    """Body of one worker process: run a shard, send ("hold"|"result"|"failed", number, ...)."""
    try:
        stats = asyncio.run(run_shard(cfg, indices, lambda: results.put(("hold", number, None))))
        results.put(("result", number, stats))
    except BaseException as exc:  # report, never die silently
        results.put(("failed", number, repr(exc)))


def _run_workers(cfg: ShardConfig, workers: int,
                 on_hold: Callable[[], None] | None) -> ShardStats:
    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()
    procs = [
        ctx.Process(target=_worker, name=f"sim-worker-{w}", daemon=True,
                    args=(cfg, range(w + 1, cfg.stations + 1, workers), w, results))
        for w in range(workers)
    ]
    for proc in procs:
        proc.start()
    merged = ShardStats()
    done: set[int] = set()
    held: set[int] = set()
    deadline = cfg.window_end + 2 * cfg.timeout + cfg.hold + 30
    try:
        while len(done) < workers and time.monotonic() < deadline:
            try:
                kind, number, payload = results.get(timeout=1.0)
            except queue.Empty:
                for w, proc in enumerate(procs):
                    if w not in done and not proc.is_alive():
                        done.add(w)
                        merged.error("worker", f"worker {w} exited with {proc.exitcode}")
                continue
            if kind == "hold":
                held.add(number)
                if len(held) == workers and on_hold is not None:
                    on_hold()
            elif kind == "result":
                done.add(number)
                merged.merge(payload)
            else:
                done.add(number)
                merged.error("worker", f"worker {number} failed: {payload}")
        for w in set(range(workers)) - done:
            merged.error("worker", f"worker {w} gave no result before the deadline")
    finally:
        for proc in procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=5)
    return merged


# --- command line ---------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="run.py sim",
        description="Simulate OCPP 1.6-J charge points against a central system and "
                    "measure throughput and latency.")
    p.add_argument("--url", default="ws://127.0.0.1:9000",
                   help="central system base URL; stations connect to URL/<prefix><n>")
    p.add_argument("--stations", type=int, default=10, help="number of simulated stations")
    p.add_argument("--duration", type=float, default=10.0,
                   help="seconds of the measuring window")
    p.add_argument("--rate", type=float, default=0.0,
                   help="messages per second per station; 0: as fast as answers come")
    p.add_argument("--ramp", type=float, default=0.0,
                   help="seconds over which connections are spread evenly")
    p.add_argument("--warmup", type=float, default=1.0,
                   help="seconds after the ramp before the measuring window opens")
    p.add_argument("--hold", type=float, default=0.0,
                   help=f"keep connections open (idle) this many seconds after the window; "
                        f"'{HOLD_MARKER}' is written to stderr when holding starts")
    p.add_argument("--workers", type=int, default=0,
                   help=f"processes to spread stations over; 0 (default): one per "
                        f"{STATIONS_PER_WORKER} stations, at most one per core")
    p.add_argument("--prefix", default="SIM", help="charge point id prefix")
    p.add_argument("--connectors", type=int, default=2, help="connectors per station")
    p.add_argument("--password", default=None, help="HTTP Basic password (security profile 1)")
    p.add_argument("--ca", default=None, help="CA bundle (PEM) to trust for a wss:// --url (default: the system's)")
    p.add_argument("--mix", choices=MIXES, default="basic",
                   help="basic: Heartbeat+MeterValues (works against the peer); "
                        "full: also StatusNotification and transactions")
    p.add_argument("--timeout", type=float, default=30.0,
                   help="seconds to wait for a connection or an answer")
    p.add_argument("--id-tag", default="SIMTAG", help="idTag used by the full mix")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    return p


def _options(argv: Sequence[str]) -> tuple[SimOptions, bool]:
    parser = _parser()
    a = parser.parse_args(list(argv))
    scheme = urlsplit(a.url).scheme
    problems = [
        (scheme not in ("ws", "wss"), "--url must start with ws:// or wss://"),
        (a.stations < 1, "--stations must be at least 1"),
        (not a.duration > 0, "--duration must be positive"),
        (not a.rate >= 0, "--rate must not be negative"),
        (not a.ramp >= 0 or not a.warmup >= 0 or not a.hold >= 0,
         "--ramp, --warmup and --hold must not be negative"),
        (a.workers < 0, "--workers must not be negative"),
        (a.connectors < 1, "--connectors must be at least 1"),
        (not a.timeout > 0, "--timeout must be positive"),
    ]
    for bad, message in problems:
        if bad:
            parser.error(message)  # exits with 2
    return SimOptions(
        url=a.url, stations=a.stations, duration=a.duration, rate=a.rate, ramp=a.ramp,
        warmup=a.warmup, hold=a.hold, workers=a.workers, prefix=a.prefix,
        connectors=a.connectors, password=a.password, mix=a.mix, timeout=a.timeout,
        id_tag=a.id_tag, ca=a.ca,
    ), a.json


def format_report(doc: dict[str, Any]) -> str:
    """The human-readable table for a ``to_json`` document."""

    def ms(summary: dict[str, float | None], key: str) -> str:
        value = summary.get(key)
        return "-" if value is None else f"{value:.2f}"

    lat, boot, conn = doc["latency_ms"], doc["boot_latency_ms"], doc["connect_latency_ms"]
    lines = [
        f"stations    {doc['stations']}  (connected {doc['connected']}, booted {doc['booted']})"
        + (f"\n  warning: {doc['booted_late']} booted after the window opened (raise --warmup)"
           if doc.get("booted_late") else ""),
        f"messages    {doc['messages']} in {doc['duration_s']:g} s  =  {doc['msg_per_s']:.1f} msg/s",
        f"latency ms  p50 {ms(lat, 'p50')}  p99 {ms(lat, 'p99')}  max {ms(lat, 'max')}",
        f"connect ms  p50 {ms(conn, 'p50')}  p99 {ms(conn, 'p99')}  max {ms(conn, 'max')}"
        "  (TCP connect -> upgraded)",
        f"boot ms     p50 {ms(boot, 'p50')}  p99 {ms(boot, 'p99')}  max {ms(boot, 'max')}"
        "  (TCP connect -> BootNotification answered)",
        f"client      cpu {doc['client_cpu_s']:.2f} s, peak rss {doc['client_peak_rss_kb'] / 1024:.0f} MB"
        f" ({doc['workers']} worker{'s' if doc['workers'] != 1 else ''})",
        f"errors      {doc['errors']}"
        + (f"  {doc['error_kinds']}" if doc["errors"] else ""),
    ]
    lines += [f"  {sample}" for sample in doc["error_samples"]]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    """Entry point of ``run.py sim``; returns the exit code."""
    try:
        options, as_json = _options(argv)
    except SystemExit as exc:  # argparse: usage error (2) or --help (0)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE

    def announce_hold() -> None:
        print(HOLD_MARKER, file=sys.stderr, flush=True)

    def announce_window(start: float, end: float) -> None:
        print(f"{WINDOW_MARKER} {start:.6f} {end:.6f}", file=sys.stderr, flush=True)

    try:
        report = run(options, on_hold=announce_hold,
                     on_window=announce_window if as_json else None)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    doc = report.to_json()
    if as_json:
        print(json.dumps(doc))
    else:
        print(format_report(doc))
    if report.stats.connected == 0:
        if not as_json:
            print("no station could connect", file=sys.stderr)
        return EXIT_UNREACHABLE
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
