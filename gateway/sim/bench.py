"""Side-by-side benchmark of this central system and the peer baseline.

Three modes, one command each::

    python run.py bench [--sizes 200,1000] [--duration 20]          # closed loop
    python run.py bench --open-loop 10000 --rate 0.1 --ramp 10 --duration 30
    python run.py bench --open-loop 10000 --rate 0.1 --ramp 0 --duration 30    # all at once
    python run.py bench --idle-known 10000                           # idle memory

**Closed and open loop.** For each size, in one run on this machine: start the
peer baseline (``gateway/sim/peer_central_system.py``, the reference copy of
``shared/bench/peer_central_system.py``) on a free port, load it
with the simulator, stop it; then start this project (``run.py serve`` on free
ports with a fresh database in a temporary directory), load it with the same
parameters, stop it. Closed loop (``--rate 0``, the default of ``--sizes``):
every station keeps one CALL outstanding and sends the next as soon as the
answer arrives. Open loop (``--open-loop N``, the same as ``--sizes N`` with
``--rate`` defaulting to 0.1): every station sends ``--rate`` messages per
second whatever the answers do. The connects are spread over ``--ramp``
seconds (0: every station connects at once); the window opens ``--warmup``
seconds after the ramp (default 1 s, 10 s with ``--open-loop`` so that all
10,000 have booted; the report flags stations that booted inside the window). Absolute figures are noisy; the
ratio ours/peer is the result.

Reported per system: stations booted, msg/s, p50/p99 message latency, p99
boot latency (TCP connect started -> BootNotification answered, per station),
errors, and:

* **server CPU per message**: utime+stime of all the central system's
  processes (``/proc/PID/stat``) over the measuring window, divided by the
  answers (CALLRESULTs and CALLERRORs) the simulator received in it. The
  simulator announces the window (``SIM-WINDOW`` on stderr, monotonic times);
  the processes are listed at its start and at its end, a process that appears
  in between counts with all its CPU, one that exits in between with none.
* **memory**: PSS summed over all the central system's processes before the
  load and while the stations are still connected after the window (the
  simulator announces ``SIM-HOLDING`` during ``--hold``). ``KB/stn`` =
  (loaded - before) / stations still connected; ``PSS MB`` is the loaded total
  (its per-station share is ``pss_loaded_kb_per_station`` in --json).

Our processes are found by the ``CSMS_INSTANCE=<admin-port>`` environment
entry every process of the system carries (the benchmark sets it on
``run.py serve``; forked processes and the setsid'ed Thespian admin inherit
it), plus the descendants of the ``serve`` process; the peer is its one
process (and any descendants). Both are started with RLIMIT_NOFILE raised to
the hard limit, so they can hold 10,000 sockets.

**Idle memory** (``--idle-known N``): start this project on a fresh database,
sample PSS once it is ready and settled; register N stations (``SIM1`` ..
``SIMN``, accepted, 2 connectors; ``--register db`` writes them through
``storage.Store`` while the system runs, ``--register sim`` has the simulator
connect and boot them over ``--ramp`` seconds); stop; start again on the same
database, wait until ready and settled (same set of processes and PSS within
1 % for 2 s), sample the whole system's PSS with none connected. The peer
(which has no storage) is sampled idle for reference.

Ready means: the OCPP port accepts connections and, when ``run.py serve``
offers ``--api-port``, ``/readyz`` answers 200.

Exit codes: 0 done (errors are reported, not fatal), 1 a simulator run failed or
no station booted, 2 usage error, 6 a central system failed to start.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import ExitStack, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.sim.ports import free_ports
from gateway.sim.simulator import HOLD_MARKER, WINDOW_MARKER, raise_open_file_limit

REPO = Path(__file__).resolve().parents[2]
# The peer baseline ships beside the benchmark, byte for byte the reference copy
# (../shared/bench/peer_central_system.py; tests/unit/test_simulator.py pins its hash).
DEFAULT_PEER = Path(__file__).resolve().parent / "peer_central_system.py"
START_DEADLINE = 60.0
STOP_GRACE = 15.0
HOST = "127.0.0.1"
PROC = "/proc"
SIM_PREFIX = "SIM"  # the simulator's default charge point id prefix
OPEN_LOOP_RATE = 0.1
# Default --warmup: with 10,000 stations, connects the server's listen backlog
# dropped are retried by TCP after 1, 3, 7 s; an open-loop window that opened 1 s
# after the ramp overlapped the last boots (and the peer's GC pauses among them).
WARMUP = 1.0
OPEN_LOOP_WARMUP = 10.0

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NOT_STARTED = 6


class StartFailed(Exception):
    """Raised when a central system does not become ready before the deadline."""


# --- /proc readings ----------------------------------------------------------------------


def pss_kb(pid: int, proc: str = PROC) -> int:
    """Proportional set size of one process in kB (0 if it is gone or unreadable)."""
    try:
        with open(f"{proc}/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


@dataclass(frozen=True)
class ProcStat:
    """The fields of ``/proc/PID/stat`` the benchmark uses (CPU in clock ticks)."""

    ppid: int
    utime: int
    stime: int
    starttime: int  # ticks after boot: tells a reused pid from the original

    @property
    def cpu_ticks(self) -> int:
        return self.utime + self.stime


def parse_stat(text: str) -> ProcStat:
    """Parse one ``/proc/PID/stat`` line (the command name may contain spaces and ')')."""
    rest = text.rsplit(")", 1)[1].split()
    # rest[0] is field 3 (state): field n of proc(5) is rest[n - 3].
    return ProcStat(ppid=int(rest[1]), utime=int(rest[11]), stime=int(rest[12]),
                    starttime=int(rest[19]))


def read_stat(pid: int, proc: str = PROC) -> ProcStat | None:
    try:
        with open(f"{proc}/{pid}/stat") as f:
            return parse_stat(f.read())
    except (OSError, ValueError, IndexError):
        return None


def _all_pids(proc: str = PROC) -> list[int]:
    return [int(name) for name in os.listdir(proc) if name.isdigit()]


def _has_env(pid: int, entry: bytes, proc: str = PROC) -> bool:
    try:
        with open(f"{proc}/{pid}/environ", "rb") as f:
            return entry in f.read().split(b"\0")
    except OSError:
        return False


def system_pids(root: int, marker: str | None, proc: str = PROC) -> set[int]:
    """``root``, its descendants, and (when given) every process whose environment holds ``marker``."""
    pids = _all_pids(proc)
    parents: dict[int, int] = {}
    for pid in pids:
        stat = read_stat(pid, proc)
        if stat is not None:
            parents[pid] = stat.ppid
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
        found.update(pid for pid in parents if pid != os.getpid() and _has_env(pid, entry, proc))
    return found


def total_pss_kb(pids: Iterable[int], proc: str = PROC) -> int:
    return sum(pss_kb(pid, proc) for pid in pids)


CpuSnapshot = dict[int, ProcStat]


def cpu_snapshot(pids: Iterable[int], proc: str = PROC) -> CpuSnapshot:
    """The stat of every listed process that still exists."""
    snap: CpuSnapshot = {}
    for pid in pids:
        stat = read_stat(pid, proc)
        if stat is not None:
            snap[pid] = stat
    return snap


def cpu_seconds_between(before: Mapping[int, ProcStat], after: Mapping[int, ProcStat],
                        ticks_per_s: float) -> float:
    """CPU (user+system) the processes used between two snapshots, in seconds.

    A process in ``after`` only, or whose pid was reused (another start time),
    counts with all its CPU (it started in between); a process in ``before``
    only exited in between and its last ticks are unknown, so it counts 0.
    """
    ticks = 0
    for pid, end in after.items():
        start = before.get(pid)
        if start is not None and start.starttime == end.starttime:
            ticks += max(0, end.cpu_ticks - start.cpu_ticks)
        else:
            ticks += end.cpu_ticks
    return ticks / ticks_per_s


def clock_ticks() -> float:
    return float(os.sysconf("SC_CLK_TCK"))


def settled_pss_kb(root: int, marker: str | None, deadline_s: float = 5.0,
                   quiet_s: float = 1.0, tolerance: float = 0.01) -> tuple[int, int]:
    """(PSS kB, process count) once the set of processes and their total PSS stopped
    changing for ``quiet_s`` (actors may still be starting, caches filling), or at the deadline."""
    deadline = time.monotonic() + deadline_s
    previous = system_pids(root, marker)
    previous_kb = total_pss_kb(previous)
    quiet_since = time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.5)
        current = system_pids(root, marker)
        current_kb = total_pss_kb(current)
        steady = current == previous and abs(current_kb - previous_kb) <= tolerance * max(previous_kb, 1)
        if not steady:
            quiet_since = time.monotonic()
        previous, previous_kb = current, current_kb
        if time.monotonic() - quiet_since >= quiet_s:
            break
    return previous_kb, len(previous)


def idle_pss_kb(root: int, marker: str | None, deadline_s: float = 5.0) -> tuple[int, int]:
    """(PSS kB, process count) of a system that has just started, once it settled."""
    return settled_pss_kb(root, marker, deadline_s=deadline_s)


# --- starting and stopping central systems --------------------------------------------


def _raise_child_fd_limit() -> None:
    """``preexec_fn`` of the servers: the soft open-file limit up to the hard one."""
    raise_open_file_limit()


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
            raise StartFailed(f"port {port} not accepting connections in time")
        time.sleep(0.1)


def wait_for_ready(url: str, proc: subprocess.Popen, deadline: float) -> None:
    """Poll ``url`` (``/readyz``) until it answers 200."""
    last = "no answer"
    while True:
        if proc.poll() is not None:
            raise StartFailed(f"exited with status {proc.returncode} before ready")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
                last = f"HTTP {answer.status}"
        except urllib.error.HTTPError as exc:
            if exc.code == 404:  # an HTTP API without /readyz yet: the open OCPP port is all there is
                return
            last = f"HTTP {exc.code}"
        except (OSError, ValueError) as exc:
            last = repr(exc)
        if time.monotonic() > deadline:
            raise StartFailed(f"{url} not ready in time ({last})")
        time.sleep(0.2)


@dataclass
class Server:
    """A central system started by the benchmark."""

    name: str
    proc: subprocess.Popen
    port: int
    marker: str | None
    log: Path
    ready_s: float = 0.0  # from Popen to ready

    def pids(self) -> set[int]:
        return system_pids(self.proc.pid, self.marker)

    def stop(self) -> None:
        """SIGTERM, wait up to STOP_GRACE, then SIGKILL the process group and marked stragglers."""
        stragglers = self.pids()
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
            for pid in stragglers & self.pids():
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
                 marker: str | None = None, ready_url: str | None = None,
                 start_deadline: float = START_DEADLINE) -> Server:
    env = dict(os.environ)
    if marker:
        key, _, value = marker.partition("=")
        env[key] = value
    started = time.monotonic()
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True,
                                preexec_fn=_raise_child_fd_limit)
    server = Server(name=name, proc=proc, port=port, marker=marker, log=log)
    try:
        deadline = started + start_deadline
        wait_for_port(port, proc, deadline)
        if ready_url:
            wait_for_ready(ready_url, proc, deadline)
    except StartFailed:
        server.stop()
        raise
    server.ready_s = time.monotonic() - started
    return server


_serve_flags: set[str] | None = None


def serve_flags() -> set[str]:
    """The options ``run.py serve --help`` lists (empty if it cannot say), read once."""
    global _serve_flags
    if _serve_flags is None:
        try:
            out = subprocess.run([sys.executable, str(REPO / "run.py"), "serve", "--help"],
                                 cwd=REPO, capture_output=True, text=True, timeout=60).stdout
        except (OSError, subprocess.TimeoutExpired):
            out = ""
        _serve_flags = set(re.findall(r"--[a-z][a-z-]*", out))
    return _serve_flags


def start_ours(workdir: Path, db: Path, label: str, start_deadline: float = START_DEADLINE,
               extra: Sequence[str] = ()) -> Server:
    """``run.py serve`` on free loopback ports with database ``db``."""
    flags = serve_flags()
    port, metrics_port, admin_port, api_port = free_ports(4, HOST)
    argv = [sys.executable, str(REPO / "run.py"), "serve", "--host", HOST,
            "--port", str(port), "--metrics-port", str(metrics_port),
            "--admin-port", str(admin_port), "--db", str(db), "--log-level", "WARNING", *extra]
    ready_url = None
    if "--api-port" in flags:
        argv += ["--api-port", str(api_port)]
        if "--api-host" in flags:
            argv += ["--api-host", HOST]
        ready_url = f"http://{HOST}:{api_port}/readyz"
    return start_server("ours", argv, port, workdir / f"ours-{label}.log",
                        marker=f"CSMS_INSTANCE={admin_port}", ready_url=ready_url,
                        start_deadline=start_deadline)


def start_peer(peer: Path, workdir: Path, label: str) -> Server:
    port, = free_ports(1, HOST)
    return start_server("peer", [sys.executable, str(peer), str(port)], port,
                        workdir / f"peer-{label}.log")


# --- one load measurement --------------------------------------------------------------


@dataclass
class Measurement:
    system: str
    sim: dict[str, Any] | None = None
    pss_idle_kb: int | None = None
    pss_loaded_kb: int | None = None
    procs_idle: int | None = None
    procs_loaded: int | None = None
    server_cpu_s: float | None = None  # over the measuring window
    procs_window: int | None = None  # processes seen at the end of the window
    error: str | None = None
    started: bool = True

    @property
    def kb_per_station(self) -> float | None:
        if self.sim is None or self.pss_idle_kb is None or self.pss_loaded_kb is None:
            return None
        held = self.sim.get("held") or 0  # connections open when the sample was taken
        return (self.pss_loaded_kb - self.pss_idle_kb) / held if held else None

    @property
    def loaded_kb_per_station(self) -> float | None:
        if self.sim is None or self.pss_loaded_kb is None:
            return None
        held = self.sim.get("held") or 0
        return self.pss_loaded_kb / held if held else None

    @property
    def cpu_us_per_msg(self) -> float | None:
        if self.sim is None or self.server_cpu_s is None:
            return None
        answered = self.sim.get("answered", self.sim.get("messages")) or 0
        return self.server_cpu_s / answered * 1e6 if answered else None

    def to_json(self) -> dict[str, Any]:
        def rounded(value: float | None, digits: int = 1) -> float | None:
            return None if value is None else round(value, digits)

        return {"system": self.system, "started": self.started, "error": self.error,
                "pss_idle_kb": self.pss_idle_kb, "pss_loaded_kb": self.pss_loaded_kb,
                "processes_idle": self.procs_idle, "processes_loaded": self.procs_loaded,
                "kb_per_station": rounded(self.kb_per_station),
                "pss_loaded_kb_per_station": rounded(self.loaded_kb_per_station),
                "server_cpu_s": rounded(self.server_cpu_s, 3),
                "processes_window": self.procs_window,
                "cpu_us_per_msg": rounded(self.cpu_us_per_msg),
                "sim": self.sim}


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
    timeout: float = 30.0
    idle_known: int = 0  # > 0: the idle-memory mode
    register: str = "db"
    start_timeout: float = START_DEADLINE

    @property
    def mode(self) -> str:
        if self.idle_known:
            return "idle-known"
        return "open-loop" if self.rate > 0 else "closed-loop"


def run_simulator(url: str, stations: int, opts: BenchOptions,
                  on_hold: Callable[[], None],
                  on_window: Callable[[float, float], None] | None = None,
                  *, duration: float | None = None, hold: float | None = None,
                  rate: float | None = None) -> dict[str, Any]:
    """Run the simulator as a subprocess; call ``on_window(start, end)`` when it announces
    the measuring window and ``on_hold`` when it holds its connections."""
    duration = opts.duration if duration is None else duration
    hold = opts.hold if hold is None else hold
    rate = opts.rate if rate is None else rate
    argv = [sys.executable, "-m", "gateway.sim.simulator", "--url", url, "--stations", str(stations),
            "--duration", str(duration), "--ramp", str(opts.ramp),
            "--warmup", str(opts.warmup), "--hold", str(hold),
            "--workers", str(opts.workers), "--rate", str(rate), "--mix", opts.mix,
            "--timeout", str(opts.timeout), "--prefix", SIM_PREFIX, "--json"]
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
            words = line.split()
            if words == [HOLD_MARKER]:
                on_hold()
            elif len(words) == 3 and words[0] == WINDOW_MARKER:
                if on_window is not None:
                    on_window(float(words[1]), float(words[2]))
            else:
                stderr_lines.append(line)

    readers = [threading.Thread(target=read_stdout, daemon=True),
               threading.Thread(target=watch_stderr, daemon=True)]
    for reader in readers:
        reader.start()
    limit = opts.ramp + opts.warmup + duration + hold + 2 * opts.timeout + 90
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
        doc: dict[str, Any] = json.loads(stdout)
    except ValueError:
        raise RuntimeError(f"simulator exited {proc.returncode}: "
                           f"{''.join(stderr_lines)[-500:]}") from None
    warnings = [line.strip() for line in stderr_lines if line.strip()]
    if warnings:
        doc["stderr"] = warnings[-5:]
    return doc


class CpuWindow:
    """Samples a server's CPU at the start and at the end of the simulator's window."""

    def __init__(self, pids: Callable[[], set[int]]) -> None:
        self._pids = pids
        self._thread: threading.Thread | None = None
        self.cpu_s: float | None = None
        self.processes: int | None = None

    def schedule(self, start: float, end: float) -> None:
        self._thread = threading.Thread(target=self._run, args=(start, end), daemon=True)
        self._thread.start()

    def _run(self, start: float, end: float) -> None:
        _sleep_until(start)
        before = cpu_snapshot(self._pids())
        _sleep_until(end)
        after = cpu_snapshot(self._pids())
        self.cpu_s = cpu_seconds_between(before, after, clock_ticks())
        self.processes = len(after)

    def result(self, timeout: float = 10.0) -> tuple[float | None, int | None]:
        if self._thread is not None:
            self._thread.join(timeout)
        return self.cpu_s, self.processes


def _sleep_until(t: float) -> None:
    delay = t - time.monotonic()
    if delay > 0:
        time.sleep(delay)


def measure(system: str, stations: int, opts: BenchOptions, workdir: Path) -> Measurement:
    """Start ``system`` ("peer" or "ours"), load it, sample CPU and memory, stop it."""
    result = Measurement(system=system)
    label = f"{stations}"
    try:
        if system == "peer":
            server = start_peer(opts.peer, workdir, label)
        else:
            extra: list[str] = []
            if "--max-call-rate" in serve_flags():
                # The peer has no flood limit, and while the ramp has connected only a
                # few stations each of them, in closed loop, sends over 1000 CALLs/s.
                extra += ["--max-call-rate", "0"]
            server = start_ours(workdir, workdir / f"bench-{stations}.db", label,
                                opts.start_timeout, extra)
    except (StartFailed, OSError) as exc:
        result.started = False
        result.error = f"{system} failed to start: {exc}"
        log = workdir / f"{system}-{label}.log"
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        print(f"{result.error}\n{tail}", file=sys.stderr)
        return result
    try:
        result.pss_idle_kb, result.procs_idle = idle_pss_kb(server.proc.pid, server.marker)
        cpu = CpuWindow(server.pids)

        def sample() -> None:
            pids = server.pids()
            result.pss_loaded_kb, result.procs_loaded = total_pss_kb(pids), len(pids)

        try:
            result.sim = run_simulator(f"ws://{HOST}:{server.port}", stations, opts, sample,
                                       cpu.schedule)
        except RuntimeError as exc:
            result.error = str(exc)
        result.server_cpu_s, result.procs_window = cpu.result()
        if result.sim is not None and not result.sim.get("booted"):
            result.error = f"no station booted at {system}: {result.sim['error_samples'][:1]}"
        if server.proc.poll() is not None:
            result.error = (result.error or "") + f" {system} exited during the run"
            print(f"{system} exited during the run:\n{server.log_tail()}", file=sys.stderr)
    finally:
        server.stop()
    return result


# --- idle memory with known stations ---------------------------------------------------


def register_in_db(db: Path, count: int, prefix: str = SIM_PREFIX) -> None:
    """Register ``prefix``1 .. ``prefix``count (accepted, 2 connectors) through ``storage.Store``."""
    from storage import Store

    store = Store(str(db))
    try:
        group = getattr(store, "group", None)
        with group() if group is not None else nullcontext():
            for n in range(1, count + 1):
                store.upsert_station(f"{prefix}{n}", registration="accepted", connectors=2)
    finally:
        store.close()


def count_stations(db: Path) -> int | None:
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
        try:
            return int(conn.execute("SELECT COUNT(*) FROM stations").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.Error:
        return None


def measure_idle_known(opts: BenchOptions, workdir: Path) -> dict[str, Any]:
    """The idle-memory mode for this project (see the module docstring)."""
    known = opts.idle_known
    db = workdir / f"idle-{known}.db"
    doc: dict[str, Any] = {"system": "ours", "started": True, "error": None, "known": known,
                           "register": opts.register}
    try:
        first = start_ours(workdir, db, f"idle-{known}-first", opts.start_timeout)
    except (StartFailed, OSError) as exc:
        doc.update(started=False, error=f"ours failed to start: {exc}")
        return doc
    try:
        doc["pss_fresh_kb"], doc["processes_fresh"] = settled_pss_kb(
            first.proc.pid, first.marker, deadline_s=30, quiet_s=2)
        t0 = time.monotonic()
        if opts.register == "db":
            register_in_db(db, known)
        else:
            sim = run_simulator(f"ws://{HOST}:{first.port}", known, opts, lambda: None,
                                duration=1.0, hold=0.0, rate=OPEN_LOOP_RATE)
            doc["register_sim"] = {k: sim.get(k) for k in ("booted", "errors", "error_kinds")}
        doc["register_s"] = round(time.monotonic() - t0, 2)
    except Exception as exc:  # report what went wrong, still stop the server
        doc["error"] = f"registering {known} stations failed: {exc!r}"
        return doc
    finally:
        first.stop()
    doc["stations_in_db"] = count_stations(db)
    try:
        second = start_ours(workdir, db, f"idle-{known}-restart", opts.start_timeout)
    except (StartFailed, OSError) as exc:
        doc.update(started=False, error=f"ours failed to restart with {known} known: {exc}")
        return doc
    try:
        doc["restart_ready_s"] = round(second.ready_s, 2)
        doc["pss_known_kb"], doc["processes_known"] = settled_pss_kb(
            second.proc.pid, second.marker, deadline_s=60, quiet_s=2)
        if second.proc.poll() is not None:
            doc["error"] = "ours exited after the restart"
    finally:
        second.stop()
    return doc


def idle_known_summary(ours: dict[str, Any] | None, peer: dict[str, Any] | None,
                       known: int) -> dict[str, Any]:
    """The --json document of the idle-memory mode."""
    per_known = None
    if ours and ours.get("pss_known_kb") is not None and ours.get("pss_fresh_kb") is not None \
            and known:
        per_known = round((ours["pss_known_kb"] - ours["pss_fresh_kb"]) / known, 2)
    if ours is not None:
        ours["kb_per_known_station"] = per_known
    return {"mode": "idle-known", "known": known, "ours": ours, "peer": peer}


def format_idle_known(doc: dict[str, Any]) -> str:
    def mb(kb: Any) -> str:
        return "-" if kb is None else f"{kb / 1024:.1f} MB"

    lines = [f"idle memory, {doc['known']} known stations, none connected (PSS summed over processes)"]
    ours = doc.get("ours")
    if ours is not None:
        lines.append(f"  ours  fresh db        {mb(ours.get('pss_fresh_kb'))}"
                     f"  ({ours.get('processes_fresh', '-')} processes)")
        lines.append(f"  ours  {doc['known']} known     {mb(ours.get('pss_known_kb'))}"
                     f"  ({ours.get('processes_known', '-')} processes)"
                     f"  after a restart, ready in {ours.get('restart_ready_s', '-')} s")
        per = ours.get("kb_per_known_station")
        lines.append(f"        per known station {'-' if per is None else f'{per:.2f} KB'}"
                     f"  (registered via {ours.get('register')} in {ours.get('register_s', '-')} s,"
                     f" {ours.get('stations_in_db', '-')} in the db)")
        if ours.get("error"):
            lines.append(f"        error: {ours['error']}")
    peer = doc.get("peer")
    if peer is not None:
        lines.append(f"  peer  idle (no storage) {mb(peer.get('pss_idle_kb'))}"
                     + (f"  error: {peer['error']}" if peer.get("error") else ""))
    return "\n".join(lines)


def measure_peer_idle(opts: BenchOptions, workdir: Path) -> dict[str, Any]:
    try:
        server = start_peer(opts.peer, workdir, "idle")
    except (StartFailed, OSError) as exc:
        return {"system": "peer", "started": False, "error": f"peer failed to start: {exc}"}
    try:
        kb, procs = settled_pss_kb(server.proc.pid, None, deadline_s=10, quiet_s=1)
        return {"system": "peer", "started": True, "error": None, "pss_idle_kb": kb,
                "processes_idle": procs}
    finally:
        server.stop()


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

    def attr(m: Measurement | None, name: str) -> Any:
        return getattr(m, name) if m is not None else None

    return {
        "stations": stations,
        "peer": peer.to_json() if peer else None,
        "ours": ours.to_json() if ours else None,
        "ratio_msg_per_s": _ratio(sim(ours, "msg_per_s"), sim(peer, "msg_per_s")),
        "ratio_p99": _ratio(sim(ours, "latency_ms", "p99"), sim(peer, "latency_ms", "p99")),
        "ratio_boot_p99": _ratio(sim(ours, "boot_latency_ms", "p99"),
                                 sim(peer, "boot_latency_ms", "p99")),
        "ratio_cpu_per_msg": _ratio(attr(ours, "cpu_us_per_msg"), attr(peer, "cpu_us_per_msg")),
        "ratio_kb_per_station": _ratio(attr(ours, "kb_per_station"), attr(peer, "kb_per_station")),
    }


def format_table(summaries: Sequence[dict[str, Any]]) -> str:
    def num(value: Any, fmt: str) -> str:
        return "-" if value is None else format(value, fmt)

    head = (f"{'stations':>8} {'system':>6} {'booted':>7} {'msg/s':>9} {'p50 ms':>8} "
            f"{'p99 ms':>8} {'boot p99':>9} {'errors':>7} {'cpu us/msg':>10} "
            f"{'PSS MB':>7} {'KB/stn':>7}")
    lines = [head, "-" * len(head)]
    for s in summaries:
        for name in ("peer", "ours"):
            m = s[name]
            if m is None:
                continue
            sim = m["sim"] or {}
            lat = sim.get("latency_ms") or {}
            boot = sim.get("boot_latency_ms") or {}
            loaded = m.get("pss_loaded_kb")
            lines.append(
                f"{s['stations']:>8} {name:>6} {num(sim.get('booted'), 'd'):>7} "
                f"{num(sim.get('msg_per_s'), '.1f'):>9} {num(lat.get('p50'), '.2f'):>8} "
                f"{num(lat.get('p99'), '.2f'):>8} {num(boot.get('p99'), '.1f'):>9} "
                f"{num(sim.get('errors'), 'd'):>7} {num(m.get('cpu_us_per_msg'), '.1f'):>10} "
                f"{num(None if loaded is None else loaded / 1024, '.1f'):>7} "
                f"{num(m['kb_per_station'], '.1f'):>7}"
                + "".join(f"  {kind}x{n}" for kind, n in (sim.get("error_kinds") or {}).items())
                + (f"  {m['error']}" if m["error"] else "")
                + (f"  ({sim['booted_late']} booted after the window opened: raise --warmup)"
                   if sim.get("booted_late") else ""))
        lines.append(f"{'':>8} {'ours/peer':>9}  msg/s x{num(s['ratio_msg_per_s'], '.2f')}"
                     f"  p99 x{num(s['ratio_p99'], '.2f')}"
                     f"  boot p99 x{num(s.get('ratio_boot_p99'), '.2f')}"
                     f"  cpu/msg x{num(s.get('ratio_cpu_per_msg'), '.2f')}"
                     f"  KB/stn x{num(s.get('ratio_kb_per_station'), '.2f')}")
    return "\n".join(lines)


def format_header(opts: BenchOptions) -> str:
    load = (f"open loop, {opts.rate:g} msg/s per station" if opts.rate > 0
            else "closed loop (one CALL outstanding per station)")
    ramp = "all connecting at once" if opts.ramp == 0 else f"connects spread over {opts.ramp:g} s"
    workers = opts.workers or "auto"
    return (f"{load}, {ramp}, window {opts.duration:g} s, mix {opts.mix}, simulator workers "
            f"{workers}\nboot p99 ms: TCP connect started -> BootNotification answered; "
            f"cpu us/msg: server CPU in the window / answers;\nPSS MB: whole system, stations "
            f"connected; KB/stn: (loaded - idle PSS) / connected stations")


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of integers: {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError("sizes must be positive integers")
    return sizes


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="run.py bench",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Benchmark this central system against the peer baseline, side by side "
                    "in one run.",
        epilog="examples:\n"
               "  run.py bench --sizes 200,1000                      closed loop\n"
               "  run.py bench --open-loop 10000 --rate 0.1 --ramp 10 --duration 30\n"
               "  run.py bench --open-loop 10000 --rate 0.1 --ramp 0 --duration 30"
               "   (all connect at once)\n"
               "  run.py bench --idle-known 10000                    idle memory after a restart")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--sizes", type=_sizes, default=None,
                      help="station counts, e.g. 200,1000 (default 200,1000; closed loop "
                           "unless --rate is given)")
    mode.add_argument("--open-loop", type=_positive_int, default=None, metavar="N",
                      help=f"open loop with N stations: --rate (default {OPEN_LOOP_RATE:g}) "
                           "messages per second each")
    mode.add_argument("--idle-known", type=_positive_int, default=None, metavar="N",
                      help="idle memory of our system restarted with N known stations, "
                           "none connected")
    p.add_argument("--duration", type=float, default=20.0, help="measuring window, seconds")
    p.add_argument("--ramp", type=float, default=10.0,
                   help="seconds to spread connections over; 0: all at once")
    p.add_argument("--warmup", type=float, default=None,
                   help=f"seconds between ramp and window (default {WARMUP:g}, "
                        f"{OPEN_LOOP_WARMUP:g} with --open-loop)")
    p.add_argument("--hold", type=float, default=3.0,
                   help="seconds the stations stay connected after the window (memory sample)")
    p.add_argument("--workers", type=int, default=0,
                   help="simulator processes; 0 (default): the simulator's choice "
                        "(one per 2500 stations, at most one per core)")
    p.add_argument("--rate", type=float, default=None,
                   help="messages per second per station (0: closed loop, full speed; default "
                        f"0, or {OPEN_LOOP_RATE:g} with --open-loop)")
    p.add_argument("--mix", choices=("basic", "full"), default="basic",
                   help="message mix (the peer answers only the basic one)")
    p.add_argument("--timeout", type=float, default=30.0,
                   help="simulator: seconds to wait for a connection or an answer")
    p.add_argument("--register", choices=("db", "sim"), default="db",
                   help="--idle-known: register the stations through storage.Store (db) or "
                        "by connecting them with the simulator (sim)")
    p.add_argument("--start-timeout", type=float, default=START_DEADLINE,
                   help="seconds a central system may take to become ready")
    p.add_argument("--peer", type=Path, default=DEFAULT_PEER, help="peer central system script")
    p.add_argument("--only", choices=("peer", "ours"), default=None,
                   help="benchmark one system only")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    return p


def _options(argv: Sequence[str]) -> BenchOptions:
    p = _parser()
    a = p.parse_args(list(argv))
    if a.warmup is None:
        a.warmup = OPEN_LOOP_WARMUP if a.open_loop is not None else WARMUP
    if not a.duration > 0 or a.ramp < 0 or a.warmup < 0 or a.hold <= 0 or a.workers < 0 \
            or (a.rate is not None and a.rate < 0) or not a.timeout > 0 \
            or not a.start_timeout > 0:
        p.error("--duration, --hold, --timeout and --start-timeout must be positive, "
                "--workers, --ramp, --warmup and --rate not negative")
    if a.open_loop is not None and a.rate == 0:
        p.error("--open-loop needs a positive --rate")
    if (a.only in (None, "peer")) and not a.peer.is_file():
        p.error(f"peer script not found: {a.peer} (use --peer PATH)")
    if a.open_loop is not None:
        sizes: tuple[int, ...] = (a.open_loop,)
        rate = OPEN_LOOP_RATE if a.rate is None else a.rate
    elif a.idle_known is not None:
        sizes, rate = (), 0.0
    else:
        sizes, rate = a.sizes or (200, 1000), a.rate or 0.0
    return BenchOptions(sizes=sizes, duration=a.duration, ramp=a.ramp, warmup=a.warmup,
                        hold=a.hold, workers=a.workers, rate=rate, mix=a.mix,
                        peer=a.peer.resolve(), as_json=a.json,
                        systems=(a.only,) if a.only else ("peer", "ours"),
                        timeout=a.timeout, idle_known=a.idle_known or 0, register=a.register,
                        start_timeout=a.start_timeout)


def _main_idle_known(opts: BenchOptions, workdir: Path) -> int:
    peer = ours = None
    if "peer" in opts.systems:
        if not opts.as_json:
            print("... peer, idle", file=sys.stderr, flush=True)
        peer = measure_peer_idle(opts, workdir)
    if "ours" in opts.systems:
        if not opts.as_json:
            print(f"... ours, {opts.idle_known} known stations", file=sys.stderr, flush=True)
        ours = measure_idle_known(opts, workdir)
    doc = idle_known_summary(ours, peer, opts.idle_known)
    print(json.dumps(doc) if opts.as_json else format_idle_known(doc))
    runs = [d for d in (ours, peer) if d is not None]
    if any(not d.get("started") for d in runs):
        return EXIT_NOT_STARTED
    return EXIT_FAILED if any(d.get("error") for d in runs) else EXIT_OK


def main(argv: list[str]) -> int:
    """Entry point of ``run.py bench``; returns the exit code."""
    try:
        opts = _options(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="csms-bench-")))
        if opts.idle_known:
            return _main_idle_known(opts, workdir)
        summaries = []
        not_started = failed = False
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
        print(json.dumps({"mode": opts.mode, "duration_s": opts.duration, "ramp_s": opts.ramp,
                          "rate": opts.rate, "workers": opts.workers, "mix": opts.mix,
                          "sizes": summaries}))
    else:
        print(format_header(opts))
        print(format_table(summaries))
    if not_started:
        return EXIT_NOT_STARTED
    return EXIT_FAILED if failed else EXIT_OK


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
