"""The HTML report of a real plan opened in Chromium: two policies decided over a few tickets by
tiering/plan.py and made into a document by webhooks/plan/document.py; and `tierdesk plan`'s own
--format html file checked against its --format json output over one inbox."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from connectors.rates import RATES
from tests.tiering.conftest import DOCS_L2, NOW, ticket
from tests.webhooks.plan_report_dom import open_page, open_report
from tests.webhooks.test_cli_plan import env, plan  # noqa: F401 (env: a fixture)
from tiering import load_policy
from tiering.plan import PlanInput, plan_change
from webhooks.defaults import default_policy_text
from webhooks.plan.document import Rate, Skipped, dumps, plan_document

#: The proposed policy's edits: unmatched tickets start in L0, "refund" no longer routes to
#: billing, and a crash at medium priority needs advanced support too.
EDITS = [
    ("default_tier: L1", "default_tier: L0"),
    ('["invoice", "refund", "billing"]', '["invoice", "billing"]'),
    ("priority_in: [highest, high, urgent]", "priority_in: [highest, high, medium, urgent]"),
]


def proposed_text() -> str:
    text = default_policy_text()
    for old, new in EDITS:
        assert text.count(old) == 1, f"the example policy changed: {old!r} is not there once"
        text = text.replace(old, new)
    return text


def real_document() -> dict[str, Any]:
    """A document as `tierdesk plan --format json` prints it, parsed back."""
    current = load_policy(default_policy_text(), source="deploy/policy.yaml")
    proposed = load_policy(proposed_text(), source="policies/proposed.yaml")
    items = [
        PlanInput("jira", ticket(key="SUP-1")),  # default tier L1 → L0
        PlanInput("jira", ticket(key="SUP-2", subject="App crash on save", fields=DOCS_L2,
                                 attachments=1)),  # crash at medium: L1 → L2
        PlanInput("jira", ticket(key="SUP-3", subject="Crash with data loss")),  # no docs
        PlanInput("jira", ticket(key="SUP-10", subject="How do I export a report?")),  # same
        PlanInput("zendesk", replace(ticket(subject="Please refund my order"), key="77")),
        PlanInput("zendesk", replace(ticket(subject="Invoice missing"), key="78")),  # same
    ]
    plan = plan_change(items, current, proposed, now=NOW,
                       rates={v: r.writes_per_minute for v, r in RATES.items()})
    document = plan_document(
        plan, current=current, proposed=proposed, kinds=["inbox"], since="30d",
        generated_at=datetime(2026, 12, 1, 23, 0, tzinfo=UTC),
        rates={v: Rate(r.writes_per_minute, r.writes_source) for v, r in RATES.items()},
        skipped=[Skipped("zendesk", "79", "no stored body tierdesk can read")])
    parsed: dict[str, Any] = json.loads(dumps(document))
    return parsed


def test_a_real_plan_renders_with_its_numbers_in_chromium(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The report of a real two-policy plan shows the document's numbers, read from Chromium."""
    doc = real_document()
    summary = doc["summary"]
    # The plan is worth drawing: several kinds of change, tier moves both ways and a route.
    assert summary["changed"] >= 4 and len(summary["transitions"]) >= 3
    assert {k for k, n in summary["changes"].items() if n} >= {"escalate", "de-escalate", "route"}
    assert any(t.startswith("route:") for t in summary["tiers_before"])
    with open_report(doc, tmp_path) as (page, screenshot):
        assert page.locator("#skipped-table tbody tr").count() == 1
    with capsys.disabled():
        print(f"\nreal plan report screenshot: {screenshot}")
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.usefixtures("env")
def test_the_cli_report_shows_the_cli_documents_numbers_in_chromium(tmp_path: Path) -> None:
    """`tierdesk plan --format html` and `--format json` over one inbox: the page opened in
    Chromium shows the JSON's numbers."""
    # tmp_path is test_cli_plan's env: its inbox and policies, the working directory.
    args = ("--policy", "proposed.yaml")
    for fmt in ("json", "html"):
        result = plan(*args, "--format", fmt, "--output", f"plan.{fmt}")
        assert result.exit_code == 0, result.output
    doc = json.loads((tmp_path / "plan.json").read_text(encoding="utf-8"))
    assert doc["summary"]["changed"] and doc["skipped"]
    with open_page(tmp_path / "plan.html", doc, tmp_path) as (page, _):
        assert page.locator("#ticket-table tbody tr").count() == doc["summary"]["changed"]
