"""tierdesk policy engine: tiers, plans, rules, documentation gates and targets, without I/O.

    from tiering import decide, load_policy, Ticket
    decision = decide(ticket, load_policy(text, source="policy.yaml"), now=now)
"""

from tiering.engine import decide
from tiering.models import ChecklistItem, Customer, Decision, Ticket, note_key_in
from tiering.policy import Policy, PolicyError, load_policy

__all__ = [
    "ChecklistItem",
    "Customer",
    "Decision",
    "Policy",
    "PolicyError",
    "Ticket",
    "decide",
    "load_policy",
    "note_key_in",
]
