"""End to end: a real Prometheus scrapes a running central system; the shipped dashboard and alert
rules are checked against what it stored.

- ``promtool check rules`` accepts ``metrics/prometheus/csms-alerts.yml``;
- Prometheus (Debian's 2.42, its own config, port and storage, killed at the
  end) loads the rules and evaluates every one without error;
- every query of ``metrics/grafana/csms-dashboard.json`` returns at least
  one series;
- every alert's signal returns data: each comparison of the expression is
  made a ``bool`` comparison (``x > 1`` -> ``x > bool 1``), which keeps every
  series with 0 or 1 instead of filtering out those below the threshold. A
  healthy system fires none of them, so the plain expression is run too and
  must be valid; its number of series (what would fire) is reported.

Skipped only when the prometheus or promtool binary is missing (``.ci/run``
installs them).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.sim.ports import free_ports
from tests.support.chargepoint import ChargePoint, now_iso
from tests.support.system import CentralSystem, port_open, wait_for

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not (shutil.which("prometheus") and shutil.which("promtool")),
                       reason="the prometheus and promtool binaries are not installed (apt-get install prometheus)"),
]

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "metrics" / "prometheus" / "csms-alerts.yml"
DASHBOARD = ROOT / "metrics" / "grafana" / "csms-dashboard.json"
SCRAPES_NEEDED = 4  # rate() and predict_linear() want at least two samples; a few more for margin


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, expression) of every target of every panel."""
    board = json.loads(DASHBOARD.read_text())
    return [(panel["title"], target["expr"]) for panel in board["panels"] for target in panel.get("targets", [])]


COMPARISONS = ("==", "!=", ">=", "<=", ">", "<")


def as_bool(expr: str) -> str:
    """``expr`` with ``bool`` after every comparison operator outside label matchers and strings."""
    out: list[str] = []
    depth, quote, i = 0, "", 0
    while i < len(expr):
        c = expr[i]
        if quote:
            out.append(c)
            quote = "" if c == quote else quote
            i += 1
            continue
        if c in "\"'":
            quote = c
        elif c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        elif depth == 0:
            op = next((o for o in COMPARISONS if expr.startswith(o, i)), None)
            if op is not None and not expr.startswith("=~", i):
                out.append(f"{op} bool")
                i += len(op)
                continue
        out.append(c)
        i += 1
    return "".join(out)


def test_as_bool_leaves_label_matchers_alone() -> None:
    assert as_bool('a{x!="y",z=~"w"} > 0.5 * b and c >= 10') == 'a{x!="y",z=~"w"} > bool 0.5 * b and c >= bool 10'


class Prometheus:
    def __init__(self, port: int) -> None:
        self.port = port

    def get(self, path: str, **params: str) -> Any:
        url = f"http://127.0.0.1:{self.port}{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=10) as response:
            return json.loads(response.read())

    def ready(self) -> bool:
        """Prometheus listens before its storage is open, answering 503 meanwhile."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=10) as response:
                return response.status == 200
        except (urllib.error.URLError, ConnectionError):
            return False

    def query(self, expr: str) -> list[dict[str, Any]]:
        answer = self.get("/api/v1/query", query=expr)
        assert answer["status"] == "success", (expr, answer)
        return answer["data"]["result"]


def traffic(system: CentralSystem) -> None:
    """Something for every series the dashboard and the rules read."""
    system.ctl_ok("tag", "add", "PROM-TAG")
    system.ctl_ok("station", "add", "PROM-LOCKED", "--password", "right-password")
    with pytest.raises(Exception):  # noqa: B017 - a 401 at the handshake: csms_login_failures_total
        ChargePoint(system.url, "PROM-LOCKED", password="wrong").connect()
    with ChargePoint(system.url, "PROM-1") as cp:
        cp.booted()
        cp.status(1, "Faulted", "GroundFailure")
        cp.authorize("NO-SUCH-TAG")
        cp.authorize("PROM-TAG")
        cp.send_raw("not OCPP")
        cp.wait_answer("-1")
        tx = cp.start(2, "PROM-TAG", meter_start=0)["transactionId"]
        cp.call("MeterValues", {"connectorId": 2, "transactionId": tx,
                                "meterValue": [{"timestamp": now_iso(), "sampledValue": [{"value": "300"}]}]})
        cp.stop(tx, 500)


@pytest.fixture(scope="module")
def prometheus(csms: CentralSystem, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    home = tmp_path_factory.mktemp("prometheus")
    # JSON is YAML: no YAML library needed to write Prometheus' configuration.
    (home / "prometheus.yml").write_text(json.dumps({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(RULES)],
        "scrape_configs": [{"job_name": "csms", "static_configs": [{"targets": [f"127.0.0.1:{csms.metrics_port}"]}]}],
    }))
    port = free_ports(1)[0]
    log = open(home / "prometheus.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        ["prometheus", f"--config.file={home / 'prometheus.yml'}", f"--storage.tsdb.path={home / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--web.enable-lifecycle"],
        stdout=log, stderr=subprocess.STDOUT, cwd=home,
    )
    try:
        wait_for(lambda: process.poll() is not None or port_open(port), 30, message="prometheus to listen")
        assert process.poll() is None, (home / "prometheus.log").read_text()
        server = Prometheus(port)
        wait_for(lambda: process.poll() is not None or server.ready(), 60, interval=0.1, message="prometheus to be ready")
        assert process.poll() is None, (home / "prometheus.log").read_text()
        wait_for(lambda: server.query('up{job="csms"} == 1'), 30, interval=0.2, message="a first scrape")
        traffic(csms)
        wait_for(lambda: server.query(f'count_over_time(up{{job="csms"}}[5m]) >= {SCRAPES_NEEDED + 2}'), 60,
                 interval=0.2, message="scrapes after the traffic")
        yield server
    finally:
        process.kill()
        process.wait(10)
        log.close()


def promtool_rule_count() -> int:
    done = subprocess.run(["promtool", "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    found = [line for line in done.stdout.splitlines() if line.startswith("  SUCCESS: ")]
    assert len(found) == 1, done.stdout
    return int(found[0].split()[1])


def loaded_rules(prometheus: Prometheus) -> list[dict[str, Any]]:
    """The rules Prometheus loaded, once each has been evaluated."""
    def evaluated() -> list[dict[str, Any]]:
        rules = [r for g in prometheus.get("/api/v1/rules")["data"]["groups"] for r in g["rules"]]
        return rules if rules and all(not r["lastEvaluation"].startswith("0001") for r in rules) else []

    return wait_for(evaluated, 30, interval=0.2, message="every rule to be evaluated")


def test_promtool_accepts_the_alert_rules() -> None:
    assert promtool_rule_count() >= 7  # the seven things the issue pages on, certificates aside


def test_prometheus_loads_every_rule_and_evaluates_it_without_error(prometheus: Prometheus) -> None:
    rules = loaded_rules(prometheus)
    assert len(rules) == promtool_rule_count()
    assert all(r["type"] == "alerting" for r in rules)
    assert [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"] == []


@pytest.mark.parametrize("title, expr", dashboard_queries(), ids=[t for t, _ in dashboard_queries()])
def test_every_dashboard_query_returns_data(prometheus: Prometheus, title: str, expr: str) -> None:
    result = prometheus.query(expr)
    print(f"\ndashboard | {title} | {expr} | {len(result)} series")
    assert result, f"{title}: {expr} returned no series"


def test_every_alert_signal_returns_data(prometheus: Prometheus) -> None:
    silent = []
    for rule in loaded_rules(prometheus):
        expr = rule["query"]  # as Prometheus parsed it from the rules file
        signal = prometheus.query(as_bool(expr))
        firing = prometheus.query(expr)  # valid too; a quiet test system fires little or nothing
        print(f"\nalert | {rule['name']} | {expr} | signal {len(signal)} series, firing {len(firing)}")
        if not signal:
            silent.append(f"{rule['name']}: {as_bool(expr)}")
    assert silent == []
