"""Properties of tiering.sla_actions.apply_clocks over random tickets, histories and fired sets:
idempotence, nothing fires before it is crossed, escalation never skips a gate."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.tiering.sla_actions_support import (
    DOCS_L2,
    applied,
    at,
    make_policy,
    ticket,
)
from tiering import Policy, Ticket, decide
from tiering.engine import requirement_applies
from tiering.sla import SlaReport, TicketHistory, TierEntry, sla_for
from tiering.sla_actions import DUE_DATE, DUE_TIME, SlaOutcome, apply_clocks, threshold_key

POLICIES = {
    "escalate": make_policy(),
    "notify-assign": make_policy(
        on_warning={"notify": {"url": "https://hooks.example.com/w"}, "assign": "L1"},
        on_breach={"escalate": "next", "notify": {"url": "https://hooks.example.com/b"},
                   "note": False},
    ),
    "two-warnings": make_policy(warn_at=[0.5, 0.9]),
}
ORGS = ["Acme Corp", "Acme Corp", "Initech", None]  # premium (L4), basic (L1), unverified (L1)
STATUSES = ["new", "open", "pending", "hold", "solved"]


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Policy, Ticket, TicketHistory, float]:
    policy = POLICIES[draw(st.sampled_from(sorted(POLICIES)))]
    tier = draw(st.sampled_from(["L0", "L1", "L2", "L3", "L4"]))
    docs = draw(st.sampled_from([{}, DOCS_L2, DOCS_L2, {**DOCS_L2, "category": "bugfix"}]))
    due = draw(st.sampled_from([{}, {DUE_DATE: None}, {DUE_TIME: "2026-11-17T08:00Z"},
                                {DUE_DATE: "2026-11-17"}]))
    labels = tuple(draw(st.sets(st.sampled_from(["sla-warning", "escalate-l3", "x"]))))
    if tier == "L4":
        labels += ("vendor-engaged",)
    t = ticket(tier=tier, org=draw(st.sampled_from(ORGS)), fields={**docs, **due},
               labels=labels, attachments=draw(st.integers(0, 1)),
               priority=draw(st.sampled_from(["normal", "urgent"])))
    changes = draw(st.lists(st.tuples(st.floats(0.1, 60), st.sampled_from(STATUSES)),
                            max_size=4))
    tier_at = draw(st.floats(0, 10))
    reply = draw(st.none() | st.floats(0, 5))
    points = [(at(h), s) for h, s in changes]
    h = TicketHistory.from_transitions(
        at(0), points, initial="open", tiers=(TierEntry(tier, at(tier_at)),),
        first_reply_at=None if reply is None else at(reply),
    )
    now = draw(st.floats(max(tier_at, max((c[0] for c in changes), default=0)), 130))
    return policy, t, h, now


def _report(policy: Policy, t: Ticket, h: TicketHistory, now_h: float) -> SlaReport:
    d = decide(t, policy, now=at(now_h))
    return sla_for(h, policy.sla, plan=d.plan, tier=d.previous_tier or d.tier,
                   priority=t.priority, now=at(now_h))


def _all_keys(report: SlaReport) -> list[str]:
    return sorted(
        threshold_key(c.clock, c.started_at, f)
        for c in report.clocks
        for f in (*_fractions(report), 1.0)
    )


def _fractions(report: SlaReport) -> tuple[float, ...]:
    return (0.5, 0.75, 0.9)


def _run(policy: Policy, t: Ticket, report: SlaReport, fired: frozenset[str], now_h: float
         ) -> SlaOutcome:
    return apply_clocks(t, policy, decide(t, policy, now=at(now_h)), report, fired=fired,
                        now=at(now_h))


SETTINGS = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(scenarios(), st.data())
def test_recording_the_fired_keys_makes_the_next_run_add_nothing(scenario, data) -> None:
    policy, t, h, now_h = scenario
    report = _report(policy, t, h, now_h)
    fired = frozenset(data.draw(st.sets(st.sampled_from(_all_keys(report))))
                      if report.clocks else set())
    out = _run(policy, t, report, fired, now_h)
    kind = "date" if DUE_DATE in t.fields else "time"
    after = applied(t, out.decision, due_kind=kind)
    base_after = decide(after, policy, now=at(now_h))
    again = apply_clocks(after, policy, base_after, report, fired=fired | out.fired,
                         now=at(now_h))
    assert again.fired == frozenset()
    assert again.notices == ()
    assert again.decision.sla_note_key is None
    assert not again.decision.due_write
    # Nothing is added to what the engine alone decides on that state.
    assert again.decision.labels_add == base_after.labels_add
    assert again.decision.labels_remove == base_after.labels_remove
    assert again.decision.assign == base_after.assign
    assert again.decision.comment == base_after.comment
    # And the same inputs give the same outcome (determinism).
    assert _run(policy, t, report, fired, now_h) == out


@SETTINGS
@given(scenarios(), st.data())
def test_only_crossed_thresholds_not_yet_fired_fire(scenario, data) -> None:
    policy, t, h, now_h = scenario
    report = _report(policy, t, h, now_h)
    fired = frozenset(data.draw(st.sets(st.sampled_from(_all_keys(report))))
                      if report.clocks else set())
    out = _run(policy, t, report, fired, now_h)
    crossed = {
        threshold_key(c.clock, c.started_at, th.fraction)
        for c in report.clocks
        if c.state != "stopped"
        for th in c.crossed
        if th.at <= at(now_h)
    }
    assert out.fired <= crossed
    assert out.fired.isdisjoint(fired)
    assert out.fired == crossed - fired  # every new crossing is recorded, once
    assert set(out.decision.sla_fired) == out.fired
    for notice in out.notices:
        assert notice.notice_key.split("|", 1)[1] in out.fired
    assert len({n.notice_key for n in out.notices}) == len(out.notices)
    event("fired" if out.fired else "nothing fired")
    if not out.fired:
        assert out.decision.sla_note_key is None and not out.notices


@SETTINGS
@given(scenarios(), st.data())
def test_escalation_never_skips_a_gate(scenario, data) -> None:
    policy, t, h, now_h = scenario
    report = _report(policy, t, h, now_h)
    fired = frozenset(data.draw(st.sets(st.sampled_from(_all_keys(report))))
                      if report.clocks else set())
    base = decide(t, policy, now=at(now_h))
    out = _run(policy, t, report, fired, now_h)
    d = out.decision
    if base.tier is None:
        assert d.tier is None
        return
    assert d.tier is not None
    rank = policy.rank
    assert rank[base.tier] <= rank[d.tier] <= rank[base.tier] + 1
    event("raised one tier" if d.tier != base.tier else "tier kept")
    if d.tier != base.tier:
        # Raised one tier: the plan allows it and every requirement up to it is met ...
        assert base.previous_tier is None or rank[base.tier] == rank[base.previous_tier]
        assert rank[d.tier] <= rank[policy.plans[d.plan].max_tier if d.plan
                                    else policy.unverified_max_tier]
        for tier in policy.tiers[: rank[d.tier] + 1]:
            for req in policy.requirements[tier]:
                if requirement_applies(req, t):
                    value = t.attachments if req.attachment else t.fields.get(req.field)
                    assert value not in (None, "", 0, ()), (tier, req.field)
        # ... exactly what an agent's request label would have got.
        asked = replace(t, labels=t.labels | {policy.request_label[d.tier]})
        assert decide(asked, policy, now=at(now_h)).tier == d.tier
        assert any(c.action.escalate == "next" for c in out.crossings)
