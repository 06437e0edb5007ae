"""The server lifts its soft open-files limit to the hard one: one descriptor per charge point."""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_low_soft_limit_is_raised_to_the_hard_one() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)

    def low() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))

    script = ("import logging, resource, run\n"
              "run._raise_nofile(logging.getLogger('t'))\n"
              "print(resource.getrlimit(resource.RLIMIT_NOFILE)[0])\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, preexec_fn=low)
    assert done.returncode == 0, done.stderr
    raised = int(done.stdout.strip())
    assert raised > 256
    assert raised == hard or hard == resource.RLIM_INFINITY
