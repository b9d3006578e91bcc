"""How to reach one Jira site and act on it (built by webhooks.settings, passed to
JiraConnector), and the pause after a 429 that says nothing of when to come back."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

#: Used when Jira answers 429 with neither a usable Retry-After nor X-RateLimit-Reset. Atlassian
#: says a 429 "may be accompanied by Retry-After and X-RateLimit-Reset headers" (Jira Cloud
#: "Rate limiting", developer.atlassian.com/cloud/jira/platform/rate-limiting): neither is
#: promised, so this is a floor, not a guess at the right value.
DEFAULT_RETRY_AFTER = 30.0


@dataclass(frozen=True)
class JiraConfig:
    """Connection and behaviour settings for a Jira Cloud, Data Center or JSM site."""

    base_url: str
    email: str | None = None
    #: Cloud: API token, used with `email` for basic auth.
    api_token: str | None = None
    #: Data Center: personal access token (bearer). Takes precedence over email + api_token.
    pat: str | None = None
    #: The bot's own account (accountId on Cloud, user name on Data Center): its events are dropped.
    bot_account_id: str | None = None
    #: Cloud assigns by accountId, Data Center by user name.
    deployment: Literal["cloud", "datacenter"] = "cloud"
    #: Restrict the checklist comment: ("role", "Administrators") or ("group", "support-agents").
    comment_visibility: tuple[Literal["role", "group"], str] | None = None
    #: Jira Service Management: mark the checklist comment internal (sd.public.comment).
    service_management: bool = False
    #: The admin's explicit choice to post the checklist unrestricted (everyone who can see the
    #: issue sees it). Without it, `comment_visibility` or `service_management`, the connector
    #: refuses to start: customers must never see the checklist by accident.
    public_comments: bool = False
    #: Seconds for connect and read on every request.
    timeout: float = 10.0
    #: JSM: id of the "Organizations" custom field (type sd-customer-organizations, e.g.
    #: `customfield_10002`; the id differs per site: GET /rest/api/2/field lists it). Its first
    #: organization's name is the ticket's customer organization, used for entitlement.
    organization_field: str | None = None
    #: A custom field (id) holding the customer's organization name, for sites without JSM
    #: organizations: used when the Organizations field gives none.
    customer_field: str | None = None
    #: A custom field (id) holding the customer's support plan (a plan name of the policy), the
    #: counterpart of Zendesk's organization field: it takes precedence over `customers`.
    plan_field: str | None = None
    #: Send edits with `notifyUsers=false` (no email to watchers). Jira allows it only to Jira
    #: admins and project admins (Administer Projects) and refuses the whole edit with a 403
    #: otherwise (php-jira-rest-client #390, jira-cli #1013), so it is an explicit opt-in; a
    #: project that answers that 403 anyway gets plain edits from then on (JiraConnector).
    quiet_edits: bool = False

    def __repr__(self) -> str:
        # Secrets never appear in logs or errors.
        return (
            f"JiraConfig(base_url={self.base_url!r}, email={self.email!r},"
            f" api_token={'***' if self.api_token else None},"
            f" pat={'***' if self.pat else None}, bot_account_id={self.bot_account_id!r},"
            f" deployment={self.deployment!r}, service_management={self.service_management!r},"
            f" comment_visibility={self.comment_visibility!r},"
            f" public_comments={self.public_comments!r},"
            f" organization_field={self.organization_field!r},"
            f" customer_field={self.customer_field!r}, plan_field={self.plan_field!r},"
            f" quiet_edits={self.quiet_edits!r})"
        )

    def comment_audience_problem(self) -> str | None:
        """Why the checklist comment could reach customers with this config, or None."""
        if self.comment_visibility is not None or self.service_management or self.public_comments:
            return None
        return (
            "Jira checklist comments would be visible to everyone who can see the issue,"
            " customers included: set TIERDESK_JIRA_COMMENT_VISIBILITY to role:<project role> or"
            " group:<group> (e.g. role:Administrators), or TIERDESK_JIRA_SERVICE_MANAGEMENT=true"
            " on Jira Service Management (internal comments); TIERDESK_JIRA_COMMENT_VISIBILITY="
            "public posts them unrestricted on purpose"
        )
