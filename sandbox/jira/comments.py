"""The Jira sandbox's comments: visibility, listing, adding, and the service desk comment API."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from sandbox.jira.records import Comment, _bad_json, _error, _int, _ms, jira_time
from sandbox.jira.webhooks import JiraWebhooks
from sandbox.wire import Request, Response, json_body


class JiraComments(JiraWebhooks):
    """Comments: new ones (visibility checked), the comment list and POST, JSM comments."""

    def _new_comment(
        self, value: Any, actor: str, *, via: Literal["edit", "comment"] = "comment"
    ) -> Comment:
        """A comment from a request body. It is JSM-internal only when it came in through a
        documented internal path: `POST /rest/api/2/issue/{key}/comment` with the property
        `sd.public.comment = {"internal": true}` (pycontribs/jira #313, jenkinsci/jira-plugin
        #375), or the Service Management API (`service_desk_comment`). The same property inside
        an edit's `update.comment.add` (`via="edit"`) is kept but not honoured: no public
        source shows Jira honouring it there, so the sandbox assumes the portal shows it."""
        if not isinstance(value, dict) or not isinstance(value.get("body"), str):
            raise _error(400, comment="Comment body can not be empty! (v2 takes a plain string)")
        if not value["body"].strip():
            raise _error(400, comment="Comment body can not be empty!")
        visibility = value.get("visibility")
        if visibility is not None and (
            not isinstance(visibility, dict)
            or visibility.get("type") not in ("role", "group")
            or not visibility.get("value")
        ):
            raise _error(400, comment='visibility must be {"type": "role"|"group", "value": ...}')
        if visibility is not None:
            self._check_visibility(visibility, actor)
        properties = value.get("properties") or []
        if not isinstance(properties, list):
            raise _error(400, comment="properties must be a list of {key, value}")
        internal = via == "comment" and any(
            isinstance(p, dict)
            and p.get("key") == "sd.public.comment"
            and isinstance(p.get("value"), dict)
            and p["value"].get("internal") is True
            for p in properties
        )
        now = self.now()
        return Comment(
            str(next(self._comment_ids)),
            actor,
            value["body"],
            now,
            now,
            visibility,
            properties,
            internal=internal,
        )

    def _check_visibility(self, visibility: Mapping[str, Any], actor: str) -> None:
        """A comment restricted to a role or group that does not exist, or that the author is
        not in, is a 400 in `errors.commentLevel` ({"errorMessages": [], "errors":
        {"commentLevel": "You are currently not a member of the project role: Developers."}}:
        reload/github-security-jira #128; "Role with id: Administrators does not exist.":
        atlassian/atlassian-mcp-server #105). The group texts follow the role ones (unconfirmed).
        Roles are checked across the seed's projects (the sandbox keeps one role set)."""
        kind, value = visibility["type"], str(visibility["value"])
        if kind == "role":
            members = [m for roles in self.seed.roles.values() for m in roles.get(value, [])]
            if not any(value in roles for roles in self.seed.roles.values()):
                raise _error(400, commentLevel=f"Role with id: {value} does not exist.")
            if actor not in members and not self.users[actor].admin:
                raise _error(
                    400,
                    commentLevel=f"You are currently not a member of the project role: {value}.",
                )
        else:
            if value not in self.seed.groups:
                raise _error(400, commentLevel=f"Group: {value} does not exist.")
            if actor not in self.seed.groups[value]:
                raise _error(
                    400, commentLevel=f"You are currently not a member of the group: {value}."
                )

    def list_comments(self, request: Request) -> Response:
        issue = self.find(request.params["key"])
        start = _int(request.arg("startAt"), 0, "startAt")
        size = _int(request.arg("maxResults"), 5000, "maxResults")
        ordered = list(issue.comments)
        if (request.arg("orderBy") or "").lstrip("+") == "-created":
            ordered.reverse()
        props = "properties" in (request.arg("expand") or "")
        page = ordered[start : start + size]
        return Response(
            200,
            {
                "startAt": start,
                "maxResults": size,
                "total": len(ordered),
                "comments": [self.comment_json(issue, c, properties=props) for c in page],
            },
        )

    def add_comment(self, request: Request) -> Response:
        issue = self.find(request.params["key"])
        self._can_see(request.actor, issue)
        actor = request.actor
        assert actor is not None
        if not self.has_permission(actor, issue.project, "ADD_COMMENTS"):
            # Add comment, platform-openapi-v3.json lists 400 "the request is invalid" (no 403).
            raise _error(400, comment="You do not have the permission to comment on this issue.")
        comment = self._new_comment(json_body(request, _bad_json), actor)
        issue.comments.append(comment)
        issue.updated = comment.created
        self._issue_updated(issue, actor, [], comment)
        return Response(201, self.comment_json(issue, comment), wrote=True)

    def service_desk_comment(self, request: Request) -> Response:
        """JSM "Create request comment": `{"body": ..., "public": bool}`; `public: false` is an
        internal comment (developer.atlassian.com/cloud/jira/service-desk/rest/
        api-group-request/#api-rest-servicedeskapi-request-issueidorkey-comment-post). 404 on
        a site without Service Management."""
        if not self.seed.service_management:
            raise _error(404, "Service Management is not installed on this site.")
        issue = self.find(request.params["key"])
        actor = request.actor
        assert actor is not None
        body = json_body(request, _bad_json)
        text = body.get("body")
        public = body.get("public", True)
        if not isinstance(text, str) or not text.strip():
            raise _error(400, "The comment body is required.")
        if not isinstance(public, bool):
            raise _error(400, "public must be true or false.")
        now = self.now()
        comment = Comment(
            str(next(self._comment_ids)), actor, text, now, now, internal=not public
        )
        issue.comments.append(comment)
        issue.updated = comment.created
        self._issue_updated(issue, actor, [], comment)
        return Response(
            201,
            {
                "id": comment.id,
                "body": comment.body,
                "public": public,
                "author": self.user_json(actor),
                "created": {"iso8601": jira_time(now), "epochMillis": _ms(now)},
                "_links": {
                    "self": f"{self.base_url}/rest/servicedeskapi/request/{issue.id}"
                    f"/comment/{comment.id}"
                },
            },
            wrote=True,
        )
