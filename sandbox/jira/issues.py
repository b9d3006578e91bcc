"""The Jira sandbox's issue writes: edit, assign, create, attachments, status transitions."""

from __future__ import annotations

import email.policy
from collections.abc import Callable, Mapping
from email.parser import BytesParser
from typing import Any

from sandbox.jira import fields as date_fields
from sandbox.jira.comments import JiraComments
from sandbox.jira.records import (
    ISSUE_TYPES,
    Comment,
    Issue,
    _bad_json,
    _error,
    _field_text,
    _ms,
    jira_time,
)
from sandbox.jira.seed import JiraComponentSeed
from sandbox.wire import Request, Response, json_body

SYSTEM_FIELDS = frozenset(
    {"summary", "description", "labels", "assignee", "priority", "components", "reporter"}
)


def _multipart_files(request: Request) -> list[tuple[str, bytes]]:
    """The (filename, bytes) of each `file` part of a multipart/form-data body."""
    kind = request.headers.get("Content-Type") or request.headers.get("content-type") or ""
    if not kind.startswith("multipart/form-data"):
        raise _error(415, "Send the attachment as multipart/form-data with a 'file' part.")
    message = BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {kind}\r\n\r\n".encode() + request.body
    )
    files: list[tuple[str, bytes]] = []
    for part in message.iter_parts():
        if part.get_param("name", header="content-disposition") == "file":
            payload = part.get_payload(decode=True)
            files.append(
                (part.get_filename() or "file", payload if isinstance(payload, bytes) else b"")
            )
    return files


def errors_field(name: str, message: str) -> str:
    return f"{name}: {message}"


def _list_op(
    current: list[str], verb: str, value: Any, name: str, check: Callable[[Any], str]
) -> list[str]:
    if verb == "add":
        item = check(value)
        return current if item in current else [*current, item]
    if verb == "remove":
        item = check(value)
        return [c for c in current if c != item]
    if verb == "set":
        if not isinstance(value, list):
            raise _error(400, **{name: "set takes a list"})
        return [check(v) for v in value]
    raise _error(400, **{name: f"operation '{verb}' is not supported; use add, remove or set"})


class JiraIssues(JiraComments):
    """Issue reads and writes, with the changelog each write sends."""

    def _user_ref(self, value: Any, field_id: str) -> str | None:
        """An accountId from `{"accountId": ...}` (Cloud) or `{"name": ...}` (Data Center)."""
        if value is None:
            return None
        if not isinstance(value, dict):
            raise _error(
                400, errors_field(field_id, 'expected an object such as {"accountId": ...}')
            )
        if self.cloud:
            if "accountId" not in value:
                raise _error(
                    400,
                    **{
                        field_id: "'accountId' must be the only user identifying query"
                        " parameter in GDPR strict mode."
                    },
                )
            account = value["accountId"]
            if account is None:
                return None
            if account not in self.users:
                raise _error(
                    400,
                    **{
                        field_id: "Specified user does not exist or you do not have"
                        " required permissions"
                    },
                )
            return str(account)
        name = value.get("name")
        if name is None:
            raise _error(400, **{field_id: 'expected {"name": ...} on Jira Data Center'})
        for u in self.users.values():
            if u.name == name:
                return u.accountId
        raise _error(400, **{field_id: f"User '{name}' does not exist."})

    def get_issue(self, request: Request) -> Response:
        issue = self.find(request.params["key"])
        return Response(200, self.issue_json(issue, self.wanted_fields(request)))

    def transitions(self, request: Request) -> Response:
        """GET /rest/api/2/issue/{key}/transitions: the transitions to other statuses ("Get
        transitions", platform-openapi-v3.json: `{"expand", "transitions": [IssueTransition]}`,
        each with `id`, `name` and `to`, a StatusDetails). 404 for an issue the caller cannot
        see, as for Get issue."""
        issue = self.find(request.params["key"])
        self._can_see(request.actor, issue)
        return Response(200, {"expand": "transitions", "transitions": [
            {"id": tid, "name": name, "to": self.status_json(name), "hasScreen": False,
             "isGlobal": True, "isInitial": False, "isAvailable": True, "isConditional": False}
            for tid, name in self.workflow_transitions.items() if name != issue.status
        ]})

    def transition(self, request: Request) -> Response:
        """POST /rest/api/2/issue/{key}/transitions `{"transition": {"id": "21"}}`: 204 and the
        status changes ("Transition issue", platform-openapi-v3.json: 400 when no transition is
        specified, when the user may not transition the issue, or for a field not on the
        transition screen; the sandbox's transitions have no screen). Jira then sends
        `jira:issue_updated` with `issue_event_type_name` "issue_generic" and a changelog item
        `fieldId: status` (public webhook bodies of workflow transitions, e.g. the samples in
        Jira webhook receivers' tests)."""
        issue = self.find(request.params["key"])
        self._can_see(request.actor, issue)
        actor = request.actor
        assert actor is not None
        if not self.has_permission(actor, issue.project, "TRANSITION_ISSUES"):
            raise _error(400, "You do not have permission to transition this issue.")
        body = json_body(request, _bad_json)
        wanted = body.get("transition")
        ident = wanted.get("id") if isinstance(wanted, dict) else None
        if not isinstance(ident, str | int) or isinstance(ident, bool):
            raise _error(400, "No transition specified: give {\"transition\": {\"id\": ...}}.")
        target = self.workflow_transitions.get(str(ident))
        if target is None or target == issue.status:
            raise _error(400, f"Transition id '{ident}' is not valid for this issue.")
        extra = [k for k in ("fields", "update") if body.get(k)]
        if extra:
            raise _error(400, **{k: "This transition has no screen: nothing can be set in it."
                                 for k in extra})
        before = issue.status
        issue.status = target
        issue.updated = self.now()
        item = {
            "field": "status", "fieldtype": "jira", "fieldId": "status",
            "from": self.workflow_statuses[before][0], "fromString": before,
            "to": self.workflow_statuses[target][0], "toString": target,
        }
        self._issue_updated(issue, actor, [item], None)
        return Response(204, None, wrote=True)

    def edit_issue(self, request: Request) -> Response:
        issue = self.find(request.params["key"])
        self._can_see(request.actor, issue)
        if (request.arg("notifyUsers") or "").lower() == "false" and not self.has_permission(
            request.actor, issue.project, "ADMINISTER_PROJECTS"
        ):
            # Jira refuses the whole edit: notifyUsers=false needs Jira admin or project admin
            # (Edit issue, platform-openapi-v3.json; the 403 body as met by
            # lesstif/php-jira-rest-client #390 and ankitpokhrel/jira-cli #1013).
            raise _error(
                403,
                "To discard the user notification either admin or project admin"
                " permissions are required.",
            )
        body = json_body(request, _bad_json)
        fields = body.get("fields") or {}
        update = body.get("update") or {}
        if not isinstance(fields, dict) or not isinstance(update, dict):
            raise _error(400, "'fields' and 'update' must be JSON objects.")
        both = sorted(set(fields) & set(update))
        if both:
            raise _error(
                400, **{f: f"Field '{f}' cannot be set in both 'fields' and 'update'" for f in both}
            )
        actor = request.actor
        assert actor is not None
        self._can_edit(actor, issue, [*fields, *update])
        items, comment = date_fields.edit(self, issue, fields, update, actor)  # jira/fields.py
        if items or comment:
            issue.updated = self.now()
            self._issue_updated(issue, actor, items, comment)
        return Response(204, None, wrote=True)

    def _apply(
        self, issue: Issue, fields: Mapping[str, Any], update: Mapping[str, Any], actor: str
    ) -> tuple[list[dict[str, Any]], Comment | None]:
        """Validate everything first, then change the issue; returns changelog items, comment."""
        for name in [*fields, *update]:
            if name not in SYSTEM_FIELDS and name not in self.field_names and name != "comment":
                raise _error(
                    400,
                    **{
                        name: f"Field '{name}' cannot be set. It is not on the"
                        " appropriate screen, or unknown."
                    },
                )
        new: dict[str, Any] = {
            "labels": list(issue.labels),
            "components": list(issue.components),
            "assignee": issue.assignee,
            "reporter": issue.reporter,
            "priority": issue.priority,
            "summary": issue.summary,
            "description": issue.description,
            **{fid: issue.custom.get(fid) for fid in self.field_names},
        }
        comments: list[Comment] = []
        for name, value in fields.items():
            new[name] = self._set_value(issue, name, value)
        for name, ops in update.items():
            if not isinstance(ops, list):
                raise _error(400, **{name: "expected a list of operations"})
            for op in ops:
                if not isinstance(op, dict) or len(op) != 1:
                    raise _error(400, **{name: "each operation is one of add, remove, set, edit"})
                verb, value = next(iter(op.items()))
                if name == "comment":
                    if verb != "add":
                        raise _error(400, comment="only 'add' is supported for comments here")
                    comments.append(self._new_comment(value, actor, via="edit"))
                elif name == "labels":
                    new["labels"] = _list_op(new["labels"], verb, value, name, self._label)
                elif name == "components":
                    new["components"] = _list_op(
                        new["components"],
                        verb,
                        value,
                        name,
                        lambda v: self._component(issue.project, v, "components").id,
                    )
                elif verb == "set":
                    new[name] = self._set_value(issue, name, value)
                else:
                    raise _error(400, **{name: f"operation '{verb}' is not supported for {name}"})
        items = self._changelog(issue, new)
        issue.labels = new["labels"]
        issue.components = new["components"]
        issue.assignee = new["assignee"]
        issue.reporter = new["reporter"]
        issue.priority = new["priority"]
        issue.summary = new["summary"]
        issue.description = new["description"]
        for fid in self.field_names:
            if new[fid] is None:
                issue.custom.pop(fid, None)
            else:
                issue.custom[fid] = new[fid]
        issue.comments.extend(comments)
        return items, comments[-1] if comments else None

    def _label(self, value: Any) -> str:
        if not isinstance(value, str) or not value:
            raise _error(400, labels="a label must be a non-empty string")
        if " " in value:
            raise _error(400, labels=f"The label '{value}' contains spaces which is invalid.")
        return value

    def _component(self, project: str, value: Any, name: str) -> JiraComponentSeed:
        if isinstance(value, dict):
            for c in self.components.values():
                if c.project == project and (
                    c.id == value.get("id") or c.name == value.get("name")
                ):
                    return c
        raise _error(400, **{name: f"Component name '{value}' is not valid"})

    def _set_value(self, issue: Issue, name: str, value: Any) -> Any:
        if name == "labels":
            if not isinstance(value, list):
                raise _error(400, labels="expected a list of labels")
            return [self._label(v) for v in value]
        if name == "components":
            if not isinstance(value, list):
                raise _error(400, components="expected a list of components")
            return [self._component(issue.project, v, name).id for v in value]
        if name == "assignee":
            account = self._user_ref(value, name)
            if account is not None and not self.has_permission(
                account, issue.project, "ASSIGNABLE_USER"
            ):
                # Jira's own REST tests (IssueClient.assign: 400, errors.assignee "User 'joe'
                # cannot be assigned issues."); Mylyn's Jira connector tests meet the same text.
                who = account if self.cloud else self.users[account].name
                raise _error(400, assignee=f"User '{who}' cannot be assigned issues.")
            return account
        if name == "reporter":
            return self._user_ref(value, name)
        if name == "priority":
            if not isinstance(value, dict) or value.get("name") not in self.priorities:
                raise _error(
                    400, priority=f"Specify a valid priority name: {sorted(self.priorities)}"
                )
            return value["name"]
        if name in ("summary", "description"):
            if value is not None and not isinstance(value, str):
                raise _error(400, **{name: "Operation value must be a string"})
            if name == "summary" and not value:
                raise _error(400, summary="You must specify a summary of the issue.")
            return value
        return self._custom_value(name, value)

    def _custom_value(self, fid: str, value: Any) -> Any:
        """A custom field's stored value: as set, or (Organizations) the list of ids."""
        if fid not in self.organization_fields or value is None:
            return value  # custom fields hold whatever JSON the client sets
        # JSM: the Organizations field is set with organization ids, e.g. [8] (numbers; digit
        # strings are taken too). An unknown id is refused and the edit changes nothing.
        if not isinstance(value, list) or not all(
            isinstance(v, int | str) and not isinstance(v, bool) for v in value
        ):
            raise _error(400, **{fid: "Organizations are set with a list of organization ids."})
        ids = [str(v) for v in value]
        for oid in ids:
            if oid not in self.organizations:
                raise _error(400, **{fid: f"Organization with id {oid} does not exist."})
        return ids or None

    def _changelog(self, issue: Issue, new: Mapping[str, Any]) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []

        def item(
            fid: str, name: str, kind: str, old: Any, to: Any, old_s: Any, to_s: Any, **extra: Any
        ) -> None:
            items.append(
                {
                    "field": name,
                    "fieldtype": kind,
                    "fieldId": fid,
                    "from": old,
                    "fromString": old_s,
                    "to": to,
                    "toString": to_s,
                    **extra,
                }
            )

        if sorted(new["labels"]) != sorted(issue.labels):
            item(
                "labels",
                "labels",
                "jira",
                None,
                None,
                " ".join(issue.labels),
                " ".join(new["labels"]),
            )
        if new["assignee"] != issue.assignee:
            old, to = issue.assignee, new["assignee"]
            item(
                "assignee",
                "assignee",
                "jira",
                old,
                to,
                self.users[old].displayName if old else None,
                self.users[to].displayName if to else None,
                tmpFromAccountId=old,
                tmpToAccountId=to,
            )
        if new["components"] != issue.components:
            item(
                "components",
                "Component",
                "jira",
                ",".join(issue.components) or None,
                ",".join(new["components"]) or None,
                ", ".join(self.components[c].name for c in issue.components) or None,
                ", ".join(self.components[c].name for c in new["components"]) or None,
            )
        for fid in ("priority", "summary", "description", "reporter"):
            if new[fid] != getattr(issue, fid):
                item(fid, fid, "jira", None, None, getattr(issue, fid), new[fid])
        for fid, name in self.field_names.items():
            if new[fid] != issue.custom.get(fid):
                item(
                    fid,
                    name,
                    "custom",
                    None,
                    None,
                    _field_text(self.custom_json(fid, issue.custom.get(fid))),
                    _field_text(self.custom_json(fid, new[fid])),
                )
        return items

    def assign(self, request: Request) -> Response:
        issue = self.find(request.params["key"])
        self._can_see(request.actor, issue)
        if not self.has_permission(request.actor, issue.project, "ASSIGN_ISSUES"):
            # Assign issue, platform-openapi-v3.json: "403 ... the necessary permission".
            raise _error(403, "You do not have permission to assign issues.")
        body = json_body(request, _bad_json)
        assignee = self._user_ref(body, "assignee")
        actor = request.actor
        assert actor is not None
        items, _ = self._apply(
            issue,
            {
                "assignee": {"accountId": assignee}
                if self.cloud
                else {"name": self.users[assignee].name if assignee else None}
            },
            {},
            actor,
        )
        if items:
            issue.updated = self.now()
            self._issue_updated(issue, actor, items, None)
        return Response(204, None, wrote=True)

    def create_issue(self, request: Request) -> Response:
        body = json_body(request, _bad_json)
        fields = dict(body.get("fields") or {})
        project_ref = fields.pop("project", None)
        project = None
        if isinstance(project_ref, dict):
            for p in self.projects.values():
                if project_ref.get("key") == p.key or project_ref.get("id") == p.id:
                    project = p
        if project is None:
            raise _error(400, project="valid project is required")
        kind = fields.pop("issuetype", None)
        if not isinstance(kind, dict) or kind.get("name", "Task") not in ISSUE_TYPES:
            raise _error(400, issuetype=f"valid issue type is required: {sorted(ISSUE_TYPES)}")
        if not isinstance(fields.get("summary"), str) or not fields["summary"]:
            raise _error(400, summary="You must specify a summary of the issue.")
        actor = request.actor
        assert actor is not None
        number = self._numbers.get(project.key, 0) + 1
        now = self.now()
        issue = Issue(
            id=str(next(self._ids)),
            key=f"{project.key}-{number}",
            project=project.key,
            summary=fields["summary"],
            description=None,
            labels=[],
            priority="Medium",
            reporter=actor,
            creator=actor,
            assignee=None,
            components=[],
            status="To Do",
            issuetype=kind.get("name", "Task"),
            custom={},
            created=now,
            updated=now,
        )
        fields.setdefault(
            "reporter", {"accountId": actor} if self.cloud else {"name": self.users[actor].name}
        )
        blank = Issue(
            **{
                **issue.__dict__,
                "summary": "",
                "priority": None,
                "reporter": None,
                "custom": {},
                "labels": [],
                "components": [],
            }
        )
        items, _ = self._apply(blank, fields, {}, actor)
        issue = Issue(**{**blank.__dict__, "summary": fields["summary"]})
        self.issues[issue.key] = issue
        self._numbers[project.key] = number
        self._deliver(
            "jira:issue_created",
            issue,
            lambda: {
                "timestamp": _ms(now),
                "webhookEvent": "jira:issue_created",
                "issue_event_type_name": "issue_created",
                "user": self.user_json(actor),
                "issue": self.issue_json(issue),
                "changelog": {"id": str(next(self._changelog_ids)), "items": items},
            },
        )
        return Response(
            201,
            {
                "id": issue.id,
                "key": issue.key,
                "self": f"{self.base_url}/rest/api/2/issue/{issue.id}",
            },
            wrote=True,
        )

    def _attachment(self, name: str, size: int, author: str | None) -> dict[str, Any]:
        return {
            "id": str(next(self._ids)),
            "filename": name,
            "author": author,
            "created": jira_time(self.now()),
            "size": size,
            "mimeType": "application/octet-stream",
        }

    def attach(self, request: Request) -> Response:
        """POST issue/{key}/attachments: multipart `file` parts (XSRF header required, as Jira).

        A scripted agent may send JSON `{"filename": ..., "content": ...}` instead."""
        issue = self.find(request.params["key"])
        files: list[tuple[str, bytes]] = []
        if request.agent:
            body = json_body(request, _bad_json)
            files.append(
                (str(body.get("filename") or "file.txt"), str(body.get("content") or "").encode())
            )
        else:
            if request.headers.get("X-Atlassian-Token", "").lower() != "no-check":
                raise _error(403, "XSRF check failed: send X-Atlassian-Token: no-check.")
            files = _multipart_files(request)
            if not files:
                raise _error(400, "No file parts named 'file' in the multipart body.")
        actor = request.actor
        assert actor is not None
        added = [self._attachment(name, len(data), actor) for name, data in files]
        issue.attachments.extend(added)
        issue.updated = self.now()
        items = [
            {
                "field": "Attachment",
                "fieldtype": "jira",
                "fieldId": "attachment",
                "from": None,
                "fromString": None,
                "to": a["id"],
                "toString": a["filename"],
            }
            for a in added
        ]
        self._issue_updated(issue, actor, items, None)
        rendered = self.issue_json(issue, {"attachment"})["fields"]["attachment"]
        return Response(200, rendered[-len(added) :], wrote=True)
