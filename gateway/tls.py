"""TLS on the OCPP port (security profiles 2 and 3): the server context and its checks.

The station host that accepts a connection runs its TLS handshake (ARCHITECTURE.md:
TLS state cannot move to another process), with the context built here once per
host. The rules, from the security white paper (edition 3, A00.FR.305-324,
409-428, 501-511) and TC_086/TC_087:

| rule                                                    | here                                         |
|---------------------------------------------------------|----------------------------------------------|
| TLS 1.2 or newer                                        | ``minimum_version = TLSv1_2``                |
| the four suites TLS_ECDHE_ECDSA_WITH_AES_{128,256}_GCM_SHA{256,384} and TLS_RSA_WITH_AES_{128,256}_GCM_SHA{256,384} supported | ``TLS12_CIPHERS`` (with the ECDHE_RSA GCM pair, so that an RSA certificate also gets forward secrecy); nothing else in TLS 1.2 |
| no TLS compression                                      | ``OP_NO_COMPRESSION``                        |
| server key RSA >= 2048 bits, EC >= 224 bits (no DSA)   | ``check_key``, at start-up: ``TlsConfigError`` |
| profile 3: the client certificate chains to the CA      | ``--tls-client-ca``, verified by OpenSSL in the handshake (a certificate from another CA, or expired, ends it) |
| profile 3: subject CN = the charge point's identity     | ``certificate_identity``, checked at admission (``actors.host.loop``) |

A handshake that fails (an old protocol offered alone, no common suite, a
client certificate that does not verify) is logged at WARNING and counted
(``csms_security_refusals_total{reason="tls-handshake"}``) by
``CountingSSLObject``: asyncio reports these failures only in debug mode.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

__all__ = ["TLS12_CIPHERS", "TlsConfigError", "certificate_identity", "check_key", "server_context"]

log = logging.getLogger(__name__)

TLS12_CIPHERS = ":".join([
    # the white paper's four (OpenSSL names)
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "AES128-GCM-SHA256",
    "AES256-GCM-SHA384",
    # forward secrecy with an RSA certificate; as strong as the four
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES256-GCM-SHA384",
])
MIN_RSA_BITS = 2048
MIN_EC_BITS = 224


class TlsConfigError(ValueError):
    """Raised when the TLS certificate, key or CA given at start-up cannot serve; ``str()`` says why."""


def check_key(cert_path: str, key_path: str) -> str:
    """Check the server certificate and key; return a one-line description of them.

    Raises TlsConfigError when a file cannot be read or parsed, when the key is
    too small (RSA under 2048 bits, EC under 224; DSA is not taken: no TLS 1.3 suite uses it), or when the certificate
    has no serial number."""
    try:
        with open(cert_path, "rb") as f:
            cert = x509.load_pem_x509_certificate(f.read())
    except (OSError, ValueError) as exc:
        raise TlsConfigError(f"--tls-cert {cert_path}: not a readable PEM certificate ({exc})") from None
    try:
        with open(key_path, "rb") as f:
            key = serialization.load_pem_private_key(f.read(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise TlsConfigError(f"--tls-key {key_path}: not a readable, unencrypted PEM private key ({exc})") from None
    public = cert.public_key()
    if isinstance(public, rsa.RSAPublicKey):
        kind, bits, least = "RSA", public.key_size, MIN_RSA_BITS
    elif isinstance(public, ec.EllipticCurvePublicKey):
        kind, bits, least = f"EC {public.curve.name}", public.curve.key_size, MIN_EC_BITS
    else:
        raise TlsConfigError(f"--tls-cert {cert_path}: a {type(public).__name__} key; use RSA (>= 2048 bits) or EC (>= 224 bits)")
    if bits < least:
        raise TlsConfigError(f"--tls-cert {cert_path}: {kind} key of {bits} bits; the OCPP security white paper "
                             f"asks for at least {least} (A00.FR.501-511)")
    if key.public_key().public_numbers() != public.public_numbers():  # type: ignore[union-attr]
        raise TlsConfigError(f"--tls-key {key_path} is not the key of --tls-cert {cert_path}")
    if not cert.serial_number:
        raise TlsConfigError(f"--tls-cert {cert_path}: the certificate has no serial number")
    return f"{kind} {bits} bits, subject {cert.subject.rfc4514_string()}, serial {cert.serial_number:x}"


def server_context(cert_path: str, key_path: str, client_ca: str = "",
                   on_failure: Callable[[str], None] | None = None) -> ssl.SSLContext:
    """The TLS server context of the OCPP port. Raises TlsConfigError."""
    check_key(cert_path, key_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    context.set_ciphers(TLS12_CIPHERS)
    try:
        context.load_cert_chain(cert_path, key_path)
    except (OSError, ssl.SSLError) as exc:
        raise TlsConfigError(f"--tls-cert/--tls-key: {exc}") from None
    if client_ca:
        try:
            context.load_verify_locations(cafile=client_ca)
        except (OSError, ssl.SSLError) as exc:
            raise TlsConfigError(f"--tls-client-ca {client_ca}: {exc}") from None
        # Optional: profile-2 stations present none. One that is presented must verify.
        context.verify_mode = ssl.CERT_OPTIONAL
    context.sslobject_class = _counting(on_failure)
    return context


def certificate_identity(ssl_object: Any) -> str | None:
    """The subject CN of the verified client certificate of a TLS connection, or None."""
    return _subject_field(ssl_object, "commonName")


def certificate_organisation(ssl_object: Any) -> str | None:
    """The subject O of the verified client certificate of a TLS connection, or None."""
    return _subject_field(ssl_object, "organizationName")


def _subject_field(ssl_object: Any, field: str) -> str | None:
    if ssl_object is None:
        return None
    peer = ssl_object.getpeercert()
    if not peer:
        return None
    for rdn in peer.get("subject", ()):
        for name, value in rdn:
            if name == field:
                return str(value)
    return None


def _counting(on_failure: Callable[[str], None] | None) -> type[ssl.SSLObject]:
    class CountingSSLObject(ssl.SSLObject):
        """An SSLObject that says why a handshake failed (asyncio keeps it for debug mode)."""

        def do_handshake(self) -> None:
            try:
                super().do_handshake()
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                raise
            except ssl.SSLError as exc:
                reason = exc.reason or exc.__class__.__name__
                log.warning("refused a TLS connection: %s", reason)
                if on_failure is not None:
                    on_failure(str(reason))
                raise

    return CountingSSLObject
