"""Smart Charging: the charging-profile stack of one charge point, with no I/O.

A profile is the ``csChargingProfiles`` dict exactly as sent in
SetChargingProfile.req (camelCase, OCPP 1.6 JSON schema); an ``Installed`` pairs
it with the connector it was sent to. Every function here is pure: it takes the
installed list, the station's limits and ``now`` (aware UTC) and returns a new
list or raises ``ProfileError``. The composite schedule lives in
``actors.ocpp.smart_charging_composite`` and is re-exported here.

Rules that ``validate`` enforces, each refused with its own ``rule`` name:

=========================  ===================================================================
rule                       refused when ...
=========================  ===================================================================
shape                      a required field is missing or has the wrong JSON type
connector                  connectorId < 0
purpose-connector          ChargePointMaxProfile on a connector > 0, or TxProfile on 0
                           (§3.13.1, errata 3.53: "ChargePointMaxProfile ... connectorId 0";
                           TxProfile only on connectorId > 0)
tx-without-transaction     a TxProfile (SetChargingProfile) for a connector with no running
                           transaction (§3.13.1: TxProfile "only with an active transaction")
tx-transaction-id          a TxProfile without transactionId, or with another connector's /
                           a finished transaction's id (§5.16 note: "SHALL include the
                           transactionId")
transaction-id-purpose     transactionId on a ChargePointMaxProfile or TxDefaultProfile
                           (§7.13: "Only valid if ChargingProfilePurpose is set to TxProfile")
remote-start-purpose       RemoteStartTransaction profile that is not a TxProfile (§5.11)
remote-start-transaction   RemoteStartTransaction profile with a transactionId (errata 3.41)
recurrency-kind            recurrencyKind given and kind is not Recurring, or Recurring without
                           Daily/Weekly (errata 3.56: "only with Recurring")
start-schedule             Recurring without startSchedule, or Relative with one
                           (decision below)
periods                    chargingSchedulePeriod is empty
first-period               the first startPeriod is not 0 (errata 3.45/3.69/4.13/4.17)
periods-ascending          startPeriods not strictly ascending (§7.13: "startPeriod ... the
                           schedule periods SHALL be in ascending order")
limit-range                limit or minChargingRate is negative (or not a finite number)
limit-decimals             limit or minChargingRate has more than one decimal (schema
                           ``multipleOf 0.1``: 21.4 passes, 21.45 does not)
rate-unit                  chargingRateUnit not allowed by ChargingScheduleAllowedChargingRateUnit
                           ("Current" => A only, "Power" => W only; errata 3.86)
number-phases              numberPhases outside 1..3 (absent means 3; errata 3.68/3.70)
duration                   chargingSchedule.duration <= 0
stack-level                stackLevel < 0 or > ChargeProfileMaxStackLevel (when known)
max-installed              more than MaxChargingProfilesInstalled profiles after installing
                           (a replacement does not add)
timestamp                  validFrom / validTo / startSchedule is not ISO 8601
valid-range                validFrom >= validTo when both are given
valid-to-past              validTo <= now (the profile would already be expired)
=========================  ===================================================================

Decisions (where OCPP 1.6 leaves a choice):
- An Absolute profile may omit ``startSchedule`` (§7.13: it is optional): its schedule
  is then relative to the start of charging, the transaction start, and the
  composite schedule computes it so (``smart_charging_composite``). The central
  system sends it as given.
- Relative profiles must not carry ``startSchedule`` (TC_057 2025-11: "if Relative
  -> startSchedule omitted"; §7.13 Relative: the start point is situation-specific).
- Recurring profiles must carry ``startSchedule``: it anchors the recurrence.
- A profile sent with RemoteStartTransaction (``remote_start=True``) is a TxProfile
  without transactionId and needs no running transaction (errata 3.41).

Replacement (``install``; §5.16.3: "If a charging profile with the same
chargingProfileId, or the same combination of stackLevel / ChargingProfilePurpose,
exists on the Charge Point, the new charging profile SHALL replace the existing"):
- the same chargingProfileId replaces, on whatever connector it was installed;
- the same stackLevel + purpose on the same connector replaces; for TxProfiles only
  within the same transaction, where a TxProfile without transactionId (the one of a
  RemoteStartTransaction) counts as the connector's transaction (errata 3.42).
Otherwise the profile is added (appended at the end).

Clearing (``clear``; errata 3.25/3.26): no criterion clears all; an id clears only
that id (other criteria ignored); otherwise the AND of the given criteria.
``connector_id=0`` matches only the profiles installed on connector 0 (§6.12:
"A connectorId of zero (0) specifies the charging profile for the overall Charge
Point"); absent matches every connector.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from actors.ocpp.smart_charging_composite import composite_schedule, limit_at
from storage.timefmt import parse_time

__all__ = [
    "KINDS",
    "PURPOSES",
    "Installed",
    "ProfileError",
    "StationLimits",
    "clear",
    "composite_schedule",
    "drop_transaction",
    "expired",
    "install",
    "limit_at",
    "validate",
]

PURPOSES = ("ChargePointMaxProfile", "TxDefaultProfile", "TxProfile")
KINDS = ("Absolute", "Recurring", "Relative")
RECURRENCY_KINDS = ("Daily", "Weekly")
UNITS = ("A", "W")
# ChargingScheduleAllowedChargingRateUnit (errata 3.86): "Current" => A, "Power" => W.
_UNIT_NAMES = {"current": "A", "a": "A", "power": "W", "w": "W"}
_TENTH = Decimal("0.1")


class ProfileError(ValueError):
    """Raised when a charging profile breaks a rule; ``rule`` names it (see the table)."""

    def __init__(self, rule: str, message: str):
        super().__init__(f"{rule}: {message}")
        self.rule = rule
        self.message = message

    def __str__(self) -> str:
        return f"{self.rule}: {self.message}"


@dataclass(frozen=True)
class StationLimits:
    """What the station reported in its configuration; None = unknown (not checked)."""

    allowed_units: str | None = None  # ChargingScheduleAllowedChargingRateUnit
    max_stack_level: int | None = None  # ChargeProfileMaxStackLevel
    max_installed: int | None = None  # MaxChargingProfilesInstalled


@dataclass(frozen=True)
class Installed:
    """A profile installed on a connector (0 = the charge point as a whole)."""

    connector_id: int
    profile: dict[str, Any]


def installed_from_rows(rows: list[dict[str, Any]]) -> list[Installed]:
    """The stack from ``Store.installed_profiles`` rows ({connector_id, profile, ...})."""
    return [Installed(r["connector_id"], r["profile"]) for r in rows]


# -- validation -----------------------------------------------------------------


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _allowed_units(allowed: str | None) -> set[str]:
    if allowed is None:
        return set(UNITS)
    names = {_UNIT_NAMES.get(part.strip().lower()) for part in allowed.split(",")}
    names.discard(None)
    return {n for n in names if n is not None} or set(UNITS)


def _check_amount(name: str, value: Any) -> None:
    if not _is_number(value):
        raise ProfileError("shape", f"{name} must be a number, got {value!r}")
    try:
        amount = Decimal(str(value))
        one_decimal = amount == amount.quantize(_TENTH)
    except InvalidOperation:
        raise ProfileError("limit-range", f"{name} {value!r} is not a finite number") from None
    if amount < 0:
        raise ProfileError("limit-range", f"{name} {value} is negative")
    if not one_decimal:
        raise ProfileError("limit-decimals", f"{name} {value} has more than one decimal")


def _time(profile_part: dict[str, Any], key: str) -> datetime | None:
    value = profile_part.get(key)
    if value is None:
        return None
    try:
        return parse_time(value)
    except ValueError:
        raise ProfileError("timestamp", f"{key} {value!r} is not an ISO 8601 timestamp") from None


def _check_shape(profile: Any) -> None:
    if not isinstance(profile, dict):
        raise ProfileError("shape", "the charging profile must be an object")
    for key in ("chargingProfileId", "stackLevel"):
        if not _is_int(profile.get(key)):
            raise ProfileError("shape", f"{key} must be an integer")
    if profile.get("chargingProfilePurpose") not in PURPOSES:
        raise ProfileError("shape", f"chargingProfilePurpose must be one of {', '.join(PURPOSES)}")
    if profile.get("chargingProfileKind") not in KINDS:
        raise ProfileError("shape", f"chargingProfileKind must be one of {', '.join(KINDS)}")
    if "transactionId" in profile and not _is_int(profile["transactionId"]):
        raise ProfileError("shape", "transactionId must be an integer")
    schedule = profile.get("chargingSchedule")
    if not isinstance(schedule, dict):
        raise ProfileError("shape", "chargingSchedule must be an object")
    if schedule.get("chargingRateUnit") not in UNITS:
        raise ProfileError("shape", "chargingRateUnit must be A or W")
    if "duration" in schedule and not _is_int(schedule["duration"]):
        raise ProfileError("shape", "duration must be an integer")
    periods = schedule.get("chargingSchedulePeriod")
    if not isinstance(periods, list):
        raise ProfileError("shape", "chargingSchedulePeriod must be an array")
    for period in periods:
        if not isinstance(period, dict) or not _is_int(period.get("startPeriod")):
            raise ProfileError("shape", "every period needs an integer startPeriod")
        if "limit" not in period:
            raise ProfileError("shape", "every period needs a limit")
        if "numberPhases" in period and not _is_int(period["numberPhases"]):
            raise ProfileError("shape", "numberPhases must be an integer")


def _check_purpose(
    connector_id: int, profile: dict[str, Any], active_transaction: int | None, remote_start: bool
) -> None:
    purpose = profile["chargingProfilePurpose"]
    tx = profile.get("transactionId")
    if connector_id < 0:
        raise ProfileError("connector", f"connectorId {connector_id} is negative")
    if remote_start:
        # OCPP 1.6 §5.11: "The Charging Profile ... SHALL have the purpose TxProfile";
        # errata 3.41: the transactionId is not known yet and SHALL NOT be set.
        if purpose != "TxProfile":
            raise ProfileError(
                "remote-start-purpose", f"a remote start profile must be a TxProfile, not {purpose}"
            )
        if tx is not None:
            raise ProfileError(
                "remote-start-transaction", "a remote start profile must not carry a transactionId"
            )
        return
    # OCPP 1.6 §3.13.1: ChargePointMaxProfile "can only be set at Charge Point ConnectorId 0".
    if purpose == "ChargePointMaxProfile" and connector_id != 0:
        raise ProfileError(
            "purpose-connector", "a ChargePointMaxProfile belongs on connector 0 only"
        )
    if purpose == "TxProfile":
        if connector_id == 0:
            raise ProfileError("purpose-connector", "a TxProfile belongs on a connector > 0")
        # §3.13.1: "only with an active transaction"; §5.16: "SHALL include the transactionId".
        if active_transaction is None:
            raise ProfileError(
                "tx-without-transaction", f"no transaction is running on connector {connector_id}"
            )
        if tx != active_transaction:
            raise ProfileError(
                "tx-transaction-id",
                f"transactionId {tx!r} is not the running transaction {active_transaction}",
            )
    elif tx is not None:
        # §7.13 ChargingProfile.transactionId: "Only valid if ChargingProfilePurpose is TxProfile".
        raise ProfileError(
            "transaction-id-purpose", f"transactionId is only valid on a TxProfile, not {purpose}"
        )


def _check_kind(profile: dict[str, Any]) -> None:
    kind = profile["chargingProfileKind"]
    recurrency = profile.get("recurrencyKind")
    # Errata 3.56: recurrencyKind only with chargingProfileKind = Recurring.
    if kind == "Recurring" and recurrency not in RECURRENCY_KINDS:
        raise ProfileError(
            "recurrency-kind", "a Recurring profile needs recurrencyKind Daily or Weekly"
        )
    if kind != "Recurring" and recurrency is not None:
        raise ProfileError(
            "recurrency-kind", f"recurrencyKind is only valid on Recurring, not {kind}"
        )
    has_start = profile["chargingSchedule"].get("startSchedule") is not None
    if kind == "Relative" and has_start:
        raise ProfileError(
            "start-schedule", "a Relative profile starts with its transaction: no startSchedule"
        )
    if kind == "Recurring" and not has_start:
        # The recurrence needs an anchor. (Absolute without one: relative to the start of charging.)
        raise ProfileError("start-schedule", f"a {kind} profile needs a startSchedule")


def _check_schedule(schedule: dict[str, Any], limits: StationLimits) -> None:
    periods = schedule["chargingSchedulePeriod"]
    if not periods:
        raise ProfileError("periods", "chargingSchedulePeriod is empty")
    # Errata 3.45/3.69: "The startPeriod of the first chargingSchedulePeriod SHALL be 0".
    if periods[0]["startPeriod"] != 0:
        raise ProfileError(
            "first-period", f"the first startPeriod is {periods[0]['startPeriod']}, not 0"
        )
    starts = [p["startPeriod"] for p in periods]
    if any(b <= a for a, b in zip(starts, starts[1:], strict=False)):
        raise ProfileError("periods-ascending", f"startPeriods {starts} are not strictly ascending")
    for period in periods:
        _check_amount("limit", period["limit"])
        phases = period.get("numberPhases", 3)
        if not 1 <= phases <= 3:
            raise ProfileError("number-phases", f"numberPhases {phases} is not 1, 2 or 3")
    if "minChargingRate" in schedule:
        _check_amount("minChargingRate", schedule["minChargingRate"])
    unit = schedule["chargingRateUnit"]
    if unit not in _allowed_units(limits.allowed_units):
        raise ProfileError(
            "rate-unit",
            f"unit {unit} is not allowed (ChargingScheduleAllowedChargingRateUnit={limits.allowed_units})",
        )
    if "duration" in schedule and schedule["duration"] <= 0:
        raise ProfileError("duration", f"duration {schedule['duration']} is not positive")


def validate(
    connector_id: int,
    profile: dict[str, Any],
    *,
    installed: Sequence[Installed],
    limits: StationLimits,
    active_transaction: int | None,
    now: datetime,
    remote_start: bool = False,
) -> None:
    """Check a profile before it is sent; raise ``ProfileError`` naming the broken rule.

    ``active_transaction`` is the transaction running on ``connector_id`` (None if none).
    With ``remote_start`` the profile is the chargingProfile of a RemoteStartTransaction.
    """
    _check_shape(profile)
    _check_purpose(connector_id, profile, active_transaction, remote_start)
    _check_kind(profile)
    _check_schedule(profile["chargingSchedule"], limits)
    level = profile["stackLevel"]
    if level < 0 or (limits.max_stack_level is not None and level > limits.max_stack_level):
        raise ProfileError(
            "stack-level", f"stackLevel {level} is outside 0..{limits.max_stack_level}"
        )
    _time(profile["chargingSchedule"], "startSchedule")
    valid_from, valid_to = _time(profile, "validFrom"), _time(profile, "validTo")
    if valid_from is not None and valid_to is not None and valid_from >= valid_to:
        raise ProfileError("valid-range", "validFrom is not before validTo")
    if valid_to is not None and valid_to <= now:
        raise ProfileError("valid-to-past", "validTo is not in the future")
    if limits.max_installed is not None:
        after = install(installed, connector_id, profile)
        if len(after) > limits.max_installed:
            raise ProfileError(
                "max-installed",
                f"{len(after)} profiles would exceed MaxChargingProfilesInstalled={limits.max_installed}",
            )


# -- the installed stack ---------------------------------------------------------------


def _same_slot(old: Installed, connector_id: int, profile: dict[str, Any]) -> bool:
    if old.profile.get("chargingProfileId") == profile.get("chargingProfileId"):
        return True
    if old.connector_id != connector_id:
        return False
    if (old.profile.get("stackLevel"), old.profile.get("chargingProfilePurpose")) != (
        profile.get("stackLevel"),
        profile.get("chargingProfilePurpose"),
    ):
        return False
    if profile.get("chargingProfilePurpose") != "TxProfile":
        return True
    # Errata 3.42: a TxProfile for the transaction replaces the remote start's one
    # (which has no transactionId) at the same stackLevel.
    old_tx, new_tx = old.profile.get("transactionId"), profile.get("transactionId")
    return old_tx is None or new_tx is None or old_tx == new_tx


def install(
    installed: Sequence[Installed], connector_id: int, profile: dict[str, Any]
) -> list[Installed]:
    """Return the stack after installing ``profile`` on ``connector_id`` (replacement applied)."""
    kept = [old for old in installed if not _same_slot(old, connector_id, profile)]
    return [*kept, Installed(connector_id, profile)]


def clear(
    installed: Sequence[Installed],
    *,
    profile_id: int | None = None,
    connector_id: int | None = None,
    purpose: str | None = None,
    stack_level: int | None = None,
) -> tuple[list[Installed], list[Installed]]:
    """Apply ClearChargingProfile.req; return ``(kept, cleared)`` (errata 3.25/3.26)."""

    def matches(item: Installed) -> bool:
        if profile_id is not None:
            return item.profile.get("chargingProfileId") == profile_id
        return (
            (connector_id is None or item.connector_id == connector_id)
            and (purpose is None or item.profile.get("chargingProfilePurpose") == purpose)
            and (stack_level is None or item.profile.get("stackLevel") == stack_level)
        )

    return _split(installed, matches)


def drop_transaction(
    installed: Sequence[Installed], transaction_id: int, *, connector_id: int | None = None
) -> tuple[list[Installed], list[Installed]]:
    """The transaction ended: its TxProfiles leave; return ``(kept, dropped)``.

    # OCPP 1.6 §3.13.1 TxProfile: "the profile ... SHALL be deleted after the transaction".
    With ``connector_id``, TxProfiles on that connector without transactionId (from a
    RemoteStartTransaction) leave too.
    """

    def ends(item: Installed) -> bool:
        if item.profile.get("chargingProfilePurpose") != "TxProfile":
            return False
        tx = item.profile.get("transactionId")
        return tx == transaction_id or (tx is None and item.connector_id == connector_id)

    return _split(installed, ends)


def expired(installed: Sequence[Installed], now: datetime) -> list[Installed]:
    """The profiles whose validTo <= ``now`` (unparseable validTo counts as not expired)."""
    out = []
    for item in installed:
        try:
            valid_to = _time(item.profile, "validTo")
        except ProfileError:
            continue
        if valid_to is not None and valid_to <= now:
            out.append(item)
    return out


def _split(installed: Sequence[Installed], leaves: Any) -> tuple[list[Installed], list[Installed]]:
    kept: list[Installed] = []
    gone: list[Installed] = []
    for item in installed:
        (gone if leaves(item) else kept).append(item)
    return kept, gone
