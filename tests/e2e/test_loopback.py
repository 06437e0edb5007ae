"""End to end: with ``--host 0.0.0.0`` only the OCPP and metrics ports face the network.

Thespian binds every actor socket to all interfaces and unpickles what arrives
there (ARCHITECTURE.md, "Thespian: what to know"): the actor system must listen
on loopback only. This test lists every listening TCP socket (IPv4 and IPv6)
held by any process of a running instance, found by the CSMS_INSTANCE marker,
after the control script has been used and a station actor has been started.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.chargepoint import ChargePoint
from tests.support.procnet import connection_holders, listening_sockets
from tests.support.system import CentralSystem, instance_pids, wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def public_csms(tmp_path_factory) -> Iterator[CentralSystem]:
    # extra_args come after CentralSystem's own "--host 127.0.0.1": the last one wins.
    system = CentralSystem(
        tmp_path_factory.mktemp("csms-public"), extra_args=["--host", "0.0.0.0"]
    ).start()
    try:
        yield system
    finally:
        system.stop()


def test_only_the_ocpp_and_metrics_ports_listen_beyond_loopback(public_csms: CentralSystem) -> None:
    with ChargePoint(public_csms.url, "LOOPBACK-1") as cp:
        cp.booted()
        assert public_csms.ctl_ok("status")["stations_connected"] == 1
        assert cp.ws is not None
        cp_port = cp.ws.socket.getsockname()[1]
        station_actor = wait_for(
            lambda: connection_holders(
                instance_pids(public_csms.admin_port),
                local_port=public_csms.port,
                remote_port=cp_port,
            ),
            10,
            message="the station actor holding the connection",
        )[0]

        listening = listening_sockets(instance_pids(public_csms.admin_port))

    exposed = {(str(s.local_address), s.local_port) for s in listening if not s.is_loopback}
    assert exposed == {("0.0.0.0", public_csms.port), ("0.0.0.0", public_csms.metrics_port)}
    on_loopback = {s.local_port for s in listening if s.is_loopback}
    assert public_csms.admin_port in on_loopback
    # Every actor process has its own Thespian port: the station host's is on loopback too,
    # and the only socket it listens on beyond loopback is the OCPP port it accepts on.
    assert any(station_actor in pids and s.is_loopback for s, pids in listening.items())
    host_public = {s.local_port for s, pids in listening.items() if station_actor in pids and not s.is_loopback}
    assert host_public == {public_csms.port}
