"""The `tierdesk plan` JSON document: its shape, order and text, pinned by a golden file."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from tests.tiering.conftest import DOCS_L2, NOW, ticket
from tiering import load_policy
from tiering.plan import PlanInput, plan_change
from webhooks.defaults import default_policy_text
from webhooks.plan.document import FORMAT, Rate, Skipped, dumps, natural_key, plan_document

GOLDEN = Path(__file__).parent / "golden" / "plan.json"



def _edited(text: str, *edits: tuple[str, str]) -> str:
    """`text` with each (old, new) edit made; an edit that finds nothing fails here, so a change
    to the example policy cannot leave the proposed one silently equal to it."""
    for old, new in edits:
        assert old in text, f"the example policy no longer has {old!r}"
        text = text.replace(old, new)
    return text


#: The proposed policy: unmatched tickets start in L0, the standard plan stops at L1, licence
#: questions go to billing.
PROPOSED_TEXT = _edited(
    default_policy_text(),
    ("default_tier: L1", "default_tier: L0"),
    ("  standard:\n    max_tier: L2", "  standard:\n    max_tier: L1"),
    ("        L2: {time_in_tier: 14h, resolution: 35h}\n", ""),
    ('when: {text_any: ["invoice", "refund", "billing"]}',
     'when: {text_any: ["invoice", "refund", "billing", "licence"]}'),
)


def _document() -> dict[str, object]:
    current = load_policy(default_policy_text(), source="deploy/policy.yaml")
    proposed = load_policy(PROPOSED_TEXT, source="proposed.yaml")
    plain = ticket(subject="Sync stopped", description="Nothing syncs.")
    globex = ticket(org=None, email="a@globex.example", labels=("tier-l1", "escalate-l2"),
                    fields=DOCS_L2, attachments=1)
    items = [
        PlanInput("jira", replace(plain, key="SUP-10")),
        PlanInput("jira", replace(plain, key="SUP-9")),
        PlanInput("zendesk", replace(globex, key="42")),
        PlanInput("jira", ticket(labels=("tier-l3",), key="SUP-3")),
        # L1 now, handed to billing under the proposed policy.
        PlanInput("jira", ticket(subject="Licence renewal", description="Who renews it?",
                                 key="SUP-11")),
    ]
    rates = {"jira": Rate(60.0, "assumed"), "zendesk": Rate(100.0, "Zendesk Rate limits")}
    plan = plan_change(items, current, proposed, now=NOW,
                       rates={v: r.writes_per_minute for v, r in rates.items()})
    return plan_document(plan, current=current, proposed=proposed, kinds=["inbox"],
                         since="30d", generated_at=datetime(2026, 11, 21, 12, 5, tzinfo=UTC),
                         rates=rates,
                         skipped=[Skipped("zendesk", "7", "no stored body tierdesk can read")])


def test_document_matches_the_golden_file() -> None:
    """The document's text (keys sorted, tickets in natural order) is exactly the golden file.
    Regenerate with TIERDESK_UPDATE_GOLDEN=1 after a deliberate, additive format change."""
    text = dumps(_document())
    if os.environ.get("TIERDESK_UPDATE_GOLDEN") == "1":
        GOLDEN.write_text(text, encoding="utf-8")
    assert text == GOLDEN.read_text(encoding="utf-8")


def test_document_has_the_agreed_shape() -> None:
    """Every key the report renderer and CI pipelines read is there, with its type."""
    doc = json.loads(dumps(_document()))
    assert doc["format"] == FORMAT == "tierdesk-plan/1"
    assert set(doc["policies"]) == {"current", "proposed"}
    assert set(doc["policies"]["current"]) == {"path", "digest"}
    assert {"kinds", "since", "tickets"} <= set(doc["source"])
    summary = doc["summary"]
    assert {"tickets", "changed", "tiers_before", "tiers_after", "transitions", "changes",
            "writes", "enforce_seconds"} <= set(summary)
    assert set(summary["changes"]) == {"escalate", "de-escalate", "refused",
                                       "waiting-for-documentation", "route", "labels-or-note"}
    assert summary["writes"]["total"] == sum(v for k, v in summary["writes"].items()
                                             if k != "total")
    for row in summary["transitions"]:
        assert set(row) == {"from", "to", "count"}
    required = {"vendor", "ticket", "change", "tier_before", "tier_after", "route_before",
                "route_after", "labels_added", "labels_removed", "target_before",
                "target_after", "note", "reasons"}
    assert doc["tickets"] and all(required <= set(t) for t in doc["tickets"])
    assert summary["changed"] == len(doc["tickets"])
    assert [t["ticket"] for t in doc["tickets"]] == ["SUP-9", "SUP-10", "SUP-11", "42"]
    # A routed ticket has no tier: the route names where it goes, as the distribution counts it.
    routed = {t["ticket"]: (t["tier_before"], t["route_before"], t["tier_after"],
                            t["route_after"]) for t in doc["tickets"]
              if t["route_before"] or t["route_after"]}
    assert routed == {"SUP-11": ("L1", None, None, "billing")}
    assert summary["tiers_after"]["route:billing"] == 1
    assert {"from": "L1", "to": "route:billing", "count": 1} in summary["transitions"]


def test_natural_order() -> None:
    """Ticket keys sort with their numbers as numbers, vendors first."""
    keys = [("jira", "SUP-10"), ("zendesk", "9"), ("jira", "SUP-9"), ("jira", "OPS-2")]
    assert sorted(keys, key=lambda k: natural_key(*k)) == [
        ("jira", "OPS-2"), ("jira", "SUP-9"), ("jira", "SUP-10"), ("zendesk", "9")]


def test_readable_text_shows_the_same_figures() -> None:
    """The default table: one block per changed ticket (kind, tiers, labels, reasons, note),
    then the distribution in tier order, the kinds, the writes and the skipped tickets."""
    from webhooks.plan.text import duration_text, render_text

    text = render_text(_document())
    assert "jira SUP-9: de-escalate; tier L1 -> L0" in text
    assert "zendesk 42: refused; tier L2 -> L1" in text
    # A routed ticket names its route where the tier would be, as the distribution does.
    assert "jira SUP-11: route; tier L1 -> route:billing" in text
    assert "  labels: +tier-entitlement-exceeded +tier-l1 -tier-l2" in text
    assert "  why: No rule matched: default tier L0." in text
    assert "    Entitlement: L2 is beyond what plan standard allows (L1)" in text
    assert ("Tiers (before -> after): L0 0 -> 2, L1 3 -> 1, L2 1 -> 0, L3 1 -> 1,"
            " route:billing 0 -> 1") in text
    assert "Transitions: L1 -> L0: 2, L1 -> route:billing: 1, L2 -> L1: 1" in text
    assert "Changes: escalate 0, de-escalate 2, refused 1, waiting-for-documentation 0, route 1," \
        in text
    assert "Writes to enforce: 4 (jira 3 (3 s at 60 a minute); zendesk 1 (0.6 s at 100 a" in text
    assert "Skipped zendesk 7: no stored body tierdesk can read" in text
    assert text.index("SUP-9") < text.index("SUP-10") < text.index("SUP-11") \
        < text.index("zendesk 42")
    assert [duration_text(s) for s in (0.6, 42, 720, 5400)] == ["0.6 s", "42 s", "12 min",
                                                               "1.5 h"]
