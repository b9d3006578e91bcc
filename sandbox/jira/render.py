"""The Jira sandbox's JSON: users, issues (with `fields=`), comments and custom field values."""

from __future__ import annotations

from typing import Any

from sandbox.jira.fields import due_json
from sandbox.jira.permissions import JiraPermissions
from sandbox.jira.records import CATEGORIES, ISSUE_TYPES, Comment, Issue, jira_time
from sandbox.wire import Request


class JiraRender(JiraPermissions):
    """Records rendered in Jira's response shapes."""

    def user_json(self, account_id: str | None) -> dict[str, Any] | None:
        if account_id is None:
            return None
        u = self.users[account_id]
        data: dict[str, Any] = {
            "self": f"{self.base_url}/rest/api/2/user?accountId={u.accountId}",
            "accountId": u.accountId,
            "displayName": u.displayName,
            "active": True,
            "timeZone": "UTC",
            "accountType": "atlassian",
            "avatarUrls": {"48x48": f"{self.base_url}/avatar/{u.accountId}"},
        }
        if not self.cloud:
            data["name"] = u.name
            data["key"] = u.name
        if u.emailAddress:
            data["emailAddress"] = u.emailAddress
        return data

    def category_json(self, key: str) -> dict[str, Any]:
        ident, name = CATEGORIES[key]
        return {"self": f"{self.base_url}/rest/api/2/statuscategory/{ident}", "id": ident,
                "key": key, "name": name}

    def status_json(self, name: str) -> dict[str, Any]:
        """A StatusDetails (platform-openapi-v3.json): name, id and statusCategory."""
        status_id, category = self.workflow_statuses[name]
        return {"self": f"{self.base_url}/rest/api/2/status/{status_id}", "name": name,
                "id": status_id, "description": "", "statusCategory": self.category_json(category)}

    def issue_json(self, issue: Issue, wanted: set[str] | None = None) -> dict[str, Any]:
        """GET issue's shape; `wanted` None means all fields."""
        base = self.base_url
        project = self.projects[issue.project]
        status_id, category = self.workflow_statuses.get(issue.status, ("10000", "new"))
        fields: dict[str, Any] = {
            "summary": issue.summary,
            "description": issue.description,
            "labels": list(issue.labels),
            "priority": None
            if issue.priority is None
            else {
                "self": f"{base}/rest/api/2/priority/{self.priorities.get(issue.priority, '3')}",
                "name": issue.priority,
                "id": self.priorities.get(issue.priority, "3"),
            },
            "reporter": self.user_json(issue.reporter),
            "creator": self.user_json(issue.creator),
            "assignee": self.user_json(issue.assignee),
            "components": [
                {
                    "self": f"{base}/rest/api/2/component/{cid}",
                    "id": cid,
                    "name": self.components[cid].name,
                }
                for cid in issue.components
            ],
            "status": {
                "self": f"{base}/rest/api/2/status/{status_id}",
                "name": issue.status,
                "id": status_id,
                "description": "",
                "statusCategory": self.category_json(category),
            },
            "issuetype": {
                "self": f"{base}/rest/api/2/issuetype/{ISSUE_TYPES.get(issue.issuetype, '10002')}",
                "id": ISSUE_TYPES.get(issue.issuetype, "10002"),
                "name": issue.issuetype,
                "subtask": False,
            },
            "project": {
                "self": f"{base}/rest/api/2/project/{project.id}",
                "id": project.id,
                "key": project.key,
                "name": project.name,
                "projectTypeKey": "service_desk",
            },
            "created": jira_time(issue.created),
            "updated": jira_time(issue.updated),
            "attachment": [
                {
                    **a,
                    "self": f"{base}/rest/api/2/attachment/{a['id']}",
                    "author": self.user_json(a["author"]),
                    "content": f"{base}/secure/attachment/{a['id']}/{a['filename']}",
                }
                for a in issue.attachments
            ],
            "comment": {
                "comments": [self.comment_json(issue, c) for c in issue.comments],
                "self": f"{base}/rest/api/2/issue/{issue.id}/comment",
                "maxResults": len(issue.comments),
                "total": len(issue.comments),
                "startAt": 0,
            },
        }
        for fid in self.field_names:
            fields[fid] = self.custom_json(fid, issue.custom.get(fid))
        fields.update(due_json(issue))  # duedate: sandbox/jira/fields.py
        if wanted is not None:
            fields = {k: v for k, v in fields.items() if k in wanted}
        return {
            "expand": "renderedFields,names,schema,operations,editmeta,changelog",
            "id": issue.id,
            "self": f"{base}/rest/api/2/issue/{issue.id}",
            "key": issue.key,
            "fields": fields,
        }

    def comment_json(self, issue: Issue, c: Comment, *, properties: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {
            "self": f"{self.base_url}/rest/api/2/issue/{issue.id}/comment/{c.id}",
            "id": c.id,
            "author": self.user_json(c.author),
            "body": c.body,
            "updateAuthor": self.user_json(c.author),
            "created": jira_time(c.created),
            "updated": jira_time(c.updated),
            # "Defaults to true when comments are created in the Jira Cloud Platform"
            # (Comment.jsdPublic, platform-openapi-v3.json).
            "jsdPublic": not c.internal,
        }
        if c.visibility:
            data["visibility"] = c.visibility
        if properties:
            data["properties"] = c.properties
        return data

    def wanted_fields(self, request: Request, *, default: str = "*all") -> set[str] | None:
        names = request.args("fields") or [default]
        everything = set(self.issue_json_keys())
        chosen: set[str] = set()
        for name in names:
            if name in ("*all", "*navigable"):
                chosen |= everything
            elif name.startswith("-"):
                chosen.discard(name[1:])
            elif name == "id":
                continue
            else:
                chosen.add(name)
        for name in names:
            if name.startswith("-"):
                chosen.discard(name[1:])
        return chosen

    def issue_json_keys(self) -> list[str]:
        return [
            "summary",
            "description",
            "labels",
            "priority",
            "reporter",
            "creator",
            "assignee",
            "components",
            "status",
            "issuetype",
            "project",
            "created",
            "updated",
            "attachment",
            "comment",
            *self.field_names,
        ]

    def custom_json(self, fid: str, stored: Any) -> Any:
        """A custom field as GET issue and webhooks show it (Organizations: objects, [] empty)."""
        if fid not in self.organization_fields:
            return stored
        return [
            {
                "id": oid,
                "name": self.organizations[oid].name,
                "_links": {"self": f"{self.base_url}/rest/servicedeskapi/organization/{oid}"},
            }
            for oid in stored or []
        ]
