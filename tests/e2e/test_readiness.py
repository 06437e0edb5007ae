"""End to end: ``/readyz`` on the metrics port (and on the HTTP API's, CONTROL.md) asks the actors and
the database, ``/healthz`` does not.

A station host is killed with SIGKILL (as in test_supervision.py): readiness
turns 503 and names the host, then 200 again once the registry has restarted
it; liveness stays 200 throughout, and the restart is counted.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import re
import signal
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from tests.support.chargepoint import ChargePoint
from tests.support.system import CentralSystem, station_actor_pid, wait_for

pytestmark = pytest.mark.e2e

RESTART_DEADLINE = 20.0


@pytest.fixture
def system(csms: CentralSystem) -> Iterator[CentralSystem]:
    """The module's central system (tests/conftest.py), ready again after each test."""
    yield csms
    wait_for(lambda: get(csms, "/readyz")[0] == 200, RESTART_DEADLINE, interval=0.1, message="/readyz to be 200 again")


def get(system: CentralSystem, path: str, port: int = 0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port or system.metrics_port}{path}", timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def restarts(system: CentralSystem) -> float:
    found = re.search(r'^csms_actor_restarts_total\{role="host"\} (\S+)$', get(system, "/metrics")[1], re.M)
    assert found, "csms_actor_restarts_total{role=host} is not exposed"
    return float(found[1])


def test_readyz_is_503_naming_a_killed_host_until_the_registry_restarted_it(system: CentralSystem) -> None:
    assert get(system, "/readyz") == (200, '{"status": "ready"}\n')
    before = restarts(system)
    cp = ChargePoint(system.url, "READY-1").connect()
    cp.booted()
    host = station_actor_pid(system, cp)

    assert get(system, "/readyz", system.api_port) == (200, '{"status": "ready"}\n')
    os.kill(host, signal.SIGKILL)

    # Both ports answer from the same check (actors.readiness); asked at the same time, while the
    # host is down (a restart takes about as long as one check waiting for its pong), each says 503.
    said: dict[str, tuple[int, str]] = {}

    def both_said_503() -> bool:
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            answers = dict(zip(("metrics", "api"), pool.map(lambda port: get(system, "/readyz", port),
                                                            (system.metrics_port, system.api_port)), strict=True))
        said.update({name: found for name, found in answers.items() if found[0] == 503})
        return len(said) == 2

    wait_for(both_said_503, RESTART_DEADLINE, interval=0.01, message="/readyz to answer 503 on both ports")
    status, body = said["metrics"]
    assert json.loads(said["api"][1])["status"] == "not ready"
    assert json.loads(body)["status"] == "not ready"
    assert any(part.startswith("host ") for part in json.loads(body)["not_ready"]), body
    assert get(system, "/healthz")[0] == 200  # liveness: the exporter itself answers
    wait_for(lambda: get(system, "/readyz")[0] == 200, RESTART_DEADLINE, interval=0.1,
             message="/readyz to answer 200 after the restart")
    assert get(system, "/readyz", system.api_port)[0] == 200
    assert restarts(system) == before + 1
    cp.close()


def test_readyz_is_503_naming_the_database_while_its_file_is_gone(system: CentralSystem) -> None:
    # Moved away and back (a file mode would not stop root): the probe opens it anew, read-only.
    aside = system.db + ".aside"
    os.rename(system.db, aside)
    try:
        status, body = get(system, "/readyz")
    finally:
        os.rename(aside, system.db)
    assert status == 503
    assert [p for p in json.loads(body)["not_ready"] if p.startswith("database: ")] == [
        "database: unable to open database file"], body
    assert get(system, "/readyz")[0] == 200
