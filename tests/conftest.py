"""Shared fixtures: a real central system (``run.py serve``) per test module, on free ports."""

from __future__ import annotations

import itertools

import pytest

from tests.support.system import CentralSystem

_ids = itertools.count(1)


@pytest.fixture(scope="module")
def csms(tmp_path_factory):
    """One running central system for a test module; stopped (no leftovers) afterwards."""
    system = CentralSystem(tmp_path_factory.mktemp("csms")).start()
    yield system
    system.stop()


@pytest.fixture
def station_id(request) -> str:
    """A station identity unique within the test run."""
    return f"CP{next(_ids)}-{request.node.name[:40]}"
