"""Start and drive a real central system for end-to-end tests.

``CentralSystem`` runs ``python run.py serve`` on free ports with a temporary
SQLite file, waits (with a deadline) until the OCPP port accepts connections,
and drives it with ``run.py ctl``. ``stop()`` sends SIGTERM and then makes sure
no process of the instance is left (found by the CSMS_INSTANCE marker).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.sim.ports import free_ports
from tests.support.procnet import connection_holders

if TYPE_CHECKING:
    from tests.support.chargepoint import ChargePoint

REPO = Path(__file__).resolve().parents[2]
RUN = str(REPO / "run.py")
PORT_ATTEMPTS = 3
# ``pytest --over-tls``: every CentralSystem serves wss:// with the session's test
# certificate (tests.support.certs.session_pki), and ``url`` says wss, so that the
# OCTT walks run over TLS too (issue 10). Set by tests/conftest.py.
OVER_TLS = False


def wait_for(predicate, timeout: float = 20.0, interval: float = 0.05, message: str = "condition"):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def instance_pids(admin_port: int) -> list[int]:
    return pids_with_env(f"CSMS_INSTANCE={admin_port}")


def pids_with_env(entry: str) -> list[int]:
    """PIDs of the processes whose environment holds ``entry`` (``NAME=value``)."""
    marker = entry.encode()
    pids = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/environ", "rb") as f:
                    if marker in f.read().split(b"\0"):
                        pids.append(int(name))
            except OSError:
                pass
    return pids


@dataclass
class CtlResult:
    code: int
    stdout: str
    stderr: str

    @property
    def json(self) -> Any:
        return json.loads(self.stdout)


@dataclass
class CentralSystem:
    tmp: Path
    extra_args: list[str] = field(default_factory=list)
    port: int = 0
    metrics_port: int = 0
    admin_port: int = 0
    api_port: int = 0
    db: str = ""
    process: subprocess.Popen | None = None
    log_path: Path | None = None
    # Run it in a process group of its own, as a service manager does, so that
    # stop(whole_group=True) can signal every process of the node at once.
    own_process_group: bool = False

    def start(self, timeout: float = 30.0) -> "CentralSystem":
        picked = {"port": not self.port, "metrics_port": not self.metrics_port, "admin_port": not self.admin_port,
                  "api_port": not self.api_port}
        to_pick = [name for name, was_picked in picked.items() if was_picked]
        for attempt in range(1, PORT_ATTEMPTS + 1):
            for name, port in zip(to_pick, free_ports(len(to_pick)), strict=True):  # distinct ones
                setattr(self, name, port)
            try:
                return self._start_once(timeout)
            except AssertionError as exc:
                # A port picked here can still be taken by someone else before run.py
                # binds it; only then, and only for ports we picked, try other ones.
                lost_race = "Errno 98" in str(exc) and any(picked.values())
                if not lost_race or attempt == PORT_ATTEMPTS:
                    raise
                self.stop()
        raise AssertionError("unreachable")

    def _start_once(self, timeout: float) -> "CentralSystem":
        self.db = self.db or str(self.tmp / "csms.db")
        self.log_path = self.tmp / f"csms-{self.admin_port}.log"
        with open(self.log_path, "ab") as log:
            self._spawn(log)
        try:
            wait_for(lambda: self.process.poll() is not None or (port_open(self.port) and port_open(self.metrics_port)
                                                                   and port_open(self.api_port)),
                     timeout, message="the central system to listen")
        except AssertionError:
            self.stop()
            raise AssertionError("central system did not start:\n" + self.log()) from None
        if self.process.poll() is not None:
            raise AssertionError(f"central system exited with {self.process.returncode}:\n" + self.log())
        return self

    @property
    def tls(self) -> bool:
        """Does --port serve wss://? (given in extra_args, or the whole run is --over-tls)."""
        return OVER_TLS or "--tls-cert" in self.extra_args

    def _spawn(self, log) -> None:  # type: ignore[no-untyped-def]
        env = {k: v for k, v in os.environ.items() if not k.startswith("CSMS_") and k != "PROMETHEUS_MULTIPROC_DIR"}
        tls: list[str] = []
        if OVER_TLS and "--tls-cert" not in self.extra_args:
            from tests.support.certs import session_pki

            server = session_pki().server
            tls = ["--tls-cert", str(server.cert), "--tls-key", str(server.key)]
        self.process = subprocess.Popen(
            [sys.executable, RUN, "serve", "--host", "127.0.0.1", "--port", str(self.port),
             "--metrics-port", str(self.metrics_port), "--admin-port", str(self.admin_port),
             "--api-port", str(self.api_port),
             "--db", self.db, *tls, *self.extra_args],
            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=str(self.tmp),
            start_new_session=self.own_process_group,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path and self.log_path.exists() else ""

    @property
    def url(self) -> str:
        return f"{'wss' if self.tls else 'ws'}://127.0.0.1:{self.port}"

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments for a websockets ``connect`` to ``url``: the ssl context over TLS."""
        if not OVER_TLS or "--tls-cert" in self.extra_args:
            return {}  # plain, or the test brought its own certificates and context
        from tests.support.certs import session_client_context

        return {"ssl": session_client_context()}

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def ctl(self, *args: str, timeout: float = 60.0) -> CtlResult:
        done = subprocess.run(
            [sys.executable, RUN, "ctl", "--admin-port", str(self.admin_port), "--json", *args],
            capture_output=True, text=True, timeout=timeout, cwd=str(self.tmp),
        )
        return CtlResult(done.returncode, done.stdout, done.stderr)

    def ctl_ok(self, *args: str) -> Any:
        result = self.ctl(*args)
        assert result.code == 0, f"ctl {args} exited {result.code}: {result.stdout} {result.stderr}"
        return result.json

    def stop(self, timeout: float = 15.0, *, whole_group: bool = False) -> float:
        """SIGTERM run.py (``whole_group``: every process of its group, as systemd's default
        KillMode does; needs ``own_process_group``); return the seconds it took for every process to end."""
        started = time.monotonic()
        if self.process is not None and self.process.poll() is None:
            if whole_group:
                assert self.own_process_group, "signalling the group would signal the tests too"
                os.killpg(self.process.pid, signal.SIGTERM)
            else:
                self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        try:
            wait_for(lambda: not instance_pids(self.admin_port), 5.0, message="no leftover processes")
        finally:
            for pid in instance_pids(self.admin_port):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        return time.monotonic() - started


def station_actor_pid(system: CentralSystem, cp: ChargePoint) -> int:
    """The one process of the instance that holds the server end of ``cp``'s connection."""
    assert cp.ws is not None
    cp_port = cp.ws.socket.getsockname()[1]
    holders = wait_for(
        lambda: (
            (
                found := connection_holders(
                    instance_pids(system.admin_port), local_port=system.port, remote_port=cp_port
                )
            )
            and len(found) == 1
            and found
        ),
        10,
        message="exactly one process to hold the charge point's connection",
    )
    return holders[0]
