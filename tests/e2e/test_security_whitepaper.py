"""OCTT's Security Whitepaper cases (TC_073-TC_087) walked over real TLS, as the tool does them.

The simulated charge point answers as the case's steps say; the central
system's steps are ``ctl`` commands. The certificates are the test's own
(``tests.support.certs``): one CA signs the server's certificate and the
stations' client certificates, and is the node's certificate authority too
(``--ca-cert``/``--ca-key``), so that a certificate it issues for a CSR is
accepted when the station reconnects with it (TC_074). ``ctl ca init`` has a
node of its own at the end.
"""

from __future__ import annotations

import base64
import os
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID
from websockets.exceptions import WebSocketException
from websockets.sync.client import connect

from actors.ocpp import pki
from gateway.sim.ports import free_ports
from tests.support.certs import ORGANISATION, Issued, client_context, issue, make_ca
from tests.support.chargepoint import ChargePoint, now_iso
from tests.support.system import CentralSystem, wait_for
from tests.support.tlsnode import handshake_status, metric, ws_plain, wss

PASSWORD = "0123456789abcdef0123"  # 20 bytes: the white paper's AuthorizationKey length
FIRMWARE_URL = "https://firmware.example/cp-2.0.bin"
LOG_URL = "ftp://logs.example/security/"


class Pki:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.ca = make_ca(folder)
        self.server = issue(self.ca, folder, "server", "localhost", server=True)
        self.root2 = make_ca(folder, "root2", "Root 2")  # a root to install and delete (TC_075, TC_076)
        self.signer = issue(self.ca, folder, "firmware-signer", "Firmware signer")

    def client(self, identity: str) -> Issued:
        return issue(self.ca, self.folder, f"client-{identity}", identity)


@pytest.fixture(scope="module")
def pki_files(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def node(pki_files: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CentralSystem]:
    plain, = free_ports(1)
    p = pki_files
    system = CentralSystem(tmp_path_factory.mktemp("wp"), extra_args=[
        "--tls-cert", str(p.server.cert), "--tls-key", str(p.server.key), "--tls-client-ca", str(p.ca.cert),
        "--plain-port", str(plain), "--ca-cert", str(p.ca.cert), "--ca-key", str(p.ca.key),
        "--cpo-name", ORGANISATION, "--firmware-signing-cert", str(p.signer.cert),
        "--firmware-signing-key", str(p.signer.key)]).start()
    system.plain_port = plain  # type: ignore[attr-defined]
    yield system
    system.stop()










def _booted(cp: ChargePoint) -> None:
    assert cp.boot()["status"] == "Accepted"
    for connector in range(cp.connectors + 1):
        cp.status(connector, "Available")


def _sp3(node: CentralSystem, pki_files: Pki, station: str, handlers: dict[str, Any]) -> ChargePoint:
    node.ctl_ok("station", "add", station, "--security-profile", "3")
    context = client_context(pki_files.ca, client=pki_files.client(station))
    cp = ChargePoint(wss(node), station, ssl=context, handlers=handlers).connect()
    _booted(cp)
    return cp


def _csr(identity: str, key: Any) -> str:
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANISATION),
                      x509.NameAttribute(NameOID.COMMON_NAME, identity)])
    csr = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def _new_key(kind: str) -> Any:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048) if kind == "rsa" else ec.generate_private_key(ec.SECP256R1())


def _renew_certificate(node: CentralSystem, cp: ChargePoint, key: Any) -> str:
    """TC_074 steps 1-4: ExtendedTriggerMessage(SignChargePointCertificate), SignCertificate, CertificateSigned."""
    triggered = node.ctl_ok("extended-trigger", cp.station_id, "SignChargePointCertificate")
    assert triggered["response"] == {"status": "Accepted"}
    # Tool check: requestedMessage SignChargePointCertificate, connectorId omitted.
    assert cp.wait_call("ExtendedTriggerMessage") == {"requestedMessage": "SignChargePointCertificate"}
    # Tool check: SignCertificate.conf Accepted.
    assert cp.call("SignCertificate", {"csr": _csr(cp.station_id, key)}) == {"status": "Accepted"}
    return str(cp.wait_call("CertificateSigned")["certificateChain"])


# -- TC_073: update the HTTP Basic password -------------------------------------------------------


def test_tc_073_a_new_authorization_key_is_used_from_the_next_connection_and_the_old_one_refused(
        node: CentralSystem, pki_files: Pki) -> None:
    station, new = "WP-073", "ab" * 18  # the hex form of an 18-byte password (<= 40 hex characters)
    node.ctl_ok("station", "add", station, "--security-profile", "2", "--password", PASSWORD)
    context = client_context(pki_files.ca)
    cp = ChargePoint(wss(node), station, ssl=context, password=PASSWORD,
                     handlers={"ChangeConfiguration": lambda p: {"status": "Accepted"}}).connect()
    try:
        _booted(cp)
        changed = node.ctl_ok("change-config", station, "AuthorizationKey", new)
        assert changed["response"] == {"status": "Accepted"}
        assert cp.wait_call("ChangeConfiguration") == {"key": "AuthorizationKey", "value": new}  # tool check
    finally:
        cp.close()
    with ChargePoint(wss(node), station, ssl=context, password=new) as again:
        _booted(again)
    assert handshake_status(f"{wss(node)}/{station}", context, PASSWORD, station) == 401  # A01.FR.03: the old one no more


# -- TC_074 / TC_077: a certificate for the charge point, by request of the central system --------------


@pytest.mark.parametrize("kind", ["rsa", "ec"])
def test_tc_074_the_central_system_signs_the_csr_and_the_station_reconnects_with_the_new_certificate(
        node: CentralSystem, pki_files: Pki, kind: str, tmp_path: Path) -> None:
    station = f"WP-074-{kind}"
    cp = _sp3(node, pki_files, station, {"ExtendedTriggerMessage": lambda p: {"status": "Accepted"},
                                          "CertificateSigned": lambda p: {"status": "Accepted"}})
    key = _new_key(kind)
    try:
        chain_text = _renew_certificate(node, cp, key)
    finally:
        cp.close()
    # What the 2025-11 revision checks on certificateChain: valid PEM, the CSR's public key,
    # subject CN = the identity, signed by the CA, key size.
    chain = pki.certificates(chain_text)
    leaf = chain[0]
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == station
    assert leaf.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) == \
        key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert leaf.issuer == pki_files.ca.certificate.subject and chain[1] == pki_files.ca.certificate
    pki_files.ca.certificate.public_key().verify(  # type: ignore[union-attr, call-arg]
        leaf.signature, leaf.tbs_certificate_bytes, padding.PKCS1v15(), hashes.SHA256())
    # Kept with its serial and expiry; the station's answer recorded.
    issued = node.ctl_ok("certificate", "list", "--station", station)
    assert [(c["serial"], c["status"]) for c in issued] == [(format(leaf.serial_number, "x"), "Accepted")]
    assert issued[0]["not_after"].startswith(leaf.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M"))
    # The station reconnects with its new certificate: accepted.
    cert_file, key_file = tmp_path / "new.pem", tmp_path / "new.key"
    cert_file.write_text(chain_text)
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    renewed = Issued(cert_file, key_file, leaf, key)
    with ChargePoint(wss(node), station, ssl=client_context(pki_files.ca, client=renewed)) as again:
        _booted(again)


def test_tc_077_a_rejected_certificate_and_its_security_event_are_kept(node: CentralSystem, pki_files: Pki) -> None:
    station = "WP-077"
    cp = _sp3(node, pki_files, station, {"ExtendedTriggerMessage": lambda p: {"status": "Accepted"},
                                          "CertificateSigned": lambda p: {"status": "Rejected"}})
    try:
        before = metric(node, "csms_security_events_total", type="InvalidChargePointCertificate")
        chain = _renew_certificate(node, cp, _new_key("rsa"))
        assert pki.certificates(chain)[0].subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == station
        wait_for(lambda: node.ctl_ok("certificate", "list", "--station", station)[0]["status"] == "Rejected",
                 message="the station's Rejected to be kept")
        # A04.FR.03: every SecurityEventNotification is confirmed.
        assert cp.call("SecurityEventNotification", {"type": "InvalidChargePointCertificate", "timestamp": now_iso(),
                                                     "techInfo": "chain does not verify"}) == {}
    finally:
        cp.close()
    events = node.ctl_ok("security-events", station)
    assert [(e["type"], e["tech_info"]) for e in events] == [("InvalidChargePointCertificate", "chain does not verify")]
    wait_for(lambda: metric(node, "csms_security_events_total", type="InvalidChargePointCertificate") == before + 1,
             message="the security event to be counted")


def test_a_csr_for_another_identity_is_rejected_and_nothing_is_sent(node: CentralSystem, pki_files: Pki) -> None:
    cp = _sp3(node, pki_files, "WP-CSR-OTHER", {})
    try:
        assert cp.call("SignCertificate", {"csr": _csr("SOMEONE-ELSE", _new_key("ec"))}) == {"status": "Rejected"}
        assert cp.call("Heartbeat")  # the next exchange: no CertificateSigned came in between
        assert cp.received.empty()
    finally:
        cp.close()
    assert any("WP-CSR-OTHER: SignCertificate rejected: subject CN is 'SOMEONE-ELSE'" in line
               for line in node.log().splitlines())
    assert node.ctl_ok("certificate", "list", "--station", "WP-CSR-OTHER") == []


# -- TC_075 / TC_076 / TC_078: root certificates on the charge point ---------------------------------


class Installed:
    """A charge point's certificate store, as OCTT keeps it: it reports hashes in ``algorithm``."""

    def __init__(self, algorithm: str = "SHA256", accept: bool = True) -> None:
        self.algorithm, self.accept = algorithm, accept
        self.certificates: dict[str, list[str]] = {}

    def handlers(self) -> dict[str, Any]:
        return {"InstallCertificate": self.install, "GetInstalledCertificateIds": self.ids,
                "DeleteCertificate": self.delete}

    def install(self, payload: dict[str, Any]) -> dict[str, Any]:
        if not self.accept:
            return {"status": "Rejected"}
        pki.first_certificate(payload["certificate"])  # a PEM certificate, or this raises
        self.certificates.setdefault(payload["certificateType"], []).append(payload["certificate"])
        return {"status": "Accepted"}

    def _hashes(self, kind: str) -> list[dict[str, str]]:
        return [pki.hash_data_of_pem(pem, self.algorithm) for pem in self.certificates.get(kind, [])]

    def ids(self, payload: dict[str, Any]) -> dict[str, Any]:
        found = self._hashes(payload["certificateType"])
        return {"status": "Accepted", "certificateHashData": found} if found else {"status": "NotFound"}

    def delete(self, payload: dict[str, Any]) -> dict[str, Any]:
        wanted = payload["certificateHashData"]
        for pems in self.certificates.values():
            for pem in pems:
                # OCTT recomputes issuerNameHash/issuerKeyHash/serialNumber with the algorithm asked.
                if pki.hash_data_of_pem(pem, wanted["hashAlgorithm"]) == wanted:
                    pems.remove(pem)
                    return {"status": "Accepted"}
        return {"status": "NotFound"}


@pytest.mark.parametrize("kind", ["ManufacturerRootCertificate", "CentralSystemRootCertificate"], ids=["TC_075_1", "TC_075_2"])
def test_tc_075_a_root_certificate_is_installed_and_its_hash_listed(node: CentralSystem, pki_files: Pki, kind: str) -> None:
    station = f"WP-075-{kind[:7]}"
    store = Installed()
    cp = _sp3(node, pki_files, station, store.handlers())
    try:
        installed = node.ctl_ok("install-certificate", station, "--type", kind, "--certificate", str(pki_files.root2.cert))
        assert installed["response"] == {"status": "Accepted"}
        sent = cp.wait_call("InstallCertificate")
        assert sent == {"certificateType": kind, "certificate": pki_files.root2.cert.read_text()}
        assert pki.first_certificate(sent["certificate"]).extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        listed = node.ctl_ok("installed-certificates", station, "--type", kind)
        assert cp.wait_call("GetInstalledCertificateIds") == {"certificateType": kind}
        expected = pki.hash_data(pki_files.root2.certificate, "SHA256")
        assert listed["response"] == {"status": "Accepted", "certificateHashData": [expected]}
    finally:
        cp.close()
    kept = node.ctl_ok("station", "show", station)["installed_certificates"]
    assert [(c["certificate_type"], c["serial_number"], c["issuer_key_hash"]) for c in kept] == [
        (kind, expected["serialNumber"], expected["issuerKeyHash"])]


@pytest.mark.parametrize("algorithm", ["SHA256", "SHA384", "SHA512"])
def test_tc_076_a_certificate_is_deleted_with_the_hash_algorithm_the_station_reported(
        node: CentralSystem, pki_files: Pki, algorithm: str) -> None:
    station, kind = f"WP-076-{algorithm}", "CentralSystemRootCertificate"
    store = Installed(algorithm)
    cp = _sp3(node, pki_files, station, store.handlers())
    try:
        node.ctl_ok("install-certificate", station, "--type", kind, "--certificate", str(pki_files.root2.cert))
        listed = node.ctl_ok("installed-certificates", station, "--type", kind)["response"]["certificateHashData"]
        assert listed[0]["hashAlgorithm"] == algorithm
        deleted = node.ctl_ok("delete-certificate", station, "--hash-algorithm", algorithm,
                              "--certificate", str(pki_files.root2.cert))
        assert deleted["response"] == {"status": "Accepted"}
        sent = [p for a, p in _drain(cp) if a == "DeleteCertificate"]
        assert sent == [{"certificateHashData": listed[0]}]  # what OCTT recomputes and compares
        assert node.ctl_ok("station", "show", station)["installed_certificates"] == []
        again = node.ctl_ok("installed-certificates", station, "--type", kind)
        assert again["response"] == {"status": "NotFound"}
    finally:
        cp.close()


def _drain(cp: ChargePoint) -> list[tuple[str, Any]]:
    got = []
    while not cp.received.empty():
        got.append(cp.received.get_nowait())
    return got


def test_delete_certificate_with_the_hashes_given_sends_them_as_given(node: CentralSystem, pki_files: Pki) -> None:
    station = "WP-076-GIVEN"
    cp = _sp3(node, pki_files, station, {"DeleteCertificate": lambda p: {"status": "NotFound"}})
    try:
        answered = node.ctl_ok("delete-certificate", station, "--hash-algorithm", "SHA256", "--issuer-name-hash", "aa",
                               "--issuer-key-hash", "bb", "--serial", "1f")
        assert answered["response"] == {"status": "NotFound"}
        assert cp.wait_call("DeleteCertificate") == {"certificateHashData": {
            "hashAlgorithm": "SHA256", "issuerNameHash": "aa", "issuerKeyHash": "bb", "serialNumber": "1f"}}
    finally:
        cp.close()


def test_tc_078_an_install_the_station_rejects_and_its_security_event(node: CentralSystem, pki_files: Pki) -> None:
    station = "WP-078"
    cp = _sp3(node, pki_files, station, Installed(accept=False).handlers())
    try:
        answered = node.ctl_ok("install-certificate", station, "--type", "CentralSystemRootCertificate",
                               "--certificate", str(pki_files.server.cert))
        assert answered["response"] == {"status": "Rejected"}
        assert cp.call("SecurityEventNotification", {"type": "InvalidCentralSystemCertificate", "timestamp": now_iso()}) == {}
    finally:
        cp.close()
    assert [e["type"] for e in node.ctl_ok("security-events", station)] == ["InvalidCentralSystemCertificate"]


# -- TC_079: the security log -----------------------------------------------------------------------


def test_tc_079_get_security_log_and_its_status_notifications_with_the_request_id(node: CentralSystem, pki_files: Pki) -> None:
    station = "WP-079"
    cp = _sp3(node, pki_files, station, {"GetLog": lambda p: {"status": "Accepted", "filename": "security.log"}})
    try:
        answered = node.ctl_ok("get-log", station, "--type", "SecurityLog", "--location", LOG_URL)
        assert answered["response"] == {"status": "Accepted", "filename": "security.log"}
        sent = cp.wait_call("GetLog")
        assert sent["logType"] == "SecurityLog" and sent["log"] == {"remoteLocation": LOG_URL}
        request_id = sent["requestId"]
        assert isinstance(request_id, int) and answered["request"]["requestId"] == request_id
        for status in ("Uploading", "Uploaded"):
            assert cp.call("LogStatusNotification", {"status": status, "requestId": request_id}) == {}
        second = node.ctl_ok("get-log", station, "--type", "DiagnosticsLog", "--location", LOG_URL)
        assert second["request"]["requestId"] == request_id + 1  # never the same requestId twice
    finally:
        cp.close()
    events = node.ctl_ok("station", "show", station)["events"]
    logs = [(e["status"], e["detail"]["requestId"]) for e in events if e["kind"] == "log"]
    assert logs == [("Uploaded", request_id), ("Uploading", request_id)]
    calls = [e["detail"]["request"]["logType"] for e in events if e["kind"] == "security-call"]
    assert calls == ["DiagnosticsLog", "SecurityLog"]


# -- TC_080 / TC_081: secure firmware update ------------------------------------------------------------


def _sfsn(cp: ChargePoint, request_id: int, *statuses: str) -> None:
    for status in statuses:
        assert cp.call("SignedFirmwareStatusNotification", {"status": status, "requestId": request_id}) == {}


def test_tc_080_a_signed_firmware_update_and_every_notification_is_answered(node: CentralSystem, pki_files: Pki) -> None:
    station = "WP-080"
    signature = base64.b64encode(b"a configured signature").decode()
    cp = _sp3(node, pki_files, station, {"SignedUpdateFirmware": lambda p: {"status": "Accepted"}})
    try:
        answered = node.ctl_ok("signed-update-firmware", station, "--location", FIRMWARE_URL,
                               "--retrieve-date", "2026-12-07T05:00:00Z",
                               "--signing-certificate", str(pki_files.signer.cert), "--signature", signature)
        assert answered["response"] == {"status": "Accepted"}
        sent = cp.wait_call("SignedUpdateFirmware")
        assert sent["firmware"] == {"location": FIRMWARE_URL, "retrieveDateTime": "2026-12-07T05:00:00Z",
                                    "signingCertificate": pki_files.signer.cert.read_text(), "signature": signature}
        request_id = sent["requestId"]
        _sfsn(cp, request_id, "Downloading", "Downloaded", "SignatureVerified")
        cp.status(1, "Unavailable")
        _sfsn(cp, request_id, "Installing", "InstallRebooting")
    finally:
        cp.close()
    context = client_context(pki_files.ca, client=pki_files.client(station))
    with ChargePoint(wss(node), station, ssl=context) as rebooted:
        assert rebooted.boot()["status"] == "Accepted"
        assert rebooted.call("SecurityEventNotification", {"type": "FirmwareUpdated", "timestamp": now_iso()}) == {}
        rebooted.status(1, "Available")
        _sfsn(rebooted, request_id, "Installed")
    events = node.ctl_ok("station", "show", station)["events"]
    kept = [(e["status"], e["detail"]["requestId"]) for e in events if e["kind"] == "signed-firmware"]
    assert [s for s, _ in kept][::-1] == ["Downloading", "Downloaded", "SignatureVerified", "Installing",
                                          "InstallRebooting", "Installed"]
    assert {r for _, r in kept} == {request_id}
    assert [e["type"] for e in node.ctl_ok("security-events", station)] == ["FirmwareUpdated"]


def test_tc_081_an_invalid_signature_is_reported_and_answered(node: CentralSystem, pki_files: Pki) -> None:
    station = "WP-081"
    cp = _sp3(node, pki_files, station, {"SignedUpdateFirmware": lambda p: {"status": "Accepted"}})
    try:
        node.ctl_ok("signed-update-firmware", station, "--location", FIRMWARE_URL, "--signing-certificate",
                    str(pki_files.signer.cert), "--signature", base64.b64encode(b"not the signature").decode())
        request_id = cp.wait_call("SignedUpdateFirmware")["requestId"]
        _sfsn(cp, request_id, "Downloading", "Downloaded", "InvalidSignature")
        assert cp.call("SecurityEventNotification", {"type": "InvalidFirmwareSignature", "timestamp": now_iso()}) == {}
    finally:
        cp.close()
    events = node.ctl_ok("station", "show", station)["events"]
    assert [e["status"] for e in events if e["kind"] == "signed-firmware"][0] == "InvalidSignature"


def test_firmware_signed_by_the_node_verifies_with_the_signing_certificate(
        node: CentralSystem, pki_files: Pki, tmp_path: Path) -> None:
    station = "WP-080-SIGNED"
    firmware = tmp_path / "cp-2.0.bin"
    firmware.write_bytes(os.urandom(100_000))
    cp = _sp3(node, pki_files, station, {"SignedUpdateFirmware": lambda p: {"status": "Accepted"}})
    try:
        node.ctl_ok("signed-update-firmware", station, "--location", FIRMWARE_URL, "--firmware", str(firmware))
        sent = cp.wait_call("SignedUpdateFirmware")["firmware"]
    finally:
        cp.close()
    signer = x509.load_pem_x509_certificate(sent["signingCertificate"].encode())
    assert signer == pki_files.signer.certificate
    signer.public_key().verify(base64.b64decode(sent["signature"]), firmware.read_bytes(),  # type: ignore[union-attr, call-arg]
                               padding.PKCS1v15(), hashes.SHA256())


# -- TC_083 in one command ------------------------------------------------------------------------


def test_tc_083_upgrade_security_profile_sends_change_configuration_then_reset_hard(node: CentralSystem, pki_files: Pki) -> None:
    station = "WP-083"
    node.ctl_ok("station", "add", station, "--security-profile", "1", "--password", PASSWORD)
    handlers = {"ChangeConfiguration": lambda p: {"status": "Accepted"}, "Reset": lambda p: {"status": "Accepted"}}
    old = ChargePoint(ws_plain(node), station, password=PASSWORD, handlers=handlers).connect()
    try:
        _booted(old)
        done = node.ctl_ok("upgrade-security-profile", station, "--to", "2")
        assert [(s["action"], s["request"], s["response"]) for s in done["steps"]] == [
            ("ChangeConfiguration", {"key": "SecurityProfile", "value": "2"}, {"status": "Accepted"}),
            ("Reset", {"type": "Hard"}, {"status": "Accepted"})]
        assert [a for a, _ in _drain(old)] == ["ChangeConfiguration", "Reset"]
    finally:
        old.close()
    context = client_context(pki_files.ca)
    with ChargePoint(wss(node), station, ssl=context, password=PASSWORD) as new:
        _booted(new)
    assert handshake_status(f"{ws_plain(node)}/{station}", None, PASSWORD, station) == 403  # A05.FR.09
    assert handshake_status(f"{wss(node)}/{station}", context, PASSWORD, station) == 101
    refused = node.ctl("upgrade-security-profile", station, "--to", "1")
    assert refused.code == 2 and "only an upgrade" in refused.json["error"]["description"]


# -- TC_085, TC_086, TC_087: the connection --------------------------------------------------------------


def test_tc_085_basic_auth_without_a_header_is_refused_then_with_it_upgraded(node: CentralSystem, pki_files: Pki) -> None:
    station = "WP-085"
    node.ctl_ok("station", "add", station, "--security-profile", "2", "--password", PASSWORD)
    context = client_context(pki_files.ca)
    assert handshake_status(f"{wss(node)}/{station}", context) == 401
    with ChargePoint(wss(node), station, ssl=context, password=PASSWORD) as cp:
        _booted(cp)


def test_tc_086_the_server_certificate_and_tls_parameters_are_what_octt_checks(node: CentralSystem, pki_files: Pki) -> None:
    with ChargePoint(wss(node), "WP-086", ssl=client_context(pki_files.ca)) as cp:
        assert cp.ws is not None
        tls = cp.ws.socket
        assert tls.version() in ("TLSv1.2", "TLSv1.3")  # type: ignore[attr-defined]
        served = x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))  # type: ignore[attr-defined]
        assert served.serial_number > 0
        assert served.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "localhost"
        assert served.public_key().key_size >= 2048  # type: ignore[union-attr]
        _booted(cp)


def test_tc_087_a_client_certificate_connection_boots(node: CentralSystem, pki_files: Pki) -> None:
    cp = _sp3(node, pki_files, "WP-087", {})
    try:
        assert cp.ws is not None and cp.ws.socket.version() in ("TLSv1.2", "TLSv1.3")  # type: ignore[attr-defined]
    finally:
        cp.close()


# -- the central system's own security log -------------------------------------------------------------


def test_refused_logins_handshakes_and_certificates_are_the_central_systems_own_security_events(
        node: CentralSystem, pki_files: Pki) -> None:
    node.ctl_ok("station", "add", "WP-OWN-1", "--security-profile", "1", "--password", PASSWORD)
    node.ctl_ok("station", "add", "WP-OWN-3", "--security-profile", "3")
    assert handshake_status(f"{ws_plain(node)}/WP-OWN-1", None, "wrong-password-0000", "WP-OWN-1") == 401
    assert handshake_status(f"{ws_plain(node)}/WP-OWN-3") == 403  # profile 3 on plain ws: a downgrade tried
    other = client_context(pki_files.ca, client=pki_files.client("WP-OWN-SOMEONE"))
    assert handshake_status(f"{wss(node)}/WP-OWN-3", other) == 403  # a certificate for another identity
    with pytest.raises((ssl.SSLError, OSError, WebSocketException)):
        old = client_context(pki_files.ca, maximum=ssl.TLSVersion.TLSv1_2, ciphers="AES128-SHA:@SECLEVEL=0")
        with connect(f"{wss(node)}/WP-OWN-TLS", subprotocols=["ocpp1.6"], ssl=old, open_timeout=10):  # type: ignore[list-item]
            pass

    def own() -> list[tuple[str, Any]]:
        return [(e["type"], e["station_id"]) for e in node.ctl_ok("security-events", "--own")]

    wait_for(lambda: {("failed-login", "WP-OWN-1"), ("security-profile", "WP-OWN-3"),
                      ("certificate-identity", "WP-OWN-3")} <= set(own()) and ("tls-handshake", None) in own(),
             message="the refusals in the central system's own security log")
    events = {e["type"]: e for e in node.ctl_ok("security-events", "--own")}
    assert events["failed-login"]["detail"] == "wrong password"  # never the password itself
    assert "wrong-password-0000" not in str(node.ctl_ok("security-events", "--own"))
    assert events["certificate-identity"]["detail"] == "client certificate is for 'WP-OWN-SOMEONE'"


# -- ctl ca init -----------------------------------------------------------------------------------------


def test_ca_init_makes_the_node_ca_next_to_the_database_and_csrs_are_then_signed(tmp_path: Path) -> None:
    system = CentralSystem(tmp_path, extra_args=["--cpo-name", ORGANISATION]).start()
    try:
        with ChargePoint(system.url, "CA-INIT-1") as cp:
            _booted(cp)
            key = _new_key("rsa")
            assert cp.call("SignCertificate", {"csr": _csr("CA-INIT-1", key)}) == {"status": "Rejected"}  # no CA yet
            made = system.ctl_ok("ca", "init")
            assert made["certificate"] == str(tmp_path / "csms-ca.pem") and made["key"] == str(tmp_path / "csms-ca.key")
            assert os.stat(made["key"]).st_mode & 0o777 == 0o600
            assert f"O={ORGANISATION}" in made["subject"]
            assert system.ctl_ok("ca", "show")["serial"] == made["serial"]
            again = system.ctl("ca", "init")
            assert again.code == 2 and "exists already" in again.json["error"]["description"]
            cp.handlers["CertificateSigned"] = lambda p: {"status": "Accepted"}
            assert cp.call("SignCertificate", {"csr": _csr("CA-INIT-1", key)}) == {"status": "Accepted"}
            chain = pki.certificates(cp.wait_call("CertificateSigned")["certificateChain"])
            assert chain[1].serial_number == int(made["serial"], 16)
        listed = system.ctl_ok("certificate", "list")
        assert [c["station_id"] for c in listed] == ["CA-INIT-1"] and "certificate" not in listed[0]
        assert metric(system, "csms_certificates_expiring") == 0.0
    finally:
        system.stop()
    assert "BEGIN PRIVATE KEY" not in system.log()


# -- ctl call keeps the same records as the named commands (CONTROL.md) -----------------------------------


def test_the_generic_call_of_a_security_request_keeps_what_the_named_command_keeps(node: CentralSystem, pki_files: Pki) -> None:
    station = "WP-CALL"
    store = Installed()
    store.certificates["ManufacturerRootCertificate"] = [pki_files.root2.cert.read_text()]
    cp = _sp3(node, pki_files, station, {**store.handlers(), "GetLog": lambda p: {"status": "Accepted"}})
    try:
        listed = node.ctl_ok("call", station, "GetInstalledCertificateIds", '{"certificateType": "ManufacturerRootCertificate"}')
        assert listed["response"]["status"] == "Accepted"
        node.ctl_ok("call", station, "GetLog", '{"logType": "SecurityLog", "requestId": 500, "log": {"remoteLocation": "ftp://x/"}}')
        named = node.ctl_ok("get-log", station, "--type", "SecurityLog", "--location", "ftp://x/")
        assert named["request"]["requestId"] == 501
    finally:
        cp.close()
    shown = node.ctl_ok("station", "show", station)
    assert [c["serial_number"] for c in shown["installed_certificates"]] == [format(pki_files.root2.certificate.serial_number, "x")]
    assert [e["detail"]["action"] for e in shown["events"] if e["kind"] == "security-call"] == [
        "GetLog", "GetLog", "GetInstalledCertificateIds"]


def test_a_client_certificate_of_another_organisation_is_refused_when_the_cpo_is_named(
        node: CentralSystem, pki_files: Pki, tmp_path: Path) -> None:
    """A00.FR.403-408: the client certificate's O is the CPO name (the node runs with --cpo-name)."""
    from datetime import datetime, timedelta, timezone

    station = "WP-OTHER-ORG"
    node.ctl_ok("station", "add", station, "--security-profile", "3")
    key = _new_key("ec")
    now = datetime.now(timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Other CPO"),
                                 x509.NameAttribute(NameOID.COMMON_NAME, station)]))
        .issuer_name(pki_files.ca.certificate.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=30))
        .sign(pki_files.ca.private_key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "other-org.pem", tmp_path / "other-org.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    context = client_context(pki_files.ca, client=Issued(cert_file, key_file, certificate, key))
    assert handshake_status(f"{wss(node)}/{station}", context) == 403
    why = "client certificate is for organisation 'Other CPO', not the CPO 'Test CPO'"
    wait_for(lambda: any(e["detail"] == why for e in node.ctl_ok("security-events", "--own")),
             message="the refusal in the own security log")
    # Its own CPO's certificate is accepted.
    assert handshake_status(f"{wss(node)}/{station}", client_context(pki_files.ca, client=pki_files.client(station))) == 101


def test_the_http_api_lists_security_events_and_issued_certificates_as_ctl_does(node: CentralSystem, pki_files: Pki) -> None:
    import json
    import urllib.error

    key = node.ctl_ok("api-key", "create", "wp-read", "--scope", "read")["key"]

    def get(path: str) -> tuple[int, Any]:
        request = urllib.request.Request(f"{node.api_url}{path}", headers={"Authorization": f"Bearer {key}"})
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as refused:
            return refused.code, json.loads(refused.read())

    cp = _sp3(node, pki_files, "WP-API", {})
    try:
        assert cp.call("SecurityEventNotification", {"type": "TamperDetectionActivated", "timestamp": now_iso()}) == {}
    finally:
        cp.close()
    assert get("/api/v1/stations/WP-API/security-events") == (200, node.ctl_ok("security-events", "WP-API"))
    assert get("/api/v1/security-events?own=true") == (200, node.ctl_ok("security-events", "--own"))
    assert get("/api/v1/security-events")[0] == 422
    assert get("/api/v1/certificates") == (200, node.ctl_ok("certificate", "list"))
    assert get("/api/v1/stations/NOBODY/security-events")[0] == 404
