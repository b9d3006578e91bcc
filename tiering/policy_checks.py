"""The checks of meaning of a validated policy: names, regexes, rules that can never match.

`_semantic_errors(doc)` yields (key path, message) for each unknown tier, plan, field or target
name, invalid regex, reserved or repeated label and rule shadowed by an earlier one; the SLA
section's own checks are in tiering/sla_checks.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

from tiering.patterns import PatternError, compile_pattern
from tiering.policy_models import NAME_PATTERN, RESERVED_NAMES, PolicyDoc, When
from tiering.suggest import did_you_mean


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
