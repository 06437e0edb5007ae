"""The connection and transaction vocabulary shared by the Store's parts.

The sqlite3 connection runs in autocommit mode (``isolation_level = None``):
a single statement is its own transaction, and ``write()`` wraps several
statements (or a read followed by a write) in ``BEGIN IMMEDIATE`` ... ``COMMIT``
so that the write lock is taken up front instead of failing with SQLITE_BUSY
when upgrading from a read.

Waiting for the lock: many station processes write to one file, on few cores.
SQLite's own busy handler sleeps 1, 2, 5, 10 ... 100 ms between attempts, so a
writer that finds the lock taken for 30 us waits milliseconds, and under load
those sleeps dominate the latency (measured: half the throughput at 200
stations). The connection therefore runs with ``busy_timeout=0`` and
``_retry`` waits itself: first by yielding the CPU, then with growing
sleeps (see ``_retry``), for at most ``LOCK_WAIT`` seconds.
"""

from __future__ import annotations

import fcntl
import os
import random
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlite_utils import Database

T = TypeVar("T")

Row = dict[str, Any]

LOCK_WAIT = 10.0
_YIELDS = 2


def _retry(run: Callable[[], T]) -> T:
    """Run ``run`` until it does not fail with "database is locked" (LOCK_WAIT at most).

    Two yields first (the lock is usually free again within microseconds),
    then sleeps that double from 0.5 ms up to 50 ms, with jitter: under
    overload (a thousand station processes on two cores) a preempted lock
    holder needs the CPU, and waiters that wake every millisecond would keep
    it from running (measured: throughput collapsed to ~90 msg/s at 1000
    stations with short sleeps).
    """
    attempt = 0
    deadline = 0.0
    while True:
        try:
            return run()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            attempt += 1
            if attempt == 1:
                deadline = time.monotonic() + LOCK_WAIT
            elif time.monotonic() > deadline:
                raise
            if attempt <= _YIELDS:
                os.sched_yield()
            else:
                pause = min(0.05, 0.0005 * 2 ** min(attempt - _YIELDS - 1, 10))
                time.sleep(pause * random.uniform(0.5, 1.5))


class RetryingConnection:
    """The few sqlite3.Connection methods the Store uses, retried while the file is locked."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.raw = conn

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> sqlite3.Cursor:
        return _retry(lambda: self.raw.execute(sql, params))

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> sqlite3.Cursor:
        rows = list(rows)
        return _retry(lambda: self.raw.executemany(sql, rows))


class StoreBase:
    """Owns ``db``; subclasses add the table-specific methods."""

    db: Database
    _turn_lock: Any = None  # a station host writer's lock file (storage.db.Store(writer=True))
    last_commit_seconds = 0.0  # how long the last group()'s COMMIT took (the writer's metric)

    @property
    def conn(self) -> RetryingConnection:
        """The sqlite3 connection (autocommit mode), waiting while the file is locked."""
        return RetryingConnection(self.db.conn)

    def prune_oldest(self, table: str, column: str, cutoff: str, *, batch: int) -> int:
        """Delete up to ``batch`` of the oldest rows of ``table`` whose ``column`` (an ISO time) is
        before ``cutoff``; how many.

        Rows are read in id order, which is the order they were stored in, and the
        batch stops at the first one that is recent enough: no index on the time,
        and no scan of the whole table when nothing is old. ``table`` and
        ``column`` are the callers' own names, never input.
        """
        with self.write() as conn:
            oldest = conn.execute(f"SELECT id, {column} FROM {table} ORDER BY id LIMIT ?", [batch]).fetchall()  # noqa: S608
            last = None
            for row_id, at in oldest:
                if at >= cutoff:
                    break
                last = row_id
            if last is None:
                return 0
            return int(conn.execute(f"DELETE FROM {table} WHERE id <= ? AND {column} < ?",  # noqa: S608
                                    [last, cutoff]).rowcount)

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One short write transaction, committed on exit, rolled back on error.

        Inside a group (``group()``, a station host's loop turn) it is a
        savepoint of the group's transaction instead: its writes commit with
        the group, and an error undoes only its own part.
        """
        conn = self.db.conn
        if conn.in_transaction:
            with self.savepoint():
                yield conn
            return
        _retry(lambda: conn.execute("BEGIN IMMEDIATE"))
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def backup_to(self, path: str) -> int:
        """A consistent copy of the whole database in a new file ``path``; its size in bytes.

        SQLite's online backup in one step: it reads one snapshot (in WAL mode
        writers go on meanwhile; a step-wise copy would restart whenever a host
        commits, which they do many times a second). Refuses to overwrite.
        """
        target = os.path.abspath(path)
        if os.path.exists(target):
            raise FileExistsError(f"{target} exists; give a new file")
        partial = target + ".partial"
        dest = sqlite3.connect(partial)
        try:
            _retry(lambda: self.db.conn.backup(dest))
            dest.close()
            os.replace(partial, target)
        except BaseException:
            dest.close()
            if os.path.exists(partial):
                os.unlink(partial)
            raise
        return os.path.getsize(target)

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """Undo this block's writes if it raises; keep them (uncommitted) if not."""
        conn = self.db.conn
        conn.execute("SAVEPOINT part")
        try:
            yield
        except BaseException:
            conn.execute("ROLLBACK TO part")
            conn.execute("RELEASE part")
            raise
        conn.execute("RELEASE part")

    @contextmanager
    def group(self) -> Iterator[None]:
        """Group commit: every write inside is one transaction, committed on exit.

        Used by a station host's writer (ARCHITECTURE.md, "Group commit"): the
        writes of all frames handled in one turn commit together, and only then
        are their replies sent. Raises what COMMIT raises; then nothing of the
        group is kept.
        """
        conn = self.db.conn
        turns = self._turn_lock
        if turns is not None:
            # The hosts' writers take turns in the order the kernel wakes them:
            # SQLite's busy handler polls with sleeps of up to 100 ms, and a
            # writer that just committed takes the lock again before a sleeping
            # one wakes (measured with two hosts, closed loop, 1000 stations:
            # p50 47 ms but p99 1.3 s; one host alone: p99 154 ms).
            fcntl.flock(turns, fcntl.LOCK_EX)
        try:
            conn.execute("BEGIN IMMEDIATE")  # waits up to busy_timeout, off the event loop
            try:
                yield
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            try:
                started = time.perf_counter()
                conn.execute("COMMIT")
                self.last_commit_seconds = time.perf_counter() - started
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        finally:
            if turns is not None:
                fcntl.flock(turns, fcntl.LOCK_UN)

    def _next_id(self, table: str) -> int:
        """The id SQLite's AUTOINCREMENT gives the next row of ``table``.

        Only meaningful inside a write transaction (a host writer's turn), which
        no other connection can interleave with.
        """
        seq = self.conn.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", [table]).fetchone()
        top = self.conn.execute(f"SELECT max(id) FROM {table}").fetchone()  # noqa: S608 - a table name of ours
        return max(int(seq[0]) if seq else 0, int(top[0] or 0)) + 1

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Run a query; every row as a dict."""
        cursor = self.conn.execute(sql, params)
        keys = [d[0] for d in cursor.description]
        return [dict(zip(keys, row, strict=True)) for row in cursor.fetchall()]

    def row(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        """Run a query; the first row as a dict, or None."""
        found = self.rows(sql, params)
        return found[0] if found else None
