"""Certificates issued and installed, and the node's own security log (storage.security)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from storage import Store

NOW = datetime(2026, 12, 7, 4, 0, tzinfo=timezone.utc)


def test_only_live_certificates_ending_within_the_window_count_as_expiring(store: Store) -> None:
    def issue(serial: str, days: int, status: str = "Issued") -> None:
        store.record_issued_certificate("CP1", serial, "CN=CP1", NOW - timedelta(days=300), NOW + timedelta(days=days),
                                        "PEM", NOW)
        if status != "Issued":
            store.set_issued_certificate_status("CP1", serial, status, NOW)

    issue("1", 10)
    issue("2", 29, "Accepted")
    issue("3", 31)
    issue("4", -1)  # expired already
    issue("5", 5, "Rejected")  # the station refused it: never in use
    assert store.certificates_expiring(NOW, NOW + timedelta(days=30)) == 2
    assert [r["serial"] for r in store.list_issued_certificates("CP1")] == ["5", "4", "3", "2", "1"]


def test_the_own_security_log_lists_the_newest_first(store: Store) -> None:
    store.record_own_security_event("failed-login", NOW, station_id="CP1", address="10.0.0.1", detail="wrong password")
    store.record_own_security_event("tls-handshake", NOW + timedelta(seconds=1), detail="UNSUPPORTED_PROTOCOL")
    assert [(e["type"], e["station_id"]) for e in store.own_security_events()] == [
        ("tls-handshake", None), ("failed-login", "CP1")]


def test_request_ids_continue_past_the_highest_sent_to_the_station(store: Store) -> None:
    assert store.next_request_id("CP1") == 1
    store.record_station_event("CP1", "security-call", "Accepted", NOW,
                               detail={"action": "GetLog", "request": {"requestId": 41}})
    assert store.next_request_id("CP1") == 42
    assert store.next_request_id("CP2") == 1
