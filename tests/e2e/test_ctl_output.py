"""End to end: the control script prints for people or prints one JSON document, never a mix (issue 12).

CONTROL.md: "Without --json output is for people (aligned tables, short
sentences); with --json it is exactly one JSON document on stdout." Every
read-only command runs both ways against one node that has something to show
for each: a connected station with a transaction, a reservation, a charging
profile and its configuration, a tag, and an identity waiting for approval.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.support.chargepoint import ChargePoint
from tests.support.system import RUN, CentralSystem

pytestmark = pytest.mark.e2e

STATION = "OUTPUT-1"
TAG = "OUTPUT-TAG"
PROFILE = {"chargingProfileId": 7, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile",
           "chargingProfileKind": "Relative",
           "chargingSchedule": {"chargingRateUnit": "A",
                                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16},
                                                           {"startPeriod": 3600, "limit": 10, "numberPhases": 1}]}}
READ_ONLY = [
    ("station", "list"),
    ("station", "list", "--pending"),
    ("station", "show", STATION),
    ("tag", "list"),
    ("tx", "list"),
    ("tx", "list", "--station", STATION, "--active"),
    ("tx", "show", "{tx}"),
    ("reservation", "list"),
    ("reservation", "list", "--station", STATION),
    ("profile", "list", STATION),
    ("status",),
    ("composite-schedule", STATION, "--connector", "1", "--duration", "7200", "--local"),
    ("get-config", STATION),
]


@dataclass
class Node:
    system: CentralSystem
    tx: int

    def ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        argv = [a.replace("{tx}", str(self.tx)) for a in args]
        return subprocess.run([sys.executable, RUN, "ctl", "--admin-port", str(self.system.admin_port), *argv],
                              capture_output=True, text=True, timeout=60, cwd=str(self.system.tmp))


@pytest.fixture(scope="module")
def node(tmp_path_factory) -> Iterator[Node]:
    system = CentralSystem(tmp_path_factory.mktemp("ctloutput"), extra_args=["--unknown-stations", "pending"]).start()
    answers = {
        "ReserveNow": lambda p: {"status": "Accepted"},
        "SetChargingProfile": lambda p: {"status": "Accepted"},
        "GetConfiguration": lambda p: {"configurationKey": [{"key": "HeartbeatInterval", "readonly": False,
                                                             "value": "300"}], "unknownKey": []},
    }
    cp = ChargePoint(system.url, STATION, handlers=answers)
    try:
        system.ctl_ok("station", "add", STATION, "--connectors", "2")
        system.ctl_ok("tag", "add", TAG, "--expiry", "2030-01-01T00:00:00Z")
        with pytest.raises(Exception):  # noqa: B017 - refused (404) and listed for approval, whatever the client raises
            ChargePoint(system.url, "OUTPUT-KNOCKS").connect()
        cp.connect()
        cp.booted()
        tx = cp.start(1, TAG, 100)["transactionId"]
        cp.call("MeterValues", {"connectorId": 1, "transactionId": tx, "meterValue": [
            {"timestamp": "2026-12-07T10:00:00Z", "sampledValue": [{"value": "150", "measurand": "Energy.Active.Import.Register"}]}]})
        system.ctl_ok("reserve", STATION, "--connector", "2", "--id-tag", TAG, "--expires-in", "900")
        system.ctl_ok("set-profile", STATION, "--connector", "1", "--profile", json.dumps(PROFILE))
        system.ctl_ok("get-config", STATION)  # remembered: station show lists the keys
        yield Node(system, tx)
    finally:
        cp.close()
        system.stop()


def _ids(args: tuple[str, ...]) -> str:
    return " ".join(args)


@pytest.mark.parametrize("args", READ_ONLY, ids=_ids)
def test_a_read_only_command_with_json_prints_exactly_one_json_document(node: Node, args: tuple[str, ...]) -> None:
    done = node.ctl(*args, "--json")
    assert done.returncode == 0, done
    document = json.loads(done.stdout)  # raises on anything before or after the one document
    assert isinstance(document, (dict, list)) and document
    assert done.stderr == ""


@pytest.mark.parametrize("args", READ_ONLY, ids=_ids)
def test_a_read_only_command_without_json_prints_no_json(node: Node, args: tuple[str, ...]) -> None:
    done = node.ctl(*args)
    assert done.returncode == 0, done
    out = done.stdout
    assert out.strip() and done.stderr == ""
    lines = out.splitlines()
    assert not any(line.lstrip().startswith(("{", "[")) for line in lines), out
    for json_mark in ('{"', '["', '":', "[]", "{}"):
        assert json_mark not in out, f"{json_mark!r} in:\n{out}"
    with pytest.raises(json.JSONDecodeError):
        json.loads(out)


def test_the_human_profile_list_names_each_connector_its_limit_and_its_profiles(node: Node) -> None:
    out = node.ctl("profile", "list", STATION).stdout
    assert "connector 0: no limit now, no profiles" in out
    assert "connector 1: limit now 16 A" in out
    row = next(line.split() for line in out.splitlines() if line.split()[:1] == ["7"])
    assert row[1:5] == ["TxDefaultProfile", "0", "Relative", "A"]
    assert "0 s: 16, 3600 s: 10 (1 phases)" in out


def test_errors_are_one_json_document_with_json_and_a_sentence_on_stderr_without(node: Node) -> None:
    for args in (("station", "show", "NO-SUCH"), ("tx", "show", "999999"), ("profile", "list", "NO-SUCH"),
                 ("get-config", "NO-SUCH"), ("tx", "show", "not-a-number")):
        with_json = node.ctl(*args, "--json")
        assert with_json.returncode in (2, 3), with_json
        assert set(json.loads(with_json.stdout)) >= {"error"}
        without = node.ctl(*args)
        assert without.returncode == with_json.returncode and without.stdout == ""
        assert len(without.stderr.strip().splitlines()) == 1 and not without.stderr.lstrip().startswith("{")
