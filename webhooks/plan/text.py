"""The readable plan: `tierdesk plan`'s default output, drawn from its tierdesk-plan/1 document.

One block per changed ticket (kind; tier or route before -> after, named as the distribution
names them: `L2`, `route:billing`, `(none)`; labels, target, the reasons that changed, the note),
then the aggregate (tier distribution, transitions, changes per kind, the writes enforcing would
cost and their time) and the tickets that could not be planned. The JSON
(webhooks/plan/document.py) and the HTML report (webhooks/plan/report.py) show the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tiering.plan import CHANGE_KINDS, outcome_key
from webhooks.plan.charts import tier_order


def duration_text(seconds: float) -> str:
    """A duration as a person reads it: 0.6 s, 42 s, 12 min, 1.5 h."""
    if seconds < 60:
        return f"{seconds:.0f} s" if seconds >= 1 else f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def render_text(doc: Mapping[str, Any]) -> str:
    """The readable plan of a tierdesk-plan/1 document: a header, one block per changed
    ticket, the aggregate, the skipped tickets."""
    summary = doc["summary"]
    source = doc["source"]
    policies = doc["policies"]
    lines = [
        f"Plan: {policies['proposed']['path']} (proposed) against"
        f" {policies['current']['path']} (current)",
        f"Source: {' and '.join(source['kinds'])}"
        + (f" (since {source['since']})" if source["since"] else "")
        + f": {source['tickets']} ticket(s), {summary['changed']} would change"
        + (f", {source['skipped']} skipped" if source["skipped"] else "") + ".",
    ]
    for t in doc["tickets"]:
        lines.append("")
        before = outcome_key(t["tier_before"], t.get("route_before"))
        after = outcome_key(t["tier_after"], t.get("route_after"))
        tier = f"tier {before} -> {after}"
        lines.append(f"{t['vendor']} {t['ticket']}: {t['change']}; {tier}")
        marks = [f"+{x}" for x in t["labels_added"]] + [f"-{x}" for x in t["labels_removed"]]
        if marks:
            lines.append("  labels: " + " ".join(marks))
        if t["target_before"] != t["target_after"]:
            lines.append(f"  target: {t['target_before'] or '(unchanged)'} ->"
                         f" {t['target_after'] or '(unchanged)'}")
        for reason in t["reasons"]:
            lines.append(f"  why: {reason}")
        if t["note"]:
            lines.append("  note:")
            lines.extend(f"    {line}" if line else "" for line in t["note"].splitlines())
    lines.append("")
    tiers = tier_order(summary["tiers_before"], summary["tiers_after"])
    lines.append("Tiers (before -> after): " + (", ".join(
        f"{tier} {summary['tiers_before'].get(tier, 0)} -> {summary['tiers_after'].get(tier, 0)}"
        for tier in tiers) or "no tickets"))
    moves = [f"{m['from']} -> {m['to']}: {m['count']}" for m in summary["transitions"]]
    lines.append("Transitions: " + (", ".join(moves) or "none"))
    lines.append("Changes: " + ", ".join(f"{k} {summary['changes'][k]}" for k in CHANGE_KINDS))
    vendors = [v for v in summary["writes"] if v != "total"]
    per = [f"{v} {summary['writes'][v]} ({duration_text(summary['enforce_seconds'][v])} at"
           f" {summary['rates'][v]['writes_per_minute']:g} a minute)"
           for v in vendors if v in summary["rates"]]
    lines.append(f"Writes to enforce: {summary['writes']['total']}"
                 + (f" ({'; '.join(per)})" if per else "")
                 + f", about {duration_text(summary['enforce_seconds']['total'])}.")
    for s in doc["skipped"]:
        lines.append(f"Skipped {s['vendor']} {s['ticket']}: {s['reason']}")
    return "\n".join(lines) + "\n"
