"""Timestamps as stored and sent: UTC ISO 8601 with milliseconds and ``Z``.

``iso(dt)`` formats, ``parse_time(s)`` parses. Every timestamp column in the
database and every ``currentTime`` the central system sends goes through
``iso``, so that string comparison of stored values is instant comparison.
"""

from __future__ import annotations

from datetime import datetime, timezone

__all__ = ["iso", "normalize", "parse_time"]


def iso(dt: datetime) -> str:
    """Format ``dt`` as ``2026-11-25T10:00:00.123Z``.

    An aware datetime is converted to UTC; a naive one is taken to be UTC.
    Sub-millisecond digits are truncated.
    """
    if dt.tzinfo is not None and dt.tzinfo is not timezone.utc:
        dt = dt.astimezone(timezone.utc)
    # isoformat truncates to milliseconds as well, in C: a third of the f-string's cost,
    # paid for every stored timestamp. [:23] drops the "+00:00" of an aware datetime.
    return dt.isoformat(timespec="milliseconds")[:23] + "Z"


def parse_time(s: str) -> datetime:
    """Parse an ISO 8601 timestamp into an aware UTC datetime.

    # OCPP 1.6 errata 3.10: receivers must handle fractional seconds and
    # time-zone offsets.
    Accepts ``Z`` and ``±hh:mm`` offsets and any number of fractional digits
    (beyond microseconds they are truncated). A timestamp without an offset is
    taken to be UTC. Raises ``ValueError`` on anything that is not ISO 8601,
    and on a timestamp whose UTC time falls outside years 1 to 9999.
    """
    if not isinstance(s, str):
        raise ValueError(f"not an ISO 8601 timestamp: {s!r}")
    try:
        dt = datetime.fromisoformat(s.strip())
    except ValueError:
        raise ValueError(f"not an ISO 8601 timestamp: {s!r}") from None
    if dt.tzinfo is None:
        return dt.replace(tzinfo=timezone.utc)
    try:
        return dt.astimezone(timezone.utc)
    except OverflowError:  # 9999-12-31T23:59:59-01:00 is in year 10000 in UTC
        raise ValueError(f"timestamp out of range in UTC: {s!r}") from None


def normalize(s: str | None) -> str | None:
    """Return ``iso(parse_time(s))``, or ``s`` unchanged when it does not parse.

    Used for timestamps a charge point sends: stored canonically when valid,
    kept as received (nothing lost) when not.
    """
    if s is None:
        return None
    try:
        return iso(parse_time(s))
    except ValueError:
        return s
