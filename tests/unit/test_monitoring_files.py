"""The dashboard and the alert rules ship with the package and are well formed (the e2e test
tests/e2e/test_prometheus.py runs them against a real Prometheus)."""

from __future__ import annotations

import configparser
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "metrics" / "grafana" / "csms-dashboard.json"
RULES = ROOT / "metrics" / "prometheus" / "csms-alerts.yml"


def test_setup_cfg_ships_the_dashboard_and_the_rules_as_package_data() -> None:
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    patterns = config["options.package_data"]["metrics"].split()
    shipped = {p.relative_to(ROOT / "metrics") for pattern in patterns for p in (ROOT / "metrics").glob(pattern)}
    assert {DASHBOARD.relative_to(ROOT / "metrics"), RULES.relative_to(ROOT / "metrics")} <= shipped


def test_every_dashboard_panel_queries_the_chosen_prometheus_with_distinct_ids() -> None:
    board = json.loads(DASHBOARD.read_text())
    panels = board["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    graphs = [p for p in panels if p["type"] != "row"]
    assert graphs and all(p["targets"] and p["datasource"]["uid"] == "${datasource}" for p in graphs)
    assert all(t["expr"] and "$" not in t["expr"] for p in graphs for t in p["targets"])  # checkable as written
    assert [v["name"] for v in board["templating"]["list"]] == ["datasource"]


def test_the_rules_page_on_what_the_issue_names_and_ticket_expiring_certificates() -> None:
    text = RULES.read_text()
    for alert in ("CsmsDown", "CsmsHostRestarting", "CsmsStationsDroppingOff", "CsmsFaultsRising",
                  "CsmsAuthorizationFailuresRising", "CsmsAuthorizeSlow", "CsmsDiskAlmostFull"):
        assert f"- alert: {alert}\n" in text
    # The certificates the node's CA issued (issue 10); the server's own is said to be watched elsewhere.
    assert "- alert: CsmsCertificatesExpiring\n" in text and "expr: csms_certificates_expiring > 0" in text
    assert "probe_ssl_earliest_cert_expiry" in text
