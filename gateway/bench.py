"""Side-by-side benchmark: ``python run.py bench [--sizes 200,1000] [--duration 20] ...``.

For each size, in one run on this machine: start the peer baseline
(``shared/bench/peer_central_system.py``) on a free port, load it with the
simulator, stop it; then start this project (``run.py serve`` on free ports with
a fresh database in a temporary directory), load it with the same parameters,
stop it. Absolute figures are noisy; the ratio ours/peer is the result.

Memory per station = (PSS while the simulated stations are connected - PSS
before the load) / stations still connected after the window. The loaded
sample is taken when the simulator announces that it holds its connections
open after the window (``--hold``). Our processes are found by the ``CSMS_INSTANCE=<admin-port>``
environment entry every process of the system carries (the benchmark sets it
on ``run.py serve``; forked actors and the setsid'ed Thespian admin inherit it),
plus the descendants of the ``serve`` process.

Exit codes: 0 done (errors are reported, not fatal), 1 a simulator run failed or
no station booted,
6 a central system failed to start.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.ports import free_ports
from gateway.simulator import HOLD_MARKER

REPO = Path(__file__).resolve().parents[1]
DEFAULT_PEER = REPO.parent / "shared" / "bench" / "peer_central_system.py"
START_DEADLINE = 60.0
STOP_GRACE = 15.0
HOST = "127.0.0.1"

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NOT_STARTED = 6


class StartFailed(Exception):
    """Raised when a central system does not accept connections before the deadline."""


# --- processes and memory -------------------------------------------------------------


def wait_for_port(port: int, proc: subprocess.Popen, deadline: float) -> None:
    """Poll until ``port`` accepts TCP connections; StartFailed if ``proc`` dies or time runs out."""
    while True:
        if proc.poll() is not None:
            raise StartFailed(f"exited with status {proc.returncode} before listening")
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise StartFailed(f"port {port} not accepting connections after {START_DEADLINE:g} s")
        time.sleep(0.1)


def pss_kb(pid: int) -> int:
    """Proportional set size of one process in kB (0 if it is gone or unreadable)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _all_pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _parent(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return 0


def _has_env(pid: int, entry: bytes) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return entry in f.read().split(b"\0")
    except OSError:
        return False


def system_pids(root: int, marker: str | None) -> set[int]:
    """``root``, its descendants, and (when given) every process whose environment holds ``marker``."""
    pids = _all_pids()
    parents = {pid: _parent(pid) for pid in pids}
    found = {root} if root in parents else set()
    changed = True
    while changed:
        changed = False
        for pid, ppid in parents.items():
            if ppid in found and pid not in found:
                found.add(pid)
                changed = True
    if marker:
        entry = marker.encode()
        found.update(pid for pid in pids if pid != os.getpid() and _has_env(pid, entry))
    return found


def total_pss_kb(pids: set[int]) -> int:
    return sum(pss_kb(pid) for pid in pids)


def idle_pss_kb(root: int, marker: str | None, deadline_s: float = 5.0) -> tuple[int, int]:
    """(PSS kB, process count) once the set of processes stopped changing (actors may
    still be starting)."""
    deadline = time.monotonic() + deadline_s
    previous = system_pids(root, marker)
    while time.monotonic() < deadline:
        time.sleep(0.5)
        current = system_pids(root, marker)
        if current == previous:
            break
        previous = current
    return total_pss_kb(previous), len(previous)


@dataclass
class Server:
    """A central system started by the benchmark."""

    name: str
    proc: subprocess.Popen
    port: int
    marker: str | None
    log: Path

    def stop(self) -> None:
        """SIGTERM, wait up to STOP_GRACE, then SIGKILL the process group and marked stragglers."""
        stragglers = system_pids(self.proc.pid, self.marker)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_GRACE)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(timeout=5)
        if self.marker:
            # Thespian's admin leaves our process group (setsid): end the ones we started, by pid.
            for pid in stragglers & system_pids(self.proc.pid, self.marker):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def start_server(name: str, argv: list[str], port: int, log: Path,
                 marker: str | None = None) -> Server:
    env = dict(os.environ)
    if marker:
        key, _, value = marker.partition("=")
        env[key] = value
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    server = Server(name=name, proc=proc, port=port, marker=marker, log=log)
    try:
        wait_for_port(port, proc, time.monotonic() + START_DEADLINE)
    except StartFailed:
        server.stop()
        raise
    return server


# --- one measurement ----------------------------------------------------------------


@dataclass
class Measurement:
    system: str
    sim: dict[str, Any] | None = None
    pss_idle_kb: int | None = None
    pss_loaded_kb: int | None = None
    procs_idle: int | None = None
    procs_loaded: int | None = None
    error: str | None = None
    started: bool = True

    @property
    def kb_per_station(self) -> float | None:
        if self.sim is None or self.pss_idle_kb is None or self.pss_loaded_kb is None:
            return None
        held = self.sim.get("held") or 0  # connections open when the sample was taken
        return (self.pss_loaded_kb - self.pss_idle_kb) / held if held else None

    def to_json(self) -> dict[str, Any]:
        kb = self.kb_per_station
        return {"system": self.system, "started": self.started, "error": self.error,
                "pss_idle_kb": self.pss_idle_kb, "pss_loaded_kb": self.pss_loaded_kb,
                "processes_idle": self.procs_idle, "processes_loaded": self.procs_loaded,
                "kb_per_station": None if kb is None else round(kb, 1), "sim": self.sim}


@dataclass(frozen=True)
class BenchOptions:
    sizes: tuple[int, ...]
    duration: float
    ramp: float
    warmup: float
    hold: float
    workers: int
    rate: float
    mix: str
    peer: Path
    as_json: bool
    systems: tuple[str, ...] = field(default=("peer", "ours"))


def run_simulator(url: str, stations: int, opts: BenchOptions,
                  on_hold: Callable[[], None]) -> dict[str, Any]:
    """Run the simulator as a subprocess; call ``on_hold`` when it holds its connections."""
    argv = [sys.executable, "-m", "gateway.simulator", "--url", url, "--stations", str(stations),
            "--duration", str(opts.duration), "--ramp", str(opts.ramp),
            "--warmup", str(opts.warmup), "--hold", str(opts.hold),
            "--workers", str(opts.workers), "--rate", str(opts.rate), "--mix", opts.mix,
            "--json"]
    proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True)
    stdout_chunks: list[str] = []
    stderr_lines: list[str] = []

    def read_stdout() -> None:
        assert proc.stdout is not None
        stdout_chunks.append(proc.stdout.read())

    def watch_stderr() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            if line.strip() == HOLD_MARKER:
                on_hold()
            else:
                stderr_lines.append(line)

    readers = [threading.Thread(target=read_stdout, daemon=True),
               threading.Thread(target=watch_stderr, daemon=True)]
    for reader in readers:
        reader.start()
    limit = opts.ramp + opts.warmup + opts.duration + opts.hold + 120
    try:
        proc.wait(timeout=limit)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise RuntimeError(f"simulator did not finish within {limit:g} s") from None
    finally:
        for reader in readers:
            reader.join(timeout=5)
    stdout = "".join(stdout_chunks)
    try:
        return json.loads(stdout)
    except ValueError:
        raise RuntimeError(f"simulator exited {proc.returncode}: "
                           f"{''.join(stderr_lines)[-500:]}") from None


def measure(system: str, stations: int, opts: BenchOptions, workdir: Path) -> Measurement:
    """Start ``system`` ("peer" or "ours"), load it, sample memory, stop it."""
    result = Measurement(system=system)
    if system == "peer":
        port, = free_ports(1, HOST)
        argv = [sys.executable, str(opts.peer), str(port)]
        marker = None
    else:
        port, metrics_port, admin_port = free_ports(3, HOST)
        argv = [sys.executable, str(REPO / "run.py"), "serve", "--host", HOST,
                "--port", str(port), "--metrics-port", str(metrics_port),
                "--admin-port", str(admin_port), "--db", str(workdir / f"bench-{stations}.db"),
                "--log-level", "WARNING",
                # The peer has no flood limit, and while the ramp has connected only a
                # few stations each of them, in closed loop, sends over 1000 CALLs/s.
                "--max-call-rate", "0"]
        marker = f"CSMS_INSTANCE={admin_port}"
    log = workdir / f"{system}-{stations}.log"
    try:
        server = start_server(system, argv, port, log, marker)
    except (StartFailed, OSError) as exc:
        result.started = False
        result.error = f"{system} failed to start: {exc}"
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        print(f"{result.error}\n{tail}", file=sys.stderr)
        return result
    try:
        result.pss_idle_kb, result.procs_idle = idle_pss_kb(server.proc.pid, marker)

        def sample() -> None:
            pids = system_pids(server.proc.pid, marker)
            result.pss_loaded_kb, result.procs_loaded = total_pss_kb(pids), len(pids)

        try:
            result.sim = run_simulator(f"ws://{HOST}:{port}", stations, opts, sample)
        except RuntimeError as exc:
            result.error = str(exc)
        if result.sim is not None and not result.sim.get("booted"):
            result.error = f"no station booted at {system}: {result.sim['error_samples'][:1]}"
        if server.proc.poll() is not None:
            result.error = (result.error or "") + f" {system} exited during the run"
    finally:
        server.stop()
    return result


# --- report ------------------------------------------------------------------------


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def size_summary(stations: int, runs: dict[str, Measurement]) -> dict[str, Any]:
    peer, ours = runs.get("peer"), runs.get("ours")

    def sim(m: Measurement | None, *keys: str) -> Any:
        value: Any = m.sim if m is not None else None
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        return value

    return {
        "stations": stations,
        "peer": peer.to_json() if peer else None,
        "ours": ours.to_json() if ours else None,
        "ratio_msg_per_s": _ratio(sim(ours, "msg_per_s"), sim(peer, "msg_per_s")),
        "ratio_p99": _ratio(sim(ours, "latency_ms", "p99"), sim(peer, "latency_ms", "p99")),
    }


def format_table(summaries: Sequence[dict[str, Any]]) -> str:
    def num(value: Any, fmt: str) -> str:
        return "-" if value is None else format(value, fmt)

    head = (f"{'stations':>8} {'system':>6} {'booted':>7} {'msg/s':>9} {'p50 ms':>8} "
            f"{'p99 ms':>8} {'errors':>7} {'KB/stn':>7}")
    lines = [head, "-" * len(head)]
    for s in summaries:
        for name in ("peer", "ours"):
            m = s[name]
            if m is None:
                continue
            sim = m["sim"] or {}
            lat = sim.get("latency_ms") or {}
            lines.append(
                f"{s['stations']:>8} {name:>6} {num(sim.get('booted'), 'd'):>7} "
                f"{num(sim.get('msg_per_s'), '.1f'):>9} {num(lat.get('p50'), '.2f'):>8} "
                f"{num(lat.get('p99'), '.2f'):>8} {num(sim.get('errors'), 'd'):>7} "
                f"{num(m['kb_per_station'], '.1f'):>7}"
                + "".join(f"  {kind}x{n}" for kind, n in (sim.get("error_kinds") or {}).items())
                + (f"  {m['error']}" if m["error"] else ""))
        lines.append(f"{'':>8} {'ours/peer':>9}  msg/s x{num(s['ratio_msg_per_s'], '.2f')}"
                     f"  p99 x{num(s['ratio_p99'], '.2f')}")
    return "\n".join(lines)


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of integers: {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError("sizes must be positive integers")
    return sizes


def _options(argv: Sequence[str]) -> BenchOptions:
    p = argparse.ArgumentParser(prog="run.py bench",
                                description="Benchmark this central system against the peer "
                                            "baseline, side by side in one run.")
    p.add_argument("--sizes", type=_sizes, default=(200, 1000), help="station counts, e.g. 200,1000")
    p.add_argument("--duration", type=float, default=20.0, help="measuring window, seconds")
    p.add_argument("--ramp", type=float, default=10.0, help="seconds to spread connections over")
    p.add_argument("--warmup", type=float, default=1.0, help="seconds between ramp and window")
    p.add_argument("--hold", type=float, default=3.0,
                   help="seconds the stations stay connected after the window (memory sample)")
    p.add_argument("--workers", type=int, default=1, help="simulator processes")
    p.add_argument("--rate", type=float, default=0.0,
                   help="messages per second per station (0: closed loop, full speed)")
    p.add_argument("--mix", choices=("basic", "full"), default="basic",
                   help="message mix (the peer answers only the basic one)")
    p.add_argument("--peer", type=Path, default=DEFAULT_PEER, help="peer central system script")
    p.add_argument("--only", choices=("peer", "ours"), default=None,
                   help="benchmark one system only")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    a = p.parse_args(list(argv))
    if not a.duration > 0 or a.ramp < 0 or a.warmup < 0 or a.hold <= 0 or a.workers < 1 \
            or a.rate < 0:
        p.error("--duration and --hold must be positive, --workers at least 1, "
                "--ramp, --warmup and --rate not negative")
    if (a.only in (None, "peer")) and not a.peer.is_file():
        p.error(f"peer script not found: {a.peer} (use --peer PATH)")
    return BenchOptions(sizes=a.sizes, duration=a.duration, ramp=a.ramp, warmup=a.warmup,
                        hold=a.hold, workers=a.workers, rate=a.rate, mix=a.mix,
                        peer=a.peer.resolve(), as_json=a.json,
                        systems=(a.only,) if a.only else ("peer", "ours"))


def main(argv: list[str]) -> int:
    """Entry point of ``run.py bench``; returns the exit code."""
    try:
        opts = _options(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    summaries = []
    not_started = failed = False
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="csms-bench-")))
        for stations in opts.sizes:
            runs: dict[str, Measurement] = {}
            for system in opts.systems:
                if not opts.as_json:
                    print(f"... {system}, {stations} stations", file=sys.stderr, flush=True)
                m = measure(system, stations, opts, workdir)
                runs[system] = m
                not_started |= not m.started
                failed |= m.error is not None
            summaries.append(size_summary(stations, runs))
    if opts.as_json:
        print(json.dumps({"duration_s": opts.duration, "ramp_s": opts.ramp, "rate": opts.rate,
                          "workers": opts.workers, "mix": opts.mix, "sizes": summaries}))
    else:
        print(format_table(summaries))
    if not_started:
        return EXIT_NOT_STARTED
    return EXIT_FAILED if failed else EXIT_OK


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
