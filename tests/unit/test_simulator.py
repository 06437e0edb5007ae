"""The load simulator and the benchmark, over real sockets.

The peer baseline (gateway/sim/peer_central_system.py, shipped with the project) runs as a subprocess on
a free port; a small in-test central system that answers every 1.6 action
covers the ``full`` mix, which the peer does not answer.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gateway.sim import bench, simulator
from gateway.sim.ports import free_port
from gateway.sim.simulator import percentile
from gateway.sim.station import meter_payload, status_payload

# --- the peer baseline ------------------------------------------------------------------

# SHA-256 of the reference peer (../shared/bench/peer_central_system.py, 29 lines): the
# benchmark's ratios mean something only against that one, unchanged.
PEER_SHA256 = "29daa3c27432e6bda5ceba40741303ac082238d68e935f1f027d7101cff52b13"


def test_the_shipped_peer_is_the_reference_peer_byte_for_byte() -> None:
    import hashlib

    shipped = bench.DEFAULT_PEER
    assert shipped.parent == Path(bench.__file__).resolve().parent  # inside the clone
    assert hashlib.sha256(shipped.read_bytes()).hexdigest() == PEER_SHA256
    reference = Path(bench.__file__).resolve().parents[3] / "shared" / "bench" / "peer_central_system.py"
    if reference.is_file():  # beside a checkout in the workplace: the same file
        assert reference.read_bytes() == shipped.read_bytes()


# --- exit codes -----------------------------------------------------------------------


def test_a_url_where_nothing_listens_exits_6(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"ws://127.0.0.1:{free_port()}"
    started = time.monotonic()
    code = simulator.main(["--url", url, "--stations", "3", "--duration", "5", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 6
    assert doc["connected"] == 0 and doc["errors"] == 3
    assert doc["error_kinds"] == {"connect": 3}
    assert time.monotonic() - started < 5  # refused stations do not wait for the window


@pytest.mark.parametrize("argv", [
    ["--stations", "0"],
    ["--stations", "many"],
    ["--url", "http://127.0.0.1:9000"],
    ["--duration", "0"],
    ["--mix", "everything"],
    ["--no-such-flag"],
])
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert simulator.main(argv) == 2
    assert "usage" in capsys.readouterr().err


def test_bench_usage_error_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.main(["--sizes", "a,b"]) == 2
    assert bench.main(["--peer", "/nonexistent/peer.py"]) == 2


# --- pure pieces ------------------------------------------------------------------------


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile([7.0], 99) == 7.0
    assert percentile([], 50) is None


def test_payload_templates_are_valid_json_with_utc_timestamps() -> None:
    mv = json.loads(meter_payload(2, 1234, transaction_id=7))
    assert mv["connectorId"] == 2 and mv["transactionId"] == 7
    assert mv["meterValue"][0]["sampledValue"][0]["value"] == "1234"
    assert mv["meterValue"][0]["timestamp"].endswith("Z")
    assert "transactionId" not in json.loads(meter_payload(1, 1))
    sn = json.loads(status_payload(0, "Available"))
    assert sn == {"connectorId": 0, "errorCode": "NoError", "status": "Available",
                  "timestamp": sn["timestamp"]}
    assert time.strptime(sn["timestamp"], "%Y-%m-%dT%H:%M:%SZ")


def test_bench_finds_processes_by_environment_marker_and_measures_pss() -> None:
    marker = f"CSMS_BENCH_TEST={os.getpid()}"
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                             stdin=subprocess.PIPE,
                             env={**os.environ, "CSMS_BENCH_TEST": str(os.getpid())})
    try:
        assert child.pid in bench.system_pids(root=-1, marker=marker)
        assert bench.pss_kb(child.pid) > 0
    finally:
        child.kill()
        child.wait(timeout=10)


# --- scale: workers, fd limit, CPU and PSS accounting (pure, fake /proc) -----------------


def test_auto_workers_is_one_per_2500_stations_capped_by_cores() -> None:
    assert simulator.auto_workers(1, cores=2) == 1
    assert simulator.auto_workers(1000, cores=2) == 1
    assert simulator.auto_workers(2500, cores=2) == 1
    assert simulator.auto_workers(2501, cores=2) == 2
    assert simulator.auto_workers(10_000, cores=2) == 2
    assert simulator.auto_workers(10_000, cores=8) == 4
    assert simulator.auto_workers(10_000, cores=1) == 1


def test_open_file_limit_is_raised_to_the_hard_limit() -> None:
    import resource

    soft, hard = simulator.raise_open_file_limit()
    assert resource.getrlimit(resource.RLIMIT_NOFILE) == (soft, hard)
    if hard != resource.RLIM_INFINITY:
        assert soft == hard


def _stat_line(pid: int, name: str, ppid: int, utime: int, stime: int, start: int) -> str:
    # proc(5): pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt
    # cmajflt utime stime cutime cstime priority nice threads itrealvalue starttime ...
    fields = ["S", ppid, 1, 1, 0, -1, 0, 0, 0, 0, 0, utime, stime, 7, 7, 20, 0, 1, 0, start,
              1000, 100]
    return f"{pid} ({name}) " + " ".join(str(f) for f in fields) + "\n"


def _fake_proc(root: Path, procs: dict[int, tuple[str, int, int, int, int, int, bytes]]) -> str:
    """procs: pid -> (comm, ppid, utime, stime, starttime, pss_kb, environ)."""
    for pid, (name, ppid, utime, stime, start, pss, environ) in procs.items():
        d = root / str(pid)
        d.mkdir(parents=True, exist_ok=True)
        (d / "stat").write_text(_stat_line(pid, name, ppid, utime, stime, start))
        (d / "smaps_rollup").write_text(
            f"00400000-7fff [rollup]\nRss:  {pss * 2} kB\nPss:  {pss} kB\nPss_Anon: 1 kB\n")
        (d / "environ").write_bytes(environ)
    return str(root)


def test_parse_stat_survives_spaces_and_parentheses_in_the_name() -> None:
    stat = bench.parse_stat(_stat_line(42, "python (x) y", 7, 120, 30, 5555))
    assert (stat.ppid, stat.utime, stat.stime, stat.starttime) == (7, 120, 30, 5555)
    assert stat.cpu_ticks == 150


def test_server_cpu_over_the_window_from_two_fake_proc_readings(tmp_path: Path) -> None:
    marker = b"CSMS_INSTANCE=4242"
    env = b"PATH=/bin\0" + marker + b"\0"
    before = _fake_proc(tmp_path / "t0", {
        100: ("run.py", 1, 50, 10, 1000, 30_000, env),       # serve
        101: ("host", 100, 200, 40, 1001, 50_000, env),      # child of serve
        300: ("admin", 1, 5, 5, 1002, 10_000, env),          # setsid'ed, found by marker
        400: ("other", 1, 999, 999, 1003, 99_999, b"X=1\0"),  # not ours
        500: ("exits", 100, 70, 0, 1004, 1_000, env),        # gone by the end
    })
    after = _fake_proc(tmp_path / "t1", {
        100: ("run.py", 1, 60, 15, 1000, 30_000, env),       # +15 ticks
        101: ("host", 100, 300, 60, 1001, 70_000, env),      # +120
        300: ("admin", 1, 5, 6, 1002, 10_000, env),          # +1
        400: ("other", 1, 2000, 2000, 1003, 99_999, b"X=1\0"),
        600: ("new", 100, 8, 2, 1500, 2_000, env),           # started in the window: all 10
        301: ("reused", 1, 3, 1, 1600, 500, env),            # new process, new pid
    })
    pids0 = bench.system_pids(100, marker.decode(), proc=before)
    pids1 = bench.system_pids(100, marker.decode(), proc=after)
    assert pids0 == {100, 101, 300, 500}
    assert pids1 == {100, 101, 300, 301, 600}
    snap0, snap1 = bench.cpu_snapshot(pids0, before), bench.cpu_snapshot(pids1, after)
    assert bench.cpu_seconds_between(snap0, snap1, ticks_per_s=100) == pytest.approx(
        (15 + 120 + 1 + 10 + 4) / 100)
    assert bench.total_pss_kb(pids1, after) == 30_000 + 70_000 + 10_000 + 2_000 + 500
    # a pid reused by another process (other start time) counts from zero
    reused = {7: bench.ProcStat(ppid=1, utime=500, stime=0, starttime=1)}
    again = {7: bench.ProcStat(ppid=1, utime=20, stime=5, starttime=2)}
    assert bench.cpu_seconds_between(reused, again, ticks_per_s=100) == pytest.approx(0.25)


def test_measurement_reports_cpu_per_answer_and_memory_per_connected_station() -> None:
    m = bench.Measurement(system="peer", sim={"held": 1000, "messages": 9_000, "answered": 10_000},
                          pss_idle_kb=20_000, pss_loaded_kb=70_000, server_cpu_s=2.5)
    assert m.cpu_us_per_msg == pytest.approx(250.0)
    assert m.kb_per_station == pytest.approx(50.0)
    assert m.loaded_kb_per_station == pytest.approx(70.0)
    doc = m.to_json()
    assert doc["cpu_us_per_msg"] == 250.0 and doc["server_cpu_s"] == 2.5
    assert bench.Measurement(system="ours", sim={"held": 0, "answered": 0},
                             server_cpu_s=1.0).cpu_us_per_msg is None
    ours = bench.Measurement(system="ours", sim={"held": 1000, "answered": 10_000,
                                                 "msg_per_s": 500.0,
                                                 "latency_ms": {"p99": 4.0},
                                                 "boot_latency_ms": {"p99": 30.0}},
                             pss_idle_kb=100_000, pss_loaded_kb=125_000, server_cpu_s=5.0)
    peer = bench.Measurement(system="peer", sim={**(ours.sim or {}), "msg_per_s": 1000.0,
                                                 "latency_ms": {"p99": 2.0},
                                                 "boot_latency_ms": {"p99": 60.0}},
                             pss_idle_kb=20_000, pss_loaded_kb=70_000, server_cpu_s=2.5)
    s = bench.size_summary(1000, {"peer": peer, "ours": ours})
    assert (s["ratio_msg_per_s"], s["ratio_p99"], s["ratio_boot_p99"],
            s["ratio_cpu_per_msg"], s["ratio_kb_per_station"]) == (0.5, 2.0, 0.5, 2.0, 0.5)
    table = bench.format_table([s])
    assert "cpu us/msg" in table and "boot p99" in table and "cpu/msg x2.00" in table


def test_boot_latency_percentiles_come_from_the_merged_shards() -> None:
    from gateway.sim.station import ShardStats

    a, b = ShardStats(), ShardStats()
    a.boot_latencies.extend([0.001 * i for i in range(1, 51)])     # 1..50 ms
    b.boot_latencies.extend([0.001 * i for i in range(51, 101)])   # 51..100 ms
    a.peak_rss_kb, b.peak_rss_kb, a.answered, b.answered = 10, 20, 3, 4
    a.merge(b)
    summary = simulator.latency_summary(a.boot_latencies)
    assert summary == {"p50": 50.0, "p99": 99.0, "max": 100.0}
    assert (a.peak_rss_kb, a.answered) == (30, 7)


def test_bench_options_for_the_three_modes() -> None:
    closed = bench._options(["--only", "ours"])
    assert (closed.mode, closed.sizes, closed.rate, closed.workers) == ("closed-loop", (200, 1000),
                                                                        0.0, 0)
    open_loop = bench._options(["--only", "ours", "--open-loop", "10000", "--ramp", "0"])
    assert (open_loop.mode, open_loop.sizes, open_loop.rate, open_loop.ramp) == (
        "open-loop", (10000,), 0.1, 0.0)
    assert (closed.warmup, open_loop.warmup) == (bench.WARMUP, bench.OPEN_LOOP_WARMUP)
    assert bench._options(["--only", "ours", "--open-loop", "5", "--warmup", "2"]).warmup == 2.0
    idle = bench._options(["--only", "ours", "--idle-known", "10000"])
    assert (idle.mode, idle.idle_known, idle.register) == ("idle-known", 10000, "db")


@pytest.mark.parametrize("argv", [
    ["--open-loop", "100", "--rate", "0"],
    ["--open-loop", "100", "--sizes", "5"],
    ["--idle-known", "0"],
    ["--idle-known", "10", "--open-loop", "10"],
    ["--workers", "-1"],
])
def test_bench_mode_usage_errors_exit_2(argv: list[str]) -> None:
    assert bench.main(["--only", "ours", *argv]) == 2


def test_idle_known_summary_and_report() -> None:
    doc = bench.idle_known_summary(
        {"system": "ours", "started": True, "error": None, "known": 1000, "register": "db",
         "pss_fresh_kb": 100_000, "processes_fresh": 4, "pss_known_kb": 102_000,
         "processes_known": 4, "restart_ready_s": 1.5, "register_s": 0.4,
         "stations_in_db": 1000},
        {"system": "peer", "started": True, "error": None, "pss_idle_kb": 30_000}, 1000)
    assert doc["ours"]["kb_per_known_station"] == 2.0
    text = bench.format_idle_known(doc)
    assert "1000 known" in text and "2.00 KB" in text and "29.3 MB" in text


def test_register_in_db_makes_known_stations(tmp_path: Path) -> None:
    db = tmp_path / "known.db"
    bench.register_in_db(db, 25)
    assert bench.count_stations(db) == 25
    bench.register_in_db(db, 30)  # idempotent for the first 25
    assert bench.count_stations(db) == 30


def test_a_call_left_unanswered_is_reported_as_a_timeout() -> None:
    """A central system that upgrades and then never answers: the shard's watchdog ends the CALL."""
    import asyncio

    from websockets.asyncio.server import serve

    from gateway.sim.station import ShardConfig, run_shard

    async def silent(ws) -> None:  # type: ignore[no-untyped-def]
        async for _ in ws:
            pass

    async def scenario() -> tuple[dict[str, int], float]:
        port = free_port()
        async with serve(silent, "127.0.0.1", port, subprotocols=["ocpp1.6"]):  # type: ignore[list-item]
            now = time.monotonic()
            cfg = ShardConfig(url=f"ws://127.0.0.1:{port}", stations=1, prefix="T", connectors=1, password=None,
                              mix="basic", rate=0.0, timeout=0.5, id_tag="TAG", ca=None, t_start=now, ramp=0.0,
                              window_start=now + 0.2, window_end=now + 3.0, hold=0.0)
            stats = await run_shard(cfg, [1])
            return dict(stats.error_kinds), time.monotonic() - now

    kinds, took = asyncio.run(scenario())
    assert kinds == {"timeout": 1}
    assert took < 2.5  # the 0.5 s timeout fired (up to WATCH_EVERY late), not the window's end
