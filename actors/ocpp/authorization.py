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
