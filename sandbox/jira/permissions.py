"""Who may do what on the Jira sandbox: authentication, project permissions, mypermissions."""

from __future__ import annotations

import base64
import hmac
from collections.abc import Mapping
from typing import Any

from sandbox.jira.records import Issue, JiraSiteBase, _error
from sandbox.jira.seed import JiraSeed
from sandbox.wire import Request, Response

#: Jira's project permission keys the sandbox knows: key -> (id, name, description), as
#: GET /rest/api/3/permissions lists them (platform-openapi-v3.json "Get all permissions";
#: Atlassian "Manage project permissions").
PERMISSIONS: dict[str, tuple[str, str, str]] = {
    "ADMINISTER_PROJECTS": ("23", "Administer Projects", "Ability to administer a project."),
    "BROWSE_PROJECTS": ("10", "Browse Projects", "Ability to browse projects and issues."),
    "CREATE_ISSUES": ("11", "Create Issues", "Ability to create issues."),
    "EDIT_ISSUES": ("12", "Edit Issues", "Ability to edit issues."),
    "ASSIGN_ISSUES": ("13", "Assign Issues", "Ability to assign issues to other people."),
    "ASSIGNABLE_USER": ("17", "Assignable User", "Users with this permission may be assigned."),
    "ADD_COMMENTS": ("15", "Add Comments", "Ability to comment on issues."),
    "CREATE_ATTACHMENTS": ("19", "Create Attachments", "Users may attach files."),
    "TRANSITION_ISSUES": ("46", "Transition Issues", "Ability to transition issues."),
    "RESOLVE_ISSUES": ("14", "Resolve Issues", "Ability to resolve and reopen issues."),
    "CLOSE_ISSUES": ("18", "Close Issues", "Ability to close issues."),
    "DELETE_ISSUES": ("16", "Delete Issues", "Ability to delete issues."),
    "LINK_ISSUES": ("21", "Link Issues", "Ability to link issues together."),
    "EDIT_ALL_COMMENTS": ("34", "Edit All Comments", "Ability to edit all comments."),
    "SERVICEDESK_AGENT": ("44", "Service Desk Agent", "Jira Service Management agent."),
}


class JiraPermissions(JiraSiteBase):
    """Authentication and Jira's project permissions, as the permission scheme grants them."""

    def _permission_table(self, seed: JiraSeed) -> dict[str, dict[str, frozenset[str]]]:
        """`seed.permissions` keyed by accountId, checked against the seeded users, projects
        and Jira's permission keys (a typo in the seed is an error, not a silent denial)."""
        by_name = {u.name: u.accountId for u in seed.users}
        table: dict[str, dict[str, frozenset[str]]] = {}
        for who, projects in seed.permissions.items():
            account = who if who in self.users else by_name.get(who)
            if account is None:
                raise ValueError(f"seed: jira.permissions: user {who!r} is not in jira.users")
            for project, keys in projects.items():
                if project not in self.projects:
                    raise ValueError(
                        f"seed: jira.permissions.{who}: project {project} is not in jira.projects"
                    )
                unknown = sorted(set(keys) - set(PERMISSIONS))
                if unknown:
                    raise ValueError(
                        f"seed: jira.permissions.{who}.{project}: unknown permission key(s)"
                        f" {', '.join(unknown)}; Jira's keys: {', '.join(sorted(PERMISSIONS))}"
                    )
                table.setdefault(account, {})[project] = frozenset(keys)
        return table

    def has_permission(self, user: str | None, project: str, key: str) -> bool:
        """Whether `user` (accountId or name) holds project permission `key` in `project`.

        Jira administrators hold every permission (the sandbox's simplification: on a real site
        the permission scheme grants them, Atlassian "Manage global permissions"). A user the
        seed's `permissions` table names holds exactly the keys listed for that project; a user
        it does not name holds all of them unless the seed has `strict_permissions`.
        """
        if user is None:
            return False
        account = user if user in self.users else next(
            (u.accountId for u in self.users.values() if u.name == user), None
        )
        if account is None:
            return False
        if self.users[account].admin:
            return True
        granted = self.permissions.get(account)
        if granted is None:
            return not self.seed.strict_permissions
        return key in granted.get(project, frozenset())

    def authenticate(self, headers: Mapping[str, str]) -> str:
        """The accountId the request's credentials belong to, or a 401 like Jira's."""
        auth = headers.get("Authorization") or headers.get("authorization") or ""
        if auth.startswith("Basic "):
            try:
                login = base64.b64decode(auth[6:]).decode().split(":", 1)[0]
            except (ValueError, UnicodeDecodeError) as exc:
                raise _error(401, "Basic authentication header is malformed.") from exc
            password = base64.b64decode(auth[6:]).decode().partition(":")[2]
            for user in self.users.values():
                if login in (user.emailAddress, user.name):
                    if user.api_token is None or not hmac.compare_digest(
                        password.encode(), user.api_token.encode()
                    ):
                        # A wrong API token or password is a 401 with no detail, as Jira
                        # answers it (Atlassian "Basic auth for REST APIs": "401 Unauthorized"
                        # for bad credentials; pycontribs/jira #808 met it after moving to
                        # API tokens).
                        raise _error(
                            401,
                            "Client must be authenticated to access this resource."
                            f" (the sandbox: wrong API token or password for {login!r}; the"
                            " seed's jira.users[].api_token)",
                        )
                    return user.accountId
            raise _error(
                401,
                f"Client must be authenticated: no sandbox user has login {login!r}"
                " (add it to the seed's jira.users).",
            )
        if auth.startswith("Bearer "):
            token = auth[7:]
            for user in self.users.values():
                if user.pat and user.pat == token:
                    return user.accountId
            raise _error(401, "Client must be authenticated: unknown personal access token.")
        raise _error(401, "Client must be authenticated to access this resource.")

    def my_permissions(self, request: Request) -> Response:
        """GET /rest/api/{2,3}/mypermissions?projectKey=&permissions=A,B: Jira's shape,
        `{"permissions": {KEY: {id, key, name, type, description, havePermission}}}`.
        `permissions` is required and an unknown key is a 400; an unknown project a 404
        ("Get my permissions", platform-openapi-v3.json)."""
        wanted = [k.strip() for k in (request.arg("permissions") or "").split(",") if k.strip()]
        if not wanted:
            raise _error(400, "The permissions parameter is required.")
        unknown = [k for k in wanted if k not in PERMISSIONS]
        if unknown:
            raise _error(400, f"Permission key(s) not recognised: {', '.join(unknown)}.")
        project = request.arg("projectKey")
        if project is not None and project not in self.projects:
            raise _error(404, f"No project could be found with key '{project}'.")
        out: dict[str, Any] = {}
        for key in wanted:
            pid, name, description = PERMISSIONS[key]
            have = (
                self.has_permission(request.actor, project, key)
                if project is not None
                # Without a project: whether the user holds it in any project.
                else any(self.has_permission(request.actor, p, key) for p in self.projects)
            )
            out[key] = {
                "id": pid,
                "key": key,
                "name": name,
                "type": "PROJECT",
                "description": description,
                "havePermission": have,
            }
        return Response(200, {"permissions": out})

    def is_admin(self, actor: str | None) -> bool:
        """True for Jira administrators (admin webhooks), and for everyone unless the seed has
        strict_permissions."""
        if not self.seed.strict_permissions:
            return True
        return actor is not None and actor in self.users and self.users[actor].admin

    def _can_see(self, actor: str | None, issue: Issue) -> None:
        """404 without Browse projects: Jira does not tell such a user that the issue exists
        (Edit issue / Get issue, platform-openapi-v3.json: "404 ... the user does not have
        permission to view it")."""
        if not self.has_permission(actor, issue.project, "BROWSE_PROJECTS"):
            raise _error(404, "Issue does not exist or you do not have permission to see it.")

    def _can_edit(self, actor: str, issue: Issue, names: list[str]) -> None:
        """400 per field the user may not set. Jira names a permission it lacks as a field "not
        on the appropriate screen": without Edit issues every field (pycontribs/jira #1, "The
        user did not have access to edit issues"), without Assign issues the assignee
        (ansible-collections/community.general #818). Without Add comments, a comment in the
        edit is refused the same way (the sandbox's reading: no public report found)."""
        needs = {"comment": "ADD_COMMENTS", "assignee": "ASSIGN_ISSUES"}
        refused = {
            name: f"Field '{name}' cannot be set. It is not on the appropriate screen, or unknown."
            for name in names
            if not self.has_permission(actor, issue.project, "EDIT_ISSUES")
            or not self.has_permission(actor, issue.project, needs.get(name, "EDIT_ISSUES"))
        }
        if refused:
            raise _error(400, **refused)
