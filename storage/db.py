"""``Store``: the one object through which the central system reads and writes SQLite.

Open a Store in the process that uses it (after any fork) and never share it
across processes or threads; several processes may open the same file.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path

from sqlite_utils import Database

from storage.api_keys import ApiKeysMixin
from storage.base import LOCK_WAIT, Row, _retry
from storage.configuration import ConfigurationMixin
from storage.firmware import FirmwareMixin
from storage.history import HistoryMixin
from storage.local_list import LocalListMixin
from storage.profiles import ProfilesMixin
from storage.reservations import ReservationsMixin
from storage.schema import migrate
from storage.security import SecurityMixin
from storage.stations import StationsMixin
from storage.tags import TagsMixin
from storage.timers import TimersMixin
from storage.transactions import TransactionsMixin


class Store(
    StationsMixin,
    TagsMixin,
    TransactionsMixin,
    ConfigurationMixin,
    TimersMixin,
    ReservationsMixin,
    LocalListMixin,
    FirmwareMixin,
    ProfilesMixin,
    ApiKeysMixin,
    HistoryMixin,
    SecurityMixin,
):
    """SQLite in WAL mode, migrated on open.

    Every write method commits before it returns (short transactions; a busy
    database is waited for up to 10 s).
    """

    def __init__(
        self, path: str, *, migrate_schema: bool = True, checkpoints: bool = True, writer: bool = False
    ) -> None:
        """``writer``: a station host's group-commit writer. It runs on a thread of
        its own, so SQLite's busy handler may wait for the lock (up to LOCK_WAIT),
        and every commit is durable across power loss (``synchronous=FULL``)."""
        self.path = path
        self.db = Database(path)
        # Autocommit: one statement = one transaction; StoreBase.write() for more.
        self.db.conn.isolation_level = None
        conn = self.db.conn
        # storage.base._retry waits for the others; the writer lets SQLite wait.
        conn.execute(f"PRAGMA busy_timeout={int(LOCK_WAIT * 1000) if writer else 0}")
        _enable_wal(conn)
        conn.execute(f"PRAGMA synchronous={'FULL' if writer else 'NORMAL'}")
        if not checkpoints:
            # The writer that crosses the WAL threshold would copy pages back and
            # fsync inside its own reply; one process checkpoints for everyone.
            conn.execute("PRAGMA wal_autocheckpoint=0")
        self._last_touch: dict[str, datetime] = {}
        if writer and path != ":memory:":
            # Beside the database: the hosts' writers queue on it (StoreBase.group).
            self._turn_lock = open(f"{path}-writers.lock", "a")  # noqa: SIM115 - closed in close()
        if migrate_schema:
            _retry(lambda: migrate(self.db))

    def checkpoint(self) -> None:
        """Copy the WAL back into the database without blocking writers (PASSIVE)."""
        self.conn.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def close(self) -> None:
        """Close the connection; the Store is unusable afterwards."""
        self.db.close()
        if self._turn_lock is not None:
            self._turn_lock.close()
            self._turn_lock = None

    def summary(self) -> Row:
        """Counts for the ``status`` command and the metrics collector."""
        found = self.row(
            "SELECT (SELECT COUNT(*) FROM stations) AS stations_known, "
            "(SELECT COUNT(*) FROM stations WHERE connected = 1) AS stations_connected, "
            "(SELECT COUNT(*) FROM transactions WHERE stopped_at IS NULL) AS transactions_active, "
            "(SELECT COUNT(*) FROM transactions) AS transactions_total"
        )
        assert found is not None
        return found


def probe(path: str, *, timeout: float) -> None:
    """Raise unless the database answers a read within ``timeout`` seconds (``/readyz``).

    A fresh read-only connection (it never creates the file) reads the schema:
    ``SELECT 1`` alone would not touch the file at all in SQLite.
    """
    conn = sqlite3.connect(Path(path).absolute().as_uri() + "?mode=ro", uri=True, timeout=timeout)
    try:
        conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
    finally:
        conn.close()


def _enable_wal(conn: sqlite3.Connection) -> None:
    """Switch to WAL. The switch needs an exclusive lock, so several processes
    opening a fresh file at once can see "database is locked": waited out by _retry."""
    _retry(lambda: conn.execute("PRAGMA journal_mode=WAL"))
