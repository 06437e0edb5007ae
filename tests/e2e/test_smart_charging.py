"""OCTT 1.6 Smart Charging cases for the central system, end to end.

Each test walks one OCTT CSMS case (spec/OCTT-CSMS-1.6.md §7, both the 2024-04
and the 2025-11 revision where they differ) or one smart-charging rule the
central system enforces before sending (§11.8, §12): a simulated charge point
plays the test tool over a real WebSocket against a running ``run.py serve``,
and the requests the central system initiates are sent with ``run.py ctl``.
Every test asserts the exact request the charge point received and the central
system's own record of the installed profiles (``profile list``).

A refused profile is checked in three ways: exit code 2, the broken rule named
in the message, and nothing sent (the simulator records a CALL before it
answers it, and the control script returns only after the answer, so an empty
queue right after the command means nothing went out).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from tests.support.chargepoint import CallErrorReply, ChargePoint
from tests.support.octt import answered, charging, new_tag, nothing_received
from tests.support.system import CentralSystem, wait_for

pytestmark = pytest.mark.e2e

CONNECTORS = 2
CONNECTOR = 1  # <Configured ConnectorId>
STACK_LEVEL = 1  # <Configured Stack Level>

# GetCompositeSchedule.conf the simulated charge point returns (hard-coded, as the tool does);
# errata 3.57: scheduleStart is used and chargingSchedule.startSchedule is omitted.
COMPOSITE = {
    "status": "Accepted",
    "connectorId": CONNECTOR,
    "scheduleStart": "2025-01-01T12:00:00.000Z",
    "chargingSchedule": {
        "duration": 300,
        "chargingRateUnit": "A",
        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16.0},
                                   {"startPeriod": 120, "limit": 10.0, "numberPhases": 1}],
    },
}


def default_handlers() -> dict:
    """How the simulated charge point answers the central system unless a test says otherwise."""
    return {
        "SetChargingProfile": lambda p: {"status": "Accepted"},
        "ClearChargingProfile": lambda p: {"status": "Accepted"},
        "GetCompositeSchedule": lambda p: COMPOSITE,
        "RemoteStartTransaction": lambda p: {"status": "Accepted"},
        "GetConfiguration": lambda p: {"configurationKey": []},
    }


@pytest.fixture
def cp_handlers() -> dict[str, Any]:
    return default_handlers()


# -- helpers -----------------------------------------------------------------------


def iso_in(**delta: float) -> str:
    moment = datetime.now(timezone.utc) + timedelta(**delta)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def profile(profile_id: int, purpose: str = "TxDefaultProfile", *, kind: str = "Absolute",
            stack_level: int = STACK_LEVEL, limit: float = 6.0, unit: str = "A",
            periods: list[dict[str, Any]] | None = None, **extra: Any) -> dict[str, Any]:
    """A csChargingProfiles as OCTT TC_056/TC_057 check it: Absolute profiles carry
    validFrom, validTo, startSchedule and duration; Relative ones no startSchedule."""
    schedule: dict[str, Any] = {
        "duration": 3600,
        "chargingRateUnit": unit,
        "chargingSchedulePeriod": periods or [{"startPeriod": 0, "limit": limit, "numberPhases": 3}],
    }
    body: dict[str, Any] = {
        "chargingProfileId": profile_id,
        "stackLevel": stack_level,
        "chargingProfilePurpose": purpose,
        "chargingProfileKind": kind,
    }
    if kind != "Relative":
        body["validFrom"] = iso_in(minutes=-5)
        body["validTo"] = iso_in(days=1)
        schedule["startSchedule"] = iso_in(minutes=-5)
    body["chargingSchedule"] = schedule
    body.update(extra)
    return body








def set_profile(csms: CentralSystem, cp: ChargePoint, connector: int, body: dict[str, Any],
                status: str = "Accepted") -> None:
    """SetChargingProfile through the control script; the CP got exactly that request."""
    request = {"connectorId": connector, "csChargingProfiles": body}
    result = csms.ctl("set-profile", cp.station_id, "--connector", str(connector), "--profile", json.dumps(body))
    answered(result, cp.station_id, "SetChargingProfile", request, {"status": status})
    assert cp.wait_call("SetChargingProfile") == request


def clear_profile(csms: CentralSystem, cp: ChargePoint, args: list[str], request: dict[str, Any]) -> None:
    result = csms.ctl("clear-profile", cp.station_id, *args)
    answered(result, cp.station_id, "ClearChargingProfile", request, {"status": "Accepted"})
    assert cp.wait_call("ClearChargingProfile") == request


def installed(csms: CentralSystem, station: str) -> dict[int, list[dict[str, Any]]]:
    """``profile list``: connector -> the profiles the CSMS believes are installed (empty ones dropped)."""
    return {c["connector_id"]: c["profiles"] for c in csms.ctl_ok("profile", "list", station) if c["profiles"]}


def ids(csms: CentralSystem, station: str) -> dict[int, list[int]]:
    return {c: sorted(p["chargingProfileId"] for p in ps) for c, ps in installed(csms, station).items()}




def refused(csms: CentralSystem, cp: ChargePoint, connector: int, body: dict[str, Any], rule: str) -> None:
    """set-profile exits 2 naming ``rule``; nothing reaches the charge point or the stack."""
    before = installed(csms, cp.station_id)
    result = csms.ctl("set-profile", cp.station_id, "--connector", str(connector), "--profile", json.dumps(body))
    assert result.code == 2, f"ctl exited {result.code}: {result.stdout} {result.stderr}"
    assert rule in result.json["error"]["description"], result.json
    nothing_received(cp)
    assert installed(csms, cp.station_id) == before


def learn_configuration(csms: CentralSystem, cp: ChargePoint, **keys: str) -> None:
    """The CSMS learns the station's smart-charging limits through GetConfiguration."""
    reported = [{"key": k, "readonly": True, "value": v} for k, v in keys.items()]
    cp.handlers["GetConfiguration"] = lambda p: {"configurationKey": reported}
    csms.ctl_ok("get-config", cp.station_id)
    assert cp.wait_call("GetConfiguration") == {}


# -- TC_056: TxDefaultProfile ------------------------------------------------------------


@pytest.mark.parametrize(("unit", "limit"), [("A", 6.0), ("W", 6000.0)])
def test_tc_056_tx_default_profile_is_sent_as_configured_and_installed(
        csms: CentralSystem, cp: ChargePoint, unit: str, limit: float) -> None:
    body = profile(56, "TxDefaultProfile", unit=unit, limit=limit)
    set_profile(csms, cp, CONNECTOR, body)

    sent = body  # set_profile asserted the CP received exactly this
    assert (sent["stackLevel"], sent["chargingProfilePurpose"], sent["chargingProfileKind"]) == (
        STACK_LEVEL, "TxDefaultProfile", "Absolute")
    assert "validFrom" in sent and "validTo" in sent and "startSchedule" in sent["chargingSchedule"]
    assert "transactionId" not in sent and "recurrencyKind" not in sent  # 2025-11
    period = sent["chargingSchedule"]["chargingSchedulePeriod"][0]
    assert (period["startPeriod"], period["limit"], period["numberPhases"]) == (0, limit, 3)
    assert installed(csms, cp.station_id) == {CONNECTOR: [body]}


def test_tc_056_limit_reaches_the_charge_point_as_a_decimal_number(csms: CentralSystem, cp: ChargePoint) -> None:
    set_profile(csms, cp, CONNECTOR, profile(57, limit=6.0))
    # wait_call already compared the payload; the raw frame shows how limit was written.
    frames = []
    while not cp.raw.empty():
        frames.append(cp.raw.get_nowait())
    call = next(json.loads(f) for f in frames if '"SetChargingProfile"' in f)
    assert type(call[3]["csChargingProfiles"]["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"]) is float


# -- TC_057: TxProfile -----------------------------------------------------------------


@pytest.mark.parametrize("kind", ["Absolute", "Relative"])
def test_tc_057_tx_profile_carries_the_generated_transaction_id_and_leaves_with_the_transaction(
        csms: CentralSystem, cp: ChargePoint, kind: str) -> None:
    tx_id = charging(cp, new_tag(csms))
    body = profile(57, "TxProfile", kind=kind, transactionId=tx_id)
    set_profile(csms, cp, CONNECTOR, body)

    assert body["transactionId"] == tx_id and "recurrencyKind" not in body
    if kind == "Absolute":
        assert {"validFrom", "validTo"} <= set(body)
        assert {"startSchedule", "duration"} <= set(body["chargingSchedule"])
    else:
        assert "startSchedule" not in body["chargingSchedule"]
    assert installed(csms, cp.station_id) == {CONNECTOR: [body]}

    assert cp.stop(tx_id, 1500, "Local") == {}
    cp.status(CONNECTOR, "Finishing")
    assert installed(csms, cp.station_id) == {}


# -- TC_059: RemoteStartTransaction with a charging profile -------------------------------


def test_tc_059_remote_start_profile_is_installed_with_the_new_transaction_id(csms: CentralSystem, cp: ChargePoint) -> None:
    tag = new_tag(csms)
    body = {
        "chargingProfileId": 59, "stackLevel": STACK_LEVEL, "chargingProfilePurpose": "TxProfile",
        "chargingProfileKind": "Relative",
        "chargingSchedule": {"chargingRateUnit": "A",
                             "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 10.0}]},
    }
    request = {"idTag": tag, "connectorId": CONNECTOR, "chargingProfile": body}
    result = csms.ctl("remote-start", cp.station_id, "--id-tag", tag, "--connector", str(CONNECTOR),
                      "--profile", json.dumps(body))
    answered(result, cp.station_id, "RemoteStartTransaction", request, {"status": "Accepted"})
    assert cp.wait_call("RemoteStartTransaction") == request
    assert installed(csms, cp.station_id) == {}  # not before the transaction exists

    tx_id = charging(cp, tag)
    assert installed(csms, cp.station_id) == {CONNECTOR: [{**body, "transactionId": tx_id}]}
    limits = {c["connector_id"]: c["limit_now_a"] for c in csms.ctl_ok("profile", "list", cp.station_id)}
    assert limits[CONNECTOR] == 10.0

    assert cp.stop(tx_id, 800, "Local") == {}
    assert installed(csms, cp.station_id) == {}  # a TxProfile ends with its transaction


def test_remote_start_profile_that_is_not_a_tx_profile_is_refused_before_sending(csms: CentralSystem, cp: ChargePoint) -> None:
    body = profile(60, "TxDefaultProfile", kind="Relative")
    result = csms.ctl("remote-start", cp.station_id, "--id-tag", new_tag(csms), "--connector", str(CONNECTOR),
                      "--profile", json.dumps(body))
    assert result.code == 2 and "remote-start-purpose" in result.json["error"]["description"], result.stdout
    nothing_received(cp)


# -- TC_066: GetCompositeSchedule ------------------------------------------------------------


def test_tc_066_composite_schedule_of_the_charge_point_is_reported_as_given(csms: CentralSystem, cp: ChargePoint) -> None:
    request = {"connectorId": CONNECTOR, "duration": 300, "chargingRateUnit": "A"}
    result = csms.ctl("composite-schedule", cp.station_id, "--connector", str(CONNECTOR), "--duration", "300",
                      "--unit", "A")
    answered(result, cp.station_id, "GetCompositeSchedule", request, COMPOSITE)
    assert cp.wait_call("GetCompositeSchedule") == request


def test_local_composite_schedule_is_computed_from_installed_profiles_without_asking(csms: CentralSystem, cp: ChargePoint) -> None:
    body = profile(66, "TxDefaultProfile", limit=16.0)
    del body["chargingSchedule"]["duration"], body["validTo"]  # in force for the whole window
    set_profile(csms, cp, CONNECTOR, body)

    local = csms.ctl_ok("composite-schedule", cp.station_id, "--connector", str(CONNECTOR), "--duration", "600",
                        "--unit", "A", "--local")
    nothing_received(cp)
    assert (local["station"], local["connectorId"]) == (cp.station_id, CONNECTOR)
    schedule = local["chargingSchedule"]
    assert (schedule["duration"], schedule["chargingRateUnit"]) == (600, "A")
    assert schedule["chargingSchedulePeriod"] == [{"startPeriod": 0, "limit": 16.0, "numberPhases": 3}]


# -- TC_067: ClearChargingProfile -----------------------------------------------------------


def test_tc_067_2024_04_clear_by_id_then_by_criteria_then_everything(csms: CentralSystem, cp: ChargePoint) -> None:
    levels = {671: STACK_LEVEL, 672: STACK_LEVEL + 1, 673: STACK_LEVEL + 2}
    for profile_id, level in levels.items():
        set_profile(csms, cp, CONNECTOR, profile(profile_id, "TxDefaultProfile", stack_level=level))
    assert ids(csms, cp.station_id) == {CONNECTOR: [671, 672, 673]}

    clear_profile(csms, cp, ["--id", "671"], {"id": 671})
    assert ids(csms, cp.station_id) == {CONNECTOR: [672, 673]}

    clear_profile(csms, cp, ["--connector", str(CONNECTOR), "--purpose", "TxDefaultProfile",
                             "--stack-level", str(STACK_LEVEL + 1)],
                  {"connectorId": CONNECTOR, "chargingProfilePurpose": "TxDefaultProfile",
                   "stackLevel": STACK_LEVEL + 1})
    assert ids(csms, cp.station_id) == {CONNECTOR: [673]}

    clear_profile(csms, cp, [], {})
    assert installed(csms, cp.station_id) == {}


def test_tc_067_2025_11_clear_max_default_and_tx_profiles_at_one_stack_level(csms: CentralSystem, cp: ChargePoint) -> None:
    tx_id = charging(cp, new_tag(csms))
    set_profile(csms, cp, 0, profile(1, "ChargePointMaxProfile"))
    set_profile(csms, cp, CONNECTOR, profile(2, "TxDefaultProfile"))
    set_profile(csms, cp, CONNECTOR, profile(3, "TxProfile", transactionId=tx_id))
    assert ids(csms, cp.station_id) == {0: [1], CONNECTOR: [2, 3]}

    clear_profile(csms, cp, ["--id", "1"], {"id": 1})
    assert ids(csms, cp.station_id) == {CONNECTOR: [2, 3]}

    clear_profile(csms, cp, ["--connector", str(CONNECTOR), "--purpose", "TxDefaultProfile",
                             "--stack-level", str(STACK_LEVEL)],
                  {"connectorId": CONNECTOR, "chargingProfilePurpose": "TxDefaultProfile", "stackLevel": STACK_LEVEL})
    assert ids(csms, cp.station_id) == {CONNECTOR: [3]}

    clear_profile(csms, cp, [], {})
    assert installed(csms, cp.station_id) == {}


def test_clear_with_an_id_ignores_the_other_fields_and_criteria_are_anded(csms: CentralSystem, cp: ChargePoint) -> None:
    set_profile(csms, cp, 1, profile(11, "TxDefaultProfile", stack_level=1))
    set_profile(csms, cp, 1, profile(12, "TxDefaultProfile", stack_level=2))
    set_profile(csms, cp, 2, profile(21, "TxDefaultProfile", stack_level=2))

    # errata 3.25/3.26: an id clears only that profile, whatever connectorId says
    clear_profile(csms, cp, ["--id", "11", "--connector", "2"], {"id": 11, "connectorId": 2})
    assert ids(csms, cp.station_id) == {1: [12], 2: [21]}

    # otherwise the AND of the criteria: stackLevel 2 on connector 2 only
    clear_profile(csms, cp, ["--connector", "2", "--stack-level", "2"], {"connectorId": 2, "stackLevel": 2})
    assert ids(csms, cp.station_id) == {1: [12]}


def test_same_stack_level_and_purpose_on_a_connector_replaces_the_installed_profile(csms: CentralSystem, cp: ChargePoint) -> None:
    set_profile(csms, cp, 1, profile(31, stack_level=1))
    set_profile(csms, cp, 2, profile(32, stack_level=1))
    newer = profile(33, stack_level=1, limit=12.0)
    set_profile(csms, cp, 1, newer)  # §5.16.3: same stackLevel + purpose replaces
    assert ids(csms, cp.station_id) == {1: [33], 2: [32]}  # the other connector keeps its own
    assert installed(csms, cp.station_id)[1] == [newer]
    moved = profile(32, stack_level=2)
    set_profile(csms, cp, 1, moved)  # the same chargingProfileId replaces, wherever it was
    assert ids(csms, cp.station_id) == {1: [32, 33]}


def test_clear_answered_unknown_leaves_the_stack_unchanged(csms: CentralSystem, cp: ChargePoint) -> None:
    set_profile(csms, cp, CONNECTOR, profile(5))
    cp.handlers["ClearChargingProfile"] = lambda p: {"status": "Unknown"}
    result = csms.ctl("clear-profile", cp.station_id)
    answered(result, cp.station_id, "ClearChargingProfile", {}, {"status": "Unknown"})
    assert cp.wait_call("ClearChargingProfile") == {}
    assert ids(csms, cp.station_id) == {CONNECTOR: [5]}


# -- refused before sending (§11.8, §12) ---------------------------------------------------


def _periods(*starts: int) -> list[dict[str, Any]]:
    return [{"startPeriod": s, "limit": 6.0} for s in starts]


@pytest.mark.parametrize(("connector", "body", "rule"), [
    pytest.param(1, profile(1, "ChargePointMaxProfile"), "purpose-connector", id="max-profile-on-connector-1"),
    pytest.param(0, profile(1, "TxProfile", transactionId=1), "purpose-connector", id="tx-profile-on-connector-0"),
    pytest.param(1, profile(1, "TxProfile", transactionId=1), "tx-without-transaction", id="tx-profile-without-transaction"),
    pytest.param(1, profile(1, periods=_periods(10, 60)), "first-period", id="first-start-period-not-0"),
    pytest.param(1, profile(1, periods=_periods(0, 60, 60)), "periods-ascending", id="periods-not-ascending"),
    pytest.param(1, profile(1, periods=_periods(0, 120, 60)), "periods-ascending", id="periods-descending"),
    pytest.param(1, profile(1, recurrencyKind="Daily"), "recurrency-kind", id="recurrency-kind-on-absolute"),
    pytest.param(1, profile(1, validFrom=iso_in(days=2), validTo=iso_in(days=1)), "valid-range",
                 id="valid-to-before-valid-from"),
    pytest.param(1, profile(1, "TxDefaultProfile", transactionId=1), "transaction-id-purpose",
                 id="transaction-id-on-tx-default-profile"),
])
def test_profile_breaking_a_rule_is_refused_with_exit_2_and_not_sent(
        csms: CentralSystem, cp: ChargePoint, connector: int, body: dict[str, Any], rule: str) -> None:
    refused(csms, cp, connector, body, rule)


def test_limit_with_two_decimals_is_refused_with_exit_2_and_not_sent(csms: CentralSystem, cp: ChargePoint) -> None:
    body = profile(1, limit=6.05)
    result = csms.ctl("set-profile", cp.station_id, "--connector", "1", "--profile", json.dumps(body))
    assert result.code == 2, result.stdout
    # refused by the schema check (multipleOf 0.1) or by the rule limit-decimals
    description = result.json["error"]["description"]
    assert "limit-decimals" in description or "multiple of 0.1" in description, description
    nothing_received(cp)
    assert installed(csms, cp.station_id) == {}


def test_tx_profile_with_another_transaction_id_is_refused(csms: CentralSystem, cp: ChargePoint) -> None:
    tx_id = charging(cp, new_tag(csms))
    refused(csms, cp, CONNECTOR, profile(1, "TxProfile", transactionId=tx_id + 1000), "tx-transaction-id")
    refused(csms, cp, CONNECTOR, profile(1, "TxProfile"), "tx-transaction-id")  # no transactionId at all


def test_power_unit_is_refused_when_the_station_allows_only_current(csms: CentralSystem, cp: ChargePoint) -> None:
    learn_configuration(csms, cp, ChargingScheduleAllowedChargingRateUnit="Current")
    refused(csms, cp, CONNECTOR, profile(1, unit="W", limit=6000.0), "rate-unit")
    set_profile(csms, cp, CONNECTOR, profile(1, unit="A"))  # the allowed unit still goes through


def test_stack_level_above_the_station_maximum_is_refused(csms: CentralSystem, cp: ChargePoint) -> None:
    learn_configuration(csms, cp, ChargeProfileMaxStackLevel="3")
    refused(csms, cp, CONNECTOR, profile(1, stack_level=4), "stack-level")
    set_profile(csms, cp, CONNECTOR, profile(1, stack_level=3))


def test_more_profiles_than_the_station_can_hold_are_refused(csms: CentralSystem, cp: ChargePoint) -> None:
    learn_configuration(csms, cp, MaxChargingProfilesInstalled="2")
    set_profile(csms, cp, CONNECTOR, profile(1, stack_level=1))
    set_profile(csms, cp, CONNECTOR, profile(2, stack_level=2))
    refused(csms, cp, CONNECTOR, profile(3, stack_level=3), "max-installed")
    # a replacement (same chargingProfileId) does not add to the count
    replacement = profile(2, stack_level=2, limit=8.0)
    set_profile(csms, cp, CONNECTOR, replacement)
    assert ids(csms, cp.station_id) == {CONNECTOR: [1, 2]}
    assert installed(csms, cp.station_id)[CONNECTOR][1] == replacement


# -- answers other than Accepted ----------------------------------------------------------


def test_profile_rejected_by_the_charge_point_is_not_installed(csms: CentralSystem, cp: ChargePoint) -> None:
    cp.handlers["SetChargingProfile"] = lambda p: {"status": "Rejected"}
    set_profile(csms, cp, CONNECTOR, profile(7), status="Rejected")
    assert installed(csms, cp.station_id) == {}


def test_profile_answered_with_a_callerror_exits_5_and_is_not_installed(csms: CentralSystem, cp: ChargePoint) -> None:
    cp.handlers["SetChargingProfile"] = lambda p: CallErrorReply("NotSupported", "no smart charging")
    body = profile(8)
    result = csms.ctl("set-profile", cp.station_id, "--connector", str(CONNECTOR), "--profile", json.dumps(body))
    assert result.code == 5, f"{result.stdout} {result.stderr}"
    assert result.json["error"]["code"] == "NotSupported"
    assert result.json["request"] == {"connectorId": CONNECTOR, "csChargingProfiles": body}
    assert cp.wait_call("SetChargingProfile") == {"connectorId": CONNECTOR, "csChargingProfiles": body}
    assert installed(csms, cp.station_id) == {}


# -- persistence and expiry ------------------------------------------------------------------


def installed_then_stopped(tmp_path, station_id: str, body: dict[str, Any]) -> str:
    """Install ``body`` on a central system of its own, stop that system; its database file."""
    first = CentralSystem(tmp_path).start()
    try:
        with ChargePoint(first.url, station_id, handlers=default_handlers(), connectors=CONNECTORS) as point:
            point.booted()
            set_profile(first, point, CONNECTOR, body)
    finally:
        first.stop()
    return first.db


def test_installed_profiles_survive_a_restart_of_the_central_system(tmp_path, station_id: str) -> None:
    body = profile(9)
    db = installed_then_stopped(tmp_path, station_id, body)

    second = CentralSystem(tmp_path, db=db).start()
    try:
        assert installed(second, station_id) == {CONNECTOR: [body]}
    finally:
        second.stop()


def test_profile_that_expires_while_the_central_system_is_down_is_removed_after_restart(tmp_path, station_id: str) -> None:
    valid_to = datetime.now(timezone.utc) + timedelta(seconds=2)
    body = profile(9, validTo=valid_to.isoformat(timespec="milliseconds").replace("+00:00", "Z"))
    db = installed_then_stopped(tmp_path, station_id, body)
    wait_for(lambda: datetime.now(timezone.utc) > valid_to, timeout=5.0, message="validTo to pass")

    second = CentralSystem(tmp_path, db=db).start()
    try:  # the charge point stays away: the stored timer alone must clean up
        wait_for(lambda: installed(second, station_id) == {}, timeout=10.0, interval=0.3,
                 message="the profile that expired during the downtime to leave the stack")
    finally:
        second.stop()


def test_profile_past_valid_to_is_removed_by_the_scheduler(csms: CentralSystem, cp: ChargePoint) -> None:
    body = profile(10, validTo=iso_in(seconds=3))
    set_profile(csms, cp, CONNECTOR, body)
    assert ids(csms, cp.station_id) == {CONNECTOR: [10]}
    wait_for(lambda: installed(csms, cp.station_id) == {}, timeout=15.0, interval=0.3,
             message="the expired profile to leave the stack")
