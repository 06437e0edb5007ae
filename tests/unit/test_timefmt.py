"""storage.timefmt: the one format every stored and sent timestamp has."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from storage.timefmt import iso, parse_time


def _by_fields(dt: datetime) -> str:
    """The format spelled out field by field (what iso() computed before it used isoformat)."""
    if dt.tzinfo is not None:
        dt = dt.astimezone(timezone.utc)
    return (f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T"
            f"{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}.{dt.microsecond // 1000:03d}Z")


offsets = st.one_of(st.none(), st.just(timezone.utc),
                    st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m))))


@given(st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 30)), offsets)
def test_iso_is_utc_with_milliseconds_truncated_and_a_z(naive, tz):
    dt = naive if tz is None else naive.replace(tzinfo=tz)

    assert iso(dt) == _by_fields(dt)


def test_iso_examples_and_round_trip():
    assert iso(datetime(2026, 1, 2, 3, 4, 5, 999999, tzinfo=timezone.utc)) == "2026-01-02T03:04:05.999Z"
    assert iso(datetime(5, 1, 1)) == "0005-01-01T00:00:00.000Z"
    assert iso(datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=-1)))) == "2026-01-01T01:00:00.000Z"
    assert parse_time(iso(datetime(2026, 6, 1, 12, 0, 0, 123000, tzinfo=timezone.utc))) == datetime(
        2026, 6, 1, 12, 0, 0, 123000, tzinfo=timezone.utc)
