"""The lease directory's rules (``actors.leases``), driven directly."""

from __future__ import annotations

from actors.leases import LeaseDirectory


def test_a_request_is_granted_only_when_its_settle_time_is_over() -> None:
    leases = LeaseDirectory()
    batch, refused = leases.request(0, (("CP1", 10),))
    assert refused == {}
    assert leases.holder("CP1") is None
    settled = leases.settle(batch)
    assert settled.granted == {0: [("CP1", 10)]}
    assert settled.revoked == {}
    assert leases.holder("CP1") == 0


def test_of_overlapping_requests_the_newest_is_granted_and_the_older_ones_refused_at_once() -> None:
    leases = LeaseDirectory()
    first, _ = leases.request(0, (("CP1", 10),))
    second, refused = leases.request(1, (("CP1", 20),))
    assert refused == {0: [("CP1", 10)]}
    third, refused = leases.request(0, (("CP1", 11), ("CP2", 12)))
    assert refused == {1: [("CP1", 20)]}
    assert leases.settle(first).granted == {}
    assert leases.settle(second).granted == {}
    assert leases.settle(third).granted == {0: [("CP1", 11), ("CP2", 12)]}
    assert leases.holder("CP1") == 0


def test_a_newer_connection_on_another_host_revokes_the_one_upgraded_before() -> None:
    leases = LeaseDirectory()
    leases.settle(leases.request(0, (("CP1", 10),))[0])
    settled = leases.settle(leases.request(1, (("CP1", 20),))[0])
    assert settled.revoked == {0: ["CP1"]}
    assert settled.granted == {1: [("CP1", 20)]}
    assert leases.holder("CP1") == 1


def test_a_newer_connection_on_the_same_host_revokes_nothing_there() -> None:
    leases = LeaseDirectory()
    leases.settle(leases.request(0, (("CP1", 10),))[0])
    settled = leases.settle(leases.request(0, (("CP1", 11),))[0])
    assert settled.revoked == {}
    assert settled.granted == {0: [("CP1", 11)]}


def test_a_release_that_crosses_a_newer_grant_keeps_the_newer_lease() -> None:
    leases = LeaseDirectory()
    leases.settle(leases.request(0, (("CP1", 10),))[0])
    leases.settle(leases.request(0, (("CP1", 11),))[0])
    leases.release(0, (("CP1", 10),))  # the host let go of ticket 10 before it heard of 11
    assert leases.holder("CP1") == 0
    leases.release(0, (("CP1", 11),))
    assert leases.holder("CP1") is None


def test_a_release_from_a_host_that_no_longer_holds_the_station_changes_nothing() -> None:
    leases = LeaseDirectory()
    leases.settle(leases.request(0, (("CP1", 10),))[0])
    leases.settle(leases.request(1, (("CP1", 20),))[0])
    leases.release(0, (("CP1", 10),))
    assert leases.holder("CP1") == 1


def test_a_lost_host_drops_its_leases_and_its_requests_still_settling() -> None:
    leases = LeaseDirectory()
    leases.settle(leases.request(0, (("CP1", 10), ("CP2", 11)))[0])
    leases.settle(leases.request(1, (("CP3", 20),))[0])
    waiting, _ = leases.request(0, (("CP4", 12),))
    assert sorted(leases.host_lost(0)) == ["CP1", "CP2"]
    assert leases.settle(waiting).granted == {}
    assert [leases.holder(s) for s in ("CP1", "CP2", "CP3", "CP4")] == [None, None, 1, None]
