"""The Zendesk sandbox's triggers: CRUD, conditions, and the notification_webhook action."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sandbox.wire import Request, Response, json_body
from sandbox.zendesk.liquid import render_liquid
from sandbox.zendesk.records import (
    STATUSES,
    Comment,
    Ticket,
    Trigger,
    _bad_json,
    _invalid,
    _not_found,
    _tags,
    one_page,
    zd_time,
)
from sandbox.zendesk.webhooks import ZendeskWebhooks

CONDITION_FIELDS = frozenset(
    {
        "update_type",
        "current_user",
        "role",
        "status",
        "priority",
        "type",
        "ticket_type_id",
        "group_id",
        "assignee_id",
        "organization_id",
        "requester_id",
        "tags",
        "subject_includes_word",
        "comment_is_public",
        "current_via_id",
        "via_id",
        "comment_includes_word",
    }
)
CONDITION_OPERATORS = frozenset(
    {
        "is",
        "is_not",
        "includes",
        "not_includes",
        "changed",
        "not_changed",
        "value",
        "value_previous",
        "not_value",
        "not_value_previous",
        "present",
        "not_present",
        "less_than",
        "greater_than",
    }
)


class ZendeskTriggers(ZendeskWebhooks):
    """Triggers, run in position order after each change."""

    def _check_trigger(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict) or not body.get("title"):
            raise _invalid(title="Title: cannot be blank")
        conditions = body.get("conditions") or {}
        if not isinstance(conditions, dict) or not (conditions.get("all") or conditions.get("any")):
            raise _invalid(conditions="Conditions: give at least one in all or any")
        for group in ("all", "any"):
            for c in conditions.get(group) or []:
                if not isinstance(c, dict):
                    raise _invalid(conditions="each condition is {field, operator, value}")
                fname = str(c.get("field", ""))
                if fname not in CONDITION_FIELDS and not re.fullmatch(r"custom_fields_\d+", fname):
                    raise _invalid(
                        conditions=f"the sandbox does not know the condition field"
                        f" {fname!r}; known: {', '.join(sorted(CONDITION_FIELDS))},"
                        " custom_fields_<id>"
                    )
                if c.get("operator") not in CONDITION_OPERATORS:
                    raise _invalid(conditions=f"unknown operator {c.get('operator')!r} for {fname}")
        actions = body.get("actions")
        if not isinstance(actions, list) or not actions:
            raise _invalid(actions="Actions: give at least one")
        for a in actions:
            if not isinstance(a, dict) or a.get("field") != "notification_webhook":
                raise _invalid(
                    actions="the sandbox runs notification_webhook actions only, got"
                    f" {a.get('field') if isinstance(a, dict) else a!r}"
                )
            value = a.get("value")
            if not (
                isinstance(value, list)
                and len(value) == 2
                and all(isinstance(v, str) for v in value)
            ):
                raise _invalid(actions="notification_webhook value is [webhook_id, body]")
            try:
                render_liquid(value[1], {}, escape=False)
            except ValueError as exc:
                raise _invalid(actions=f"notification_webhook body: {exc}") from exc
            if value[0] not in self.webhooks:
                raise _invalid(actions=f"webhook {value[0]} does not exist")
        return body

    def _trigger_json(self, tr: Trigger) -> dict[str, Any]:
        return {
            "url": f"{self.base_url}/api/v2/triggers/{tr.id}.json",
            "id": tr.id,
            "active": True,
            "position": 0,
            "description": None,
            "default": False,
            "raw_title": tr.body.get("title"),
            "category_id": None,
            **tr.body,
            "created_at": zd_time(tr.created_at),
            "updated_at": zd_time(tr.updated_at),
        }

    def create_trigger(self, request: Request) -> Response:
        body = json_body(request, _bad_json).get("trigger")
        now = self.now()
        tr = Trigger(next(self._trigger_ids), self._check_trigger(body), now, now)
        self.triggers[tr.id] = tr
        return Response(201, {"trigger": self._trigger_json(tr)}, wrote=True)

    def list_triggers(self, request: Request) -> Response:
        found = [self._trigger_json(t) for t in self.triggers.values()]
        return one_page("triggers", found)

    def search_triggers(self, request: Request) -> Response:
        """GET /api/v2/triggers/search?query=: triggers whose title contains the words."""
        needle = (request.arg("query") or "").lower()
        found = [
            self._trigger_json(t)
            for t in self.triggers.values()
            if needle in str(t.body.get("title", "")).lower()
        ]
        return one_page("triggers", found)

    def _trigger(self, request: Request) -> Trigger:
        try:
            return self.triggers[int(request.params["id"])]
        except (KeyError, ValueError) as exc:
            raise _not_found() from exc

    def get_trigger(self, request: Request) -> Response:
        return Response(200, {"trigger": self._trigger_json(self._trigger(request))})

    def update_trigger(self, request: Request) -> Response:
        tr = self._trigger(request)
        body = json_body(request, _bad_json).get("trigger")
        if not isinstance(body, dict):
            raise _invalid(trigger='expected {"trigger": {...}}')
        merged = {**tr.body, **body}
        tr.body = self._check_trigger(merged)
        tr.updated_at = self.now()
        return Response(200, {"trigger": self._trigger_json(tr)}, wrote=True)

    def delete_trigger(self, request: Request) -> Response:
        del self.triggers[self._trigger(request).id]
        return Response(204, None, wrote=True)

    def _condition(
        self,
        c: Mapping[str, Any],
        t: Ticket,
        before: Ticket,
        actor: int,
        *,
        created: bool,
        changes: Mapping[str, tuple[Any, Any]],
        comment: Comment | None,
    ) -> bool:
        fname, op, value = str(c["field"]), str(c["operator"]), c.get("value")
        if fname == "update_type":
            kind = "Create" if created else "Change"
            return (str(value) == kind) == (op == "is")
        if fname == "current_user":
            role = self.users[actor].role if actor in self.users else "agent"
            names = {str(actor), "end_user" if role == "end-user" else "agent"}
            return (str(value) in names) == (op == "is")
        if fname in ("current_via_id", "via_id"):
            via = self._via if fname == "current_via_id" else t.via_id
            return (str(value) == str(via)) == (op == "is")
        if fname == "role":
            # The role of the user making the update ("Ticket > Current user", Zendesk
            # "Conditions reference", https://developer.zendesk.com/documentation/ticketing/
            # reference-guides/conditions-reference/; operators is / is_not as JacobPotter/
            # go-zendesk zendesk/condition_types.go validates them). `end_user` is the value
            # public Terraform configurations use; an admin counts as an agent here
            # ("Administrators have all the abilities of agents", Users API reference): whether
            # Zendesk's `role is agent` matches admins is not confirmed, so tierdesk's public
            # reply trigger asks `role is_not end_user`.
            role = self.users[actor].role if actor in self.users else "agent"
            hit = str(value) == ("end_user" if role == "end-user" else "agent")
            return hit == (op == "is")
        if fname == "tags":
            wanted = set(_tags(str(value or "").split()))
            hit = bool(wanted & set(t.tags))
            return hit if op == "includes" else not hit
        if fname == "comment_is_public":
            # "Ticket > Comment is Public / Private / Present (public or private)": whether the
            # update added a comment, and its visibility (Zendesk "Conditions reference",
            # https://developer.zendesk.com/documentation/ticketing/reference-guides/
            # conditions-reference/, and support article 4408893545882 "Ticket trigger
            # conditions and actions reference"). Values true / false / not_relevant /
            # requester_can_see_comment, operators is / is_not (JacobPotter/go-zendesk
            # zendesk/condition_types.go). An update without a comment matches none of them:
            # the sandbox's reading of "not_relevant" as "present, public or private" and of
            # requester_can_see_comment as "public" is not confirmed.
            if comment is None:
                hit = False
            elif str(value) == "not_relevant":
                hit = True
            elif str(value) in ("true", "requester_can_see_comment"):
                hit = comment.public
            else:
                hit = str(value) == "false" and not comment.public
            return hit == (op != "is_not")
        if fname in ("comment_includes_word", "subject_includes_word"):
            text = (comment.body if comment and fname.startswith("comment") else t.subject).lower()
            hit = any(w in text for w in str(value or "").lower().split())
            return hit if op == "includes" else not hit
        key = fname
        current: Any
        previous: Any
        if fname.startswith("custom_fields_"):
            fid = int(fname.rsplit("_", 1)[1])
            current, previous = t.custom.get(fid), before.custom.get(fid)
            key = f"custom_field_{fid}"
        else:
            attr = {"ticket_type_id": "type"}.get(fname, fname)
            current, previous = getattr(t, attr), getattr(before, attr)
            key = attr
        changed = key in changes or (created and current is not None)
        as_text = "" if current is None else str(current)
        want = "" if value is None else str(value)
        if op == "is":
            return as_text == want
        if op == "is_not":
            return as_text != want
        if op == "present":
            return current not in (None, "")
        if op == "not_present":
            return current in (None, "")
        if op == "changed":
            return changed
        if op == "not_changed":
            return not changed
        if op == "value":
            return changed and as_text == want
        if op == "not_value":
            return changed and as_text != want
        if op == "value_previous":
            return changed and str(previous or "") == want
        if op == "not_value_previous":
            return changed and str(previous or "") != want
        if fname == "status" and op in ("less_than", "greater_than"):
            a, b = STATUSES.index(t.status), STATUSES.index(want) if want in STATUSES else 0
            return a < b if op == "less_than" else a > b
        return False

    def _run_triggers(
        self,
        t: Ticket,
        before: Ticket,
        actor: int,
        *,
        created: bool,
        changes: Mapping[str, tuple[Any, Any]],
        comment: Comment | None,
    ) -> None:
        ordered = sorted(
            self.triggers.values(), key=lambda tr: (int(tr.body.get("position") or 0), tr.id)
        )
        for tr in ordered:
            if tr.body.get("active") is False:
                continue
            conds = tr.body.get("conditions") or {}

            def ok(c: Mapping[str, Any]) -> bool:
                return self._condition(
                    c, t, before, actor, created=created, changes=changes, comment=comment
                )

            if not all(ok(c) for c in conds.get("all") or []):
                continue
            anys = conds.get("any") or []
            if anys and not any(ok(c) for c in anys):
                continue
            for action in tr.body.get("actions") or []:
                hook_id, template = action["value"]
                hook = self.webhooks.get(hook_id)
                if hook is None or hook.body.get("status") != "active":
                    continue
                escape = hook.body.get("request_format", "json") == "json"
                body = self.render(template, t, actor, comment, escape=escape)
                self.emit(
                    hook.id,
                    str(hook.body["endpoint"]),
                    "trigger",
                    hook.secret,
                    body.encode(),
                    str(t.id),
                )

    def render(
        self, template: str, t: Ticket, actor: int, comment: Comment | None, *, escape: bool
    ) -> str:
        """Substitute Zendesk placeholders ({{ticket.id}}, {{current_user.email}}, ...) and run
        Liquid `{% for x in list %}...{% endfor %}` loops (the only Liquid tag supported)."""
        return render_liquid(template, self._placeholder_context(t, actor, comment), escape=escape)

    def _placeholder_context(
        self, t: Ticket, actor: int, comment: Comment | None
    ) -> dict[str, Any]:
        def user(uid: int | None) -> dict[str, Any]:
            if uid is None or uid not in self.users:
                return {}
            u = self.users[uid]
            first, _, last = u.name.partition(" ")
            return {
                "id": u.id,
                "email": u.email,
                "name": u.name,
                "first_name": first,
                "last_name": last,
                "role": u.role,
                "organization": {"id": u.organization_id} if u.organization_id else {},
            }

        org: dict[str, Any] = {}
        if t.organization_id in self.organizations:
            o = self.organizations[t.organization_id]
            org = {
                "id": o.id,
                "name": o.name,
                "custom_fields": dict(o.organization_fields),
                "external_id": "",
            }
        group: dict[str, Any] = {}
        if t.group_id in self.groups:
            group = {"id": t.group_id, "name": self.groups[t.group_id].name}
        latest = comment or (t.comments[-1] if t.comments else None)
        ticket: dict[str, Any] = {
            "id": t.id,
            "title": t.subject,
            "description": t.description,
            # Placeholders give display names ("High", "Open"), not the API's values.
            "priority": (t.priority or "").capitalize(),
            "status": t.status.capitalize(),
            "ticket_type": t.type or "",
            "tags": " ".join(t.tags),
            "url": f"{self.seed.subdomain}.zendesk.com/agent/tickets/{t.id}",
            "link": f"https://{self.seed.subdomain}.zendesk.com/agent/tickets/{t.id}",
            "via": "Web Service",
            "account": self.seed.subdomain,
            "created_at": zd_time(t.created_at),
            "updated_at": zd_time(t.updated_at),
            "created_at_with_timestamp": zd_time(t.created_at),
            "updated_at_with_timestamp": zd_time(t.updated_at),
            "group": group,
            "assignee": user(t.assignee_id),
            "requester": user(t.requester_id),
            "organization": org,
            "comments": [
                {
                    "value": c.body,
                    "id": c.id,
                    "is_public": str(c.public).lower(),
                    "author": user(c.author_id),
                    "attachments": [
                        {"filename": a["file_name"], "url": a["content_url"]} for a in c.attachments
                    ],
                }
                for c in t.comments
            ],
            "latest_comment": {
                "value": latest.body,
                "id": latest.id,
                "is_public": str(latest.public).lower(),
                "author": user(latest.author_id),
            }
            if latest
            else {},
        }
        for fid, fdef in self.fields.items():
            value = t.custom.get(fid)
            if isinstance(value, list):
                value = " ".join(str(v) for v in value)
            ticket[f"ticket_field_{fid}"] = "" if value is None else value
            ticket[f"ticket_field_option_title_{fid}"] = "" if value is None else value
            del fdef
        return {
            "ticket": ticket,
            "current_user": user(actor),
            "satisfaction": {},
            "account": self.seed.subdomain,
        }
