"""--api-port and --api-host reach Settings, from a flag or from CSMS_API_PORT / CSMS_API_HOST (run.py)."""

from __future__ import annotations

import pytest

import run


def test_the_api_listens_on_loopback_port_9200_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CSMS_API_PORT", raising=False)
    monkeypatch.delenv("CSMS_API_HOST", raising=False)
    settings = run.build_settings([])
    assert (settings.api_host, settings.api_port) == ("127.0.0.1", 9200)


def test_the_environment_sets_the_api_options_and_a_flag_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CSMS_API_PORT", "9300")
    monkeypatch.setenv("CSMS_API_HOST", "0.0.0.0")
    assert (run.build_settings([]).api_host, run.build_settings([]).api_port) == ("0.0.0.0", 9300)
    assert run.build_settings(["--api-port", "9400"]).api_port == 9400
