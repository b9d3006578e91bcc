"""deploy/observability/: the Grafana dashboard and the Prometheus alert rules name only metrics
that tierdesk exports (checked against /metrics after the demo's story), and promtool accepts
the rules, their unit tests and every dashboard query."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.deploy.deployfiles import DEPLOY, yaml_documents

OBS = DEPLOY / "observability"
DASHBOARD = OBS / "tierdesk-dashboard.json"
RULES = OBS / "tierdesk-alerts.yaml"
RULE_TESTS = OBS / "tierdesk-alerts.test.yaml"
PROMTOOL = shutil.which("promtool")
NO_PROMTOOL = (
    "promtool is not installed, so the alert rules were NOT checked: install Debian's"
    " `prometheus` package (apt-get install prometheus), as .ci/run does"
)
_METRIC = re.compile(r"\btierdesk_[a-z0-9_]+\b")
#: Suffixes Prometheus adds to a family's samples (counters, histograms).
_SUFFIXES = ("_total", "_bucket", "_sum", "_count", "_created")


def dashboard_exprs() -> list[str]:
    """Every query of the dashboard, panel by panel."""
    board = json.loads(DASHBOARD.read_text("utf-8"))
    return [t["expr"] for p in board["panels"] for t in p.get("targets", ())]


def rule_exprs() -> list[str]:
    [doc] = yaml_documents(RULES)
    return [r["expr"] for g in doc["groups"] for r in g["rules"]]


def named_metrics() -> set[str]:
    return {m for e in dashboard_exprs() + rule_exprs() for m in _METRIC.findall(e)}


def _family(name: str) -> str:
    for suffix in _SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def test_dashboard_covers_what_the_admin_runs_by() -> None:
    """The dashboard shows received/refused webhooks, inbox depth and age, decisions, vendor
    calls, Retry-After pauses, dead letters and write latency, each panel with a description."""
    board = json.loads(DASHBOARD.read_text("utf-8"))
    graphs = [p for p in board["panels"] if p["type"] != "row"]
    assert all(p["description"] and p["targets"] for p in graphs)
    assert all(t["datasource"]["uid"] == "${datasource}" for p in graphs for t in p["targets"])
    names = named_metrics()
    for needed in ("tierdesk_webhooks_received_total", "tierdesk_webhooks_rejected_total",
                   "tierdesk_inbox_pending_events", "tierdesk_inbox_oldest_pending_age_seconds",
                   "tierdesk_decisions_total", "tierdesk_vendor_calls_total",
                   "tierdesk_vendor_pauses_total", "tierdesk_dead_letters",
                   "tierdesk_vendor_write_seconds_bucket"):
        assert needed in names, needed


def test_dashboard_shows_the_sla_clocks() -> None:
    """An SLA row shows open clocks, warnings and breaches per vendor and clock, and the timer
    lag's p50 and p99 against a threshold line at the 1 s goal."""
    board = json.loads(DASHBOARD.read_text("utf-8"))
    panels = {p["title"]: p for p in board["panels"]}
    assert panels["SLA clocks"]["type"] == "row"
    assert [t["expr"] for t in panels["Open SLA clocks"]["targets"]] == [
        "max by (vendor) (tierdesk_sla_open_clocks)"]
    for title, metric in (("SLA warnings acted on, per hour", "tierdesk_sla_warnings_total"),
                          ("SLA breaches acted on, per hour", "tierdesk_sla_breaches_total")):
        [target] = panels[title]["targets"]
        assert target["expr"] == f"sum by (vendor, clock) (increase({metric}[1h]))"
        assert target["legendFormat"] == "{{vendor}} {{clock}}"
    lag = panels["SLA timer lag"]
    assert [t["expr"].split(",")[0] for t in lag["targets"]] == [
        "histogram_quantile(0.5", "histogram_quantile(0.99"]
    assert all("tierdesk_sla_timer_lag_seconds_bucket" in t["expr"] for t in lag["targets"])
    defaults = lag["fieldConfig"]["defaults"]
    assert defaults["unit"] == "s"
    assert defaults["custom"]["thresholdsStyle"]["mode"] == "line"
    assert [s["value"] for s in defaults["thresholds"]["steps"]] == [None, 1]


@pytest.mark.parametrize("alert, metric", [
    ("TierdeskDeadLetters", "tierdesk_dead_lettered_total"),          # dead letters appear
    ("TierdeskInboxBacklog", "tierdesk_inbox_oldest_pending_age_seconds"),  # inbox age
    ("TierdeskVendorAuthRefused", "tierdesk_vendor_calls_total"),     # a 401/403
    ("TierdeskVendorPaused", "tierdesk_vendor_paused_seconds"),       # paused over N minutes
    ("TierdeskNoWebhooks", "tierdesk_vendor_configured"),             # webhook gone
    ("TierdeskSlaTimerLag", "tierdesk_sla_timer_lag_seconds_bucket"),  # timers fire late
    ("TierdeskSlaBreachesRising", "tierdesk_sla_breaches_total"),     # a surge of breaches
])
def test_each_alert_watches_its_metric(alert: str, metric: str) -> None:
    """Each alert the issue asks for exists and is built on the metric that shows it."""
    [doc] = yaml_documents(RULES)
    rules = {r["alert"]: r for g in doc["groups"] for r in g["rules"]}
    assert metric in rules[alert]["expr"]
    assert rules[alert]["annotations"]["summary"] and rules[alert]["annotations"]["description"]


def test_every_rule_has_a_unit_test() -> None:
    """Each alert of the rules file is evaluated by at least one promtool unit test."""
    [doc] = yaml_documents(RULES)
    [tests] = yaml_documents(RULE_TESTS)
    alerts = {r["alert"] for g in doc["groups"] for r in g["rules"]}
    tested = {a["alertname"] for case in tests["tests"] for a in case["alert_rule_test"]
              if a["exp_alerts"]}
    assert alerts == tested


def test_sla_counters_start_at_zero_for_each_served_vendor() -> None:
    """`Metrics.serve_sla` puts a 0 sample in /metrics for each vendor and clock (and the lag
    histogram), so the rules' increase() counts the first breach after a restart."""
    from webhooks.metrics import Metrics

    metrics = Metrics()
    metrics.serve_sla(["jira", "zendesk"])
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for f in text_string_to_metric_families(metrics.render().decode())
               for s in f.samples}
    for vendor in ("jira", "zendesk"):
        for clock in ("first_response", "time_in_tier", "resolution"):
            for name in ("tierdesk_sla_warnings_total", "tierdesk_sla_breaches_total"):
                assert samples[(name, (("clock", clock), ("vendor", vendor)))] == 0
        assert samples[("tierdesk_sla_timer_lag_seconds_count", (("vendor", vendor),))] == 0


def _promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    if PROMTOOL is None:
        pytest.skip(NO_PROMTOOL)
    return subprocess.run([PROMTOOL, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60, check=False)


def test_promtool_checks_the_rules() -> None:
    """`promtool check rules` accepts the alert rules."""
    done = _promtool("check", "rules", RULES.name, cwd=OBS)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 7 rules found" in done.stdout


def test_promtool_unit_tests_of_the_rules_pass() -> None:
    """`promtool test rules`: each alert fires on the series that should raise it, with its
    annotations rendered, and stays quiet on the others."""
    done = _promtool("test", "rules", RULE_TESTS.name, cwd=OBS)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_promtool_parses_every_dashboard_query(tmp_path: Path) -> None:
    """Every dashboard query is valid PromQL (checked by promtool as recording rules, with
    Grafana's $__rate_interval set to 5m)."""
    rules: dict[str, Any] = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"tierdesk:dashboard_query_{i}", "expr": e.replace("$__rate_interval", "5m")}
        for i, e in enumerate(dashboard_exprs())
    ]}]}
    path = tmp_path / "dashboard-queries.yaml"
    path.write_text(json.dumps(rules))  # JSON is YAML
    done = _promtool("check", "rules", path.name, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.slow
def test_every_named_metric_is_exported_after_the_demo(tmp_path: Path) -> None:
    """The demo's story (both vendors, real processes, signed webhooks) runs; then every metric
    the dashboard and the rules name is in the service's /metrics."""
    from sandbox.demo import install_stack, play, service
    from sandbox.server import run_in_thread

    handle = run_in_thread()
    try:
        stack = install_stack(handle, tmp_path)
        with service(stack):
            failed = play(handle)
            body = requests.get(f"{stack.base_url}/metrics", timeout=10).text
    finally:
        handle.stop()
    assert not failed
    exported: set[str] = set()
    for family in text_string_to_metric_families(body):
        exported.add(family.name)
        exported.update(s.name for s in family.samples)
    missing = sorted(m for m in named_metrics() if m not in exported
                     and _family(m) not in exported)
    assert missing == []
    # The SLA figures have samples, not only declarations: the demo's tickets keep their clocks
    # open, and the counters start at 0 for both vendors the demo's worker serves.
    samples = {(s.name, s.labels.get("vendor")): s.value
               for f in text_string_to_metric_families(body) for s in f.samples}
    for vendor in ("jira", "zendesk"):
        assert samples[("tierdesk_sla_open_clocks", vendor)] > 0
        for name in ("tierdesk_sla_warnings_total", "tierdesk_sla_breaches_total",
                     "tierdesk_sla_timer_lag_seconds_count"):
            assert (name, vendor) in samples, (name, vendor)
    # Families with no sample yet (no 401, no pause in the demo) are declared all the same.
    print("named metrics without a sample after the demo:",
          sorted(m for m in named_metrics() if m not in exported) or "none")
