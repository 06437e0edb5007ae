"""The frame log of a station host's writer (actors/host/worker.py): each turn's frames, both
directions, go into the station's ring on a real Store, in the turn's transaction."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from actors.host.worker import HostWorker, Opened, Received, Turn
from actors.settings import Settings
from storage import Store

BOOT = {"chargePointVendor": "ACME", "chargePointModel": "One"}


class Link:
    def __init__(self, station_id: str) -> None:
        self.station_id, self.peer = station_id, "127.0.0.1:1"


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[HostWorker]:
    settings = Settings(db=str(tmp_path / "frames.db"), frame_log_per_station=6)
    Store(settings.db).close()  # migrated
    released: list[Turn] = []
    w = HostWorker(settings, release=released.append)
    w.store = Store(settings.db, migrate_schema=False, writer=True)
    yield w
    w.store.close()


def frame(n: int, action: str = "Heartbeat", payload: dict | None = None) -> str:
    return json.dumps([2, f"m{n}", action, payload or {}])


def test_each_turns_frames_in_and_out_are_logged_and_the_ring_keeps_the_last(worker: HostWorker) -> None:
    link = Link("CP1")
    worker._turn([Opened("CP1", link), Received("CP1", link, frame(0, "BootNotification", BOOT), 0.0)])
    for n in range(1, 6):
        worker._turn([Received("CP1", link, frame(n), 0.0)])
    assert worker.store is not None
    rows = worker.store.frame_log("CP1", limit=100)
    assert len(rows) == 6  # 12 frames (6 CALLs, 6 replies) through a ring of 6
    assert [(r["seq"], r["direction"]) for r in rows] == [(7, "in"), (8, "out"), (9, "in"), (10, "out"),
                                                          (11, "in"), (12, "out")]
    assert json.loads(rows[-2]["frame"])[1] == "m5"
    assert json.loads(rows[-1]["frame"])[:2] == [3, "m5"]


def test_a_station_made_anew_continues_its_ring_from_storage(worker: HostWorker) -> None:
    link = Link("CP1")
    worker._turn([Opened("CP1", link), Received("CP1", link, frame(0, "BootNotification", BOOT), 0.0)])
    worker.frame_seqs.clear()  # as after an eviction: the seq is read from storage again
    worker._turn([Received("CP1", link, frame(1), 0.0)])
    assert worker.store is not None
    assert [r["seq"] for r in worker.store.frame_log("CP1")] == [1, 2, 3, 4]
