"""The decision engine: a ticket and the policy in, the desired state and its reasons out.

`decide(ticket, policy, now=...)` is pure and deterministic. It runs these steps, in this order,
one function each (`_current_tier` ... `_note`); the reasons they return are kept in step order:

1. current tier: the ticket's tier label (`tier-l1` ...); several means the highest wins.
2. request: the highest `escalate-lN` label an agent (or tierdesk, for a rule) added, and a
   `route-<name>` label an agent added for a route whose rule has `by_label: true`.
3. entitlement: the customer's plan (the vendor's organization record, else `customers`, else
   `default_plan`) and the highest tier it allows; no plan means unverified, at most
   `unverified_max_tier`. It comes before the target because rules can test it (`plan_in`).
4. target: a route request (it hands even a ticket in a tier to the route: every other managed
   label goes, the request label too), else the tier request if above the current tier, else
   the current tier, else the first matching rule, else `default_tier`. Rules only triage a
   ticket that has no tier yet and is not already routed. A rule with `route` hands the ticket
   to that target with
   `tier-route-<name>` (and the route's target labels) and no tier: the decision ends there.
5. cap: a target beyond the plan goes no higher than it (`tier-entitlement-exceeded`; a refusal
   when a request or a rule asked), and never below the current tier.
6. documentation gate: entering a tier needs every requirement of it and of the tiers below
   (a requirement with `when` only while its other field has the value it names); with
   something missing the ticket stops at the highest tier whose requirements are met, never below
   its current tier, gets `tier-docs-missing` and keeps the request label so it climbs by itself.
7. labels: exactly one tier label and the tier's target labels (`targets.<tier>.labels`), plus
   the request, `tier-docs-missing`, `tier-unverified` and `tier-entitlement-exceeded` labels the
   steps above call for; other managed labels (another tier's target labels included) go.
8. assignment: to the tier's target only when the tier changes.
9. note: an internal note when the checklist changes, and once for suggestions, refusals and
   completion.
10. the decision, saying "nothing to write" when it changes nothing.

No step lowers a tier (4, 5 and 6 each keep the current one as a floor), and the decision is
idempotent: deciding again on the state it produces changes nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, Protocol

from tiering import notes
from tiering.models import NOTE_MARKER, ChecklistItem, Decision, Ticket
from tiering.patterns import capped as match_text
from tiering.policy import CompiledRequirement, CompiledRule, Policy

DOCS_MISSING = "tier-docs-missing"
ENTITLEMENT_EXCEEDED = "tier-entitlement-exceeded"
UNVERIFIED = "tier-unverified"


def _values(ticket: Ticket, field: str) -> list[str]:
    """A documentation field's value as text items (several for a multi-select); [] if unset."""
    value = ticket.fields.get(field)
    if value is None or value == "" or value == ():
        return []
    if isinstance(value, tuple):
        return [str(v) for v in value]
    return [str(value).lower() if isinstance(value, bool) else str(value)]


def requirement_applies(req: CompiledRequirement, ticket: Ticket) -> bool:
    """A requirement with `when` applies only while its field has a value (one of `one_of`)."""
    if req.when_field is None:
        return True
    values = [v.strip().lower() for v in _values(ticket, req.when_field) if v.strip()]
    if req.when_one_of is None:
        return bool(values)
    return any(v in req.when_one_of for v in values)


def _requirement_problem(req: CompiledRequirement, ticket: Ticket) -> str | None:
    """None when the ticket meets `req` (or `req` does not apply to it), else what is wrong in
    a few words."""
    if not requirement_applies(req, ticket):
        return None
    if req.attachment:
        return None if ticket.attachments > 0 else "no attachment yet"
    value = ticket.fields.get(req.field)
    if value is None or value == "" or value == ():
        return "missing"
    values = [str(v) for v in value] if isinstance(value, tuple) else [str(value).lower()
                                                                        if isinstance(value, bool)
                                                                        else str(value)]
    text = ", ".join(values).strip()
    if not text:
        return "missing"
    if req.min_length is not None and len(text) < req.min_length:
        return f"too short: at least {req.min_length} characters needed"
    if req.pattern is not None and not req.pattern.search(match_text(text)):
        return f"not in the expected form ({req.pattern.pattern})"
    if req.one_of is not None and not any(v.strip().lower() in req.one_of for v in values):
        return "must be one of: " + ", ".join(sorted(req.one_of))
    return None


def _rule_matches(rule: CompiledRule, text: str, terms: frozenset[str], priority: str,
                  labels: frozenset[str], plan: str | None) -> bool:
    if rule.priority_in is not None and priority not in rule.priority_in:
        return False
    if rule.labels_any is not None and rule.labels_any.isdisjoint(labels):
        return False
    if rule.plan_in is not None and plan not in rule.plan_in:
        return False
    if rule.text_any is not None and terms.isdisjoint(rule.text_any):
        return False
    if rule.text_all is not None and not terms.issuperset(rule.text_all):
        return False
    if rule.text_none is not None and not terms.isdisjoint(rule.text_none):
        return False
    return rule.text_regex is None or rule.text_regex.search(text) is not None


def first_matching_rule(policy: Policy, ticket: Ticket, plan: str | None) -> CompiledRule | None:
    """The first rule whose conditions all hold for `ticket`, or None."""
    if not policy.rules:
        return None
    # Terms and regexes see the first MAX_MATCH_CHARS characters (subject first): the cost of
    # matching one ticket is bounded whatever a customer pastes (tiering/patterns.py).
    text = match_text(f"{ticket.subject}\n{ticket.description}").lower()
    priority = (ticket.priority or "").lower()
    labels = frozenset(label.lower() for label in ticket.labels)
    anywhere, words = policy.terms_in(text)
    for rule in policy.candidate_rules(anywhere):
        if _rule_matches(rule, text, words if rule.whole_words else anywhere, priority, labels,
                         plan):
            return rule
    return None


class DecideFunction(Protocol):
    """`decide`'s signature, for code that takes the engine as a parameter (the worker)."""

    def __call__(self, ticket: Ticket, policy: Policy, *, now: datetime) -> Decision: ...


def decide(ticket: Ticket, policy: Policy, *, now: datetime) -> Decision:
    """The desired state of `ticket` under `policy`, with the reasons, as of `now`.

    Each numbered step is one function below, run in the order of the module docstring. Each
    returns plain values and its reasons; decide names every value it hands on, and keeps the
    reasons in the order the steps ran.
    """
    labels = _labels_by_lower(ticket)
    current, why_current = _current_tier(policy, labels)                              # 1
    requested, why_requested = _requested_tier(policy, labels)                        # 2
    route_asked = _requested_route(policy, labels)
    plan, max_tier, why_plan = _entitlement(ticket, policy)                           # 3
    target, route, source, rule, why_target = _target(ticket, policy, labels, current,
                                                      requested, route_asked, plan)   # 4
    if target is None:  # routed: no tier, and the decision ends here
        return _routed(ticket, policy, labels, route, source, plan,
                       (*why_current, *why_requested, *why_plan, *why_target), now)
    capped, refusal, exceeded, why_cap = _cap(policy, current, plan, max_tier, target,
                                              source, rule)                           # 5
    resulting, checklist, missing, why_gate = _documentation_gate(ticket, policy, current,
                                                                  capped)             # 6
    labels_add, labels_remove = _labels(policy, labels, current, plan, exceeded, capped,
                                        resulting, missing)                           # 7
    assign, why_assign = _assignment(policy, current, resulting)                      # 8
    suggestions, comment, note_key = _note(ticket, policy, current, plan, rule, capped,
                                           refusal, resulting, checklist, missing)    # 9
    reasons = (*why_current, *why_requested, *why_plan, *why_target, *why_cap, *why_gate,
               *why_assign)
    if not (labels_add or labels_remove or assign or comment):                        # 10
        reasons += ("The ticket already matches the policy: nothing to write.",)
    return Decision(
        ticket=ticket.key, tier=resulting, previous_tier=current, route=None, plan=plan,
        labels_add=labels_add, labels_remove=labels_remove, assign=assign, missing=missing,
        checklist=checklist, suggestions=suggestions, comment=comment, note_key=note_key,
        reasons=reasons, decided_at=now,
    )


#: A step's reasons, in the words `Decision.reasons` shows them.
Reasons = tuple[str, ...]
#: The ticket's labels by their lower-case form, each with the spellings the ticket has.
Labels = dict[str, list[str]]
Checklist = tuple[ChecklistItem, ...]


def _labels_by_lower(ticket: Ticket) -> Labels:
    """The ticket's labels, found case-insensitively from here on."""
    by_lower: Labels = {}
    for label in ticket.labels:
        by_lower.setdefault(label.lower(), []).append(label)
    return by_lower


def _highest(policy: Policy, labels: Labels, tier_by: dict[str, str]) -> str | None:
    """The highest tier named by one of `labels` through `tier_by`, or None."""
    present = [t for lbl in labels if (t := tier_by.get(lbl)) is not None]
    return max(present, key=policy.rank.__getitem__) if present else None


def _current_tier(policy: Policy, labels: Labels) -> tuple[str | None, Reasons]:
    """Step 1: the ticket's tier label; of several, the highest."""
    current = _highest(policy, labels, policy.tier_by_label)
    if current is None:
        return None, ()
    return current, (f"Current tier is {current} (label {policy.tier_label[current]}).",)


def _requested_tier(policy: Policy, labels: Labels) -> tuple[str | None, Reasons]:
    """Step 2: the tier of the highest `escalate-lN` label."""
    requested = _highest(policy, labels, policy.tier_by_request)
    if requested is None:
        return None, ()
    label = policy.request_label[requested]
    return requested, (f"Escalation to {requested} was requested (label {label}).",)


def _requested_route(policy: Policy, labels: Labels) -> str | None:
    """Step 2: the route of a `route-<name>` label an agent added (of several, the first in
    the policy's rule order), for routes whose rule has `by_label`."""
    return next((route for route, label in policy.route_request_label.items()
                 if label in labels), None)


def _entitlement(ticket: Ticket, policy: Policy) -> tuple[str | None, str, Reasons]:
    """Step 3: the plan (None: unverified) and the highest tier it allows. The plan comes from
    the vendor's organization record, else the policy's `customers`, else `default_plan`; a
    plan the policy does not define is ignored."""
    customer = ticket.customer
    plan: str | None = None
    how = ""
    unknown_vendor_plan = None
    if customer.plan:
        if customer.plan in policy.plans:
            plan, how = customer.plan, "the customer's organization record"
        else:
            unknown_vendor_plan = customer.plan
    if plan is None:
        plan, how = policy.plan_for(customer.organization, customer.email)
    if plan is None and policy.default_plan is not None:
        plan, how = policy.default_plan, "the default plan"
    if plan is not None:
        max_tier = policy.plans[plan].max_tier
        allows = f"Plan {plan} (from {how}) allows up to {max_tier}."
        if unknown_vendor_plan is None:
            return plan, max_tier, (allows,)
        return plan, max_tier, (
            f'The organization record names plan "{unknown_vendor_plan}", which the policy'
            " does not define; it is ignored.",
            allows,
        )
    max_tier = policy.unverified_max_tier
    if unknown_vendor_plan is not None:
        return None, max_tier, (
            f'The organization record names plan "{unknown_vendor_plan}", which the policy'
            f" does not define; the customer is unverified and limited to {max_tier}.",
        )
    if customer.unidentified and not (customer.organization or customer.email):
        return None, max_tier, (
            f"{customer.unidentified}: the customer is unverified, limited to {max_tier}.",
        )
    who = ", ".join(
        x for x in (
            f'organization "{customer.organization}"' if customer.organization else "",
            f"email {customer.email}" if customer.email else "",
        ) if x
    ) or "no organization or email"
    return None, max_tier, (
        f"No plan matches the customer ({who}): unverified, limited to {max_tier}.",
    )


#: Where step 4's target came from: an escalation request, the current tier, a rule, the
#: default tier, or a route (a route rule now, or a route label from an earlier decision).
Source = Literal["request", "current", "rule", "default", "route", "routed earlier",
                 "route request"]


def _target(ticket: Ticket, policy: Policy, labels: Labels, current: str | None,
            requested: str | None, route_asked: str | None, plan: str | None,
            ) -> tuple[str | None, str | None, Source, CompiledRule | None, Reasons]:
    """Step 4: the target tier (None when routed), the route, where it came from and the rule.
    The request (unless below the current tier), else the current tier, else an earlier route,
    else the first matching rule (a tier or a route), else `default_tier`."""
    rank = policy.rank
    if route_asked is not None:
        where = f"from {current}" if current is not None else "from where it was"
        return None, route_asked, "route request", None, (
            f"An agent asked for route {route_asked} (label"
            f" {policy.route_request_label[route_asked]}): the ticket is handed {where} to"
            f" {route_asked} (label {policy.route_label[route_asked]}); no tier is set.",
        )
    if requested is not None:
        tier = requested if current is None or rank[requested] > rank[current] else current
        return tier, None, "request", None, ()
    if current is not None:
        return current, None, "current", None, ()
    # In the policy's rule order, not the label set's (a set's order changes with the
    # process's hash seed, so a ticket with two route labels must not depend on it).
    routed = [route for route, label in policy.route_label.items() if label in labels]
    if routed:
        return None, routed[0], "routed earlier", None, (
            f"Routed to {routed[0]} earlier (label {policy.route_label[routed[0]]});"
            " rules do not run again.",
        )
    rule = first_matching_rule(policy, ticket, plan)
    if rule is not None and rule.route is not None:
        return None, rule.route, "route", rule, (
            f'Rule "{rule.name}" matched: not a support request, routed to {rule.route}'
            f" (label {policy.route_label[rule.route]}); no tier is set.",
        )
    if rule is not None and rule.tier is not None:
        return rule.tier, None, "rule", rule, (f'Rule "{rule.name}" matched: tier {rule.tier}.',)
    return policy.default_tier, None, "default", rule, (
        f"No rule matched: default tier {policy.default_tier}.",
    )


def _routed(ticket: Ticket, policy: Policy, labels: Labels, route: str | None, source: Source,
            plan: str | None, reasons: Reasons, now: datetime) -> Decision:
    """Step 4 ends the decision for a routed ticket: no tier; a route rule or an agent's route
    request adds the route's label (and the route's target labels) and assigns the route's
    target, a ticket routed earlier is left as it is. A route request also removes every other
    managed label, its own included."""
    assert route is not None
    if source == "routed earlier":
        return Decision(ticket=ticket.key, tier=None, previous_tier=None, route=route,
                        plan=plan, reasons=reasons, decided_at=now)
    want = {policy.route_label[route], *policy.target_labels.get(route, ())}
    labels_add = tuple(sorted(w for w in want if w not in labels))
    if source != "route request":
        return Decision(ticket=ticket.key, tier=None, previous_tier=None, route=route,
                        plan=plan, labels_add=labels_add, assign=route, reasons=reasons,
                        decided_at=now)
    # An agent's route request: every other managed label goes (the tier, requests, flags and
    # the request itself); assigned to the route unless the ticket was on it already.
    labels_remove = tuple(sorted(
        original
        for lbl, originals in labels.items()
        if lbl in policy.managed_labels
        for original in originals
        # a wanted label stays; of several case variants, only the canonical one stays
        if lbl not in want or (original != lbl and lbl in originals)
    ))
    previous = _highest(policy, labels, policy.tier_by_label)
    already = policy.route_label[route] in labels
    return Decision(ticket=ticket.key, tier=None, previous_tier=previous, route=route,
                    plan=plan, labels_add=labels_add, labels_remove=labels_remove,
                    assign=None if already else route, reasons=reasons, decided_at=now)


def _cap(policy: Policy, current: str | None, plan: str | None, max_tier: str, target: str,
         source: Source, rule: CompiledRule | None) -> tuple[str, str | None, bool, Reasons]:
    """Step 5: the capped tier, the refusal (a request or rule denied, for the note) and whether
    the target is beyond the plan (`tier-entitlement-exceeded`). A target beyond `max_tier`
    goes no higher than it, or stays at a current tier already above it."""
    rank = policy.rank
    if rank[target] <= rank[max_tier]:
        return target, None, False, ()
    capped = current if current is not None and rank[current] > rank[max_tier] else max_tier
    whose = f"plan {plan}" if plan is not None else "an unverified customer"
    if source not in ("request", "rule"):
        return capped, None, True, (
            f"{target} is beyond what {whose} allows ({max_tier}); tierdesk does not"
            " lower a tier, so it stays.",
        )
    outcome = (
        f"the ticket stays in {capped}" if capped == current
        else f"it goes no higher than {capped}"
    )
    asked = "the escalation request was refused" if source == "request" else (
        f'rule "{rule.name}" asked for it' if rule is not None else "capped"
    )
    refusal = f"{target} is beyond what {whose} allows ({max_tier}): {asked}; {outcome}."
    return capped, refusal, True, (refusal,)


def _documentation_gate(ticket: Ticket, policy: Policy, current: str | None, capped: str,
                        ) -> tuple[str, Checklist, Checklist, Reasons]:
    """Step 6: the tier the ticket ends in, the checklist and its missing items (both empty
    unless something holds the ticket back). Entering `capped` needs its documentation and that
    of every tier below; with something missing the ticket stops at the highest tier whose
    requirements are met, never below `current`."""
    rank = policy.rank
    checklist: Checklist = ()
    missing: Checklist = ()
    resulting = capped
    reasons: list[str] = []
    if current is None or rank[capped] > rank[current]:
        reqs = [r for r in policy.requirements[capped] if requirement_applies(r, ticket)]
        problems = [_requirement_problem(r, ticket) for r in reqs]
        if problems.count(None) != len(problems):  # something is unmet
            checklist = tuple(
                ChecklistItem(tier=r.tier, field=r.field, label=r.label,
                              done=problem is None, problem=problem)
                for r, problem in zip(reqs, problems, strict=True)
            )
            missing = tuple(i for i in checklist if not i.done)
            lowest_failed = min(rank[i.tier] for i in missing)
            highest_met = policy.tiers[max(lowest_failed - 1, 0)]
            floor_rank = rank[current] if current is not None else 0
            resulting = policy.tiers[max(min(rank[highest_met], rank[capped]), floor_rank)]
            if resulting == capped:  # even the lowest tier has unmet requirements
                checklist, missing = (), ()
            else:
                reasons.append(
                    f"{capped} needs documentation that is missing: "
                    + "; ".join(f"{i.label} ({i.problem})" for i in missing)
                    + f". The ticket stays in {resulting} until it is complete."
                )
    if resulting != current and not missing and current is not None:
        reasons.append(f"Escalated from {current} to {resulting}.")
    elif current is None:
        reasons.append(f"First triage: tier {resulting}.")
    return resulting, checklist, missing, tuple(reasons)


def _labels(policy: Policy, labels: Labels, current: str | None, plan: str | None,
            exceeded: bool, capped: str, resulting: str, missing: Checklist,
            ) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Step 7: the managed labels to add and to remove: one tier label; the request label and
    `tier-docs-missing` while documentation is missing; `tier-unverified` without a plan;
    `tier-entitlement-exceeded` while the target is beyond the plan, kept until the tier
    changes; the resulting tier's target labels."""
    want: set[str] = {policy.tier_label[resulting], *policy.target_labels.get(resulting, ())}
    if missing:
        want.add(policy.request_label[capped])
        want.add(DOCS_MISSING)
    if plan is None:
        want.add(UNVERIFIED)
    if exceeded or (ENTITLEMENT_EXCEEDED in labels and resulting == current):
        want.add(ENTITLEMENT_EXCEEDED)
    drop = policy.managed_labels
    labels_add = tuple(sorted(w for w in want if w not in labels))
    labels_remove = tuple(sorted(
        original
        for lbl, originals in labels.items()
        if lbl in drop
        for original in originals
        # a wanted label stays; of several case variants, only the canonical one stays
        if lbl not in want or (original != lbl and lbl in originals)
    ))
    return labels_add, labels_remove


def _assignment(policy: Policy, current: str | None, tier: str) -> tuple[str | None, Reasons]:
    """Step 8: assign to the tier's target only when the tier changes (first triage
    included), so an agent's own reassignment within a tier stands."""
    if tier == current:
        return None, ()
    if tier in policy.targets:
        return tier, (f"Assigned to the {tier} target.",)
    return None, (f"No target is set for {tier}: assignment left as it is.",)


def _note(ticket: Ticket, policy: Policy, current: str | None, plan: str | None,
          rule: CompiledRule | None, capped: str, refusal: str | None, resulting: str,
          checklist: Checklist, missing: Checklist,
          ) -> tuple[tuple[str, ...], str | None, str | None]:
    """Step 9: the rule's suggestions, and the internal note with its key when one is due:
    when the checklist changed, and once for suggestions, a refusal, completed documentation
    or a new unverified customer."""
    suggestions = rule.suggest if rule is not None and rule.tier == resulting else ()
    completed = (
        resulting != current and current is not None and not missing
        and ticket.last_note_key is not None and bool(policy.requirements[resulting])
    )
    checklist_key = (
        notes.key("checklist", capped, *(f"{i.field}={int(i.done)}" for i in checklist))
        if missing else None
    )
    one_shot = bool(suggestions) or refusal is not None or completed or (
        current is None and plan is None
    )
    if not ((missing and checklist_key != ticket.last_note_key) or one_shot):
        return suggestions, None, None
    body = notes.body(ticket, policy, resulting, capped, checklist, suggestions, refusal,
                      completed, plan, rule)
    note_key = checklist_key or notes.key("note", body)
    return suggestions, f"{body}\n\n{NOTE_MARKER}{note_key}", note_key
