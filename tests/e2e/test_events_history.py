"""End to end: issue 11's event stream and history, against the real system over real sockets.

A client of ``GET /api/v1/events`` follows a simulated charge point, goes away,
comes back with ``Last-Event-ID`` and gets exactly what it missed, then live events;
``ctl explain tag`` says why a tag was refused and where; ``ctl station log`` and
``ctl audit`` show an operator's Reset, its answer and who sent it.
"""

from __future__ import annotations

import json
import os
import pwd
import queue
import socket
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.chargepoint import ChargePoint
from tests.support.system import RUN, CentralSystem, wait_for

pytestmark = pytest.mark.e2e

WAIT = 20.0


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CentralSystem]:
    csms = CentralSystem(tmp_path_factory.mktemp("events"), extra_args=["--data-transfer-vendor", "ACME"]).start()
    yield csms
    csms.stop()


@pytest.fixture(scope="module")
def keys(system: CentralSystem) -> dict[str, str]:
    return {scope: system.ctl_ok("api-key", "create", f"events-{scope}", "--scope", scope)["key"]
            for scope in ("read", "admin")}


class EventClient:
    """A Server-Sent Events client on a plain socket: parsed events in ``events``, in order."""

    def __init__(self, system: CentralSystem, key: str, last_event_id: int | None = None) -> None:
        self.sock = socket.create_connection(("127.0.0.1", system.api_port), timeout=WAIT)
        resume = f"Last-Event-ID: {last_event_id}\r\n" if last_event_id is not None else ""
        self.sock.sendall((f"GET /api/v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n"
                           f"Accept: text/event-stream\r\n{resume}\r\n").encode())
        self.file = self.sock.makefile("rb")
        self.status = self.file.readline().decode()
        while self.file.readline() not in (b"\r\n", b""):
            pass  # headers
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()
        assert self.ready.wait(WAIT), "no retry line: the stream did not start"

    def _read(self) -> None:
        event: dict[str, Any] = {}
        try:
            for raw in self.file:
                line = _unchunk(raw)
                if line is None:
                    continue
                if line.startswith("retry:"):
                    self.ready.set()
                elif line.startswith("id: "):
                    event["id"] = int(line[4:])
                elif line.startswith("event: "):
                    event["event"] = line[7:]
                elif line.startswith("data: "):
                    event["data"] = json.loads(line[6:])
                elif line == "" and "event" in event:
                    self.events.put(event)
                    event = {}
        except (OSError, ValueError):
            pass

    def take(self, station: str, count: int) -> list[dict[str, Any]]:
        """The next ``count`` events about ``station`` (others skipped), waiting for each."""
        found: list[dict[str, Any]] = []
        while len(found) < count:
            event = self.events.get(timeout=WAIT)
            if event["data"].get("station") == station:
                found.append(event)
        return found

    def close(self) -> None:
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.thread.join(5)


def _unchunk(raw: bytes) -> str | None:
    """A line of the chunked body: chunk-size lines are dropped (events never span a size line
    in practice: aiohttp writes each event as one chunk)."""
    line = raw.decode().rstrip("\r\n")
    if line and all(c in "0123456789abcdefABCDEF" for c in line):
        return None
    return line


def kinds(events: list[dict[str, Any]]) -> list[str]:
    return [e["event"] for e in events]


def answering(**replies: Any) -> dict[str, Any]:
    return {action: (lambda payload, r=reply: r) for action, reply in replies.items()}


def test_an_event_client_follows_a_charge_point_and_resumes_with_last_event_id(
        system: CentralSystem, keys: dict[str, str]) -> None:
    system.ctl_ok("tag", "add", "EVTAG")
    watcher = EventClient(system, keys["read"])  # stays connected throughout: the reference
    client = EventClient(system, keys["read"])
    assert " 200 " in client.status
    cp = ChargePoint(system.url, "EVCP1").connect()
    try:
        cp.boot(vendor="ACME", model="Fast")
        cp.status(1, "Available")
        tx = cp.start(1, "EVTAG", meter_start=100)["transactionId"]
        cp.stop(tx, 1600, reason="EVDisconnected")
        seen = client.take("EVCP1", 5)
        assert kinds(seen) == ["station.connected", "station.booted", "connector.status", "transaction.started",
                               "transaction.stopped"]
        assert [e["id"] for e in seen] == sorted(e["id"] for e in seen)
        booted, status, started, stopped = (e["data"] for e in seen[1:])
        assert (booted["status"], booted["vendor"], booted["model"]) == ("Accepted", "ACME", "Fast")
        assert (status["connector"], status["status"], status["error_code"]) == (1, "Available", "NoError")
        assert "info" in status and "at" in status
        assert (started["transaction_id"], started["connector"], started["id_tag_status"]) == (tx, 1, "Accepted")
        assert "EVTAG" not in json.dumps(started)
        assert (stopped["transaction_id"], stopped["energy_wh"], stopped["reason"]) == (tx, 1500, "EVDisconnected")
        last = seen[-1]["id"]
        client.close()

        # Meanwhile: more happens.
        cp.status(1, "Charging")
        assert cp.call("DataTransfer", {"vendorId": "ACME", "messageId": "temp", "data": "21.5"})["status"] == "Accepted"
        cp.close()
        missed = watcher.take("EVCP1", 5 + 3)[5:]
        assert kinds(missed) == ["connector.status", "datatransfer", "station.disconnected"]
        assert {k: missed[1]["data"][k] for k in ("vendor_id", "message_id", "data")} == {
            "vendor_id": "ACME", "message_id": "temp", "data": "21.5"}
        kept = system.ctl_ok("station", "show", "EVCP1")["data_transfers"]
        assert [(d["vendor_id"], d["message_id"], d["data"]) for d in kept] == [("ACME", "temp", "21.5")]

        back = EventClient(system, keys["read"], last_event_id=last)
        caught_up = back.take("EVCP1", 3)
        assert caught_up == missed  # exactly what it missed, ids included
        cp2 = ChargePoint(system.url, "EVCP1").connect()  # then live ones
        try:
            (live,) = back.take("EVCP1", 1)
            assert live["event"] == "station.connected" and live["id"] > missed[-1]["id"]
        finally:
            cp2.close()
        back.close()
    finally:
        cp.close()
        watcher.close()


def test_the_event_stream_needs_a_key_and_takes_last_event_id_as_a_query_too(
        system: CentralSystem, keys: dict[str, str]) -> None:
    request = urllib.request.Request(system.api_url + "/api/v1/events")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=WAIT)
    assert caught.value.code == 401
    bad = urllib.request.Request(system.api_url + "/api/v1/events?last_event_id=x",
                                 headers={"Authorization": f"Bearer {keys['read']}"})
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(bad, timeout=WAIT)
    assert caught.value.code == 422


def ctl_human(system: CentralSystem, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, RUN, "ctl", "--admin-port", str(system.admin_port), *args],
                          capture_output=True, text=True, timeout=60)


def test_explain_tag_names_the_station_and_the_reason_of_a_refusal(system: CentralSystem) -> None:
    system.ctl_ok("tag", "add", "BLOCKED9", "--status", "Blocked")
    with ChargePoint(system.url, "EXPLAIN1") as cp:
        cp.boot()
        assert cp.authorize("NOSUCH9")["status"] == "Invalid"
        assert cp.authorize("BLOCKED9")["status"] == "Blocked"
        assert cp.start(2, "BLOCKED9")["idTagInfo"]["status"] == "Blocked"
    unknown = system.ctl_ok("explain", "tag", "NOSUCH9")
    assert unknown["tag"] is None
    assert [(d["station_id"], d["action"], d["status"], d["reason"]) for d in unknown["decisions"]] == [
        ("EXPLAIN1", "Authorize", "Invalid", "unknown")]
    blocked = system.ctl_ok("explain", "tag", "blocked9")  # tags are case-insensitive
    assert [(d["station_id"], d["connector_id"], d["action"], d["reason"]) for d in blocked["decisions"]] == [
        ("EXPLAIN1", 2, "StartTransaction", "blocked"), ("EXPLAIN1", None, "Authorize", "blocked")]
    human = ctl_human(system, "explain", "tag", "NOSUCH9")
    assert human.returncode == 0, human.stderr
    assert "unknown to the central system" in human.stdout
    assert "EXPLAIN1" in human.stdout and "unknown" in human.stdout.splitlines()[-1]


def test_station_log_and_audit_show_a_reset_sent_through_ctl_its_answer_and_who(
        system: CentralSystem, keys: dict[str, str]) -> None:
    with ChargePoint(system.url, "LOGCP1", handlers=answering(Reset={"status": "Accepted"})) as cp:
        cp.boot()
        result = system.ctl_ok("reset", "LOGCP1", "--type", "Soft")
        assert result["response"] == {"status": "Accepted"}
        # The frame log is written at most every 0.5 s (when the host's writer is idle at once).
        def answered_reset() -> list[tuple[str, Any]] | None:
            frames = [(row["direction"], json.loads(row["frame"])) for row in system.ctl_ok("station", "log", "LOGCP1")]
            return frames if any(d == "in" and f[0] == 3 and f[2] == {"status": "Accepted"} for d, f in frames) else None

        frames = wait_for(answered_reset, WAIT, message="the Reset and its answer in the frame log")
        (call_at,) = [i for i, (d, f) in enumerate(frames) if d == "out" and f[0] == 2 and f[2] == "Reset"]
        message_id = frames[call_at][1][1]
        assert frames[call_at][1][3] == {"type": "Soft"}
        assert ("in", [3, message_id, {"status": "Accepted"}]) in frames[call_at + 1:]
        assert frames[0][0] == "in" and frames[0][1][2] == "BootNotification"  # oldest first, both directions
        assert len(system.ctl_ok("station", "log", "LOGCP1", "--limit", "2")) == 2
    user = pwd.getpwuid(os.getuid()).pw_name
    audit = system.ctl_ok("audit", "--station", "LOGCP1")
    assert [(a["who"], a["command"], a["payload"], a["outcome"], a["answer"]) for a in audit] == [
        (f"local:{user}", "Reset", {"type": "Soft"}, "result", {"status": "Accepted"})]
    human = ctl_human(system, "audit", "--station", "LOGCP1")
    assert human.returncode == 0 and f"local:{user}" in human.stdout and "Reset" in human.stdout
    # The same through the HTTP API; the audit needs an admin key.
    def get(path: str, key: str) -> Any:
        request = urllib.request.Request(system.api_url + path, headers={"Authorization": f"Bearer {key}"})
        with urllib.request.urlopen(request, timeout=WAIT) as response:
            return json.loads(response.read())

    assert get("/api/v1/stations/LOGCP1/log?limit=100", keys["read"]) == system.ctl_ok("station", "log", "LOGCP1",
                                                                                      "--limit", "100")
    assert get("/api/v1/audit?station=LOGCP1", keys["admin"])[0]["command"] == "Reset"
    with pytest.raises(urllib.error.HTTPError) as caught:
        get("/api/v1/audit", keys["read"])
    assert caught.value.code == 403
    assert get("/api/v1/tags/BLOCKED9/decisions", keys["read"])["decisions"][0]["reason"] == "blocked"


def test_data_commands_are_audited_without_their_secrets(system: CentralSystem) -> None:
    system.ctl_ok("station", "add", "AUDITCP", "--password", "s3cret-pass")
    entry = system.ctl_ok("audit", "--limit", "5")[0]
    assert (entry["command"], entry["station_id"], entry["outcome"]) == ("station.add", "AUDITCP", "done")
    assert entry["payload"]["password"] == "***"
    assert "s3cret-pass" not in json.dumps(system.ctl_ok("audit"))


def test_a_request_to_a_station_that_is_not_connected_is_audited_as_such(system: CentralSystem) -> None:
    system.ctl_ok("station", "add", "OFFLINE1")
    assert system.ctl("reset", "OFFLINE1", "--type", "Hard").code == 3
    assert system.ctl("unlock", "NOSUCHCP", "--connector", "1").code == 3
    added, offline = system.ctl_ok("audit", "--station", "OFFLINE1")[::-1]  # oldest first
    assert added["command"] == "station.add"
    assert (offline["command"], offline["payload"], offline["outcome"], offline["answer"]["description"]) == (
        "Reset", {"type": "Hard"}, "not-connected", "charge point is not connected")
    (unknown,) = system.ctl_ok("audit", "--station", "NOSUCHCP")
    assert (unknown["command"], unknown["answer"]["description"]) == ("UnlockConnector", "unknown charge point")
