"""The policy document models (pydantic) and the JSON Schema generated from them.

`PolicyDoc` is the whole file; each model is one mapping of it. They check structure (types,
unknown keys, a few cross-key rules); meaning is checked by tiering/policy_checks.py. The key
descriptions are the policy reference: `tierdesk policy schema` prints `policy_json_schema()`
and `deploy/policy.schema.json` holds it.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    model_validator,
)

from tiering.sla_models import CalendarSpec, SlaSpec

#: Names of tiers, plans, rules and routes end up in labels and tags, so they are kept label-safe.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
Name = Annotated[StrictStr, Field(pattern=NAME_PATTERN)]
NonEmptyText = Annotated[StrictStr, Field(min_length=1)]

#: Fixed labels the engine manages; a tier or route may not be named so that its label collides.
RESERVED_NAMES = frozenset({"docs-missing", "entitlement-exceeded", "unverified"})


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PlanSpec(_Model):
    """An entitlement: the highest tier a customer on this plan may reach."""

    max_tier: StrictStr = Field(description="The highest tier this plan covers.")
    description: StrictStr | None = Field(default=None, description="Free text.")


class CustomerMatch(_Model):
    """How a customer is recognised: exactly one of organization, email domain or email."""

    organization: NonEmptyText | None = Field(
        default=None,
        description="The customer's organization name (Jira Service Management organization, "
        "Zendesk organization); give exactly one of organization, email_domain or"
        " email.",
    )
    email_domain: NonEmptyText | None = Field(
        default=None,
        description="The customer's email domain, e.g. globex.example; give exactly one of "
        "organization, email_domain or email.",
    )
    email: NonEmptyText | None = Field(
        default=None,
        description="A single email address; give exactly one of organization, email_domain "
        "or email.",
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> CustomerMatch:
        given = [k for k in ("organization", "email_domain", "email") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of organization, email_domain or email"
                f" (got {', '.join(given) or 'none'})"
            )
        return self


class CustomerEntry(_Model):
    match: CustomerMatch = Field(
        description="How the customer is recognised: exactly one of organization (name), "
        "email_domain, email.",
    )
    plan: StrictStr = Field(description="The customer's plan (a key of plans).")


class When(_Model):
    """Conditions of a rule; all given conditions must hold. Text matching ignores case."""

    text_any: list[StrictStr] | None = Field(
        default=None,
        description="The subject or description contains one of these (case-insensitive).",
    )
    text_all: list[StrictStr] | None = Field(
        default=None,
        description="The subject or description contains all of these (case-insensitive).",
    )
    text_none: list[StrictStr] | None = Field(
        default=None,
        description="The subject or description contains none of these (case-insensitive).",
    )
    text_regex: StrictStr | None = Field(
        default=None,
        description="The subject or description matches this regular expression (RE2, case-"
        "insensitive).",
    )
    #: Text terms match whole words only ("nas" then does not match "nasty").
    whole_words: StrictBool = Field(
        default=False,
        description="The text_any / text_all / text_none terms match whole words only (nas "
        "then does not match nasty).",
    )
    priority_in: list[StrictStr] | None = Field(
        default=None,
        description="The ticket's priority is one of these, in any case (Jira's default "
        "scheme: Highest, High, Medium, Low, Lowest; Zendesk: low, normal, high, "
        "urgent).",
    )
    labels_any: list[StrictStr] | None = Field(
        default=None,
        description="The ticket has one of these labels or tags.",
    )
    plan_in: list[StrictStr] | None = Field(
        default=None,
        description="The customer's plan is one of these (keys of plans).",
    )


class Rule(_Model):
    """First-triage rule: a ticket with no tier that matches `when` gets `tier` or is routed."""

    name: Annotated[StrictStr, Field(pattern=NAME_PATTERN)] = Field(
        description="Unique; shown in reasons.",
    )
    when: When = Field(description="Conditions, all of which must hold.")
    tier: StrictStr | None = Field(
        default=None,
        description="The tier to give (give exactly one of tier or route).",
    )
    route: StrictStr | None = Field(
        default=None,
        description="Hand to a non-support team instead (needs targets.<route>); give exactly"
        " one of tier or route.",
    )
    suggest: list[NonEmptyText] = Field(
        default=[],
        description="Self-help links put in the agent's note (with tier only).",
    )
    by_label: StrictBool = Field(
        default=False,
        description="With route only: an agent also routes any ticket here, one already in a"
        " tier included, by adding the label route-<route>.",
    )
    description: StrictStr | None = Field(default=None, description="Free text.")

    @model_validator(mode="after")
    def _tier_or_route(self) -> Rule:
        if (self.tier is None) == (self.route is None):
            raise ValueError("give exactly one of tier or route")
        if self.route is not None and self.suggest:
            raise ValueError("suggest goes with tier, not with route")
        if self.tier is not None and self.by_label:
            raise ValueError("by_label goes with route, not with tier")
        return self


class RequirementWhen(_Model):
    """The condition of a requirement: another documentation field has a value."""

    field: Name = Field(description="A key of fields whose value decides.")
    one_of: list[StrictStr] | None = Field(
        default=None,
        description="The field's value is one of these (case-insensitive); without it, any"
        " value.",
    )


class Requirement(_Model):
    """One piece of documentation a ticket needs before it may enter a tier."""

    field: Name = Field(description="A key of fields (or any name with attachment: true).")
    label: NonEmptyText = Field(description="How the checklist names it.")
    min_length: Annotated[StrictInt, Field(ge=1)] | None = Field(
        default=None,
        description="At least this many characters.",
    )
    pattern: StrictStr | None = Field(
        default=None,
        description="The value must match this regular expression (RE2, case-sensitive).",
    )
    one_of: list[StrictStr] | None = Field(
        default=None,
        description="The value must be one of these (case-insensitive).",
    )
    attachment: StrictBool = Field(
        default=False,
        description="The ticket must have an attachment (no other check allowed).",
    )
    when: RequirementWhen | None = Field(
        default=None,
        description="Required only when another field has a value (any, or one of one_of);"
        " e.g. an endpoint only for API requests.",
    )


class FieldMap(_Model):
    """Where a documentation field lives in each vendor: a Jira field id, a Zendesk field id."""

    jira: NonEmptyText | None = Field(
        default=None,
        description="Jira field id, e.g. customfield_10101.",
    )
    zendesk: StrictInt | None = Field(default=None, description="Zendesk ticket field id.")


class JiraTarget(_Model):
    """Jira escalation target: an assignee (accountId on Cloud, user name on Data Center)
    and/or a component."""

    assignee: NonEmptyText | None = Field(
        default=None,
        description="accountId (Cloud) or user name (Data Center).",
    )
    component: NonEmptyText | None = Field(default=None, description="A component name.")


class ZendeskTarget(_Model):
    """Zendesk escalation target: a group and/or an agent."""

    group_id: StrictInt | None = Field(default=None, description="A group id.")
    assignee_id: StrictInt | None = Field(default=None, description="An agent id.")


class Target(_Model):
    jira: JiraTarget | None = Field(
        default=None,
        description="The Jira target: assignee and/or component.",
    )
    zendesk: ZendeskTarget | None = Field(
        default=None,
        description="The Zendesk target: group_id and/or assignee_id.",
    )
    labels: list[Name] = Field(
        default=[],
        description="Extra labels or tags a ticket carries while in this tier or route: added"
        " when it enters, removed when it leaves (managed like the tier label).",
    )


class Entitlement(_Model):
    """Where a vendor's own records say which plan a customer has (optional)."""

    #: Key in a Zendesk organization's `organization_fields` whose value is a plan name.
    zendesk_organization_field: NonEmptyText | None = Field(
        default=None,
        description="Key of the Zendesk organization field holding the plan name (wins over "
        "customers).",
    )
    #: How long (seconds) an organization's plan read from Zendesk is trusted before re-reading.
    organization_cache_seconds: Annotated[StrictInt, Field(ge=0)] = Field(
        default=900,
        description="How long (seconds) a plan read from Zendesk is trusted.",
    )
    #: The highest tier an unverified customer (no plan) may reach.
    unverified_max_tier: StrictStr | None = Field(
        default=None,
        description="The highest tier of an unverified customer (default: L1 if it exists, "
        "else the first tier).",
    )


class PolicyDoc(_Model):
    """The policy file exactly as written, structurally validated."""

    version: Literal[1] = Field(description="The format version.")
    tiers: Annotated[list[Name], Field(min_length=1)] = Field(
        description="Support levels, lowest first (e.g. [L0, L1, L2, L3, L4]).",
    )
    default_tier: StrictStr = Field(description="The tier of a new ticket that no rule matches.")
    plans: dict[Name, PlanSpec] = Field(default={}, description="Entitlements: plan name -> plan.")
    customers: list[CustomerEntry] = Field(
        default=[],
        description="Who has which plan; the first match wins.",
    )
    default_plan: StrictStr | None = Field(
        default=None,
        description="Plan of customers matching nothing; null means unverified.",
    )
    rules: list[Rule] = Field(
        default=[],
        description="First triage: the first matching rule sets the tier of a ticket that has"
        " none.",
    )
    documentation: dict[StrictStr, list[Requirement]] = Field(
        default={},
        description="What a ticket needs before it may enter a tier (tier -> requirements); "
        "entering a tier needs the requirements of it and of every tier below.",
    )
    fields: dict[Name, FieldMap] = Field(
        default={},
        description="Where each documentation field lives: name -> Jira and Zendesk field "
        "ids.",
    )
    targets: dict[StrictStr, Target] = Field(
        default={},
        description="Who takes a ticket entering a tier or route: tier or route -> target.",
    )
    entitlement: Entitlement = Field(
        default=Entitlement(),
        description="Where a vendor's own records say which plan a customer has.",
    )
    description: StrictStr | None = Field(default=None, description="Free text.")
    #: Business calendars and SLA/OLA targets (tiering/sla_models.py; issue 18).
    calendars: dict[StrictStr, CalendarSpec] = Field(
        default={},
        description="Business calendars; 24x7 is built in.",
    )
    sla: SlaSpec | None = Field(
        default=None,
        description="SLA and OLA targets, warnings and actions.",
    )


#: The title of the policy's JSON Schema.
SCHEMA_TITLE = "tierdesk tier policy"


def policy_json_schema() -> dict[str, Any]:
    """The JSON Schema of a policy file, generated from the models (pydantic's
    `model_json_schema`), with every key's description: what `tierdesk policy schema` prints and
    `deploy/policy.schema.json` holds, for editors (yaml-language-server) to complete and check
    a policy as it is typed. It checks structure only; names (tiers, plans, fields) and regexes
    are checked by `load_policy`."""
    schema = PolicyDoc.model_json_schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **schema,
        "title": SCHEMA_TITLE,
    }
