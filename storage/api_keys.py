"""Keys of the HTTP API: who may call it, with which scope. Only hashes are stored.

A key is ``csms_`` and 256 random bits (``secrets.token_urlsafe(32)``),
printed once by ``ctl api-key create`` and never stored: the table keeps
its SHA-256. Station passwords are stretched with PBKDF2
(``storage.passwords``) because people choose them and a stolen hash could
be guessed at; nothing can be guessed about 256 random bits, so a stretched
hash would only cost every API request tens of milliseconds, and an
unsalted digest lets a request find its key by an indexed lookup of the
hash instead of trying every stored key. The lookup compares hashes, never
keys, so its timing tells nothing about a stored key.

Scopes, each allowing what the one before allows: ``read`` (GET),
``operate`` (also OCPP requests to charge points), ``admin`` (also changes
to stations, tags and keys).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime, timezone

from storage.base import Row, StoreBase
from storage.timefmt import iso

SCOPES = ("read", "operate", "admin")
KEY_PREFIX = "csms_"
NAME_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,64}")
_COLUMNS = "name, scope, created_at, last_used_at"


def new_key() -> str:
    """A fresh key: the prefix (so it can be recognised, e.g. by secret scanners) and 256 random bits."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def key_hash(key: str) -> str:
    """What is stored of ``key``: its SHA-256, in hex."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def scope_allows(held: str, needed: str) -> bool:
    """True when a key of scope ``held`` may do what needs ``needed`` (read < operate < admin)."""
    return held in SCOPES and needed in SCOPES and SCOPES.index(held) >= SCOPES.index(needed)


class ApiKeysMixin(StoreBase):
    """The HTTP API's keys (name, scope, hash, created, last used)."""

    def create_api_key(self, name: str, scope: str, *, now: datetime | None = None) -> tuple[Row, str]:
        """Store a new key named ``name``; return its row and the key itself (the only time it is seen).

        Raises ValueError when the name is not 1-64 letters, digits, '.', '_' or
        '-', is taken, or the scope is not read, operate or admin.
        """
        if not NAME_PATTERN.fullmatch(name):
            raise ValueError("key name must be 1 to 64 letters, digits, '.', '_' or '-'")
        if scope not in SCOPES:
            raise ValueError(f"scope must be one of {', '.join(SCOPES)}")
        key = new_key()
        with self.write() as conn:
            if conn.execute("SELECT 1 FROM api_keys WHERE name = ?", [name]).fetchone():
                raise ValueError(f"an API key named {name} exists already (revoke it first)")
            conn.execute(
                "INSERT INTO api_keys (name, key_hash, scope, created_at) VALUES (?, ?, ?, ?)",
                [name, key_hash(key), scope, iso(now or datetime.now(timezone.utc))],
            )
        row = self.row(f"SELECT {_COLUMNS} FROM api_keys WHERE name = ?", [name])
        assert row is not None
        return row, key

    def list_api_keys(self) -> list[Row]:
        """Every key's name, scope, creation and last use; never the key or its hash."""
        return self.rows(f"SELECT {_COLUMNS} FROM api_keys ORDER BY name")

    def revoke_api_key(self, name: str) -> bool:
        """Delete the key; False when there is none of that name."""
        return self.conn.execute("DELETE FROM api_keys WHERE name = ?", [name]).rowcount > 0

    def find_api_key(self, key: str) -> Row | None:
        """The key's row (name, scope, created_at, last_used_at), or None for an unknown key."""
        return self.row(f"SELECT {_COLUMNS} FROM api_keys WHERE key_hash = ?", [key_hash(key)])

    def touch_api_key(self, name: str, now: datetime) -> None:
        """Record that the key ``name`` was used at ``now``."""
        self.conn.execute("UPDATE api_keys SET last_used_at = ? WHERE name = ?", [iso(now), name])
