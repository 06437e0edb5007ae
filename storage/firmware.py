"""Firmware and diagnostics history: requests we sent, notifications stations sent.

``station_events`` keeps one row per event, kinds:

- ``firmware-request`` / ``diagnostics-request``: an UpdateFirmware /
  GetDiagnostics we sent; status ``Sent``, ``Accepted`` (conf received) or
  ``Failed`` (no answer, CALLERROR, not connected); ``detail`` e.g. the
  location, retrieveDate, the fileName answered.
- ``security`` / ``log`` / ``signed-firmware``: a SecurityEventNotification /
  LogStatusNotification / SignedFirmwareStatusNotification (``detail``: the request).
- ``security-call``: a security-extension request we sent (``actors.ocpp.security``);
  status the answer's (or ``Failed``), ``detail`` the action, request and response.
- ``firmware`` / ``diagnostics``: a FirmwareStatusNotification /
  DiagnosticsStatusNotification status. These also update the stations row's
  ``firmware_status`` / ``diagnostics_status`` (as ``record_notification``).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from storage.base import Row, StoreBase
from storage.timefmt import iso

EVENT_KINDS = ("firmware", "diagnostics", "firmware-request", "diagnostics-request", "security", "log", "signed-firmware",
               "security-call")
REQUEST_STATUSES = ("Sent", "Accepted", "Failed")
# OCPP 1.6 §4.5 / §7.25: the FirmwareStatus values after which nothing follows.
FIRMWARE_FINAL = ("Installed", "DownloadFailed", "InstallationFailed")
# OCPP 1.6 §4.4 / §7.24: likewise for DiagnosticsStatus.
DIAGNOSTICS_FINAL = ("Uploaded", "UploadFailed")


class FirmwareMixin(StoreBase):
    """UpdateFirmware / GetDiagnostics requests and their status notifications."""

    def record_station_event(
        self,
        station_id: str,
        kind: str,
        status: str,
        now: datetime,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """Append an event. Raises ValueError for a kind outside ``EVENT_KINDS``
        or a request status outside ``REQUEST_STATUSES``."""
        if kind not in EVENT_KINDS:
            raise ValueError(f"kind must be one of {EVENT_KINDS}")
        if kind.endswith("-request") and status not in REQUEST_STATUSES:
            raise ValueError(f"a request status must be one of {REQUEST_STATUSES}")
        stamp = iso(now)
        with self.write() as conn:
            conn.execute(
                "INSERT INTO station_events (station_id, kind, status, detail, at) "
                "VALUES (?, ?, ?, ?, ?)",
                [station_id, kind, status,
                 None if detail is None else json.dumps(detail, sort_keys=True), stamp],
            )
            if kind in ("firmware", "diagnostics"):
                conn.execute(
                    f"UPDATE stations SET {kind}_status = ?, {kind}_status_at = ? WHERE id = ?",
                    [status, stamp, station_id],
                )

    def station_events(
        self, station_id: str, *, kind: str | None = None, limit: int = 100
    ) -> list[Row]:
        """The station's events newest first (``detail`` decoded), optionally of one kind."""
        where = "station_id = ?" + (" AND kind = ?" if kind is not None else "")
        params: list[Any] = [station_id] + ([kind] if kind is not None else [])
        found = self.rows(
            f"SELECT id, station_id, kind, status, detail, at FROM station_events "
            f"WHERE {where} ORDER BY id DESC LIMIT ?",
            [*params, limit],
        )
        for r in found:
            if r["detail"] is not None:
                r["detail"] = json.loads(r["detail"])
        return found

    def firmware_state(self, station_id: str) -> dict[str, Any]:
        """Firmware and diagnostics at a glance.

        Keys: firmware_version (from the last BootNotification),
        last_firmware_status(_at), last_diagnostics_status(_at) (the stations
        row, as also set by ``record_notification``), last_firmware_request and
        last_diagnostics_request (newest request event or None),
        update_in_progress and upload_in_progress.

        update_in_progress: the newest firmware-request was not Failed and no
        Installed/DownloadFailed/InstallationFailed came after it. Neither a
        BootNotification (the install reboots the station) nor ``Idle`` (a
        triggered FSN before retrieveDate) ends it. upload_in_progress: the
        same for diagnostics with Uploaded/UploadFailed.
        """
        station = self.row(
            "SELECT firmware_version, firmware_status, firmware_status_at, diagnostics_status, "
            "diagnostics_status_at FROM stations WHERE id = ?",
            [station_id],
        ) or {}
        firmware_request = self._newest_event(station_id, "firmware-request")
        diagnostics_request = self._newest_event(station_id, "diagnostics-request")
        return {
            "firmware_version": station.get("firmware_version"),
            "last_firmware_status": station.get("firmware_status"),
            "last_firmware_status_at": station.get("firmware_status_at"),
            "last_diagnostics_status": station.get("diagnostics_status"),
            "last_diagnostics_status_at": station.get("diagnostics_status_at"),
            "last_firmware_request": firmware_request,
            "last_diagnostics_request": diagnostics_request,
            "update_in_progress": self._in_progress(station_id, firmware_request, FIRMWARE_FINAL),
            "upload_in_progress": self._in_progress(
                station_id, diagnostics_request, DIAGNOSTICS_FINAL
            ),
        }

    def _newest_event(self, station_id: str, kind: str) -> Row | None:
        found = self.station_events(station_id, kind=kind, limit=1)
        return found[0] if found else None

    def _in_progress(self, station_id: str, request: Row | None, final: tuple[str, ...]) -> bool:
        if request is None or request["status"] == "Failed":
            return False
        kind = request["kind"].removesuffix("-request")
        ended = self.row(
            f"SELECT 1 AS ended FROM station_events WHERE station_id = ? AND kind = ? "
            f"AND id > ? AND status IN ({', '.join('?' * len(final))}) LIMIT 1",
            [station_id, kind, request["id"], *final],
        )
        return ended is None
