"""idTagInfo for a tag: pure, no I/O.

# OCPP 1.6 §7.27 IdTagInfo: status required; expiryDate and parentIdTag optional.
# OCPP 1.6 errata 3.73/3.74: IdToken is a case-insensitive CiString20 (the
# store looks tags up case-insensitively; nothing here compares idTags).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from storage.timefmt import iso, parse_time

IdTagInfo = dict[str, Any]

# Why an idTag was answered as it was (the authorization log, ``ctl explain tag``).
REASONS = ("accepted", "unknown", "blocked", "expired", "invalid", "parent blocked", "concurrent")
_STATUS_REASON = {"Accepted": "accepted", "Blocked": "blocked", "Expired": "expired", "Invalid": "invalid",
                  "ConcurrentTx": "concurrent"}


def id_tag_info(tag: dict[str, Any] | None, now: datetime) -> IdTagInfo:
    """The idTagInfo the central system answers for ``tag`` (a tags row) at ``now``.

    Unknown tag -> Invalid. Blocked/Expired/Invalid are answered as stored.
    Accepted with an expiry at or before ``now`` -> Expired. ``parentIdTag``
    and ``expiryDate`` (UTC, ms, Z) are included when the tag has them.
    """
    if tag is None:
        return {"status": "Invalid"}
    status = tag["status"]
    expiry = parse_time(tag["expiry"]) if tag.get("expiry") else None
    if status == "Accepted" and expiry is not None and expiry <= now:
        status = "Expired"
    info: IdTagInfo = {"status": status}
    if expiry is not None:
        info["expiryDate"] = iso(expiry)
    if tag.get("parent"):
        info["parentIdTag"] = tag["parent"]
    return info


def decide(tag: dict[str, Any] | None, now: datetime, parent: dict[str, Any] | None = None) -> tuple[IdTagInfo, str]:
    """``id_tag_info`` and the reason for it (one of ``REASONS``).

    ``parent``: the tags row of ``tag``'s parentIdTag, when there is one. An
    Accepted tag whose parent (its group) is Blocked is answered Blocked,
    reason "parent blocked": blocking a group blocks its members.
    """
    if tag is None:
        return id_tag_info(tag, now), "unknown"
    info = id_tag_info(tag, now)
    if info["status"] == "Accepted" and parent is not None and parent.get("status") == "Blocked":
        return {**info, "status": "Blocked"}, "parent blocked"
    return info, status_reason(info["status"])


def status_reason(status: str) -> str:
    """The reason a status stands for when nothing more is known (a local-list entry, ConcurrentTx)."""
    return _STATUS_REASON.get(status, status.lower())
