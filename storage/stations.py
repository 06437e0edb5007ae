"""Stations (identity, password, registration, boot data, presence) and connectors."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any

from storage.base import Row, StoreBase
from storage.passwords import hash_password, verify_password
from storage.timefmt import iso, normalize

log = logging.getLogger(__name__)

REGISTRATIONS = ("accepted", "pending", "rejected")
SECURITY_PROFILES = (0, 1, 2, 3)  # OCPP security white paper: plain; Basic; Basic over TLS; client certificate

# BootNotification.req field -> stations column.
BOOT_FIELDS = {
    "chargePointVendor": "vendor",
    "chargePointModel": "model",
    "chargePointSerialNumber": "serial",
    "chargeBoxSerialNumber": "charge_box_serial",
    "firmwareVersion": "firmware_version",
    "iccid": "iccid",
    "imsi": "imsi",
    "meterType": "meter_type",
    "meterSerialNumber": "meter_serial",
}

_PUBLIC = (
    "id, registration, connectors, ever_accepted, connected, connected_at, "
    "disconnected_at, last_seen, vendor, model, serial, charge_box_serial, "
    "firmware_version, iccid, imsi, meter_type, meter_serial, last_boot_at, "
    "last_boot_status, diagnostics_status, diagnostics_status_at, firmware_status, "
    "firmware_status_at, created_at, security_profile, password_hash IS NOT NULL AS has_password"
)


def _public(row: Row) -> Row:
    """Booleans as bools; never contains the password hash or salt."""
    for key in ("ever_accepted", "connected", "has_password"):
        row[key] = bool(row[key])
    return row


class StationsMixin(StoreBase):
    """Charge points known to the central system and their connectors."""

    # -- identity and password -------------------------------------------

    def upsert_station(
        self,
        station_id: str,
        *,
        password: str | None = None,
        registration: str | None = None,
        connectors: int | None = None,
        security_profile: int | None = None,
        now: datetime | None = None,
    ) -> Row:
        """Create the station or update it; unspecified fields keep their value.

        Raises ValueError for a registration outside accepted/pending/rejected,
        a negative connector count or a security profile outside 0-3. Returns
        the station as ``get_station``.
        """
        if registration is not None and registration not in REGISTRATIONS:
            raise ValueError(f"registration must be one of {REGISTRATIONS}")
        if security_profile is not None and security_profile not in SECURITY_PROFILES:
            raise ValueError("security profile must be 0, 1, 2 or 3")
        if connectors is not None and (not isinstance(connectors, int) or connectors < 0):
            raise ValueError("connectors must be a non-negative integer")
        created = iso(now or datetime.now(timezone.utc))
        changes: dict[str, Any] = {}
        if password is not None:
            changes["password_hash"], changes["password_salt"] = hash_password(password)
        if registration is not None:
            changes["registration"] = registration
        if connectors is not None:
            changes["connectors"] = connectors
        if security_profile is not None:
            changes["security_profile"] = security_profile
        with self.write() as conn:
            conn.execute(
                "INSERT INTO stations (id, created_at) VALUES (?, ?) ON CONFLICT(id) DO NOTHING",
                [station_id, created],
            )
            conn.execute("DELETE FROM pending_stations WHERE id = ?", [station_id])  # registered: no longer waiting
            if changes:
                assignments = ", ".join(f"{column} = ?" for column in changes)
                conn.execute(
                    f"UPDATE stations SET {assignments} WHERE id = ?",
                    [*changes.values(), station_id],
                )
        station = self.get_station(station_id)
        assert station is not None
        return station

    def set_password(self, station_id: str, password: str) -> bool:
        """Replace the station's password; False when the station is unknown."""
        password_hash, salt = hash_password(password)
        cursor = self.conn.execute(
            "UPDATE stations SET password_hash = ?, password_salt = ? WHERE id = ?",
            [password_hash, salt, station_id],
        )
        return cursor.rowcount > 0

    def check_password(self, station_id: str, password: str | None) -> bool:
        """True iff the station has a password and ``password`` matches it."""
        found = self.conn.execute(
            "SELECT password_hash, password_salt FROM stations WHERE id = ?", [station_id]
        ).fetchone()
        if found is None or found[0] is None or password is None:
            return False
        return verify_password(password, found[0], found[1])

    def raise_security_profile(self, station_id: str, profile: int) -> None:
        """The station was upgraded to ``profile``: never accept a lower one again (WP A05.FR.09)."""
        self.conn.execute(
            "UPDATE stations SET security_profile = MAX(security_profile, ?) WHERE id = ?", [profile, station_id]
        )

    def station_requires_password(self, station_id: str) -> bool:
        """True when a password is configured for the station.

        Stations without one are accepted without an Authorization header.
        """
        found = self.conn.execute(
            "SELECT password_hash IS NOT NULL FROM stations WHERE id = ?", [station_id]
        ).fetchone()
        return bool(found and found[0])

    # -- rows ---------------------------------------------------------------

    def get_station(self, station_id: str) -> Row | None:
        """The station row without password hash and salt, or None."""
        found = self.row(f"SELECT {_PUBLIC} FROM stations WHERE id = ?", [station_id])
        return _public(found) if found else None

    def list_stations(self) -> list[Row]:
        """Every station as ``get_station``, sorted by id."""
        return [_public(r) for r in self.rows(f"SELECT {_PUBLIC} FROM stations ORDER BY id")]

    def remove_station(self, station_id: str) -> bool:
        """Forget a station, its connectors and configuration memory.

        History (transactions, meter values, status log) is kept. False when
        the station was unknown.
        """
        with self.write() as conn:
            deleted = conn.execute("DELETE FROM stations WHERE id = ?", [station_id]).rowcount
            for table in ("connectors", "configuration", "unknown_config_keys"):
                conn.execute(f"DELETE FROM {table} WHERE station_id = ?", [station_id])
        return deleted > 0

    # -- boot and presence -----------------------------------------------------

    def record_boot(self, station_id: str, payload: dict[str, Any], status: str, now: datetime) -> None:
        """Store a BootNotification.req and the status we answered.

        Creates the station row if missing (registration 'accepted'). On
        'Accepted' sets ever_accepted, which never goes back to 0.
        """
        columns = list(BOOT_FIELDS.values())
        values = [payload.get(field) for field in BOOT_FIELDS]
        updates = ", ".join(f"{c} = excluded.{c}" for c in columns)
        self.conn.execute(
            f"INSERT INTO stations (id, created_at, last_boot_at, last_boot_status, "
            f"ever_accepted, {', '.join(columns)}) "
            f"VALUES (?, ?, ?, ?, ?, {', '.join('?' * len(columns))}) "
            f"ON CONFLICT(id) DO UPDATE SET {updates}, "
            "last_boot_at = excluded.last_boot_at, last_boot_status = excluded.last_boot_status, "
            "ever_accepted = MAX(stations.ever_accepted, excluded.ever_accepted)",
            [station_id, iso(now), iso(now), status, int(status == "Accepted"), *values],
        )

    def record_notification(self, station_id: str, kind: str, status: str, now: datetime) -> None:
        """Remember the last Diagnostics- or FirmwareStatusNotification status.

        ``kind`` is 'diagnostics' or 'firmware'; anything else raises ValueError.
        """
        if kind not in ("diagnostics", "firmware"):
            raise ValueError(f"unknown notification kind {kind!r}")
        self.conn.execute(
            f"UPDATE stations SET {kind}_status = ?, {kind}_status_at = ? WHERE id = ?",
            [status, iso(now), station_id],
        )

    def mark_connected(self, station_id: str, connected: bool, now: datetime,
                       opened: datetime | None = None) -> None:
        """Record a connection (creating the row of a station admitted unknown) or a disconnection.

        A disconnection only updates: the station may have been removed while it
        was connected (``station remove``), and its closing must not bring it back.
        With ``opened`` (when the ending connection was recorded) it changes nothing
        if a newer connection was recorded since: a connection replaced by one on
        another host may end after the new one was stored.
        """
        stamp = iso(now)
        args = [station_id, stamp]
        if connected:
            sql = (
                "INSERT INTO stations (id, created_at, connected, connected_at, last_seen) "
                "VALUES (?1, ?2, 1, ?2, ?2) ON CONFLICT(id) DO UPDATE SET "
                "connected = 1, connected_at = ?2, last_seen = ?2"
            )
        else:
            sql = "UPDATE stations SET connected = 0, disconnected_at = ?2, last_seen = ?2 WHERE id = ?1"
            if opened is not None:
                sql += " AND connected_at = ?3"
                args.append(iso(opened))
        self.conn.execute(sql, args)

    # -- identities waiting for approval (--unknown-stations pending) ------------------

    def record_pending_attempt(self, station_id: str, address: str, now: datetime) -> None:
        """An unknown identity tried to connect: listed (or its attempt counted) for approval."""
        self.conn.execute(
            "INSERT INTO pending_stations (id, address, attempts, first_seen, last_seen) VALUES (?1, ?2, 1, ?3, ?3) "
            "ON CONFLICT(id) DO UPDATE SET address = ?2, attempts = attempts + 1, last_seen = ?3",
            [station_id, address, iso(now)],
        )

    def is_pending(self, station_id: str) -> bool:
        return self.conn.execute("SELECT 1 FROM pending_stations WHERE id = ?", [station_id]).fetchone() is not None

    def pending_count(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM pending_stations").fetchone()[0])

    def station_count(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM stations").fetchone()[0])

    def list_pending(self, *, limit: int = 10_000) -> list[Row]:
        """Identities waiting for approval, most recent attempt first."""
        return self.rows("SELECT id, address, attempts, first_seen, last_seen FROM pending_stations "
                         "ORDER BY last_seen DESC, id LIMIT ?", [limit])

    def approve_pending(self, station_id: str) -> Row | None:
        """Register a waiting identity (accepted, no password); None when it is not waiting."""
        with self.write():
            if not self.is_pending(station_id):
                return None
            return self.upsert_station(station_id)  # which takes it off the waiting list

    def mark_all_disconnected(self, *, now: datetime | None = None) -> None:
        """Mark every station disconnected (at node start, after a crash)."""
        self.conn.execute(
            "UPDATE stations SET connected = 0, disconnected_at = ? WHERE connected = 1",
            [iso(now or datetime.now(timezone.utc))],
        )

    _last_touch: dict[str, datetime]
    TOUCH_EVERY = 30.0

    def touch(self, station_id: str, now: datetime) -> None:
        """Set last_seen (OCPP 1.6 §4.6: any PDU proves liveness).

        Written at most every TOUCH_EVERY seconds per station from one Store:
        a write per Heartbeat would contend for the database lock for nothing."""
        last = self._last_touch.get(station_id)
        if last is not None and 0 <= (now - last).total_seconds() < self.TOUCH_EVERY:
            return
        self._last_touch[station_id] = now
        self.conn.execute("UPDATE stations SET last_seen = ? WHERE id = ?", [iso(now), station_id])

    # -- monitoring (scraped by the metrics exporter) ------------------------------------

    def connector_counts(self) -> list[Row]:
        """Connectors (id 1 and up) of connected charge points, counted by last status and error code."""
        return self.rows(
            "SELECT c.status AS status, c.error_code AS error_code, COUNT(*) AS n FROM connectors c "
            "JOIN stations s ON s.id = c.station_id WHERE s.connected = 1 AND c.connector_id > 0 "
            "GROUP BY c.status, c.error_code"
        )

    def silent_station_counts(self, now: datetime, default_interval: int) -> dict[bool, int]:
        """Charge points once accepted and not heard from for more than twice their heartbeat
        interval (their HeartbeatInterval key when known, else ``default_interval``), by connected."""
        rows = self.conn.execute(
            "SELECT s.connected, COUNT(*) FROM stations s LEFT JOIN configuration c "
            "ON c.station_id = s.id AND c.key = 'HeartbeatInterval' "
            "WHERE s.ever_accepted = 1 AND (julianday(?) - julianday(COALESCE(s.last_seen, s.connected_at, s.created_at)))"
            " * 86400.0 > 2 * COALESCE(NULLIF(CAST(c.value AS INTEGER), 0), ?) GROUP BY s.connected",
            [iso(now), default_interval],
        ).fetchall()
        found = {False: 0, True: 0}
        for connected, n in rows:
            found[bool(connected)] = int(n)
        return found

    # -- connectors --------------------------------------------------------------

    def record_status(self, station_id: str, payload: dict[str, Any], now: datetime) -> None:
        """Store a StatusNotification.req: current connector row plus history."""
        received = iso(now)
        values = [
            station_id,
            payload["connectorId"],
            payload.get("status"),
            payload.get("errorCode"),
            payload.get("info"),
            payload.get("vendorId"),
            payload.get("vendorErrorCode"),
            normalize(payload.get("timestamp")),
            received,
        ]
        with self.write() as conn:
            conn.execute(
                "INSERT INTO connectors (station_id, connector_id, status, error_code, info, "
                "vendor_id, vendor_error_code, timestamp, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(station_id, connector_id) DO UPDATE SET status = excluded.status, "
                "error_code = excluded.error_code, info = excluded.info, "
                "vendor_id = excluded.vendor_id, vendor_error_code = excluded.vendor_error_code, "
                "timestamp = excluded.timestamp, updated_at = excluded.updated_at",
                values,
            )
            conn.execute(
                "INSERT INTO status_log (station_id, connector_id, status, error_code, info, "
                "timestamp, received_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [*values[:5], values[7], received],
            )

    def connector_statuses(self, station_id: str) -> list[Row]:
        """Last reported status of every connector of the station, by connector id."""
        return self.rows(
            "SELECT connector_id, status, error_code, info, vendor_id, vendor_error_code, "
            "timestamp, updated_at FROM connectors WHERE station_id = ? ORDER BY connector_id",
            [station_id],
        )

    def status_history(self, station_id: str, *, limit: int = 100) -> list[Row]:
        """The most recent StatusNotifications of the station, newest first."""
        return self.rows(
            "SELECT connector_id, status, error_code, info, timestamp, received_at "
            "FROM status_log WHERE station_id = ? ORDER BY id DESC LIMIT ?",
            [station_id, limit],
        )
