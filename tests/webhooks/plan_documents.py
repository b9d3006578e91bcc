"""Hand-written plan documents (format tierdesk-plan/1) for the HTML report's tests, hostile text
included: what `tierdesk plan --format json` prints, written out by hand."""

from __future__ import annotations

import copy
from typing import Any

#: Markup a customer could put in a subject, a label or a note. The report must show it as text;
#: if it ever ran, it would set window.__tierdesk_xss (which the browser test looks for).
HOSTILE = '<script>window.__tierdesk_xss = 1</script><img src=x onerror="window.__tierdesk_xss=2">'


def sample_document() -> dict[str, Any]:
    """A plan over 10 tickets of which 7 change and 1 could not be planned: most kinds of change
    (one ticket handed to the billing route), both vendors, hostile text in a note, a label,
    reasons, a ticket key, a target, a skipped ticket's reason and a policy path."""
    return copy.deepcopy(_SAMPLE)


_SAMPLE: dict[str, Any] = {
    "format": "tierdesk-plan/1",
    "generated_at": "2026-12-01T22:40:00+00:00",
    "policies": {
        "current": {"path": "deploy/policy.yaml", "digest": "sha256:1f2e3d4c5b6a"},
        "proposed": {"path": f"policies/next{HOSTILE}.yaml", "digest": "sha256:a6b5c4d3e2f1"},
    },
    "source": {"kinds": ["backlog", "inbox"], "since": "30d", "tickets": 10, "skipped": 1},
    "summary": {
        "tickets": 10,
        "changed": 7,
        "tiers_before": {"L1": 6, "L2": 3, "L3": 0, "(none)": 1},
        "tiers_after": {"L1": 3, "L2": 4, "L3": 1, "route:billing": 1, "(none)": 1},
        "transitions": [
            {"from": "L1", "to": "L2", "count": 2},
            {"from": "L1", "to": "L3", "count": 1},
            {"from": "L1", "to": "route:billing", "count": 1},
            {"from": "L2", "to": "L1", "count": 1},
        ],
        "changes": {"escalate": 3, "de-escalate": 1, "refused": 1,
                    "waiting-for-documentation": 0, "route": 1, "labels-or-note": 1},
        "writes": {"jira": 8, "zendesk": 4, "total": 12},
        "enforce_seconds": {"jira": 8.0, "zendesk": 2.4, "total": 10.4},
        "rates": {"jira": {"writes_per_minute": 60.0, "source": "assumed: one request a second"},
                  "zendesk": {"writes_per_minute": 100.0,
                              "source": "Zendesk developer docs, Rate limits"}},
    },
    "tickets": [
        {"vendor": "jira", "ticket": "SUP-101", "change": "escalate",
         "tier_before": "L1", "tier_after": "L2", "labels_added": ["tier-L2"],
         "labels_removed": ["tier-L1"], "target_before": "L1 queue",
         "target_after": "L2 queue", "note": f"Escalated to L2.\nCustomer wrote: {HOSTILE}",
         "reasons": ["rule outage: subject matches 'down'"],
         "reasons_before": ["No rule matched: default tier L1."], "writes": 3},
        {"vendor": "jira", "ticket": "SUP-102", "change": "escalate",
         "tier_before": "L1", "tier_after": "L3", "labels_added": ["tier-L3", HOSTILE],
         "labels_removed": ["tier-L1"], "target_before": None, "target_after": "L3 engineers",
         "note": None, "reasons": ["rule security", f"label {HOSTILE}"], "reasons_before": [],
         "writes": 3},
        {"vendor": "zendesk", "ticket": "4711", "change": "escalate",
         "tier_before": "L1", "tier_after": "L2", "labels_added": ["tier-l2"],
         "labels_removed": ["tier-l1"], "target_before": "group 11", "target_after": "group 12",
         "note": None, "reasons": ["priority urgent"], "reasons_before": [], "writes": 2},
        {"vendor": "zendesk", "ticket": f"48{HOSTILE}", "change": "de-escalate",
         "tier_before": "L2", "tier_after": "L1", "labels_added": ["tier-l1"],
         "labels_removed": ["tier-l2"], "target_before": "group 12",
         "target_after": f"group {HOSTILE}", "note": None, "reasons": ["no rule matches"],
         "reasons_before": [f"rule vip: {HOSTILE}"], "writes": 1},
        {"vendor": "jira", "ticket": "SUP-105", "change": "refused",
         "tier_before": "L2", "tier_after": "L2", "labels_added": ["tier-refused"],
         "labels_removed": [], "target_before": "L2 queue", "target_after": "L2 queue",
         "note": "Your plan (basic) does not cover L3.", "reasons": ["plan basic: max_tier L2"],
         "reasons_before": [], "writes": 1},
        {"vendor": "zendesk", "ticket": "4720", "change": "labels-or-note",
         "tier_before": None, "tier_after": None, "labels_added": ["needs-triage"],
         "labels_removed": [], "target_before": None, "target_after": None,
         "note": None, "reasons": ["new label rule"], "reasons_before": [], "writes": 1},
        # Handed to billing: no tier after, the route names where it goes.
        {"vendor": "jira", "ticket": "SUP-106", "change": "route",
         "tier_before": "L1", "tier_after": None, "route_before": None, "route_after": "billing",
         "labels_added": ["tier-route-billing"], "labels_removed": ["tier-l1"],
         "target_before": None, "target_after": "billing", "note": None,
         "reasons": ["rule billing: Not a support request; billing takes it."],
         "reasons_before": ["No rule matched: default tier L1."], "writes": 1},
    ],
    "skipped": [{"vendor": "zendesk", "ticket": "4799",
                 "reason": f"the stored body is not a ticket: {HOSTILE}"}],
}

#: The keys webhooks/plan/document.py adds to the agreed shape (the report reads them when there).
ADDITIVE = {"source": ["skipped"], "summary": ["rates"],
            "tickets": ["route_before", "route_after", "reasons_before", "writes"],
            "": ["skipped"]}


def agreed_shape_only() -> dict[str, Any]:
    """`sample_document()` without the additive keys: the shape first agreed for the format."""
    doc = sample_document()
    for key in ADDITIVE[""]:
        del doc[key]
    for part in ("source", "summary"):
        for key in ADDITIVE[part]:
            del doc[part][key]
    for ticket in doc["tickets"]:
        for key in ADDITIVE["tickets"]:
            ticket.pop(key, None)
    return doc
