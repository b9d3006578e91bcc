"""Jira's refusals that tierdesk's configuration causes, named by the policy key or setting.

`translate` (client.py) already turns 401 into CredentialsRejected and 403 into a permission
refusal, since neither needs the policy. A 400 on a decision's write is explained here, where
the decision and the policy are known:

    errors.assignee    "User 'x' cannot be assigned issues." / "Specified user does not exist"
                       -> targets.<target>.jira.assignee      (unknown-target)
    errors.components  "Component name 'x' is not valid"
                       -> targets.<target>.jira.component     (unknown-target)
    errors.commentLevel "You are currently not a member of the project role: X." /
                       "Role with id: X does not exist."
                       -> TIERDESK_JIRA_COMMENT_VISIBILITY    (comment-visibility)
    errors.<due field> the SLA due field refused -> sla.due_field.jira                   (field)
    errors.customfield_N  a custom field refused -> fields.<name>.jira                  (field)
    errors.<field>     "Field 'x' cannot be set. It is not on the appropriate screen, or
                       unknown." for a field tierdesk writes (labels, assignee, components,
                       comment): Jira's words for a missing Edit issues / Assign issues /
                       Add comments permission (pycontribs/jira #1, ansible community.general
                       #818) or a field off the edit screen -> the bot's permissions (permission)

Anything else stays a plain VendorRejected (still dead-lettered at once, with Jira's text).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors.base import ConfigurationRejected, VendorRejected
from connectors.jira import due
from connectors.jira.config import JiraConfig
from tiering.models import Decision
from tiering.policy import Policy

NOT_ON_SCREEN = "cannot be set. It is not on the appropriate screen, or unknown."


def explain(
    exc: VendorRejected,
    *,
    policy: Policy,
    config: JiraConfig,
    decision: Decision,
    body: Mapping[str, Any] | None,
) -> VendorRejected:
    """`exc` as a ConfigurationRejected naming what to fix, or `exc` itself."""
    if isinstance(exc, ConfigurationRejected) or exc.status != 400:
        return exc
    errors = exc.errors
    target = decision.assign
    text = str(exc)
    by_id = {fid: name for name, fid in policy.jira_fields.items()}
    due_field = due.field_id(policy)
    for name, message in errors.items():
        if name == due_field:
            return ConfigurationRejected(
                text,
                reason="field",
                fix=(
                    f"sla.due_field.jira: Jira refuses {name} on this issue ({message}): map"
                    " duedate or a date time picker custom field that is on the project's edit"
                    " screen, or remove sla.due_field.jira"
                ),
                status=exc.status,
                errors=errors,
            )
        if name.startswith("customfield_"):
            key = f"fields.{by_id[name]}.jira" if name in by_id else "the policy's fields"
            return ConfigurationRejected(
                text,
                reason="field",
                fix=(
                    f"{key}: Jira refuses {name} on this issue: use a field that exists and is"
                    " on the project's edit screen (`tierdesk doctor` lists the fields)"
                ),
                status=exc.status,
                errors=errors,
            )
        if NOT_ON_SCREEN in message:
            return ConfigurationRejected(
                text,
                reason="permission",
                fix=(
                    f"TIERDESK_JIRA_EMAIL: Jira will not let tierdesk's account set '{name}'"
                    " on this issue: grant it Browse projects, Edit issues, Assign issues and"
                    " Add comments in the project, and keep the field on the edit screen"
                    " (`tierdesk doctor` checks the permissions)"
                ),
                status=exc.status,
                errors=errors,
            )
    if "assignee" in errors and target is not None:
        who = _target_value(policy, target, "assignee")
        return ConfigurationRejected(
            text,
            reason="unknown-target",
            fix=(
                f"targets.{target}.jira.assignee: Jira cannot assign issues to {who!r}: give an"
                " account that exists and holds Assignable User in the project"
                f" ({'accountId' if config.deployment == 'cloud' else 'user name'})"
            ),
            status=exc.status,
            errors=errors,
        )
    if "components" in errors and target is not None:
        component = _target_value(policy, target, "component")
        return ConfigurationRejected(
            text,
            reason="unknown-target",
            fix=(
                f"targets.{target}.jira.component: the project has no component {component!r}:"
                " create it in Jira or correct the name"
            ),
            status=exc.status,
            errors=errors,
        )
    if "commentLevel" in errors or ("comment" in errors and "visibility" in errors["comment"]):
        setting = config.comment_visibility
        shown = f"{setting[0]}:{setting[1]}" if setting else "(none)"
        return ConfigurationRejected(
            text,
            reason="comment-visibility",
            fix=(
                f"TIERDESK_JIRA_COMMENT_VISIBILITY={shown}: Jira refuses comments restricted"
                " to it: name a project role or group that exists and that tierdesk's account"
                " belongs to"
            ),
            status=exc.status,
            errors=errors,
        )
    return exc


def _target_value(policy: Policy, target: str, attribute: str) -> str | None:
    spec = policy.targets.get(target)
    jira = spec.jira if spec is not None else None
    value = getattr(jira, attribute, None) if jira is not None else None
    return str(value) if value is not None else None
