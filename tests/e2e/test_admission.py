"""End to end: who may connect, and a removed station that stays removed (issue 9, "Admission").

The central system runs with its default ``--unknown-stations accept``, where
any identity that completes the upgrade is registered: an identity ``ctl``
could not manage must be refused before that, with HTTP 400.
"""

from __future__ import annotations

import pytest
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
