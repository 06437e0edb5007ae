"""What the station machine writes for the history (issue 11): events in the same step as
the write they report, authorization decisions with their reason, DataTransfer data kept,
and the audit record of an operator's request once its answer is known."""

from __future__ import annotations

import json
from typing import Any

from actors.messages import CallReply, SendCall
from actors.ocpp.authorization import decide
from actors.ocpp.effects import Effect, Tell, Write
from actors.ocpp.machine import StationMachine
from actors.settings import Settings
from tests.unit.test_machine import NOW, FakeReads

ACCEPTED = {"ever_accepted": 1, "last_boot_status": "Accepted", "registration": "accepted"}
TAGS = {
    "GOOD": {"id_tag": "GOOD", "status": "Accepted", "expiry": None, "parent": None},
    "BAD": {"id_tag": "BAD", "status": "Blocked", "expiry": None, "parent": None},
    "CHILD": {"id_tag": "CHILD", "status": "Accepted", "expiry": None, "parent": "GROUP"},
    "GROUP": {"id_tag": "GROUP", "status": "Blocked", "expiry": None, "parent": None},
    "OLD": {"id_tag": "OLD", "status": "Accepted", "expiry": "2020-01-01T00:00:00.000Z", "parent": None},
}


class Reads(FakeReads):
    def get_transaction(self, tx_id: int) -> dict[str, Any] | None:
        return {"id": tx_id, "station_id": "CP1", "connector_id": 2, "meter_start": 1000, "stopped_at": None,
                "start_timestamp": "2026-12-04T08:00:00.000Z"}

    def latest_meter_values(self, tx_id: int, count: int) -> list[dict[str, Any]]:
        return []


def machine(**settings: Any) -> StationMachine:
    ids = iter(f"out-{n}" for n in range(100))
    m = StationMachine("CP1", settings=Settings(**settings), view=Reads(ACCEPTED, TAGS), new_id=lambda: next(ids))
    m.connected(1, "peer", NOW, 0.0)
    return m


def writes(effects: list[Effect], op: str) -> list[tuple[Any, ...]]:
    return [e.args for e in effects if isinstance(e, Write) and e.op == op]


def call(m: StationMachine, action: str, payload: dict[str, Any], message_id: str = "m1") -> list[Effect]:
    return m.received(1, json.dumps([2, message_id, action, payload]), NOW, 0.0, 0.0).effects


def events(effects: list[Effect]) -> list[tuple[str, dict[str, Any]]]:
    return [(args[0], args[3]) for args in writes(effects, "record_event")]


def test_connecting_and_disconnecting_are_events_with_the_connection_write() -> None:
    m = StationMachine("CP1", settings=Settings(), view=Reads(ACCEPTED, TAGS))
    opened = m.connected(1, "10.0.0.1:5000", NOW, 0.0).effects
    assert [w.op for w in opened if isinstance(w, Write)] == ["mark_connected", "record_event"]
    assert events(opened) == [("station.connected", {"peer": "10.0.0.1:5000"})]
    closed = m.disconnected(1, "connection lost", NOW).effects
    assert events(closed) == [("station.disconnected", {"reason": "connection lost"})]


def test_a_status_notification_is_a_connector_status_event() -> None:
    effects = call(machine(), "StatusNotification", {"connectorId": 2, "errorCode": "NoError", "status": "Charging",
                                                     "info": "plugged"})
    assert writes(effects, "record_status")
    ((kind, data),) = events(effects)
    assert kind == "connector.status"
    assert {k: data[k] for k in ("connector", "status", "error_code", "info")} == {
        "connector": 2, "status": "Charging", "error_code": "NoError", "info": "plugged"}


def test_a_start_is_a_transaction_started_event_and_a_decision_without_the_id_tag_in_the_event() -> None:
    effects = call(machine(), "StartTransaction", {"connectorId": 2, "idTag": "GOOD", "meterStart": 1000,
                                                   "timestamp": "2026-12-04T08:59:00Z"})
    ((kind, data),) = events(effects)
    assert kind == "transaction.started"
    assert {k: data[k] for k in ("transaction_id", "connector", "id_tag_status")} == {
        "transaction_id": 41, "connector": 2, "id_tag_status": "Accepted"}
    assert "GOOD" not in json.dumps(data)  # never the idTag in an event
    assert writes(effects, "record_authorization") == [("GOOD", "CP1", 2, "StartTransaction", "Accepted", "accepted", NOW)]


def test_a_stop_is_a_transaction_stopped_event_with_its_energy_and_reason() -> None:
    effects = call(machine(), "StopTransaction", {"transactionId": 41, "meterStop": 8500, "reason": "EVDisconnected",
                                                  "timestamp": "2026-12-04T09:00:00Z"})
    ((kind, data),) = events(effects)
    assert kind == "transaction.stopped"
    assert {k: data[k] for k in ("transaction_id", "energy_wh", "reason")} == {
        "transaction_id": 41, "energy_wh": 7500, "reason": "EVDisconnected"}


def test_authorize_records_the_decision_and_its_reason() -> None:
    m = machine()
    for n, (tag, status, reason) in enumerate([("NOPE", "Invalid", "unknown"), ("BAD", "Blocked", "blocked"),
                                               ("OLD", "Expired", "expired"), ("CHILD", "Blocked", "parent blocked"),
                                               ("GOOD", "Accepted", "accepted")]):
        effects = call(m, "Authorize", {"idTag": tag}, message_id=f"a{n}")
        assert writes(effects, "record_authorization") == [(tag, "CP1", None, "Authorize", status, reason, NOW)]
        answer = [json.loads(e.text) for e in effects if type(e).__name__ == "Send"][0]
        assert answer[2]["idTagInfo"]["status"] == status


def test_a_concurrent_start_is_recorded_with_reason_concurrent() -> None:
    class Busy(Reads):
        def active_transactions_for_tag(self, id_tag: str) -> list[dict[str, Any]]:
            return [{"station_id": "CP9", "connector_id": 1}]

    m = StationMachine("CP1", settings=Settings(concurrent_tx=True), view=Busy(ACCEPTED, TAGS))
    m.connected(1, "peer", NOW, 0.0)
    effects = call(m, "StartTransaction", {"connectorId": 1, "idTag": "GOOD", "meterStart": 0,
                                           "timestamp": "2026-12-04T08:59:00Z"})
    assert writes(effects, "record_authorization")[0][4:6] == ("ConcurrentTx", "concurrent")


def test_decide_names_each_reason() -> None:
    assert decide(None, NOW)[1] == "unknown"
    assert decide(TAGS["CHILD"], NOW, TAGS["GROUP"]) == ({"status": "Blocked", "parentIdTag": "GROUP"}, "parent blocked")
    assert decide(TAGS["CHILD"], NOW, TAGS["GOOD"])[1] == "accepted"


def test_an_accepted_vendor_data_transfer_is_kept_and_streamed() -> None:
    m = machine(data_transfer_vendors=(("ACME", ()),))
    effects = call(m, "DataTransfer", {"vendorId": "ACME", "messageId": "temp", "data": "21.5"})
    assert writes(effects, "record_data_transfer") == [("CP1", "ACME", "temp", "21.5", NOW)]
    assert events(effects) == [("datatransfer", {"vendor_id": "ACME", "message_id": "temp", "data": "21.5"})]
    refused = call(m, "DataTransfer", {"vendorId": "OTHER", "data": "x"}, message_id="m2")
    assert writes(refused, "record_data_transfer") == [] and events(refused) == []


def test_an_operator_request_is_audited_with_who_and_the_answer_when_it_comes() -> None:
    m = machine()
    sent = m.send_call(SendCall("Reset", {"type": "Soft"}, station_id="CP1", requested_by="local:ops"), "asker", NOW, 0.0)
    assert writes(sent.effects, "record_audit") == []  # not yet: the answer is not known
    answered = m.received(1, json.dumps([3, "out-0", {"status": "Accepted"}]), NOW, 0.1, 0.1).effects
    assert writes(answered, "record_audit") == [
        ("local:ops", "Reset", "CP1", {"type": "Soft"}, NOW, "result", {"status": "Accepted"})]
    # If the audit record cannot be written, the operator still gets the answer.
    step = m.send_call(SendCall("Reset", {"type": "Hard"}, station_id="CP1", requested_by="k"), "asker", NOW, 0.2)
    failed = m.received(1, json.dumps([4, "out-1", "NotSupported", "no", {}]), NOW, 0.3, 0.3)
    assert writes(failed.effects, "record_audit")[0][5:] == ("error", {"code": "NotSupported", "description": "no",
                                                                      "details": {}})
    assert [e for e in failed.fallback() if isinstance(e, Tell) and isinstance(e.message, CallReply)]
    assert not [e for e in failed.fallback() if isinstance(e, Write)]
    assert step.effects  # the Hard reset was sent


def test_a_refused_request_is_audited_too() -> None:
    m = StationMachine("CP1", settings=Settings(), view=Reads({**ACCEPTED, "last_boot_status": "Rejected"}, TAGS))
    step = m.send_call(SendCall("Reset", {"type": "Soft"}, station_id="CP1", requested_by="dash"), "asker", NOW, 0.0)
    ((who, action, station, payload, _, outcome, answer),) = writes(step.effects, "record_audit")
    assert (who, action, station, outcome, answer["code"]) == ("dash", "Reset", "CP1", "refused", "Refused")
    assert [e for e in step.fallback() if isinstance(e, Tell)]


def test_an_accepted_local_list_records_a_decision_per_entry_with_its_status() -> None:
    class WithList(Reads):
        def local_list_state(self, station_id: str) -> dict[str, Any]:
            return {"version": 0, "entries": {}, "reported_version": None, "last_status": None}

    m = StationMachine("CP1", settings=Settings(), view=WithList(ACCEPTED, TAGS), new_id=lambda: "out-0")
    m.connected(1, "peer", NOW, 0.0)
    payload = {"listVersion": 3, "updateType": "Differential", "localAuthorizationList": [
        {"idTag": "GOOD", "idTagInfo": {"status": "Accepted"}}, {"idTag": "BAD", "idTagInfo": {"status": "Blocked"}},
        {"idTag": "GONE"}]}
    m.send_call(SendCall("SendLocalList", payload, station_id="CP1", requested_by="ops"), "asker", NOW, 0.0)
    answered = m.received(1, json.dumps([3, "out-0", {"status": "Accepted"}]), NOW, 0.1, 0.1).effects
    (rows,) = writes(answered, "record_authorizations")
    assert rows == ([("GOOD", "CP1", None, "SendLocalList", "Accepted", "accepted", NOW),
                     ("BAD", "CP1", None, "SendLocalList", "Blocked", "blocked", NOW)],)
