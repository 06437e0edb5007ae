"""End to end: station actors crash, the central system restarts and shuts down.

(a) A station actor killed with SIGKILL drops its charge point's connection;
    the registry starts a fresh actor that reloads the station from storage, so
    the charge point reconnects and is served without a new BootNotification,
    and its transaction goes on.
(b) The whole central system is stopped and started again on the same
    database: stations are served without BootNotification (OCPP-J §5.4) and
    transaction ids keep increasing (OCPP 1.6 errata 3.54).
(c) Shutdown with connected stations ends every process of the instance within
    10 s and keeps every committed row.

The station actor's pid is found from outside, as the process of the instance
that holds the server end of the charge point's TCP connection (/proc).
"""

from __future__ import annotations

import itertools
import json
import os
import signal
from collections.abc import Iterator

import pytest

from tests.support.chargepoint import ChargePoint, now_iso, served_without_boot
from tests.support.system import CentralSystem, instance_pids, station_actor_pid, wait_for

pytestmark = pytest.mark.e2e

TAG = "SUPERVISED"
RECONNECT_DEADLINE = 15.0
_ids = itertools.count(1)


@pytest.fixture
def station_id() -> str:
    """A short identity, unique within the run, that says which module the station belongs to."""
    return f"SUP-{next(_ids)}"


@pytest.fixture
def system(tmp_path) -> Iterator[CentralSystem]:
    """A central system of its own (these tests kill and restart things)."""
    started = CentralSystem(tmp_path).start()
    try:
        yield started
    finally:
        started.stop()


def reconnect(system: CentralSystem, station_id: str) -> ChargePoint:
    """Reconnect like a charge point does, retrying until the deadline."""
    return wait_for(
        lambda: served_without_boot(system.url, station_id),
        RECONNECT_DEADLINE,
        interval=0.2,
        message=f"{station_id} to reconnect and be served without BootNotification",
    )


def meter_value(cp: ChargePoint, transaction_id: int, wh: int) -> None:
    cp.call(
        "MeterValues",
        {
            "connectorId": 1,
            "transactionId": transaction_id,
            "meterValue": [
                {
                    "timestamp": now_iso(),
                    "sampledValue": [
                        {"value": str(wh), "measurand": "Energy.Active.Import.Register"}
                    ],
                }
            ],
        },
    )


def active_ids(system: CentralSystem) -> list[int]:
    return [tx["id"] for tx in system.ctl_ok("tx", "list", "--active")]


# -- (a) crash ------------------------------------------------------------------------


def test_a_killed_station_actor_is_restarted_and_its_transaction_goes_on(
    system: CentralSystem, station_id: str
) -> None:
    system.ctl_ok("tag", "add", TAG)
    cp = ChargePoint(system.url, station_id).connect()
    cp.booted()
    tx = cp.start(1, TAG, meter_start=10_000)["transactionId"]
    meter_value(cp, tx, 10_400)
    victim = station_actor_pid(system, cp)
    assert victim != system.process.pid  # type: ignore[union-attr]

    os.kill(victim, signal.SIGKILL)

    assert cp.closed.wait(10), "the charge point's connection stayed open after its actor died"
    cp.close()
    again = reconnect(system, station_id)
    try:
        assert station_actor_pid(system, again) != victim
        assert tx in active_ids(system)
        meter_value(again, tx, 10_900)
        assert again.stop(tx, 11_000, reason="Local") == {}
    finally:
        again.close()
    shown = system.ctl_ok("tx", "show", str(tx))
    assert (shown["active"], shown["meter_start"], shown["meter_stop"], shown["energy_wh"]) == (
        False,
        10_000,
        11_000,
        1_000,
    )
    assert [v["sampled_value"][0]["value"] for v in shown["meter_values"]] == ["10400", "10900"]
    assert tx not in active_ids(system)


def test_a_remote_start_profile_survives_a_restart_of_the_station_actor_before_the_transaction(
    system: CentralSystem, station_id: str
) -> None:
    system.ctl_ok("tag", "add", TAG)
    profile = {
        "chargingProfileId": 77, "stackLevel": 1, "chargingProfilePurpose": "TxProfile", "chargingProfileKind": "Relative",
        "chargingSchedule": {"chargingRateUnit": "A", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 12.0}]},
    }
    cp = ChargePoint(system.url, station_id, handlers={"RemoteStartTransaction": lambda payload: {"status": "Accepted"}}).connect()
    cp.booted()
    result = system.ctl("remote-start", station_id, "--id-tag", TAG, "--connector", "1", "--profile", json.dumps(profile))
    assert result.code == 0 and result.json["response"] == {"status": "Accepted"}, result.stdout
    victim = station_actor_pid(system, cp)

    os.kill(victim, signal.SIGKILL)  # after the Accepted, before the StartTransaction

    assert cp.closed.wait(10), "the charge point's connection stayed open after its actor died"
    cp.close()
    again = reconnect(system, station_id)
    try:
        tx = again.start(1, TAG, meter_start=0)["transactionId"]
        listed = {c["connector_id"]: c for c in system.ctl_ok("profile", "list", station_id)}
        assert listed[1]["profiles"] == [{**profile, "transactionId": tx}]
        assert listed[1]["limit_now_a"] == 12.0
    finally:
        again.close()


# -- (b) restart of the whole central system -----------------------------------------------


def test_after_a_restart_on_the_same_database_stations_are_served_without_boot_and_ids_keep_increasing(
    tmp_path, station_id: str
) -> None:
    first = CentralSystem(tmp_path).start()
    try:
        first.ctl_ok("tag", "add", TAG)
        with ChargePoint(first.url, station_id) as cp:
            cp.booted()
            running = cp.start(1, TAG, meter_start=0)["transactionId"]
            finished = cp.start(2, TAG, meter_start=500)["transactionId"]
            cp.stop(finished, 700)
        ids_before = {tx["id"] for tx in first.ctl_ok("tx", "list")}
        assert ids_before == {running, finished}
    finally:
        first.stop()

    # Same database and same OCPP URL, as after an operator's restart.
    second = CentralSystem(tmp_path, port=first.port, db=first.db).start()
    try:
        cp = reconnect(second, station_id)
        try:
            new = cp.start(2, TAG, meter_start=700)["transactionId"]
            assert new > max(ids_before)
            assert cp.stop(running, 300) == {}
            assert cp.stop(new, 900) == {}
        finally:
            cp.close()
        assert second.ctl_ok("tx", "show", str(running))["energy_wh"] == 300
        assert {tx["id"] for tx in second.ctl_ok("tx", "list")} == ids_before | {new}
    finally:
        second.stop()


# -- (c) shutdown -----------------------------------------------------------------------


def test_stop_ends_every_process_within_ten_seconds_and_committed_data_survives(tmp_path) -> None:
    system = CentralSystem(tmp_path).start()
    stations = [f"SHUT-{next(_ids)}" for _ in range(5)]
    cps: list[ChargePoint] = []
    try:
        system.ctl_ok("tag", "add", TAG)
        committed = {}
        for n, name in enumerate(stations):
            cp = ChargePoint(system.url, name).connect()
            cps.append(cp)
            cp.booted()
            tx = cp.start(1, TAG, meter_start=100 * n)["transactionId"]
            meter_value(cp, tx, 100 * n + 50)
            committed[name] = tx
        cps[0].stop(committed[stations[0]], 90)
        assert system.ctl_ok("status")["stations_connected"] == len(stations)
        # run.py, the actor system's admin, the helpers and one actor per station
        assert len(instance_pids(system.admin_port)) > len(stations)
    finally:
        seconds = system.stop()
    try:
        assert seconds < 10, f"stopping took {seconds:.1f} s"
        assert instance_pids(system.admin_port) == []
        for cp in cps:
            assert cp.closed.wait(5), f"{cp.station_id} still connected after the shutdown"
    finally:
        for cp in cps:
            cp.close()

    again = CentralSystem(tmp_path, db=system.db).start()
    try:
        assert {s["id"] for s in again.ctl_ok("station", "list")} >= set(stations)
        assert [t["id_tag"] for t in again.ctl_ok("tag", "list")] == [TAG]
        first = again.ctl_ok("tx", "show", str(committed[stations[0]]))
        assert (first["active"], first["meter_stop"], first["energy_wh"]) == (False, 90, 90)
        for n, name in enumerate(stations[1:], start=1):
            shown = again.ctl_ok("tx", "show", str(committed[name]))
            assert shown["active"] is True and shown["meter_start"] == 100 * n
            assert [v["sampled_value"][0]["value"] for v in shown["meter_values"]] == [
                str(100 * n + 50)
            ]
        assert again.ctl_ok("status")["stations_connected"] == 0
    finally:
        again.stop()
