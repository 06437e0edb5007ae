"""Security extension records: certificates issued and installed, and the node's own security log.

Tables (``m015_security``):

- ``issued_certificates``: every certificate the node's CA signed for a
  station (SignCertificate), with its serial (hexadecimal), subject, validity
  and PEM; ``status`` is ``Issued`` until the station answers CertificateSigned
  (``Accepted``, ``Rejected``, or ``Failed``: no answer, CALLERROR).
- ``installed_certificates``: the CertificateHashData a station reported per
  certificate type (GetInstalledCertificateIds replaces them; an accepted
  DeleteCertificate removes one).
- ``own_security_events``: what the central system itself refused (failed
  logins, TLS handshakes, certificates for another identity, profile
  downgrades), for ``ctl security-events --own``.

The security events charge points send are ``station_events`` of kind
``security`` (``storage.firmware``).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from storage.base import Row, StoreBase
from storage.timefmt import iso

ISSUED_STATUSES = ("Issued", "Accepted", "Rejected", "Failed")
CERTIFICATE_TYPES = ("CentralSystemRootCertificate", "ManufacturerRootCertificate")
HASH_FIELDS = ("hashAlgorithm", "issuerNameHash", "issuerKeyHash", "serialNumber")


class SecurityMixin(StoreBase):
    """Certificates issued to and installed on stations; the node's own security events."""

    def record_issued_certificate(self, station_id: str, serial: str, subject: str, not_before: datetime,
                                  not_after: datetime, pem: str, now: datetime) -> None:
        with self.write() as conn:
            conn.execute(
                "INSERT INTO issued_certificates (serial, station_id, subject, not_before, not_after, certificate, "
                "status, issued_at, answered_at) VALUES (?, ?, ?, ?, ?, ?, 'Issued', ?, NULL)",
                [serial, station_id, subject, iso(not_before), iso(not_after), pem, iso(now)],
            )

    def set_issued_certificate_status(self, station_id: str, serial: str, status: str, now: datetime) -> None:
        if status not in ISSUED_STATUSES:
            raise ValueError(f"status must be one of {ISSUED_STATUSES}")
        with self.write() as conn:
            conn.execute("UPDATE issued_certificates SET status = ?, answered_at = ? WHERE station_id = ? AND serial = ?",
                         [status, iso(now), station_id, serial])

    def list_issued_certificates(self, station_id: str | None = None) -> list[Row]:
        """Newest first; without the PEM (``certificate``) unless asked for one station."""
        where, params = ("WHERE station_id = ?", [station_id]) if station_id is not None else ("", [])
        return self.rows(
            "SELECT serial, station_id, subject, not_before, not_after, status, issued_at, answered_at, certificate "
            f"FROM issued_certificates {where} ORDER BY issued_at DESC, rowid DESC", params)

    def certificates_expiring(self, now: datetime, before: datetime) -> int:
        """Certificates issued (and not refused by their station) still valid at ``now`` that end before ``before``."""
        found = self.row(
            "SELECT COUNT(*) AS n FROM issued_certificates WHERE status IN ('Issued', 'Accepted') "
            "AND not_after > ? AND not_after <= ?", [iso(now), iso(before)])
        return int(found["n"]) if found else 0

    def replace_installed_certificates(self, station_id: str, certificate_type: str, hash_data: list[dict[str, Any]],
                                       now: datetime) -> None:
        """GetInstalledCertificateIds answered: these are the station's certificates of that type."""
        if certificate_type not in CERTIFICATE_TYPES:
            raise ValueError(f"certificate type must be one of {CERTIFICATE_TYPES}")
        with self.write() as conn:
            conn.execute("DELETE FROM installed_certificates WHERE station_id = ? AND certificate_type = ?",
                         [station_id, certificate_type])
            for item in hash_data:
                conn.execute(
                    "INSERT OR REPLACE INTO installed_certificates (station_id, certificate_type, hash_algorithm, "
                    "issuer_name_hash, issuer_key_hash, serial_number, seen_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [station_id, certificate_type, *(item[k] for k in HASH_FIELDS), iso(now)])

    def remove_installed_certificate(self, station_id: str, hash_data: dict[str, Any]) -> None:
        """DeleteCertificate accepted: that certificate is gone (serial numbers compared without case)."""
        with self.write() as conn:
            conn.execute(
                "DELETE FROM installed_certificates WHERE station_id = ? AND hash_algorithm = ? AND "
                "lower(issuer_name_hash) = lower(?) AND lower(issuer_key_hash) = lower(?) AND "
                "lower(ltrim(serial_number, '0')) = lower(ltrim(?, '0'))",
                [station_id, *(hash_data[k] for k in HASH_FIELDS)])

    def installed_certificates(self, station_id: str) -> list[Row]:
        return self.rows(
            "SELECT certificate_type, hash_algorithm, issuer_name_hash, issuer_key_hash, serial_number, seen_at "
            "FROM installed_certificates WHERE station_id = ? ORDER BY certificate_type, seen_at", [station_id])

    def record_own_security_event(self, event_type: str, now: datetime, *, station_id: str | None = None,
                                  address: str | None = None, detail: str | None = None) -> None:
        with self.write() as conn:
            conn.execute(
                "INSERT INTO own_security_events (type, station_id, address, detail, at) VALUES (?, ?, ?, ?, ?)",
                [event_type, station_id, address, detail, iso(now)])

    def own_security_events(self, *, limit: int = 1000) -> list[Row]:
        return self.rows("SELECT id, type, station_id, address, detail, at FROM own_security_events "
                         "ORDER BY id DESC LIMIT ?", [limit])

    def security_events(self, station_id: str, *, limit: int = 1000) -> list[Row]:
        """SecurityEventNotifications of a station, newest first: type, timestamp, techInfo, received at."""
        found = self.rows("SELECT id, detail, at FROM station_events WHERE station_id = ? AND kind = 'security' "
                          "ORDER BY id DESC LIMIT ?", [station_id, limit])
        events = []
        for r in found:
            detail = json.loads(r["detail"]) if r["detail"] else {}
            events.append({"id": r["id"], "type": detail.get("type"), "timestamp": detail.get("timestamp"),
                           "tech_info": detail.get("techInfo"), "received_at": r["at"]})
        return events

    def next_request_id(self, station_id: str) -> int:
        """The requestId for the station's next GetLog or SignedUpdateFirmware: past every one sent to it."""
        found = self.row(
            "SELECT MAX(CAST(json_extract(detail, '$.request.requestId') AS INTEGER)) AS n FROM station_events "
            "WHERE station_id = ? AND kind = 'security-call'", [station_id])
        return int(found["n"] or 0) + 1 if found else 1
