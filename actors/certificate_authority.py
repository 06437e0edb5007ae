"""The node's certificate authority on disk: made by ``ctl ca init``, or the operator's own.

Where it is (``paths``): ``--ca-cert`` and ``--ca-key`` when given, else
``csms-ca.pem`` and ``csms-ca.key`` in the data directory, next to the
database. ``init`` writes a new one there (the key file created with mode
0600, never overwritten); ``AuthoritySource`` is what a station host hands
its station machines: it reads the files when they changed (a CA made by
``ctl ca init`` while the node runs is used from the next SignCertificate on)
and returns None when there is no CA, so that SignCertificate is answered
Rejected. The decisions (what to sign, how) are ``actors.ocpp.pki``'s.
"""

from __future__ import annotations

import logging
import os
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from actors.ocpp import pki
from actors.settings import Settings

log = logging.getLogger(__name__)

CERT_FILE, KEY_FILE = "csms-ca.pem", "csms-ca.key"


def paths(settings: Settings) -> tuple[str, str]:
    """(certificate, key) of the node's CA."""
    folder = os.path.dirname(os.path.abspath(settings.db))
    return (settings.ca_cert or os.path.join(folder, CERT_FILE), settings.ca_key or os.path.join(folder, KEY_FILE))


def describe(certificate: x509.Certificate, cert_path: str, key_path: str) -> dict[str, Any]:
    return {
        "certificate": cert_path, "key": key_path, "subject": certificate.subject.rfc4514_string(),
        "serial": pki.serial_hex(certificate.serial_number),
        "not_before": certificate.not_valid_before_utc.isoformat(),
        "not_after": certificate.not_valid_after_utc.isoformat(),
    }


def init(settings: Settings, organisation: str, now: datetime) -> dict[str, Any]:
    """Make the node's CA; FileExistsError if either file is there already (never overwritten)."""
    cert_path, key_path = paths(settings)
    for path in (cert_path, key_path):
        if os.path.exists(path):
            raise FileExistsError(f"{path} exists already; the CA is not replaced")
    authority = pki.new_authority(organisation, now, x509.random_serial_number())
    key_pem = authority.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption())
    # The key is created 0600 at once (never world-readable, not even for an instant).
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key_pem)
    fd = os.open(cert_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(authority.certificate.public_bytes(serialization.Encoding.PEM))
    log.info("certificate authority made: %s (key %s)", cert_path, key_path)
    return describe(authority.certificate, cert_path, key_path)


def load(cert_path: str, key_path: str) -> pki.Authority:
    """Read a CA; ValueError saying what is wrong with it."""
    with open(cert_path, "rb") as f:
        certificate = x509.load_pem_x509_certificate(f.read())
    with open(key_path, "rb") as f:
        key = serialization.load_pem_private_key(f.read(), password=None)
    public = certificate.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) != public:
        raise ValueError(f"{key_path} is not the key of {cert_path}")
    return pki.Authority(certificate, key)


class AuthoritySource:
    """The CA, re-read when its files change; None when there is none (or it cannot be read)."""

    def __init__(self, settings: Settings) -> None:
        self.cert_path, self.key_path = paths(settings)
        self._stamp: tuple[int, int] | None = None
        self._authority: pki.Authority | None = None

    def __call__(self) -> pki.Authority | None:
        try:
            stamp = (os.stat(self.cert_path).st_mtime_ns, os.stat(self.key_path).st_mtime_ns)
        except OSError:
            self._stamp, self._authority = None, None
            return None
        if stamp != self._stamp:
            self._stamp = stamp
            try:
                self._authority = load(self.cert_path, self.key_path)
            except (OSError, ValueError, TypeError) as exc:
                log.error("certificate authority %s cannot be used: %s", self.cert_path, exc)
                self._authority = None
        return self._authority


def sign_firmware(cert_path: str, key_path: str, sha256: bytes) -> dict[str, str]:
    """SignedUpdateFirmware's signature (base64, over the firmware's SHA-256) and signingCertificate (PEM)."""
    import base64

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

    if len(sha256) != 32:
        raise ValueError("a SHA-256 digest has 32 bytes")
    authority = load(cert_path, key_path)
    key = authority.key
    prehashed = utils.Prehashed(hashes.SHA256())
    if isinstance(key, rsa.RSAPrivateKey):
        signature = key.sign(sha256, padding.PKCS1v15(), prehashed)
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        signature = key.sign(sha256, ec.ECDSA(prehashed))
    else:
        raise ValueError("the firmware signing key must be RSA or EC")
    return {"signature": base64.b64encode(signature).decode("ascii"),
            "signingCertificate": authority.certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")}
