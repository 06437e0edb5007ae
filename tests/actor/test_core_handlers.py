"""Core profile handlers and result hooks, against a real Store in a temp file."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ocpp.messages import get_validator

from actors.errors import OcppCallError
from actors.ocpp.authorization import id_tag_info
from actors.ocpp.core import HANDLERS, RESULT_HOOKS, Context, data_transfer_status
from actors.settings import Settings
from storage import Store, iso
from tests.support.effects import carry_out

NOW = datetime(2026, 11, 25, 10, 0, 0, 123000, tzinfo=timezone.utc)
SETTINGS = Settings(heartbeat_interval=300, boot_retry_interval=60,
                    data_transfer_vendors=(("ACME", ("Ping",)), ("Open", ())))


def ctx_for(store: Store, station_id: str = "CP1", **settings: Any) -> Context:
    return Context(view=store, station_id=station_id,
                   settings=replace(SETTINGS, **settings), now=NOW)


def call(ctx: Context, action: str, req: dict[str, Any]) -> dict[str, Any]:
    """Run a handler the way the station actor does; both payloads must be schema-valid."""
    get_validator(2, action, "1.6").validate(req)
    res = HANDLERS[action](ctx, req)
    get_validator(3, action, "1.6").validate(res)
    carry_out(ctx.view, ctx)  # type: ignore[arg-type]
    return res


def hook(action: str, ctx: Context, req: dict[str, Any], res: dict[str, Any]) -> None:
    """Run a result hook and carry out its writes."""
    RESULT_HOOKS[action](ctx, req, res)
    carry_out(ctx.view, ctx)  # type: ignore[arg-type]


def start(id_tag: str = "GOOD", connector: int = 1, meter: int = 0,
          ts: str = "2026-11-25T09:00:00Z") -> dict[str, Any]:
    return {"connectorId": connector, "idTag": id_tag, "meterStart": meter, "timestamp": ts}


# -- authorization (pure) -----------------------------------------------------------


def test_unknown_tag_is_invalid() -> None:
    assert id_tag_info(None, NOW) == {"status": "Invalid"}


def test_accepted_tag_past_its_expiry_is_expired() -> None:
    tag = {"status": "Accepted", "expiry": iso(NOW - timedelta(seconds=1)), "parent": None}
    assert id_tag_info(tag, NOW) == {"status": "Expired", "expiryDate": iso(NOW - timedelta(seconds=1))}
    assert id_tag_info({**tag, "expiry": iso(NOW)}, NOW)["status"] == "Expired"


def test_accepted_tag_carries_parent_and_future_expiry() -> None:
    tag = {"status": "Accepted", "expiry": "2030-01-01T00:00:00.000Z", "parent": "FLEET"}
    assert id_tag_info(tag, NOW) == {"status": "Accepted", "parentIdTag": "FLEET",
                                     "expiryDate": "2030-01-01T00:00:00.000Z"}


@given(
    status=st.sampled_from(["Accepted", "Blocked", "Expired", "Invalid"]),
    expiry=st.none() | st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1),
                                    timezones=st.just(timezone.utc)),
    parent=st.none() | st.text(min_size=1, max_size=20),
)
def test_id_tag_info_is_always_a_valid_authorize_reply(
    status: str, expiry: datetime | None, parent: str | None
) -> None:
    tag = {"status": status, "expiry": iso(expiry) if expiry else None, "parent": parent}
    info = id_tag_info(tag, NOW)
    get_validator(3, "Authorize", "1.6").validate({"idTagInfo": info})
    assert info["status"] == status or (status == "Accepted" and info["status"] == "Expired")


# -- BootNotification, Heartbeat, StatusNotification ---------------------------------

BOOT = {"chargePointVendor": "Vendor", "chargePointModel": "Model"}


@pytest.mark.parametrize(
    "registration, status, interval",
    [("accepted", "Accepted", 300), ("pending", "Pending", 60), ("rejected", "Rejected", 60)],
)
def test_boot_notification_answers_the_registration_state(
    store: Store, registration: str, status: str, interval: int
) -> None:
    store.upsert_station("CP1", registration=registration)
    assert call(ctx_for(store), "BootNotification", BOOT) == {
        "status": status, "currentTime": "2026-11-25T10:00:00.123Z", "interval": interval}
    row = store.get_station("CP1")
    assert row is not None and row["last_boot_status"] == status and row["vendor"] == "Vendor"


def test_boot_notification_from_a_station_without_a_row_is_accepted(store: Store) -> None:
    assert call(ctx_for(store, "NEW"), "BootNotification", BOOT)["status"] == "Accepted"
    assert store.get_station("NEW")["ever_accepted"] is True  # type: ignore[index]


def test_heartbeat_answers_current_time_and_marks_the_station_seen(store: Store) -> None:
    store.upsert_station("CP1")
    assert call(ctx_for(store), "Heartbeat", {}) == {"currentTime": "2026-11-25T10:00:00.123Z"}
    assert store.get_station("CP1")["last_seen"] == iso(NOW)  # type: ignore[index]


def test_status_notification_for_connector_zero_is_stored(store: Store) -> None:
    req = {"connectorId": 0, "status": "Available", "errorCode": "NoError"}
    assert call(ctx_for(store), "StatusNotification", req) == {}
    assert store.connector_statuses("CP1")[0]["status"] == "Available"


# -- Authorize ------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["Accepted", "Blocked", "Expired", "Invalid"])
def test_authorize_answers_the_stored_status_case_insensitively(store: Store, status: str) -> None:
    store.upsert_tag("Tag-" + status, status=status)
    reply = call(ctx_for(store), "Authorize", {"idTag": "TAG-" + status.upper()})
    assert reply == {"idTagInfo": {"status": status}}


def test_authorize_with_unknown_tag_is_answered_invalid(store: Store) -> None:
    assert call(ctx_for(store), "Authorize", {"idTag": "NOBODY"}) == {
        "idTagInfo": {"status": "Invalid"}}


def test_authorize_with_expired_tag_is_answered_expired(store: Store) -> None:
    store.upsert_tag("OLD", expiry="2020-01-01T00:00:00Z")
    assert call(ctx_for(store), "Authorize", {"idTag": "old"})["idTagInfo"]["status"] == "Expired"


# -- StartTransaction -------------------------------------------------------------------


def test_start_transaction_with_valid_tag_is_accepted_and_gets_an_id(store: Store) -> None:
    store.upsert_tag("GOOD")
    reply = call(ctx_for(store), "StartTransaction", start())
    assert reply["idTagInfo"] == {"status": "Accepted"} and reply["transactionId"] > 0
    assert store.get_transaction(reply["transactionId"])["start_status"] == "Accepted"  # type: ignore[index]


def test_start_transaction_with_blocked_tag_is_answered_blocked(store: Store) -> None:
    store.upsert_tag("BAD", status="Blocked")
    reply = call(ctx_for(store), "StartTransaction", start("bad"))
    assert reply["idTagInfo"]["status"] == "Blocked" and reply["transactionId"] > 0


def test_start_transaction_with_invalid_tag_still_gets_a_transaction_id(store: Store) -> None:
    reply = call(ctx_for(store), "StartTransaction", start("UNKNOWN"))
    assert reply["idTagInfo"] == {"status": "Invalid"}
    assert store.get_transaction(reply["transactionId"]) is not None
    stop = {"transactionId": reply["transactionId"], "meterStop": 10,
            "timestamp": "2026-11-25T09:01:00Z", "reason": "DeAuthorized"}
    assert call(ctx_for(store), "StopTransaction", stop) == {}


def test_retried_start_transaction_gets_the_same_id(store: Store) -> None:
    store.upsert_tag("GOOD")
    first = call(ctx_for(store), "StartTransaction", start())
    again = call(ctx_for(store), "StartTransaction", start("good", ts="2026-11-25T09:00:00.000Z"))
    assert again == first


def test_start_transaction_reverifies_a_tag_blocked_since_authorize(store: Store) -> None:
    store.upsert_tag("GOOD")
    assert call(ctx_for(store), "Authorize", {"idTag": "GOOD"})["idTagInfo"]["status"] == "Accepted"
    store.upsert_tag("GOOD", status="Blocked")
    assert call(ctx_for(store), "StartTransaction", start())["idTagInfo"]["status"] == "Blocked"


def test_second_start_elsewhere_is_concurrent_tx_when_the_policy_is_on(store: Store) -> None:
    store.upsert_tag("GOOD")
    call(ctx_for(store, "CP1", concurrent_tx=True), "StartTransaction", start())
    reply = call(ctx_for(store, "CP2", concurrent_tx=True), "StartTransaction", start())
    assert reply["idTagInfo"]["status"] == "ConcurrentTx" and reply["transactionId"] > 0


def test_second_start_elsewhere_is_accepted_when_the_policy_is_off(store: Store) -> None:
    store.upsert_tag("GOOD")
    call(ctx_for(store, "CP1"), "StartTransaction", start())
    assert call(ctx_for(store, "CP2"), "StartTransaction", start())["idTagInfo"]["status"] == (
        "Accepted")


def test_restart_on_the_same_connector_is_not_concurrent_tx(store: Store) -> None:
    store.upsert_tag("GOOD")
    ctx = ctx_for(store, concurrent_tx=True)
    call(ctx, "StartTransaction", start())
    assert call(ctx, "StartTransaction", start())["idTagInfo"]["status"] == "Accepted"
    reply = call(ctx, "StartTransaction", start(meter=50))
    assert reply["idTagInfo"]["status"] == "Accepted"


# -- StopTransaction, MeterValues --------------------------------------------------------


def test_stop_transaction_with_id_tag_returns_id_tag_info(store: Store) -> None:
    store.upsert_tag("GOOD")
    tx = call(ctx_for(store), "StartTransaction", start())["transactionId"]
    reply = call(ctx_for(store), "StopTransaction", {
        "transactionId": tx, "idTag": "GOOD", "meterStop": 500,
        "timestamp": "2026-11-25T09:30:00Z", "reason": "Remote"})
    assert reply == {"idTagInfo": {"status": "Accepted"}}
    assert store.get_transaction(tx)["energy_wh"] == 500  # type: ignore[index]


@pytest.mark.parametrize("tx_id", [-1, 424242])
def test_stop_transaction_with_unknown_id_is_answered_normally(store: Store, tx_id: int) -> None:
    reply = call(ctx_for(store), "StopTransaction", {
        "transactionId": tx_id, "meterStop": 5, "timestamp": "2026-11-25T09:30:00Z"})
    assert reply == {}
    assert store.unmatched_stops()[0]["transaction_id"] == tx_id


def test_meter_values_are_stored_and_answered_empty(store: Store) -> None:
    tx = call(ctx_for(store), "StartTransaction", start())["transactionId"]
    req = {"connectorId": 1, "transactionId": tx, "meterValue": [
        {"timestamp": "2026-11-25T09:01:00Z", "sampledValue": [{"value": "12"}]}]}
    assert call(ctx_for(store), "MeterValues", req) == {}
    assert store.meter_values_for(tx)[0]["sampled_value"] == [{"value": "12"}]


# -- DataTransfer, status notifications ------------------------------------------------


@pytest.mark.parametrize(
    "req, status",
    [
        ({"vendorId": "Nobody"}, "UnknownVendorId"),
        ({"vendorId": "ACME", "messageId": "Other"}, "UnknownMessageId"),
        ({"vendorId": "ACME"}, "UnknownMessageId"),
        ({"vendorId": "ACME", "messageId": "Ping", "data": "x"}, "Accepted"),
        ({"vendorId": "Open", "messageId": "Anything"}, "Accepted"),
    ],
)
def test_data_transfer_status_follows_the_configured_vendors(
    store: Store, req: dict[str, Any], status: str
) -> None:
    assert call(ctx_for(store), "DataTransfer", req) == {"status": status}


def test_data_transfer_with_no_vendors_configured_is_unknown_vendor() -> None:
    assert data_transfer_status((), "ACME", None) == "UnknownVendorId"


def test_firmware_and_diagnostics_notifications_are_remembered(store: Store) -> None:
    store.upsert_station("CP1")
    assert call(ctx_for(store), "FirmwareStatusNotification", {"status": "Installed"}) == {}
    assert call(ctx_for(store), "DiagnosticsStatusNotification", {"status": "Uploaded"}) == {}
    row = store.get_station("CP1")
    assert row is not None
    assert (row["firmware_status"], row["diagnostics_status"]) == ("Installed", "Uploaded")


def test_every_action_a_charge_point_may_send_has_a_handler() -> None:
    from actors.ocpp.ocppj import CP_ACTIONS

    assert set(HANDLERS) == CP_ACTIONS


# -- result hooks -----------------------------------------------------------------------


def test_get_configuration_result_is_remembered(store: Store) -> None:
    hook("GetConfiguration", ctx_for(store), {}, {
        "configurationKey": [{"key": "HeartbeatInterval", "readonly": False, "value": "300"}],
        "unknownKey": ["Nope"]})
    assert store.get_configuration("CP1")[0]["value"] == "300"
    assert store.unknown_configuration_keys("CP1") == ["Nope"]


@pytest.mark.parametrize(
    "status, remembered", [("Accepted", "60"), ("RebootRequired", "60"), ("Rejected", None),
                           ("NotSupported", None)])
def test_change_configuration_is_remembered_only_when_accepted(
    store: Store, status: str, remembered: str | None
) -> None:
    hook("ChangeConfiguration", ctx_for(store), {"key": "MeterValueSampleInterval", "value": "60"}, {"status": status})
    values = {c["key"]: c["value"] for c in store.get_configuration("CP1")}
    assert values.get("MeterValueSampleInterval") == remembered


def test_accepted_authorization_key_becomes_the_password_and_is_not_remembered(
    store: Store,
) -> None:
    store.upsert_station("CP1", password="old-password-1234")
    hook("ChangeConfiguration", ctx_for(store), {"key": "AuthorizationKey", "value": "0123456789abcdef0123"},
        {"status": "Accepted"})
    assert store.check_password("CP1", "0123456789abcdef0123")
    assert not store.check_password("CP1", "old-password-1234")
    assert store.get_configuration("CP1") == [
        {"key": "AuthorizationKey", "value": None, "readonly": False, "updated_at": iso(NOW)}]


# -- security extension ---------------------------------------------------------------


def test_every_security_event_notification_is_confirmed_and_kept(store: Store) -> None:
    ctx = ctx_for(store)
    store.upsert_station("CP1")
    req = {"type": "FirmwareUpdated", "timestamp": "2026-11-25T09:00:00Z", "techInfo": "v2"}
    assert call(ctx, "SecurityEventNotification", req) == {}
    events = store.station_events("CP1", kind="security")
    assert [(e["status"], e["detail"]["techInfo"]) for e in events] == [("FirmwareUpdated", "v2")]


def test_log_and_signed_firmware_status_notifications_are_answered_and_kept(store: Store) -> None:
    ctx = ctx_for(store)
    store.upsert_station("CP1")
    assert call(ctx, "LogStatusNotification", {"status": "Uploaded", "requestId": 7}) == {}
    assert call(ctx, "SignedFirmwareStatusNotification", {"status": "Downloading", "requestId": 8}) == {}
    assert [e["status"] for e in store.station_events("CP1", kind="log")] == ["Uploaded"]
    assert [e["status"] for e in store.station_events("CP1", kind="signed-firmware")] == ["Downloading"]


def test_sign_certificate_is_rejected_without_a_certificate_authority(store: Store) -> None:
    assert call(ctx_for(store), "SignCertificate", {"csr": "-----BEGIN CERTIFICATE REQUEST-----"}) == {"status": "Rejected"}


def test_meter_values_naming_another_stations_transaction_are_kept_flagged_not_attached(store: Store) -> None:
    tx = call(ctx_for(store, "CP1"), "StartTransaction", start())["transactionId"]
    own = {"connectorId": 1, "transactionId": tx, "meterValue": [
        {"timestamp": "2026-11-25T09:01:00Z", "sampledValue": [{"value": "12"}]}]}
    foreign = {"connectorId": 2, "transactionId": tx, "meterValue": [
        {"timestamp": "2026-11-25T09:02:00Z", "sampledValue": [{"value": "999999"}]}]}

    assert call(ctx_for(store, "CP1"), "MeterValues", own) == {}
    assert call(ctx_for(store, "CP2"), "MeterValues", foreign) == {}  # answered as OCPP asks

    assert [v["sampled_value"] for v in store.meter_values_for(tx)] == [[{"value": "12"}]]
    kept = store.meter_values_flagged("CP2")
    assert [(v["transaction_id"], v["sampled_value"], v["flag"]) for v in kept] == [
        (tx, [{"value": "999999"}], "transaction of another charge point")]
    assert store.meter_values_flagged("CP1") == []


@pytest.mark.parametrize("connector", [0, -1])
def test_start_transaction_on_connector_0_or_below_is_a_property_constraint_violation(
        store: Store, connector: int) -> None:
    with pytest.raises(OcppCallError) as refused:
        call(ctx_for(store), "StartTransaction", start(connector=connector))
    assert refused.value.code == "PropertyConstraintViolation"
    assert store.list_transactions() == []


# -- implausible but valid values: accepted, flagged (issue 9) --------------------------------


def _counted(ctx: Context, op: str) -> list[tuple[Any, ...]]:
    return [e.args for e in ctx.effects if type(e).__name__ == "Count" and e.op == op]


@pytest.mark.parametrize("ts, meter, flags", [
    ("2026-11-27T10:00:00Z", 0, ["start timestamp in the future"]),
    ("2024-01-01T00:00:00Z", 0, ["start timestamp over a year old"]),
    ("2026-11-25T09:00:00Z", -5, ["negative meterStart"]),
    ("2026-11-26T09:00:00Z", 0, []),  # within a day ahead: clock drift, not flagged
    ("2025-12-01T00:00:00Z", 10, []),  # an offline transaction, months late
])
def test_an_implausible_start_is_accepted_and_flagged(store: Store, ts: str, meter: int, flags: list[str]) -> None:
    ctx = ctx_for(store)
    reply = call(ctx, "StartTransaction", start(meter=meter, ts=ts))
    assert isinstance(reply["transactionId"], int)  # answered as usual
    assert store.get_transaction(reply["transactionId"])["flags"] == flags
    assert _counted(ctx, "transaction_flagged") == [(f,) for f in flags]


def test_an_implausible_stop_adds_its_flags_to_the_transaction(store: Store) -> None:
    tx = call(ctx_for(store), "StartTransaction", start(meter=1000, ts="2026-11-25T09:00:00Z"))["transactionId"]
    ctx = ctx_for(store)
    assert call(ctx, "StopTransaction", {"transactionId": tx, "meterStop": 400,
                                         "timestamp": "2026-11-25T08:00:00Z"}) == {}
    shown = store.get_transaction(tx)
    assert shown["flags"] == ["stops before it starts", "meterStop below meterStart"]
    assert shown["energy_wh"] == -600 and shown["active"] is False
    assert _counted(ctx, "transaction_flagged") == [("stops before it starts",), ("meterStop below meterStart",)]
    # A plausible transaction has none.
    ok = call(ctx_for(store), "StartTransaction", start(connector=2, meter=0))["transactionId"]
    call(ctx_for(store), "StopTransaction", {"transactionId": ok, "meterStop": 10, "timestamp": "2026-11-25T09:30:00Z"})
    assert store.get_transaction(ok)["flags"] == []


# -- what the operator alerts on (issue 12): counted as effects, never recorded here ----------


def _register(value: str, **extra: str) -> dict[str, Any]:
    return {"timestamp": "2026-11-25T09:10:00Z",
            "sampledValue": [{"value": value, "measurand": "Energy.Active.Import.Register", **extra}]}


def test_a_status_notification_is_counted_by_status_and_error_code(store: Store) -> None:
    ctx = ctx_for(store)
    call(ctx, "StatusNotification", {"connectorId": 1, "status": "Faulted", "errorCode": "GroundFailure"})
    assert _counted(ctx, "status_notification") == [("Faulted", "GroundFailure")]


def test_authorize_and_start_transaction_count_the_status_they_answer(store: Store) -> None:
    store.upsert_tag("GOOD")
    ctx = ctx_for(store)
    call(ctx, "Authorize", {"idTag": "NOBODY"})
    call(ctx, "Authorize", {"idTag": "good"})
    call(ctx, "StartTransaction", start(id_tag="NOBODY"))
    assert _counted(ctx, "authorization") == [
        ("Authorize", "Invalid"), ("Authorize", "Accepted"), ("StartTransaction", "Invalid")]


def test_meter_values_of_a_running_transaction_count_the_growth_of_its_energy_register(store: Store) -> None:
    ctx = ctx_for(store)
    tx = call(ctx, "StartTransaction", start(meter=10_000))["transactionId"]
    for values in ([_register("10400")], [_register("10.9", unit="kWh")], [_register("10900")],
                   [_register("5000", phase="L1"), {"timestamp": "2026-11-25T09:11:00Z", "sampledValue": [{"value": "7", "measurand": "Power.Active.Import"}]}]):
        call(ctx, "MeterValues", {"connectorId": 1, "transactionId": tx, "meterValue": values})
    call(ctx, "StopTransaction", {"transactionId": tx, "meterStop": 11_000, "timestamp": "2026-11-25T09:30:00Z"})
    # 400, then 500 (10.9 kWh), nothing for a repeated reading, a phase or another measurand; the stop adds 100.
    assert _counted(ctx, "energy_metered") == [(400.0,), (500.0,), (100.0,)]
    assert _counted(ctx, "energy_delivered") == [(1000,)]


def test_a_new_station_actor_counts_meter_values_from_the_last_stored_reading_not_from_meter_start(
        store: Store) -> None:
    tx = call(ctx_for(store), "StartTransaction", start(meter=10_000))["transactionId"]
    call(ctx_for(store), "MeterValues", {"connectorId": 1, "transactionId": tx, "meterValue": [_register("10400")]})
    fresh = ctx_for(store)  # the station actor was made anew (a reconnect): nothing remembered
    call(fresh, "MeterValues", {"connectorId": 1, "transactionId": tx, "meterValue": [_register("10600")]})
    assert _counted(fresh, "energy_metered") == [(200.0,)]


def test_meter_values_of_another_station_s_transaction_count_no_energy(store: Store) -> None:
    tx = call(ctx_for(store, "CP1"), "StartTransaction", start(meter=0))["transactionId"]
    ctx = ctx_for(store, "CP2")
    call(ctx, "MeterValues", {"connectorId": 1, "transactionId": tx, "meterValue": [_register("999999")]})
    assert _counted(ctx, "energy_metered") == []


# -- the certificate authority (SignCertificate) and the security requests' bookkeeping -------------


def _csr(identity: str, bits: int = 2048) -> str:
    from cryptography import x509 as x509_
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    name = x509_.Name([x509_.NameAttribute(NameOID.ORGANIZATION_NAME, "Test CPO"),
                       x509_.NameAttribute(NameOID.COMMON_NAME, identity)])
    csr = x509_.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM).decode()


@pytest.fixture(scope="module")
def authority() -> Any:
    from actors.ocpp import pki

    return pki.new_authority("Test CPO", NOW, 1)


def test_a_valid_csr_is_accepted_kept_and_followed_by_certificate_signed(store: Store, authority: Any) -> None:
    from actors.ocpp import pki
    from actors.ocpp.effects import StartCall

    store.upsert_station("CP1")
    ctx = replace(ctx_for(store, cpo_name="Test CPO"), authority=lambda: authority)
    assert call(ctx, "SignCertificate", {"csr": _csr("CP1")}) == {"status": "Accepted"}
    started = [e for e in ctx.effects if isinstance(e, StartCall)]
    assert [s.action for s in started] == ["CertificateSigned"]
    chain = pki.certificates(started[0].payload["certificateChain"])
    assert chain[0].subject.rfc4514_string() == "CN=CP1,O=Test CPO" and chain[1] == authority.certificate
    issued = store.list_issued_certificates("CP1")
    assert [(r["serial"], r["status"]) for r in issued] == [(pki.serial_hex(chain[0].serial_number), "Issued")]

    hook("CertificateSigned", ctx_for(store), started[0].payload, {"status": "Accepted"})
    assert store.list_issued_certificates("CP1")[0]["status"] == "Accepted"


def test_a_csr_for_another_identity_is_rejected_and_the_reason_logged(store: Store, authority: Any,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    ctx = replace(ctx_for(store), authority=lambda: authority)
    with caplog.at_level("WARNING"):
        assert call(ctx, "SignCertificate", {"csr": _csr("CP2")}) == {"status": "Rejected"}
    assert ctx.effects == [] and store.list_issued_certificates() == []
    assert any(r.levelname == "WARNING" and "subject CN is 'CP2'" in r.getMessage() for r in caplog.records)


def test_installed_certificate_ids_are_kept_and_an_accepted_delete_removes_one(store: Store) -> None:
    store.upsert_station("CP1")
    one = {"hashAlgorithm": "SHA256", "issuerNameHash": "aa", "issuerKeyHash": "bb", "serialNumber": "01"}
    two = {**one, "serialNumber": "02"}
    hook("GetInstalledCertificateIds", ctx_for(store), {"certificateType": "CentralSystemRootCertificate"},
         {"status": "Accepted", "certificateHashData": [one, two]})
    assert [r["serial_number"] for r in store.installed_certificates("CP1")] == ["01", "02"]
    hook("DeleteCertificate", ctx_for(store), {"certificateHashData": {**one, "serialNumber": "1"}}, {"status": "Accepted"})
    assert [r["serial_number"] for r in store.installed_certificates("CP1")] == ["02"]
    hook("GetInstalledCertificateIds", ctx_for(store), {"certificateType": "CentralSystemRootCertificate"},
         {"status": "NotFound"})
    assert store.installed_certificates("CP1") == []
    calls = store.station_events("CP1", kind="security-call")
    assert [(e["detail"]["action"], e["status"]) for e in calls][::-1] == [
        ("GetInstalledCertificateIds", "Accepted"), ("DeleteCertificate", "Accepted"), ("GetInstalledCertificateIds", "NotFound")]


def test_security_events_are_counted_by_type_folded_to_the_whitepaper_list(store: Store) -> None:
    from actors.ocpp.effects import Count

    store.upsert_station("CP1")
    ctx = ctx_for(store)
    call(ctx, "SecurityEventNotification", {"type": "InvalidChargePointCertificate", "timestamp": "2026-11-25T09:00:00Z"})
    call(ctx, "SecurityEventNotification", {"type": "VendorSpecificThing", "timestamp": "2026-11-25T09:00:00Z"})
    assert [e.args for e in ctx.effects if isinstance(e, Count)] == [("InvalidChargePointCertificate",), ("other",)]
    assert [e["type"] for e in store.security_events("CP1")] == ["VendorSpecificThing", "InvalidChargePointCertificate"]


def test_certificates_are_kept_in_the_event_history_as_subject_and_serial_not_pem(store: Store, authority: Any) -> None:
    from cryptography.hazmat.primitives import serialization

    store.upsert_station("CP1")
    pem = authority.certificate.public_bytes(serialization.Encoding.PEM).decode()
    hook("InstallCertificate", ctx_for(store), {"certificateType": "CentralSystemRootCertificate", "certificate": pem},
         {"status": "Accepted"})
    kept = store.station_events("CP1", kind="security-call")[0]["detail"]
    assert kept["request"]["certificate"] == "CN=Test CPO charge point CA,O=Test CPO serial 1"
