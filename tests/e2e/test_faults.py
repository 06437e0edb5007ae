"""End to end: kill -9 of each process of a node with two station hosts, and its repair.

(1) The host serving a charge point is killed in the middle of a transaction,
    with MeterValues streaming: only the connections on that host drop, the
    charge points on the other host go on on the same connection, the dropped
    ones reconnect and are served without a new BootNotification, the
    transaction is stopped, and every StartTransaction, MeterValues and
    StopTransaction that got a CALLRESULT is in the database (read here with
    sqlite3, read-only). A new host takes the dead one's place.
(2) Each other role is killed in turn (registry, scheduler, exporter, the
    HTTP API, gateway, a host): within ``REPAIR_DEADLINE`` every role has a live process
    again, ``ctl status`` works, a new charge point boots, and a reservation
    timer that came due meanwhile still fires (the reservation is Expired).

Which process plays which role is read from outside (/proc), since every
actor process of the node has the same command line:

| role      | how it is recognised                                                   |
|-----------|------------------------------------------------------------------------|
| host      | listens on the OCPP port (one SO_REUSEPORT member each)                |
| exporter  | listens on the metrics port                                            |
| api       | listens on the HTTP API port                                           |
| registry  | the parent of the hosts                                                |
| gateway   | a child of the registry holding a TCP socket bound to the OCPP port but not listening |
| scheduler | the registry's other child                                             |

A bound, never-listening TCP socket is in no table of /proc/net (the kernel
lists listening and connected sockets only), so the gateway's socket is
looked at directly: it is duplicated with pidfd_getfd(2) and asked for its
address and SO_ACCEPTCONN. Where that is not permitted, a registry child
holding a socket that /proc/net does not list stands in.
"""

from __future__ import annotations

import ctypes
import itertools
import json
import os
import signal
import socket
import sqlite3
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest

from tests.support.chargepoint import ChargePoint, now_iso, served_without_boot
from tests.support.procnet import listening_sockets, socket_inodes
from tests.support.system import CentralSystem, instance_pids, station_actor_pid, wait_for

pytestmark = pytest.mark.e2e

HOSTS = 2
TAG = "FAULTS"
REPAIR_DEADLINE = 30.0  # a killed process has a successor, and the node serves again, within this
DROP_DEADLINE = 10.0  # connections of a killed host are seen closed by their charge points
EXPIRES_IN = 4  # seconds: the reservation's timer is due while the node repairs itself
MAX_CHARGE_POINTS = 24  # connected one by one until every host serves at least one
MIN_CHARGE_POINTS = 4
ROLES = ("registry", "scheduler", "exporter", "api", "gateway", "host")
_ids = itertools.count(1)
T = TypeVar("T")


# -- the node -------------------------------------------------------------------------


@pytest.fixture
def system(tmp_path) -> Iterator[CentralSystem]:
    """A node of its own with two station hosts (these tests kill its processes)."""
    started = CentralSystem(tmp_path, extra_args=["--hosts", str(HOSTS)]).start()
    try:
        yield started
    finally:
        started.stop()  # asserts that no process of the instance is left


def log_tail(system: CentralSystem, lines: int = 40) -> str:
    return "\n".join(system.log().splitlines()[-lines:])


def within(system: CentralSystem, predicate: Callable[[], T], what: str, timeout: float = REPAIR_DEADLINE) -> T:
    """``wait_for`` that shows the node's processes and the end of its log when the deadline passes."""
    def holds() -> T:
        if system.process is not None and system.process.poll() is not None:
            raise AssertionError(f"the central system exited ({system.process.returncode}) instead")
        return predicate()

    try:
        return wait_for(holds, timeout, interval=0.2, message=what)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nprocesses by role: {roles(system)}\n"
                             f"--- end of the central system's log ---\n{log_tail(system)}") from None


def station_id(prefix: str) -> str:
    return f"{prefix}-{next(_ids)}-{os.getpid() % 10_000}"


# -- who is who (from /proc) ------------------------------------------------------------


def _stat(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


def parent(pid: int) -> int:
    try:
        return int(_stat(pid)[1])
    except (OSError, IndexError, ValueError):
        return 0


def alive(pid: int) -> bool:
    try:
        return _stat(pid)[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False


def listed_socket_inodes() -> set[int]:
    """Inodes of every socket some table of /proc/net lists (bound-only TCP sockets are in none)."""
    found: set[int] = set()
    for table, column in (("tcp", 9), ("tcp6", 9), ("udp", 9), ("udp6", 9), ("raw", 9), ("raw6", 9),
                          ("unix", 6), ("netlink", 9), ("packet", 8)):
        try:
            with open(f"/proc/net/{table}") as f:
                lines = f.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            try:
                found.add(int(parts[column]))
            except (IndexError, ValueError):
                pass
    return found


_SYS_PIDFD_GETFD = 438  # the same number on every Linux architecture


def _bound_only_ports(pid: int) -> set[int] | None:
    """Ports of the TCP sockets ``pid`` holds bound but not listening; None if it cannot be looked at."""
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    ports: set[int] = set()
    try:
        for name in os.listdir(f"/proc/{pid}/fd"):
            try:
                if not os.readlink(f"/proc/{pid}/fd/{name}").startswith("socket:["):
                    continue
            except OSError:
                continue
            fd = libc.syscall(_SYS_PIDFD_GETFD, pidfd, int(name), 0)
            if fd < 0:
                if ctypes.get_errno() in (1, 13, 38):  # EPERM, EACCES, ENOSYS: not allowed here
                    return None
                continue  # that descriptor was closed meanwhile
            sock = socket.socket(fileno=fd)
            try:
                if sock.type == socket.SOCK_STREAM and sock.family in (socket.AF_INET, socket.AF_INET6):
                    listening = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
                    try:
                        sock.getpeername()
                        connected = True
                    except OSError:
                        connected = False
                    if not listening and not connected:
                        ports.add(sock.getsockname()[1])
            except OSError:
                pass
            finally:
                sock.close()  # our duplicate only
    except OSError:
        return ports
    finally:
        os.close(pidfd)
    return ports


def holds_the_ocpp_address(pid: int, port: int) -> bool:
    ports = _bound_only_ports(pid)
    if ports is None:  # fallback: a socket that no /proc/net table lists
        return bool(socket_inodes(pid) - listed_socket_inodes())
    return port in ports


@dataclass
class Roles:
    registry: list[int] = field(default_factory=list)
    scheduler: list[int] = field(default_factory=list)
    exporter: list[int] = field(default_factory=list)
    api: list[int] = field(default_factory=list)
    gateway: list[int] = field(default_factory=list)
    host: list[int] = field(default_factory=list)

    def of(self, role: str) -> list[int]:
        return getattr(self, role)

    def complete(self) -> bool:
        """One process in each role, ``HOSTS`` hosts."""
        return all(len(self.of(r)) == 1 for r in ROLES if r != "host") and len(self.host) == HOSTS

    def pids(self) -> set[int]:
        return {pid for role in ROLES for pid in self.of(role)}


def roles(system: CentralSystem) -> Roles:
    pids = [p for p in instance_pids(system.admin_port) if alive(p)]
    listening = listening_sockets(pids)
    found = Roles()
    found.host = sorted({p for s, held in listening.items() if s.local_port == system.port for p in held})
    found.exporter = sorted({p for s, held in listening.items() if s.local_port == system.metrics_port for p in held})
    found.api = sorted({p for s, held in listening.items() if s.local_port == system.api_port for p in held})
    found.registry = sorted({parent(p) for p in found.host} - {0})
    if len(found.registry) != 1:
        return found
    registry = found.registry[0]
    children = [p for p in pids if parent(p) == registry and p not in found.host + found.exporter + found.api]
    # (The database file does not tell the scheduler: every child inherits the registry's descriptors.)
    found.gateway = sorted(p for p in children if holds_the_ocpp_address(p, system.port))
    found.scheduler = sorted(p for p in children if p not in found.gateway)
    return found


def complete_roles(system: CentralSystem, without: int = 0) -> Roles | None:
    found = roles(system)
    return found if found.complete() and without not in found.pids() else None


def process_count(system: CentralSystem) -> int:
    """Live processes of the instance: run.py, Thespian's admin and logger, and the node's actors."""
    return len([p for p in instance_pids(system.admin_port) if alive(p)])


# -- charge points ------------------------------------------------------------------------


def connect_booted(system: CentralSystem, name: str, handlers: dict[str, Any] | None = None) -> ChargePoint:
    cp = ChargePoint(system.url, name, handlers=handlers).connect()
    cp.booted()
    return cp


def try_boot(system: CentralSystem, name: str) -> bool:
    """Connect a new charge point once and send BootNotification; True if Accepted."""
    cp = ChargePoint(system.url, name)
    try:
        cp.connect(timeout=3)
        return cp.boot()["status"] == "Accepted"
    except Exception:
        return False
    finally:
        cp.close()


def meter_values_payload(transaction_id: int, wh: int) -> dict:
    return {
        "connectorId": 1,
        "transactionId": transaction_id,
        "meterValue": [{"timestamp": now_iso(),
                        "sampledValue": [{"value": str(wh), "measurand": "Energy.Active.Import.Register"}]}],
    }


class MeterStream(threading.Thread):
    """Sends MeterValues one after the other (each with a new register value) until the connection fails.

    ``sent`` are the values sent, ``acknowledged`` those answered with a CALLRESULT."""

    def __init__(self, cp: ChargePoint, transaction_id: int, start_wh: int) -> None:
        super().__init__(daemon=True)
        self.cp, self.transaction_id, self.wh = cp, transaction_id, start_wh
        self.sent: list[int] = []
        self.acknowledged: list[int] = []
        self.ended = threading.Event()
        self.failure = ""

    def run(self) -> None:
        try:
            while not self.ended.is_set():
                self.wh += 10
                self.sent.append(self.wh)
                assert self.cp.call("MeterValues", meter_values_payload(self.transaction_id, self.wh), timeout=5) == {}
                self.acknowledged.append(self.wh)
                self.ended.wait(0.02)  # pacing, a few dozen per second
        except Exception as exc:  # the connection went away under the CALL
            self.failure = f"{type(exc).__name__}: {exc}"


# -- the database, read-only -----------------------------------------------------------------


def read_db(system: CentralSystem, sql: str, *args: Any) -> list[sqlite3.Row]:
    conn = sqlite3.connect(f"file:{system.db}?mode=ro", uri=True, timeout=10)
    try:
        conn.row_factory = sqlite3.Row
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def stored_meter_values(system: CentralSystem, transaction_id: int) -> list[int]:
    rows = read_db(system, "SELECT sampled_value FROM meter_values WHERE transaction_id = ? ORDER BY id", transaction_id)
    return [int(json.loads(r["sampled_value"])[0]["value"]) for r in rows]


def stored_transaction(system: CentralSystem, transaction_id: int) -> dict | None:
    rows = read_db(system, "SELECT * FROM transactions WHERE id = ?", transaction_id)
    return dict(rows[0]) if rows else None


# -- (1) the host of a charge point dies in the middle of a transaction ------------------


def test_killing_the_host_of_a_charging_station_drops_only_its_connections_and_loses_no_acknowledged_message(
    system: CentralSystem,
) -> None:
    system.ctl_ok("tag", "add", TAG)
    before = within(system, lambda: complete_roles(system), "every role of the node to be up")
    processes = process_count(system)
    cps: list[ChargePoint] = []
    try:
        # Charge points connect until each host serves at least one (the kernel spreads them).
        by_host: dict[int, list[ChargePoint]] = {pid: [] for pid in before.host}
        while len(cps) < MAX_CHARGE_POINTS and (len(cps) < MIN_CHARGE_POINTS or not all(by_host.values())):
            cp = connect_booted(system, station_id("HOSTKILL"))
            cps.append(cp)
            by_host.setdefault(station_actor_pid(system, cp), []).append(cp)
        assert set(by_host) == set(before.host), f"connections held by processes that are not hosts: {by_host}"
        assert all(by_host.values()), f"the kernel put all {len(cps)} connections on one host"
        victim = next(pid for pid in before.host if by_host[pid])
        dropped, kept = by_host[victim], [cp for pid, held in by_host.items() if pid != victim for cp in held]

        # A transaction on each charge point; the one on the victim host streams MeterValues.
        started = {cp.station_id: cp.start(1, TAG, meter_start=1_000 * n)["transactionId"] for n, cp in enumerate(cps)}
        charging = dropped[0]
        tx = started[charging.station_id]
        meter_start = 1_000 * cps.index(charging)
        stream = MeterStream(charging, tx, meter_start)
        stream.start()
        within(system, lambda: len(stream.acknowledged) >= 5, "five MeterValues to be answered", 10)
        kept_sockets = {cp.station_id: cp.ws.socket.getsockname() for cp in kept}  # type: ignore[union-attr]

        os.kill(victim, signal.SIGKILL)
        killed_at = time.monotonic()

        for cp in dropped:
            assert cp.closed.wait(DROP_DEADLINE), f"{cp.station_id} stayed connected to the killed host"
        dropped_after = time.monotonic() - killed_at
        stream.join(10)  # its next (or its pending) CALL fails with the connection
        assert not stream.is_alive() and stream.failure, "the MeterValues stream did not notice its connection drop"
        for cp in kept:
            assert not cp.closed.is_set(), f"{cp.station_id} on the other host lost its connection"
            assert cp.ws.socket.getsockname() == kept_sockets[cp.station_id]  # type: ignore[union-attr]
            assert "currentTime" in cp.call("Heartbeat", timeout=5)

        # The dropped charge points reconnect (as real ones do) and are served without BootNotification.
        for cp in dropped:
            cp.close()
        again = {
            cp.station_id: within(system, lambda name=cp.station_id: served_without_boot(system.url, name),
                                  f"{cp.station_id} to reconnect and be served without BootNotification")
            for cp in dropped
        }
        reconnected_after = time.monotonic() - killed_at
        cps += list(again.values())
        after = within(system, lambda: complete_roles(system, without=victim),
                       "a new station host to replace the killed one")
        replaced_after = time.monotonic() - killed_at
        assert victim not in after.host and len(set(after.host) - set(before.host)) == 1
        within(system, lambda: process_count(system) == processes, f"the node to have {processes} processes again")
        assert (after.registry, after.scheduler, after.gateway, after.exporter, after.api) == (
            before.registry, before.scheduler, before.gateway, before.exporter, before.api)  # nothing else restarted

        # The transaction goes on and ends on the new connection.
        resumed = again[charging.station_id]
        last = stream.wh + 100
        assert resumed.call("MeterValues", meter_values_payload(tx, last)) == {}
        assert resumed.stop(tx, last + 50, reason="Local") == {}
        for cp in kept:
            assert cp.stop(started[cp.station_id], 1_000 * cps.index(cp) + 500) == {}
        shown = system.ctl_ok("tx", "show", str(tx))
        assert (shown["active"], shown["meter_start"], shown["meter_stop"], shown["energy_wh"]) == (
            False, meter_start, last + 50, last + 50 - meter_start)

        # Every acknowledged StartTransaction, MeterValues and StopTransaction is stored.
        stored = stored_meter_values(system, tx)
        acknowledged = [*stream.acknowledged, last]
        assert len(stored) >= len(acknowledged), (len(stored), len(acknowledged))
        assert set(acknowledged) <= set(stored), f"answered but not stored: {sorted(set(acknowledged) - set(stored))}"
        assert set(stored) <= {*stream.sent, last}, f"stored but never sent: {sorted(set(stored) - {*stream.sent, last})}"
        assert len(stored) == len(set(stored)), "a MeterValues was stored twice"
        assert [int(v["sampled_value"][0]["value"]) for v in shown["meter_values"]] == stored
        for n, cp in enumerate(cps[: len(started)]):
            row = stored_transaction(system, started[cp.station_id])
            assert row is not None and row["meter_start"] == 1_000 * n, row
            if cp in kept or cp is charging:
                assert row["stopped_at"] is not None and row["meter_stop"] is not None, row
            else:  # dropped with the host, not stopped: still open, not abandoned
                assert row["stopped_at"] is None and not row["abandoned"], row
        print(f"\nhost kill: {len(dropped)} of {len(cps) - len(again)} connections dropped in {dropped_after:.2f}s, "
              f"reconnected and served in {reconnected_after:.2f}s, new host after {replaced_after:.2f}s; "
              f"{len(stream.acknowledged)} MeterValues answered before the kill, {len(stored)} stored")
    finally:
        for cp in cps:
            cp.close()


# -- (2) every role, killed in turn ----------------------------------------------------------


def metrics_served(system: CentralSystem) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{system.metrics_port}/metrics", timeout=3) as response:
            return response.status == 200
    except OSError:
        return False


def api_served(system: CentralSystem) -> bool:
    try:
        with urllib.request.urlopen(f"{system.api_url}/healthz", timeout=3) as response:
            return response.status == 200
    except OSError:
        return False


def ctl_status_works(system: CentralSystem) -> bool:
    try:
        return system.ctl("status", timeout=15).code == 0
    except subprocess.TimeoutExpired:
        return False


def reservation_status(system: CentralSystem, reservation_id: int) -> str | None:
    try:
        result = system.ctl("reservation", "list", timeout=15)
    except subprocess.TimeoutExpired:
        return None
    if result.code != 0:
        return None
    return next((r["status"] for r in result.json if r["id"] == reservation_id), None)


@pytest.mark.parametrize("role", ROLES)
def test_a_killed_process_is_replaced_and_the_node_serves_again_with_its_due_timers(
    system: CentralSystem, role: str
) -> None:
    system.ctl_ok("tag", "add", TAG)
    before = within(system, lambda: complete_roles(system), "every role of the node to be up")
    processes = process_count(system)
    cp = connect_booted(system, station_id(f"KILL-{role.upper()}"), handlers={"ReserveNow": lambda p: {"status": "Accepted"}})
    try:
        result = system.ctl("reserve", cp.station_id, "--connector", "1", "--id-tag", TAG,
                            "--expires-in", str(EXPIRES_IN))
        assert result.code == 0, f"ctl reserve exited {result.code}: {result.stdout} {result.stderr}"
        assert result.json["response"] == {"status": "Accepted"}
        reservation_id = result.json["request"]["reservationId"]
        assert cp.wait_call("ReserveNow")["reservationId"] == reservation_id
        assert reservation_status(system, reservation_id) == "Accepted"
        # The expiry timer is the scheduler's (stored) before anything is killed.
        within(system, lambda: read_db(system, "SELECT key FROM timers WHERE data LIKE ?", f'%{reservation_id}%'),
               "the reservation's expiry timer to be stored", 10)
        holder = station_actor_pid(system, cp)
        victim = holder if role == "host" else before.of(role)[0]
        assert victim in before.of(role)

        os.kill(victim, signal.SIGKILL)
        killed_at = time.monotonic()
        timings: dict[str, float] = {}

        def repaired(what: str, predicate: Callable[[], T]) -> T:
            """``predicate`` holds within REPAIR_DEADLINE of the kill; the time it took is noted."""
            value = within(system, predicate, what, max(0.0, killed_at + REPAIR_DEADLINE - time.monotonic()))
            timings[what] = time.monotonic() - killed_at
            return value

        repaired("ctl status", lambda: ctl_status_works(system))
        repaired("new charge point booted", lambda: try_boot(system, station_id(f"NEW-{role.upper()}")))
        repaired("reservation Expired", lambda: reservation_status(system, reservation_id) == "Expired")
        repaired("/metrics", lambda: metrics_served(system))
        repaired("HTTP API", lambda: api_served(system))
        after = repaired(f"every role served, a new {role}", lambda: complete_roles(system, without=victim))
        repaired(f"{processes} processes again", lambda: process_count(system) == processes)

        assert after.of(role) != before.of(role)
        restarted = {r for r in ROLES if after.of(r) != before.of(r)}
        # A killed registry takes its node with it (run.py restores the whole of it); anything else alone.
        assert restarted == (set(ROLES) if role == "registry" else {role}), restarted
        assert reservation_status(system, reservation_id) == "Expired"
        print(f"\n{role} kill: repaired after " + ", ".join(f"{k} {v:.2f}s" for k, v in timings.items()))
    finally:
        cp.close()
