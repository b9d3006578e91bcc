"""The JSON body tierdesk's Zendesk trigger sends: a template of Zendesk placeholders.

`tierdesk install zendesk` puts `render_template(policy)` into the trigger's
`notification_webhook` action; Zendesk fills the placeholders and POSTs the result to the
receiver, where `connectors.zendesk.webhook.classify` classifies it and
`connectors.zendesk.tickets.ticket_from_trigger` turns it into a `Ticket` without any read.

Placeholders used (https://support.zendesk.com/hc/en-us/articles/4408886858138 "Zendesk
placeholders reference"): `ticket.id`, `ticket.title`, `ticket.description`, `ticket.tags`
(space-separated), `ticket.priority` (a display name such as "High"), `ticket.requester.email`,
`ticket.organization.name|id`, `ticket.organization.custom_fields.<key>`, `ticket.group.id`,
`ticket.assignee.id`, `ticket.updated_at_with_timestamp` (ISO 8601, documented with minute
precision only), `current_user.id` (who made the change: tierdesk's loop guard) and
`ticket.ticket_field_<id>` for each documentation field. For the SLA clocks (issue 18):
`ticket.status` (the status's display name, "Open") and `ticket.created_at_with_timestamp`
(ISO 8601, the same article; its example "2013-12-12T05:35Z" has minute precision). NOT CONFIRMED:
what `ticket.status` renders for a custom ticket status (its own label, perhaps): a value that is
not one of the system statuses makes the parser read the ticket, whose API `status` is always
the status category (Zendesk API reference, "Custom ticket statuses").

Attachments have no placeholder; Zendesk's Liquid exposes `comment.attachments` inside
`{% for comment in ticket.comments %}` (the "Using Liquid markup" article), so the template prints
one `+` per attachment and the parser counts them. NOT CONFIRMED against a live account: if the
Liquid is left unrendered, the parser sees `{%` and treats the count as unknown (one read).

Escaping: Zendesk is not confirmed to JSON-escape placeholder values. Everything tierdesk needs to
route the delivery (marker, ticket id, actor, updated_at) comes first and is made of digits and
ASCII only, so `webhook.parse` can salvage those from a body whose free text broke the JSON;
such a salvaged body is "partial" and costs one read of the ticket, so nothing is lost. Next come
the keys entitlement depends on (organization, plan, requester, attachments, tags, priority,
documentation fields), and only then the subject and description: free text can add keys only
after them, and a body that repeats a key is treated as partial too (issue 14: a subject of
`help", "organization_name": "Initech", ...` let a bronze customer's ticket reach L4).
"""

from __future__ import annotations

import json
from typing import Any

from connectors.zendesk import due
from tiering.policy import Policy

#: Value of the `tierdesk` key: the template version. Bump it when the shape changes; the parser
#: rejects versions it does not know with a message asking to rerun `tierdesk install zendesk`.
TEMPLATE_VERSION = 1

#: `event_type` of trigger deliveries.
TRIGGER_EVENT = "trigger"

#: The key only the public reply trigger's body carries: when the update that added a public
#: agent comment happened (`{{ticket.updated_at_with_timestamp}}`, minute precision).
REPLY_KEY = "public_reply_at"

#: Liquid that prints one `+` per attachment on any comment of the ticket.
ATTACHMENT_LIQUID = (
    "{% for comment in ticket.comments %}{% for attachment in comment.attachments %}+"
    "{% endfor %}{% endfor %}"
)


def needs_attachments(policy: Policy) -> bool:
    """True when some documentation requirement of the policy asks for an attachment."""
    return any(req.attachment for reqs in policy.requirements.values() for req in reqs)


def template(policy: Policy, *, reply: bool = False) -> dict[str, Any]:
    """The trigger body as a mapping of keys to placeholder strings, in the order sent;
    `reply`: the public reply trigger's body (the same keys plus `REPLY_KEY`)."""
    body: dict[str, Any] = {
        # Routing keys first, digits and ASCII only: see the module docstring on salvage.
        "tierdesk": TEMPLATE_VERSION,
        "event_type": TRIGGER_EVENT,
        "ticket_id": "{{ticket.id}}",
        "current_user_id": "{{current_user.id}}",
        "updated_at": "{{ticket.updated_at_with_timestamp}}",
    }
    if reply:
        body[REPLY_KEY] = "{{ticket.updated_at_with_timestamp}}"
    body |= {
        "status": "{{ticket.status}}",
        "created_at": "{{ticket.created_at_with_timestamp}}",
        "group_id": "{{ticket.group.id}}",
        "assignee_id": "{{ticket.assignee.id}}",
        "organization_id": "{{ticket.organization.id}}",
    }
    # Then every key entitlement depends on, before any free text: with duplicate keys refused
    # (webhook.parse), text a customer wrote can only add keys after these, and a repeated
    # key makes the whole body untrusted (the ticket is read from the API instead).
    key = policy.doc.entitlement.zendesk_organization_field
    if key:
        body["organization_plan"] = "{{ticket.organization.custom_fields." + key + "}}"
    body["organization_name"] = "{{ticket.organization.name}}"
    body["requester_email"] = "{{ticket.requester.email}}"
    if needs_attachments(policy):
        body["attachments"] = ATTACHMENT_LIQUID
    body["tags"] = "{{ticket.tags}}"
    body["priority"] = "{{ticket.priority}}"
    body["fields"] = {
        str(field_id): f"{{{{ticket.ticket_field_{field_id}}}}}"
        for field_id in sorted(set(policy.zendesk_fields.values()) | due.field_ids(policy))
    }
    # Free text last: the subject and description are what customers write.
    body["subject"] = "{{ticket.title}}"
    body["description"] = "{{ticket.description}}"
    return body


def render_template(policy: Policy, *, reply: bool = False) -> str:
    """The trigger body as the JSON text Zendesk stores in the `notification_webhook` action
    (`reply`: the public reply trigger's)."""
    return json.dumps(template(policy, reply=reply), indent=2, ensure_ascii=False)
