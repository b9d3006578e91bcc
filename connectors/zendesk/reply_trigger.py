"""The public reply trigger: tells tierdesk when an agent's public comment lands (first_response).

tierdesk's main trigger body says nothing about comments, and reading the comments on every
event would cost one request each. So `tierdesk install zendesk` adds a second trigger,
titled `REPLY_TRIGGER_TITLE`, that fires only on an update adding a public comment by an agent
and calls the same webhook with the same body plus `trigger_body.REPLY_KEY` (the update's
time, `{{ticket.updated_at_with_timestamp}}`, documented to the minute). The parser turns that
marker into `Ticket.first_reply_at` (connectors/zendesk/tickets.py `reply_time`), the worker
records it as the SLA reply mark, and the first_response clock stops: no extra request.

Conditions (Zendesk "Conditions reference",
https://developer.zendesk.com/documentation/ticketing/reference-guides/conditions-reference/;
the help-center twin "Ticket trigger conditions and actions reference", support article
4408893545882):

- `update_type is Change`: a ticket an agent creates starts with its description, which is not a
  reply to the requester.
- `comment_is_public is true` ("Ticket > Comment is Public"): the update added a public
  comment, not an internal note. Values `true|false|not_relevant|requester_can_see_comment`
  and operators `is`/`is_not` as JacobPotter/go-zendesk `zendesk/condition_types.go` validates
  them; clients create it as `{"field": "comment_is_public", "operator": "is", "value":
  "true"}` in public code (e.g. a Layer and an "AI customer email" integration found by the
  search tool).
- `role is_not end_user` ("Ticket > Current user" role): the user making the update is an agent
  or an admin (Zendesk has three roles, end users, agents and administrators, and
  "Administrators have all the abilities of agents": Users API reference). `end_user` is the
  value public Terraform configurations use (`field = "role", operator = "is", value =
  "end_user"`); `is_not` counts admins too, whatever Zendesk's spelling of an agent role is.
  NOT CONFIRMED against a live account: the condition is the current user's role, not the
  comment author's, so an agent posting a public comment on behalf of an end user
  (`author_id`) would count as an agent reply.
- the main trigger's loop guard (`current_user is_not <bot>` or `current_via_id is_not 5`):
  tierdesk's own comments are internal notes anyway, but a bot reply must never count.

Both triggers fire on such an update (two deliveries). The second costs no write: both bodies
show the same ticket, so the decision is the same; deliveries of one ticket claimed together
are decided once (the reply marks of every payload are kept: connector `current_ticket`), and a
delivery dated before tierdesk's own write is decided on a fresh read (webhooks/worker.py),
whose state already holds what the first delivery wrote.
"""

from __future__ import annotations

from typing import Any

from connectors.zendesk.trigger_body import REPLY_KEY, TEMPLATE_VERSION

REPLY_TRIGGER_TITLE = "tierdesk (public reply)"

#: The conditions that make an update a public agent reply (module docstring, with sources).
REPLY_CONDITIONS: tuple[dict[str, str], ...] = (
    {"field": "update_type", "operator": "is", "value": "Change"},
    {"field": "comment_is_public", "operator": "is", "value": "true"},
    {"field": "role", "operator": "is_not", "value": "end_user"},
)


def reply_trigger_spec(
    webhook_id: str, body_text: str, *, loop_guard: dict[str, str]
) -> dict[str, Any]:
    """The public reply trigger calling `webhook_id` with `body_text` (the main trigger's
    template plus REPLY_KEY); `loop_guard` is the main trigger's condition that skips the bot."""
    return {
        "title": REPLY_TRIGGER_TITLE,
        "description": (
            f"Tells tierdesk when an agent's public reply lands ({REPLY_KEY}; body template"
            f" v{TEMPLATE_VERSION}): stops the first_response SLA clock."
        ),
        "active": True,
        "conditions": {"all": [*REPLY_CONDITIONS, loop_guard], "any": []},
        "actions": [{"field": "notification_webhook", "value": [webhook_id, body_text]}],
    }
