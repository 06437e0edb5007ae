"""Shared fixtures: a real central system (``run.py serve``) per test module, on free ports,
and a simulated charge point in the reusable state Booted."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from storage import Store
from tests.support import system as system_support
from tests.support.chargepoint import ChargePoint
from tests.support.system import CentralSystem

CONNECTORS = 2


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--over-tls", action="store_true",
                     help="every central system the tests start serves wss:// (issue 10): run the "
                          "OCTT walks over TLS, e.g. pytest --over-tls tests/e2e/test_core.py")


def pytest_configure(config: pytest.Config) -> None:
    system_support.OVER_TLS = bool(config.getoption("--over-tls"))


@pytest.fixture(scope="module")
def csms(tmp_path_factory):
    """One running central system for a test module; stopped (no leftovers) afterwards."""
    system = CentralSystem(tmp_path_factory.mktemp("csms")).start()
    yield system
    system.stop()


@pytest.fixture
def db_path(tmp_path) -> str:
    """A fresh SQLite file per test."""
    return str(tmp_path / "csms.db")


@pytest.fixture
def store(db_path: str) -> Iterator[Store]:
    """A migrated Store on a fresh file, closed after the test."""
    opened = Store(db_path)
    yield opened
    opened.close()


@pytest.fixture
def station_id() -> str:
    """A short identity unique within the test run."""
    return f"CP-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def cp_handlers() -> dict[str, Any]:
    """How the simulated charge point answers the central system's CALLs; modules override it."""
    return {}


@pytest.fixture
def cp(csms: CentralSystem, station_id: str, cp_handlers: dict[str, Any]) -> Iterator[ChargePoint]:
    """A charge point in reusable state Booted (Accepted, every connector Available)."""
    point = ChargePoint(csms.url, station_id, handlers=cp_handlers, connectors=CONNECTORS)
    point.connect()
    point.booted()
    yield point
    point.close()
