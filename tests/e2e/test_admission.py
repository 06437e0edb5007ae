"""End to end: who may connect, and a removed station that stays removed (issue 9, "Admission").

The central system runs with its default ``--unknown-stations accept``, where
any identity that completes the upgrade is registered: an identity ``ctl``
could not manage must be refused before that, with HTTP 400.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from websockets.asyncio.client import connect as async_connect
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.support.chargepoint import ChargePoint
from tests.support.system import CentralSystem, wait_for

pytestmark = pytest.mark.e2e


def _status(system: CentralSystem, path: str) -> int:
    try:
        with connect(f"ws://127.0.0.1:{system.port}{path}", subprotocols=["ocpp1.6"], open_timeout=10):  # type: ignore[list-item]
            return 101
    except InvalidStatus as refused:
        return refused.response.status_code


@pytest.mark.parametrize("path, why", [
    ("/CP%2FSLASH", "'/'"),
    ("/CP%0AEVIL", "control characters"),
    ("/CP%7FDEL", "control characters"),
    ("/" + "L" * 49, "longer than 48"),
    ("/CP%FF", "UTF-8"),
])
def test_an_identity_ctl_could_not_manage_is_refused_with_400_and_not_registered(
    csms: CentralSystem, path: str, why: str
) -> None:
    before = {s["id"] for s in csms.ctl_ok("station", "list")}
    assert _status(csms, path) == 400
    assert {s["id"] for s in csms.ctl_ok("station", "list")} == before
    assert any(why in line and "refused" in line for line in csms.log().splitlines())


def test_an_identity_of_48_characters_connects_and_ctl_manages_it(csms: CentralSystem) -> None:
    identity = "M" * 48
    with ChargePoint(csms.url, identity) as cp:
        assert cp.booted()["status"] == "Accepted"
    assert csms.ctl_ok("station", "show", identity)["station"]["id"] == identity


def test_ctl_refuses_to_add_a_station_the_handshake_would_refuse(csms: CentralSystem) -> None:
    refused = csms.ctl("station", "add", "N" * 49)
    assert refused.code == 2
    assert "longer than 48" in refused.json["error"]["description"]
    assert csms.ctl("station", "show", "N" * 49).code == 3


def test_removing_a_connected_station_closes_it_and_it_stays_removed(tmp_path_factory) -> None:
    system = CentralSystem(tmp_path_factory.mktemp("reject"), extra_args=["--unknown-stations", "reject"]).start()
    try:
        system.ctl_ok("station", "add", "GONE-1")
        cp = ChargePoint(system.url, "GONE-1").connect()
        cp.booted()
        system.ctl_ok("station", "remove", "GONE-1")
        assert cp.closed.wait(10), "the removed station's connection stayed open"
        # Its disconnect was written after the removal: it must not have brought the row back.
        wait_for(lambda: system.ctl("station", "show", "GONE-1").code == 3, timeout=10,
                 message="the removed station to stay unknown")
        assert _status(system, "/GONE-1") == 404
        assert "GONE-1" not in {s["id"] for s in system.ctl_ok("station", "list")}
    finally:
        system.stop()


# -- password guessing (issue 9, "Authentication") ------------------------------------------


def _login(system: CentralSystem, identity: str, password: str) -> tuple[int, dict[str, str]]:
    import base64

    token = base64.b64encode(f"{identity}:{password}".encode()).decode()
    try:
        with connect(f"ws://127.0.0.1:{system.port}/{identity}", subprotocols=["ocpp1.6"],  # type: ignore[list-item]
                     additional_headers={"Authorization": f"Basic {token}"}, open_timeout=10):
            return 101, {}
    except InvalidStatus as refused:
        return refused.response.status_code, dict(refused.response.headers)


def _metric(system: CentralSystem, name: str, **labels: str) -> float:
    import urllib.request

    body = urllib.request.urlopen(f"http://127.0.0.1:{system.metrics_port}/metrics", timeout=10).read().decode()
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in body.splitlines():
        if line.startswith(f"{name}{{{want}}} ") or (not labels and line.startswith(f"{name} ")):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


GUESSED = "correct-horse-battery"


def test_password_guessing_is_locked_out_with_429_and_the_right_password_works_after_the_wait(
    csms: CentralSystem, station_id: str
) -> None:
    csms.ctl_ok("station", "add", station_id, "--password", GUESSED)
    # Every host keeps its own counts: enough wrong tries to lock this identity out on each.
    seen = []
    for n in range(12):
        status, headers = _login(csms, station_id, f"wrong-{n}")
        seen.append(status)
        if status == 429:
            assert int(headers["retry-after"]) >= 1
    assert seen[0] == 401 and 429 in seen, seen
    # Locked out: even the right password is not checked now.
    assert _login(csms, station_id, GUESSED)[0] == 429
    # After the lock-out the right password works again.
    wait_for(lambda: _login(csms, station_id, GUESSED)[0] == 101, timeout=30, interval=0.5,
             message="the right password to work after the lock-out")
    log = csms.log()
    assert GUESSED not in log and "wrong-3" not in log
    failed = [line for line in log.splitlines() if f"station {station_id}: failed login" in line]
    assert failed and all(" WARNING " in line for line in failed)
    wait_for(lambda: _metric(csms, "csms_login_failures_total", reason="wrong-credentials") >= 3
             and _metric(csms, "csms_login_failures_total", reason="throttled") >= 1,
             message="the failed logins to be counted")


def test_a_flood_of_wrong_passwords_is_answered_without_hashing_and_others_still_connect(
    csms: CentralSystem, station_id: str
) -> None:
    csms.ctl_ok("station", "add", station_id, "--password", GUESSED)
    throttled_before = _metric(csms, "csms_login_failures_total", reason="throttled")
    statuses = [_login(csms, station_id, f"flood-{n}")[0] for n in range(150)]
    assert set(statuses) <= {401, 429} and statuses.count(429) >= 150 - 2 * 3 - 2, statuses.count(401)
    # Answered 429 before any hash: counted as throttled, one per refusal.
    wait_for(lambda: _metric(csms, "csms_login_failures_total", reason="throttled") - throttled_before
             >= statuses.count(429), message="the throttled logins to be counted")
    with ChargePoint(csms.url, station_id + "-BYSTANDER") as other:  # another station is admitted
        assert other.booted()["status"] == "Accepted"


def test_the_authorization_header_is_never_logged_even_at_debug(tmp_path_factory) -> None:
    import base64

    system = CentralSystem(tmp_path_factory.mktemp("debug"), extra_args=["--log-level", "DEBUG"]).start()
    try:
        system.ctl_ok("station", "add", "DBG-1", "--password", GUESSED)
        assert _login(system, "DBG-1", "not-it")[0] == 401
        with ChargePoint(system.url, "DBG-1", password=GUESSED) as cp:
            assert cp.booted()["status"] == "Accepted"
    finally:
        system.stop()
    log = system.log()
    assert "DEBUG" in log  # the level was on
    for secret in (GUESSED, "not-it", base64.b64encode(f"DBG-1:{GUESSED}".encode()).decode()):
        assert secret not in log
    assert "Authorization" not in log and "authorization:" not in log.lower()


def test_a_plain_http_request_registers_nothing(csms: CentralSystem) -> None:
    import urllib.error
    import urllib.request

    before = {s["id"] for s in csms.ctl_ok("station", "list")}
    for path in ("/wp-login.php", "/ocpp/PROBE-1", "/PROBE-2?x=1"):
        with pytest.raises(urllib.error.HTTPError) as answered:
            urllib.request.urlopen(f"http://127.0.0.1:{csms.port}{path}", timeout=10)
        assert answered.value.code in (400, 426), (path, answered.value.code)
    assert {s["id"] for s in csms.ctl_ok("station", "list")} == before


# -- --unknown-stations pending, and the caps on unknown identities --------------------------


def test_pending_mode_lists_an_unknown_identity_and_approve_lets_it_in(tmp_path_factory) -> None:
    system = CentralSystem(tmp_path_factory.mktemp("pending"), extra_args=["--unknown-stations", "pending"]).start()
    try:
        assert _status(system, "/WAITING-1") == 404
        assert _status(system, "/WAITING-1") == 404
        wait_for(lambda: [p["id"] for p in system.ctl_ok("station", "list", "--pending")] == ["WAITING-1"],
                 message="the attempt to be listed")
        (listed,) = system.ctl_ok("station", "list", "--pending")
        assert listed["attempts"] == 2 and listed["address"] == "127.0.0.1"
        assert "WAITING-1" not in {s["id"] for s in system.ctl_ok("station", "list")}
        human = system.ctl("station", "list", "--pending")  # a table for people
        assert human.code == 0 and "WAITING-1" in human.stdout and "attempts" in human.stdout

        assert system.ctl("station", "approve", "NEVER-TRIED").code == 3
        assert system.ctl_ok("station", "approve", "WAITING-1")["id"] == "WAITING-1"
        assert system.ctl_ok("station", "list", "--pending") == []
        with ChargePoint(system.url, "WAITING-1") as cp:
            assert cp.booted()["status"] == "Accepted"
    finally:
        system.stop()


def test_the_caps_on_unknown_identities_bite_and_say_so(tmp_path_factory) -> None:
    pending = CentralSystem(tmp_path_factory.mktemp("capped-pending"), extra_args=[
        "--unknown-stations", "pending", "--max-pending", "3", "--hosts", "1"]).start()
    try:
        for n in range(8):
            assert _status(pending, f"/KNOCK-{n}") == 404
        wait_for(lambda: len(pending.ctl_ok("station", "list", "--pending")) == 3, message="three listed")
        assert len(pending.ctl_ok("station", "list", "--pending")) == 3  # and no more
        assert any("admission cap" in line and "--max-pending 3" in line for line in pending.log().splitlines())
    finally:
        pending.stop()

    accepting = CentralSystem(tmp_path_factory.mktemp("capped-accept"), extra_args=[
        "--unknown-per-minute", "2", "--hosts", "1"]).start()
    try:
        assert [_status(accepting, f"/NEW-{n}") for n in range(4)] == [101, 101, 503, 503]
        assert {s["id"] for s in accepting.ctl_ok("station", "list")} == {"NEW-0", "NEW-1"}
        assert any("admission cap" in line and "--unknown-per-minute 2" in line for line in accepting.log().splitlines())
        with ChargePoint(accepting.url, "NEW-0") as known:  # a known station is not held back
            assert known.booted()["status"] == "Accepted"
    finally:
        accepting.stop()


# -- one identity, several connections (issue 9, "Admission") ----------------------------------


async def _connect_at_once(url: str, count: int) -> list[tuple[int, Any]]:
    """Open ``count`` connections to ``url`` at once: (101, the connection) or (HTTP status, None)."""

    async def one() -> tuple[int, Any]:
        try:
            return 101, await async_connect(url, subprotocols=["ocpp1.6"], open_timeout=15)  # type: ignore[list-item]
        except InvalidStatus as refused:
            return refused.response.status_code, None

    return list(await asyncio.gather(*(one() for _ in range(count))))


async def _served(ws: Any, station_id: str) -> dict:
    """A BootNotification over ``ws``, answered; then nothing closes it within a second."""
    await ws.send(json.dumps([2, "boot-1", "BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"}]))
    answer = json.loads(await asyncio.wait_for(ws.recv(), 10))
    assert answer[:2] == [3, "boot-1"], answer
    with pytest.raises(asyncio.TimeoutError):  # no close frame, no replacement, nothing
        await asyncio.wait_for(ws.recv(), 1.0)
    return answer[2]


def test_overlapping_handshakes_of_one_identity_upgrade_one_and_refuse_the_others_with_409(
    tmp_path_factory,
) -> None:
    # Two hosts: the kernel spreads the connections over both, so the lease decides across processes.
    system = CentralSystem(tmp_path_factory.mktemp("twins"), extra_args=["--hosts", "2"]).start()

    async def attempt(station_id: str) -> list[int]:
        outcomes = await _connect_at_once(f"{system.url}/{station_id}", 8)
        upgraded = [ws for status, ws in outcomes if status == 101]
        try:
            assert len(upgraded) == 1, [status for status, _ in outcomes]
            assert (await _served(upgraded[0], station_id))["status"] == "Accepted"
        finally:
            for ws in upgraded:
                await ws.close()
        return sorted(status for status, _ in outcomes)

    try:
        for round_ in range(3):
            station_id = f"TWIN-{round_}"
            assert asyncio.run(attempt(station_id)) == [101] + [409] * 7
        log = system.log()
        assert "replaced by a new connection" not in log  # no 101 was taken back
        refused = [line for line in log.splitlines() if "refused: 409" in line and "TWIN-0" in line]
        assert len(refused) == 7 and all("a newer connection of this charge point" in line for line in refused)
    finally:
        system.stop()


def test_a_connection_upgraded_before_a_newer_one_is_closed_and_the_newer_one_is_served(
    csms: CentralSystem, station_id: str
) -> None:
    older = ChargePoint(csms.url, station_id).connect()
    try:
        older.booted()
        with ChargePoint(csms.url, station_id) as newer:
            assert older.closed.wait(10), "the older connection stayed open"
            assert older.ws is not None and older.ws.close_code == 1000
            assert older.ws.close_reason == "replaced by a new connection"
            assert "currentTime" in newer.call("Heartbeat", {})
            assert csms.ctl_ok("station", "show", station_id)["station"]["connected"] is True
    finally:
        older.close()
