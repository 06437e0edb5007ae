"""Authorization tags (idTags), looked up case-insensitively.

# OCPP 1.6 errata 3.73/3.74: "IdToken is case-insensitive CiString20".
The key is ``id_tag.lower()``; the tag is kept as received for display.
"""

from __future__ import annotations

from datetime import datetime, timezone

from storage.base import Row, StoreBase
from storage.timefmt import iso, parse_time

TAG_STATUSES = ("Accepted", "Blocked", "Expired", "Invalid")
ID_TAG_MAX = 20


def tag_key(id_tag: str) -> str:
    """The case-insensitive lookup key of an idTag."""
    return id_tag.lower()


def check_id_tag(id_tag: object, what: str = "idTag") -> str:
    """Return ``id_tag`` if it is a CiString20; raise ValueError otherwise."""
    if not isinstance(id_tag, str) or not 0 < len(id_tag) <= ID_TAG_MAX:
        raise ValueError(f"{what} must be 1 to {ID_TAG_MAX} characters")
    return id_tag


class TagsMixin(StoreBase):
    """The central system's authorization list."""

    def upsert_tag(
        self,
        id_tag: str,
        *,
        status: str = "Accepted",
        expiry: str | None = None,
        parent: str | None = None,
        now: datetime | None = None,
    ) -> Row:
        """Create or replace a tag; returns the stored row.

        Raises ValueError when id_tag/parent is not a CiString20, status is
        not one of Accepted/Blocked/Expired/Invalid or expiry is not ISO 8601.
        The expiry is stored normalised (UTC, ms, Z).
        """
        check_id_tag(id_tag)
        if parent is not None:
            check_id_tag(parent, "parentIdTag")
        if status not in TAG_STATUSES:
            raise ValueError(f"status must be one of {TAG_STATUSES}")
        expiry_iso = iso(parse_time(expiry)) if expiry is not None else None
        self.conn.execute(
            "INSERT INTO tags (id_key, id_tag, status, expiry, parent, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(id_key) DO UPDATE SET "
            "id_tag = excluded.id_tag, status = excluded.status, expiry = excluded.expiry, "
            "parent = excluded.parent, updated_at = excluded.updated_at",
            [tag_key(id_tag), id_tag, status, expiry_iso, parent,
             iso(now or datetime.now(timezone.utc))],
        )
        tag = self.get_tag(id_tag)
        assert tag is not None
        return tag

    def get_tag(self, id_tag: str) -> Row | None:
        """The tag matching ``id_tag`` case-insensitively, or None."""
        return self.row(
            "SELECT id_tag, status, expiry, parent, updated_at FROM tags WHERE id_key = ?",
            [tag_key(id_tag)],
        )

    def list_tags(self) -> list[Row]:
        """Every tag, sorted by key."""
        return self.rows(
            "SELECT id_tag, status, expiry, parent, updated_at FROM tags ORDER BY id_key"
        )

    def remove_tag(self, id_tag: str) -> bool:
        """Delete the tag; False when it was unknown."""
        cursor = self.conn.execute("DELETE FROM tags WHERE id_key = ?", [tag_key(id_tag)])
        return cursor.rowcount > 0
