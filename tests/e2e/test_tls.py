"""End to end over real TLS (issue 10): wss on --port, security profiles 2 and 3, and every refusal.

The certificates are made by the test (``tests.support.certs``): a CA that
signs the server's certificate and the charge points' client certificates,
a second CA nobody trusts, an expired client certificate, and one for another
identity. The node serves wss:// on ``--port`` and plain ws:// on ``--plain-port``.
"""

from __future__ import annotations

import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.exceptions import WebSocketException
from websockets.sync.client import connect

from gateway.sim.ports import free_ports
from gateway.tls import TLS12_CIPHERS
from tests.support.certs import Issued, client_context, issue, make_ca
from tests.support.chargepoint import ChargePoint
from tests.support.system import RUN, CentralSystem, wait_for
from tests.support.tlsnode import handshake_status, metric, ws_plain, wss

PASSWORD = "0123456789abcdef0123"  # 20 bytes: the white paper's AuthorizationKey length


class Pki:
    def __init__(self, folder: Path) -> None:
        self.ca = make_ca(folder)
        self.server = issue(self.ca, folder, "server", "localhost", server=True)
        self.other_ca = make_ca(folder, "other-ca", "Somebody else's CA")
        self.folder = folder

    def client(self, identity: str, *, expired: bool = False, other_ca: bool = False) -> Issued:
        ca = self.other_ca if other_ca else self.ca
        suffix = "-expired" if expired else "-other" if other_ca else ""
        return issue(ca, self.folder, f"client-{identity}{suffix}", identity, expired=expired)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def node(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CentralSystem]:
    plain, = free_ports(1)
    system = CentralSystem(tmp_path_factory.mktemp("tls"), extra_args=[
        "--tls-cert", str(pki.server.cert), "--tls-key", str(pki.server.key),
        "--tls-client-ca", str(pki.ca.cert), "--plain-port", str(plain)]).start()
    system.plain_port = plain  # type: ignore[attr-defined]
    yield system
    system.stop()










# -- TC_086: TLS, server-side certificate -----------------------------------------------------


def test_a_station_connects_over_tls_1_2_or_newer_with_a_whitepaper_suite_and_boots(node: CentralSystem, pki: Pki) -> None:
    context = client_context(pki.ca)
    with ChargePoint(wss(node), "TLS-PLAIN-1", ssl=context) as cp:
        assert cp.boot()["status"] == "Accepted"
        assert cp.ws is not None
        tls = cp.ws.socket
        assert tls.version() in ("TLSv1.2", "TLSv1.3")  # type: ignore[attr-defined]


@pytest.mark.parametrize("suite", ["AES128-GCM-SHA256", "AES256-GCM-SHA384"])
def test_the_whitepaper_rsa_suites_are_served_in_tls_1_2(node: CentralSystem, pki: Pki, suite: str) -> None:
    context = client_context(pki.ca, maximum=ssl.TLSVersion.TLSv1_2, ciphers=suite)
    with ChargePoint(wss(node), f"TLS-{suite}", ssl=context) as cp:
        assert cp.ws is not None
        assert cp.ws.socket.cipher()[0] == suite  # type: ignore[attr-defined]
        assert cp.boot()["status"] == "Accepted"


def test_the_whitepaper_ecdsa_suites_are_served_with_an_ec_certificate(pki: Pki, tmp_path: Path) -> None:
    ec_server = issue(pki.ca, tmp_path, "ec-server", "localhost", server=True, kind="ec")
    system = CentralSystem(tmp_path, extra_args=["--tls-cert", str(ec_server.cert), "--tls-key", str(ec_server.key)]).start()
    try:
        for suite in ("ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384"):
            context = client_context(pki.ca, maximum=ssl.TLSVersion.TLSv1_2, ciphers=suite)
            with ChargePoint(wss(system), f"TLS-EC-{suite[-6:]}", ssl=context) as cp:
                assert cp.ws is not None
                assert cp.ws.socket.cipher()[0] == suite  # type: ignore[attr-defined]
                assert cp.boot()["status"] == "Accepted"
    finally:
        system.stop()


def test_only_gcm_suites_are_offered_in_tls_1_2() -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.set_ciphers(TLS12_CIPHERS)
    names = {c["name"] for c in context.get_ciphers() if c["protocol"] == "TLSv1.2"}
    assert {"ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384",
            "AES128-GCM-SHA256", "AES256-GCM-SHA384"} <= names
    assert all("GCM" in name for name in names)


# -- refusals before any OCPP frame --------------------------------------------------------------


def _handshake_refused(node: CentralSystem, context: ssl.SSLContext, identity: str) -> None:
    before = metric(node, "csms_security_refusals_total", reason="tls-handshake")
    # In TLS 1.3 the client's side of the handshake ends before the server checks its
    # certificate: it then sees the connection closed instead of an HTTP answer. The
    # counter below tells a TLS refusal from any other.
    with pytest.raises((ssl.SSLError, OSError, WebSocketException)):
        with connect(f"{wss(node)}/{identity}", subprotocols=["ocpp1.6"], ssl=context, open_timeout=10):  # type: ignore[list-item]
            pass
    wait_for(lambda: metric(node, "csms_security_refusals_total", reason="tls-handshake") > before,
             message="the refused handshake to be counted")
    assert "refused a TLS connection" in node.log()
    shown = node.ctl("station", "show", identity)
    # An unknown identity is not registered; a known one was never connected.
    assert shown.code == 3 or shown.json["station"]["connected_at"] is None, shown.json


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")
@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1], ids=["TLSv1.0", "TLSv1.1"])
def test_tls_1_0_or_1_1_offered_alone_is_refused(node: CentralSystem, pki: Pki, version: ssl.TLSVersion) -> None:
    context = client_context(pki.ca, minimum=version, maximum=version, ciphers="DEFAULT:@SECLEVEL=0")
    _handshake_refused(node, context, f"OLD-{version.name}")


def test_a_weak_cipher_suite_offered_alone_is_refused(node: CentralSystem, pki: Pki) -> None:
    context = client_context(pki.ca, maximum=ssl.TLSVersion.TLSv1_2, ciphers="AES128-SHA:@SECLEVEL=0")
    _handshake_refused(node, context, "WEAK-1")


def test_a_client_certificate_from_another_ca_is_refused(node: CentralSystem, pki: Pki) -> None:
    node.ctl_ok("station", "add", "SP3-OTHER", "--security-profile", "3")
    _handshake_refused(node, client_context(pki.ca, client=pki.client("SP3-OTHER", other_ca=True)), "SP3-OTHER")


def test_an_expired_client_certificate_is_refused(node: CentralSystem, pki: Pki) -> None:
    node.ctl_ok("station", "add", "SP3-EXPIRED", "--security-profile", "3")
    _handshake_refused(node, client_context(pki.ca, client=pki.client("SP3-EXPIRED", expired=True)), "SP3-EXPIRED")


# -- TC_087: security profile 3 ----------------------------------------------------------------


def test_a_profile_3_station_connects_with_its_own_client_certificate(node: CentralSystem, pki: Pki) -> None:
    node.ctl_ok("station", "add", "SP3-1", "--security-profile", "3")
    with ChargePoint(wss(node), "SP3-1", ssl=client_context(pki.ca, client=pki.client("SP3-1"))) as cp:
        assert cp.boot()["status"] == "Accepted"
    assert node.ctl_ok("station", "show", "SP3-1")["station"]["security_profile"] == 3


def test_a_valid_client_certificate_for_another_identity_is_refused(node: CentralSystem, pki: Pki) -> None:
    node.ctl_ok("station", "add", "SP3-2", "--security-profile", "3")
    before = metric(node, "csms_security_refusals_total", reason="certificate-identity")
    context = client_context(pki.ca, client=pki.client("SP3-SOMEONE-ELSE"))
    assert handshake_status(f"{wss(node)}/SP3-2", context) == 403
    wait_for(lambda: metric(node, "csms_security_refusals_total", reason="certificate-identity") > before,
             message="the refusal to be counted")
    assert any("SP3-2" in line and "client certificate is for 'SP3-SOMEONE-ELSE'" in line for line in node.log().splitlines())


def test_a_profile_3_station_trying_basic_auth_is_refused(node: CentralSystem, pki: Pki) -> None:
    node.ctl_ok("station", "add", "SP3-3", "--security-profile", "3", "--password", PASSWORD)
    before = metric(node, "csms_security_refusals_total", reason="security-profile")
    assert handshake_status(f"{wss(node)}/SP3-3", client_context(pki.ca), PASSWORD, "SP3-3") == 403
    wait_for(lambda: metric(node, "csms_security_refusals_total", reason="security-profile") > before,
             message="the refusal to be counted")
    assert any("SP3-3" in line and "security profile 3 required, the connection has 2" in line
               for line in node.log().splitlines())


# -- TC_085 and profile 2 ---------------------------------------------------------------------


def test_a_profile_2_station_connects_over_wss_with_basic_auth_and_is_refused_on_plain_ws(
    node: CentralSystem, pki: Pki
) -> None:
    node.ctl_ok("station", "add", "SP2-1", "--security-profile", "2", "--password", PASSWORD)
    assert handshake_status(f"{wss(node)}/SP2-1", client_context(pki.ca)) == 401  # TC_085: no Authorization header
    with ChargePoint(wss(node), "SP2-1", ssl=client_context(pki.ca), password=PASSWORD) as cp:
        assert cp.boot()["status"] == "Accepted"
    assert handshake_status(f"{ws_plain(node)}/SP2-1", None, PASSWORD, "SP2-1") == 403


def test_profiles_0_and_1_connect_on_the_plain_port(node: CentralSystem) -> None:
    node.ctl_ok("station", "add", "SP1-1", "--security-profile", "1", "--password", PASSWORD)
    with ChargePoint(ws_plain(node), "SP1-1", password=PASSWORD) as cp:
        assert cp.boot()["status"] == "Accepted"
    with ChargePoint(ws_plain(node), "SP0-1") as cp:
        assert cp.boot()["status"] == "Accepted"


def test_ctl_refuses_profile_1_or_2_for_a_station_without_a_password(node: CentralSystem) -> None:
    refused = node.ctl("station", "add", "SP2-NOPW", "--security-profile", "2")
    assert refused.code == 2 and "--password" in refused.json["error"]["description"]


# -- TC_083: upgrade the security profile ------------------------------------------------------


def test_tc_083_upgrade_from_profile_1_to_2_then_the_old_profile_is_refused(node: CentralSystem, pki: Pki) -> None:
    station = "SP-UPGRADE"
    node.ctl_ok("station", "add", station, "--security-profile", "1", "--password", PASSWORD)
    handlers = {"ChangeConfiguration": lambda p: {"status": "Accepted"}, "Reset": lambda p: {"status": "Accepted"}}
    old = ChargePoint(ws_plain(node), station, password=PASSWORD, handlers=handlers).connect()
    try:
        assert old.boot()["status"] == "Accepted"
        changed = node.ctl_ok("change-config", station, "SecurityProfile", "2")
        assert changed["response"] == {"status": "Accepted"}
        assert node.ctl_ok("reset", station, "--type", "Hard")["response"] == {"status": "Accepted"}
    finally:
        old.close()
    with ChargePoint(wss(node), station, ssl=client_context(pki.ca), password=PASSWORD) as new:
        assert new.boot()["status"] == "Accepted"
        new.status(0, "Available")
    # The old profile is refused from now on (A05.FR.09), the new one still works.
    assert handshake_status(f"{ws_plain(node)}/{station}", None, PASSWORD, station) == 403
    assert handshake_status(f"{wss(node)}/{station}", client_context(pki.ca), PASSWORD, station) == 101
    assert node.ctl_ok("station", "show", station)["station"]["security_profile"] == 2


# -- start-up ------------------------------------------------------------------------------------


def test_a_server_key_below_2048_bits_stops_the_start_with_one_line(pki: Pki, tmp_path: Path) -> None:
    weak = issue(pki.ca, tmp_path, "weak", "localhost", server=True, kind="rsa1024")
    port, metrics_port, admin_port = free_ports(3)
    done = subprocess.run(
        [sys.executable, RUN, "serve", "--host", "127.0.0.1", "--port", str(port), "--metrics-port", str(metrics_port),
         "--admin-port", str(admin_port), "--db", str(tmp_path / "csms.db"),
         "--tls-cert", str(weak.cert), "--tls-key", str(weak.key)],
        capture_output=True, text=True, timeout=60, cwd=str(tmp_path))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "RSA key of 1024 bits" in lines[0] and "2048" in lines[0], done.stderr


# -- the load simulator over wss ---------------------------------------------------------------


def test_the_simulator_loads_a_wss_node_trusting_a_given_ca(node: CentralSystem, pki: Pki) -> None:
    from gateway.sim import simulator
    from gateway.sim.simulator import SimOptions

    report = simulator.run(SimOptions(url=wss(node), stations=4, duration=1.0, warmup=0.2, prefix="SIMTLS",
                                      ca=str(pki.ca.cert)))
    doc = report.to_json()
    assert (doc["booted"], doc["errors"]) == (4, 0), doc["error_samples"]
    assert doc["messages"] > 0
