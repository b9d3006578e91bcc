"""The internal note tierdesk posts on a ticket: the text an agent reads, and the note's key.

The engine decides whether a note is due (`tiering/engine.py`, step 9); this module words it. The
key is recorded with the posted note: the next decision compares it with `Ticket.last_note_key`,
so an unchanged checklist is not posted twice.
"""

from __future__ import annotations

import hashlib

from tiering.models import ChecklistItem, Ticket
from tiering.policy import CompiledRule, Policy


def key(*parts: str) -> str:
    """A short, stable key for a note made of `parts`."""
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:16]


def body(ticket: Ticket, policy: Policy, tier: str, target: str,
         checklist: tuple[ChecklistItem, ...], suggestions: tuple[str, ...],
         refusal: str | None, completed: bool, plan: str | None,
         rule: CompiledRule | None) -> str:
    """The internal note an agent reads: what is needed, what is done, and why."""
    lines: list[str] = []
    if checklist:
        done = sum(1 for i in checklist if i.done)
        lines.append(
            f"tierdesk: {target} needs documentation before this ticket can move up"
            f" (it stays in {tier} for now)."
        )
        lines.append("")
        lines.append(f"Checklist for {target} ({done} of {len(checklist)} done):")
        for item in checklist:
            mark = "✔" if item.done else "✘"
            tail = "" if item.done else f" — {item.problem}"
            lines.append(f"{mark} {item.label}{tail}")
        lines.append("")
        lines.append(f"Complete the missing items; the ticket moves to {target} by itself.")
    elif completed:
        lines.append(
            f"tierdesk: documentation for {tier} is complete; the ticket is now in {tier}."
        )
    else:
        lines.append(f"tierdesk: ticket {ticket.key} is in {tier}.")
    if refusal is not None:
        lines.append("")
        lines.append(f"Entitlement: {refusal}")
    if plan is None:
        lines.append("")
        lines.append(
            "Customer not verified: no support plan matches this customer. Verify the"
            f" entitlement before escalating beyond {policy.unverified_max_tier}."
        )
    if suggestions:
        lines.append("")
        lines.append("Self-help to offer the customer:")
        lines.extend(f"- {s}" for s in suggestions)
    why = []
    if rule is not None:
        why.append(f'rule "{rule.name}"')
    if plan is not None:
        why.append(f"plan {plan} (up to {policy.plans[plan].max_tier})")
    if why:
        lines.append("")
        lines.append("Why: " + "; ".join(why) + ".")
    return "\n".join(lines)
