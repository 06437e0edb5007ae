"""End to end: another local user can neither run code in the central system nor operate it.

Thespian unpickles whatever arrives on an actor socket, and every actor process
listens on loopback, which every local user can reach; ``actors/adapters/peercred.py``
closes, unread, each actor connection whose other end is not our uid's. Here a
system with two station hosts runs as root, and uid 65534 (started with
``setpriv``):

1. sends, to every TCP port any process of the system listens on (admin port,
   each actor's port, OCPP port, metrics port), a pickle whose unpickling
   creates a marker file: once framed as Thespian's transport frames a message
   (``b"<length>>" + pickle``, thespian/system/transport/streamBuffer.py), once
   raw. Before that, the same framed pickle sent by root itself to one actor
   port does create its marker (the positive control: the payload is one that
   the transport really unpickles). No marker of uid 65534 appears, not even
   after the system has stopped (the run.py process accepts on its own
   Thespian port only when its transport runs, at shutdown); each refused
   connection is logged once, at WARNING, without a traceback; and the
   system still serves (``ctl status``, a charge point boots).
2. runs ``run.py ctl tag add`` and ``run.py ctl station add``: both exit 6
   ("not reachable") within a deadline, and root's ``tag list`` and
   ``station list`` do not show them (while what root adds is shown).

Needs root and setpriv (skipped otherwise); the interpreter and the repo must
be readable by uid 65534.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.chargepoint import ChargePoint
from tests.support.procnet import listening_sockets
from tests.support.system import RUN, CentralSystem, instance_pids, pids_with_env, wait_for

pytestmark = pytest.mark.e2e

HOSTS = 2
OTHER_UID = 65534
SEND_DEADLINE = 10.0  # seconds for the sender to see each actor connection closed
CTL_DEADLINE = 60.0  # seconds for `run.py ctl` of the other user to give up
LOG_DEADLINE = 10.0
AS_OTHER_USER = ["setpriv", "--reuid", str(OTHER_UID), "--regid", str(OTHER_UID), "--clear-groups"]

if os.geteuid() != 0 or shutil.which("setpriv") is None:
    pytest.skip("needs root and setpriv to act as uid 65534", allow_module_level=True)

# Sends, on one connection per port and kind, a pickle that opens (creates)
# <marker dir>/pwned-<sender uid>-<port>-<kind> when unpickled; then waits, with
# a deadline, for each connection to be closed by the other end. Prints, per
# "port/kind": its local port, whether it was closed, and what was answered.
SENDER = r"""
import json, os, pickle, select, socket, sys, time
marker_dir, ports, deadline, kinds = sys.argv[1], sys.argv[2].split(","), float(sys.argv[3]), sys.argv[4].split(",")

class Payload:
    def __init__(self, path):
        self.path = path
    def __reduce__(self):
        return (open, (self.path, "w"))

def payload(port, kind):
    data = pickle.dumps(Payload(os.path.join(marker_dir, f"pwned-{os.geteuid()}-{port}-{kind}")))
    return b"%d>" % len(data) + data if kind == "framed" else data

results, open_conns = {}, {}
for port in ports:
    for kind in kinds:
        key = f"{port}/{kind}"
        try:
            s = socket.create_connection(("127.0.0.1", int(port)), timeout=5)
        except OSError as exc:
            results[key] = {"connected": False, "error": type(exc).__name__}
            continue
        results[key] = {"connected": True, "local_port": s.getsockname()[1], "closed": False, "reply": ""}
        try:
            s.sendall(payload(port, kind))
        except OSError as exc:
            results[key].update(closed=True, error=type(exc).__name__)
            s.close()
            continue
        s.setblocking(False)
        open_conns[s] = key
end = time.monotonic() + deadline
while open_conns and time.monotonic() < end:
    ready, _, _ = select.select(list(open_conns), [], [], max(0.0, end - time.monotonic()))
    for s in ready:
        key = open_conns[s]
        try:
            chunk = s.recv(65536)
        except OSError as exc:
            chunk = b""
            results[key]["error"] = type(exc).__name__
        if chunk:
            results[key]["reply"] += chunk.decode("latin-1")
        else:
            results[key]["closed"] = True
            del open_conns[s]
            s.close()
for s in open_conns:
    s.close()
print(json.dumps(results))
"""

REFUSAL = re.compile(
    r"^\S+ \S+ (?P<level>[A-Z]+) actors\.adapters\.peercred: refused an actor connection from "
    r"\('127\.0\.0\.1', (?P<port>\d+)\): peer uid (?P<uid>\S+) is not ours \((?P<ours>\d+)\)$",
    re.MULTILINE,
)


@pytest.fixture
def marker_dir() -> Iterator[Path]:
    """A directory every user may create files in (sticky, like /tmp), unique to this test."""
    path = Path(tempfile.mkdtemp(prefix="peercred-markers-", dir="/tmp"))
    path.chmod(0o1777)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def other_home() -> Iterator[Path]:
    """HOME and TMPDIR of uid 65534 for this test."""
    path = Path(tempfile.mkdtemp(prefix="peercred-home-", dir="/tmp"))
    os.chown(path, OTHER_UID, OTHER_UID)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def other_checkout() -> Iterator[Path]:
    """A copy of the project's code that uid 65534 can read, wherever this checkout lies
    (a clone in a mktemp folder is 0700): the other user's ``run.py ctl`` runs from it."""
    root = Path(RUN).resolve().parent
    path = Path(tempfile.mkdtemp(prefix="peercred-code-", dir="/tmp"))
    try:
        for name in ("run.py", "actors", "gateway", "storage", "metrics"):
            source = root / name
            if source.is_dir():
                shutil.copytree(source, path / name, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(source, path / name)
        for entry in (path, *path.rglob("*")):
            entry.chmod(0o755 if entry.is_dir() else 0o644)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def system(tmp_path, monkeypatch) -> Iterator[CentralSystem]:
    # Thespian's own log (thesplog) of this instance goes to a file of the test.
    monkeypatch.setenv("THESPLOG_FILE", str(tmp_path / "thespian.log"))
    started = CentralSystem(tmp_path, extra_args=["--hosts", str(HOSTS)]).start()
    try:
        wait_for(lambda: "central system ready" in started.log(), 30, message="the central system to be ready")
        yield started
    finally:
        started.stop()  # asserts that no process of the instance is left


def other_user_env(home: Path, tag: str) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "TMPDIR": str(home),
            "THESPLOG_FILE": str(home / "thespian.log"), "PEERCRED_E2E": tag}


def send_pickles(marker_dir: Path, ports: list[int], *, as_other_user: bool, env: dict[str, str] | None = None,
                 kinds: str = "framed,raw") -> dict[str, dict]:
    argv = [sys.executable, "-c", SENDER, str(marker_dir), ",".join(map(str, ports)), str(SEND_DEADLINE), kinds]
    done = subprocess.run((AS_OTHER_USER if as_other_user else []) + argv, capture_output=True, text=True,
                          timeout=SEND_DEADLINE + 30, cwd="/", env=env)
    assert done.returncode == 0, f"the sender failed ({done.returncode}): {done.stderr}"
    return json.loads(done.stdout)


def markers(marker_dir: Path, uid: int) -> list[str]:
    return sorted(p.name for p in marker_dir.glob(f"pwned-{uid}-*"))


def other_user_processes(tag: str) -> list[int]:
    return pids_with_env(f"PEERCRED_E2E={tag}")


def boot_a_charge_point(system: CentralSystem, station: str) -> None:
    with ChargePoint(system.url, station) as cp:
        cp.booted()


def test_another_user_can_neither_unpickle_nor_operate(system: CentralSystem, marker_dir: Path,
                                                       other_home: Path, other_checkout: Path,
                                                       tmp_path: Path) -> None:
    run_tag = uuid.uuid4().hex[:12]
    env = other_user_env(other_home, run_tag)
    # Precondition, so that a refusal below is the central system's and not a file mode's.
    probe = subprocess.run([*AS_OTHER_USER, sys.executable, "-c", "import ocpp, thespian, websockets, actors.control.client"],
                           cwd=str(other_checkout),
                           env=env, capture_output=True, text=True, timeout=60)
    assert probe.returncode == 0, (
        f"uid {OTHER_UID} cannot import the project's packages with {sys.executable}: make the virtualenv "
        f"world-readable (.ci/run does): {probe.stderr[-400:]}")
    boot_a_charge_point(system, f"PEERCRED-{run_tag}-1")  # every role, a host's station actor included, is up

    # -- every port the instance listens on -------------------------------------------------
    listening = listening_sockets(instance_pids(system.admin_port))
    ports = sorted({s.local_port for s in listening})
    http_ports = {system.port, system.metrics_port, system.api_port}
    assert {system.admin_port, *http_ports} <= set(ports), ports
    actor_ports = [p for p in ports if p not in http_ports]
    # admin, registry, scheduler, exporter, gateway, the hosts, Thespian's logger, run.py's own transport
    assert len(actor_ports) >= 5 + HOSTS, listening
    # run.py's own process runs its transport only when it talks to the admin (at
    # shutdown): a connection to its port waits unaccepted until then.
    assert system.process is not None
    run_py = system.process.pid
    idle_ports = {s.local_port for s, pids in listening.items() if run_py in pids and s.local_port != system.admin_port}
    served_ports = [p for p in actor_ports if p not in idle_ports]
    assert system.admin_port in served_ports

    # -- positive control: our own uid's framed pickle IS unpickled ---------------------------
    control_port = next(p for p in served_ports if p != system.admin_port)
    control = send_pickles(marker_dir, [control_port], as_other_user=False, kinds="framed")
    assert markers(marker_dir, os.geteuid()) == [f"pwned-{os.geteuid()}-{control_port}-framed"], (
        f"the payload was not unpickled even from our own uid: the framing is wrong ({control})")
    assert "ACK+DATAERR" in control[f"{control_port}/framed"]["reply"], control

    # -- the other user's pickles, on every port ----------------------------------------------
    log_before = system.log()
    results = send_pickles(marker_dir, ports, as_other_user=True, env=env)
    assert markers(marker_dir, OTHER_UID) == [], results
    for port in actor_ports:
        for kind in ("framed", "raw"):
            result = results[f"{port}/{kind}"]
            assert result["connected"], (port, kind, result)
            assert result["reply"] == "", f"actor port {port} answered {kind} data: {result}"
            if port in served_ports:
                assert result["closed"], f"actor port {port} kept a {kind} connection of uid {OTHER_UID} open: {result}"
    refused_from = {results[f"{p}/{k}"]["local_port"] for p in served_ports for k in ("framed", "raw")}

    # each refusal logged once, at WARNING, naming the uid; no traceback
    def new_refusals() -> list[re.Match]:
        return list(REFUSAL.finditer(system.log()[len(log_before):]))

    wait_for(lambda: len(new_refusals()) >= len(refused_from), LOG_DEADLINE, message="the refusals to be logged")
    logged = new_refusals()
    assert sorted(int(m["port"]) for m in logged) == sorted(refused_from), [m[0] for m in logged]
    assert {(m["level"], m["uid"], m["ours"]) for m in logged} == {("WARNING", str(OTHER_UID), str(os.geteuid()))}
    assert "Traceback" not in system.log()

    # -- the system still serves -----------------------------------------------------------
    assert system.ctl_ok("status")["stations_known"] >= 1
    boot_a_charge_point(system, f"PEERCRED-{run_tag}-2")

    # -- the other user's control script changes nothing -------------------------------------
    nobody_tag, nobody_station = f"NOBODY-{run_tag}".upper()[:20], f"NOBODY-CP-{run_tag}"
    root_tag, root_station = f"ROOT-{run_tag}".upper()[:20], f"ROOT-CP-{run_tag}"
    ctl = [sys.executable, str(other_checkout / "run.py"), "ctl", "--admin-port", str(system.admin_port), "--json"]
    started = time.monotonic()
    attempts = [
        subprocess.Popen(AS_OTHER_USER + ctl + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         cwd=str(other_home), env=env)
        for args in (["tag", "add", nobody_tag], ["station", "add", nobody_station])
    ]
    for attempt in attempts:
        try:
            out, err = attempt.communicate(timeout=max(1.0, CTL_DEADLINE - (time.monotonic() - started)))
        except subprocess.TimeoutExpired:
            for each in attempts:
                each.kill()
                each.communicate()
            raise AssertionError(f"`run.py ctl` of uid {OTHER_UID} did not give up within {CTL_DEADLINE}s") from None
        assert attempt.returncode == 6, f"ctl as uid {OTHER_UID} exited {attempt.returncode}: {out} {err}"
        assert json.loads(out)["error"]["code"] == "Unreachable", out
    assert other_user_processes(run_tag) == [], "a process of the other user's control script is left"

    system.ctl_ok("tag", "add", root_tag)
    system.ctl_ok("station", "add", root_station)
    tags = {row["id_tag"].upper() for row in system.ctl_ok("tag", "list")}
    stations = {row["id"] for row in system.ctl_ok("station", "list")}
    assert root_tag in tags and root_station in stations  # the lists do show what was added
    assert nobody_tag not in tags
    assert nobody_station not in stations
    assert "Traceback" not in system.log()

    # -- after shutdown too: whatever was left unaccepted was refused then -----------------------
    system.stop()
    assert markers(marker_dir, OTHER_UID) == []
    assert "Traceback" not in system.log()
    thesplog = tmp_path / "thespian.log"
    thespian_log = thesplog.read_text(errors="replace") if thesplog.exists() else ""
    assert "_Refused" not in thespian_log and "Error accepting incoming" not in thespian_log, thespian_log
