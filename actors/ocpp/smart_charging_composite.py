"""The composite schedule of a connector, computed by the central system itself; no I/O.

Rules, at an instant ``t`` (OCPP 1.6 §3.13.2-§3.13.4, §5.16.4):

- a profile applies at ``t`` when ``validFrom <= t < validTo`` (each when given) and
  its schedule covers ``t``: ``0 <= t - origin < duration`` (no duration = forever),
  where the period in force is the last one with ``startPeriod <= t - origin``;
- origin: Absolute -> startSchedule; Recurring (Daily = 86400 s, Weekly = 604800 s)
  -> the last recurrence start at or before ``t``, counted from startSchedule (nothing
  before startSchedule); Relative -> the transaction start when given, else the start
  of the composite (``limit_at``: the instant asked about). An Absolute profile
  without startSchedule is valid in 1.6 (§7.13: startSchedule is optional) and is then
  relative to the start of charging, the transaction start, exactly like a Relative
  one; a Recurring profile without startSchedule (``validate`` refuses it) starts at
  validFrom, else like a Relative one;
- within a purpose the highest stackLevel that applies wins (§3.13.2: "the profile with
  the highest stackLevel ... has precedence"); once it no longer covers ``t`` the lower
  levels show through, so a top level without duration never falls back; equal levels:
  the lower limit wins;
- TxProfile (of ``transaction_id`` when given; one without transactionId counts as the
  connector's) overrides TxDefaultProfile; a TxDefaultProfile installed on the
  connector overrides one installed on connector 0 (errata 3.53);
- the result is capped by the ChargePointMaxProfile (connector 0): the minimum of the two
  (§3.13.1: "ChargePointMaxProfile ... limits the power of the Charge Point as a whole");
  on a tie, the connector's profile gives numberPhases;
- connector 0's composite is the ChargePointMaxProfile alone: our reading of "the
  expected total grid consumption" (errata 3.28) when per-connector use is unknown.

Units (errata 3.68/3.70: "A = per phase, W = total power"): W = A * voltage * phases
and A = W / (voltage * phases), with ``voltage`` 230 V by default and phases = the
period's numberPhases, 3 when absent. Limits are rounded *down* to 0.1 (schema
``multipleOf 0.1``), so a reported limit is never above the real one. The output
unit is ``unit``; when None, W if every relevant profile is in W, else A. Every output
period carries numberPhases (3 when the source period had none).

Shape: ``{"duration", "startSchedule", "chargingRateUnit", "chargingSchedulePeriod"}``
like GetCompositeSchedule.conf's chargingSchedule: piecewise constant, startPeriods
strictly ascending from 0, consecutive periods with the same limit and phases merged.
OCPP cannot say "no limit" inside a schedule; where no profile applies we do this:
with ``default_limit`` (e.g. the station's rated maximum, in the output unit) the gap
gets that limit; without it the schedule covers only the first stretch where some
limit applies: ``startSchedule`` moves to its beginning and ``duration`` ends with it
(beyond a schedule's duration OCPP claims nothing). Nothing applies at all -> the
period list is empty, duration 0 and startSchedule the requested start.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from typing import TYPE_CHECKING, Any

from storage.timefmt import iso, parse_time

if TYPE_CHECKING:
    from actors.ocpp.smart_charging import Installed

__all__ = ["composite_schedule", "limit_at"]

RECURRENCE = {"Daily": 86400, "Weekly": 7 * 86400}
_SECOND = timedelta(seconds=1)


@dataclass(frozen=True)
class _Profile:
    """An installed profile with its timestamps parsed once."""

    connector_id: int
    purpose: str
    kind: str
    level: int
    tx: int | None
    unit: str
    start: datetime | None
    valid_from: datetime | None
    valid_to: datetime | None
    duration: int | None
    recurrence: int | None
    periods: tuple[tuple[int, float, int], ...]  # (startPeriod, limit, phases), ascending


@dataclass(frozen=True)
class _Value:
    limit: float  # in the output unit, not rounded
    phases: int


def _parse(value: Any) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_time(value)
    except ValueError:
        return None


def _prepare(item: Installed) -> _Profile:
    p = item.profile
    sched = p["chargingSchedule"]
    periods = sorted(
        (int(q["startPeriod"]), float(q["limit"]), int(q.get("numberPhases", 3)))
        for q in sched["chargingSchedulePeriod"]
    )
    valid_from = _parse(p.get("validFrom"))
    start = _parse(sched.get("startSchedule"))
    if p["chargingProfileKind"] == "Recurring" and start is None:
        start = valid_from  # refused by validate; kept computable for a stored one
    return _Profile(
        connector_id=item.connector_id,
        purpose=p["chargingProfilePurpose"],
        kind=p["chargingProfileKind"],
        level=int(p["stackLevel"]),
        tx=p.get("transactionId"),
        unit=sched["chargingRateUnit"],
        start=start if p["chargingProfileKind"] != "Relative" else None,
        valid_from=valid_from,
        valid_to=_parse(p.get("validTo")),
        duration=sched.get("duration"),
        recurrence=RECURRENCE.get(p.get("recurrencyKind", ""))
        if p["chargingProfileKind"] == "Recurring"
        else None,
        periods=tuple(periods),
    )


def _origin(prof: _Profile, t: datetime, relative_start: datetime) -> datetime | None:
    origin = prof.start if prof.start is not None else relative_start
    if prof.recurrence is not None:
        if t < origin:
            return None
        cycles = (t - origin) // timedelta(seconds=prof.recurrence)
        return origin + cycles * timedelta(seconds=prof.recurrence)
    return origin


def _convert(limit: float, phases: int, unit: str, to: str, voltage: float) -> float:
    if unit == to:
        return limit
    if to == "W":
        return limit * voltage * phases
    return limit / (voltage * phases)


def _value_of(
    prof: _Profile, t: datetime, relative_start: datetime, unit: str, voltage: float
) -> _Value | None:
    if prof.valid_from is not None and t < prof.valid_from:
        return None
    if prof.valid_to is not None and t >= prof.valid_to:
        return None
    origin = _origin(prof, t, relative_start)
    if origin is None:
        return None
    offset = (t - origin).total_seconds()
    if offset < 0 or (prof.duration is not None and offset >= prof.duration):
        return None
    chosen = None
    for start_period, limit, phases in prof.periods:
        if start_period <= offset:
            chosen = (limit, phases)
    if chosen is None:
        return None
    return _Value(_convert(chosen[0], chosen[1], prof.unit, unit, voltage), chosen[1])


def _best(
    profiles: Sequence[_Profile], t: datetime, relative_start: datetime, unit: str, voltage: float
) -> _Value | None:
    best: tuple[int, float] | None = None
    value: _Value | None = None
    for prof in profiles:
        v = _value_of(prof, t, relative_start, unit, voltage)
        if v is not None and (best is None or (prof.level, -v.limit) > best):
            best, value = (prof.level, -v.limit), v
    return value


@dataclass(frozen=True)
class _Stack:
    """The profiles relevant to one connector, grouped by how they combine."""

    cp_max: tuple[_Profile, ...]
    tx: tuple[_Profile, ...]
    default_here: tuple[_Profile, ...]
    default_all: tuple[_Profile, ...]

    def all(self) -> tuple[_Profile, ...]:
        return self.cp_max + self.tx + self.default_here + self.default_all

    def value_at(
        self, t: datetime, relative_start: datetime, unit: str, voltage: float
    ) -> _Value | None:
        cap = _best(self.cp_max, t, relative_start, unit, voltage)
        own = (
            _best(self.tx, t, relative_start, unit, voltage)
            or _best(self.default_here, t, relative_start, unit, voltage)
            or _best(self.default_all, t, relative_start, unit, voltage)
        )
        if own is None or (cap is not None and cap.limit < own.limit):
            return cap
        return own


def _stack(installed: Sequence[Installed], connector_id: int, transaction_id: int | None) -> _Stack:
    profiles = [_prepare(item) for item in installed]
    cp_max = tuple(
        p for p in profiles if p.purpose == "ChargePointMaxProfile" and p.connector_id == 0
    )
    if connector_id == 0:
        return _Stack(cp_max, (), (), ())
    return _Stack(
        cp_max,
        tuple(
            p
            for p in profiles
            if p.purpose == "TxProfile"
            and p.connector_id == connector_id
            and (transaction_id is None or p.tx is None or p.tx == transaction_id)
        ),
        tuple(
            p
            for p in profiles
            if p.purpose == "TxDefaultProfile" and p.connector_id == connector_id
        ),
        tuple(p for p in profiles if p.purpose == "TxDefaultProfile" and p.connector_id == 0),
    )


def _round_down(limit: float) -> float:
    # Round to 6 places first so 10.999999999997 (float noise) is not floored to 10.9.
    return float(Decimal(repr(round(limit, 6))).quantize(Decimal("0.1"), rounding=ROUND_FLOOR))


def _check_args(unit: str | None, voltage: float) -> None:
    if unit not in (None, "A", "W"):
        raise ValueError(f"unit must be A or W, not {unit!r}")
    if not voltage > 0:
        raise ValueError(f"voltage must be positive, not {voltage!r}")


def limit_at(
    installed: Sequence[Installed],
    connector_id: int,
    at: datetime,
    *,
    unit: str = "A",
    transaction_start: datetime | None = None,
    transaction_id: int | None = None,
    voltage: float = 230.0,
) -> float | None:
    """The limit in force on ``connector_id`` at ``at`` in ``unit`` (rounded down to 0.1), None if none.

    Raises ``ValueError`` when ``unit`` is not A/W or ``voltage`` is not positive.
    """
    _check_args(unit, voltage)
    stack = _stack(installed, connector_id, transaction_id)
    relative_start = transaction_start if transaction_start is not None else at
    value = stack.value_at(at, relative_start, unit, voltage)
    return None if value is None else _round_down(value.limit)


def _offset_ceil(t: datetime, start: datetime) -> int:
    return -((start - t) // _SECOND)


def _changes(
    prof: _Profile, start: datetime, end: datetime, relative_start: datetime
) -> Iterator[datetime]:
    """Every instant in or around [start, end) at which ``prof``'s value may change."""
    yield from (t for t in (prof.valid_from, prof.valid_to) if t is not None)
    origin = prof.start if prof.start is not None else relative_start
    if prof.recurrence is None:
        origins = [origin]
    else:
        step = timedelta(seconds=prof.recurrence)
        first = max(0, (start - origin) // step)
        origins = [origin + k * step for k in range(first, max(first, (end - origin) // step) + 1)]
    for o in origins:
        yield from (o + timedelta(seconds=sp) for sp, _, _ in prof.periods)
        if prof.duration is not None:
            yield o + timedelta(seconds=prof.duration)


def composite_schedule(
    installed: Sequence[Installed],
    connector_id: int,
    *,
    start: datetime,
    duration: int,
    unit: str | None = None,
    transaction_start: datetime | None = None,
    transaction_id: int | None = None,
    voltage: float = 230.0,
    default_limit: float | None = None,
) -> dict[str, Any]:
    """The composite schedule of ``connector_id`` over ``[start, start + duration)``.

    See the module docstring for the rules. Raises ``ValueError`` when ``duration`` is
    negative, ``unit`` is not A/W/None or ``voltage`` is not positive.
    """
    _check_args(unit, voltage)
    if duration < 0:
        raise ValueError(f"duration must not be negative, not {duration}")
    stack = _stack(installed, connector_id, transaction_id)
    if unit is None:
        units = {p.unit for p in stack.all()}
        unit = "W" if units == {"W"} else "A"
    end = start + timedelta(seconds=duration)
    relative_start = transaction_start if transaction_start is not None else start
    offsets = {0} if duration > 0 else set()
    for prof in stack.all():
        for t in _changes(prof, start, end, relative_start):
            offset = _offset_ceil(t, start)
            if 0 < offset < duration:
                offsets.add(offset)
    # (offset, (limit, phases) or None), merged.
    steps: list[tuple[int, tuple[float, int] | None]] = []
    for offset in sorted(offsets):
        value = stack.value_at(start + timedelta(seconds=offset), relative_start, unit, voltage)
        key = (_round_down(value.limit), value.phases) if value is not None else None
        if key is None and default_limit is not None:
            key = (_round_down(default_limit), 3)
        if not steps or steps[-1][1] != key:
            steps.append((offset, key))
    first = next((i for i, (_, key) in enumerate(steps) if key is not None), None)
    if first is None:
        return {
            "duration": 0,
            "startSchedule": iso(start),
            "chargingRateUnit": unit,
            "chargingSchedulePeriod": [],
        }
    origin = steps[first][0]
    stop = next((offset for offset, key in steps[first:] if key is None), duration)
    periods = [
        {"startPeriod": offset - origin, "limit": key[0], "numberPhases": key[1]}
        for offset, key in steps[first:]
        if key is not None and offset < stop
    ]
    return {
        "duration": stop - origin,
        "startSchedule": iso(start + timedelta(seconds=origin)),
        "chargingRateUnit": unit,
        "chargingSchedulePeriod": periods,
    }
