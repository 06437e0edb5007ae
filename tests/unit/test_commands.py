"""The control script's argument parsing and request building (actors/control/commands.py, actors/control/client.py).

Pure: no actor system runs; the one ``main`` test that gets past validation
points at an admin port nobody listens on.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from actors.control import client as control
from actors.control import commands
from actors.control.commands import CallRequest
from actors.errors import CommandError, OcppCallError
from actors.messages import AdminCommand
from gateway.sim.ports import free_port
from storage import parse_time

PROFILE = {
    "chargingProfileId": 1,
    "stackLevel": 0,
    "chargingProfilePurpose": "TxProfile",
    "chargingProfileKind": "Relative",
    "chargingSchedule": {
        "chargingRateUnit": "A",
        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 21.4}],
    },
}


def request(*argv: str) -> AdminCommand | CallRequest:
    return commands.to_request(control.build_parser(1900).parse_args(list(argv)))


def call(*argv: str) -> tuple[str, dict[str, Any]]:
    built = request(*argv)
    assert isinstance(built, CallRequest)
    assert built.station == "CP1"
    return built.action, built.payload


# -- named OCPP commands ---------------------------------------------------------------


def test_remote_start_with_connector_and_profile() -> None:
    assert call("remote-start", "CP1", "--id-tag", "TAG1", "--connector", "2",
                "--profile", json.dumps(PROFILE)) == (
        "RemoteStartTransaction", {"idTag": "TAG1", "connectorId": 2, "chargingProfile": PROFILE}
    )


def test_remote_start_with_only_an_id_tag() -> None:
    assert call("remote-start", "CP1", "--id-tag", "TAG1") == ("RemoteStartTransaction", {"idTag": "TAG1"})


def test_remote_stop() -> None:
    assert call("remote-stop", "CP1", "--transaction", "17") == (
        "RemoteStopTransaction", {"transactionId": 17}
    )


@pytest.mark.parametrize("kind", ["Hard", "Soft"])
def test_reset(kind: str) -> None:
    assert call("reset", "CP1", "--type", kind) == ("Reset", {"type": kind})


def test_unlock() -> None:
    assert call("unlock", "CP1", "--connector", "1") == ("UnlockConnector", {"connectorId": 1})


def test_get_config_with_repeated_keys() -> None:
    assert call("get-config", "CP1", "--key", "HeartbeatInterval", "--key", "MeterValueSampleInterval") == (
        "GetConfiguration", {"key": ["HeartbeatInterval", "MeterValueSampleInterval"]}
    )


def test_get_config_without_keys_omits_the_key_field() -> None:
    assert call("get-config", "CP1") == ("GetConfiguration", {})


def test_change_config() -> None:
    assert call("change-config", "CP1", "MeterValueSampleInterval", "60") == (
        "ChangeConfiguration", {"key": "MeterValueSampleInterval", "value": "60"}
    )


def test_change_availability() -> None:
    assert call("change-availability", "CP1", "--connector", "0", "--type", "Inoperative") == (
        "ChangeAvailability", {"connectorId": 0, "type": "Inoperative"}
    )


def test_clear_cache() -> None:
    assert call("clear-cache", "CP1") == ("ClearCache", {})


def test_data_transfer_with_and_without_optional_fields() -> None:
    assert call("data-transfer", "CP1", "--vendor", "ACME", "--message-id", "Ping", "--data", "x") == (
        "DataTransfer", {"vendorId": "ACME", "messageId": "Ping", "data": "x"}
    )
    assert call("data-transfer", "CP1", "--vendor", "ACME") == ("DataTransfer", {"vendorId": "ACME"})


def test_update_firmware_with_every_option() -> None:
    assert call("update-firmware", "CP1", "--location", "https://fw.example/1.bin",
                "--retrieve-date", "2026-11-25T10:00:00Z", "--retries", "3",
                "--retry-interval", "60") == (
        "UpdateFirmware",
        {"location": "https://fw.example/1.bin", "retrieveDate": "2026-11-25T10:00:00Z",
         "retries": 3, "retryInterval": 60},
    )


def test_update_firmware_without_a_retrieve_date_sends_a_timestamp() -> None:
    action, payload = call("update-firmware", "CP1", "--location", "https://fw.example/1.bin")
    assert action == "UpdateFirmware"
    assert set(payload) == {"location", "retrieveDate"}
    parse_time(payload["retrieveDate"])  # schema-required (OCTT TC_044_1): a valid date-time


def test_get_diagnostics() -> None:
    assert call("get-diagnostics", "CP1", "--location", "ftp://logs.example/",
                "--start", "2026-11-24T00:00:00Z", "--stop", "2026-11-25T00:00:00Z",
                "--retries", "1", "--retry-interval", "30") == (
        "GetDiagnostics",
        {"location": "ftp://logs.example/", "startTime": "2026-11-24T00:00:00Z",
         "stopTime": "2026-11-25T00:00:00Z", "retries": 1, "retryInterval": 30},
    )
    assert call("get-diagnostics", "CP1", "--location", "ftp://logs.example/") == (
        "GetDiagnostics", {"location": "ftp://logs.example/"}
    )


def test_trigger_with_and_without_a_connector() -> None:
    assert call("trigger", "CP1", "StatusNotification", "--connector", "1") == (
        "TriggerMessage", {"requestedMessage": "StatusNotification", "connectorId": 1}
    )
    assert call("trigger", "CP1", "Heartbeat") == ("TriggerMessage", {"requestedMessage": "Heartbeat"})


def test_local_list_version() -> None:
    assert call("local-list-version", "CP1") == ("GetLocalListVersion", {})


def test_cancel_reservation() -> None:
    assert call("cancel-reservation", "CP1", "--reservation-id", "5") == (
        "CancelReservation", {"reservationId": 5}
    )


def test_call_with_a_json_payload() -> None:
    assert call("call", "CP1", "Reset", '{"type": "Soft"}') == ("Reset", {"type": "Soft"})


def test_call_without_a_payload_sends_an_empty_object() -> None:
    assert call("call", "CP1", "ClearCache") == ("ClearCache", {})


# -- invalid requests ------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ("call", "CP1", "Reset", '{"type": "Warm"}'),
        ("call", "CP1", "Reset", "{}"),
        ("call", "CP1", "Reset", '{"type": "Soft", "extra": 1}'),
        ("trigger", "CP1", "Coffee"),
        ("change-config", "CP1", "K" * 51, "v"),
        ("remote-start", "CP1", "--id-tag", "T" * 21),
        ("remote-start", "CP1", "--id-tag", "T",
         "--profile", json.dumps({**PROFILE, "chargingSchedule": {
             "chargingRateUnit": "A", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 21.45}]}})),
    ],
)
def test_a_payload_invalid_against_the_schema_raises_ocpp_call_error(argv: tuple[str, ...]) -> None:
    with pytest.raises(OcppCallError):
        request(*argv)


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (("call", "CP1", "Foo", "{}"), "Foo"),
        (("call", "CP1", "Heartbeat", "{}"), "Heartbeat"),
        (("call", "CP1", "Reset", "not json"), "JSON"),
        (("call", "CP1", "Reset", "[1]"), "object"),
        (("remote-start", "CP1", "--id-tag", "T", "--profile", "{not json"), "--profile"),
    ],
)
def test_a_request_that_is_not_an_ocpp_request_raises_command_error(
    argv: tuple[str, ...], words: str
) -> None:
    with pytest.raises(CommandError) as caught:
        request(*argv)
    assert caught.value.exit_code == 2
    assert words in caught.value.message


@pytest.mark.parametrize(
    "argv",
    [
        (),
        ("reset", "CP1"),
        ("reset", "CP1", "--type", "Warm"),
        ("unlock", "CP1", "--connector", "one"),
        ("frobnicate", "CP1"),
        ("tag", "add"),
    ],
)
def test_bad_arguments_raise_a_usage_command_error(argv: tuple[str, ...]) -> None:
    with pytest.raises(CommandError) as caught:
        control.build_parser(1900).parse_args(list(argv))
    assert caught.value.exit_code == 2


# -- data-management commands ------------------------------------------------------------


def test_station_add_becomes_an_admin_command_with_the_given_options_only() -> None:
    assert request("station", "add", "CP1", "--password", "pw", "--registration", "pending",
                   "--connectors", "2") == AdminCommand(
        "station.add", {"id": "CP1", "password": "pw", "registration": "pending", "connectors": 2}
    )
    assert request("station", "add", "CP2") == AdminCommand("station.add", {"id": "CP2"})


def test_other_data_commands_become_admin_commands() -> None:
    assert request("station", "set-password", "CP1", "s3cret") == AdminCommand(
        "station.set-password", {"id": "CP1", "password": "s3cret"})
    assert request("station", "list") == AdminCommand("station.list", {})
    assert request("station", "show", "CP1") == AdminCommand("station.show", {"id": "CP1"})
    assert request("station", "remove", "CP1") == AdminCommand("station.remove", {"id": "CP1"})
    assert request("station", "list", "--pending") == AdminCommand("station.pending", {})
    assert request("station", "approve", "CP9") == AdminCommand("station.approve", {"id": "CP9"})
    assert request("tag", "add", "T1", "--status", "Blocked", "--expiry", "2027-01-01T00:00:00Z") == (
        AdminCommand("tag.add", {"id_tag": "T1", "status": "Blocked", "expiry": "2027-01-01T00:00:00Z"}))
    assert request("tag", "add", "T1") == AdminCommand("tag.add", {"id_tag": "T1", "status": "Accepted"})
    assert request("tag", "list") == AdminCommand("tag.list", {})
    assert request("tag", "remove", "T1") == AdminCommand("tag.remove", {"id_tag": "T1"})
    assert request("tx", "list", "--station", "CP1", "--active") == AdminCommand(
        "tx.list", {"station": "CP1", "active": True})
    assert request("tx", "show", "12") == AdminCommand("tx.show", {"id": 12})
    assert request("status") == AdminCommand("status", {})


def test_global_options_do_not_leak_into_admin_arguments() -> None:
    assert request("--json", "--admin-port", "1234", "--timeout", "3", "tag", "list") == (
        AdminCommand("tag.list", {}))


# -- main(): exit codes without a running system -----------------------------------------


def test_main_answers_a_usage_error_with_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert control.main(["reset", "CP1"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "--type" in captured.err


def test_main_answers_a_usage_error_as_one_json_document_with_json(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert control.main(["--json", "frobnicate"]) == 2
    document = json.loads(capsys.readouterr().out)
    assert document["error"]["code"] == "UsageError"
    assert document["error"]["description"]


def test_main_answers_an_invalid_payload_with_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert control.main(["--json", "call", "CP1", "Reset", '{"type": "Warm"}']) == 2
    document = json.loads(capsys.readouterr().out)
    assert document["error"]["code"] == "UsageError"
    assert "type" in document["error"]["description"]


def test_main_answers_a_payload_that_is_not_json_with_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert control.main(["call", "CP1", "Reset", "not json"]) == 2
    assert "JSON" in capsys.readouterr().err


def test_main_answers_a_nan_limit_with_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    payload = json.dumps({"connectorId": 1, "csChargingProfiles": {**PROFILE, "chargingProfilePurpose": "TxDefaultProfile"}})
    payload = payload.replace("21.4", "NaN")
    assert control.main(["--json", "call", "CP1", "SetChargingProfile", payload]) == 2
    assert json.loads(capsys.readouterr().out)["error"]["code"] == "UsageError"


def test_main_answers_a_valid_command_with_exit_6_when_nothing_listens(
    capsys: pytest.CaptureFixture[str],
) -> None:
    port = free_port()
    assert control.main(["--json", "--admin-port", str(port), "reset", "CP1", "--type", "Hard"]) == 6
    out = capsys.readouterr().out
    assert len(out.strip().splitlines()) == 1
    document = json.loads(out)
    assert document["error"]["code"] == "Unreachable"
    assert str(port) in document["error"]["description"]


def test_main_answers_a_data_command_with_exit_6_when_nothing_listens(
    capsys: pytest.CaptureFixture[str],
) -> None:
    port = free_port()
    assert control.main(["station", "list"], default_admin_port=port) == 6
    captured = capsys.readouterr()
    assert captured.out == "" and "not running" in captured.err


# -- help text (issue 12: every option and subcommand has some) ------------------------------


def _undocumented(parser: Any, path: str) -> list[str]:
    import argparse

    missing = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, child in action.choices.items():
                if not helps.get(name):
                    missing.append(f"{path} {name}")
                missing += _undocumented(child, f"{path} {name}")
        elif not action.help and action.dest != "help":
            missing.append(f"{path} {'/'.join(action.option_strings) or action.dest}")
    return missing


def test_every_command_option_and_subcommand_has_help_text() -> None:
    import run
    from actors.control.client import build_parser
    from gateway.sim import bench, simulator

    assert _undocumented(build_parser(1900), "ctl") == []
    assert _undocumented(run.serve_parser(), "serve") == []
    assert _undocumented(simulator._parser(), "sim") == []
    assert _undocumented(bench._parser(), "bench") == []


# -- the security extension's commands ------------------------------------------------------------


def _root(tmp_path: Any) -> Any:
    from cryptography.hazmat.primitives import serialization

    from actors.ocpp import pki
    from tests.unit.test_pki import NOW

    root = pki.new_authority("Test CPO", NOW, 0x00A1).certificate
    path = tmp_path / "root.pem"
    path.write_bytes(root.public_bytes(serialization.Encoding.PEM))
    return root, path


@pytest.mark.parametrize("algorithm", ["SHA256", "SHA384", "SHA512"])
def test_delete_certificate_computes_the_hash_data_from_the_certificate_file(tmp_path: Any, algorithm: str) -> None:
    from actors.ocpp import pki

    root, path = _root(tmp_path)
    action, payload = call("delete-certificate", "CP1", "--hash-algorithm", algorithm, "--certificate", str(path))
    assert action == "DeleteCertificate"
    assert payload == {"certificateHashData": pki.hash_data(root, algorithm)}
    assert payload["certificateHashData"]["serialNumber"] == "a1"


def test_delete_certificate_needs_the_three_hashes_or_the_certificate_not_both(tmp_path: Any) -> None:
    _, path = _root(tmp_path)
    with pytest.raises(CommandError, match="--issuer-name-hash, --issuer-key-hash and --serial"):
        request("delete-certificate", "CP1", "--hash-algorithm", "SHA256", "--serial", "1")
    with pytest.raises(CommandError, match="not both"):
        request("delete-certificate", "CP1", "--hash-algorithm", "SHA256", "--serial", "1", "--certificate", str(path))


def test_get_log_leaves_the_request_id_to_the_station_actor_unless_given() -> None:
    built = request("get-log", "CP1", "--type", "SecurityLog", "--location", "ftp://x/")
    assert isinstance(built, CallRequest) and "requestId" not in built.payload
    assert built.options == {"allocate_request_id": True}
    given = request("get-log", "CP1", "--type", "SecurityLog", "--location", "ftp://x/", "--request-id", "9")
    assert isinstance(given, CallRequest) and given.payload["requestId"] == 9 and given.options == {}


def test_extended_trigger_for_a_certificate_omits_the_connector() -> None:
    assert call("extended-trigger", "CP1", "SignChargePointCertificate") == (
        "ExtendedTriggerMessage", {"requestedMessage": "SignChargePointCertificate"})


def test_signed_update_firmware_needs_a_signature_and_certificate_or_a_firmware_file(tmp_path: Any) -> None:
    with pytest.raises(CommandError, match="--signing-certificate FILE and --signature B64, or --firmware FILE"):
        request("signed-update-firmware", "CP1", "--location", "https://fw/")
    firmware = tmp_path / "fw.bin"
    firmware.write_bytes(b"firmware")
    built = request("signed-update-firmware", "CP1", "--location", "https://fw/", "--firmware", str(firmware))
    assert isinstance(built, CallRequest)
    assert built.options["sign_firmware"] == hashlib.sha256(b"firmware").hexdigest()  # the node signs it


def test_upgrade_security_profile_is_change_configuration_security_profile() -> None:
    built = request("upgrade-security-profile", "CP1", "--to", "3")
    assert isinstance(built, CallRequest) and built.action == "ChangeConfiguration"
    assert built.payload == {"key": "SecurityProfile", "value": "3"} and built.options == {"upgrade_to": 3}
