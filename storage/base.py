"""The connection and transaction vocabulary shared by the Store's parts.

The sqlite3 connection runs in autocommit mode (``isolation_level = None``):
a single statement is its own transaction, and ``write()`` wraps several
statements (or a read followed by a write) in ``BEGIN IMMEDIATE`` ... ``COMMIT``
so that the write lock is taken up front and waits under ``busy_timeout``
instead of failing with SQLITE_BUSY when upgrading from a read.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlite_utils import Database

Row = dict[str, Any]


class StoreBase:
    """Owns ``db``; subclasses add the table-specific methods."""

    db: Database

    @property
    def conn(self) -> sqlite3.Connection:
        """The underlying sqlite3 connection (autocommit mode)."""
        return self.db.conn

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One short write transaction, committed on exit, rolled back on error."""
        conn = self.db.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Run a query; every row as a dict."""
        cursor = self.db.conn.execute(sql, params)
        keys = [d[0] for d in cursor.description]
        return [dict(zip(keys, row, strict=True)) for row in cursor.fetchall()]

    def row(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        """Run a query; the first row as a dict, or None."""
        found = self.rows(sql, params)
        return found[0] if found else None
