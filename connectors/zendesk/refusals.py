"""Zendesk's refusals of a decision's write that tierdesk's configuration causes.

`translate` (client.py) turns 401 into CredentialsRejected and 403 into a permission refusal.
A 422 RecordInvalid on the ticket update is explained here, where the decision is known:

    details.group       "Group: is invalid"            -> targets.<target>.zendesk.group_id
    details.assignee    "Assignee: is invalid" / "Assignee: is not a member of the group"
                        (facetoe/zenpy #628)            -> targets.<target>.zendesk.assignee_id
    details.base        "<field> is not valid" on a decision writing the SLA due field
                        (facetoe/zenpy #425)            -> sla.due_field.zendesk_type

Unknown custom field ids are not refused by Zendesk (its API ignores what it does not know:
Zendesk support article 4418443326106): tierdesk only reads fields, and `tierdesk doctor`
checks every `fields.*.zendesk` id against /api/v2/ticket_fields.
"""

from __future__ import annotations

from connectors.base import ConfigurationRejected, VendorRejected
from tiering.models import Decision
from tiering.policy import Policy


def explain(exc: VendorRejected, *, policy: Policy, decision: Decision) -> VendorRejected:
    """`exc` as a ConfigurationRejected naming the target key to fix, or `exc` itself."""
    if isinstance(exc, ConfigurationRejected) or exc.status != 422:
        return exc
    spec_due = policy.sla.spec.due_field if policy.sla.spec is not None else None
    base = exc.errors.get("base", "")
    if decision.due_write and spec_due is not None and "is not valid" in base:
        # A date field refuses a value that is not YYYY-MM-DD (facetoe/zenpy #425): the field
        # is a date field while the policy says text.
        return ConfigurationRejected(
            str(exc),
            reason="field",
            fix=(
                f"sla.due_field.zendesk_type: Zendesk refuses the due time in field"
                f" {spec_due.zendesk} ({base}): set zendesk_type to the field's type (date"
                " for a date field, text for a text field)"
            ),
            status=exc.status,
            errors=exc.errors,
        )
    if decision.assign is None:
        return exc
    target = decision.assign
    spec = policy.targets.get(target)
    zd = spec.zendesk if spec is not None else None
    errors = exc.errors
    if "group" in errors or "group_id" in errors:
        group = zd.group_id if zd is not None else None
        return ConfigurationRejected(
            str(exc),
            reason="unknown-target",
            fix=(
                f"targets.{target}.zendesk.group_id: Zendesk has no group {group}: give the id"
                " of an existing group (Admin Center > People > Groups)"
            ),
            status=exc.status,
            errors=errors,
        )
    if "assignee" in errors or "assignee_id" in errors:
        agent = zd.assignee_id if zd is not None else None
        group = zd.group_id if zd is not None else None
        return ConfigurationRejected(
            str(exc),
            reason="unknown-target",
            fix=(
                f"targets.{target}.zendesk.assignee_id: Zendesk will not assign to {agent}"
                + (f" in group {group}" if group is not None else "")
                + ": give an agent who is a member of the target's group"
            ),
            status=exc.status,
            errors=errors,
        )
    return exc
