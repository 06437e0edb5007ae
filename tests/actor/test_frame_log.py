"""The frame log of a station host's writer (actors/host/worker.py): the frames of committed
turns, both directions, go into the station's ring on a real Store, buffered for at most
FRAME_FLUSH seconds (or until the writer is idle)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from actors.host import worker as worker_module
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
    worker._flush_frames()  # what the writer does when its inbox stays empty
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
    worker._flush_frames()
    worker.frame_seqs.clear()  # as after an eviction: the seq is read from storage again
    worker._turn([Received("CP1", link, frame(1), 0.0)])
    worker._flush_frames()
    assert worker.store is not None
    assert [r["seq"] for r in worker.store.frame_log("CP1")] == [1, 2, 3, 4]


def test_under_load_frames_wait_for_a_later_turn_and_are_written_in_its_transaction(
        worker: HostWorker) -> None:
    link = Link("CP1")
    worker._turn([Opened("CP1", link), Received("CP1", link, frame(0, "BootNotification", BOOT), 0.0)])
    assert worker.store is not None
    assert worker.store.frame_log("CP1") == []  # buffered: not written with every turn
    assert len(worker.frame_buffer) == 2
    worker.flushed_at -= worker_module.FRAME_FLUSH  # as if FRAME_FLUSH had passed
    worker._turn([Received("CP1", link, frame(1), 0.0)])
    assert [r["seq"] for r in worker.store.frame_log("CP1")] == [1, 2]  # the earlier turn's, now
    assert len(worker.frame_buffer) == 2  # this turn's wait for the next flush


def test_a_frame_log_of_zero_buffers_and_writes_nothing(tmp_path: Path) -> None:
    settings = Settings(db=str(tmp_path / "none.db"), frame_log_per_station=0)
    Store(settings.db).close()
    w = HostWorker(settings, release=lambda turn: None)
    w.store = Store(settings.db, migrate_schema=False, writer=True)
    link = Link("CP1")
    w._turn([Opened("CP1", link), Received("CP1", link, frame(0, "BootNotification", BOOT), 0.0)])
    w._flush_frames()
    assert w.frame_buffer == [] and w.store.frame_log("CP1") == []
    w.store.close()
