"""Jira issue JSON -> tiering.models.Ticket: field mapping and the list of fields the policy reads.

The same mapping serves webhook payloads (`issue` is shaped like GET issue) and tierdesk's own
read (`GET /rest/api/2/issue/{key}?fields=...`). Untrusted JSON is read with checked access: a
value of the wrong type raises PayloadInvalid naming its key path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from connectors.base import PayloadInvalid
from connectors.jira import due
from connectors.jira.config import JiraConfig
from connectors.jira.webhook import user_id
from tiering.models import Customer, FieldValue, Ticket, note_key_in
from tiering.policy import Policy

#: System fields every decision reads. `labels` is also the completeness test of a payload: Cloud
#: comment events carry a trimmed `issue.fields` without it (../shared/vendor/README.md).
#: `assignee` and `components` are the issue's current owner: the connector compares them with
#: the target's, so a tier change removes the previous target's component without a read.
BASE_FIELDS = (
    "summary",
    "description",
    "labels",
    "priority",
    "reporter",
    "assignee",
    "components",
    "attachment",
    "updated",
)
#: Read too when the policy has SLA clocks (issue 18): the status (name and statusCategory) and
#: the creation time (IssueBean fields, platform-openapi-v3.json: `status` is a StatusDetails
#: with `name` and `statusCategory.key`; `created` a datetime like 2026-01-05T10:00:00.000+0000).
SLA_FIELDS = ("status", "created")


def has_first_response(policy: Policy) -> bool:
    """Whether any target of the policy is a `first_response` clock (then the issue's comments
    are read too: the first public agent reply stops that clock)."""
    spec = policy.sla.spec
    if spec is None:
        return False
    return any(
        t.first_response is not None
        or any(p.first_response is not None for p in t.priority.values())
        for plan in spec.plans.values() for t in plan.tiers.values()
    )


def fields_to_read(policy: Policy, config: JiraConfig, *, comments: bool = False) -> list[str]:
    """The field ids for `GET issue?fields=...`: only what the decision uses, in a stable order."""
    wanted = list(BASE_FIELDS)
    if policy.sla.enabled:
        wanted.extend(SLA_FIELDS)
        if has_first_response(policy):
            comments = True
    extra = [*policy.jira_fields.values(), *due.read_fields(policy)]
    if config.organization_field:
        extra.append(config.organization_field)
    for field_id in (config.customer_field, config.plan_field):
        if field_id and field_id not in extra:
            extra.append(field_id)
    if comments:
        # A fresh read needs comments to find tierdesk's own note marker; a policy with a
        # first_response clock on every read, for the first public agent reply.
        extra.append("comment")
    for field_id in extra:
        if field_id not in wanted:
            wanted.append(field_id)
    return wanted


def is_complete(issue: Mapping[str, Any] | None) -> bool:
    """True when an issue object carries the fields a decision needs (no read required)."""
    if not isinstance(issue, Mapping):
        return False
    fields = issue.get("fields")
    return isinstance(fields, Mapping) and "labels" in fields and isinstance(issue.get("key"), str)


def _obj(value: Any, where: str) -> Mapping[str, Any] | None:
    if value is None or isinstance(value, Mapping):
        return value
    raise PayloadInvalid(f"{where}: expected an object, got {type(value).__name__}")


def _str(value: Any, where: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise PayloadInvalid(f"{where}: expected a string, got {type(value).__name__}")


def _list(value: Any, where: str) -> Sequence[Any]:
    if value is None:
        return ()
    if isinstance(value, list):
        return value
    raise PayloadInvalid(f"{where}: expected a list, got {type(value).__name__}")


def adf_text(node: Any) -> str:
    """Plain text of an Atlassian Document Format node (v3 rich text), paragraphs on new lines."""
    if isinstance(node, str):
        return node
    if isinstance(node, list):
        return "".join(adf_text(n) for n in node)
    if not isinstance(node, Mapping):
        return ""
    if node.get("type") == "text":
        text = node.get("text")
        return text if isinstance(text, str) else ""
    if node.get("type") == "hardBreak":
        return "\n"
    inner = adf_text(node.get("content"))
    if node.get("type") in ("paragraph", "heading", "listItem", "codeBlock", "blockquote"):
        return inner + "\n"
    return inner


def _rich_text(value: Any, where: str) -> str:
    """A v2 text field (wiki markup string) or, if a site sends it, a v3 ADF document."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping) and value.get("type") == "doc":
        return adf_text(value).strip()
    raise PayloadInvalid(f"{where}: expected text, got {type(value).__name__}")


#: Keys that name an option or an object, in order of preference: select/radio/cascading options
#: carry `value`; components, versions, JSM organizations, priorities carry `name`; users
#: carry `displayName` (Cloud hides `name`); anything else falls back to its key or id.
_LABEL_KEYS = ("value", "name", "displayName", "emailAddress", "accountId", "key", "id")


def _option(value: Mapping[str, Any], where: str) -> str | None:
    if value.get("type") == "doc":
        return adf_text(value).strip() or None
    for key in _LABEL_KEYS:
        found = value.get(key)
        if isinstance(found, str) and found:
            child = value.get("child")
            # Cascading select: {"value": "Hardware", "child": {"value": "Disk"}}.
            if key == "value" and isinstance(child, Mapping):
                sub = child.get("value")
                if isinstance(sub, str) and sub:
                    return f"{found} / {sub}"
            return found
        if isinstance(found, int | float) and not isinstance(found, bool):
            return str(found)
    return None


def field_value(value: Any, where: str) -> FieldValue:
    """A custom field of any type as the engine sees it.

    text -> str; number -> int/float; checkbox-like booleans -> bool; select/radio/user/
    cascading select `{value}` -> str; multi-select, checkboxes, labels, components, versions,
    JSM organizations (lists) -> tuple of str; empty -> None (and an empty list -> ()).
    """
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, Mapping):
        return _option(value, where)
    if isinstance(value, list):
        out: list[str] = []
        for i, item in enumerate(value):
            if isinstance(item, str):
                out.append(item)
            elif isinstance(item, Mapping):
                text = _option(item, f"{where}[{i}]")
                if text is not None:
                    out.append(text)
            elif isinstance(item, int | float) and not isinstance(item, bool):
                out.append(str(item))
            elif item is not None:
                raise PayloadInvalid(
                    f"{where}[{i}]: unsupported list item of type {type(item).__name__}"
                )
        return tuple(out)
    raise PayloadInvalid(f"{where}: unsupported value of type {type(value).__name__}")


def last_note_key(fields: Mapping[str, Any]) -> str | None:
    """The key of tierdesk's newest checklist note among the issue's comments, if any."""
    comment = _obj(fields.get("comment"), "issue.fields.comment")
    if comment is None:
        return None
    found: str | None = None
    for i, item in enumerate(_list(comment.get("comments"), "issue.fields.comment.comments")):
        entry = _obj(item, f"issue.fields.comment.comments[{i}]")
        if entry is None:
            continue
        body = entry.get("body")
        text = body if isinstance(body, str) else adf_text(body)
        key = note_key_in(text)
        if key is not None:
            found = key  # comments come oldest first: keep the newest marker
    return found


def component_names(fields: Mapping[str, Any]) -> frozenset[str]:
    """The names of the issue's components (`fields.components`: a list of {id, name, ...})."""
    names: set[str] = set()
    for i, item in enumerate(_list(fields.get("components"), "issue.fields.components")):
        component = _obj(item, f"issue.fields.components[{i}]")
        if component is None:
            continue
        name = _str(component.get("name"), f"issue.fields.components[{i}].name")
        if name:
            names.add(name)
    return frozenset(names)


def status_of(fields: Mapping[str, Any], policy: Policy) -> str | None:
    """The issue's status as a neutral status: by the policy's `sla.statuses.jira` names, else
    its status category key (`SlaPolicy.jira_status`); None when the issue has no status."""
    status = _obj(fields.get("status"), "issue.fields.status")
    if status is None:
        return None
    name = _str(status.get("name"), "issue.fields.status.name")
    category = _obj(status.get("statusCategory"), "issue.fields.status.statusCategory")
    key = _str(category.get("key"), "issue.fields.status.statusCategory.key") if category else None
    return policy.sla.jira_status(name, key)


def time_of(value: Any, where: str) -> datetime | None:
    """A Jira datetime (`2026-01-05T10:00:00.000+0000`) as an aware UTC datetime; None when
    absent. A value that is not one raises PayloadInvalid."""
    text = _str(value, where)
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise PayloadInvalid(f"{where}: {text!r} is not a Jira datetime") from None
    if when.tzinfo is None:
        raise PayloadInvalid(f"{where}: {text!r} has no time zone offset")
    return when.astimezone(UTC)


def first_reply_of(
    fields: Mapping[str, Any], *, reporter: str | None, bot: str | None
) -> datetime | None:
    """The first public reply by someone other than the reporter (and tierdesk's bot) among
    the issue's comments (`fields.comment.comments`, when the payload or read has them): a
    comment is public unless JSM marks it internal (`jsdPublic: false`) or it is restricted to
    a role or group (`visibility`) (Comment in platform-openapi-v3.json). Anyone but the
    reporter counts as an agent: a JSM request participant who comments counts too."""
    comment = _obj(fields.get("comment"), "issue.fields.comment")
    if comment is None:
        return None
    first: datetime | None = None
    for i, item in enumerate(_list(comment.get("comments"), "issue.fields.comment.comments")):
        where = f"issue.fields.comment.comments[{i}]"
        entry = _obj(item, where)
        if entry is None or entry.get("jsdPublic") is False or entry.get("visibility"):
            continue
        author = user_id(_obj(entry.get("author"), f"{where}.author"), f"{where}.author")
        if author is None or author in (reporter, bot):
            continue
        created = time_of(entry.get("created"), f"{where}.created")
        if created is not None and (first is None or created < first):
            first = created
    return first


def _organization(value: Any, where: str) -> str | None:
    """The first JSM organization's name (the Organizations field is a list of {id, name})."""
    mapped = field_value(value, where)
    if isinstance(mapped, tuple):
        return mapped[0] if mapped else None
    return mapped if isinstance(mapped, str) and mapped else None


def _unidentified(has_reporter: bool, config: JiraConfig) -> str:
    """What Jira did not send that could identify the customer, for the decision's reason.
    Cloud sends `reporter.emailAddress` null when the site's privacy settings hide it
    (UserDetails.emailAddress, platform-openapi-v3.json: "Depending on the user's privacy
    settings, this may be returned as null"); plain Jira (not JSM) has no organization."""
    missing = [
        "no reporter email: the site hides it" if has_reporter else "no reporter"
    ]
    for label, field_id in (
        ("organization", config.organization_field),
        ("customer", config.customer_field),
        ("plan", config.plan_field),
    ):
        if field_id:
            missing.append(f"no {label} in {field_id}")
    return "Jira sent " + ", ".join(missing)


def ticket_from_issue(
    issue: Mapping[str, Any],
    *,
    policy: Policy,
    config: JiraConfig,
    actor: str | None = None,
    note_key: str | None = None,
) -> Ticket:
    """Map one issue object (webhook `issue` or GET issue JSON) to a Ticket.

    `note_key` is the caller's last known checklist note key; a marker found in the issue's
    comments (present when the payload or the read included them) takes precedence.
    """
    key = _str(issue.get("key"), "issue.key")
    if not key:
        raise PayloadInvalid("issue.key: missing; cannot tell which issue this is")
    fields = _obj(issue.get("fields"), "issue.fields") or MappingProxyType({})
    labels = frozenset(
        _str(v, f"issue.fields.labels[{i}]") or ""
        for i, v in enumerate(_list(fields.get("labels"), "issue.fields.labels"))
    ) - {""}
    priority = _obj(fields.get("priority"), "issue.fields.priority")
    reporter = _obj(fields.get("reporter"), "issue.fields.reporter")
    organization = None
    if config.organization_field:
        organization = _organization(
            fields.get(config.organization_field), f"issue.fields.{config.organization_field}"
        )
    if organization is None and config.customer_field:
        organization = _organization(
            fields.get(config.customer_field), f"issue.fields.{config.customer_field}"
        )
    plan = None
    if config.plan_field:
        plan = _organization(fields.get(config.plan_field), f"issue.fields.{config.plan_field}")
    email = (
        _str(reporter.get("emailAddress"), "issue.fields.reporter.emailAddress")
        if reporter
        else None
    )
    doc_fields: dict[str, FieldValue] = {
        name: field_value(fields.get(field_id), f"issue.fields.{field_id}")
        for name, field_id in policy.jira_fields.items()
    }
    doc_fields.update(due.current(policy, fields) | due.sla_notes(fields))  # SLA due field
    attachments = _list(fields.get("attachment"), "issue.fields.attachment")
    return Ticket(
        key=key,
        subject=_str(fields.get("summary"), "issue.fields.summary") or "",
        description=_rich_text(fields.get("description"), "issue.fields.description"),
        labels=labels,
        priority=_str(priority.get("name"), "issue.fields.priority.name") if priority else None,
        customer=Customer(
            organization=organization,
            email=email,
            plan=plan,
            unidentified=None
            if organization or email or plan
            else _unidentified(reporter is not None, config),
        ),
        fields=MappingProxyType(doc_fields),
        attachments=len(attachments),
        assignee=user_id(_obj(fields.get("assignee"), "issue.fields.assignee"),
                         "issue.fields.assignee"),
        components=component_names(fields),
        actor=actor,
        updated_at=_str(fields.get("updated"), "issue.fields.updated"),
        last_note_key=last_note_key(fields) or note_key,
        status=status_of(fields, policy),
        created_at=time_of(fields.get("created"), "issue.fields.created"),
        first_reply_at=first_reply_of(
            fields, reporter=user_id(reporter, "issue.fields.reporter"),
            bot=config.bot_account_id,
        ) if has_first_response(policy) else None,
    )

