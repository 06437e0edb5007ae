"""A station host collects cycles rarely: the young threshold is raised and start-up objects are frozen."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_tune_gc_raises_the_threshold_and_freezes_what_exists() -> None:
    script = ("import gc, json\n"
              "from actors.host import actor\n"
              "before = gc.get_threshold()\n"
              "actor._tune_gc()\n"
              "print(json.dumps([before, gc.get_threshold(), gc.get_freeze_count()]))\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    before, after, frozen = json.loads(done.stdout)
    assert before[0] == 700 and after[0] == 50_000
    assert frozen > 1000  # the modules and objects loaded at start are out of every collection
