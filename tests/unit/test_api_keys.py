"""HTTP API keys: stored hashed, found by their hash, scoped (storage/api_keys.py, actors/admin.py, ctl)."""

from __future__ import annotations

import hashlib
import sqlite3
from datetime import datetime, timezone

import pytest

from actors import admin
from actors.control import client as control
from actors.control import commands, render
from actors.messages import AdminCommand
from storage import SCOPES, Store, scope_allows

NOW = datetime(2026, 12, 7, 3, 0, tzinfo=timezone.utc)


def test_a_created_key_is_returned_once_and_only_its_sha256_is_stored(store: Store) -> None:
    row, key = store.create_api_key("ops", "operate", now=NOW)
    assert row == {"name": "ops", "scope": "operate", "created_at": "2026-12-07T03:00:00.000Z", "last_used_at": None}
    assert key.startswith("csms_") and len(key) >= 40
    with sqlite3.connect(store.path) as db:
        stored = db.execute("SELECT * FROM api_keys").fetchall()
    assert key not in repr(stored)
    assert hashlib.sha256(key.encode()).hexdigest() in repr(stored)


def test_a_key_is_found_by_itself_and_a_wrong_or_revoked_one_is_not(store: Store) -> None:
    _, key = store.create_api_key("ro", "read")
    assert store.find_api_key(key)["name"] == "ro"
    assert store.find_api_key(key + "x") is None and store.find_api_key("") is None
    assert store.revoke_api_key("ro") and not store.revoke_api_key("ro")
    assert store.find_api_key(key) is None


def test_two_keys_never_share_a_value_and_names_are_unique(store: Store) -> None:
    _, first = store.create_api_key("a", "admin")
    _, second = store.create_api_key("b", "admin")
    assert first != second
    with pytest.raises(ValueError, match="exists already"):
        store.create_api_key("a", "read")


@pytest.mark.parametrize("name, scope", [("", "read"), ("has space", "read"), ("x" * 65, "read"), ("ok", "root")])
def test_a_bad_name_or_scope_is_refused(store: Store, name: str, scope: str) -> None:
    with pytest.raises(ValueError):
        store.create_api_key(name, scope)


def test_the_list_has_names_scopes_and_uses_but_never_a_key_or_hash(store: Store) -> None:
    _, key = store.create_api_key("ops", "operate", now=NOW)
    store.touch_api_key("ops", NOW)
    [listed] = store.list_api_keys()
    assert listed == {"name": "ops", "scope": "operate", "created_at": "2026-12-07T03:00:00.000Z",
                      "last_used_at": "2026-12-07T03:00:00.000Z"}


def test_each_scope_allows_what_the_one_before_allows() -> None:
    assert SCOPES == ("read", "operate", "admin")
    allowed = {(held, needed) for held in SCOPES for needed in SCOPES if scope_allows(held, needed)}
    assert allowed == {("read", "read"), ("operate", "read"), ("operate", "operate"),
                       ("admin", "read"), ("admin", "operate"), ("admin", "admin")}
    assert not scope_allows("root", "read") and not scope_allows("admin", "root")


def test_the_admin_commands_create_list_and_revoke(store: Store) -> None:
    created = admin.run_admin(store, "api-key.create", {"name": "ci", "scope": "Read"}, NOW)
    assert isinstance(created, dict) and created["scope"] == "read" and created["key"].startswith("csms_")
    assert admin.run_admin(store, "api-key.list", {}, NOW) == [
        {"name": "ci", "scope": "read", "created_at": "2026-12-07T03:00:00.000Z", "last_used_at": None}]
    assert admin.run_admin(store, "api-key.revoke", {"name": "ci"}, NOW) == {"name": "ci", "revoked": True}
    with pytest.raises(admin.AdminError) as unknown:
        admin.run_admin(store, "api-key.revoke", {"name": "ci"}, NOW)
    assert unknown.value.exit_code == 3
    with pytest.raises(admin.AdminError) as bad_scope:
        admin.run_admin(store, "api-key.create", {"name": "x", "scope": "superuser"}, NOW)
    assert bad_scope.value.exit_code == 2


def test_ctl_api_key_commands_become_admin_commands() -> None:
    def request(*argv: str) -> object:
        return commands.to_request(control.build_parser(1900).parse_args(list(argv)))

    assert request("api-key", "create", "ops", "--scope", "operate") == AdminCommand(
        "api-key.create", {"name": "ops", "scope": "operate"})
    assert request("api-key", "list") == AdminCommand("api-key.list", {})
    assert request("api-key", "revoke", "ops") == AdminCommand("api-key.revoke", {"name": "ops"})
    shown = render.render_admin("api-key.create", {"name": "ops", "scope": "operate", "key": "csms_abc"})
    assert shown.splitlines()[-1] == "csms_abc" and "only this once" in shown
