"""The tier policy: YAML text validated into models, checked for meaning, compiled for speed.

`load_policy(text, source=...)` returns a `Policy` or raises `PolicyError` listing every problem,
each naming the file, the key path, what was expected and the line:

    policy.yaml: targets.L3.zendesk.group_id: expected an integer, got "three" (line 58)

Structure (types, unknown keys) is checked by pydantic; meaning (unknown tier, plan, field or
target names, invalid regexes, rules that can never match) by `_semantic_errors`. Both are
reported in one pass (`_validate`): the values pydantic refuses are set aside and validation is
repeated on the rest, so the checks of meaning still run on everything that is well-formed.
Misspelt keys, tiers, plans and fields get a did-you-mean (tiering/suggest.py). Reading the file
is the caller's business: this module does no I/O.

A policy is text an operator (or anyone who can write the file) controls, so loading is bounded
(issue 14): at most `MAX_POLICY_BYTES`, no YAML aliases (a 506-byte "billion laughs" file
expanded to 9 GB), at most `MAX_POLICY_DEPTH` levels of nesting, and a `RecursionError` becomes
an ordinary problem. Regexes compile with RE2 (tiering/patterns.py), which runs in linear time.
"""

from __future__ import annotations

import copy
import hashlib
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import UnionType
from typing import Annotated, Any, Literal, Union, cast, get_args, get_origin

import ahocorasick
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    model_validator,
)

from tiering.patterns import PatternError, TextPattern, compile_pattern
from tiering.sla_policy import CalendarSpec, SlaSpec, compile_sla
from tiering.sla_policy import semantic_errors as _sla_semantic_errors
from tiering.suggest import did_you_mean

#: The largest policy file accepted (bytes of UTF-8). The biggest reference policy is about 10 KB
#: and bench/decide.py's 2,000 customers about 150 KB; this much loads in well under 2 s.
MAX_POLICY_BYTES = 256 * 1024
#: The deepest nesting of mappings and lists accepted; a policy needs about 6.
MAX_POLICY_DEPTH = 32

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
    #: Business calendars and SLA/OLA targets (tiering/sla_policy.py; issue 18).
    calendars: dict[StrictStr, CalendarSpec] = Field(
        default={},
        description="Business calendars (validated; not enforced yet); 24x7 is built in.",
    )
    sla: SlaSpec | None = Field(
        default=None,
        description="SLA and OLA targets (validated; not enforced yet).",
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


# --------------------------------------------------------------------------- errors


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a policy file."""

    path: str
    message: str
    line: int | None = None

    def render(self, source: str) -> str:
        where = f"{source}: {self.path}: " if self.path else f"{source}: "
        line = f" (line {self.line})" if self.line else ""
        return f"{where}{self.message}{line}"


class PolicyError(ValueError):
    """A policy file that cannot be used; `problems` lists every reason."""

    def __init__(self, source: str, problems: Sequence[Problem]) -> None:
        self.source = source
        self.problems = tuple(problems)
        super().__init__("\n".join(p.render(source) for p in self.problems))

    @property
    def lines(self) -> list[str]:
        return [p.render(self.source) for p in self.problems]


_TYPE_WORDS = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "string_type": "a string",
    "bool_type": "true or false",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
}


def _show(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def _path(loc: Iterable[str | int]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _describe(err: Mapping[str, Any]) -> str:
    kind = err["type"]
    given = err.get("input")
    if kind in _TYPE_WORDS:
        return f"expected {_TYPE_WORDS[kind]}, got {_show(given)}"
    if kind == "missing":
        return "required key is missing"
    if kind == "extra_forbidden":
        return "unknown key (check its spelling against the policy reference)"
    if kind == "literal_error":
        return f"expected {err.get('ctx', {}).get('expected', 'another value')}, got {_show(given)}"
    if kind == "string_pattern_mismatch":
        return (
            f"{_show(given)} is not a valid name: use letters, digits, '-', '_' or '.',"
            " starting with a letter or digit"
        )
    if kind == "too_short":
        return "must not be empty"
    if kind == "greater_than_equal":
        return f"expected a number >= {err.get('ctx', {}).get('ge')}, got {_show(given)}"
    if kind == "value_error":
        return str(err.get("ctx", {}).get("error", err["msg"]))
    return str(err["msg"])


# --------------------------------------------------------------------------- line numbers


def _line_map(node: yaml.Node | None) -> dict[tuple[str | int, ...], int]:
    """Map each key path in a YAML document to the (1-based) line it starts on."""
    lines: dict[tuple[str | int, ...], int] = {}

    def walk(n: yaml.Node, path: tuple[str | int, ...]) -> None:
        lines.setdefault(path, n.start_mark.line + 1)
        if isinstance(n, yaml.MappingNode):
            for key, value in n.value:
                kp = (*path, str(key.value))
                lines[kp] = key.start_mark.line + 1
                walk(value, kp)
        elif isinstance(n, yaml.SequenceNode):
            for i, item in enumerate(n.value):
                walk(item, (*path, i))

    if node is not None:
        walk(node, ())
    return lines


def _line_for(lines: Mapping[tuple[str | int, ...], int], loc: tuple[str | int, ...]) -> int | None:
    while loc:
        if loc in lines:
            return lines[loc]
        loc = loc[:-1]
    return None


# --------------------------------------------------------------------------- meaning


def _literal_subsumes(general: Sequence[str], specific: Sequence[str]) -> bool:
    """True if every text that contains one of `specific` also contains one of `general`."""
    gen = [g.lower() for g in general]
    return all(any(g in s.lower() for g in gen) for s in specific)


def _shadows(earlier: When, later: When) -> bool:
    """True if `earlier` matches every ticket that `later` matches (so `later` can never win)."""
    if earlier.text_regex is not None or earlier.text_none or earlier.whole_words:
        return False
    # The later rule's text_any, or one term of its text_all, guarantees a term is present.
    if (
        earlier.text_any is not None
        and (later.text_any is None or not _literal_subsumes(earlier.text_any, later.text_any))
        and not (later.text_all and _literal_subsumes(earlier.text_any, later.text_all[:1]))
    ):
        return False
    if earlier.text_all is not None and (
        later.text_all is None
        or not all(any(e.lower() in t.lower() for t in later.text_all) for e in earlier.text_all)
    ):
        return False
    for key in ("priority_in", "labels_any", "plan_in"):
        mine = getattr(earlier, key)
        theirs = getattr(later, key)
        if mine is not None:
            if theirs is None:
                return False
            if not {x.lower() for x in theirs} <= {x.lower() for x in mine}:
                return False
    return True


def _semantic_errors(doc: PolicyDoc) -> Iterator[tuple[tuple[str | int, ...], str]]:
    tiers = doc.tiers
    tier_set = set(tiers)
    seen: set[str] = set()
    for i, t in enumerate(tiers):
        if t.lower() in seen:
            yield ("tiers", i), f'tier "{t}" is listed twice'
        seen.add(t.lower())
        if t.lower() in RESERVED_NAMES or t.lower().startswith("route-"):
            yield ("tiers", i), f'"{t}" is reserved for tierdesk\'s own labels; rename the tier'
    known_tiers = ", ".join(tiers)

    def tier_ref(loc: tuple[str | int, ...], name: str | None) -> Iterator[
        tuple[tuple[str | int, ...], str]
    ]:
        if name is not None and name not in tier_set:
            yield loc, (
                f'unknown tier "{name}" (tiers are: {known_tiers}){did_you_mean(name, tiers)}'
            )

    yield from tier_ref(("default_tier",), doc.default_tier)
    yield from tier_ref(("entitlement", "unverified_max_tier"), doc.entitlement.unverified_max_tier)
    for name, plan in doc.plans.items():
        yield from tier_ref(("plans", name, "max_tier"), plan.max_tier)
    plans = ", ".join(doc.plans) or "none defined"
    if doc.default_plan is not None and doc.default_plan not in doc.plans:
        yield ("default_plan",), (
            f'unknown plan "{doc.default_plan}" (plans are: {plans})'
            + did_you_mean(doc.default_plan, doc.plans)
        )
    seen_match: dict[tuple[str, str], int] = {}
    for i, c in enumerate(doc.customers):
        if c.plan not in doc.plans:
            yield ("customers", i, "plan"), (
                f'unknown plan "{c.plan}" (plans are: {plans}){did_you_mean(c.plan, doc.plans)}'
            )
        kind, value = next(
            (k, v) for k in ("organization", "email_domain", "email") if (v := getattr(c.match, k))
        )
        mk = (kind, value.strip().lower())
        if mk in seen_match:
            yield (
                ("customers", i, "match"),
                f"never used: customers[{seen_match[mk]}] already matches {kind} {value!r}",
            )
        else:
            seen_match[mk] = i

    rule_names: dict[str, int] = {}
    for i, rule in enumerate(doc.rules):
        loc: tuple[str | int, ...] = ("rules", i)
        if rule.name in rule_names:
            yield (
                (*loc, "name"),
                f'rule name "{rule.name}" is used by rules[{rule_names[rule.name]}] too',
            )
        rule_names.setdefault(rule.name, i)
        yield from tier_ref((*loc, "tier"), rule.tier)
        if rule.route is not None:
            if rule.route not in doc.targets:
                yield (
                    (*loc, "route"),
                    f'route "{rule.route}" has no entry under targets (add targets.{rule.route})',
                )
            if rule.route in tier_set:
                yield (*loc, "route"), f'route "{rule.route}" is a tier name; use tier: instead'
            if not re.match(NAME_PATTERN, rule.route):
                yield (*loc, "route"), f'"{rule.route}" is not a valid route name'
        w = rule.when
        for key in ("text_any", "text_all", "text_none", "priority_in", "labels_any", "plan_in"):
            values = getattr(w, key)
            if values is None:
                continue
            if not values:
                yield (
                    (*loc, "when", key),
                    "an empty list can never match; remove the key or add values",
                )
            for j, v in enumerate(values):
                if not v.strip():
                    yield (*loc, "when", key, j), "an empty term can never be told apart; remove it"
        for j, p in enumerate(w.plan_in or ()):
            if p not in doc.plans:
                yield (*loc, "when", "plan_in", j), (
                    f'unknown plan "{p}" (plans are: {plans}){did_you_mean(p, doc.plans)}'
                )
        if w.text_regex is not None:
            try:
                compile_pattern(w.text_regex, ignore_case=True)
            except PatternError as exc:
                yield (*loc, "when", "text_regex"), f"invalid regular expression: {exc}"
        if w.text_none and w.text_any:
            for term in w.text_any:
                if any(n.lower() in term.lower() for n in w.text_none):
                    yield (
                        (*loc, "when"),
                        f'can never match on "{term}": text_none excludes it',
                    )
        for k, earlier in enumerate(doc.rules[:i]):
            if _shadows(earlier.when, w):
                yield (
                    (*loc, "when"),
                    f'can never match: rules[{k}] ("{earlier.name}") comes first and matches'
                    " every ticket this rule matches",
                )
                break

    for tier, reqs in doc.documentation.items():
        yield from tier_ref(("documentation", tier), tier)
        for j, req in enumerate(reqs):
            rloc: tuple[str | int, ...] = ("documentation", tier, j)
            if not req.attachment and req.field not in doc.fields:
                yield (
                    (*rloc, "field"),
                    f'unknown field "{req.field}": map it under fields'
                    " (or set attachment: true for an attachment requirement)"
                    + did_you_mean(req.field, doc.fields),
                )
            if req.pattern is not None:
                try:
                    compile_pattern(req.pattern)
                except PatternError as exc:
                    yield (*rloc, "pattern"), f"invalid regular expression: {exc}"
            if req.one_of is not None and not req.one_of:
                yield (*rloc, "one_of"), "an empty list can never be satisfied"
            if req.attachment and (req.min_length or req.pattern or req.one_of):
                yield rloc, "an attachment requirement takes no min_length, pattern or one_of"
            if req.when is not None:
                wloc = (*rloc, "when")
                if req.when.field not in doc.fields:
                    yield (*wloc, "field"), (
                        f'unknown field "{req.when.field}": map it under fields'
                        + did_you_mean(req.when.field, doc.fields)
                    )
                elif req.when.field == req.field:
                    yield (*wloc, "field"), "a requirement cannot depend on its own field"
                if req.when.one_of is not None and not req.when.one_of:
                    yield (*wloc, "one_of"), "an empty list can never match; remove the key"

    for name in doc.fields:
        if name in doc.fields and not (doc.fields[name].jira or doc.fields[name].zendesk):
            yield ("fields", name), "map the field for at least one vendor (jira: or zendesk:)"

    route_names = {r.route for r in doc.rules if r.route}
    for name, target in doc.targets.items():
        if name not in tier_set and name not in route_names:
            yield (
                ("targets", name),
                f'"{name}" is neither a tier nor a route used by a rule (tiers are: {known_tiers})',
            )
        if target.jira is not None and not (target.jira.assignee or target.jira.component):
            yield ("targets", name, "jira"), "give assignee or component"
        if target.zendesk is not None and not (
            target.zendesk.group_id is not None or target.zendesk.assignee_id is not None
        ):
            yield ("targets", name, "zendesk"), "give group_id or assignee_id"
    own = {f"tier-{t.lower()}" for t in tiers} | {f"escalate-{t.lower()}" for t in tiers} | {
        f"tier-route-{r.lower()}" for r in route_names} | {f"tier-{n}" for n in RESERVED_NAMES}
    for name, target in doc.targets.items():
        seen_labels: set[str] = set()
        for j, label in enumerate(target.labels):
            lower = label.lower()
            if lower in own:
                yield (("targets", name, "labels", j),
                       f'"{label}" is one of tierdesk\'s own labels; choose another name')
            elif lower in seen_labels:
                yield ("targets", name, "labels", j), f'label "{label}" is listed twice'
            seen_labels.add(lower)


# --------------------------------------------------------------------------- one pass


Loc = tuple[str | int, ...]
#: Validation rounds at most: each sets aside what the previous one refused (a policy needs 2 or
#: 3: a refused required value makes its object go in the next round).
_MAX_ROUNDS = 8


def _validate(
    data: dict[str, Any], files: Mapping[str, str]
) -> tuple[PolicyDoc | None, list[tuple[Loc, str]]]:
    """The validated document and every problem, structural and of meaning, in one pass.

    Pydantic stops at nothing but reports only what it could check: a value it refuses hides
    the checks of meaning (unknown tiers, plans, fields) of the whole file, and an object with a
    refused value hides its own cross-key checks. So each refused value is set aside (an unknown
    key or a bad value deleted; an object missing a required key or refused as a whole
    deleted) and the rest validated again, until it validates. The checks of meaning then run
    on what is left; the ones about objects that lost a value, and about names whose definition
    was set aside, are dropped (they would blame a symptom of a problem already reported).
    A policy missing a required top-level key (`tiers`, `default_tier`) gets no checks of
    meaning: almost every name in it refers to the tiers."""
    work = copy.deepcopy(data)
    #: For each list of `work` (by id), the original index of each item still in it.
    origin: dict[int, list[int]] = {}
    found: list[tuple[Loc, str]] = []
    touched: list[Loc] = []  # original locations whose objects lost something
    dropped_names: set[str] = set()
    set_aside: set[Loc] = set()
    at_parent: set[Loc] = set()  # objects that lost an unknown key
    for _ in range(_MAX_ROUNDS):
        try:
            doc = PolicyDoc.model_validate(work)
        except ValidationError as exc:
            deletions: list[tuple[Any, str | int]] = []
            hopeless = False
            for err in exc.errors():
                loc = tuple(err["loc"])
                full = _original_loc(work, loc, origin)
                kind = err["type"]
                if not (kind == "missing" and full in set_aside):  # else: reported already
                    message = _describe(err)
                    if kind == "extra_forbidden":
                        message = _unknown_key(full)
                    found.append((full, message))
                if kind == "missing" and len(loc) == 1:
                    # A required top-level key: a stand-in where one is harmless, else stop.
                    if _stand_in(work, str(loc[0])):
                        touched.append(full)
                    else:
                        hopeless = True
                    continue
                target, key, original = _resolve(
                    work, loc[:-1] if kind == "missing" else loc, origin
                )
                if target is None:
                    hopeless = True
                    continue
                value = target[key]
                if kind == "extra_forbidden":
                    # its object's own cross-key checks ("give group_id") would blame the typo
                    at_parent.add(original[:-1])
                else:
                    whole = kind == "missing" or isinstance(value, dict) or len(original) < 2
                    touched.append(original if whole else original[:-1])
                if isinstance(value, str):
                    dropped_names.add(value)  # a refused name (a tier "L 0" ...)
                if isinstance(key, str) and len(original) == 2 and kind != "extra_forbidden":
                    dropped_names.add(key)  # a refused named entry (plans.gold ...)
                set_aside.add(original)
                deletions.append((target, key))
            if hopeless:  # the rest of this round is reported; there is no next one
                return None, found
            _delete(deletions, origin)
            continue
        break
    else:  # pragma: no cover - a policy needs 2 or 3 rounds
        return None, found
    meaning = [*_semantic_errors(doc), *_sla_semantic_errors(
        doc.calendars, doc.sla, tiers=doc.tiers, plans=doc.plans, targets=doc.targets,
        files=files,
    )]
    for loc, message in meaning:
        original = _original_loc(work, loc, origin)
        if original in at_parent or any(original[:len(t)] == t for t in touched):
            continue
        if any(f'"{name}"' in message for name in dropped_names):
            continue
        found.append((original, _original_refs(message, work, origin)))
    return (doc if not found else None), found


def _stand_in(work: dict[str, Any], key: str) -> bool:
    """Put a harmless stand-in for a missing or refused required top-level key, if there is
    one: `version` 1, `default_tier` the first tier (its own problem is reported already)."""
    if key == "version":
        work["version"] = 1
        return True
    tiers = work.get("tiers")
    if key == "default_tier" and isinstance(tiers, list) and tiers and isinstance(tiers[0], str):
        work["default_tier"] = tiers[0]
        return True
    return False


def _resolve(work: Any, loc: Loc, origin: dict[int, list[int]]
             ) -> tuple[Any, str | int, Loc]:
    """The container and key of `loc` in `work` (None when it is not there: pydantic's own
    tags, such as a union member's name, are dropped), and `loc` in the original file's
    indexes."""
    node = work
    parent: Any = None
    key: str | int = ""
    original: list[str | int] = []
    for part in loc:
        if isinstance(node, dict) and part in node:
            parent, key = node, part
            original.append(part)
            node = node[part]
        elif isinstance(node, dict) and part == "[key]":
            break  # the key itself is refused: it goes with its value
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            parent, key = node, part
            original.append(origin.get(id(node), list(range(len(node))))[part])
            node = node[part]
        else:
            break
    return parent, key, tuple(original)


def _original_loc(work: Any, loc: Loc, origin: dict[int, list[int]]) -> Loc:
    """`loc` (in `work`'s indexes) in the original file's indexes."""
    node = work
    out: list[str | int] = []
    for part in loc:
        if isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            out.append(origin.get(id(node), list(range(len(node))))[part])
            node = node[part]
        else:
            out.append(part)
            node = node.get(part) if isinstance(node, dict) else None
    return tuple(out)


_REF = re.compile(r"\b(rules|customers)\[(\d+)\]")


def _original_refs(message: str, work: Any, origin: dict[int, list[int]]) -> str:
    """A message naming `rules[k]` or `customers[k]`, with k an index of the original file."""
    def fix(m: re.Match[str]) -> str:
        items = work.get(m.group(1))
        k = int(m.group(2))
        if isinstance(items, list) and 0 <= k < len(items):
            k = origin.get(id(items), list(range(len(items))))[k]
        return f"{m.group(1)}[{k}]"
    return _REF.sub(fix, message)


def _delete(deletions: list[tuple[Any, str | int]], origin: dict[int, list[int]]) -> None:
    """Delete each (container, key), list items from the last so indexes stay right, keeping
    the original index of every list item that stays."""
    by_list: dict[int, tuple[list[Any], set[int]]] = {}
    for target, key in deletions:
        if isinstance(target, dict):
            target.pop(key, None)
        elif isinstance(target, list) and isinstance(key, int):
            by_list.setdefault(id(target), (target, set()))[1].add(key)
    for ident, (items, keys) in by_list.items():
        kept = origin.get(ident, list(range(len(items))))
        for k in sorted(keys, reverse=True):
            del items[k]
            del kept[k]
        origin[ident] = kept


def _unknown_key(loc: Loc) -> str:
    """An unknown key's problem, with the closest key allowed there."""
    model = _model_at(loc[:-1])
    hint = did_you_mean(str(loc[-1]), model.model_fields) if model is not None else ""
    if hint:
        return f"unknown key{hint}"
    return "unknown key (check its spelling against the policy reference)"


def _unwrap(tp: Any) -> Any:
    """The type inside `Annotated[...]` and `X | None`."""
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            tp = get_args(tp)[0]
        elif origin in (Union, UnionType):
            args = [a for a in get_args(tp) if a is not type(None)]
            if len(args) != 1:
                return tp
            tp = args[0]
        else:
            return tp


def _model_at(loc: Loc) -> type[BaseModel] | None:
    """The model whose keys are allowed at `loc` of a policy, or None."""
    tp: Any = PolicyDoc
    for part in loc:
        tp = _unwrap(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            field = tp.model_fields.get(str(part))
            if field is None:
                return None
            tp = field.annotation
        elif get_origin(tp) in (list, dict):
            tp = get_args(tp)[-1]
        else:
            return None
    tp = _unwrap(tp)
    return tp if isinstance(tp, type) and issubclass(tp, BaseModel) else None


# --------------------------------------------------------------------------- compiled policy


@dataclass(frozen=True, slots=True)
class CompiledRule:
    index: int
    name: str
    tier: str | None
    route: str | None
    suggest: tuple[str, ...]
    text_any: tuple[str, ...] | None
    text_all: tuple[str, ...] | None
    text_none: tuple[str, ...] | None
    text_regex: TextPattern | None
    whole_words: bool
    priority_in: frozenset[str] | None
    labels_any: frozenset[str] | None
    plan_in: frozenset[str] | None


@dataclass(frozen=True, slots=True)
class CompiledRequirement:
    tier: str
    field: str
    label: str
    min_length: int | None
    pattern: TextPattern | None
    one_of: frozenset[str] | None
    attachment: bool
    #: Required only when this field has a value (one of `when_one_of`, lower-cased, if set).
    when_field: str | None = None
    when_one_of: frozenset[str] | None = None


class Policy:
    """A validated policy, with the indexes the engine needs precomputed."""

    def __init__(
        self, doc: PolicyDoc, *, source: str, digest: str, files: Mapping[str, str] | None = None
    ) -> None:
        self.doc = doc
        #: Calendars (the built-in 24x7 included) and SLA targets.
        self.sla = compile_sla(doc.calendars, doc.sla, files or {})
        self.source = source
        #: sha256 of the policy text: recorded with every decision.
        self.digest = digest
        self.tiers: tuple[str, ...] = tuple(doc.tiers)
        self.rank: dict[str, int] = {t: i for i, t in enumerate(doc.tiers)}
        self.tier_label: dict[str, str] = {t: f"tier-{t.lower()}" for t in doc.tiers}
        self.request_label: dict[str, str] = {t: f"escalate-{t.lower()}" for t in doc.tiers}
        self.tier_by_label = {v: k for k, v in self.tier_label.items()}
        self.tier_by_request = {v: k for k, v in self.request_label.items()}
        self.default_tier = doc.default_tier
        unverified = doc.entitlement.unverified_max_tier
        if unverified is None:
            unverified = "L1" if "L1" in self.rank else doc.tiers[0]
        self.unverified_max_tier: str = unverified
        self.plans = doc.plans
        self.default_plan = doc.default_plan
        by_org: dict[str, str] = {}
        by_domain: dict[str, str] = {}
        by_email: dict[str, str] = {}
        self._customer_rank: dict[tuple[str, str], int] = {}
        for i, c in enumerate(doc.customers):
            m = c.match
            for kind, value, index in (
                ("organization", m.organization, by_org),
                ("email_domain", m.email_domain, by_domain),
                ("email", m.email, by_email),
            ):
                if value:
                    k = value.strip().lower().lstrip("@") if kind == "email_domain" else (
                        value.strip().lower()
                    )
                    if k not in index:
                        index[k] = c.plan
                        self._customer_rank[(kind, k)] = i
        self._by_org = by_org
        self._by_domain = by_domain
        self._by_email = by_email
        self.rules: tuple[CompiledRule, ...] = tuple(
            CompiledRule(
                index=i,
                name=r.name,
                tier=r.tier,
                route=r.route,
                suggest=tuple(r.suggest),
                text_any=_lower(r.when.text_any),
                text_all=_lower(r.when.text_all),
                text_none=_lower(r.when.text_none),
                text_regex=compile_pattern(r.when.text_regex, ignore_case=True)
                if r.when.text_regex
                else None,
                whole_words=r.when.whole_words,
                priority_in=_lowset(r.when.priority_in),
                labels_any=_lowset(r.when.labels_any),
                plan_in=frozenset(r.when.plan_in) if r.when.plan_in is not None else None,
            )
            for i, r in enumerate(doc.rules)
        )
        #: Every literal text term of every rule, found in one pass over a ticket's text by an
        #: Aho-Corasick automaton (pyahocorasick) instead of one substring scan per term.
        terms = sorted({
            t for r in self.rules for t in (*(r.text_any or ()), *(r.text_all or ()),
                                            *(r.text_none or ()))
        })
        #: Rules that need one of their text_any terms present, by term; rules without text_any
        #: are candidates for every ticket. Only candidates are evaluated, in policy order.
        by_term: dict[str, set[int]] = {}
        for r in self.rules:
            for t in r.text_any or ():
                by_term.setdefault(t, set()).add(r.index)
        self._rules_by_term = {t: frozenset(ix) for t, ix in by_term.items()}
        self._always = frozenset(r.index for r in self.rules if r.text_any is None)
        self._automaton: Any = None
        if terms:
            automaton = ahocorasick.Automaton(ahocorasick.STORE_ANY, ahocorasick.KEY_STRING)
            for term in terms:
                automaton.add_word(term, term)
            automaton.make_automaton()
            self._automaton = automaton
        #: For each tier, every requirement of that tier and of each tier below it, in order.
        cumulative: dict[str, tuple[CompiledRequirement, ...]] = {}
        acc: list[CompiledRequirement] = []
        for t in doc.tiers:
            for req in doc.documentation.get(t, ()):
                acc.append(
                    CompiledRequirement(
                        tier=t,
                        field=req.field,
                        label=req.label,
                        min_length=req.min_length,
                        pattern=compile_pattern(req.pattern) if req.pattern else None,
                        one_of=_lowset(req.one_of),
                        attachment=req.attachment,
                        when_field=req.when.field if req.when else None,
                        when_one_of=_lowset(req.when.one_of) if req.when else None,
                    )
                )
            cumulative[t] = tuple(acc)
        self.requirements = cumulative
        self.fields = doc.fields
        self.targets = doc.targets
        self.route_label: dict[str, str] = {
            r.route: f"tier-route-{r.route.lower()}" for r in doc.rules if r.route
        }
        self.route_by_label = {v: k for k, v in self.route_label.items()}
        #: Routes an agent may ask for by label (`rules[].by_label`): route -> `route-<name>`,
        #: in the policy's rule order.
        self.route_request_label: dict[str, str] = {
            r.route: f"route-{r.route.lower()}" for r in doc.rules if r.route and r.by_label
        }
        #: Each target's extra labels (`targets.<key>.labels`), lower-cased: a ticket carries
        #: them while in that tier or route.
        self.target_labels: dict[str, frozenset[str]] = {
            name: frozenset(label.lower() for label in t.labels)
            for name, t in doc.targets.items() if t.labels
        }
        fixed = {"tier-docs-missing", "tier-entitlement-exceeded", "tier-unverified"}
        self._managed = frozenset(
            [*self.tier_label.values(), *self.request_label.values(),
             *self.route_label.values(), *self.route_request_label.values(), *fixed,
             *(label for labels in self.target_labels.values() for label in labels)]
        )

    def terms_in(self, text: str) -> tuple[frozenset[str], frozenset[str]]:
        """The rule terms that occur in `text` (already lower-cased): anywhere, and as whole
        words (not preceded or followed by a letter or digit)."""
        if self._automaton is None:
            return frozenset(), frozenset()
        anywhere: set[str] = set()
        words: set[str] = set()
        last = len(text) - 1
        for end, term in self._automaton.iter(text):
            anywhere.add(term)
            if term in words:
                continue
            start = end - len(term) + 1
            if (start == 0 or not text[start - 1].isalnum()) and (
                end == last or not text[end + 1].isalnum()
            ):
                words.add(term)
        return frozenset(anywhere), frozenset(words)

    def candidate_rules(self, terms: frozenset[str]) -> list[CompiledRule]:
        """The rules that can match a text containing exactly `terms`, in policy order."""
        indices = set(self._always)
        for term in terms:
            hit = self._rules_by_term.get(term)
            if hit:
                indices.update(hit)
        return [self.rules[i] for i in sorted(indices)]

    def plan_for(self, organization: str | None, email: str | None) -> tuple[str | None, str]:
        """The customer's plan from `customers` (first match wins) and how it was found."""
        hits: list[tuple[int, str, str]] = []
        if organization:
            k = organization.strip().lower()
            if k in self._by_org:
                hits.append((self._customer_rank[("organization", k)], self._by_org[k],
                             f'organization "{organization}"'))
        if email:
            e = email.strip().lower()
            if e in self._by_email:
                hits.append((self._customer_rank[("email", e)], self._by_email[e], f"email {e}"))
            if "@" in e:
                d = e.rsplit("@", 1)[1]
                if d in self._by_domain:
                    hits.append((self._customer_rank[("email_domain", d)], self._by_domain[d],
                                 f"email domain {d}"))
        if hits:
            _, plan, how = min(hits)
            return plan, how
        return None, ""

    @property
    def jira_fields(self) -> dict[str, str]:
        """Policy field name -> Jira field id, for the fields mapped for Jira."""
        return {n: m.jira for n, m in self.fields.items() if m.jira}

    @property
    def zendesk_fields(self) -> dict[str, int]:
        """Policy field name -> Zendesk ticket field id, for the fields mapped for Zendesk."""
        return {n: m.zendesk for n, m in self.fields.items() if m.zendesk is not None}

    @property
    def managed_labels(self) -> frozenset[str]:
        """Every label or tag the engine may add or remove (what a connector watches)."""
        return self._managed

    def summary(self) -> str:
        d = self.doc
        return (
            f"{self.source}: OK: {len(d.tiers)} tiers ({', '.join(d.tiers)}), {len(d.plans)} plans,"
            f" {len(d.customers)} customers, {len(d.rules)} rules,"
            f" {sum(len(v) for v in d.documentation.values())} documentation requirements,"
            f" {len(d.targets)} targets"
        ) + self.sla.summary()


def _lower(values: Sequence[str] | None) -> tuple[str, ...] | None:
    return None if values is None else tuple(v.lower() for v in values)


def _lowset(values: Sequence[str] | None) -> frozenset[str] | None:
    return None if values is None else frozenset(v.lower() for v in values)


class _Refused(yaml.composer.ComposerError):
    """A YAML construct policies do not allow (an alias, too deep a nesting)."""


#: libyaml's parser and loader when PyYAML was built with it (the wheels are): about 8 times
#: faster than the pure-Python ones, which keeps the largest policy allowed under a second.
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_TOO_DEEP = f"nested deeper than {MAX_POLICY_DEPTH} levels (a policy needs about 6)"
_OPENS = (yaml.MappingStartEvent, yaml.SequenceStartEvent)
_CLOSES = (yaml.MappingEndEvent, yaml.SequenceEndEvent)


def _prescan(text: str) -> None:
    """Refuse aliases and deep nesting from the event stream, before any tree is built.

    An alias (`*name`) lets a few bytes stand for an exponential tree ("billion laughs": 506
    bytes took `policy check` to 9 GB); a policy never needs one, so it is refused where it
    occurs rather than bounded after expansion. The parser is not recursive; the composer and
    the validator are, so nesting is counted here first."""
    depth = 0
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, yaml.AliasEvent):
            raise _Refused(
                None, None,
                f"YAML aliases (*{event.anchor}) are not allowed in a policy: write the value"
                " out in full",
                cast(Any, event.start_mark),
            )
        if isinstance(event, _OPENS):
            depth += 1
            if depth > MAX_POLICY_DEPTH:
                raise _Refused(
                    None, None,
                    _TOO_DEEP,
                    cast(Any, event.start_mark),
                )
        elif isinstance(event, _CLOSES):
            depth -= 1


def _parse(text: str) -> tuple[yaml.Node | None, Any]:
    """The YAML node tree (for line numbers) and the data, from one bounded parse."""
    _prescan(text)
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    finally:
        loader.dispose()
    return node, data


def load_policy(
    text: str, *, source: str = "policy.yaml", files: Mapping[str, str] | None = None
) -> Policy:
    """Parse, validate and compile a policy; raise `PolicyError` listing every problem.

    `files` holds the text of each file the policy names (calendar ICS holidays), keyed by the
    path as written in the policy; the caller reads them (relative to the policy file)."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_POLICY_BYTES:
        raise PolicyError(source, [Problem(
            "", f"the file is {size} bytes, over the {MAX_POLICY_BYTES}-byte limit of a policy"
                " (split long customer lists across fewer, broader matches)")])
    try:
        return _load(text, source, files)
    except RecursionError:
        raise PolicyError(source, [Problem(
            "", "nested too deeply to read; a policy needs about 6 levels of nesting")]) from None


def _load(text: str, source: str, files: Mapping[str, str] | None) -> Policy:
    try:
        node, data = _parse(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        if "maximum nesting depth" in problem:  # libyaml's own bound (1000) met first
            problem = _TOO_DEEP
        message = (problem if isinstance(exc, _Refused) or problem == _TOO_DEEP
                   else f"not valid YAML: {problem}")
        raise PolicyError(source, [Problem("", message, line)]) from exc
    lines = _line_map(node)
    if not isinstance(data, dict):
        raise PolicyError(
            source, [Problem("", f"expected a mapping of policy keys, got {_show(data)}", 1)]
        )
    doc, found = _validate(data, files or {})
    if found:
        problems = [Problem(_path(loc), message, _line_for(lines, loc)) for loc, message in found]
        # In the order of the file; problems of the whole file (no line) first.
        problems.sort(key=lambda p: p.line or 0)
        raise PolicyError(source, problems)
    assert doc is not None
    sha = hashlib.sha256(text.encode("utf-8"))
    for name in sorted(files or {}):
        sha.update(b"\0" + name.encode("utf-8") + b"\0" + (files or {})[name].encode("utf-8"))
    return Policy(doc, source=source, digest=sha.hexdigest(), files=files)
