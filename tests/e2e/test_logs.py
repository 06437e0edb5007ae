"""End to end: what the log says about a station's visit and about the node's stop (issue 12, "Logs").

A real node, a simulated charge point that connects, boots and leaves, another
one still connected when the node stops; then the log file is read: each event
said once, every line about a station names it in the ``station ID: ...`` form
(which ``--log-format json`` turns into the ``station`` field), every close says
who closed and why, and the stop is a stop, not a crash with restarts.
"""

from __future__ import annotations

import json
import re
from collections import Counter

import pytest

from actors.logformat import _STATION
from tests.support.chargepoint import ChargePoint
from tests.support.system import CentralSystem, wait_for

pytestmark = pytest.mark.e2e

TEXT_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (?P<level>[A-Z]+) (?P<logger>\S+): (?P<message>.*)$")


def _messages(log: str) -> list[tuple[str, str]]:
    """(logger, message) of each line of a text log, without its time (tracebacks are not lines)."""
    return [(m["logger"], m["message"]) for line in log.splitlines() if (m := TEXT_LINE.match(line))]


def test_a_stations_visit_and_the_nodes_stop_are_each_said_once_naming_the_station(tmp_path_factory) -> None:
    system = CentralSystem(tmp_path_factory.mktemp("visitlog"), extra_args=["--log-level", "DEBUG", "--hosts", "2"])
    system.start()
    try:
        with ChargePoint(system.url, "LOGVISIT-1") as cp:
            assert cp.booted()["status"] == "Accepted"
            cp.call("Heartbeat", {})
        stays = ChargePoint(system.url, "LOGSTAYS-1").connect()  # still connected when the node stops
        assert stays.booted()["status"] == "Accepted"
        # The central system has seen the first one go before the stop begins.
        wait_for(lambda: "LOGVISIT-1: connection closed" in system.log(), 10, message="the first one's close logged")
    finally:
        system.stop()
    lines = _messages(system.log())
    assert lines, system.log()

    for station in ("LOGVISIT-1", "LOGSTAYS-1"):
        about = [message for _, message in lines if station in message]
        unnamed = [m for m in about if not ((found := _STATION.match(m)) and found.group(1) == station)]
        assert unnamed == [], unnamed
        repeated = [m for m, n in Counter(about).items() if n > 1]
        assert repeated == [], repeated
    said = [message for _, message in lines]
    assert "station LOGVISIT-1: connection closed by the charge point: 1000 (OK)" in said
    assert sum(1 for m in said if m.startswith("station LOGVISIT-1: connected from ")) == 1
    assert "station LOGSTAYS-1: connection closed by the central system: central system shutting down (1001)" in said

    # websockets' own lines would say again what ours say (and its DEBUG ones carry request headers).
    assert [line for line in lines if line[0].startswith("websockets")] == []
    closes = [m for m in said if "connection" in m and ("closed" in m or "open" in m) and "actor connection" not in m]
    assert all(_STATION.match(m) for m in closes), closes
    assert [m for m in said if "None" in m] == []
    assert [m for m in said if "exited unexpectedly" in m or "restarting" in m] == []
    assert "registry: the node is stopping (SIGTERM); its actors end" in said


def test_a_sigterm_to_every_process_of_the_node_stops_it_without_restarts(tmp_path_factory) -> None:
    system = CentralSystem(tmp_path_factory.mktemp("grouplog"), extra_args=["--log-format", "json"],
                           own_process_group=True).start()
    try:
        with ChargePoint(system.url, "LOGGROUP-1") as cp:
            assert cp.booted()["status"] == "Accepted"
            seconds = system.stop(whole_group=True)  # what systemd does: every process at once
    finally:
        system.stop()
    assert seconds < 10.0
    records = [json.loads(line) for line in system.log().splitlines() if line.startswith("{")]
    about = [r for r in records if "LOGGROUP-1" in r["message"]]
    assert about and all(r.get("station") == "LOGGROUP-1" for r in about), about
    messages = [r["message"] for r in records]
    assert [m for m in messages if "exited unexpectedly" in m or "restarting" in m] == []
    assert any(m.startswith("registry: the node is stopping") for m in messages), messages
