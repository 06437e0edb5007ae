"""Smart Charging (pure): validation of a profile before it is sent, installation with
the replacement rule, ClearChargingProfile semantics, transaction end and expiry."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.ocpp.smart_charging import (
    Installed,
    ProfileError,
    StationLimits,
    clear,
    drop_transaction,
    expired,
    install,
    validate,
)
from storage import iso

NOW = datetime(2026, 11, 25, 10, 0, 0, tzinfo=timezone.utc)
NO_LIMITS = StationLimits()


def profile(
    pid: int = 1,
    *,
    purpose: str = "TxDefaultProfile",
    level: int = 0,
    kind: str = "Absolute",
    unit: str = "A",
    periods: list[dict[str, Any]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A valid csChargingProfiles dict; ``extra`` adds or (value None) removes fields."""
    schedule: dict[str, Any] = {
        "chargingRateUnit": unit,
        "chargingSchedulePeriod": periods
        if periods is not None
        else [{"startPeriod": 0, "limit": 16.0}],
    }
    if kind != "Relative":
        schedule["startSchedule"] = iso(NOW)
    p: dict[str, Any] = {
        "chargingProfileId": pid,
        "stackLevel": level,
        "chargingProfilePurpose": purpose,
        "chargingProfileKind": kind,
        "chargingSchedule": schedule,
    }
    if kind == "Recurring":
        p["recurrencyKind"] = "Daily"
    for key, value in extra.items():
        target = schedule if key in ("startSchedule", "duration", "minChargingRate") else p
        if value is None:
            target.pop(key, None)
        else:
            target[key] = value
    return p


def refusal(
    connector_id: int,
    p: dict[str, Any],
    *,
    installed: list[Installed] | None = None,
    limits: StationLimits = NO_LIMITS,
    active_transaction: int | None = None,
    remote_start: bool = False,
) -> str:
    with pytest.raises(ProfileError) as caught:
        validate(
            connector_id,
            p,
            installed=installed or [],
            limits=limits,
            active_transaction=active_transaction,
            now=NOW,
            remote_start=remote_start,
        )
    assert str(caught.value) == f"{caught.value.rule}: {caught.value.message}"
    return caught.value.rule


def accepts(connector_id: int, p: dict[str, Any], **kw: Any) -> None:
    kw.setdefault("installed", [])
    kw.setdefault("limits", NO_LIMITS)
    kw.setdefault("active_transaction", None)
    validate(connector_id, p, now=NOW, **kw)


# -- validation: what passes ---------------------------------------------------------


def test_an_absolute_tx_default_profile_like_tc_056_passes() -> None:
    accepts(
        1,
        profile(
            validFrom=iso(NOW),
            validTo=iso(NOW + timedelta(days=1)),
            duration=3600,
            periods=[{"startPeriod": 0, "limit": 6.0, "numberPhases": 3}],
        ),
    )


def test_a_tx_profile_with_the_running_transaction_id_passes() -> None:
    accepts(1, profile(purpose="TxProfile", kind="Relative", transactionId=7), active_transaction=7)


def test_a_remote_start_profile_without_transaction_id_passes_without_a_running_transaction() -> (
    None
):
    accepts(1, profile(purpose="TxProfile", kind="Relative"), remote_start=True)


def test_a_charge_point_max_profile_on_connector_0_passes() -> None:
    accepts(0, profile(purpose="ChargePointMaxProfile"))


def test_a_daily_recurring_profile_passes() -> None:
    accepts(0, profile(kind="Recurring"))


def test_a_limit_with_one_decimal_passes() -> None:
    accepts(1, profile(periods=[{"startPeriod": 0, "limit": 21.4}]))


def test_either_unit_passes_when_the_station_allows_current_and_power() -> None:
    for unit in ("A", "W"):
        accepts(1, profile(unit=unit), limits=StationLimits(allowed_units="Current,Power"))


def test_a_replacement_does_not_count_against_max_installed() -> None:
    installed = [Installed(1, profile(1)), Installed(1, profile(2, level=1))]
    accepts(1, profile(1, level=0), installed=installed, limits=StationLimits(max_installed=2))


# -- validation: each rule refuses with its own name ----------------------------------------


def test_a_profile_without_a_schedule_is_refused_as_shape() -> None:
    assert refusal(1, profile(chargingSchedule=None)) == "shape"


def test_an_unknown_purpose_is_refused_as_shape() -> None:
    assert refusal(1, profile(purpose="TxFancyProfile")) == "shape"


def test_a_negative_connector_is_refused() -> None:
    assert refusal(-1, profile()) == "connector"


def test_a_charge_point_max_profile_on_a_connector_is_refused() -> None:
    assert refusal(1, profile(purpose="ChargePointMaxProfile")) == "purpose-connector"


def test_a_tx_profile_on_connector_0_is_refused() -> None:
    p = profile(purpose="TxProfile", kind="Relative", transactionId=7)
    assert refusal(0, p, active_transaction=7) == "purpose-connector"


def test_a_tx_profile_without_a_running_transaction_is_refused() -> None:
    p = profile(purpose="TxProfile", kind="Relative", transactionId=7)
    assert refusal(1, p) == "tx-without-transaction"


def test_a_tx_profile_without_transaction_id_is_refused() -> None:
    p = profile(purpose="TxProfile", kind="Relative")
    assert refusal(1, p, active_transaction=7) == "tx-transaction-id"


def test_a_tx_profile_for_another_transaction_is_refused() -> None:
    p = profile(purpose="TxProfile", kind="Relative", transactionId=6)
    assert refusal(1, p, active_transaction=7) == "tx-transaction-id"


def test_a_transaction_id_on_a_tx_default_profile_is_refused() -> None:
    assert refusal(1, profile(transactionId=7), active_transaction=7) == "transaction-id-purpose"


def test_a_remote_start_profile_that_is_not_a_tx_profile_is_refused() -> None:
    assert refusal(1, profile(), remote_start=True) == "remote-start-purpose"


def test_a_remote_start_profile_with_a_transaction_id_is_refused() -> None:
    p = profile(purpose="TxProfile", kind="Relative", transactionId=7)
    assert refusal(1, p, remote_start=True) == "remote-start-transaction"


def test_recurrency_kind_on_an_absolute_profile_is_refused() -> None:
    assert refusal(1, profile(recurrencyKind="Daily")) == "recurrency-kind"


def test_a_recurring_profile_without_recurrency_kind_is_refused() -> None:
    assert refusal(1, profile(kind="Recurring", recurrencyKind=None)) == "recurrency-kind"


def test_an_absolute_profile_without_start_schedule_is_accepted() -> None:
    # OCPP 1.6 §7.13: startSchedule is optional; absent, the schedule starts with charging.
    validate(1, profile(startSchedule=None), installed=[], limits=NO_LIMITS, active_transaction=None, now=NOW)


def test_a_recurring_profile_without_start_schedule_is_refused() -> None:
    assert refusal(1, profile(kind="Recurring", startSchedule=None)) == "start-schedule"


def test_a_relative_profile_with_start_schedule_is_refused() -> None:
    assert refusal(1, profile(kind="Relative", startSchedule=iso(NOW))) == "start-schedule"


def test_an_empty_period_list_is_refused() -> None:
    assert refusal(1, profile(periods=[])) == "periods"


def test_a_first_period_not_starting_at_0_is_refused() -> None:
    assert refusal(1, profile(periods=[{"startPeriod": 60, "limit": 16.0}])) == "first-period"


def test_periods_out_of_order_are_refused() -> None:
    periods = [
        {"startPeriod": 0, "limit": 16.0},
        {"startPeriod": 600, "limit": 8.0},
        {"startPeriod": 300, "limit": 6.0},
    ]
    assert refusal(1, profile(periods=periods)) == "periods-ascending"


def test_two_periods_with_the_same_start_are_refused() -> None:
    periods = [{"startPeriod": 0, "limit": 16.0}, {"startPeriod": 0, "limit": 8.0}]
    assert refusal(1, profile(periods=periods)) == "periods-ascending"


def test_a_limit_with_two_decimals_is_refused() -> None:
    assert refusal(1, profile(periods=[{"startPeriod": 0, "limit": 21.45}])) == "limit-decimals"


def test_a_min_charging_rate_with_two_decimals_is_refused() -> None:
    assert refusal(1, profile(minChargingRate=6.05)) == "limit-decimals"


def test_a_negative_limit_is_refused() -> None:
    assert refusal(1, profile(periods=[{"startPeriod": 0, "limit": -1.0}])) == "limit-range"


def test_watts_are_refused_when_the_station_only_allows_current() -> None:
    assert (
        refusal(1, profile(unit="W"), limits=StationLimits(allowed_units="Current")) == "rate-unit"
    )


def test_amperes_are_refused_when_the_station_only_allows_power() -> None:
    assert refusal(1, profile(unit="A"), limits=StationLimits(allowed_units="Power")) == "rate-unit"


@pytest.mark.parametrize("phases", [0, 4])
def test_number_phases_outside_1_to_3_is_refused(phases: int) -> None:
    periods = [{"startPeriod": 0, "limit": 16.0, "numberPhases": phases}]
    assert refusal(1, profile(periods=periods)) == "number-phases"


def test_a_zero_duration_is_refused() -> None:
    assert refusal(1, profile(duration=0)) == "duration"


def test_a_stack_level_above_the_station_maximum_is_refused() -> None:
    assert refusal(1, profile(level=4), limits=StationLimits(max_stack_level=3)) == "stack-level"


def test_a_negative_stack_level_is_refused() -> None:
    assert refusal(1, profile(level=-1)) == "stack-level"


def test_one_profile_too_many_is_refused() -> None:
    installed = [Installed(1, profile(1)), Installed(1, profile(2, level=1))]
    p = profile(3, level=2)
    assert (
        refusal(1, p, installed=installed, limits=StationLimits(max_installed=2)) == "max-installed"
    )


def test_a_malformed_timestamp_is_refused() -> None:
    assert refusal(1, profile(validFrom="tomorrow")) == "timestamp"


def test_valid_from_not_before_valid_to_is_refused() -> None:
    p = profile(validFrom=iso(NOW + timedelta(hours=2)), validTo=iso(NOW + timedelta(hours=1)))
    assert refusal(1, p) == "valid-range"


def test_valid_to_in_the_past_is_refused() -> None:
    assert refusal(1, profile(validTo=iso(NOW - timedelta(seconds=1)))) == "valid-to-past"


_LIMITS = st.floats(min_value=0, max_value=10_000, allow_nan=False).map(lambda x: round(x, 3))


@settings(max_examples=150, deadline=None)
@given(_LIMITS)
def test_a_limit_is_accepted_exactly_when_it_has_at_most_one_decimal(limit: float) -> None:
    p = profile(periods=[{"startPeriod": 0, "limit": limit}])
    if round(limit, 1) == limit:
        accepts(1, p)
    else:
        assert refusal(1, p) == "limit-decimals"


@settings(max_examples=150, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "chargingProfileId",
                "stackLevel",
                "chargingProfilePurpose",
                "chargingProfileKind",
                "recurrencyKind",
                "transactionId",
                "validFrom",
                "validTo",
                "chargingSchedule",
            ]
        ),
        st.none()
        | st.booleans()
        | st.integers(-3, 3)
        | st.floats()
        | st.text(max_size=5)
        | st.just("TxProfile")
        | st.just("Relative")
        | st.just({})
        | st.just([]),
    ),
    st.integers(-1, 2),
    st.none() | st.integers(0, 3),
)
def test_validate_only_ever_raises_profile_error(
    fields: dict[str, Any], connector_id: int, active: int | None
) -> None:
    p = {**profile(), **fields}
    try:
        validate(
            connector_id,
            p,
            installed=[],
            limits=StationLimits("Current", 3, 3),
            active_transaction=active,
            now=NOW,
        )
    except ProfileError as error:
        assert error.rule


# -- install: the replacement rule ------------------------------------------------------------


def ids(installed: list[Installed]) -> list[int]:
    return [item.profile["chargingProfileId"] for item in installed]


def test_a_profile_with_a_new_id_and_level_is_added() -> None:
    assert ids(install([Installed(1, profile(1))], 1, profile(2, level=1))) == [1, 2]


def test_the_same_profile_id_replaces_even_on_another_connector() -> None:
    after = install(
        [Installed(1, profile(1)), Installed(2, profile(2, level=1))], 2, profile(1, level=5)
    )
    assert [
        (i.connector_id, i.profile["chargingProfileId"], i.profile["stackLevel"]) for i in after
    ] == [
        (2, 2, 1),
        (2, 1, 5),
    ]


def test_the_same_stack_level_and_purpose_on_the_same_connector_replaces() -> None:
    assert ids(install([Installed(1, profile(1, level=2))], 1, profile(9, level=2))) == [9]


def test_the_same_stack_level_and_purpose_on_another_connector_is_added() -> None:
    assert ids(install([Installed(1, profile(1, level=2))], 2, profile(9, level=2))) == [1, 9]


def test_the_same_stack_level_with_another_purpose_is_added() -> None:
    cp_max = profile(1, purpose="ChargePointMaxProfile", level=2)
    assert ids(install([Installed(0, cp_max)], 0, profile(9, level=2))) == [1, 9]


def test_a_tx_profile_replaces_only_within_its_transaction() -> None:
    old = Installed(1, profile(1, purpose="TxProfile", kind="Relative", transactionId=6))
    new = profile(2, purpose="TxProfile", kind="Relative", transactionId=7)
    assert ids(install([old], 1, new)) == [1, 2]
    same_tx = profile(3, purpose="TxProfile", kind="Relative", transactionId=6)
    assert ids(install([old], 1, same_tx)) == [3]


def test_a_tx_profile_replaces_the_remote_start_profile_at_the_same_level() -> None:
    # Errata 3.42: the remote start's profile has no transactionId.
    remote = Installed(1, profile(1, purpose="TxProfile", kind="Relative", level=1))
    new = profile(2, purpose="TxProfile", kind="Relative", level=1, transactionId=7)
    assert ids(install([remote], 1, new)) == [2]


# -- clear ----------------------------------------------------------------------------------


def stack() -> list[Installed]:
    return [
        Installed(0, profile(1, purpose="ChargePointMaxProfile", level=0)),
        Installed(0, profile(2, level=0)),
        Installed(1, profile(3, level=0)),
        Installed(1, profile(4, level=1)),
        Installed(2, profile(5, level=1)),
        Installed(1, profile(6, purpose="TxProfile", kind="Relative", level=1, transactionId=7)),
    ]


def test_clear_without_criteria_clears_everything() -> None:
    kept, cleared = clear(stack())
    assert (ids(kept), ids(cleared)) == ([], [1, 2, 3, 4, 5, 6])


def test_clear_by_id_ignores_the_other_criteria() -> None:
    kept, cleared = clear(stack(), profile_id=4, connector_id=2, purpose="TxProfile", stack_level=0)
    assert (ids(kept), ids(cleared)) == ([1, 2, 3, 5, 6], [4])


def test_clear_by_an_unknown_id_clears_nothing() -> None:
    kept, cleared = clear(stack(), profile_id=99)
    assert (len(kept), cleared) == (6, [])


def test_clear_by_criteria_clears_their_logical_and() -> None:
    _, cleared = clear(stack(), connector_id=1, purpose="TxDefaultProfile", stack_level=1)
    assert ids(cleared) == [4]
    _, cleared = clear(stack(), purpose="TxDefaultProfile")
    assert ids(cleared) == [2, 3, 4, 5]
    _, cleared = clear(stack(), stack_level=1)
    assert ids(cleared) == [4, 5, 6]


def test_clear_connector_0_clears_only_the_charge_point_wide_profiles() -> None:
    _, cleared = clear(stack(), connector_id=0)
    assert ids(cleared) == [1, 2]


# -- transaction end and expiry ---------------------------------------------------------------


def test_drop_transaction_removes_only_that_transactions_tx_profiles() -> None:
    kept, dropped = drop_transaction(stack(), 7)
    assert (ids(kept), ids(dropped)) == ([1, 2, 3, 4, 5], [6])
    assert drop_transaction(stack(), 8)[1] == []


def test_drop_transaction_with_a_connector_also_removes_its_remote_start_profile() -> None:
    remote = Installed(2, profile(9, purpose="TxProfile", kind="Relative"))
    _, dropped = drop_transaction([*stack(), remote], 8, connector_id=2)
    assert ids(dropped) == [9]
    _, dropped = drop_transaction([*stack(), remote], 8, connector_id=1)
    assert dropped == []


def test_expired_lists_the_profiles_whose_valid_to_has_passed() -> None:
    installed = [
        Installed(1, profile(1, validTo=iso(NOW - timedelta(seconds=1)))),
        Installed(1, profile(2, validTo=iso(NOW))),
        Installed(1, profile(3, validTo=iso(NOW + timedelta(seconds=1)))),
        Installed(1, profile(4)),
    ]
    assert ids(expired(installed, NOW)) == [1, 2]
