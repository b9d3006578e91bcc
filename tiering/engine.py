"""The decision engine: a ticket and the policy in, the desired state and its reasons out.

`decide(ticket, policy, now=...)` is pure and deterministic. The steps, in order:

1. current tier: the ticket's tier label (`tier-l1` ...); several means the highest wins.
2. request: the highest `escalate-lN` label an agent (or tierdesk, for a rule) added.
3. target: the request, else the current tier, else the first matching rule, else `default_tier`.
   Rules only triage a ticket that has no tier yet (and that is not already routed).
4. entitlement: the customer's plan caps the target (`tier-entitlement-exceeded`); no plan means
   unverified (`tier-unverified`, capped at `unverified_max_tier`).
5. documentation gate: entering a tier needs every requirement of it and of the tiers below; with
   something missing the ticket stops at the highest tier whose requirements are met, never below
   its current tier, gets `tier-docs-missing` and keeps the request label so it climbs by itself.
6. never lower a tier; exactly one tier label; assign to the tier's target only when it changes.
7. a rule with `route` hands the ticket to that target with `tier-route-<name>` and no tier.
8. an internal note when the checklist changes, and once for suggestions, refusals and completion.
9. idempotent: deciding again on the state this decision produces changes nothing.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from tiering.models import NOTE_MARKER, ChecklistItem, Decision, Ticket
from tiering.patterns import capped as match_text
from tiering.policy import CompiledRequirement, CompiledRule, Policy

DOCS_MISSING = "tier-docs-missing"
ENTITLEMENT_EXCEEDED = "tier-entitlement-exceeded"
UNVERIFIED = "tier-unverified"


def _requirement_problem(req: CompiledRequirement, ticket: Ticket) -> str | None:
    """None when the ticket meets `req`, else what is wrong in a few words."""
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


def _key(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:16]


def decide(ticket: Ticket, policy: Policy, *, now: datetime) -> Decision:
    """The desired state of `ticket` under `policy`, with the reasons, as of `now`."""
    rank = policy.rank
    reasons: list[str] = []
    by_lower: dict[str, list[str]] = {}
    for label in ticket.labels:
        by_lower.setdefault(label.lower(), []).append(label)

    # 1. current tier
    present_tiers = [t for lbl in by_lower if (t := policy.tier_by_label.get(lbl)) is not None]
    current = max(present_tiers, key=rank.__getitem__) if present_tiers else None
    if current is not None:
        reasons.append(f"Current tier is {current} (label {policy.tier_label[current]}).")

    # 2. requests
    present_requests = [
        t for lbl in by_lower if (t := policy.tier_by_request.get(lbl)) is not None
    ]
    requested = max(present_requests, key=rank.__getitem__) if present_requests else None
    if requested is not None:
        reasons.append(
            f"Escalation to {requested} was requested (label {policy.request_label[requested]})."
        )

    # 4a. entitlement (needed by rules with plan_in, so resolved before triage)
    plan: str | None = None
    how = ""
    unknown_vendor_plan = None
    if ticket.customer.plan:
        if ticket.customer.plan in policy.plans:
            plan, how = ticket.customer.plan, "the customer's organization record"
        else:
            unknown_vendor_plan = ticket.customer.plan
    if plan is None:
        plan, how = policy.plan_for(ticket.customer.organization, ticket.customer.email)
    if plan is None and policy.default_plan is not None:
        plan, how = policy.default_plan, "the default plan"
    if plan is not None:
        if unknown_vendor_plan is not None:
            reasons.append(
                f'The organization record names plan "{unknown_vendor_plan}", which the policy'
                " does not define; it is ignored."
            )
        max_tier = policy.plans[plan].max_tier
        reasons.append(f"Plan {plan} (from {how}) allows up to {max_tier}.")
    else:
        max_tier = policy.unverified_max_tier
        who = ", ".join(
            x for x in (
                f'organization "{ticket.customer.organization}"'
                if ticket.customer.organization else "",
                f"email {ticket.customer.email}" if ticket.customer.email else "",
            ) if x
        ) or "no organization or email"
        if unknown_vendor_plan is not None:
            reasons.append(
                f'The organization record names plan "{unknown_vendor_plan}", which the policy'
                f" does not define; the customer is unverified and limited to {max_tier}."
            )
        elif ticket.customer.unidentified and not (
            ticket.customer.organization or ticket.customer.email
        ):
            reasons.append(
                f"{ticket.customer.unidentified}: the customer is unverified, limited to"
                f" {max_tier}."
            )
        else:
            reasons.append(
                f"No plan matches the customer ({who}): unverified, limited to {max_tier}."
            )

    # 3 + 7. target, from request, current tier, rule or default
    route_present = [r for lbl in by_lower if (r := policy.route_by_label.get(lbl)) is not None]
    rule: CompiledRule | None = None
    source: str
    if requested is not None:
        target = requested if current is None or rank[requested] > rank[current] else current
        source = "request"
    elif current is not None:
        target, source = current, "current"
    elif route_present:
        reasons.append(
            f"Routed to {route_present[0]} earlier (label {policy.route_label[route_present[0]]});"
            " rules do not run again."
        )
        return Decision(ticket=ticket.key, tier=None, previous_tier=None, route=route_present[0],
                        plan=plan, reasons=tuple(reasons), decided_at=now)
    else:
        rule = first_matching_rule(policy, ticket, plan)
        if rule is not None and rule.route is not None:
            return _route(ticket, policy, rule, plan, reasons, now)
        if rule is not None and rule.tier is not None:
            target, source = rule.tier, "rule"
            reasons.append(f'Rule "{rule.name}" matched: tier {rule.tier}.')
        else:
            target, source = policy.default_tier, "default"
            reasons.append(f"No rule matched: default tier {target}.")

    # 4b. cap at the entitlement (never below the current tier)
    refusal: str | None = None
    capped = target
    if rank[target] > rank[max_tier]:
        floor = current if current is not None and rank[current] > rank[max_tier] else max_tier
        capped = floor
        whose = f"plan {plan}" if plan is not None else "an unverified customer"
        if source in ("request", "rule"):
            outcome = (
                f"the ticket stays in {capped}" if capped == current
                else f"it goes no higher than {capped}"
            )
            asked = "the escalation request was refused" if source == "request" else (
                f'rule "{rule.name}" asked for it' if rule is not None else "capped"
            )
            refusal = f"{target} is beyond what {whose} allows ({max_tier}): {asked}; {outcome}."
            reasons.append(refusal)
        else:
            reasons.append(
                f"{target} is beyond what {whose} allows ({max_tier}); tierdesk does not"
                " lower a tier, so it stays."
            )
    exceeded_now = rank[target] > rank[max_tier]

    # 5. documentation gate for any tier being entered
    checklist: tuple[ChecklistItem, ...] = ()
    missing: tuple[ChecklistItem, ...] = ()
    resulting = capped
    if current is None or rank[capped] > rank[current]:
        reqs = policy.requirements[capped]
        problems = {id(r): _requirement_problem(r, ticket) for r in reqs}
        if any(p is not None for p in problems.values()):
            checklist = tuple(
                ChecklistItem(tier=r.tier, field=r.field, label=r.label,
                              done=problems[id(r)] is None, problem=problems[id(r)])
                for r in reqs
            )
            missing = tuple(i for i in checklist if not i.done)
            failed_tiers = {i.tier for i in missing}
            lowest_failed = min(rank[t] for t in failed_tiers)
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
    docs_missing = bool(missing)
    if resulting != current and not docs_missing and current is not None:
        reasons.append(f"Escalated from {current} to {resulting}.")
    elif current is None:
        reasons.append(f"First triage: tier {resulting}.")

    # 6. labels
    want: set[str] = {policy.tier_label[resulting]}
    drop = policy.managed_labels
    if docs_missing:
        want.add(policy.request_label[capped])
        want.add(DOCS_MISSING)
    tier_changes = resulting != current
    if plan is None:
        want.add(UNVERIFIED)
    if exceeded_now or (ENTITLEMENT_EXCEEDED in by_lower and not tier_changes):
        want.add(ENTITLEMENT_EXCEEDED)

    labels_add = tuple(sorted(w for w in want if w not in by_lower))
    labels_remove = tuple(sorted(
        original
        for lbl, originals in by_lower.items()
        if lbl in drop
        for original in originals
        # a wanted label stays; of several case variants, only the canonical one stays
        if lbl not in want or (original != lbl and lbl in originals)
    ))

    # assignment only when the tier changes (first triage included)
    assign = resulting if tier_changes and resulting in policy.targets else None
    if assign is not None:
        reasons.append(f"Assigned to the {resulting} target.")
    elif tier_changes:
        reasons.append(f"No target is set for {resulting}: assignment left as it is.")

    # 8. the internal note
    suggestions = rule.suggest if rule is not None and rule.tier == resulting else ()
    completed = (
        tier_changes and current is not None and not docs_missing
        and ticket.last_note_key is not None and bool(policy.requirements[resulting])
    )
    checklist_key = (
        _key("checklist", capped, *(f"{i.field}={int(i.done)}" for i in checklist))
        if docs_missing else None
    )
    one_shot = bool(suggestions) or refusal is not None or completed or (
        current is None and plan is None
    )
    comment: str | None = None
    note_key: str | None = None
    if (docs_missing and checklist_key != ticket.last_note_key) or one_shot:
        body = _note(ticket, policy, resulting, capped, checklist, suggestions, refusal,
                     completed, plan, rule)
        note_key = checklist_key or _key("note", body)
        comment = f"{body}\n\n{NOTE_MARKER}{note_key}"

    if not (labels_add or labels_remove or assign or comment):
        reasons.append("The ticket already matches the policy: nothing to write.")

    return Decision(
        ticket=ticket.key,
        tier=resulting,
        previous_tier=current,
        route=None,
        plan=plan,
        labels_add=labels_add,
        labels_remove=labels_remove,
        assign=assign,
        missing=missing,
        checklist=checklist,
        suggestions=suggestions,
        comment=comment,
        note_key=note_key,
        reasons=tuple(reasons),
        decided_at=now,
    )


def _route(ticket: Ticket, policy: Policy, rule: CompiledRule, plan: str | None,
           reasons: list[str], now: datetime) -> Decision:
    assert rule.route is not None
    label = policy.route_label[rule.route]
    reasons.append(
        f'Rule "{rule.name}" matched: not a support request, routed to {rule.route}'
        f" (label {label}); no tier is set."
    )
    return Decision(
        ticket=ticket.key,
        tier=None,
        previous_tier=None,
        route=rule.route,
        plan=plan,
        labels_add=(label,) if label not in {x.lower() for x in ticket.labels} else (),
        assign=rule.route,
        reasons=tuple(reasons),
        decided_at=now,
    )


def _note(ticket: Ticket, policy: Policy, tier: str, target: str,
          checklist: tuple[ChecklistItem, ...], suggestions: tuple[str, ...],
          refusal: str | None, completed: bool, plan: str | None,
          rule: CompiledRule | None) -> str:
    """The internal note an agent reads: what is needed, what is done, and why."""
    lines: list[str] = []
    if checklist:
        done = sum(1 for i in checklist if i.done)
        lines.append(
            f"tierdesk: {target} needs documentation before this ticket can move up"
            f" (it stays in {tier} for now)."
        )
        lines.append("")
        lines.append(f"Checklist for {target} ({done} of {len(checklist)} done):")
        for item in checklist:
            mark = "✔" if item.done else "✘"
            tail = "" if item.done else f" — {item.problem}"
            lines.append(f"{mark} {item.label}{tail}")
        lines.append("")
        lines.append(f"Complete the missing items; the ticket moves to {target} by itself.")
    elif completed:
        lines.append(
            f"tierdesk: documentation for {tier} is complete; the ticket is now in {tier}."
        )
    else:
        lines.append(f"tierdesk: ticket {ticket.key} is in {tier}.")
    if refusal is not None:
        lines.append("")
        lines.append(f"Entitlement: {refusal}")
    if plan is None:
        lines.append("")
        lines.append(
            "Customer not verified: no support plan matches this customer. Verify the"
            f" entitlement before escalating beyond {policy.unverified_max_tier}."
        )
    if suggestions:
        lines.append("")
        lines.append("Self-help to offer the customer:")
        lines.extend(f"- {s}" for s in suggestions)
    why = []
    if rule is not None:
        why.append(f'rule "{rule.name}"')
    if plan is not None:
        why.append(f"plan {plan} (up to {policy.plans[plan].max_tier})")
    if why:
        lines.append("")
        lines.append("Why: " + "; ".join(why) + ".")
    return "\n".join(lines)
