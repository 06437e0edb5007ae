"""The certificate authority's decisions, without I/O (security white paper A02/A03, M03/M04).

What a charge point's certificate signing request must be before the central
system signs it (``check_csr``, each refusal a ``CsrRefused`` saying why):

| check                         | rule                                                            |
|-------------------------------|-----------------------------------------------------------------|
| PEM (or base64 DER) PKCS#10   | "csr: the Certificate Signing Request ... PEM encoded" (A02)    |
| its self-signature verifies   | whoever sent it holds the private key                           |
| subject CN = the identity     | A00.FR.403-408: "CN = CP serial number" (the identity here)     |
| subject O = ``--cpo-name``    | A00.FR.403-408: "O = CPO name" (checked only when configured)   |
| RSA >= 2048 bits, EC >= 224   | A00.FR.501-511                                                  |

``sign`` turns an accepted CSR into a client certificate (clientAuth) issued by
the node's CA; ``chain_pem`` is what CertificateSigned.req carries.
``hash_data`` is the CertificateHashDataType of a certificate (M04,
DeleteCertificate): the hash of its issuer's distinguished name (DER), of its
issuer's public key (the subjectPublicKey bits, as OCSP's CertID does, RFC 6960
§4.1.1) and its serial number in hexadecimal. The files (the CA's key and
certificate) are read and written by ``actors.certificate_authority``.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from actors.errors import CsrRefused

__all__ = ["HASH_ALGORITHMS", "Authority", "CsrRefused", "chain_pem", "check_csr", "first_certificate",
           "hash_data", "key_problem", "new_authority", "sign"]

MIN_RSA_BITS = 2048
MIN_EC_BITS = 224
ISSUED_DAYS = 365  # a charge point certificate's life; the station renews it with a new CSR
CA_DAYS = 3650
HASH_ALGORITHMS: dict[str, type[hashes.HashAlgorithm]] = {
    "SHA256": hashes.SHA256, "SHA384": hashes.SHA384, "SHA512": hashes.SHA512,
}


@dataclass(frozen=True)
class Authority:
    """The node's CA: its certificate and private key (the key never leaves this process)."""

    certificate: x509.Certificate
    key: Any


def key_problem(public_key: Any) -> str | None:
    """Why a public key is too weak for the white paper (A00.FR.501-511), or None."""
    if isinstance(public_key, rsa.RSAPublicKey):
        bits = public_key.key_size
        return None if bits >= MIN_RSA_BITS else f"RSA key of {bits} bits; at least {MIN_RSA_BITS} required"
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        bits = public_key.curve.key_size
        return None if bits >= MIN_EC_BITS else f"EC key of {bits} bits; at least {MIN_EC_BITS} required"
    return f"{type(public_key).__name__.removeprefix('_')} keys are not accepted; RSA or EC required"


def _load_csr(text: str) -> x509.CertificateSigningRequest:
    data = text.strip().encode("ascii", "replace")
    try:
        if data.startswith(b"-----BEGIN"):
            return x509.load_pem_x509_csr(data)
        # Some charge points send the base64 body without the PEM armour.
        return x509.load_der_x509_csr(base64.b64decode(data, validate=False))
    except (ValueError, TypeError):
        raise CsrRefused("not a PEM-encoded PKCS#10 certificate signing request") from None


def _names(name: x509.Name, oid: x509.ObjectIdentifier) -> list[str]:
    return [str(attribute.value) for attribute in name.get_attributes_for_oid(oid)]


def check_csr(text: str, identity: str, organisation: str | None) -> x509.CertificateSigningRequest:
    """The CSR, if the central system may sign it for ``identity``; else CsrRefused saying why."""
    csr = _load_csr(text)
    try:
        valid = csr.is_signature_valid
    except (ValueError, InvalidSignature):
        valid = False
    if not valid:
        raise CsrRefused("the CSR's signature does not verify")
    common_names = _names(csr.subject, NameOID.COMMON_NAME)
    if common_names != [identity]:
        said = ", ".join(repr(n) for n in common_names) or "none"
        raise CsrRefused(f"subject CN is {said}, not the charge point's identity {identity!r}")
    if organisation:
        organisations = _names(csr.subject, NameOID.ORGANIZATION_NAME)
        if organisations != [organisation]:
            said = ", ".join(repr(o) for o in organisations) or "none"
            raise CsrRefused(f"subject O is {said}, not the CPO name {organisation!r}")
    try:
        public_key = csr.public_key()
    except (ValueError, TypeError):
        raise CsrRefused("the CSR's public key cannot be read") from None
    problem = key_problem(public_key)
    if problem is not None:
        raise CsrRefused(problem)
    return csr


def sign(csr: x509.CertificateSigningRequest, authority: Authority, now: datetime, serial: int,
         days: int = ISSUED_DAYS) -> x509.Certificate:
    """A client certificate for the CSR's subject and key, issued by ``authority`` (never past its own end)."""
    ca = authority.certificate
    not_after = min(now + timedelta(days=days), ca.not_valid_after_utc)
    public_key = csr.public_key()
    rsa_key = isinstance(public_key, rsa.RSAPublicKey)
    builder = (
        x509.CertificateBuilder()
        .subject_name(csr.subject).issuer_name(ca.subject).public_key(public_key)  # type: ignore[arg-type]
        .serial_number(serial)
        .not_valid_before(now - timedelta(minutes=5))  # charge point clocks drift
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=rsa_key, key_agreement=not rsa_key,
                                     content_commitment=False, data_encipherment=False, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)  # type: ignore[arg-type]
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(authority.key.public_key()), critical=False)
    )
    return builder.sign(authority.key, hashes.SHA256())


def chain_pem(certificate: x509.Certificate, authority: Authority) -> str:
    """CertificateSigned.req's certificateChain: the new certificate, then the CA's (PEM)."""
    return "".join(c.public_bytes(serialization.Encoding.PEM).decode("ascii")
                   for c in (certificate, authority.certificate))


def new_authority(organisation: str, now: datetime, serial: int) -> Authority:
    """A fresh self-signed CA (RSA 3072, ten years) whose subject names the CPO."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
                         x509.NameAttribute(NameOID.COMMON_NAME, f"{organisation} charge point CA")])
    certificate = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                                     key_encipherment=False, data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Authority(certificate, key)


def certificates(text: str) -> list[x509.Certificate]:
    """Every certificate of a PEM text (a chain), in order; ValueError if there is none."""
    try:
        found = x509.load_pem_x509_certificates(text.encode("ascii", "replace"))
    except ValueError:
        raise ValueError("not a PEM certificate") from None
    return found


def first_certificate(text: str) -> x509.Certificate:
    return certificates(text)[0]


def _public_key_bits(public_key: Any) -> bytes:
    """The subjectPublicKey BIT STRING's content (RFC 6960 §4.1.1 hashes exactly this)."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    # SubjectPublicKeyInfo ::= SEQUENCE { algorithm AlgorithmIdentifier, subjectPublicKey BIT STRING }
    _, body = _der_element(der, 0)
    start, _ = _der_element(der, body)  # skip the algorithm: the BIT STRING's tag is at ``start``
    offset, length = _der_header(der, start)
    content = der[offset:offset + length]
    return content[1:]  # the first octet counts unused bits (0 for keys)


def _der_header(der: bytes, at: int) -> tuple[int, int]:
    """(offset of the content, its length) of the element whose tag is at ``at``."""
    length = der[at + 1]
    if length < 0x80:
        return at + 2, length
    count = length & 0x7F
    return at + 2 + count, int.from_bytes(der[at + 2:at + 2 + count], "big")


def _der_element(der: bytes, at: int) -> tuple[int, int]:
    """(offset just past the element at ``at``, offset of its content)."""
    offset, length = _der_header(der, at)
    return offset + length, offset


def serial_hex(serial: int) -> str:
    """A serial number as the white paper writes it: hexadecimal, no 0x, no leading zeros."""
    return format(serial, "x")


def hash_data(certificate: x509.Certificate, algorithm: str, issuer: x509.Certificate | None = None) -> dict[str, str]:
    """CertificateHashDataType of ``certificate``; ``issuer`` defaults to itself (a root)."""
    if algorithm not in HASH_ALGORITHMS:
        raise ValueError(f"hash algorithm must be one of {', '.join(HASH_ALGORITHMS)}")
    issuer = issuer or certificate
    if issuer.subject != certificate.issuer:
        raise ValueError("the issuer given is not the certificate's issuer; give the chain up to it")

    def digest(data: bytes) -> str:
        h = hashes.Hash(HASH_ALGORITHMS[algorithm]())
        h.update(data)
        return h.finalize().hex()

    return {
        "hashAlgorithm": algorithm,
        "issuerNameHash": digest(certificate.issuer.public_bytes()),
        "issuerKeyHash": digest(_public_key_bits(issuer.public_key())),
        "serialNumber": serial_hex(certificate.serial_number),
    }


def hash_data_of_pem(text: str, algorithm: str) -> dict[str, str]:
    """hash_data of the first certificate of a PEM file; its issuer is the next one, or itself."""
    chain = certificates(text)
    return hash_data(chain[0], algorithm, chain[1] if len(chain) > 1 else None)
