"""The station machine without I/O: text and clocks in, effects out.

A fake ``Reads`` (plain dicts) stands in for storage; nothing here opens a
file, a socket or a metric.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from actors.messages import CallReply, SendCall
from actors.ocpp.effects import ArmTimeout, Close, Count, Send, Tell, Write
from actors.ocpp.machine import StationMachine
from actors.settings import Settings

NOW = datetime(2026, 12, 4, 9, 0, 0, tzinfo=timezone.utc)
BOOT = {"chargePointVendor": "ACME", "chargePointModel": "One"}


class FakeReads:
    """Just enough of ``actors.ocpp.effects.Reads`` for these tests."""

    def __init__(self, station: dict[str, Any] | None = None, tags: dict[str, Any] | None = None) -> None:
        self.station, self.tags = station, tags or {}

    def get_station(self, station_id: str) -> dict[str, Any] | None:
        return self.station

    def get_tag(self, id_tag: str) -> dict[str, Any] | None:
        return self.tags.get(id_tag)

    def active_transactions_for_tag(self, id_tag: str) -> list[dict[str, Any]]:
        return []

    def start_retry(self, station_id: str, payload: dict[str, Any]) -> int | None:
        return None

    def next_transaction_id(self) -> int:
        return 41

    def remote_start_profile(self, *args: Any) -> None:
        return None

    def installed_profiles(self, station_id: str) -> list[dict[str, Any]]:
        return []

    def reservation_for_start(self, *args: Any) -> None:
        return None

    def next_reservation_id(self) -> int:
        return 7

    def get_reservation(self, reservation_id: int) -> None:
        return None

    def transaction_station(self, tx_id: int) -> str | None:
        return "CP1"


def machine(station: dict[str, Any] | None = None, **settings: Any) -> StationMachine:
    ids = iter(f"out-{n}" for n in range(100))
    return StationMachine("CP1", settings=Settings(**settings), view=FakeReads(station, {"TAG": {
        "id_tag": "TAG", "status": "Accepted", "expiry_date": None, "parent_id_tag": None}}),
        new_id=lambda: next(ids))


def frames(effects: list[Any]) -> list[Any]:
    return [json.loads(e.text) for e in effects if isinstance(e, Send)]


def test_a_boot_is_its_write_and_its_event_one_reply_and_counts() -> None:
    m = machine()
    opened = m.connected(1, "127.0.0.1:5000", NOW, 0.0)
    assert Write("mark_connected", ("CP1", True, NOW)) in opened.effects
    step = m.received(1, json.dumps([2, "b1", "BootNotification", BOOT]), NOW, 0.5, 0.25)
    writes = [e for e in step.effects if isinstance(e, Write)]
    assert [w.op for w in writes] == ["record_boot", "record_event"]
    assert writes[1].args[:3] == ("station.booted", "CP1", NOW)
    assert frames(step.effects) == [[3, "b1", {"status": "Accepted", "currentTime": "2026-12-04T09:00:00.000Z", "interval": 300}]]
    assert Count("message", ("BootNotification", "in", "result")) in step.effects
    assert Count("call_latency", ("BootNotification", "in", 0.25)) in step.effects
    # If the host cannot store the boot, the charge point is told InternalError instead.
    assert frames(step.fallback())[0][:3] == [4, "b1", "InternalError"]


def test_a_station_never_accepted_gets_security_error_and_nothing_is_written() -> None:
    m = machine()
    m.connected(1, "peer", NOW, 0.0)
    step = m.received(1, json.dumps([2, "h1", "Heartbeat", {}]), NOW, 0.0, 0.0)
    assert not [e for e in step.effects if isinstance(e, Write)]
    assert frames(step.effects)[0][:3] == [4, "h1", "SecurityError"]


def test_start_transaction_hands_out_the_next_id_as_a_write() -> None:
    m = machine({"ever_accepted": 1, "last_boot_status": "Accepted"})
    m.connected(1, "peer", NOW, 0.0)
    req = {"connectorId": 1, "idTag": "TAG", "meterStart": 0, "timestamp": "2026-12-04T08:59:00Z"}
    step = m.received(1, json.dumps([2, "s1", "StartTransaction", req]), NOW, 0.0, 0.0)
    start = next(e for e in step.effects if isinstance(e, Write))
    assert (start.op, start.kwargs) == ("start_transaction", {"transaction_id": 41, "flags": []})
    assert frames(step.effects)[0][2]["transactionId"] == 41
    assert Count("transaction_started", ()) in step.effects


def test_a_handler_that_raises_is_one_internal_error_and_leaves_no_effects(monkeypatch: Any) -> None:
    m = machine({"ever_accepted": 1})
    m.connected(1, "peer", NOW, 0.0)

    def broken(ctx: Any, req: Any) -> Any:
        ctx.write("touch", "CP1", NOW)
        raise RuntimeError("boom")

    monkeypatch.setitem(__import__("actors.ocpp.core", fromlist=["HANDLERS"]).HANDLERS, "Heartbeat", broken)
    step = m.received(1, json.dumps([2, "h1", "Heartbeat", {}]), NOW, 0.0, 0.0)
    assert not [e for e in step.effects if isinstance(e, Write)]  # the write it asked for is dropped
    assert frames(step.effects)[0][:3] == [4, "h1", "InternalError"]


def test_the_newest_connection_wins_and_frames_of_the_old_one_are_ignored() -> None:
    m = machine({"ever_accepted": 1})
    m.connected(1, "old", NOW, 0.0)
    step = m.connected(2, "new", NOW, 1.0)
    assert Close(1, 1000, "replaced by a new connection") in step.effects
    assert m.received(1, json.dumps([2, "h1", "Heartbeat", {}]), NOW, 1.0, 1.0).effects == []
    assert frames(m.received(2, json.dumps([2, "h2", "Heartbeat", {}]), NOW, 1.0, 1.0).effects)[0][0] == 3


def test_a_call_goes_out_with_a_timeout_and_its_answer_reaches_the_requester() -> None:
    m = machine({"ever_accepted": 1, "last_boot_status": "Accepted"})
    assert m.send_call(SendCall("Reset", {"type": "Soft"}, {}, "CP1"), "ctl", NOW, 0.0).effects[-1] == Tell(
        "ctl", CallReply("CP1", "Reset", {"type": "Soft"}, "not-connected", None,
                         {"code": "NotConnected", "description": "charge point is not connected", "details": {}}))
    m.connected(1, "peer", NOW, 0.0)
    step = m.send_call(SendCall("Reset", {"type": "Soft"}, {}, "CP1"), "ctl", NOW, 1.0)
    assert frames(step.effects) == [[2, "out-1", "Reset", {"type": "Soft"}]]
    assert ArmTimeout("out-1", Settings().call_timeout) in step.effects
    answer = m.received(1, json.dumps([3, "out-1", {"status": "Accepted"}]), NOW, 1.5, 1.5)
    assert Tell("ctl", CallReply("CP1", "Reset", {"type": "Soft"}, "result", {"status": "Accepted"}, None)) in answer.effects
    assert Count("call_latency", ("Reset", "out", 0.5)) in answer.effects
    assert m.calls.outstanding is None


def test_every_reply_to_a_call_carries_the_request_id_of_its_send_call() -> None:
    m = machine({"ever_accepted": 1, "last_boot_status": "Accepted"})
    offline = m.send_call(SendCall("Reset", {"type": "Soft"}, {}, "CP1", request_id=7), "api", NOW, 0.0)
    assert offline.effects[-1].message.request_id == 7
    m.connected(1, "peer", NOW, 0.0)
    m.send_call(SendCall("Reset", {"type": "Soft"}, {}, "CP1", request_id=8), "api", NOW, 1.0)
    m.send_call(SendCall("Reset", {"type": "Hard"}, {}, "CP1", request_id=9), "api", NOW, 1.0)  # queued
    first = m.received(1, json.dumps([3, "out-1", {"status": "Accepted"}]), NOW, 1.5, 1.5)
    assert [e.message.request_id for e in first.effects if isinstance(e, Tell)] == [8]
    second = m.call_timed_out("out-2", NOW, 40.0)
    assert [(e.message.outcome, e.message.request_id) for e in second.effects if isinstance(e, Tell)] == [("timeout", 9)]


def test_a_call_timeout_answers_the_requester() -> None:
    m = machine({"ever_accepted": 1, "last_boot_status": "Accepted"})
    m.connected(1, "peer", NOW, 0.0)
    m.send_call(SendCall("Reset", {"type": "Hard"}, {}, "CP1"), "ctl", NOW, 0.0)
    step = m.call_timed_out("out-0", NOW, 30.0)
    [reply] = [e.message for e in step.effects if isinstance(e, Tell)]
    assert reply.outcome == "timeout"


def test_a_flood_closes_the_connection_with_1008() -> None:
    m = machine({"ever_accepted": 1}, max_call_rate=2)
    m.connected(1, "peer", NOW, 0.0)
    steps = [m.received(1, json.dumps([2, f"h{n}", "Heartbeat", {}]), NOW, 0.1, 0.1) for n in range(3)]
    assert Close(1, 1008, "message rate exceeded") in steps[2].effects
    assert Write("mark_connected", ("CP1", False, NOW, NOW)) in steps[2].effects
    assert m.conn is None


def test_a_frame_checked_beforehand_is_answered_as_one_checked_in_the_machine() -> None:
    from actors.ocpp import ocppj

    texts = [
        json.dumps([2, "a", "Heartbeat", {}]),
        json.dumps([2, "b", "StatusNotification", {"connectorId": "one"}]),  # schema
        json.dumps([2, "c", "Reset", {"type": "Soft"}]),  # a CSMS action
        "[2, 'not json'",
        json.dumps([9, "d", {}]),  # ignored MessageTypeId
        json.dumps([3, "e", {"status": "Accepted"}]),  # answer to nothing
    ]
    answers = []
    for beforehand in (False, True):
        m = machine({"ever_accepted": 1})
        m.connected(1, "peer", NOW, 0.0)
        answers.append([
            m.received(1, text, NOW, 0.0, 0.0, ocppj.parse_checked(text) if beforehand else None).effects
            for text in texts])
    assert answers[0] == answers[1]
    codes = [next((f[2] for f in frames(effects) if f[0] == 4), None) for effects in answers[1]]
    assert codes == [None, "OccurenceConstraintViolation", "NotSupported", "FormationViolation", None, None]


def test_a_boot_that_could_not_be_stored_leaves_the_session_as_it_was() -> None:
    m = machine()
    m.connected(1, "peer", NOW, 0.0)
    boot = json.dumps([2, "b1", "BootNotification", BOOT])
    step = m.received(1, boot, NOW, 0.0, 0.0)
    assert m.ever_accepted and m.boot_status == "Accepted"
    assert frames(step.fallback())[0][:3] == [4, "b1", "InternalError"]  # the host's writes failed
    assert not m.ever_accepted and m.boot_status is None
    again = m.received(1, boot, NOW, 0.0, 0.0)  # resent as it was: answered, not a duplicate id
    assert frames(again.effects)[0][:2] == [3, "b1"]


def test_a_call_whose_bookkeeping_could_not_be_stored_is_withdrawn_unsent() -> None:
    m = machine({"ever_accepted": 1, "last_boot_status": "Accepted"})
    m.connected(1, "peer", NOW, 0.0)
    reserve = {"connectorId": 1, "expiryDate": "2026-12-04T10:00:00Z", "idTag": "TAG"}
    step = m.send_call(SendCall("ReserveNow", reserve, {"allocate_reservation_id": True}, "CP1"), "ctl", NOW, 0.0)
    assert [w.op for w in step.effects if isinstance(w, Write)] == ["record_reservation_request"]
    [told] = [e for e in step.fallback() if isinstance(e, Tell)]
    assert told.message.outcome == "refused" and m.calls.outstanding is None
    later = m.send_call(SendCall("Reset", {"type": "Soft"}, {}, "CP1"), "ctl", NOW, 1.0)
    assert frames(later.effects)[0][2] == "Reset"  # the queue is not blocked by the withdrawn call


# -- what one station may store (issue 9, "sheer volume") ------------------------------------


def _meter_values(n: int, message_id: str) -> str:
    return json.dumps([2, message_id, "MeterValues", {"connectorId": 1, "meterValue": [
        {"timestamp": "2026-12-04T08:59:00Z", "sampledValue": [{"value": str(i)}]} for i in range(n)]}])


def test_a_meter_values_with_more_elements_than_allowed_is_an_occurrence_violation_and_stores_nothing() -> None:
    m = machine({"ever_accepted": 1}, max_meter_values_per_message=3)
    m.connected(1, "peer", NOW, 0.0)
    assert frames(m.received(1, _meter_values(3, "ok-1"), NOW, 0.0, 0.0).effects)[0][:2] == [3, "ok-1"]
    step = m.received(1, _meter_values(4, "big-1"), NOW, 0.0, 0.0)
    assert frames(step.effects)[0][:3] == [4, "big-1", "OccurenceConstraintViolation"]
    assert not [e for e in step.effects if isinstance(e, Write)]


def test_a_station_over_its_meter_values_per_minute_gets_generic_error_until_the_minute_is_over() -> None:
    m = machine({"ever_accepted": 1}, max_meter_values_per_minute=5)
    m.connected(1, "peer", NOW, 0.0)
    assert frames(m.received(1, _meter_values(3, "a"), NOW, 1.0, 1.0).effects)[0][0] == 3
    assert frames(m.received(1, _meter_values(2, "b"), NOW, 2.0, 2.0).effects)[0][0] == 3
    refused = m.received(1, _meter_values(1, "c"), NOW, 3.0, 3.0)
    assert frames(refused.effects)[0][:3] == [4, "c", "GenericError"]
    assert not [e for e in refused.effects if isinstance(e, Write)]
    # A minute after the window opened, the station may store again (and the refused one is resent).
    assert frames(m.received(1, _meter_values(1, "c2"), NOW, 61.5, 61.5).effects)[0][0] == 3


def test_meter_values_for_the_stations_own_transaction_read_no_owner_after_the_first() -> None:
    m = machine({"ever_accepted": 1, "last_boot_status": "Accepted"})
    asked: list[int] = []
    m.view.transaction_station = lambda tx: asked.append(tx) or ("CP1" if tx in (41, 77) else "OTHER")  # type: ignore[attr-defined]
    m.connected(1, "peer", NOW, 0.0)
    start = {"connectorId": 1, "idTag": "TAG", "meterStart": 0, "timestamp": "2026-12-04T08:59:00Z"}
    m.received(1, json.dumps([2, "s1", "StartTransaction", start]), NOW, 0.0, 0.0)  # handed out 41

    def meter(message_id: str, tx: int) -> Any:
        return m.received(1, json.dumps([2, message_id, "MeterValues", {"connectorId": 1, "transactionId": tx,
                          "meterValue": [{"timestamp": "2026-12-04T09:00:00Z", "sampledValue": [{"value": "1"}]}]}]),
                          NOW, 1.0, 1.0)

    for n in range(3):
        meter(f"own-{n}", 41)
    assert asked == []  # its own new transaction: no owner read at all
    meter("old-1", 77)
    meter("old-2", 77)  # started before this session: read once, then known
    foreign = meter("foreign-1", 5)
    assert asked == [77, 5]
    write = next(e for e in foreign.effects if isinstance(e, Write))
    assert write.kwargs == {"flag": "transaction of another charge point"}


def _signing_machine() -> tuple[StationMachine, Any]:
    from actors.ocpp import pki

    authority = pki.new_authority("Test CPO", NOW, 1)
    ids = iter(f"out-{n}" for n in range(100))
    m = StationMachine("CP1", settings=Settings(), view=FakeReads({"ever_accepted": True, "last_boot_status": "Accepted"}),
                       new_id=lambda: next(ids), authority=lambda: authority)
    m.connected(1, "127.0.0.1:5000", NOW, 0.0)
    return m, authority


def _csr_text(identity: str) -> str:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    csr = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, identity)])).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def test_a_signed_csr_is_answered_first_then_certificate_signed_is_sent_through_the_call_queue() -> None:
    m, _ = _signing_machine()
    step = m.received(1, json.dumps([2, "s1", "SignCertificate", {"csr": _csr_text("CP1")}]), NOW, 1.0, 1.0)
    sent = frames(step.effects)
    assert sent[0] == [3, "s1", {"status": "Accepted"}]
    assert sent[1][:3] == [2, "out-0", "CertificateSigned"] and "BEGIN CERTIFICATE" in sent[1][3]["certificateChain"]
    assert ArmTimeout("out-0", 30.0) in step.effects
    assert [w.op for w in step.effects if isinstance(w, Write)] == ["record_issued_certificate"]
    assert m.calls.outstanding is not None and m.calls.outstanding.action == "CertificateSigned"
    # Its answer ends it like any CALL; no operator waits for it.
    done = m.received(1, json.dumps([3, "out-0", {"status": "Accepted"}]), NOW, 2.0, 2.0)
    assert m.calls.outstanding is None and not [e for e in done.effects if isinstance(e, Tell)]
    assert [w.op for w in done.effects if isinstance(w, Write)] == ["record_station_event", "set_issued_certificate_status"]


def test_certificate_signed_waits_behind_an_outstanding_call_and_is_withdrawn_if_the_csr_was_not_stored() -> None:
    m, _ = _signing_machine()
    m.send_call(SendCall("Reset", {"type": "Soft"}, {}, "CP1"), "ctl", NOW, 0.5)
    step = m.received(1, json.dumps([2, "s1", "SignCertificate", {"csr": _csr_text("CP1")}]), NOW, 1.0, 1.0)
    assert [f[0] for f in frames(step.effects)] == [3]  # queued behind the Reset
    assert [c.action for c in m.calls.queued] == ["CertificateSigned"]
    fallback = step.fallback()  # the certificate could not be stored: InternalError, nothing sent later
    assert frames(fallback)[0][:3] == [4, "s1", "InternalError"]
    assert not m.calls.queued


def test_a_csr_for_another_identity_is_rejected_and_starts_no_call() -> None:
    m, _ = _signing_machine()
    step = m.received(1, json.dumps([2, "s1", "SignCertificate", {"csr": _csr_text("CP9")}]), NOW, 1.0, 1.0)
    assert frames(step.effects) == [[3, "s1", {"status": "Rejected"}]]
    assert m.calls.outstanding is None


def test_no_boot_notification_is_triggered_once_accepted_with_the_extended_trigger_either() -> None:
    from actors.ocpp.machine import refusal_reason

    for action in ("TriggerMessage", "ExtendedTriggerMessage"):
        assert "errata 3.40" in str(refusal_reason("Accepted", action, {"requestedMessage": "BootNotification"}))
        assert refusal_reason("Pending", action, {"requestedMessage": "BootNotification"}) is None
