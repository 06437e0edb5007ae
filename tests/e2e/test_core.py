"""OCTT 1.6 Core cases for the central system, end to end.

Each test walks one OCTT CSMS case (spec/OCTT-CSMS-1.6.md §2): a simulated
charge point plays the test tool over a real WebSocket against a running
``run.py serve``, and the steps the central system initiates are sent with
``run.py ctl``. Every test asserts the tool's checks (statuses in the
central system's answers, the requests it sent) and, where the control script
can show it, the central system's own record of what happened.

Tags are global in the central system: each test provisions its own, with a
unique name of at most 20 characters (IdToken is a CiString20).
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect
from websockets.typing import Subprotocol

from tests.support.chargepoint import ChargePoint
from tests.support.octt import answered, charging, new_tag
from tests.support.system import CentralSystem

pytestmark = pytest.mark.e2e

CONNECTORS = 2

CONFIGURATION: list[dict[str, Any]] = [
    {"key": "HeartbeatInterval", "readonly": False, "value": "300"},
    {"key": "MeterValueSampleInterval", "readonly": False, "value": "0"},
    {"key": "NumberOfConnectors", "readonly": True, "value": str(CONNECTORS)},
    {"key": "SupportedFeatureProfiles", "readonly": True,
     "value": "Core,LocalAuthListManagement,SmartCharging"},
]


def get_configuration(request: dict) -> dict:
    """GetConfiguration.conf of the simulated charge point: all keys, or those asked for."""
    wanted = request.get("key") or []
    if not wanted:
        return {"configurationKey": CONFIGURATION}
    known = {k["key"]: k for k in CONFIGURATION}
    return {"configurationKey": [known[k] for k in wanted if k in known],
            "unknownKey": [k for k in wanted if k not in known]}


def default_handlers() -> dict:
    """How the simulated charge point answers the central system unless a test says otherwise."""
    return {
        "RemoteStartTransaction": lambda p: {"status": "Accepted"},
        "RemoteStopTransaction": lambda p: {"status": "Accepted"},
        "Reset": lambda p: {"status": "Accepted"},
        "UnlockConnector": lambda p: {"status": "Unlocked"},
        "GetConfiguration": get_configuration,
        "ChangeConfiguration": lambda p: {"status": "Accepted"},
        "ClearCache": lambda p: {"status": "Accepted"},
        "ChangeAvailability": lambda p: {"status": "Accepted"},
    }


@pytest.fixture
def cp_handlers() -> dict[str, Any]:
    return default_handlers()


# -- helpers -----------------------------------------------------------------------




def unknown_tag() -> str:
    """An idTag the central system has never been told about."""
    return f"U{uuid.uuid4().hex[:12]}"


def iso_ago(**delta: float) -> str:
    moment = datetime.now(timezone.utc) - timedelta(**delta)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def same_instant(a: str, b: str) -> bool:
    return datetime.fromisoformat(a) == datetime.fromisoformat(b)






def connectors(csms: CentralSystem, station: str) -> dict[int, tuple[str, str]]:
    shown = csms.ctl_ok("station", "show", station)
    return {c["connector_id"]: (c["status"], c["error_code"]) for c in shown["connectors"]}


def configuration(csms: CentralSystem, station: str) -> dict[str, Any]:
    shown = csms.ctl_ok("station", "show", station)
    return {c["key"]: c for c in shown["configuration"]}


def transaction(csms: CentralSystem, tx_id: int) -> dict:
    return csms.ctl_ok("tx", "show", str(tx_id))


def transactions(csms: CentralSystem, station: str, *, active: bool = False) -> list[dict]:
    return csms.ctl_ok("tx", "list", "--station", station, *(["--active"] if active else []))


def all_available(count: int = CONNECTORS) -> dict[int, tuple[str, str]]:
    return {c: ("Available", "NoError") for c in range(count + 1)}


# -- Core cases -------------------------------------------------------------------


def test_tc_001_cold_boot_is_accepted_with_a_heartbeat_interval(csms: CentralSystem, station_id: str) -> None:
    with ChargePoint(csms.url, station_id, connectors=CONNECTORS) as point:
        boot = point.call("BootNotification", {"chargePointVendor": "OcttVendor",
                                               "chargePointModel": "OcttModel"})
        assert boot["status"] == "Accepted"
        assert isinstance(boot["interval"], int) and boot["interval"] > 0
        datetime.fromisoformat(boot["currentTime"])
        for connector in range(CONNECTORS + 1):
            assert point.status(connector, "Available") == {}
        heartbeat = point.call("Heartbeat")
        assert datetime.fromisoformat(heartbeat["currentTime"]).tzinfo is not None

    shown = csms.ctl_ok("station", "show", station_id)
    assert shown["station"]["last_boot_status"] == "Accepted"
    assert (shown["station"]["vendor"], shown["station"]["model"]) == ("OcttVendor", "OcttModel")
    assert shown["station"]["ever_accepted"] is True
    assert connectors(csms, station_id) == all_available()


def test_tc_003_regular_charging_session_plugin_first_is_accepted(csms: CentralSystem, cp: ChargePoint) -> None:
    tag = new_tag(csms)
    cp.status(1, "Preparing")
    assert cp.authorize(tag)["status"] == "Accepted"
    started = cp.start(1, tag, meter_start=250)
    assert started["idTagInfo"]["status"] == "Accepted"
    assert started["transactionId"] > 0
    cp.status(1, "Charging")

    tx = transaction(csms, started["transactionId"])
    assert (tx["station_id"], tx["connector_id"], tx["id_tag"]) == (cp.station_id, 1, tag)
    assert (tx["start_status"], tx["meter_start"], tx["active"]) == ("Accepted", 250, True)
    assert connectors(csms, cp.station_id)[1] == ("Charging", "NoError")


def test_tc_004_1_regular_charging_session_identification_first_is_accepted(csms: CentralSystem, cp: ChargePoint) -> None:
    tag = new_tag(csms)
    tx_id = charging(cp, tag, connector=2, meter_start=40)

    tx = transaction(csms, tx_id)
    assert (tx["connector_id"], tx["id_tag"], tx["start_status"], tx["meter_start"]) == (2, tag, "Accepted", 40)
    assert [t["id"] for t in transactions(csms, cp.station_id, active=True)] == [tx_id]
    assert connectors(csms, cp.station_id)[2] == ("Charging", "NoError")


def test_tc_004_2_authorized_session_that_times_out_leaves_no_transaction(csms: CentralSystem, cp: ChargePoint) -> None:
    tag = new_tag(csms)
    assert cp.authorize(tag)["status"] == "Accepted"
    cp.status(1, "Preparing")
    cp.status(1, "Available")  # ConnectionTimeOut expired without a plug-in

    assert transactions(csms, cp.station_id) == []
    assert connectors(csms, cp.station_id) == all_available()


def test_tc_005_1_ev_side_disconnect_stops_the_transaction_with_reason_ev_disconnected(csms: CentralSystem, cp: ChargePoint) -> None:
    tag = new_tag(csms)
    tx_id = charging(cp, tag, meter_start=1000)
    cp.status(1, "SuspendedEV")
    assert cp.stop(tx_id, 3500, "EVDisconnected") == {}
    cp.status(1, "Finishing")
    cp.status(1, "Available")

    tx = transaction(csms, tx_id)
    assert (tx["meter_start"], tx["meter_stop"], tx["energy_wh"]) == (1000, 3500, 2500)
    assert (tx["stop_reason"], tx["active"]) == ("EVDisconnected", False)
    assert connectors(csms, cp.station_id)[1] == ("Available", "NoError")


def test_tc_007_start_transaction_with_a_cached_id_is_verified_and_accepted(csms: CentralSystem, cp: ChargePoint) -> None:
    tag = new_tag(csms)
    cp.status(1, "Preparing")
    started = cp.start(1, tag, meter_start=10)  # no Authorize: the id came from the cache
    assert started["idTagInfo"]["status"] == "Accepted"
    assert started["transactionId"] > 0
    cp.status(1, "Charging")
    assert transaction(csms, started["transactionId"])["start_status"] == "Accepted"

    # The central system verifies the idTag itself: a cached id blocked since is answered Blocked.
    blocked = new_tag(csms, "Blocked")
    cp.status(2, "Preparing")
    refused = cp.start(2, blocked, meter_start=10)
    assert refused["idTagInfo"]["status"] == "Blocked"
    assert transaction(csms, refused["transactionId"])["start_status"] == "Blocked"


def test_tc_010_remote_start_with_cable_plugged_in_first_becomes_a_transaction(csms: CentralSystem, cp: ChargePoint) -> None:
    tag = new_tag(csms)
    cp.status(1, "Preparing")
    result = csms.ctl("remote-start", cp.station_id, "--id-tag", tag, "--connector", "1")
    answered(result, cp.station_id, "RemoteStartTransaction", {"idTag": tag, "connectorId": 1},
             {"status": "Accepted"})
    assert cp.wait_call("RemoteStartTransaction") == {"idTag": tag, "connectorId": 1}

    assert cp.authorize(tag)["status"] == "Accepted"
    started = cp.start(1, tag, meter_start=0)
    assert started["idTagInfo"]["status"] == "Accepted"
    cp.status(1, "Charging")
    assert transaction(csms, started["transactionId"])["active"] is True


def test_tc_011_1_remote_start_first_then_plug_in_becomes_a_transaction(csms: CentralSystem, cp: ChargePoint) -> None:
    tag = new_tag(csms)
    result = csms.ctl("remote-start", cp.station_id, "--id-tag", tag)
    answered(result, cp.station_id, "RemoteStartTransaction", {"idTag": tag}, {"status": "Accepted"})
    assert cp.wait_call("RemoteStartTransaction") == {"idTag": tag}

    assert cp.authorize(tag)["status"] == "Accepted"
    cp.status(1, "Preparing")
    started = cp.start(1, tag, meter_start=5)
    assert started["idTagInfo"]["status"] == "Accepted"
    cp.status(1, "Charging")
    tx = transaction(csms, started["transactionId"])
    assert (tx["id_tag"], tx["connector_id"], tx["active"]) == (tag, 1, True)


def test_tc_011_2_remote_start_that_times_out_leaves_no_transaction(csms: CentralSystem, cp: ChargePoint) -> None:
    tag = new_tag(csms)
    result = csms.ctl("remote-start", cp.station_id, "--id-tag", tag, "--connector", "1")
    answered(result, cp.station_id, "RemoteStartTransaction", {"idTag": tag, "connectorId": 1},
             {"status": "Accepted"})
    assert cp.wait_call("RemoteStartTransaction") == {"idTag": tag, "connectorId": 1}
    assert cp.authorize(tag)["status"] == "Accepted"
    cp.status(1, "Preparing")
    cp.status(1, "Available")  # connection timeout: the EV never got plugged in

    assert transactions(csms, cp.station_id) == []
    assert connectors(csms, cp.station_id) == all_available()


def test_tc_012_remote_stop_ends_the_transaction_with_reason_remote(csms: CentralSystem, cp: ChargePoint) -> None:
    tag = new_tag(csms)
    tx_id = charging(cp, tag, meter_start=100)
    result = csms.ctl("remote-stop", cp.station_id, "--transaction", str(tx_id))
    answered(result, cp.station_id, "RemoteStopTransaction", {"transactionId": tx_id},
             {"status": "Accepted"})
    assert cp.wait_call("RemoteStopTransaction") == {"transactionId": tx_id}
    assert cp.stop(tx_id, 700, "Remote") == {}
    cp.status(1, "Finishing")
    cp.status(1, "Available")

    tx = transaction(csms, tx_id)
    assert (tx["meter_start"], tx["meter_stop"], tx["energy_wh"], tx["stop_reason"]) == (100, 700, 600, "Remote")
    assert tx["active"] is False
    assert transactions(csms, cp.station_id, active=True) == []


def reset_then_reboot(csms: CentralSystem, cp: ChargePoint, reset_type: str) -> None:
    """Reset is sent with the type asked for, then the rebooted charge point is Accepted again."""
    result = csms.ctl("reset", cp.station_id, "--type", reset_type)
    answered(result, cp.station_id, "Reset", {"type": reset_type}, {"status": "Accepted"})
    assert cp.wait_call("Reset") == {"type": reset_type}

    cp.close()  # the charge point reboots
    cp.connect()
    boot = cp.boot()
    assert boot["status"] == "Accepted" and boot["interval"] > 0
    for connector in range(CONNECTORS + 1):
        cp.status(connector, "Available")

    shown = csms.ctl_ok("station", "show", cp.station_id)
    assert (shown["station"]["connected"], shown["station"]["last_boot_status"]) == (True, "Accepted")
    assert connectors(csms, cp.station_id) == all_available()


def test_tc_013_hard_reset_is_sent_and_the_rebooted_charge_point_is_accepted(csms: CentralSystem, cp: ChargePoint) -> None:
    reset_then_reboot(csms, cp, "Hard")


def test_tc_014_soft_reset_is_sent_and_the_rebooted_charge_point_is_accepted(csms: CentralSystem, cp: ChargePoint) -> None:
    reset_then_reboot(csms, cp, "Soft")


def test_tc_017_1_unlock_connector_without_session_is_answered_unlocked(csms: CentralSystem, cp: ChargePoint) -> None:
    result = csms.ctl("unlock", cp.station_id, "--connector", "1")
    answered(result, cp.station_id, "UnlockConnector", {"connectorId": 1}, {"status": "Unlocked"})
    assert cp.wait_call("UnlockConnector") == {"connectorId": 1}


def test_tc_017_2_unlock_connector_on_a_fixed_cable_reports_not_supported(csms: CentralSystem, cp: ChargePoint) -> None:
    cp.handlers["UnlockConnector"] = lambda p: {"status": "NotSupported"}
    result = csms.ctl("unlock", cp.station_id, "--connector", "1")
    answered(result, cp.station_id, "UnlockConnector", {"connectorId": 1}, {"status": "NotSupported"})
    assert cp.wait_call("UnlockConnector") == {"connectorId": 1}


def test_tc_018_1_unlock_connector_during_a_session_stops_it_with_reason_unlock_command(csms: CentralSystem, cp: ChargePoint) -> None:
    tag = new_tag(csms)
    tx_id = charging(cp, tag, meter_start=20)
    result = csms.ctl("unlock", cp.station_id, "--connector", "1")
    answered(result, cp.station_id, "UnlockConnector", {"connectorId": 1}, {"status": "Unlocked"})
    assert cp.wait_call("UnlockConnector") == {"connectorId": 1}
    cp.status(1, "Finishing")
    assert cp.stop(tx_id, 520, "UnlockCommand") == {}
    cp.status(1, "Available")

    tx = transaction(csms, tx_id)
    assert (tx["meter_stop"], tx["energy_wh"], tx["stop_reason"], tx["active"]) == (520, 500, "UnlockCommand", False)


def test_tc_019_1_get_configuration_without_key_retrieves_and_remembers_all_keys(csms: CentralSystem, cp: ChargePoint) -> None:
    result = csms.ctl("get-config", cp.station_id)
    answered(result, cp.station_id, "GetConfiguration", {}, {"configurationKey": CONFIGURATION})
    request = cp.wait_call("GetConfiguration")
    assert request.get("key", []) == []  # tool check: "The key is <Empty>"

    remembered = configuration(csms, cp.station_id)
    assert set(remembered) == {k["key"] for k in CONFIGURATION}
    for key in CONFIGURATION:
        assert (remembered[key["key"]]["value"], remembered[key["key"]]["readonly"]) == (key["value"], key["readonly"])


def test_tc_019_2_get_configuration_asks_for_supported_feature_profiles(csms: CentralSystem, cp: ChargePoint) -> None:
    result = csms.ctl("get-config", cp.station_id, "--key", "SupportedFeatureProfiles")
    profiles = next(k for k in CONFIGURATION if k["key"] == "SupportedFeatureProfiles")
    answered(result, cp.station_id, "GetConfiguration", {"key": ["SupportedFeatureProfiles"]},
             {"configurationKey": [profiles], "unknownKey": []})
    assert cp.wait_call("GetConfiguration") == {"key": ["SupportedFeatureProfiles"]}
    assert configuration(csms, cp.station_id)["SupportedFeatureProfiles"]["value"] == profiles["value"]


def test_tc_021_change_configuration_sets_meter_value_sample_interval_to_60(csms: CentralSystem, cp: ChargePoint) -> None:
    result = csms.ctl("change-config", cp.station_id, "MeterValueSampleInterval", "60")
    request = {"key": "MeterValueSampleInterval", "value": "60"}
    answered(result, cp.station_id, "ChangeConfiguration", request, {"status": "Accepted"})
    assert cp.wait_call("ChangeConfiguration") == request
    assert configuration(csms, cp.station_id)["MeterValueSampleInterval"]["value"] == "60"


def test_tc_023_1_authorize_with_an_unknown_tag_is_answered_invalid(csms: CentralSystem, cp: ChargePoint) -> None:
    assert cp.authorize(unknown_tag())["status"] == "Invalid"


def test_tc_023_2_authorize_with_an_expired_tag_is_answered_expired(csms: CentralSystem, cp: ChargePoint) -> None:
    assert cp.authorize(new_tag(csms, "Expired"))["status"] == "Expired"
    # An Accepted tag whose expiry date has passed is Expired as well.
    lapsed = new_tag(csms, "Accepted", expiry=iso_ago(days=1))
    info = cp.authorize(lapsed)
    assert info["status"] == "Expired"
    assert datetime.fromisoformat(info["expiryDate"]) < datetime.now(timezone.utc)


def test_tc_023_3_authorize_with_a_blocked_tag_is_answered_blocked(csms: CentralSystem, cp: ChargePoint) -> None:
    assert cp.authorize(new_tag(csms, "Blocked"))["status"] == "Blocked"


def test_tc_024_connector_lock_failure_is_recorded_without_a_transaction(csms: CentralSystem, cp: ChargePoint) -> None:
    tag = new_tag(csms)
    assert cp.authorize(tag)["status"] == "Accepted"
    cp.status(1, "Preparing")
    assert cp.status(1, "Faulted", "ConnectorLockFailure") == {}

    assert connectors(csms, cp.station_id)[1] == ("Faulted", "ConnectorLockFailure")
    assert transactions(csms, cp.station_id) == []


def test_tc_026_remote_start_rejected_by_the_charge_point_is_reported_with_exit_0(csms: CentralSystem, cp: ChargePoint) -> None:
    cp.handlers["RemoteStartTransaction"] = lambda p: {"status": "Rejected"}
    tag = new_tag(csms)
    result = csms.ctl("remote-start", cp.station_id, "--id-tag", tag, "--connector", "1")
    answered(result, cp.station_id, "RemoteStartTransaction", {"idTag": tag, "connectorId": 1},
             {"status": "Rejected"})
    assert cp.wait_call("RemoteStartTransaction") == {"idTag": tag, "connectorId": 1}
    assert transactions(csms, cp.station_id) == []


def test_tc_028_remote_stop_of_an_unknown_transaction_rejected_is_reported_with_exit_0(csms: CentralSystem, cp: ChargePoint) -> None:
    tx_id = charging(cp, new_tag(csms))
    cp.handlers["RemoteStopTransaction"] = (
        lambda p: {"status": "Accepted" if p["transactionId"] == tx_id else "Rejected"})
    unknown = tx_id + 1_000_000
    # The tool's step sends an id the central system does not know: an operator says --force (issue 12).
    assert csms.ctl("remote-stop", cp.station_id, "--transaction", str(unknown)).code == 2
    result = csms.ctl("remote-stop", cp.station_id, "--transaction", str(unknown), "--force")
    answered(result, cp.station_id, "RemoteStopTransaction", {"transactionId": unknown},
             {"status": "Rejected"})
    assert cp.wait_call("RemoteStopTransaction") == {"transactionId": unknown}
    assert transaction(csms, tx_id)["active"] is True


def test_tc_030_unlock_failure_is_reported_with_exit_0(csms: CentralSystem, cp: ChargePoint) -> None:
    cp.handlers["UnlockConnector"] = lambda p: {"status": "UnlockFailed"}
    result = csms.ctl("unlock", cp.station_id, "--connector", "2")
    answered(result, cp.station_id, "UnlockConnector", {"connectorId": 2}, {"status": "UnlockFailed"})
    assert cp.wait_call("UnlockConnector") == {"connectorId": 2}


def test_tc_031_unlock_of_an_unknown_connector_is_reported_not_supported(csms: CentralSystem, cp: ChargePoint) -> None:
    cp.handlers["UnlockConnector"] = (
        lambda p: {"status": "Unlocked" if p["connectorId"] <= CONNECTORS else "NotSupported"})
    unknown = str(CONNECTORS + 1)
    result = csms.ctl("unlock", cp.station_id, "--connector", unknown)
    answered(result, cp.station_id, "UnlockConnector", {"connectorId": CONNECTORS + 1},
             {"status": "NotSupported"})
    assert cp.wait_call("UnlockConnector") == {"connectorId": CONNECTORS + 1}


def test_tc_032_1_stop_transaction_after_a_power_failure_reboot_is_stored_with_reason_power_loss(csms: CentralSystem, cp: ChargePoint) -> None:
    tag = new_tag(csms)
    tx_id = charging(cp, tag, meter_start=3000)
    cp.close()  # power cut: the connection drops without a stop
    cp.connect()
    assert cp.boot()["status"] == "Accepted"
    cp.status(0, "Available")
    cp.status(1, "Finishing")
    cp.status(2, "Available")
    assert cp.stop(tx_id, 3900, "PowerLoss") == {}

    tx = transaction(csms, tx_id)
    assert (tx["meter_start"], tx["meter_stop"], tx["energy_wh"]) == (3000, 3900, 900)
    assert (tx["stop_reason"], tx["active"]) == ("PowerLoss", False)
    assert connectors(csms, cp.station_id)[1] == ("Finishing", "NoError")


def test_tc_037_1_offline_start_with_a_past_timestamp_is_accepted(csms: CentralSystem, cp: ChargePoint) -> None:
    tag = new_tag(csms)
    started_at = iso_ago(hours=1)
    started = cp.start(1, tag, meter_start=77, timestamp=started_at)
    assert started["idTagInfo"]["status"] == "Accepted"
    assert started["transactionId"] > 0
    cp.status(1, "Charging")

    tx = transaction(csms, started["transactionId"])
    assert (tx["start_status"], tx["meter_start"], tx["active"]) == ("Accepted", 77, True)
    assert same_instant(tx["start_timestamp"], started_at)


def test_tc_037_3_offline_start_with_an_invalid_tag_gets_a_transaction_id_and_is_deauthorized(csms: CentralSystem, cp: ChargePoint) -> None:
    tag = unknown_tag()
    started = cp.start(1, tag, meter_start=0, timestamp=iso_ago(minutes=30))
    assert started["idTagInfo"]["status"] == "Invalid"
    assert isinstance(started["transactionId"], int) and started["transactionId"] > 0
    cp.status(1, "Charging")
    assert cp.stop(started["transactionId"], 15, "DeAuthorized") == {}
    cp.status(1, "Finishing")

    tx = transaction(csms, started["transactionId"])
    assert (tx["start_status"], tx["stop_reason"], tx["meter_stop"], tx["active"]) == ("Invalid", "DeAuthorized", 15, False)


def test_tc_039_offline_transaction_with_past_timestamps_is_stored_with_reason_local(csms: CentralSystem, cp: ChargePoint) -> None:
    tag = new_tag(csms)
    started_at, stopped_at = iso_ago(hours=2), iso_ago(hours=1)
    started = cp.start(2, tag, meter_start=500, timestamp=started_at)
    assert started["idTagInfo"]["status"] == "Accepted"
    assert cp.stop(started["transactionId"], 4500, "Local", timestamp=stopped_at) == {}

    tx = transaction(csms, started["transactionId"])
    assert (tx["meter_start"], tx["meter_stop"], tx["energy_wh"]) == (500, 4500, 4000)
    assert (tx["stop_reason"], tx["active"]) == ("Local", False)
    assert same_instant(tx["start_timestamp"], started_at)
    assert same_instant(tx["stop_timestamp"], stopped_at)


def test_tc_040_1_change_configuration_of_an_unsupported_key_reports_not_supported(csms: CentralSystem, cp: ChargePoint) -> None:
    cp.handlers["ChangeConfiguration"] = (
        lambda p: {"status": "Accepted" if p["key"] in {k["key"] for k in CONFIGURATION} else "NotSupported"})
    request = {"key": "OcttVendorSpecificKey", "value": "1"}
    result = csms.ctl("change-config", cp.station_id, request["key"], request["value"])
    answered(result, cp.station_id, "ChangeConfiguration", request, {"status": "NotSupported"})
    assert cp.wait_call("ChangeConfiguration") == request
    assert "OcttVendorSpecificKey" not in configuration(csms, cp.station_id)


def test_tc_040_2_change_configuration_to_an_invalid_value_reports_rejected(csms: CentralSystem, cp: ChargePoint) -> None:
    cp.handlers["ChangeConfiguration"] = (
        lambda p: {"status": "Rejected" if p["value"].startswith("-") else "Accepted"})
    request = {"key": "MeterValueSampleInterval", "value": "-1"}
    result = csms.ctl("change-config", cp.station_id, request["key"], request["value"])
    answered(result, cp.station_id, "ChangeConfiguration", request, {"status": "Rejected"})
    assert cp.wait_call("ChangeConfiguration") == request
    remembered = configuration(csms, cp.station_id).get("MeterValueSampleInterval")
    assert remembered is None or remembered["value"] != "-1"


def test_tc_061_clear_cache_is_sent_and_accepted(csms: CentralSystem, cp: ChargePoint) -> None:
    result = csms.ctl("clear-cache", cp.station_id)
    answered(result, cp.station_id, "ClearCache", {}, {"status": "Accepted"})
    assert cp.wait_call("ClearCache") == {}


def test_tc_064_data_transfer_for_an_unsupported_vendor_is_answered_unknown_vendor_id(csms: CentralSystem, cp: ChargePoint) -> None:
    reply = cp.call("DataTransfer", {"vendorId": "com.octt.unsupported", "messageId": "Ping",
                                     "data": "hello"})
    assert reply == {"status": "UnknownVendorId"}


def test_tc_088_websocket_subprotocol_is_only_agreed_for_ocpp16(csms: CentralSystem, station_id: str) -> None:
    url = f"{csms.url}/{station_id}"
    # Nothing the central system supports is offered, or nothing at all: refused with
    # HTTP 400 before any upgrade (OCTT TC_088, spec/OCTT-CSMS-1.6.md §11.1 #3).
    for offers in ([Subprotocol("ocpp0.1")], None):
        with pytest.raises(InvalidStatus) as refused:
            connect(url, subprotocols=offers, open_timeout=10, **csms.client_options())
        assert refused.value.response.status_code == 400

    # ocpp1.6 among the offers: exactly that value is returned, and OCPP flows.
    offered = [Subprotocol("ocpp0.1"), Subprotocol("ocpp1.6")]
    with connect(url, subprotocols=offered, open_timeout=10, **csms.client_options()) as ws:
        assert ws.response is not None
        assert ws.response.headers["Sec-WebSocket-Protocol"] == "ocpp1.6"
        assert ws.subprotocol == "ocpp1.6"
        ws.send(json.dumps([2, "boot-1", "BootNotification",
                            {"chargePointVendor": "V", "chargePointModel": "M"}]))
        frame = json.loads(ws.recv(timeout=10))
        assert frame[:2] == [3, "boot-1"] and frame[2]["status"] == "Accepted"
