"""OCTT 1.6 Firmware, Local List, Reservation and Remote Trigger cases, end to end.

Each test walks one OCTT CSMS case (spec/OCTT-CSMS-1.6.md §3-§6) or one of
the issue's acceptance checks: a simulated charge point plays the test tool
over a real WebSocket against a running ``run.py serve``, and the steps the
central system initiates are sent with ``run.py ctl``. Every test asserts the
tool's checks (the requests the central system sent, its answers) and the
central system's own record as ``station show`` / ``reservation list`` show it.

Tags are global in the central system: each test provisions its own, with a
unique name of at most 20 characters (IdToken is a CiString20). The tag store
is shared by the module, so the local-list tests compare Differential updates
(which carry only changes) exactly, and Full updates only for what they hold.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from storage import Store
from tests.support.chargepoint import ChargePoint, now_iso
from tests.support.octt import answered, new_tag, nothing_received
from tests.support.system import CentralSystem, wait_for

pytestmark = pytest.mark.e2e

CONNECTORS = 2
FIRMWARE_URL = "https://firmware.example.com/cp-2.0.0.bin"
DIAGNOSTICS_URL = "ftp://diagnostics.example.com/upload/"


# -- the simulated charge point -------------------------------------------------------


def default_handlers() -> dict[str, Callable[[dict], Any]]:
    """How the simulated charge point answers unless a test says otherwise.

    It keeps the reservations it accepted, so CancelReservation is Accepted
    for a reservationId it holds and Rejected otherwise (OCPP 1.6 §5.1), and
    it rejects a TriggerMessage for a connector it does not have.
    """
    held: set[int] = set()

    def reserve_now(request: dict) -> dict:
        held.add(request["reservationId"])
        return {"status": "Accepted"}

    def cancel_reservation(request: dict) -> dict:
        if request["reservationId"] in held:
            held.discard(request["reservationId"])
            return {"status": "Accepted"}
        return {"status": "Rejected"}

    def trigger_message(request: dict) -> dict:
        return {"status": "Rejected" if request.get("connectorId", 0) > CONNECTORS else "Accepted"}

    return {
        "UpdateFirmware": lambda p: {},
        "GetDiagnostics": lambda p: {"fileName": "diagnostics-0001.zip"},
        "GetLocalListVersion": lambda p: {"listVersion": 0},
        "SendLocalList": lambda p: {"status": "Accepted"},
        "ReserveNow": reserve_now,
        "CancelReservation": cancel_reservation,
        "ChangeAvailability": lambda p: {"status": "Accepted"},
        "TriggerMessage": trigger_message,
    }


def answers(*statuses: str) -> Callable[[dict], dict]:
    """A handler answering ``{"status": s}`` with each of ``statuses`` in turn, then the last one."""
    remaining = list(statuses)

    def handler(request: dict) -> dict:
        return {"status": remaining.pop(0) if len(remaining) > 1 else remaining[0]}

    return handler


@pytest.fixture
def cp_handlers() -> dict[str, Any]:
    return default_handlers()


# -- helpers ------------------------------------------------------------------------------








def shown(csms: CentralSystem, station: str) -> dict:
    return csms.ctl_ok("station", "show", station)


def firmware(csms: CentralSystem, station: str) -> dict:
    return shown(csms, station)["firmware"]


def local_list(csms: CentralSystem, station: str) -> dict:
    return shown(csms, station)["local_list"]


def find_reservation(csms: CentralSystem, station: str, reservation_id: int) -> dict | None:
    """The ``reservation list`` row of ``reservation_id``, or None."""
    for row in csms.ctl_ok("reservation", "list", "--station", station):
        if row["id"] == reservation_id:
            return dict(row)
    return None


def reservation(csms: CentralSystem, station: str, reservation_id: int) -> dict:
    found = find_reservation(csms, station, reservation_id)
    assert found is not None, f"reservation {reservation_id} is not listed"
    return found


def active_reservation_ids(csms: CentralSystem, station: str) -> list[int]:
    return [r["id"] for r in shown(csms, station)["reservations"]]


def connector_status(csms: CentralSystem, station: str, connector: int) -> str:
    return {c["connector_id"]: c["status"] for c in shown(csms, station)["connectors"]}[connector]


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def reserve(csms: CentralSystem, cp: ChargePoint, *args: str, expires_in: int = 600) -> tuple[dict, str]:
    """ReserveNow through ``ctl reserve``; the request the charge point got, and its answer status."""
    result = csms.ctl("reserve", cp.station_id, *args, "--expires-in", str(expires_in))
    request, response = answered(result, cp.station_id, "ReserveNow")
    assert cp.wait_call("ReserveNow") == request
    assert isinstance(request["reservationId"], int) and request["reservationId"] > 0
    return request, response["status"]


def send_local_list(csms: CentralSystem, cp: ChargePoint, kind: str, *extra: str) -> tuple[dict, dict]:
    return answered(csms.ctl("send-local-list", cp.station_id, kind, *extra), cp.station_id, "SendLocalList")


def initial_full_list(csms: CentralSystem, cp: ChargePoint) -> int:
    """Memory state "initial list set with updateType Full"; returns its listVersion."""
    request, response = send_local_list(csms, cp, "--full")
    assert response == {"status": "Accepted"}
    assert cp.wait_call("SendLocalList") == request
    assert request["updateType"] == "Full"
    return request["listVersion"]


def send_fsn(cp: ChargePoint, status: str) -> None:
    assert cp.call("FirmwareStatusNotification", {"status": status}) == {}


def send_dsn(cp: ChargePoint, status: str) -> None:
    assert cp.call("DiagnosticsStatusNotification", {"status": status}) == {}


def firmware_statuses(csms: CentralSystem, station: str) -> list[str]:
    """The FirmwareStatusNotification statuses recorded, oldest first."""
    return [e["status"] for e in reversed(shown(csms, station)["events"]) if e["kind"] == "firmware"]


# -- Firmware Management (§3) ----------------------------------------------------------------


def update_firmware_until_reboot(csms: CentralSystem, cp: ChargePoint) -> None:
    """UpdateFirmware, then Downloading, Downloaded, Unavailable, Installing and the reboot
    (a new connection, BootNotification Accepted with the new firmware, every connector Available)."""
    result = csms.ctl("update-firmware", cp.station_id, "--location", FIRMWARE_URL,
                      "--retries", "2", "--retry-interval", "30")
    request, response = answered(result, cp.station_id, "UpdateFirmware")
    assert response == {}
    assert cp.wait_call("UpdateFirmware") == request
    # Tool check: the location from the test data; retrieveDate is schema-required,
    # retries/retryInterval are integers (JSON errata 2.4).
    assert request["location"] == FIRMWARE_URL
    assert parse_time(request["retrieveDate"]).tzinfo is not None
    assert (request["retries"], request["retryInterval"]) == (2, 30)
    state = firmware(csms, cp.station_id)
    assert state["update_in_progress"] is True
    assert state["last_firmware_request"]["status"] == "Accepted"
    assert state["last_firmware_request"]["detail"]["location"] == FIRMWARE_URL

    send_fsn(cp, "Downloading")
    send_fsn(cp, "Downloaded")
    for connector in range(CONNECTORS + 1):
        assert cp.status(connector, "Unavailable") == {}
    send_fsn(cp, "Installing")

    cp.close()  # the charge point reboots into the new firmware
    cp.connect()
    during = firmware(csms, cp.station_id)
    assert (during["last_firmware_status"], during["update_in_progress"]) == ("Installing", True)
    boot = cp.call("BootNotification", {"chargePointVendor": "TestVendor", "chargePointModel": "TestModel",
                                        "firmwareVersion": "2.0.0"})
    assert boot["status"] == "Accepted"
    assert firmware(csms, cp.station_id)["update_in_progress"] is True  # a boot does not end the update
    for connector in range(CONNECTORS + 1):
        assert cp.status(connector, "Available") == {}


def test_tc_044_1_firmware_update_is_downloaded_installed_and_recorded(csms: CentralSystem, cp: ChargePoint) -> None:
    update_firmware_until_reboot(csms, cp)
    send_fsn(cp, "Installed")

    state = firmware(csms, cp.station_id)
    assert (state["last_firmware_status"], state["update_in_progress"]) == ("Installed", False)
    assert state["firmware_version"] == "2.0.0"
    assert firmware_statuses(csms, cp.station_id) == ["Downloading", "Downloaded", "Installing", "Installed"]


def test_tc_044_2_firmware_download_failed_ends_the_update(csms: CentralSystem, cp: ChargePoint) -> None:
    request, response = answered(csms.ctl("update-firmware", cp.station_id, "--location", FIRMWARE_URL),
                                 cp.station_id, "UpdateFirmware")
    assert response == {}
    assert cp.wait_call("UpdateFirmware") == request
    send_fsn(cp, "Downloading")
    assert firmware(csms, cp.station_id)["update_in_progress"] is True
    send_fsn(cp, "DownloadFailed")

    state = firmware(csms, cp.station_id)
    assert (state["last_firmware_status"], state["update_in_progress"]) == ("DownloadFailed", False)
    assert firmware_statuses(csms, cp.station_id) == ["Downloading", "DownloadFailed"]


def test_tc_044_3_firmware_installation_failed_after_the_reboot_ends_the_update(csms: CentralSystem, cp: ChargePoint) -> None:
    update_firmware_until_reboot(csms, cp)
    send_fsn(cp, "InstallationFailed")

    state = firmware(csms, cp.station_id)
    assert (state["last_firmware_status"], state["update_in_progress"]) == ("InstallationFailed", False)
    assert firmware_statuses(csms, cp.station_id) == ["Downloading", "Downloaded", "Installing", "InstallationFailed"]


def get_diagnostics(csms: CentralSystem, cp: ChargePoint) -> None:
    result = csms.ctl("get-diagnostics", cp.station_id, "--location", DIAGNOSTICS_URL)
    request, response = answered(result, cp.station_id, "GetDiagnostics")
    assert request == {"location": DIAGNOSTICS_URL}
    assert response == {"fileName": "diagnostics-0001.zip"}
    assert cp.wait_call("GetDiagnostics") == request
    state = firmware(csms, cp.station_id)
    assert state["last_diagnostics_request"]["detail"]["fileName"] == "diagnostics-0001.zip"
    assert state["upload_in_progress"] is True
    send_dsn(cp, "Uploading")
    assert firmware(csms, cp.station_id)["upload_in_progress"] is True


def test_tc_045_1_get_diagnostics_records_the_file_name_and_the_upload(csms: CentralSystem, cp: ChargePoint) -> None:
    get_diagnostics(csms, cp)
    send_dsn(cp, "Uploaded")
    state = firmware(csms, cp.station_id)
    assert (state["last_diagnostics_status"], state["upload_in_progress"]) == ("Uploaded", False)


def test_tc_045_2_get_diagnostics_upload_failed_ends_the_upload(csms: CentralSystem, cp: ChargePoint) -> None:
    get_diagnostics(csms, cp)
    send_dsn(cp, "UploadFailed")
    state = firmware(csms, cp.station_id)
    assert (state["last_diagnostics_status"], state["upload_in_progress"]) == ("UploadFailed", False)


# -- Local Authorization List Management (§4) --------------------------------------------------


def test_tc_042_1_local_list_version_minus_one_is_recorded_as_not_supported(csms: CentralSystem, cp: ChargePoint) -> None:
    cp.handlers["GetLocalListVersion"] = lambda p: {"listVersion": -1}
    request, response = answered(csms.ctl("local-list-version", cp.station_id), cp.station_id, "GetLocalListVersion")
    assert (request, response) == ({}, {"listVersion": -1})
    assert cp.wait_call("GetLocalListVersion") == {}
    assert local_list(csms, cp.station_id)["reported_version"] == -1


def test_tc_042_2_local_list_version_zero_is_recorded_as_empty_and_never_sent_as_a_version(csms: CentralSystem, cp: ChargePoint) -> None:
    new_tag(csms)
    request, response = answered(csms.ctl("local-list-version", cp.station_id), cp.station_id, "GetLocalListVersion")
    assert response == {"listVersion": 0}
    assert cp.wait_call("GetLocalListVersion") == request == {}
    state = local_list(csms, cp.station_id)
    assert (state["reported_version"], state["entries"]) == (0, {})
    # Errata 3.52: listVersion 0 and -1 are reserved; the first list sent is version 1 or more.
    assert initial_full_list(csms, cp) >= 1


def test_tc_043_1_send_local_list_not_supported_is_reported_with_exit_0(csms: CentralSystem, cp: ChargePoint) -> None:
    new_tag(csms)
    cp.handlers["SendLocalList"] = lambda p: {"status": "NotSupported"}
    request, response = send_local_list(csms, cp, "--full")
    assert response == {"status": "NotSupported"}
    assert cp.wait_call("SendLocalList") == request
    assert request["updateType"] == "Full"  # tool check
    assert nothing_received(cp)
    state = local_list(csms, cp.station_id)
    assert (state["last_status"], state["version"], state["entries"]) == ("NotSupported", 0, {})


def test_tc_043_3_send_local_list_full_answered_failed_is_recorded_and_not_repeated(csms: CentralSystem, cp: ChargePoint) -> None:
    new_tag(csms)
    cp.handlers["SendLocalList"] = lambda p: {"status": "Failed"}
    request, response = send_local_list(csms, cp, "--full")
    assert response == {"status": "Failed"}
    assert request["updateType"] == "Full"
    first = cp.wait_call("SendLocalList")
    assert first["updateType"] == "Full"
    state = local_list(csms, cp.station_id)
    assert (state["last_status"], state["version"], state["entries"]) == ("Failed", 0, {})
    # TC_043_3 is one SendLocalList; a Full is not retried with the same Full.
    assert first == request
    assert nothing_received(cp)


def test_tc_043_4_full_local_list_has_id_tag_info_everywhere_and_its_version_is_tracked(csms: CentralSystem, cp: ChargePoint) -> None:
    accepted, blocked = new_tag(csms), new_tag(csms, "Blocked")
    request, response = send_local_list(csms, cp, "--full")
    assert response == {"status": "Accepted"}
    assert cp.wait_call("SendLocalList") == request
    assert request["updateType"] == "Full"  # tool check
    sent = request["localAuthorizationList"]
    assert sent and all("status" in e.get("idTagInfo", {}) for e in sent)  # tool check: every entry has idTagInfo
    ids = [e["idTag"] for e in sent]
    assert len(ids) == len({i.lower() for i in ids})  # unique idTags (§5.15)
    by_tag = {e["idTag"]: e["idTagInfo"] for e in sent}
    assert (by_tag[accepted], by_tag[blocked]) == ({"status": "Accepted"}, {"status": "Blocked"})

    state = local_list(csms, cp.station_id)
    assert request["listVersion"] >= 1  # errata 3.52
    assert (state["version"], state["last_status"]) == (request["listVersion"], "Accepted")
    assert state["entries"] == by_tag  # what the central system believes the station holds

    again, _ = send_local_list(csms, cp, "--full")
    assert cp.wait_call("SendLocalList") == again
    assert again["listVersion"] > request["listVersion"]  # every update has a new version
    assert local_list(csms, cp.station_id)["version"] == again["listVersion"]


def test_tc_043_5_differential_local_list_carries_only_the_added_tag_with_a_higher_version(csms: CentralSystem, cp: ChargePoint) -> None:
    new_tag(csms)
    initial = initial_full_list(csms, cp)

    added = new_tag(csms)
    request, response = send_local_list(csms, cp, "--differential")
    assert response == {"status": "Accepted"}
    assert cp.wait_call("SendLocalList") == request
    assert request["updateType"] == "Differential"
    assert request["localAuthorizationList"] == [{"idTag": added, "idTagInfo": {"status": "Accepted"}}]
    assert request["listVersion"] > initial
    state = local_list(csms, cp.station_id)
    assert state["version"] == request["listVersion"]
    assert state["entries"][added] == {"status": "Accepted"}


def test_differential_updates_send_exactly_the_added_changed_and_removed_tags(csms: CentralSystem, cp: ChargePoint) -> None:
    kept, changed, removed = new_tag(csms), new_tag(csms), new_tag(csms)
    versions = [initial_full_list(csms, cp)]

    def differential(expected: list[dict]) -> None:
        request, response = send_local_list(csms, cp, "--differential")
        assert response == {"status": "Accepted"}
        assert cp.wait_call("SendLocalList") == request
        assert request["updateType"] == "Differential"
        assert request["localAuthorizationList"] == expected
        versions.append(request["listVersion"])

    added = new_tag(csms)
    differential([{"idTag": added, "idTagInfo": {"status": "Accepted"}}])
    csms.ctl_ok("tag", "add", changed, "--status", "Blocked")
    differential([{"idTag": changed, "idTagInfo": {"status": "Blocked"}}])
    csms.ctl_ok("tag", "remove", removed)
    differential([{"idTag": removed}])  # a deletion carries no idTagInfo

    assert versions == sorted(set(versions)), f"versions must increase: {versions}"
    state = local_list(csms, cp.station_id)
    assert state["version"] == versions[-1]
    assert state["entries"][kept] == {"status": "Accepted"}
    assert state["entries"][added] == {"status": "Accepted"}
    assert state["entries"][changed] == {"status": "Blocked"}
    assert removed not in state["entries"]
    # Nothing changed since: a Differential has nothing to send, and says so.
    unchanged = csms.ctl("send-local-list", cp.station_id, "--differential")
    assert unchanged.code == 2
    assert nothing_received(cp)


@pytest.mark.parametrize("refusal", ["VersionMismatch", "Failed"])
def test_differential_answered_version_mismatch_or_failed_is_followed_by_a_full_update(csms: CentralSystem, cp: ChargePoint, refusal: str) -> None:
    held = new_tag(csms)
    initial = initial_full_list(csms, cp)
    added = new_tag(csms)
    cp.handlers["SendLocalList"] = answers(refusal, "Accepted")

    request, response = send_local_list(csms, cp, "--differential")
    differential = cp.wait_call("SendLocalList")
    assert differential["updateType"] == "Differential"
    assert differential["localAuthorizationList"] == [{"idTag": added, "idTagInfo": {"status": "Accepted"}}]
    full = cp.wait_call("SendLocalList")  # sent by the central system without being asked (§5.15)
    assert full["updateType"] == "Full"
    assert full["listVersion"] > initial
    assert full["listVersion"] > differential["listVersion"]  # versions only go up, past the refused one too
    sent = {e["idTag"]: e["idTagInfo"] for e in full["localAuthorizationList"]}
    assert sent[held] == sent[added] == {"status": "Accepted"}
    assert all("idTagInfo" in e for e in full["localAuthorizationList"])
    # The control script reports the outcome of the whole exchange: the Full, Accepted.
    assert (request, response) == (full, {"status": "Accepted"})
    assert nothing_received(cp)
    state = local_list(csms, cp.station_id)
    assert (state["version"], state["last_status"]) == (full["listVersion"], "Accepted")
    assert state["entries"] == sent


# -- Reservation (§5) -----------------------------------------------------------------------


def test_tc_046_reserved_connector_is_used_by_the_transaction_carrying_the_reservation_id(csms: CentralSystem, cp: ChargePoint) -> None:
    tag = new_tag(csms)
    request, status = reserve(csms, cp, "--connector", "1", "--id-tag", tag)
    assert status == "Accepted"
    assert (request["connectorId"], request["idTag"]) == (1, tag)  # tool checks
    assert parse_time(request["expiryDate"]) > datetime.now(timezone.utc)
    reservation_id = request["reservationId"]
    assert reservation(csms, cp.station_id, reservation_id)["status"] == "Accepted"
    assert active_reservation_ids(csms, cp.station_id) == [reservation_id]
    cp.status(1, "Reserved")

    assert cp.authorize(tag)["status"] == "Accepted"
    cp.status(1, "Preparing")
    started = cp.start(1, tag, meter_start=100, reservationId=reservation_id)
    assert started["idTagInfo"]["status"] == "Accepted"
    cp.status(1, "Charging")

    row = reservation(csms, cp.station_id, reservation_id)
    assert (row["status"], row["transaction_id"]) == ("Used", started["transactionId"])
    assert active_reservation_ids(csms, cp.station_id) == []


def test_tc_047_reservation_expires_by_itself_and_is_recorded_expired(csms: CentralSystem, cp: ChargePoint) -> None:
    tag = new_tag(csms)
    request, status = reserve(csms, cp, "--connector", "1", "--id-tag", tag, expires_in=2)
    assert status == "Accepted"
    expiry = parse_time(request["expiryDate"])
    assert 0 < (expiry - datetime.now(timezone.utc)).total_seconds() <= 2.5  # tool check: now + offset
    cp.status(1, "Reserved")

    reservation_id = request["reservationId"]
    wait_for(lambda: reservation(csms, cp.station_id, reservation_id)["status"] == "Expired", timeout=15,
             message="the reservation to be recorded Expired")
    assert datetime.now(timezone.utc) >= expiry
    cp.status(1, "Available")
    assert connector_status(csms, cp.station_id, 1) == "Available"
    assert active_reservation_ids(csms, cp.station_id) == []


def reservation_not_placed(csms: CentralSystem, cp: ChargePoint, status: str) -> None:
    cp.handlers["ReserveNow"] = lambda p: {"status": status}
    tag = new_tag(csms)
    request, answer = reserve(csms, cp, "--connector", "1", "--id-tag", tag)
    assert answer == status
    row = reservation(csms, cp.station_id, request["reservationId"])
    assert (row["status"], row["connector_id"], row["id_tag"]) == (status, 1, tag)
    assert active_reservation_ids(csms, cp.station_id) == []


def test_tc_048_1_reservation_answered_faulted_is_recorded_not_placed(csms: CentralSystem, cp: ChargePoint) -> None:
    reservation_not_placed(csms, cp, "Faulted")


def test_tc_048_2_reservation_of_a_preparing_connector_answered_occupied_is_recorded_not_placed(csms: CentralSystem, cp: ChargePoint) -> None:
    cp.status(1, "Preparing")
    reservation_not_placed(csms, cp, "Occupied")


def test_tc_048_3_reservation_of_an_inoperative_connector_answered_unavailable_is_recorded_not_placed(csms: CentralSystem, cp: ChargePoint) -> None:
    result = csms.ctl("change-availability", cp.station_id, "--connector", "1", "--type", "Inoperative")
    request, response = answered(result, cp.station_id, "ChangeAvailability")
    assert request == {"connectorId": 1, "type": "Inoperative"}  # tool check
    assert response == {"status": "Accepted"}
    assert cp.wait_call("ChangeAvailability") == request
    cp.status(1, "Unavailable")
    assert connector_status(csms, cp.station_id, 1) == "Unavailable"
    reservation_not_placed(csms, cp, "Unavailable")


def test_tc_048_4_reservation_answered_rejected_is_recorded_not_placed(csms: CentralSystem, cp: ChargePoint) -> None:
    reservation_not_placed(csms, cp, "Rejected")


def test_tc_049_reservation_of_the_charge_point_on_connector_0_is_accepted_and_usable_on_any_connector(csms: CentralSystem, cp: ChargePoint) -> None:
    tag = new_tag(csms)
    request, status = reserve(csms, cp, "--connector", "0", "--id-tag", tag)
    assert status == "Accepted"
    assert (request["connectorId"], request["idTag"]) == (0, tag)  # tool check
    reservation_id = request["reservationId"]
    row = reservation(csms, cp.station_id, reservation_id)
    assert (row["status"], row["connector_id"], row["id_tag"]) == ("Accepted", 0, tag)
    cp.status(1, "Reserved")

    cp.status(2, "Preparing")
    started = cp.start(2, tag, reservationId=reservation_id)
    assert started["idTagInfo"]["status"] == "Accepted"
    row = reservation(csms, cp.station_id, reservation_id)
    assert (row["status"], row["transaction_id"]) == ("Used", started["transactionId"])


def test_tc_051_cancel_reservation_accepted_records_it_cancelled(csms: CentralSystem, cp: ChargePoint) -> None:
    tag = new_tag(csms)
    reserved, status = reserve(csms, cp, "--connector", "1", "--id-tag", tag)
    assert status == "Accepted"
    reservation_id = reserved["reservationId"]
    cp.status(1, "Reserved")

    result = csms.ctl("cancel-reservation", cp.station_id, "--reservation-id", str(reservation_id))
    request, response = answered(result, cp.station_id, "CancelReservation")
    assert (request, response) == ({"reservationId": reservation_id}, {"status": "Accepted"})
    assert cp.wait_call("CancelReservation") == request  # tool check: the id from step 1
    cp.status(1, "Available")

    assert reservation(csms, cp.station_id, reservation_id)["status"] == "Cancelled"
    assert active_reservation_ids(csms, cp.station_id) == []


def test_tc_052_cancel_of_an_unknown_reservation_id_is_rejected_and_the_reservation_stays(csms: CentralSystem, cp: ChargePoint) -> None:
    tag = new_tag(csms)
    reserved, status = reserve(csms, cp, "--connector", "1", "--id-tag", tag)
    assert status == "Accepted"
    reservation_id = reserved["reservationId"]
    cp.status(1, "Reserved")

    unknown = reservation_id + 100_000
    result = csms.ctl("cancel-reservation", cp.station_id, "--reservation-id", str(unknown))
    request, response = answered(result, cp.station_id, "CancelReservation")
    assert (request, response) == ({"reservationId": unknown}, {"status": "Rejected"})
    assert cp.wait_call("CancelReservation") == {"reservationId": unknown}  # tool check: not the id from step 1

    assert reservation(csms, cp.station_id, reservation_id)["status"] == "Accepted"
    assert find_reservation(csms, cp.station_id, unknown) is None
    assert active_reservation_ids(csms, cp.station_id) == [reservation_id]


def test_tc_053_reserved_connector_is_used_by_another_tag_of_the_same_parent(csms: CentralSystem, cp: ChargePoint) -> None:
    parent = new_tag(csms)
    reserved_for = new_tag(csms, parent=parent)
    other = new_tag(csms, parent=parent)
    request, status = reserve(csms, cp, "--connector", "1", "--id-tag", reserved_for, "--parent", parent)
    assert status == "Accepted"
    assert (request["connectorId"], request["idTag"], request["parentIdTag"]) == (1, reserved_for, parent)  # tool check
    reservation_id = request["reservationId"]
    cp.status(1, "Reserved")

    info = cp.authorize(other)
    assert (info["status"], info.get("parentIdTag")) == ("Accepted", parent)  # tool checks
    cp.status(1, "Preparing")
    started = cp.start(1, other, meter_start=10, reservationId=reservation_id)
    assert started["idTagInfo"]["status"] == "Accepted"
    cp.status(1, "Charging")
    row = reservation(csms, cp.station_id, reservation_id)
    assert (row["status"], row["transaction_id"]) == ("Used", started["transactionId"])

    assert cp.stop(started["transactionId"], 610, "Local") == {}
    cp.status(1, "Finishing")
    tx = csms.ctl_ok("tx", "show", str(started["transactionId"]))
    assert (tx["id_tag"], tx["energy_wh"], tx["active"]) == (other, 600, False)


def test_reservation_expires_even_when_the_central_system_was_down_at_its_expiry(tmp_path: Path, station_id: str) -> None:
    first = CentralSystem(tmp_path).start()
    restarted = CentralSystem(tmp_path)
    try:
        tag = f"R-{uuid.uuid4().hex[:12]}"
        first.ctl_ok("tag", "add", tag)
        with ChargePoint(first.url, station_id, handlers=default_handlers(), connectors=CONNECTORS) as cp:
            cp.booted()
            # Long enough that the first system surely stops before the expiry, even on a busy machine.
            request, status = reserve(first, cp, "--connector", "1", "--id-tag", tag, expires_in=8)
            assert status == "Accepted"
            cp.status(1, "Reserved")
        reservation_id = request["reservationId"]
        expiry = parse_time(request["expiryDate"]).timestamp()
        first.stop()

        # The first system did not get to expire it: the restarted one must.
        store = Store(first.db, migrate_schema=False)
        try:
            row = store.get_reservation(reservation_id)
            assert row is not None and row["status"] == "Accepted", "stopped after the expiry: nothing proven"
        finally:
            store.close()
        wait_for(lambda: time.time() > expiry + 0.5, timeout=15, message="the expiry time to pass")

        restarted.db = first.db
        restarted.start()
        wait_for(lambda: (find_reservation(restarted, station_id, reservation_id) or {}).get("status") == "Expired",
                 timeout=15, message="the restarted system to record the reservation Expired")
    finally:
        restarted.stop()
        first.stop()


# -- Remote Trigger (§6) --------------------------------------------------------------------


def trigger(csms: CentralSystem, cp: ChargePoint, message: str, connector: int | None = None) -> str:
    """TriggerMessage through ``ctl trigger``; the charge point's answer status."""
    args = ["trigger", cp.station_id, message] + (["--connector", str(connector)] if connector is not None else [])
    request, response = answered(csms.ctl(*args), cp.station_id, "TriggerMessage")
    expected = {"requestedMessage": message, **({"connectorId": connector} if connector is not None else {})}
    assert request == expected  # tool checks
    assert cp.wait_call("TriggerMessage") == expected
    return response["status"]


def test_tc_054_five_triggered_messages_are_requested_in_order_and_answered(csms: CentralSystem, cp: ChargePoint) -> None:
    assert trigger(csms, cp, "MeterValues", 1) == "Accepted"
    assert cp.call("MeterValues", {"connectorId": 1, "meterValue": [
        {"timestamp": now_iso(), "sampledValue": [{"value": "1234", "measurand": "Energy.Active.Import.Register"}]}]}) == {}

    assert trigger(csms, cp, "Heartbeat") == "Accepted"
    assert parse_time(cp.call("Heartbeat")["currentTime"]).tzinfo is not None

    assert trigger(csms, cp, "StatusNotification", 1) == "Accepted"
    assert cp.status(1, "Available") == {}

    assert trigger(csms, cp, "DiagnosticsStatusNotification") == "Accepted"
    send_dsn(cp, "Idle")

    assert trigger(csms, cp, "FirmwareStatusNotification") == "Accepted"
    send_fsn(cp, "Idle")

    state = firmware(csms, cp.station_id)
    assert (state["last_diagnostics_status"], state["last_firmware_status"]) == ("Idle", "Idle")
    assert (state["update_in_progress"], state["upload_in_progress"]) == (False, False)
    assert connector_status(csms, cp.station_id, 1) == "Available"


def test_tc_055_trigger_for_a_connector_the_charge_point_lacks_is_reported_rejected_with_exit_0(csms: CentralSystem, cp: ChargePoint) -> None:
    assert trigger(csms, cp, "MeterValues", CONNECTORS + 1) == "Rejected"
    assert nothing_received(cp)


@pytest.mark.parametrize("status", ["Rejected", "NotImplemented"])
def test_trigger_answered_rejected_or_not_implemented_is_reported_with_exit_0(csms: CentralSystem, cp: ChargePoint, status: str) -> None:
    cp.handlers["TriggerMessage"] = lambda p: {"status": status}
    assert trigger(csms, cp, "FirmwareStatusNotification") == status


def test_trigger_boot_notification_is_refused_once_accepted_and_nothing_is_sent(csms: CentralSystem, cp: ChargePoint) -> None:
    refused = csms.ctl("trigger", cp.station_id, "BootNotification")
    assert refused.code == 2
    assert refused.json["error"]["code"] == "Refused"
    assert "errata 3.40" in refused.json["error"]["description"]
    assert nothing_received(cp)
    # The station is still served: another trigger goes through.
    assert trigger(csms, cp, "Heartbeat") == "Accepted"
