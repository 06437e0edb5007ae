"""One station's charging profiles and running transactions, read from storage.

The control script (``profile list``, ``composite-schedule --local``), the
metrics exporter and the station's bookkeeping all ask the same questions of
the installed stack; this is the one place that loads it and ties each
connector to its running transaction (a Relative profile starts there).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from actors.ocpp import smart_charging
from storage import Store, parse_time


@dataclass(frozen=True)
class StationProfiles:
    installed: list[smart_charging.Installed]
    active: dict[int, dict[str, Any]]  # connector -> its running transaction

    @classmethod
    def load(cls, store: Store, station_id: str) -> StationProfiles:
        active = {tx["connector_id"]: tx for tx in store.list_transactions(station_id=station_id, active=True)}
        return cls(smart_charging.installed_from_rows(store.installed_profiles(station_id)), active)

    def transaction(self, connector_id: int) -> dict[str, Any]:
        """``transaction_start`` / ``transaction_id`` keywords for the smart-charging functions."""
        tx = self.active.get(connector_id)
        if tx is None:
            return {"transaction_start": None, "transaction_id": None}
        start = parse_time(tx["start_timestamp"]) if tx.get("start_timestamp") else None
        return {"transaction_start": start, "transaction_id": tx["id"]}

    def limit_now(self, connector_id: int, now: datetime) -> float | None:
        """The limit in force at ``now`` on the connector, in A (None: no profile applies)."""
        return smart_charging.limit_at(self.installed, connector_id, now, unit="A", **self.transaction(connector_id))

    def composite(self, connector_id: int, *, start: datetime, duration: int, unit: str | None) -> dict[str, Any]:
        return smart_charging.composite_schedule(
            self.installed, connector_id, start=start, duration=duration, unit=unit, **self.transaction(connector_id)
        )

