"""End to end: ``/readyz`` on the metrics port asks the actors and the database, ``/healthz`` does not.

A station host is killed with SIGKILL (as in test_supervision.py): readiness
turns 503 and names the host, then 200 again once the registry has restarted
it; liveness stays 200 throughout, and the restart is counted.
"""

from __future__ import annotations

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


def get(system: CentralSystem, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{system.metrics_port}{path}", timeout=10) as response:
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

    os.kill(host, signal.SIGKILL)

    status, body = wait_for(lambda: (found := get(system, "/readyz"))[0] == 503 and found, RESTART_DEADLINE,
                            interval=0.01, message="/readyz to answer 503")
    assert json.loads(body)["status"] == "not ready"
    assert any(part.startswith("host ") for part in json.loads(body)["not_ready"]), body
    assert get(system, "/healthz")[0] == 200  # liveness: the exporter itself answers
    wait_for(lambda: get(system, "/readyz")[0] == 200, RESTART_DEADLINE, interval=0.1,
             message="/readyz to answer 200 after the restart")
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
