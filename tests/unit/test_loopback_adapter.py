"""The Thespian loopback adapter (actors/adapters/loopback.py), checked on Thespian's address objects.

Each check runs in a fresh interpreter so that "before install()" really is
unpatched (the patch is process-wide and the product applies it anyway).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def run(script: str) -> Any:
    """Run ``script`` in a new interpreter at the repository root; return the JSON it prints."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


ADDRESSES = """
    import json
    from thespian.system.transport.IPBase import TCPv4ActorAddress
    from actors.adapters import loopback

    def describe(addr):
        return {"bind": list(addr.bindname), "sock": list(addr.sockname)}

    def sample():
        return {
            "external_any": describe(TCPv4ActorAddress(None, 0, external=True)),
            "external_port": describe(TCPv4ActorAddress(None, 1900, external=True)),
            "internal": describe(TCPv4ActorAddress(None, 0)),
            "all_interfaces": describe(TCPv4ActorAddress("0.0.0.0", 1901)),
            "empty": describe(TCPv4ActorAddress("", 0, external=True)),
        }
"""


def test_after_install_an_external_address_binds_and_advertises_loopback() -> None:
    result = run(ADDRESSES + """
    loopback.install()
    print(json.dumps({"installed": loopback.installed(), "after": sample()}))
    """)
    assert result["installed"] is True
    for name, addr in result["after"].items():
        assert addr["bind"][0] == "127.0.0.1", name
        assert addr["sock"][0] == "127.0.0.1", name
    assert result["after"]["external_port"]["bind"][1] == 1900
    assert result["after"]["external_port"]["sock"][1] == 1900
    assert result["after"]["all_interfaces"]["bind"] == ["127.0.0.1", 1901]


def test_without_install_thespian_binds_external_addresses_to_all_interfaces() -> None:
    result = run(ADDRESSES + """
    print(json.dumps({"installed": loopback.installed(), "before": sample()}))
    """)
    assert result["installed"] is False
    assert result["before"]["external_port"]["bind"][0] == ""  # why the adapter exists


def test_install_is_idempotent() -> None:
    result = run(ADDRESSES + """
    from thespian.system.transport import IPBase
    loopback.install()
    first = IPBase.IPActorAddress.__init__
    once = sample()
    loopback.install()
    loopback.install()
    print(json.dumps({
        "same_function": IPBase.IPActorAddress.__init__ is first,
        "installed": loopback.installed(),
        "once": once,
        "thrice": sample(),
    }))
    """)
    assert result["same_function"] is True
    assert result["installed"] is True
    assert result["thrice"] == result["once"]
