"""SLA actions (tiering/sla_actions.py): labels, notes, escalation through the gates, assignment,
notices and the due time, case by case."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.tiering.sla_actions_support import (
    DOCS_L2,
    T0,
    H,
    applied,
    at,
    history,
    make_policy,
    report_for,
    ticket,
)
from tiering import decide
from tiering.models import note_key_in
from tiering.sla import TicketHistory
from tiering.sla_actions import (
    DUE_DATE,
    DUE_TIME,
    SLA_MARKER,
    apply_clocks,
    duration,
    sla_note_keys_in,
    threshold_key,
)

START = int(T0.timestamp())
HOOK = "https://hooks.example.com/sla"


def key(clock: str, suffix: str, start_h: float = 0.0) -> str:
    return f"{clock}@{START + int(start_h * H)}:{suffix}"


@dataclass
class Case:
    name: str
    now: float
    history: TicketHistory = field(default_factory=lambda: history((0, "open"), reply=0.1))
    ticket: dict[str, Any] = field(default_factory=dict)
    sla: dict[str, Any] = field(default_factory=dict)
    fired: tuple[str, ...] = ()
    # expectations
    new_fired: tuple[str, ...] = ()
    labels_add: tuple[str, ...] = ()
    labels_remove: tuple[str, ...] = ()
    tier: str | None = "L1"
    assign: str | None = None
    note: tuple[str, ...] = ()  # substrings of the comment; () = no SLA note
    notices: int = 0
    due: str | None = None  # the value written (date or UTC minute), "clear", or None: no write


CASES = [
    Case("nothing crossed yet", now=2.5),
    Case("time in tier warning at 75 %", now=3.25,
         new_fired=(key("time_in_tier", "warn0.75"),), labels_add=("sla-warning",),
         note=("time in tier clock of ticket SUP-1 passed 75%", "Elapsed 3h 15m of 4h",
               "due 2026-11-16 12:00 UTC", "sla.plans.premium.tiers.L1.time_in_tier")),
    Case("the same warning, already fired: nothing", now=3.5,
         fired=(key("time_in_tier", "warn0.75"),)),
    Case("breach escalates, held by the documentation gate", now=4.5,
         fired=(key("time_in_tier", "warn0.75"),),
         new_fired=(key("time_in_tier", "breach"),),
         labels_add=("escalate-l2", "sla-breached", "tier-docs-missing"),
         note=("is breached", "held by the documentation gate", "Steps to reproduce (missing)",
               "Checklist for L2")),
    Case("breach escalates one tier when documented", now=4.5,
         ticket={"fields": DOCS_L2}, fired=(key("time_in_tier", "warn0.75"),),
         new_fired=(key("time_in_tier", "breach"),),
         labels_add=("sla-breached", "tier-l2"), labels_remove=("tier-l1",), tier="L2",
         assign="L2", note=("Escalated from L1 to L2",)),
    Case("breach refused by the entitlement gate (basic allows L1)", now=4.5,
         ticket={"org": "Initech", "fields": DOCS_L2}, fired=(key("time_in_tier", "warn0.75"),),
         new_fired=(key("time_in_tier", "breach"),),
         labels_add=("sla-breached", "tier-entitlement-exceeded"),
         note=("refused by the entitlement gate", "beyond what plan basic allows (L1)")),
    Case("warning and breach together: only the breach acts", now=5,
         ticket={"fields": DOCS_L2},
         new_fired=(key("time_in_tier", "warn0.75"), key("time_in_tier", "breach")),
         labels_add=("sla-breached", "tier-l2"), labels_remove=("tier-l1",), tier="L2",
         assign="L2", note=("is breached",)),
    Case("two clocks breach: one tier only", now=25,
         ticket={"fields": DOCS_L2},
         new_fired=(key("resolution", "warn0.75"), key("resolution", "breach"),
                    key("time_in_tier", "warn0.75"), key("time_in_tier", "breach")),
         labels_add=("sla-breached", "tier-l2"), labels_remove=("tier-l1",), tier="L2",
         assign="L2", note=("resolution target", "time in tier target")),
    Case("highest tier: no escalation, said in the note", now=121,
         history=history((0, "open"), reply=0.1, tier="L4"),
         ticket={"tier": "L4", "labels": ("vendor-engaged",)},
         fired=(key("time_in_tier", "warn0.75"),),
         new_fired=(key("time_in_tier", "breach"),), labels_add=("sla-breached",), tier="L4",
         note=("L4 is the highest tier",)),
    Case("a paused clock keeps its crossed threshold and acts on it", now=4,
         history=history((0, "open"), (3.5, "pending"), reply=0.1),
         new_fired=(key("time_in_tier", "warn0.75"),), labels_add=("sla-warning",),
         note=("passed 75%",)),
    Case("a solved ticket acts on nothing", now=30,
         history=history((0, "open"), (29, "solved"), reply=0.1)),
    Case("answered first response does not fire; unanswered does", now=1.5,
         history=history((0, "open")),
         new_fired=(key("first_response", "warn0.75"), key("first_response", "breach")),
         labels_add=("sla-breached",), ticket={"fields": DOCS_L2},
         tier="L1", sla={"on_breach": {"label": "sla-breached"}},
         note=("first response target",)),
    Case("a new tier entry gives new keys", now=3.5,
         history=history((0, "open"), reply=0.1, tier_at=0.25),
         fired=(key("time_in_tier", "warn0.75"),),
         new_fired=(key("time_in_tier", "warn0.75", 0.25),), labels_add=("sla-warning",),
         note=("passed 75%",)),
    Case("note: false adds only the label", now=3.25,
         sla={"on_warning": {"label": "ola-amber", "note": False}},
         new_fired=(key("time_in_tier", "warn0.75"),), labels_add=("ola-amber",)),
    Case("default labels when the policy names none", now=3.25,
         sla={"on_warning": {}}, new_fired=(key("time_in_tier", "warn0.75"),),
         labels_add=("sla-warning",), note=("passed 75%",)),
    Case("a label already on the ticket (any case) is not added again", now=3.25,
         ticket={"labels": ("SLA-Warning",)}, new_fired=(key("time_in_tier", "warn0.75"),),
         note=("passed 75%",)),
    Case("assign wins over the escalation's target", now=4.5,
         ticket={"fields": DOCS_L2}, fired=(key("time_in_tier", "warn0.75"),),
         sla={"on_breach": {"escalate": "next", "assign": "billing"}},
         new_fired=(key("time_in_tier", "breach"),),
         labels_add=("sla-breached", "tier-l2"), labels_remove=("tier-l1",), tier="L2",
         assign="billing", note=("Assigned to the billing target",)),
    Case("notify: one notice per threshold", now=25, ticket={"fields": DOCS_L2},
         sla={"on_warning": {"notify": {"url": HOOK}},
              "on_breach": {"notify": {"url": HOOK}, "escalate": "next"}},
         fired=(key("resolution", "warn0.75"), key("time_in_tier", "warn0.75")),
         new_fired=(key("resolution", "breach"), key("time_in_tier", "breach")),
         labels_add=("sla-breached", "tier-l2"), labels_remove=("tier-l1",), tier="L2",
         assign="L2", note=("is breached",), notices=2),
    Case("due date written when it differs", now=1, ticket={"fields": {DUE_DATE: None}},
         due="2026-11-17"),
    Case("due date unchanged: no write", now=1, ticket={"fields": {DUE_DATE: "2026-11-17"}}),
    Case("due datetime to the minute, UTC", now=1,
         history=history((0.0, "open"), reply=0.1),
         ticket={"fields": {DUE_TIME: "2026-11-17T07:00Z"}}, due="2026-11-17T08:00Z"),
    Case("due datetime unchanged: no write", now=1,
         ticket={"fields": {DUE_TIME: "2026-11-17T08:00Z"}}),
    Case("urgent re-targets resolution: the due time moves", now=1,
         ticket={"priority": "urgent", "fields": {DUE_TIME: "2026-11-17T08:00Z"}},
         due="2026-11-16T16:00Z"),
    Case("paused clock clears the due field", now=2,
         history=history((0, "open"), (1, "pending"), reply=0.1),
         ticket={"fields": {DUE_DATE: "2026-11-17"}}, due="clear"),
    Case("paused clock, field already empty: no write", now=2,
         history=history((0, "open"), (1, "pending"), reply=0.1),
         ticket={"fields": {DUE_DATE: None}}),
    Case("stopped clock leaves the due field", now=2,
         history=history((0, "open"), (1, "solved"), reply=0.1),
         ticket={"fields": {DUE_DATE: "2026-11-17"}}),
    Case("no due_field in the policy: no write", now=1, sla={"due_field": None},
         ticket={"fields": {DUE_DATE: None}}),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_apply_clocks_table(case: Case) -> None:
    policy = make_policy(**case.sla)
    t = ticket(**case.ticket)
    now = at(case.now)
    base = decide(t, policy, now=now)
    report = report_for(policy, t, case.history, now)
    out = apply_clocks(t, policy, base, report, fired=frozenset(case.fired), now=now)
    d = out.decision
    assert sorted(out.fired) == sorted(case.new_fired)
    assert d.sla_fired == tuple(sorted(case.new_fired))
    assert d.labels_add == tuple(sorted(case.labels_add))
    assert d.labels_remove == tuple(sorted(case.labels_remove))
    assert d.tier == case.tier
    assert d.assign == case.assign
    if case.note:
        assert d.comment is not None and d.sla_note_key is not None
        for part in case.note:
            assert part in d.comment, (part, d.comment)
        assert sla_note_keys_in(d.comment) == (d.sla_note_key,)
    else:
        assert d.sla_note_key is None
        assert d.comment == base.comment
    assert len(out.notices) == case.notices
    if case.due is None:
        assert not d.due_write
    elif case.due == "clear":
        assert d.due_write and d.due_at is None
    else:
        assert d.due_write and d.due_at is not None
        kind = "date" if DUE_DATE in t.fields else "time"
        after = applied(t, d, due_kind=kind)
        assert after.fields[DUE_DATE if kind == "date" else DUE_TIME] == case.due
    assert d.changed == bool(d.labels_add or d.labels_remove or d.assign or d.comment
                             or d.due_write)
    if not d.changed:
        assert d.reasons[-1].endswith("nothing to write.")
    # Deciding again on the state the outcome leaves, with its keys recorded, adds nothing.
    kind = "date" if DUE_DATE in t.fields else "time"
    after = applied(t, d, due_kind=kind)
    again = apply_clocks(after, policy, decide(after, policy, now=now), report,
                         fired=frozenset(case.fired) | out.fired, now=now)
    assert again.fired == frozenset() and again.notices == ()
    assert not again.decision.changed, again.decision.to_dict()


def test_sla_note_keeps_the_checklist_note_key() -> None:
    """A ticket whose checklist note is on it already: the SLA note is posted alone and keeps
    that note key, so the checklist is not posted again on the next decision."""
    policy = make_policy(on_breach={"label": "sla-breached", "escalate": "next"})
    first = ticket()
    first = first.__class__(**{**{f: getattr(first, f) for f in first.__slots__},
                               "labels": frozenset({"tier-l1", "escalate-l2"})})
    checklist = decide(first, policy, now=at(0))
    assert checklist.comment is not None and checklist.note_key is not None
    t = applied(first, checklist)
    now = at(3.25)
    base = decide(t, policy, now=now)
    assert base.comment is None  # the checklist is on the ticket already
    out = apply_clocks(t, policy, base, report_for(policy, t, history((0, "open"), reply=0.1),
                                                   now), fired=frozenset(), now=now)
    d = out.decision
    assert d.comment is not None and "Checklist" not in d.comment
    assert d.note_key == checklist.note_key and d.sla_note_key is not None
    assert note_key_in(d.comment) is None
    assert d.comment.endswith(f"{SLA_MARKER}{d.sla_note_key}")


def test_sla_note_precedes_a_new_checklist_and_its_marker_stays_last() -> None:
    policy = make_policy()
    t = ticket()
    now = at(4.5)
    out = apply_clocks(t, policy, decide(t, policy, now=now),
                       report_for(policy, t, history((0, "open"), reply=0.1), now),
                       fired=frozenset({key("time_in_tier", "warn0.75")}), now=now)
    d = out.decision
    assert d.comment is not None and d.note_key is not None
    assert d.comment.index(SLA_MARKER) < d.comment.index("Checklist for L2")
    assert note_key_in(d.comment) == d.note_key


def test_notice_text_and_key() -> None:
    policy = make_policy(on_breach={"notify": {"url": HOOK}})
    t = ticket(key="SUP-9")
    t = t.__class__(**{**{f: getattr(t, f) for f in t.__slots__}, "subject": "A <b> & c"})
    now = at(4.5)
    out = apply_clocks(t, policy, decide(t, policy, now=now),
                       report_for(policy, t, history((0, "open"), reply=0.1), now),
                       fired=frozenset({key("time_in_tier", "warn0.75")}), now=now)
    (notice,) = out.notices
    assert notice.url == HOOK
    assert notice.notice_key == f"SUP-9|{key('time_in_tier', 'breach')}"
    assert notice.text.startswith("SLA breach: ticket SUP-9 (A &lt;b&gt; &amp; c)")
    assert "time in tier 4h 30m of 4h" in notice.text


def test_routed_ticket_is_not_escalated() -> None:
    policy = make_policy()
    t = ticket(tier=None, labels=("tier-route-billing",))
    now = at(4.5)
    h = history((0, "open"), reply=0.1)
    from tiering.sla import sla_for
    report = sla_for(h, policy.sla, plan="premium", tier="L1", priority=None, now=now)
    base = decide(t, policy, now=now)
    assert base.route == "billing"
    out = apply_clocks(t, policy, base, report,
                       fired=frozenset({key("time_in_tier", "warn0.75")}), now=now)
    assert out.decision.tier is None and out.decision.route == "billing"
    assert out.decision.comment is not None and "routed" in out.decision.comment


def test_a_decision_that_raises_the_tier_is_not_escalated_again() -> None:
    policy = make_policy()
    t = ticket(labels=("escalate-l2",), fields=DOCS_L2)
    now = at(4.5)
    base = decide(t, policy, now=now)
    assert (base.previous_tier, base.tier) == ("L1", "L2")
    out = apply_clocks(t, policy, base,
                       report_for(policy, t, history((0, "open"), reply=0.1), now),
                       fired=frozenset({key("time_in_tier", "warn0.75")}), now=now)
    assert out.decision.tier == "L2"
    assert out.decision.comment is not None
    assert "moves to L2 now" in out.decision.comment


def test_no_report_or_no_sla_leaves_the_decision() -> None:
    policy = make_policy()
    t = ticket()
    base = decide(t, policy, now=at(1))
    out = apply_clocks(t, policy, base, None, fired=frozenset(), now=at(1))
    assert out.decision is base and out.fired == frozenset() and out.notices == ()


def test_threshold_after_now_never_fires() -> None:
    """A report computed for a later instant than `now` fires only what `now` has reached."""
    policy = make_policy()
    t = ticket()
    report = report_for(policy, t, history((0, "open"), reply=0.1), at(4.5))
    out = apply_clocks(t, policy, decide(t, policy, now=at(3.5)), report,
                       fired=frozenset(), now=at(3.5))
    assert out.fired == {key("time_in_tier", "warn0.75")}


@pytest.mark.parametrize(("clock", "start", "fraction", "expected"), [
    ("resolution", datetime(2026, 11, 16, 8, tzinfo=UTC), 1.0, "resolution@1794816000:breach"),
    ("time_in_tier", datetime(2026, 11, 16, 8, tzinfo=UTC), 0.75,
     "time_in_tier@1794816000:warn0.75"),
    ("first_response", datetime(2026, 11, 16, 8, 0, 1, tzinfo=UTC), 0.5,
     "first_response@1794816001:warn0.5"),
])
def test_threshold_key(clock: str, start: datetime, fraction: float, expected: str) -> None:
    assert threshold_key(clock, start, fraction) == expected


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0s"), (45, "45s"), (90, "1m 30s"), (900, "15m"), (3 * H + 15 * 60, "3h 15m"),
    (86400 + 2 * H + 5, "1d 2h"), (4 * H, "4h"),
])
def test_duration(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def test_a_note_already_on_the_ticket_is_not_acted_on_again() -> None:
    """The write landed but its keys were not recorded (a crash): the connector's fresh read
    shows the SLA note, so the same thresholds do nothing again, and are recorded now."""
    from dataclasses import replace

    from tiering.sla_actions import SLA_NOTES

    policy = make_policy()
    t = ticket()
    now = at(3.25)
    report = report_for(policy, t, history((0, "open"), reply=0.1), now)
    first = apply_clocks(t, policy, decide(t, policy, now=now), report, fired=frozenset(),
                         now=now)
    assert first.decision.sla_note_key is not None
    seen = replace(applied(t, first.decision),
                   fields={SLA_NOTES: (first.decision.sla_note_key,)})
    again = apply_clocks(seen, policy, decide(seen, policy, now=now), report,
                         fired=frozenset(), now=now)
    assert again.fired == first.fired
    assert again.decision.sla_note_key is None and not again.decision.changed
    assert again.notices == ()
