"""Free ports for started systems: outside the ephemeral range, and a lost race is retried."""

from __future__ import annotations

import socket

import pytest

from gateway.sim import ports
from gateway.sim.ports import candidate_ports, ephemeral_range, free_ports
from tests.support import system
from tests.support.system import CentralSystem, port_open


def test_the_ephemeral_range_is_read_from_the_kernel_file(tmp_path) -> None:
    path = tmp_path / "range"
    path.write_text("40000\t50000\n")
    assert ephemeral_range(str(path)) == (40000, 50000)
    assert ephemeral_range(str(tmp_path / "missing")) == (32768, 60999)


def test_candidates_leave_out_the_ephemeral_range_and_the_low_ports() -> None:
    candidates = candidate_ports((32768, 60999))
    assert candidates and len(candidates) == len(set(candidates))
    assert all(ports.LOWEST <= p < 32768 or 60999 < p <= ports.HIGHEST for p in candidates)
    assert 32767 in candidates and 61000 in candidates and 32768 not in candidates


def test_free_ports_are_distinct_bindable_and_not_ephemeral() -> None:
    low, high = ephemeral_range()
    picked = free_ports(5)
    assert len(set(picked)) == 5
    assert not any(low <= p <= high for p in picked)
    for port in picked:
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))


def test_a_port_in_use_is_skipped_and_none_left_falls_back_to_the_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        busy = taken.getsockname()[1]
        other = free_ports(1)[0]
        monkeypatch.setattr(ports, "candidate_ports", lambda ephemeral=None: [busy, other])
        assert free_ports(1) == [other]
        monkeypatch.setattr(ports, "candidate_ports", lambda ephemeral=None: [busy])
        fallback = free_ports(1)[0]
        assert fallback != busy and fallback > 0


def test_a_start_that_loses_its_picked_port_tries_other_ports(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    busy = taken.getsockname()[1]
    handed_out: list[int] = []

    def racing_free_ports(count: int) -> list[int]:
        # The first pick holds a port someone else bound after it was picked.
        fresh = ports.free_ports(count)
        picked = ([busy] + fresh[1:]) if not handed_out else fresh
        handed_out.extend(picked)
        return picked

    monkeypatch.setattr(system, "free_ports", racing_free_ports)
    cs = CentralSystem(tmp_path)
    try:
        cs.start()
        assert handed_out[0] == busy and cs.port != busy
        assert port_open(cs.port)
        assert "Errno 98" in (tmp_path / f"csms-{handed_out[2]}.log").read_text()
    finally:
        cs.stop()
        taken.close()


def test_a_port_given_by_the_caller_is_not_replaced(tmp_path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        busy = taken.getsockname()[1]
        cs = CentralSystem(tmp_path, port=busy)
        try:
            with pytest.raises(AssertionError, match="Errno 98"):
                cs.start()
            assert cs.port == busy
        finally:
            cs.stop()
