"""Keep-alive: the central system pings, and drops a connection that stays silent."""

from __future__ import annotations

import socket

import pytest
from websockets.client import ClientProtocol
from websockets.uri import parse_uri

from tests.support.chargepoint import ChargePoint
from tests.support.system import CentralSystem, wait_for


@pytest.fixture(scope="module")
def fast_ping(tmp_path_factory):
    system = CentralSystem(tmp_path_factory.mktemp("ping"), extra_args=["--ping-interval", "0.5"]).start()
    yield system
    system.stop()


def _connected(system: CentralSystem, station: str) -> bool:
    return bool(system.ctl_ok("station", "show", station)["station"]["connected"])


def test_a_connection_that_never_answers_pings_is_dropped(fast_ping):
    protocol = ClientProtocol(parse_uri(f"{fast_ping.url}/SILENT1"), subprotocols=["ocpp1.6"])
    sock = socket.create_connection(("127.0.0.1", fast_ping.port), timeout=5)
    try:
        protocol.send_request(protocol.connect())
        for chunk in protocol.data_to_send():
            sock.sendall(chunk)
        response = b""
        while b"\r\n\r\n" not in response:
            response += sock.recv(4096)
        assert response.startswith(b"HTTP/1.1 101")
        wait_for(lambda: _connected(fast_ping, "SILENT1"), 10, message="the station to be connected")
        # From here on the client reads nothing and answers no ping.
        wait_for(lambda: not _connected(fast_ping, "SILENT1"), 10, message="the silent connection to be dropped")
    finally:
        sock.close()


def test_a_charge_point_that_answers_pings_stays_connected(fast_ping):
    with ChargePoint(fast_ping.url, "PONG1") as cp:  # the client library answers pings itself
        cp.booted()
        checks = 0
        # Several ping intervals pass (each ctl round trip takes ~0.2 s); it stays connected.
        while checks < 10:
            assert _connected(fast_ping, "PONG1")
            checks += 1
        assert cp.call("Heartbeat")["currentTime"]
