"""JiraConnector: Jira payloads to Tickets (0 or 1 read) and Decisions to one PUT (or none).

Requests per decision (measured in tests/connectors/jira/test_jira_apply.py):

- full issue payload (`jira:issue_*`, backfill): 0 reads; comment-only payloads (Cloud comment
  events without labels, Server `comment_created` without an issue): exactly 1 read,
  `GET /rest/api/2/issue/{key}?fields=<only what the policy uses>`; `fresh=True` adds `comment`
  to that field list to find tierdesk's own note marker;
- a changing decision: exactly 1 write, `PUT /rest/api/2/issue/{key}` carrying label
  add/remove, the new target's ownership (its assignee or an unassignment, its component added
  and the previous targets' components removed), the checklist or SLA comment and the SLA due
  field (`fields.duedate` or a datetime custom field, only when it differs: connectors/jira/
  due.py) together;
- on Jira Service Management the checklist is not part of that PUT but its own
  `POST /rest/servicedeskapi/request/{key}/comment` with `"public": false` (1 more write on
  decisions that post a note): the only documented way to make a comment internal;
- with `quiet_edits` the PUT carries `?notifyUsers=false`; a project whose answer is Jira's 403
  "To discard the user notification ..." costs 1 more PUT (without it), once per process;
- a decision that changes nothing, or whose changes already hold on the ticket: 0 requests.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import requests
from jira import JIRA

from connectors import due as due_field
from connectors.base import Applied, Call, Decide, Envelope, PayloadInvalid, VendorRejected
from connectors.calls import Recorder
from connectors.jira import due, refusals, webhook
from connectors.jira.client import json_object, make_client, send
from connectors.jira.config import JiraConfig
from connectors.jira.tickets import fields_to_read, is_complete, ticket_from_issue
from tiering.models import Decision, Ticket
from tiering.policy import Policy

LOG = logging.getLogger("tierdesk.connectors.jira")

#: Jira's 403 body when a user without Jira admin or project admin (Administer Projects) sends
#: `notifyUsers=false`; the whole edit is refused (lesstif/php-jira-rest-client #390,
#: ankitpokhrel/jira-cli #1013, ../shared/vendor/README.md "Checked against practice").
QUIET_EDIT_REFUSED = "To discard the user notification either admin or project admin"


class JiraConnector:
    """The Jira Cloud / Data Center / Service Management connector (connectors.base.Connector)."""

    vendor = webhook.VENDOR

    def __init__(
        self, config: JiraConfig, policy: Policy, *, session: requests.Session | None = None
    ) -> None:
        """Raises ValueError when the checklist comment could reach customers (see
        JiraConfig.comment_audience_problem)."""
        self.config = config
        self.policy = policy
        self.client: JIRA = make_client(config, session=session)
        # The reads of the decision in hand, per worker thread: `apply` reports them with its
        # write, so the decision record lists every request the decision cost.
        self.recorder = Recorder()
        # Projects that answered notifyUsers=false with Jira's 403: plain edits from then on.
        # A cache, not state: after a restart the first edit of a project finds out again.
        self._loud_projects: set[str] = set()
        self._loud_lock = threading.Lock()
        problem = config.comment_audience_problem()
        if problem is not None:
            # Fail closed: customers must never see the checklist because a setting was missed.
            raise ValueError(problem)
        if config.public_comments and config.comment_visibility is None:
            LOG.warning(
                "Jira checklist comments are posted unrestricted"
                " (TIERDESK_JIRA_COMMENT_VISIBILITY=public): everyone who sees an issue sees them"
            )

    # ------------------------------------------------------------------ events in

    def is_own_event(self, envelope: Envelope) -> bool:
        """True when the bot account (`bot_account_id`) caused the event: drop it, no request."""
        bot = self.config.bot_account_id
        return bool(bot) and envelope.actor == bot

    def current_ticket(
        self,
        payloads: Sequence[Mapping[str, Any]],
        *,
        fresh: bool = False,
        last_note_key: str | None = None,
    ) -> Ticket:
        """The ticket from the newest payload: 0 requests when it is a full issue, else 1 GET."""
        if not payloads:
            raise ValueError("current_ticket needs at least one payload")
        self.recorder.take()  # a new decision starts: count its requests from here
        body = _newest(payloads)
        event = body.get("webhookEvent")
        actor = webhook.actor(body, event if isinstance(event, str) else "")
        issue = body.get("issue")
        if not fresh and isinstance(issue, Mapping) and is_complete(issue):
            return ticket_from_issue(
                issue, policy=self.policy, config=self.config, actor=actor, note_key=last_note_key
            )
        ref = webhook.ticket_ref(body)
        if ref is None:
            raise PayloadInvalid("payload names no issue: expected issue.key or comment.self")
        fetched = self.read_issue(ref, comments=fresh)
        return ticket_from_issue(
            fetched, policy=self.policy, config=self.config, actor=actor, note_key=last_note_key
        )

    def payload_ticket(
        self, payload: Mapping[str, Any], *, last_note_key: str | None = None
    ) -> Ticket | None:
        """The ticket a stored payload shows, with no request (`tierdesk plan` over the inbox),
        or None when the payload alone does not show it: no whole issue (a comment event: the
        worker would read it), or a field this policy maps is absent from `issue.fields` (a body
        stored under a policy that did not read it; Jira's own issue events carry every field,
        null ones included, as ../shared/vendor/jira/webhooks/ shows)."""
        issue = payload.get("issue")
        if not isinstance(issue, Mapping) or not is_complete(issue):
            return None
        fields = issue["fields"]
        if any(field_id not in fields for field_id in self.policy.jira_fields.values()):
            return None
        event = payload.get("webhookEvent")
        return ticket_from_issue(
            issue, policy=self.policy, config=self.config,
            actor=webhook.actor(payload, event if isinstance(event, str) else ""),
            note_key=last_note_key,
        )

    def read_issue(self, key: str, *, comments: bool = False) -> Mapping[str, Any]:
        """One `GET /rest/api/2/issue/{key}` limited to the fields the policy uses."""
        path = f"/rest/api/2/issue/{key}"
        fields = ",".join(fields_to_read(self.policy, self.config, comments=comments))
        response = send(self.client, "GET", path, params={"fields": fields})
        self.recorder.calls.append(Call("GET", path, response.status_code, "read issue"))
        return json_object(response, what=f"Jira GET {path}")

    # ------------------------------------------------------------------ writes out

    def plan(self, ticket: Ticket, decision: Decision) -> dict[str, Any] | None:
        """The PUT body that brings `ticket` to `decision` (IssueUpdateDetails), or None when the
        desired state already holds: labels already there, note already posted, the target's
        ownership (assignee, components: see `_ownership`) already in place."""
        update: dict[str, list[dict[str, Any]]] = {}
        fields: dict[str, Any] = {}
        ops = [{"add": label} for label in decision.labels_add if label not in ticket.labels]
        ops += [{"remove": label} for label in decision.labels_remove if label in ticket.labels]
        if ops:
            update["labels"] = ops
        target = self._target(decision.assign)
        if target is not None:
            components, assignee = self._ownership(ticket, *target)
            if components:
                update["components"] = components
            if assignee is not None:
                fields["assignee"] = assignee
        if self._note_due(ticket, decision) and not self.config.service_management:
            assert decision.comment is not None
            update["comment"] = [{"add": self._comment(decision.comment)}]
        fields.update(due.write(self.policy, ticket, decision))  # SLA due field: jira/due.py
        if not update and not fields:
            return None
        body: dict[str, Any] = {}
        if fields:
            body["fields"] = fields
        if update:
            body["update"] = update
        return body

    def writes_for(self, ticket: Ticket, decision: Decision) -> int:
        """The writes `apply` would send for `decision` on `ticket`, computed without a request:
        the edit PUT when `plan` has a body, plus on JSM the internal note's POST; 0 when
        nothing is left to do. (A quiet edit refused once per project costs one PUT more.)"""
        if not decision.changed:
            return 0
        writes = 0 if self.plan(ticket, decision) is None else 1
        if self.config.service_management and self._note_due(ticket, decision):
            writes += 1
        return writes

    def apply(self, ticket: Ticket, decision: Decision, *, decide: Decide) -> Applied:
        """At most one PUT (two when a quiet edit is refused) and, on JSM, one internal comment
        POST; none when `decision.changed` is false or nothing is left to do.

        `decide` is unused: Jira's issue edit has no collision guard to re-decide after (the
        label operations are add/remove deltas, so concurrent agent edits are preserved).
        """
        reads = self.recorder.take()
        if not decision.changed:
            return Applied(calls=reads, decision=decision, note_key=ticket.last_note_key)
        body = self.plan(ticket, decision)
        internal_note = self.config.service_management and self._note_due(ticket, decision)
        if body is None and not internal_note:
            return Applied(
                calls=reads,
                decision=decision,
                note_key=ticket.last_note_key,
                details={"skipped": "the ticket already has the desired state"},
            )
        calls = list(reads)
        details: dict[str, Any] = {}
        posted = False
        try:
            if body is not None:
                calls += self._edit(ticket.key, body)
                details["body"] = body
                posted = "comment" in body.get("update", {})
            if internal_note:
                assert decision.comment is not None
                calls.append(self._internal_comment(ticket.key, decision.comment))
                details["internal_comment"] = True
                posted = True
        except VendorRejected as exc:
            # A refusal the configuration causes names the policy key or setting to fix.
            explained = refusals.explain(
                exc, policy=self.policy, config=self.config, decision=decision, body=body
            )
            if explained is exc:
                raise
            raise explained from exc
        return Applied(
            calls=tuple(calls),
            decision=decision,
            note_key=decision.note_key if posted else ticket.last_note_key,
            wrote=True,
            details=details,
        )

    def _edit(self, key: str, body: Mapping[str, Any]) -> list[Call]:
        """The edit PUT: quiet (`notifyUsers=false`) when configured and not refused before for
        this project; Jira's 403 to a quiet edit is answered by the same edit without it."""
        path = f"/rest/api/2/issue/{key}"
        project = key.rpartition("-")[0]
        with self._loud_lock:
            quiet = self.config.quiet_edits and project not in self._loud_projects
        if not quiet:
            response = send(self.client, "PUT", path, body=body, write=True)
            return [Call("PUT", path, response.status_code, "apply decision")]
        try:
            response = send(
                self.client, "PUT", path, params={"notifyUsers": "false"}, body=body, write=True
            )
        except VendorRejected as exc:
            if exc.status != 403 or QUIET_EDIT_REFUSED not in str(exc):
                raise
            # The whole edit was refused, nothing landed: resend it once as a plain edit, and
            # remember the project so later edits do not pay the refused request again.
            with self._loud_lock:
                self._loud_projects.add(project)
            LOG.warning(
                "Jira refused notifyUsers=false in project %s (the bot lacks Administer"
                " Projects); editing with notifications from now on: grant the permission or"
                " unset TIERDESK_JIRA_QUIET_EDITS",
                project,
                extra={"vendor": "jira", "ticket": key},
            )
            refused = Call("PUT", path, 403, "quiet edit refused: notifyUsers=false needs admin")
            response = send(self.client, "PUT", path, body=body, write=True)
            return [refused, Call("PUT", path, response.status_code, "apply decision")]
        return [Call("PUT", path, response.status_code, "apply decision")]

    def _internal_comment(self, key: str, text: str) -> Call:
        """The JSM checklist as an internal comment: `POST /rest/servicedeskapi/request/{key}/
        comment` with `"public": false` (JSM REST API "Create request comment"; the platform
        Comment schema's `jsdPublic`: "To create a comment with its visibility in Jira Service
        Desk set to false, use ... Create request comment", platform-openapi-v3.json;
        sooperset/mcp-atlassian #847, #1049 route internal notes this way). A comment property
        inside an edit's `update.comment.add` has no source showing Jira honours it."""
        path = f"/rest/servicedeskapi/request/{key}/comment"
        response = send(
            self.client, "POST", path, body={"body": text, "public": False}, write=True
        )
        return Call("POST", path, response.status_code, "internal checklist note")

    def _note_due(self, ticket: Ticket, decision: Decision) -> bool:
        """True when the decision has a checklist note that is not on the ticket yet, or an SLA
        note (which keeps the checklist's note key: tiering/sla_actions.py) not seen on it."""
        posted = decision.note_key is not None and decision.note_key == ticket.last_note_key
        return bool(decision.comment) and (not posted or due_field.sla_note_due(ticket, decision))

    def _ownership(
        self, ticket: Ticket, assignee: str | None, component: str | None
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """The `components` operations and the `assignee` value (None: leave it) that leave
        `ticket` owned by exactly this target, as Zendesk's group and assignee are replaced.

        Components: add the target's; remove every other tierdesk-managed component (some
        target's `jira.component`) the issue has. Components agents added themselves stay, and
        only components on the issue are removed (Jira answers 400 to a component the project
        lacks). Names are matched without case, since the policy may spell a component unlike
        the site (whether Jira itself ignores case there was not confirmed; only managed names
        are matched, so an agent's own component is never at risk); a removal uses the issue's
        own spelling.

        Assignee: the target's when it names one. A queue-only target unassigns the issue when
        it is assigned to a tierdesk-managed assignee (some target's `jira.assignee`: the
        previous tier's owner), or to anyone at all when the issue joins the target's component
        now, as the Zendesk connector unassigns on a group change: the tier changed, so the
        ticket goes to the new tier's queue (README, "What the policy decides", 5). An agent who
        took the issue within the target's component already keeps it.
        """
        key = "accountId" if self.config.deployment == "cloud" else "name"
        present = {name.casefold(): name for name in ticket.components}
        wanted = component.casefold() if component is not None else None
        joins = wanted is not None and wanted not in present
        ops: list[dict[str, Any]] = [{"add": {"name": component}}] if joins else []
        managed = self._managed_components()
        ops += [
            {"remove": {"name": present[folded]}}
            for folded in sorted(present)
            if folded in managed and folded != wanted
        ]
        if assignee is not None:
            return ops, ({key: assignee} if assignee != ticket.assignee else None)
        if ticket.assignee is not None and (joins or ticket.assignee in self._managed_assignees()):
            # Unassign: {"accountId": null} on Cloud, {"name": null} on Data Center: "A null name
            # will remove the assignee" (Atlassian KB for Cloud and Data Center,
            # support.atlassian.com/jira/kb/how-to-set-assignee-to-unassigned-via-rest-api-in-jira;
            # Assign issue in platform-openapi-v3.json: accountId null "is set to unassigned").
            return ops, {key: None}
        return ops, None

    def _managed_components(self) -> frozenset[str]:
        """Every target's Jira component, case-folded: the components tierdesk owns."""
        return frozenset(
            t.jira.component.casefold()
            for t in self.policy.targets.values()
            if t.jira is not None and t.jira.component is not None
        )

    def _managed_assignees(self) -> frozenset[str]:
        """Every target's Jira assignee: the users tierdesk assigns by itself."""
        return frozenset(
            t.jira.assignee
            for t in self.policy.targets.values()
            if t.jira is not None and t.jira.assignee is not None
        )

    def _target(self, name: str | None) -> tuple[str | None, str | None] | None:
        if name is None:
            return None
        target = self.policy.targets.get(name)
        if target is None or target.jira is None:
            return None
        return target.jira.assignee, target.jira.component

    def _comment(self, text: str) -> dict[str, Any]:
        """The comment `add` operation of the edit, restricted by role/group visibility (not
        used on JSM: see `_internal_comment`)."""
        comment: dict[str, Any] = {"body": text}
        if self.config.comment_visibility is not None:
            kind, value = self.config.comment_visibility
            comment["visibility"] = {"type": kind, "value": value}
        return comment


def _newest(payloads: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
    """The payload with the greatest `timestamp`; arrival order breaks ties and fills gaps."""
    best_index = 0
    best_ts = -1
    for index, body in enumerate(payloads):
        ts = body.get("timestamp")
        stamp = ts if isinstance(ts, int) and not isinstance(ts, bool) else -1
        if stamp >= best_ts:
            best_index, best_ts = index, stamp
    return payloads[best_index]
