"""Charging profiles the central system believes are installed, per station and connector.

A row is written only once the charge point answered Accepted to the
SetChargingProfile (or started the transaction of a RemoteStartTransaction
that carried a profile); ClearChargingProfile, a stopped transaction and
validTo remove rows. The stack survives restarts of the central system and of
the charge point (errata 3.37).

The TxProfile of an accepted RemoteStartTransaction waits in
``remote_start_profiles`` until the StartTransaction that gives it its
transactionId arrives, so a restart of the station actor in between keeps it.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from storage.base import Row, StoreBase
from storage.tags import tag_key
from storage.timefmt import iso


class ProfilesMixin(StoreBase):
    def installed_profiles(self, station_id: str) -> list[Row]:
        """Every installed profile of the station: {connector_id, profile (dict), installed_at}."""
        found = self.rows(
            "SELECT connector_id, profile, installed_at FROM charging_profiles WHERE station_id = ? "
            "ORDER BY connector_id, stack_level, profile_id",
            [station_id],
        )
        for row in found:
            row["profile"] = json.loads(row["profile"])
        return found

    def stations_with_profiles(self) -> list[str]:
        return [r["station_id"] for r in self.rows("SELECT DISTINCT station_id FROM charging_profiles ORDER BY station_id")]

    def replace_profiles(self, station_id: str, installed: list[tuple[int, dict[str, Any]]], now: datetime) -> None:
        """Make the stored stack exactly ``installed`` [(connector_id, csChargingProfiles)], in one transaction."""
        with self.write() as conn:
            kept = {(c, p["chargingProfileId"]): p for c, p in installed}
            rows = conn.execute(
                "SELECT connector_id, profile_id, installed_at FROM charging_profiles WHERE station_id = ?", [station_id]
            ).fetchall()
            since = {(c, pid): at for c, pid, at in rows}
            conn.execute("DELETE FROM charging_profiles WHERE station_id = ?", [station_id])
            conn.executemany(
                "INSERT INTO charging_profiles (station_id, connector_id, profile_id, purpose, stack_level, "
                "transaction_id, valid_to, profile, installed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        station_id, c, p["chargingProfileId"], p["chargingProfilePurpose"], p["stackLevel"],
                        p.get("transactionId"), p.get("validTo"), json.dumps(p), since.get((c, p["chargingProfileId"]), iso(now)),
                    )
                    for (c, _), p in kept.items()
                ],
            )

    def add_remote_start_profile(
        self, station_id: str, connector_id: int | None, id_tag: str, profile: dict[str, Any], now: datetime
    ) -> None:
        """Keep the TxProfile of an accepted RemoteStartTransaction until its transaction starts."""
        self.conn.execute(
            "INSERT INTO remote_start_profiles (station_id, connector_id, id_key, profile, accepted_at) "
            "VALUES (?, ?, ?, ?, ?)",
            [station_id, connector_id, tag_key(id_tag), json.dumps(profile), iso(now)],
        )

    def remote_start_profile(self, station_id: str, connector_id: int, id_tag: str) -> tuple[int, dict[str, Any]] | None:
        """The oldest waiting TxProfile for this start (same idTag, that connector or any), as (row id, profile)."""
        found = self.conn.execute(
            "SELECT id, profile FROM remote_start_profiles WHERE station_id = ? AND id_key = ? "
            "AND (connector_id IS NULL OR connector_id = ?) ORDER BY id LIMIT 1",
            [station_id, tag_key(id_tag), connector_id],
        ).fetchone()
        return (int(found[0]), json.loads(found[1])) if found is not None else None

    def drop_remote_start_profile(self, row_id: int) -> None:
        """Forget a waiting TxProfile (its transaction started)."""
        self.conn.execute("DELETE FROM remote_start_profiles WHERE id = ?", [row_id])
