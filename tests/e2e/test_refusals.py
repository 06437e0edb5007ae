"""Requests the central system refuses to send, because OCPP forbids them now.

OCPP 1.6 §4.2: while Pending, RemoteStartTransaction and RemoteStopTransaction
are not allowed; after Rejected the central system SHOULD NOT initiate any
message. Errata 3.40: no TriggerMessage(BootNotification) once Accepted.
A refused command exits 2 with a clear reason and nothing reaches the charge point.
"""

from __future__ import annotations

import pytest

from tests.support.chargepoint import ChargePoint
from tests.support.octt import nothing_received

ANSWERS = {
    "RemoteStartTransaction": lambda p: {"status": "Accepted"},
    "Reset": lambda p: {"status": "Accepted"},
    "TriggerMessage": lambda p: {"status": "Accepted"},
    "GetConfiguration": lambda p: {"configurationKey": []},
}




def test_remote_start_is_refused_while_the_charge_point_is_pending(csms, station_id):
    csms.ctl_ok("station", "add", station_id, "--registration", "pending")
    with ChargePoint(csms.url, station_id, handlers=ANSWERS) as cp:
        assert cp.boot()["status"] == "Pending"
        refused = csms.ctl("remote-start", station_id, "--id-tag", "T1", "--connector", "1")
        assert refused.code == 2
        assert refused.json["error"]["code"] == "Refused"
        assert "Pending" in refused.json["error"]["description"]
        assert nothing_received(cp)
        # Other requests are allowed while Pending (e.g. to configure the charge point).
        assert csms.ctl("get-config", station_id).code == 0
        assert cp.wait_call("GetConfiguration") == {}


def test_nothing_is_sent_to_a_charge_point_that_was_rejected(csms, station_id):
    csms.ctl_ok("station", "add", station_id, "--registration", "rejected")
    with ChargePoint(csms.url, station_id, handlers=ANSWERS) as cp:
        assert cp.boot()["status"] == "Rejected"
        refused = csms.ctl("reset", station_id, "--type", "Soft")
        assert refused.code == 2
        assert "Rejected" in refused.json["error"]["description"]
        assert nothing_received(cp)


@pytest.mark.parametrize("registration, allowed", [("accepted", False), ("pending", True)])
def test_trigger_boot_notification_is_only_sent_before_the_charge_point_is_accepted(csms, station_id, registration, allowed):
    csms.ctl_ok("station", "add", station_id, "--registration", registration)
    with ChargePoint(csms.url, station_id, handlers=ANSWERS) as cp:
        cp.boot()
        result = csms.ctl("trigger", station_id, "BootNotification")
        if allowed:
            assert result.code == 0
            assert cp.wait_call("TriggerMessage") == {"requestedMessage": "BootNotification"}
        else:
            assert result.code == 2
            assert "errata 3.40" in result.json["error"]["description"]
            assert nothing_received(cp)
