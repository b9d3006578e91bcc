"""The Jira sandbox's site reads: serverInfo, myself, users, projects, roles and fields."""

from __future__ import annotations

from sandbox.jira.fields import CUSTOM_SCHEMAS, DUE_DATE, DUE_DATE_SCHEMA
from sandbox.jira.records import _error, jira_time
from sandbox.jira.render import JiraRender
from sandbox.jira.seed import JiraProjectSeed
from sandbox.wire import Request, Response


class JiraDirectory(JiraRender):
    """serverInfo, users, assignable users, project components and roles, fields."""

    def server_info(self, request: Request) -> Response:
        now = self.now()
        version = self.version_numbers
        return Response(
            200,
            {
                "baseUrl": self.base_url,
                "version": ".".join(map(str, version)) + ("-SNAPSHOT" if self.cloud else ""),
                "versionNumbers": version,
                "deploymentType": self.seed.deployment,
                "buildNumber": 100260,
                "buildDate": "2026-01-01T00:00:00.000+0000",
                "serverTime": jira_time(now),
                "scmInfo": "sandbox",
                "serverTitle": "tierdesk Jira sandbox",
            },
        )

    def _account(self, request: Request, *names: str) -> str | None:
        """The accountId named by query parameter `accountId` (Cloud) or `username` (DC)."""
        for name in names:
            value = request.arg(name)
            if value:
                for u in self.users.values():
                    if value in (u.accountId, u.name):
                        return u.accountId
                return None
        raise _error(400, f"The {' or '.join(names)} query parameter is required.")

    def get_user(self, request: Request) -> Response:
        """GET /rest/api/2/user?accountId=|username=&expand=groups (Get user)."""
        account = self._account(request, "accountId", "username", "key")
        if account is None:
            raise _error(404, "The user does not exist.")
        data = self.user_json(account) or {}
        if "groups" in (request.arg("expand") or ""):
            names = sorted(g for g, members in self.seed.groups.items() if account in members)
            data["groups"] = {"size": len(names), "items": [{"name": n} for n in names]}
        return Response(200, data)

    def assignable_search(self, request: Request) -> Response:
        """GET /rest/api/2/user/assignable/search?project=KEY&accountId=|username=: the users
        with Assignable User in the project (Find users assignable to issues; 400 without a
        project, 404 for an unknown one)."""
        project = request.arg("project")
        if not project:
            raise _error(400, "The project or issueKey query parameter is required.")
        if project not in self.projects:
            raise _error(404, f"No project could be found with key '{project}'.")
        wanted = self._account(request, "accountId", "username", "query")
        found = [
            self.user_json(u.accountId)
            for u in self.users.values()
            if u.accountId == wanted
            and self.has_permission(u.accountId, project, "ASSIGNABLE_USER")
        ]
        return Response(200, found)

    def _project(self, request: Request) -> JiraProjectSeed:
        key = request.params["key"]
        project = self.projects.get(key) or next(
            (p for p in self.projects.values() if p.id == key), None
        )
        if project is None or not self.has_permission(
            request.actor, project.key, "BROWSE_PROJECTS"
        ):
            raise _error(404, f"No project could be found with key '{key}'.")
        return project

    def project_components(self, request: Request) -> Response:
        """GET /rest/api/2/project/{key}/components (Get project components)."""
        project = self._project(request)
        return Response(
            200,
            [
                {
                    "self": f"{self.base_url}/rest/api/2/component/{c.id}",
                    "id": c.id,
                    "name": c.name,
                    "project": project.key,
                    "projectId": int(project.id),
                }
                for c in self.components.values()
                if c.project == project.key
            ],
        )

    def _role_ids(self, project: str) -> dict[str, str]:
        names = sorted(self.seed.roles.get(project, {}))
        return {name: str(10000 + i) for i, name in enumerate(names)}

    def _roles_admin(self, request: Request) -> JiraProjectSeed:
        project = self._project(request)
        if not self.has_permission(request.actor, project.key, "ADMINISTER_PROJECTS"):
            # Reading a project's roles needs Administer Projects; Jira answers 401 "You cannot
            # edit the configuration of this project." (pycontribs/jira #535).
            raise _error(401, "You cannot edit the configuration of this project.")
        return project

    def project_roles(self, request: Request) -> Response:
        """GET /rest/api/2/project/{key}/role: role name -> role URL (Get project roles)."""
        project = self._roles_admin(request)
        return Response(
            200,
            {
                name: f"{self.base_url}/rest/api/2/project/{project.key}/role/{rid}"
                for name, rid in self._role_ids(project.key).items()
            },
        )

    def project_role(self, request: Request) -> Response:
        """GET /rest/api/2/project/{key}/role/{id}: the role and its user actors."""
        project = self._roles_admin(request)
        for name, rid in self._role_ids(project.key).items():
            if rid == request.params["id"]:
                members = self.seed.roles[project.key][name]
                return Response(
                    200,
                    {
                        "self": f"{self.base_url}/rest/api/2/project/{project.key}/role/{rid}",
                        "name": name,
                        "id": int(rid),
                        "actors": [
                            {
                                "id": n,
                                "displayName": self.users[m].displayName,
                                "type": "atlassian-user-role-actor",
                                "actorUser": {"accountId": m},
                            }
                            for n, m in enumerate(members, 1)
                        ],
                    },
                )
        raise _error(404, f"No project role with id {request.params['id']}.")

    def myself(self, request: Request) -> Response:
        return Response(200, self.user_json(request.actor))

    def user_search(self, request: Request) -> Response:
        text = (request.arg("query") or request.arg("username") or "").lower()
        found = [
            self.user_json(u.accountId)
            for u in self.users.values()
            if text
            and any(text in (v or "").lower() for v in (u.displayName, u.emailAddress, u.name))
        ]
        return Response(200, found)

    def list_fields(self, request: Request) -> Response:
        """GET /rest/api/2/field: system and custom fields (the library caches the names)."""
        out = [
            {
                "id": name,
                "key": name,
                "name": name.capitalize(),
                "custom": False,
                "orderable": True,
                "navigable": True,
                "searchable": True,
                "clauseNames": [name],
            }
            for name in self.issue_json_keys()
            if not name.startswith("customfield_")
        ]
        # The system Due Date field, with its schema (sandbox/jira/fields.py has the sources).
        out.append({
            "id": DUE_DATE, "key": DUE_DATE, "name": "Due date", "custom": False,
            "orderable": True, "navigable": True, "searchable": True,
            "clauseNames": ["due", DUE_DATE], "schema": dict(DUE_DATE_SCHEMA),
        })
        for fid, title in self.field_names.items():
            number = fid.rsplit("_", 1)[1]
            out.append(
                {
                    "id": fid,
                    "key": fid,
                    "name": title,
                    "custom": True,
                    "orderable": True,
                    "navigable": True,
                    "searchable": True,
                    "clauseNames": [f"cf[{number}]", title],
                    "schema": {**CUSTOM_SCHEMAS[self.field_types[fid]], "customId": int(number)}
                    if self.field_types.get(fid) in CUSTOM_SCHEMAS
                    else {"type": "any", "custom": "sandbox", "customId": int(number)}
                    if fid not in self.organization_fields
                    else {
                        "type": "array",
                        "items": "sd-customer-organization",
                        "custom": "com.atlassian.servicedesk:sd-customer-organizations",
                        "customId": int(number),
                    },
                }
            )
        return Response(200, out)
