"""The composite schedule the central system computes itself (actors/ocpp/smart_charging_composite.py):
worked examples computed by hand, then Hypothesis properties over random stacks."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.ocpp.smart_charging import (
    Installed,
    StationLimits,
    composite_schedule,
    install,
    limit_at,
    validate,
)
from storage import iso

DAY = datetime(2026, 11, 25, tzinfo=timezone.utc)


def at(hh: int, mm: int = 0, day: int = 0) -> datetime:
    return DAY + timedelta(days=day, hours=hh, minutes=mm)


def prof(
    pid: int,
    *,
    purpose: str = "TxDefaultProfile",
    level: int = 0,
    kind: str = "Absolute",
    start: datetime | None = None,
    duration: int | None = None,
    unit: str = "A",
    periods: list[tuple[int, float] | tuple[int, float, int]],
    **extra: Any,
) -> dict[str, Any]:
    schedule: dict[str, Any] = {
        "chargingRateUnit": unit,
        "chargingSchedulePeriod": [
            {"startPeriod": p[0], "limit": p[1], **({"numberPhases": p[2]} if len(p) > 2 else {})}
            for p in periods
        ],
    }
    if start is not None:
        schedule["startSchedule"] = iso(start)
    if duration is not None:
        schedule["duration"] = duration
    return {
        "chargingProfileId": pid,
        "stackLevel": level,
        "chargingProfilePurpose": purpose,
        "chargingProfileKind": kind,
        "chargingSchedule": schedule,
        **extra,
    }


def periods(schedule: dict[str, Any]) -> list[tuple[int, float]]:
    return [(p["startPeriod"], p["limit"]) for p in schedule["chargingSchedulePeriod"]]


# -- worked examples -----------------------------------------------------------------------


def test_three_stacked_levels_with_gaps_show_through_in_order() -> None:
    # Level 0: all day 32 A; level 1: 10:00 for 2 h, 16 A; level 2: 10:30 for 30 min, 8 A.
    # Composite 09:00-13:00 (14400 s):
    #   09:00 (0)      only level 0          -> 32
    #   10:00 (3600)   level 1 starts        -> 16
    #   10:30 (5400)   level 2 starts        -> 8
    #   11:00 (7200)   level 2 ends (30 min) -> 16
    #   12:00 (10800)  level 1 ends (2 h)    -> 32
    installed = [
        Installed(1, prof(1, level=0, start=at(0), duration=86400, periods=[(0, 32.0)])),
        Installed(1, prof(2, level=1, start=at(10), duration=7200, periods=[(0, 16.0)])),
        Installed(1, prof(3, level=2, start=at(10, 30), duration=1800, periods=[(0, 8.0)])),
    ]
    schedule = composite_schedule(installed, 1, start=at(9), duration=4 * 3600)
    assert schedule["startSchedule"] == iso(at(9))
    assert schedule["duration"] == 14400
    assert schedule["chargingRateUnit"] == "A"
    assert periods(schedule) == [(0, 32.0), (3600, 16.0), (5400, 8.0), (7200, 16.0), (10800, 32.0)]
    assert all(p["numberPhases"] == 3 for p in schedule["chargingSchedulePeriod"])


def test_a_top_level_without_duration_never_falls_back() -> None:
    # Level 1 from 10:00 without duration covers everything after 10:00.
    installed = [
        Installed(1, prof(1, level=0, start=at(0), periods=[(0, 32.0)])),
        Installed(1, prof(2, level=1, start=at(10), periods=[(0, 16.0)])),
    ]
    schedule = composite_schedule(installed, 1, start=at(9), duration=6 * 3600)
    assert periods(schedule) == [(0, 32.0), (3600, 16.0)]


def test_a_higher_level_outside_its_validity_lets_the_lower_one_show_through() -> None:
    # Level 1 has no duration but validTo 11:00: 09:00-10:00 level 0 (valid from 10:00 only
    # for level 1), 10:00-11:00 level 1, then level 0 again.
    installed = [
        Installed(1, prof(1, level=0, start=at(0), periods=[(0, 32.0)])),
        Installed(
            1,
            prof(
                2,
                level=1,
                start=at(9),
                periods=[(0, 16.0)],
                validFrom=iso(at(10)),
                validTo=iso(at(11)),
            ),
        ),
    ]
    schedule = composite_schedule(installed, 1, start=at(9), duration=3 * 3600)
    assert periods(schedule) == [(0, 32.0), (3600, 16.0), (7200, 32.0)]


def test_a_daily_recurring_profile_crossing_midnight_unrolls() -> None:
    # Daily from 22:00: offset 0 -> 10 A, offset 4 h -> 32 A (until the next 22:00).
    # Composite from 23:00 for 4 h: 23:00 is offset 1 h -> 10 A; 02:00 is offset 4 h -> 32 A
    # at composite offset 3 h = 10800 s.
    daily = prof(
        1,
        kind="Recurring",
        recurrencyKind="Daily",
        start=at(22),
        periods=[(0, 10.0), (14400, 32.0)],
    )
    installed = [Installed(1, daily)]
    schedule = composite_schedule(installed, 1, start=at(23), duration=4 * 3600)
    assert periods(schedule) == [(0, 10.0), (10800, 32.0)]
    # The next evening: 21:00 is offset 23 h -> 32 A, 22:00 a new recurrence -> 10 A.
    schedule = composite_schedule(installed, 1, start=at(21, day=1), duration=2 * 3600)
    assert periods(schedule) == [(0, 32.0), (3600, 10.0)]
    assert limit_at(installed, 1, at(1, day=5)) == 10.0
    assert limit_at(installed, 1, at(3, day=5)) == 32.0
    # Nothing before the first startSchedule.
    assert limit_at(installed, 1, at(21)) is None


def test_a_weekly_recurring_profile_repeats_after_seven_days() -> None:
    weekly = prof(
        1, kind="Recurring", recurrencyKind="Weekly", start=at(8), duration=3600, periods=[(0, 6.0)]
    )
    installed = [Installed(1, weekly)]
    assert limit_at(installed, 1, at(8, 30, day=7)) == 6.0
    assert limit_at(installed, 1, at(8, 30, day=1)) is None


def test_a_relative_tx_profile_started_mid_period_is_offset_by_the_transaction_start() -> None:
    # Transaction started 10:00; TxProfile Relative: 0 -> 10 A, 900 s -> 20 A, 1800 s -> 6 A.
    # Composite from 10:10 (600 s into the profile) for 1 h:
    #   10:10 (0)    profile offset 600  -> 10
    #   10:15 (300)  profile offset 900  -> 20
    #   10:30 (1200) profile offset 1800 -> 6 (to the end)
    # The TxDefaultProfile at a higher stack level does not matter: TxProfile overrides it.
    tx = prof(
        1,
        purpose="TxProfile",
        kind="Relative",
        periods=[(0, 10.0), (900, 20.0), (1800, 6.0)],
        transactionId=7,
    )
    default = prof(2, level=5, start=at(0), periods=[(0, 4.0)])
    installed = [Installed(1, tx), Installed(1, default)]
    schedule = composite_schedule(
        installed, 1, start=at(10, 10), duration=3600, transaction_start=at(10), transaction_id=7
    )
    assert periods(schedule) == [(0, 10.0), (300, 20.0), (1200, 6.0)]
    # Another transaction's TxProfile does not apply: the default shows.
    other = composite_schedule(
        installed, 1, start=at(10, 10), duration=3600, transaction_start=at(10), transaction_id=8
    )
    assert periods(other) == [(0, 4.0)]


def test_a_relative_profile_without_transaction_starts_with_the_composite() -> None:
    rel = prof(1, kind="Relative", periods=[(0, 10.0), (600, 20.0)])
    schedule = composite_schedule([Installed(1, rel)], 1, start=at(10, 10), duration=3600)
    assert periods(schedule) == [(0, 10.0), (600, 20.0)]


def test_an_absolute_profile_without_start_schedule_starts_with_the_transaction() -> None:
    # Transaction started 14:00. TxDefaultProfile Absolute without startSchedule, 2 h long:
    # 0 -> 16 A, 1800 s -> 24 A, 3600 s -> 8 A; under it (level 0) 32 A all day.
    # Its origin is the start of charging, 14:00 (not validFrom 09:00, not the composite's start).
    # Composite from 14:20 for 2 h (7200 s):
    #   14:20 (0)     offset 1200 -> 16
    #   14:30 (600)   offset 1800 -> 24
    #   15:00 (2400)  offset 3600 -> 8
    #   16:00 (6000)  the 2 h end -> 32 (level 0 shows through) to 16:20
    floating = prof(1, level=1, duration=7200, periods=[(0, 16.0), (1800, 24.0), (3600, 8.0)],
                    validFrom=iso(at(9)))
    base = prof(2, level=0, start=at(0), periods=[(0, 32.0)])
    validate(1, floating, installed=[], limits=StationLimits(), active_transaction=None, now=at(8))  # raises if refused
    installed = [Installed(1, floating), Installed(1, base)]
    schedule = composite_schedule(installed, 1, start=at(14, 20), duration=7200, transaction_start=at(14),
                                  transaction_id=7)
    assert periods(schedule) == [(0, 16.0), (600, 24.0), (2400, 8.0), (6000, 32.0)]
    assert limit_at(installed, 1, at(15, 30), transaction_start=at(14), transaction_id=7) == 8.0
    # Without a transaction it starts with the composite, like a Relative profile.
    idle = composite_schedule(installed, 1, start=at(14, 20), duration=7200)
    assert periods(idle) == [(0, 16.0), (1800, 24.0), (3600, 8.0)]


def test_the_charge_point_max_profile_caps_the_default() -> None:
    # TxDefault 32 A all day; ChargePointMaxProfile 20 A from 12:00 for 2 h.
    # Composite 11:00 for 4 h: 32 / 20 from 3600 / 32 again from 10800.
    installed = [
        Installed(0, prof(1, start=at(0), periods=[(0, 32.0)])),
        Installed(
            0,
            prof(
                2, purpose="ChargePointMaxProfile", start=at(12), duration=7200, periods=[(0, 20.0)]
            ),
        ),
    ]
    schedule = composite_schedule(installed, 1, start=at(11), duration=4 * 3600)
    assert periods(schedule) == [(0, 32.0), (3600, 20.0), (10800, 32.0)]


def test_a_cap_in_watts_caps_a_default_in_amperes() -> None:
    # 13800 W on 3 phases at 230 V = 13800 / 690 = 20 A.
    installed = [
        Installed(0, prof(1, start=at(0), periods=[(0, 32.0)])),
        Installed(
            0,
            prof(2, purpose="ChargePointMaxProfile", unit="W", start=at(0), periods=[(0, 13800.0)]),
        ),
    ]
    assert periods(composite_schedule(installed, 1, start=at(11), duration=60, unit="A")) == [
        (0, 20.0)
    ]


def test_a_cap_above_the_default_changes_nothing() -> None:
    installed = [
        Installed(0, prof(1, start=at(0), periods=[(0, 16.0)])),
        Installed(0, prof(2, purpose="ChargePointMaxProfile", start=at(0), periods=[(0, 40.0)])),
    ]
    assert periods(composite_schedule(installed, 1, start=at(11), duration=60)) == [(0, 16.0)]


def test_connector_0_shows_only_the_charge_point_max_profile() -> None:
    installed = [
        Installed(0, prof(1, start=at(0), periods=[(0, 16.0)])),
        Installed(0, prof(2, purpose="ChargePointMaxProfile", start=at(0), periods=[(0, 40.0)])),
    ]
    assert periods(composite_schedule(installed, 0, start=at(11), duration=60)) == [(0, 40.0)]


def test_a_connector_default_overrides_the_charge_point_wide_default_whatever_its_level() -> None:
    installed = [
        Installed(0, prof(1, level=5, start=at(0), periods=[(0, 16.0)])),
        Installed(2, prof(2, level=0, start=at(10), duration=3600, periods=[(0, 25.0)])),
    ]
    schedule = composite_schedule(installed, 2, start=at(9), duration=3 * 3600)
    assert periods(schedule) == [(0, 16.0), (3600, 25.0), (7200, 16.0)]
    assert periods(composite_schedule(installed, 1, start=at(9), duration=3 * 3600)) == [(0, 16.0)]


def test_amperes_convert_to_watts_with_230_volts_and_the_periods_phases() -> None:
    # 3 phases: 16 A * 230 V * 3 = 11040 W; 1 phase: 16 A * 230 V = 3680 W.
    three = [Installed(1, prof(1, start=at(0), periods=[(0, 16.0)]))]
    one = [Installed(1, prof(1, start=at(0), periods=[(0, 16.0, 1)]))]
    assert periods(composite_schedule(three, 1, start=at(9), duration=60, unit="W")) == [
        (0, 11040.0)
    ]
    schedule = composite_schedule(one, 1, start=at(9), duration=60, unit="W")
    assert schedule["chargingSchedulePeriod"] == [
        {"startPeriod": 0, "limit": 3680.0, "numberPhases": 1}
    ]
    assert limit_at(one, 1, at(9), unit="W", voltage=240.0) == 3840.0


def test_watts_convert_to_amperes_and_round_down_to_a_tenth() -> None:
    # 11040 W / (230 V * 3) = 16 A; 7360 W on 1 phase = 32 A; 6000 W / 690 = 8.695.. -> 8.6 A.
    def single(limit: float, phases: int = 3) -> list[Installed]:
        return [Installed(1, prof(1, unit="W", start=at(0), periods=[(0, limit, phases)]))]

    assert limit_at(single(11040.0), 1, at(9), unit="A") == 16.0
    assert limit_at(single(7360.0, 1), 1, at(9), unit="A") == 32.0
    assert limit_at(single(6000.0), 1, at(9), unit="A") == 8.6
    # With no unit asked for, all-W profiles give a W schedule.
    assert (
        composite_schedule(single(6000.0), 1, start=at(9), duration=60)["chargingRateUnit"] == "W"
    )


def test_a_leading_gap_moves_the_start_and_a_trailing_gap_shortens_the_duration() -> None:
    installed = [Installed(1, prof(1, start=at(10), duration=3600, periods=[(0, 16.0)]))]
    schedule = composite_schedule(installed, 1, start=at(9), duration=4 * 3600)
    assert schedule["startSchedule"] == iso(at(10))
    assert schedule["duration"] == 3600
    assert periods(schedule) == [(0, 16.0)]


def test_a_default_limit_fills_the_gaps() -> None:
    installed = [Installed(1, prof(1, start=at(10), duration=3600, periods=[(0, 16.0)]))]
    schedule = composite_schedule(installed, 1, start=at(9), duration=4 * 3600, default_limit=32.0)
    assert (schedule["startSchedule"], schedule["duration"]) == (iso(at(9)), 14400)
    assert periods(schedule) == [(0, 32.0), (3600, 16.0), (7200, 32.0)]


def test_nothing_applicable_gives_an_empty_schedule() -> None:
    schedule = composite_schedule([], 1, start=at(9), duration=3600)
    assert schedule == {
        "duration": 0,
        "startSchedule": iso(at(9)),
        "chargingRateUnit": "A",
        "chargingSchedulePeriod": [],
    }
    assert limit_at([], 1, at(9)) is None


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError):
        composite_schedule([], 1, start=at(9), duration=-1)
    with pytest.raises(ValueError):
        composite_schedule([], 1, start=at(9), duration=60, unit="kW")
    with pytest.raises(ValueError):
        limit_at([], 1, at(9), voltage=0)


# -- properties over random stacks ------------------------------------------------------------

WINDOW_START = at(6)
WINDOW = 12 * 3600


@st.composite
def random_profile(draw: st.DrawFn, pid: int) -> tuple[int, dict[str, Any]]:
    purpose = draw(st.sampled_from(["ChargePointMaxProfile", "TxDefaultProfile", "TxProfile"]))
    connector = (
        0
        if purpose == "ChargePointMaxProfile"
        else draw(st.sampled_from([0, 1] if purpose != "TxProfile" else [1]))
    )
    kind = draw(st.sampled_from(["Absolute", "Recurring", "Relative"]))
    starts = sorted(draw(st.sets(st.integers(1, 48), max_size=4)))
    period_list: list[tuple[int, float] | tuple[int, float, int]] = [
        (s, draw(st.integers(0, 640)) / 10, draw(st.integers(1, 3)))
        for s in [0, *(s * 900 for s in starts)]
    ]
    extra: dict[str, Any] = {}
    if kind == "Recurring":
        extra["recurrencyKind"] = draw(st.sampled_from(["Daily", "Weekly"]))
    if purpose == "TxProfile":
        extra["transactionId"] = 7
    if draw(st.booleans()):
        lo = draw(st.integers(0, 24 * 4))
        hi = draw(st.integers(lo + 1, 24 * 4 + 1))
        extra["validFrom"] = iso(at(0) + timedelta(minutes=15 * lo))
        extra["validTo"] = iso(at(0) + timedelta(minutes=15 * hi, seconds=7))
    start = (
        None if kind == "Relative" else at(0) + timedelta(seconds=draw(st.integers(0, 20 * 3600)))
    )
    p = prof(
        pid,
        purpose=purpose,
        level=draw(st.integers(0, 3)),
        kind=kind,
        start=start,
        duration=draw(st.none() | st.integers(1, 10 * 3600)),
        unit=draw(st.sampled_from(["A", "W"])),
        periods=period_list,
        **extra,
    )
    return connector, p


@st.composite
def random_stack(draw: st.DrawFn) -> list[Installed]:
    installed: list[Installed] = []
    for pid in range(1, draw(st.integers(1, 6)) + 1):
        connector, p = draw(random_profile(pid))
        validate(
            connector,
            p,
            installed=installed,
            limits=StationLimits(),
            active_transaction=7,
            now=at(0),
        )
        installed = install(installed, connector, p)
    return installed


def limit_in(schedule: dict[str, Any], t: datetime) -> float | None:
    begin = datetime.fromisoformat(schedule["startSchedule"].replace("Z", "+00:00"))
    offset = (t - begin).total_seconds()
    if not 0 <= offset < schedule["duration"]:
        return None
    found = None
    for p in schedule["chargingSchedulePeriod"]:
        if p["startPeriod"] <= offset:
            found = p["limit"]
    return found


@settings(max_examples=150, deadline=None)
@given(
    random_stack(),
    st.sampled_from(["A", "W"]),
    st.lists(st.integers(0, WINDOW - 1), min_size=1, max_size=20),
)
def test_the_composite_never_exceeds_the_charge_point_max_profile(
    installed: list[Installed], unit: str, samples: list[int]
) -> None:
    tx_start = at(7, 30)
    schedule = composite_schedule(
        installed,
        1,
        start=WINDOW_START,
        duration=WINDOW,
        unit=unit,
        transaction_start=tx_start,
        transaction_id=7,
    )
    cp_max = [
        i for i in installed if i.profile["chargingProfilePurpose"] == "ChargePointMaxProfile"
    ]
    for s in samples:
        t = WINDOW_START + timedelta(seconds=s)
        got = limit_in(schedule, t)
        cap = limit_at(cp_max, 1, t, unit=unit, transaction_start=tx_start, transaction_id=7)
        if got is not None and cap is not None:
            assert got <= cap
        # and the composite agrees with the instant-by-instant answer where it claims anything
        if got is not None:
            assert got == limit_at(
                installed, 1, t, unit=unit, transaction_start=tx_start, transaction_id=7
            )


@settings(max_examples=150, deadline=None)
@given(random_stack(), st.integers(0, 1), st.integers(0, WINDOW))
def test_the_composite_is_piecewise_constant_ascending_from_0_within_its_duration(
    installed: list[Installed], connector_id: int, duration: int
) -> None:
    schedule = composite_schedule(
        installed,
        connector_id,
        start=WINDOW_START,
        duration=duration,
        transaction_start=at(7),
        transaction_id=7,
    )
    found = schedule["chargingSchedulePeriod"]
    assert 0 <= schedule["duration"] <= duration
    if not found:
        return
    starts = [p["startPeriod"] for p in found]
    assert starts[0] == 0
    assert all(b > a for a, b in zip(starts, starts[1:], strict=False))
    assert all(0 <= s < schedule["duration"] for s in starts)
    keys = [(p["limit"], p["numberPhases"]) for p in found]
    assert all(a != b for a, b in zip(keys, keys[1:], strict=False))
    assert all(round(p["limit"], 1) == p["limit"] for p in found)
