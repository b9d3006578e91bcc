"""`tierdesk doctor` for Jira: read-only checks of a site against the settings and the policy.

Every request is a GET (safe against production at any time). Requests, in order:

    GET /rest/api/2/myself                         reachable, credentials, the bot's identity
    GET /rest/api/2/serverInfo                     which admin webhook API the site serves
    GET <webhook API>                              tierdesk's webhook: active, callback URL, JQL
    GET /rest/api/2/mypermissions?projectKey=K&permissions=...   per project of the JQL
    GET /rest/api/2/field                          every policy field, the JSM Organizations
                                                   field and the SLA due field exist, with a
                                                   usable type (one read for all three)
    GET /rest/api/2/user/assignable/search?project=K&accountId=X  per target assignee
    GET /rest/api/2/project/K/components           per project, when a target names a component
    GET /rest/api/2/project/K/role (+ /role/{id})  role visibility (needs Administer Projects)
    GET /rest/api/2/user?accountId=X&expand=groups group visibility

Sources: "Get my permissions", "Get fields", "Find users assignable to issues", "Get project
components", "Get project roles for project", "Get user" in platform-openapi-v3.json; reading a
project's roles needs Administer Projects (pycontribs/jira #535), so without it the role check
is a warning, not a failure.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from jira import JIRA

from connectors.base import ConnectorError, CredentialsRejected
from connectors.checks import Check, fail, ok, warn
from connectors.jira import due
from connectors.jira.admin import DEFAULT_WEBHOOK_NAME, JiraAdmin
from connectors.jira.client import CREDENTIALS_FIX, json_object, send
from connectors.jira.config import JiraConfig
from tiering.policy import Policy

V = "jira"
#: The name of the SLA due field check.
NAME_DUE = "sla due field"
#: The admin webhook's JQL filter key (../shared/vendor/README.md, Jira registering).
FILTER_KEY = "issue-related-events-section"
#: What tierdesk's account needs in every project it works in (see the admin guide).
REQUIRED = ("BROWSE_PROJECTS", "EDIT_ISSUES", "ADD_COMMENTS", "ASSIGN_ISSUES")
#: Needed only for quiet edits (TIERDESK_JIRA_QUIET_EDITS, notifyUsers=false).
OPTIONAL = ("ADMINISTER_PROJECTS",)
#: Field schema types a text requirement (min_length, pattern) or a choice (one_of) can read.
TEXT_TYPES = frozenset({"string", "any"})
CHOICE_TYPES = frozenset({"string", "option", "array", "any", "number"})

_PROJECTS = re.compile(
    r"\bproject\s*(?:=\s*\"?([A-Za-z][A-Za-z0-9_]*)\"?|in\s*\(([^)]*)\))", re.IGNORECASE
)


def projects_in(jql: str | None) -> list[str]:
    """The project keys a webhook JQL names (`project = SUP`, `project in (SUP, OPS)`)."""
    keys: list[str] = []
    for single, many in _PROJECTS.findall(jql or ""):
        for key in [single] if single else many.split(","):
            key = key.strip().strip("\"'")
            if key and key.upper() not in keys:
                keys.append(key.upper())
    return keys


def _get(client: JIRA, path: str, params: Mapping[str, str] | None = None) -> Any:
    response = send(client, "GET", path, params=params)
    try:
        return response.json()
    except ValueError as exc:
        raise ConnectorError(f"Jira GET {path}: answer is not JSON") from exc


def run_checks(
    client: JIRA,
    config: JiraConfig,
    policy: Policy,
    *,
    callback_url: str | None = None,
    projects: Sequence[str] = (),
) -> list[Check]:
    """Every Jira check, in order; stops after the credentials check if that fails."""
    checks: list[Check] = []
    try:
        me = json_object(send(client, "GET", "/rest/api/2/myself"), what="Jira GET myself")
    except CredentialsRejected as exc:
        return [fail(V, "credentials", f"Jira answered 401: {exc.vendor_text}", CREDENTIALS_FIX)]
    except ConnectorError as exc:
        return [fail(V, "reachable", str(exc),
                     f"TIERDESK_JIRA_URL={config.base_url}: check the URL and that this host"
                     " can reach it")]
    cloud = config.deployment == "cloud"
    bot = str(me.get("accountId") if cloud else (me.get("name") or me.get("key")) or "")
    checks.append(ok(V, "credentials", f"authenticated as {me.get('displayName')!r} ({bot})"))
    setting = "TIERDESK_JIRA_ACCOUNT_ID"
    if not config.bot_account_id:
        checks.append(fail(V, "bot identity", f"{setting} is not set",
                           f"set {setting}={bot} so tierdesk ignores its own edits"))
    elif config.bot_account_id != bot:
        checks.append(fail(V, "bot identity",
                           f"{setting}={config.bot_account_id} but the credentials are {bot}",
                           f"set {setting}={bot}: otherwise tierdesk answers its own writes"))
    else:
        checks.append(ok(V, "bot identity", f"{setting} matches the credentials ({bot})"))

    jql = _webhook_checks(client, config, checks, callback_url)
    keys = [k.upper() for k in projects] or projects_in(jql)
    if not keys:
        checks.append(warn(V, "projects", "no project named (webhook JQL or --project)",
                           "pass --project KEY (or a webhook JQL with project = KEY) to check"
                           " permissions and targets"))
    for key in keys:
        _permission_checks(client, config, checks, key)
    fields = _field_checks(client, config, policy, checks)
    if fields is not None:
        _due_field_check(policy, fields, checks)
    for key in keys:
        _target_checks(client, config, policy, checks, key, bot)
    return checks


def _webhook_checks(
    client: JIRA, config: JiraConfig, checks: list[Check], callback_url: str | None
) -> str | None:
    """tierdesk's admin webhook: registered, active, pointing at the callback URL; its JQL."""
    try:
        api = JiraAdmin(client, config).webhook_api()
        hooks = _get(client, api.path)
    except ConnectorError as exc:
        checks.append(warn(V, "webhook", f"cannot list admin webhooks: {exc}",
                           "listing webhooks needs Jira administrator: run doctor with an"
                           " admin's credentials to check it"))
        return None
    entries = [h for h in hooks if isinstance(h, Mapping)] if isinstance(hooks, list) else []
    hook = next((h for h in entries if h.get("name") == DEFAULT_WEBHOOK_NAME), None)
    if hook is None:
        checks.append(fail(V, "webhook", f"no webhook named {DEFAULT_WEBHOOK_NAME!r}",
                           "run `tierdesk install jira --callback-url URL`"))
        return None
    conf = hook.get("configuration")
    settings: Mapping[str, Any] = conf if isinstance(conf, Mapping) else {}
    active = hook.get("enabled", hook.get("active", True))
    url = hook.get("url")
    given = hook.get("filters")
    filters: Mapping[str, Any] = given if isinstance(given, Mapping) else {}
    jql = filters.get(FILTER_KEY) or settings.get("FILTERS")
    if active is False:
        checks.append(fail(V, "webhook", "tierdesk's webhook is disabled",
                           "enable it in Jira (System > WebHooks) or rerun install jira"))
    elif callback_url and url != callback_url:
        checks.append(fail(V, "webhook", f"tierdesk's webhook calls {url}, not {callback_url}",
                           f"rerun `tierdesk install jira --callback-url {callback_url}`"))
    else:
        checks.append(ok(V, "webhook", f"active, calls {url}" + (f", JQL {jql!r}" if jql else "")))
    return str(jql) if jql else None


def _permission_checks(client: JIRA, config: JiraConfig, checks: list[Check], key: str) -> None:
    try:
        data = _get(client, "/rest/api/2/mypermissions",
                    {"projectKey": key, "permissions": ",".join(REQUIRED + OPTIONAL)})
    except ConnectorError as exc:
        checks.append(fail(V, f"permissions in {key}", str(exc),
                           f"check that project {key} exists and the account can browse it"))
        return
    perms = data.get("permissions") if isinstance(data, Mapping) else None
    held = {
        k for k, v in (perms or {}).items() if isinstance(v, Mapping) and v.get("havePermission")
    }
    missing = [k for k in REQUIRED if k not in held]
    if missing:
        checks.append(fail(V, f"permissions in {key}", f"missing {', '.join(missing)}",
                           f"grant tierdesk's account {', '.join(missing)} in project {key}"
                           " (its permission scheme)"))
    else:
        checks.append(ok(V, f"permissions in {key}", ", ".join(REQUIRED)))
    if "ADMINISTER_PROJECTS" not in held:
        if config.quiet_edits:
            checks.append(fail(V, f"quiet edits in {key}", "no ADMINISTER_PROJECTS",
                               f"grant Administer Projects in {key}, or unset"
                               " TIERDESK_JIRA_QUIET_EDITS"))
        else:
            checks.append(warn(V, f"project admin in {key}",
                               "no ADMINISTER_PROJECTS (optional: only quiet edits need it)"))


def _field_checks(
    client: JIRA, config: JiraConfig, policy: Policy, checks: list[Check]
) -> dict[str, Mapping[str, Any]] | None:
    """The policy's documentation fields and the Organizations field; returns the fields read
    (by id) for the other field checks, or None when they could not be listed."""
    try:
        listed = _get(client, "/rest/api/2/field")
    except ConnectorError as exc:
        checks.append(fail(V, "fields", str(exc), "tierdesk's account must be able to list fields"))
        return None
    fields = {str(f.get("id")): f for f in listed if isinstance(f, Mapping)} if isinstance(
        listed, list) else {}
    kinds = _requirement_kinds(policy)
    for name, fid in sorted(policy.jira_fields.items()):
        key = f"fields.{name}.jira"
        found = fields.get(fid)
        if found is None:
            checks.append(fail(V, f"field {name}", f"{key}: {fid} does not exist in Jira",
                               f"{key}: set the id GET /rest/api/2/field lists for this field"))
            continue
        schema = found.get("schema") if isinstance(found.get("schema"), Mapping) else {}
        kind = str((schema or {}).get("type") or "any")
        allowed = TEXT_TYPES if "text" in kinds.get(name, set()) else CHOICE_TYPES
        if kind not in allowed:
            checks.append(fail(V, f"field {name}",
                               f"{key}: {fid} ({found.get('name')!r}) is of type {kind}",
                               f"{key}: the documentation rule needs a text field"))
        else:
            checks.append(ok(V, f"field {name}", f"{fid} ({found.get('name')!r}, {kind})"))
    org = config.organization_field
    if org:
        found = fields.get(org)
        schema = found.get("schema") if found and isinstance(found.get("schema"), Mapping) else {}
        custom = str((schema or {}).get("custom") or "")
        if found is None:
            checks.append(fail(V, "organization field", f"{org} does not exist",
                               "TIERDESK_JIRA_ORGANIZATION_FIELD: set the id of the JSM"
                               " Organizations field (GET /rest/api/2/field)"))
        elif not custom.endswith("sd-customer-organizations"):
            checks.append(fail(V, "organization field", f"{org} is {custom or 'not'} an"
                               " Organizations field",
                               "TIERDESK_JIRA_ORGANIZATION_FIELD: the field of type"
                               " sd-customer-organizations"))
        else:
            checks.append(ok(V, "organization field", f"{org} ({found.get('name')!r})"))
    return fields


def _due_field_check(
    policy: Policy, fields: Mapping[str, Mapping[str, Any]], checks: list[Check]
) -> None:
    """`sla.due_field.jira`, from the fields GET /rest/api/2/field listed (no request)."""
    fid = due.field_id(policy)
    if fid is not None:
        checks.append(due_field_check(fid, fields.get(fid)))


def due_field_check(fid: str, found: Mapping[str, Any] | None) -> Check:
    """Whether field `fid` (as GET /rest/api/2/field lists it, or None) can hold the due time.

    connectors/jira/due.py writes `duedate` as a date and a custom field as a date and time.
    The field's type is its `schema.type` (FieldDetails.schema, JsonTypeBean.type "The data type
    of the field" in platform-openapi-v3.json): `date` for duedate (`"system": "duedate"`) and a
    Date Picker, `datetime` for a Date Time Picker (`customfieldtypes:datetime`, a key the same
    OpenAPI names among the date field types; "fields with schema type `datetime`" in
    sooperset/mcp-atlassian #863). A Date Picker takes `YYYY-MM-DD` only (DatePickerField in
    "Jira REST API examples"), so the date-and-time value written to a custom field does not
    fit it; a text or number field would not sort as a time in agents' views.
    """
    key = "sla.due_field.jira"
    pick = (f"{key}: duedate, or the id of a Date Time Picker custom field (Jira settings >"
            " Issues > Custom fields; GET /rest/api/2/field lists the ids)")
    if found is None:
        if fid == due.DUE_DATE_FIELD:
            # Get fields lists a field only to an account that can browse a project using it.
            return fail(V, NAME_DUE, f"{key}: Jira lists no duedate field to tierdesk's account",
                        "give tierdesk's account Browse Projects in the projects it works in"
                        " and keep Due date in their field configuration, or set"
                        f" {key} to a Date Time Picker custom field")
        return fail(V, NAME_DUE, f"{key}: {fid} does not exist in Jira", pick)
    given = found.get("schema")
    schema: Mapping[str, Any] = given if isinstance(given, Mapping) else {}
    kind = str(schema.get("type") or "none")
    label = f"{fid} ({found.get('name')!r}, {kind})"
    wanted = "date" if fid == due.DUE_DATE_FIELD else "datetime"
    if kind == wanted:
        what = "a date: agents see the due day" if wanted == "date" else "a date and time"
        return ok(V, NAME_DUE, f"{label}: {what}")
    if kind == "date":
        return fail(V, NAME_DUE, f"{key}: {label} is a Date Picker: it takes a day only, and"
                    " tierdesk writes a date and time to a custom due field",
                    f"{key}: use a Date Time Picker custom field, or duedate (the day only)")
    return fail(V, NAME_DUE, f"{key}: {label} is not a"
                f" {'date' if wanted == 'date' else 'date and time'} field", pick)


def _requirement_kinds(policy: Policy) -> dict[str, set[str]]:
    """Per policy field name: "text" when a requirement measures or matches its text."""
    out: dict[str, set[str]] = {}
    for reqs in policy.doc.documentation.values():
        for r in reqs:
            if r.min_length is not None or r.pattern is not None:
                out.setdefault(r.field, set()).add("text")
            else:
                out.setdefault(r.field, set()).add("choice")
    return out


def _target_checks(
    client: JIRA, config: JiraConfig, policy: Policy, checks: list[Check], key: str, bot: str
) -> None:
    cloud = config.deployment == "cloud"
    components: list[str] | None = None
    for name, target in sorted(policy.targets.items()):
        jira = target.jira
        if jira is None:
            continue
        if jira.assignee:
            where = f"targets.{name}.jira.assignee"
            param = "accountId" if cloud else "username"
            try:
                found = _get(client, "/rest/api/2/user/assignable/search",
                             {"project": key, param: jira.assignee})
            except ConnectorError as exc:
                checks.append(fail(V, f"target {name} in {key}", f"{where}: {exc}",
                                   f"{where}: an account that can be assigned issues in {key}"))
                found = None
            if isinstance(found, list):
                ids = {str(u.get("accountId") if cloud else u.get("name")) for u in found
                       if isinstance(u, Mapping)}
                if jira.assignee in ids:
                    checks.append(ok(V, f"target {name} in {key}",
                                     f"{jira.assignee} can be assigned issues"))
                else:
                    checks.append(fail(V, f"target {name} in {key}",
                                       f"{where}: {jira.assignee} cannot be assigned issues in"
                                       f" {key} (unknown, or no Assignable User)",
                                       f"{where}: give an existing account with Assignable User"
                                       f" in {key}"))
        if jira.component:
            where = f"targets.{name}.jira.component"
            if components is None:
                try:
                    listed = _get(client, f"/rest/api/2/project/{key}/components")
                    components = [str(c.get("name")) for c in listed if isinstance(c, Mapping)]
                except ConnectorError as exc:
                    checks.append(fail(V, f"components of {key}", str(exc),
                                       f"check that project {key} exists"))
                    components = []
            if jira.component.casefold() in {c.casefold() for c in components}:
                checks.append(ok(V, f"target {name} component in {key}", jira.component))
            else:
                checks.append(fail(V, f"target {name} component in {key}",
                                   f"{where}: {key} has no component {jira.component!r}",
                                   f"{where}: create the component in {key} or fix the name"))
    _visibility_check(client, config, checks, key, bot)


def _visibility_check(
    client: JIRA, config: JiraConfig, checks: list[Check], key: str, bot: str
) -> None:
    if config.comment_visibility is None:
        return
    kind, value = config.comment_visibility
    setting = f"TIERDESK_JIRA_COMMENT_VISIBILITY={kind}:{value}"
    name = f"comment visibility in {key}"
    if kind == "group":
        try:
            param = "accountId" if config.deployment == "cloud" else "username"
            me = _get(client, "/rest/api/2/user", {param: bot, "expand": "groups"})
        except ConnectorError as exc:
            checks.append(warn(V, name, f"cannot read the account's groups: {exc}"))
            return
        groups = me.get("groups") if isinstance(me, Mapping) else None
        items = groups.get("items") if isinstance(groups, Mapping) else None
        names = {str(g.get("name")) for g in items or () if isinstance(g, Mapping)}
        if value in names:
            checks.append(ok(V, name, f"tierdesk's account is in group {value!r}"))
        else:
            checks.append(fail(V, name, f"tierdesk's account is not in group {value!r}",
                               f"{setting}: add the account to the group, or name one it is in"))
        return
    try:
        roles = _get(client, f"/rest/api/2/project/{key}/role")
    except ConnectorError as exc:
        checks.append(warn(V, name, f"cannot read the project's roles ({exc})",
                           "reading roles needs Administer Projects: check by hand that the"
                           f" role {value!r} exists and tierdesk's account is in it"))
        return
    url = roles.get(value) if isinstance(roles, Mapping) else None
    if not isinstance(url, str):
        checks.append(fail(V, name, f"{key} has no project role {value!r}",
                           f"{setting}: name an existing role ({', '.join(sorted(roles or {}))})"))
        return
    role_id = url.rstrip("/").rsplit("/", 1)[-1]
    try:
        role = _get(client, f"/rest/api/2/project/{key}/role/{role_id}")
    except ConnectorError as exc:
        checks.append(warn(V, name, f"cannot read role {value!r}: {exc}"))
        return
    actors = role.get("actors") if isinstance(role, Mapping) else None
    members = {
        str((a.get("actorUser") or {}).get("accountId") or a.get("name") or "")
        for a in actors or () if isinstance(a, Mapping)
    }
    if bot in members:
        checks.append(ok(V, name, f"tierdesk's account is in role {value!r}"))
    else:
        checks.append(fail(V, name, f"tierdesk's account is not in role {value!r} of {key}",
                           f"{setting}: add the account to the role (Jira refuses comments"
                           " restricted to a role the author is not in)"))
