"""The certificate authority's decisions (actors.ocpp.pki): CSR checks, signing, certificate hashes."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import NameOID

from actors.errors import CsrRefused
from actors.ocpp import pki

NOW = datetime(2026, 12, 7, 4, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def authority() -> pki.Authority:
    return pki.new_authority("Test CPO", NOW, 0x1234)


def rsa_key(bits: int = 2048) -> Any:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def csr_pem(key: Any, cn: str | None = "CP1", o: str | None = "Test CPO") -> str:
    names = ([x509.NameAttribute(NameOID.ORGANIZATION_NAME, o)] if o else []) + (
        [x509.NameAttribute(NameOID.COMMON_NAME, cn)] if cn else [])
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(names)).sign(key, algorithm)
    return csr.public_bytes(serialization.Encoding.PEM).decode()


# -- CSR checks: each refusal says why --------------------------------------------------


def test_a_valid_rsa_csr_for_the_identity_and_the_cpo_passes() -> None:
    assert pki.check_csr(csr_pem(rsa_key()), "CP1", "Test CPO").subject.rfc4514_string() == "CN=CP1,O=Test CPO"


def test_a_valid_ec_p256_csr_passes() -> None:
    pki.check_csr(csr_pem(ec.generate_private_key(ec.SECP256R1())), "CP1", "Test CPO")


def test_a_csr_without_pem_armour_but_base64_der_passes() -> None:
    pem = csr_pem(rsa_key())
    body = "".join(line for line in pem.splitlines() if not line.startswith("-----"))
    pki.check_csr(body, "CP1", None)


def test_text_that_is_no_csr_is_refused() -> None:
    with pytest.raises(CsrRefused, match="not a PEM-encoded PKCS#10"):
        pki.check_csr("-----BEGIN CERTIFICATE REQUEST-----\nnot base64\n-----END CERTIFICATE REQUEST-----", "CP1", None)


def test_a_csr_whose_signature_does_not_verify_is_refused() -> None:
    csr = x509.load_pem_x509_csr(csr_pem(rsa_key()).encode())
    der = bytearray(csr.public_bytes(serialization.Encoding.DER))
    der[-5] ^= 0xFF  # a bit of the signature flipped
    import base64

    with pytest.raises(CsrRefused, match="signature does not verify"):
        pki.check_csr(base64.b64encode(bytes(der)).decode(), "CP1", None)


def test_a_csr_for_another_identity_is_refused() -> None:
    with pytest.raises(CsrRefused, match="subject CN is 'CP2', not the charge point's identity 'CP1'"):
        pki.check_csr(csr_pem(rsa_key(), cn="CP2"), "CP1", None)


def test_a_csr_without_common_name_is_refused() -> None:
    with pytest.raises(CsrRefused, match="subject CN is none"):
        pki.check_csr(csr_pem(rsa_key(), cn=None), "CP1", None)


def test_a_csr_for_another_organisation_is_refused_when_the_cpo_name_is_set() -> None:
    with pytest.raises(CsrRefused, match="subject O is 'Other CPO', not the CPO name 'Test CPO'"):
        pki.check_csr(csr_pem(rsa_key(), o="Other CPO"), "CP1", "Test CPO")
    pki.check_csr(csr_pem(rsa_key(), o="Other CPO"), "CP1", None)  # not checked without --cpo-name


def test_a_csr_with_an_rsa_key_below_2048_bits_is_refused() -> None:
    with pytest.raises(CsrRefused, match="RSA key of 1024 bits; at least 2048"):
        pki.check_csr(csr_pem(rsa_key(1024)), "CP1", None)


def test_a_csr_with_an_ec_key_below_224_bits_is_refused() -> None:
    with pytest.raises(CsrRefused, match="EC key of 192 bits; at least 224"):
        pki.check_csr(csr_pem(ec.generate_private_key(ec.SECP192R1())), "CP1", None)


def test_a_csr_with_a_key_neither_rsa_nor_ec_is_refused() -> None:
    with pytest.raises(CsrRefused, match="RSA or EC required"):
        pki.check_csr(csr_pem(ed25519.Ed25519PrivateKey.generate()), "CP1", None)


# -- signing ------------------------------------------------------------------------------


def test_a_signed_certificate_has_the_csr_subject_and_key_and_chains_to_the_ca(authority: pki.Authority) -> None:
    key = rsa_key()
    csr = pki.check_csr(csr_pem(key), "CP1", "Test CPO")
    certificate = pki.sign(csr, authority, NOW, 0xABC)
    assert certificate.subject == csr.subject and certificate.issuer == authority.certificate.subject
    assert certificate.public_key().public_numbers() == key.public_key().public_numbers()  # type: ignore[union-attr]
    assert certificate.serial_number == 0xABC
    assert certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    authority.certificate.public_key().verify(  # type: ignore[union-attr, call-arg]
        certificate.signature, certificate.tbs_certificate_bytes, padding.PKCS1v15(), hashes.SHA256())
    chain = pki.certificates(pki.chain_pem(certificate, authority))
    assert chain == [certificate, authority.certificate]


def test_a_certificate_never_outlives_its_ca(authority: pki.Authority) -> None:
    csr = pki.check_csr(csr_pem(rsa_key()), "CP1", None)
    certificate = pki.sign(csr, authority, NOW, 1, days=100_000)
    assert certificate.not_valid_after_utc == authority.certificate.not_valid_after_utc


# -- CertificateHashData (DeleteCertificate) ---------------------------------------------------


@pytest.mark.parametrize("algorithm,size", [("SHA256", 32), ("SHA384", 48), ("SHA512", 64)])
def test_the_hash_data_of_a_root_hashes_its_name_and_its_own_key(authority: pki.Authority, algorithm: str,
                                                                   size: int) -> None:
    root = authority.certificate
    data = pki.hash_data(root, algorithm)
    digest = {"SHA256": hashes.SHA256, "SHA384": hashes.SHA384, "SHA512": hashes.SHA512}[algorithm]

    def h(raw: bytes) -> str:
        hasher = hashes.Hash(digest())
        hasher.update(raw)
        return hasher.finalize().hex()

    # RFC 6960 §4.1.1: the DER of the issuer's name; the issuer key's BIT STRING (for RSA: the PKCS#1 key).
    pkcs1 = root.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    assert data == {"hashAlgorithm": algorithm, "issuerNameHash": h(root.issuer.public_bytes()),
                    "issuerKeyHash": h(pkcs1), "serialNumber": "1234"}
    assert len(bytes.fromhex(data["issuerNameHash"])) == size


def test_the_hash_data_of_an_issued_certificate_uses_its_issuer_from_the_chain(authority: pki.Authority) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = pki.sign(pki.check_csr(csr_pem(key), "CP1", None), authority, NOW, 0x0F)
    data = pki.hash_data_of_pem(pki.chain_pem(certificate, authority), "SHA256")
    assert data == {**pki.hash_data(authority.certificate, "SHA256"), "serialNumber": "f"}
    with pytest.raises(ValueError, match="not the certificate's issuer"):
        pki.hash_data(certificate, "SHA256")  # without its issuer


def test_the_key_hash_of_an_ec_key_is_over_its_uncompressed_point() -> None:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    point = key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    assert pki._public_key_bits(key) == point


def test_an_unknown_hash_algorithm_is_refused(authority: pki.Authority) -> None:
    with pytest.raises(ValueError, match="SHA256, SHA384, SHA512"):
        pki.hash_data(authority.certificate, "MD5")
