"""Schema migrations: ordered ``mNNN_*`` functions, each applied exactly once.

Applied names are recorded in ``_migrations`` (name, applied_at). Each
migration runs in its own ``BEGIN IMMEDIATE`` transaction together with the
check that it is still pending and the record of it being applied, so several
processes opening the same file at once serialise on SQLite's write lock and
each migration runs once. A failing migration rolls back and stays pending.

Migrations write SQL with ``db.execute`` (one statement per call; never
``executescript``, which would commit the open transaction).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone

from sqlite_utils import Database

from storage.timefmt import iso

Migration = Callable[[Database], None]


def m001_initial(db: Database) -> None:
    """Stations, connectors, tags, transactions, meter values, configuration."""
    statements = [
        """CREATE TABLE stations (
            id TEXT PRIMARY KEY,
            password_hash TEXT,
            password_salt TEXT,
            registration TEXT NOT NULL DEFAULT 'accepted',
            connectors INTEGER,
            ever_accepted INTEGER NOT NULL DEFAULT 0,
            connected INTEGER NOT NULL DEFAULT 0,
            connected_at TEXT,
            disconnected_at TEXT,
            last_seen TEXT,
            vendor TEXT, model TEXT, serial TEXT, charge_box_serial TEXT,
            firmware_version TEXT, iccid TEXT, imsi TEXT,
            meter_type TEXT, meter_serial TEXT,
            last_boot_at TEXT, last_boot_status TEXT,
            created_at TEXT NOT NULL
        )""",
        """CREATE TABLE connectors (
            station_id TEXT NOT NULL,
            connector_id INTEGER NOT NULL,
            status TEXT, error_code TEXT, info TEXT,
            vendor_id TEXT, vendor_error_code TEXT,
            timestamp TEXT,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (station_id, connector_id)
        )""",
        """CREATE TABLE status_log (
            id INTEGER PRIMARY KEY,
            station_id TEXT NOT NULL,
            connector_id INTEGER NOT NULL,
            status TEXT, error_code TEXT, info TEXT,
            timestamp TEXT,
            received_at TEXT NOT NULL
        )""",
        "CREATE INDEX status_log_station ON status_log (station_id, connector_id)",
        """CREATE TABLE tags (
            id_key TEXT PRIMARY KEY,
            id_tag TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'Accepted',
            expiry TEXT,
            parent TEXT,
            updated_at TEXT NOT NULL
        )""",
        """CREATE TABLE transactions (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            station_id TEXT NOT NULL,
            connector_id INTEGER NOT NULL,
            id_tag TEXT NOT NULL,
            id_key TEXT NOT NULL,
            start_status TEXT NOT NULL,
            meter_start INTEGER NOT NULL,
            start_timestamp TEXT NOT NULL,
            reservation_id INTEGER,
            started_at TEXT NOT NULL,
            meter_stop INTEGER,
            stop_timestamp TEXT,
            stop_reason TEXT,
            stop_id_tag TEXT,
            transaction_data TEXT,
            stopped_at TEXT,
            abandoned INTEGER NOT NULL DEFAULT 0,
            energy_wh INTEGER
        )""",
        "CREATE INDEX transactions_open ON transactions (station_id, connector_id, stopped_at)",
        "CREATE INDEX transactions_tag ON transactions (id_key, stopped_at)",
        """CREATE TABLE unmatched_stops (
            id INTEGER PRIMARY KEY,
            station_id TEXT NOT NULL,
            transaction_id INTEGER,
            id_tag TEXT,
            meter_stop INTEGER,
            stop_timestamp TEXT,
            stop_reason TEXT,
            transaction_data TEXT,
            payload TEXT NOT NULL,
            note TEXT,
            received_at TEXT NOT NULL
        )""",
        """CREATE TABLE meter_values (
            id INTEGER PRIMARY KEY,
            station_id TEXT NOT NULL,
            connector_id INTEGER NOT NULL,
            transaction_id INTEGER,
            timestamp TEXT,
            sampled_value TEXT NOT NULL,
            received_at TEXT NOT NULL
        )""",
        "CREATE INDEX meter_values_tx ON meter_values (transaction_id)",
        """CREATE TABLE configuration (
            station_id TEXT NOT NULL,
            key TEXT NOT NULL,
            value TEXT,
            readonly INTEGER NOT NULL DEFAULT 0,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (station_id, key)
        )""",
        """CREATE TABLE unknown_config_keys (
            station_id TEXT NOT NULL,
            key TEXT NOT NULL,
            reported_at TEXT NOT NULL,
            PRIMARY KEY (station_id, key)
        )""",
    ]
    for sql in statements:
        db.execute(sql)


def m002_status_notifications(db: Database) -> None:
    """Last Diagnostics/FirmwareStatusNotification per station."""
    for column in (
        "diagnostics_status",
        "diagnostics_status_at",
        "firmware_status",
        "firmware_status_at",
    ):
        db.execute(f"ALTER TABLE stations ADD COLUMN {column} TEXT")


def m003_timers(db: Database) -> None:
    """Persistent timers of the scheduler actor (reservation expiry, profile validTo)."""
    db.execute(
        """CREATE TABLE timers (
            key TEXT PRIMARY KEY,
            station_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            due TEXT NOT NULL,
            data TEXT NOT NULL DEFAULT '{}'
        )"""
    )


def m004_reservations(db: Database) -> None:
    """Reservations by reservationId, and the never-repeating reservationId allocator."""
    db.execute(
        """CREATE TABLE reservations (
            id INTEGER PRIMARY KEY,
            station_id TEXT NOT NULL,
            connector_id INTEGER NOT NULL,
            id_tag TEXT NOT NULL,
            parent_id_tag TEXT,
            expiry_date TEXT NOT NULL,
            status TEXT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            transaction_id INTEGER,
            note TEXT
        )"""
    )
    db.execute("CREATE INDEX reservations_station ON reservations (station_id, status)")
    db.execute("CREATE TABLE reservation_ids (id INTEGER PRIMARY KEY AUTOINCREMENT)")


def m005_local_lists(db: Database) -> None:
    """What each station's Local Authorization List holds, and SendLocalList history."""
    db.execute(
        """CREATE TABLE local_lists (
            station_id TEXT PRIMARY KEY,
            version INTEGER NOT NULL DEFAULT 0,
            entries TEXT NOT NULL DEFAULT '{}',
            updated_at TEXT,
            last_status TEXT,
            reported_version INTEGER,
            reported_at TEXT
        )"""
    )
    db.execute(
        """CREATE TABLE local_list_updates (
            id INTEGER PRIMARY KEY,
            station_id TEXT NOT NULL,
            version INTEGER NOT NULL,
            update_type TEXT NOT NULL,
            entry_count INTEGER NOT NULL,
            status TEXT NOT NULL,
            at TEXT NOT NULL
        )"""
    )
    db.execute("CREATE INDEX local_list_updates_station ON local_list_updates (station_id)")


def m006_station_events(db: Database) -> None:
    """Firmware and diagnostics requests and status notifications, per station."""
    db.execute(
        """CREATE TABLE station_events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            station_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            status TEXT NOT NULL,
            detail TEXT,
            at TEXT NOT NULL
        )"""
    )
    db.execute("CREATE INDEX station_events_station ON station_events (station_id, kind)")


def m007_charging_profiles(db: Database) -> None:
    """Charging profiles the central system believes are installed (smart charging)."""
    db.execute(
        """CREATE TABLE charging_profiles (
            station_id TEXT NOT NULL,
            connector_id INTEGER NOT NULL,
            profile_id INTEGER NOT NULL,
            purpose TEXT NOT NULL,
            stack_level INTEGER NOT NULL,
            transaction_id INTEGER,
            valid_to TEXT,
            profile TEXT NOT NULL,
            installed_at TEXT NOT NULL,
            PRIMARY KEY (station_id, connector_id, profile_id)
        )"""
    )


def m008_remote_start_profiles(db: Database) -> None:
    """TxProfiles of accepted RemoteStartTransactions, until their StartTransaction arrives."""
    db.execute(
        """CREATE TABLE remote_start_profiles (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            station_id TEXT NOT NULL,
            connector_id INTEGER,
            id_key TEXT NOT NULL,
            profile TEXT NOT NULL,
            accepted_at TEXT NOT NULL
        )"""
    )
    db.execute("CREATE INDEX remote_start_profiles_station ON remote_start_profiles (station_id)")


def m009_meter_value_flags(db: Database) -> None:
    """Why a stored meter value is suspect (e.g. it named another charge point's transaction)."""
    db.execute("ALTER TABLE meter_values ADD COLUMN flag TEXT")


def m010_pending_stations(db: Database) -> None:
    """Unknown identities that tried to connect with --unknown-stations pending, for approval."""
    db.execute(
        """CREATE TABLE pending_stations (
            id TEXT PRIMARY KEY,
            address TEXT,
            attempts INTEGER NOT NULL,
            first_seen TEXT NOT NULL,
            last_seen TEXT NOT NULL
        )"""
    )


def m011_transaction_flags(db: Database) -> None:
    """What is implausible about a transaction (accepted, as OCPP asks, but shown)."""
    db.execute("ALTER TABLE transactions ADD COLUMN flags TEXT")


def m012_security_profiles(db: Database) -> None:
    """The lowest OCPP security profile (0-3) each station may connect with."""
    db.execute("ALTER TABLE stations ADD COLUMN security_profile INTEGER NOT NULL DEFAULT 0")


def m013_api_keys(db: Database) -> None:
    """Keys of the HTTP API, stored as SHA-256 hashes (storage.api_keys says why not PBKDF2)."""
    db.execute(
        """CREATE TABLE api_keys (
            name TEXT PRIMARY KEY,
            key_hash TEXT NOT NULL UNIQUE,
            scope TEXT NOT NULL,
            created_at TEXT NOT NULL,
            last_used_at TEXT
        )"""
    )


def m014a_events(db: Database) -> None:
    """The event stream (GET /api/v1/events): written by the hosts' writers in their group commit,
    so an event exists iff what it reports was committed; AUTOINCREMENT: ids never reused."""
    db.execute(
        """CREATE TABLE events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            type TEXT NOT NULL,
            station_id TEXT,
            at TEXT NOT NULL,
            data TEXT NOT NULL
        )"""
    )


def m014b_frame_log(db: Database) -> None:
    """The last frames of each station, a ring: slot = seq % --frame-log-per-station, upserted."""
    db.execute(
        """CREATE TABLE frame_log (
            station_id TEXT NOT NULL,
            slot INTEGER NOT NULL,
            seq INTEGER NOT NULL,
            at TEXT NOT NULL,
            direction TEXT NOT NULL,
            frame TEXT NOT NULL,
            PRIMARY KEY (station_id, slot)
        ) WITHOUT ROWID"""
    )


def m014c_audit_log(db: Database) -> None:
    """Every operator action: who, what, when, and the charge point's answer."""
    db.execute(
        """CREATE TABLE audit_log (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at TEXT NOT NULL,
            who TEXT NOT NULL,
            command TEXT NOT NULL,
            station_id TEXT,
            payload TEXT,
            outcome TEXT,
            answer TEXT
        )"""
    )
    db.execute("CREATE INDEX audit_log_station ON audit_log (station_id, id)")


def m014d_authorization_log(db: Database) -> None:
    """Every authorization decision with its reason (idTags kept: the operator queries by tag)."""
    db.execute(
        """CREATE TABLE authorization_log (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at TEXT NOT NULL,
            id_tag TEXT NOT NULL COLLATE NOCASE,
            station_id TEXT,
            connector_id INTEGER,
            action TEXT NOT NULL,
            status TEXT NOT NULL,
            reason TEXT NOT NULL
        )"""
    )
    db.execute("CREATE INDEX authorization_log_tag ON authorization_log (id_tag COLLATE NOCASE, id)")


def m014e_data_transfers(db: Database) -> None:
    """The data of accepted vendor DataTransfer messages from charge points."""
    db.execute(
        """CREATE TABLE data_transfers (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            station_id TEXT NOT NULL,
            at TEXT NOT NULL,
            vendor_id TEXT NOT NULL,
            message_id TEXT,
            data TEXT
        )"""
    )
    db.execute("CREATE INDEX data_transfers_station ON data_transfers (station_id, id)")


def m015_security(db: Database) -> None:
    """Certificates issued by the node's CA and installed on stations; the node's own security log."""
    db.execute(
        """CREATE TABLE issued_certificates (
            serial TEXT NOT NULL,
            station_id TEXT NOT NULL,
            subject TEXT NOT NULL,
            not_before TEXT NOT NULL,
            not_after TEXT NOT NULL,
            certificate TEXT NOT NULL,
            status TEXT NOT NULL,
            issued_at TEXT NOT NULL,
            answered_at TEXT,
            PRIMARY KEY (station_id, serial)
        )"""
    )
    db.execute("CREATE INDEX issued_certificates_expiry ON issued_certificates (not_after)")
    db.execute(
        """CREATE TABLE installed_certificates (
            station_id TEXT NOT NULL,
            certificate_type TEXT NOT NULL,
            hash_algorithm TEXT NOT NULL,
            issuer_name_hash TEXT NOT NULL,
            issuer_key_hash TEXT NOT NULL,
            serial_number TEXT NOT NULL,
            seen_at TEXT NOT NULL,
            PRIMARY KEY (station_id, certificate_type, hash_algorithm, issuer_name_hash, issuer_key_hash, serial_number)
        )"""
    )
    db.execute(
        """CREATE TABLE own_security_events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            type TEXT NOT NULL,
            station_id TEXT,
            address TEXT,
            detail TEXT,
            at TEXT NOT NULL
        )"""
    )


MIGRATIONS: tuple[Migration, ...] = (
    m001_initial,
    m002_status_notifications,
    m003_timers,
    m004_reservations,
    m005_local_lists,
    m006_station_events,
    m007_charging_profiles,
    m008_remote_start_profiles,
    m009_meter_value_flags,
    m010_pending_stations,
    m011_transaction_flags,
    m012_security_profiles,
    m013_api_keys,
    m014a_events,
    m014b_frame_log,
    m014c_audit_log,
    m014d_authorization_log,
    m014e_data_transfers,
    m015_security,
)


def migrate(db: Database, migrations: tuple[Migration, ...] = MIGRATIONS) -> list[str]:
    """Apply pending ``migrations`` in order; return the names applied now.

    The connection must be in autocommit mode (``isolation_level = None``).
    """
    conn = db.conn
    conn.execute(
        "CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"
    )
    applied_now: list[str] = []
    for migration in migrations:
        name = migration.__name__
        conn.execute("BEGIN IMMEDIATE")
        try:
            done = conn.execute("SELECT 1 FROM _migrations WHERE name = ?", [name]).fetchone()
            if done is None:
                migration(db)
                conn.execute(
                    "INSERT INTO _migrations (name, applied_at) VALUES (?, ?)",
                    [name, iso(datetime.now(timezone.utc))],
                )
                applied_now.append(name)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return applied_now
