"""The reference policies' SLA/OLA clocks on realistic ticket histories (`tiering.sla.sla_for`).

Every expected figure is worked out by hand from the policy's calendar (zone, hours, holidays)
in the comment above its row, not taken from the engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from tests.policies.stories import policy_of
from tiering.sla import StatusInterval, TicketHistory, TierEntry, sla_for

H = 3600.0


def z(text: str) -> datetime:
    """A UTC instant written 2026-11-20T15:30."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def hist(created: str, *changes: tuple[str, str], tiers: tuple[tuple[str, str], ...] = (),
         reply: str | None = None) -> TicketHistory:
    """Created at `created` in the first change's status; (UTC instant, status) changes."""
    points = [(z(at), status) for at, status in changes]
    ivs = tuple(StatusInterval(status, at, points[i + 1][0] if i + 1 < len(points) else None)
                for i, (at, status) in enumerate(points))
    assert points[0][0] == z(created)
    return TicketHistory(created_at=z(created), statuses=ivs,
                         tiers=tuple(TierEntry(t, z(at)) for at, t in tiers),
                         first_reply_at=z(reply) if reply else None)


@dataclass(frozen=True)
class Want:
    clock: str
    state: str
    elapsed_h: float
    paused_h: float
    due: str | None
    source: str
    calendar: str
    crossed: tuple[tuple[float, str], ...] = ()


@dataclass(frozen=True)
class Case:
    name: str
    model: str
    plan: str | None
    tier: str | None
    priority: str | None
    history: TicketHistory
    now: str
    want: tuple[Want, ...]


CASES = [
    # Partner, vendor-standard, L1 (partner-office: Munich 08:00-18:00, CET = UTC+1). Created
    # Friday 20 Nov 16:30 local; now Monday 09:00 local. Business time: Fri 16:30-18:00 (1.5h)
    # + Mon 08:00-09:00 (1h) = 2.5h. The L1 OLA (4h) is due after 1.5h more: Mon 10:30 local
    # (09:30Z); its 75 % (3h) falls at Mon 09:30 local. First response (2h): 75 % reached at
    # Fri 18:00 local (17:00Z), breached Mon 08:30 local (07:30Z).
    Case("partner L1 OLA across a weekend", "partner-three-level", "vendor-standard", "L1", None,
         hist("2026-11-20T15:30", ("2026-11-20T15:30", "open"), tiers=(("2026-11-20T15:30",
                                                                        "L1"),)),
         "2026-11-23T08:00",
         (Want("first_response", "breached", 2.5, 0, "2026-11-23T07:30",
               "sla.plans.vendor-standard.tiers.L1.first_response", "partner-office",
               ((0.75, "2026-11-20T17:00"), (1.0, "2026-11-23T07:30"))),
          Want("time_in_tier", "running", 2.5, 0, "2026-11-23T09:30",
               "sla.plans.vendor-standard.tiers.L1.time_in_tier", "partner-office"))),
    # Partner, urgent at vendor-standard: the priority's L1 OLA is 1h. Created Wed 23 Dec 17:00
    # local; 24 Dec (the partner's own closing day), 25-26 Dec (Bavarian holidays) and the
    # weekend have no business time. Wed 17:00-18:00 is the whole hour: breached at 18:00
    # local (17:00Z), its 75 % at 17:45 local. Now is on Christmas Eve.
    Case("partner urgent L1 OLA over Christmas", "partner-three-level", "vendor-standard", "L1",
         "urgent", hist("2026-12-23T16:00", ("2026-12-23T16:00", "new")), "2026-12-24T12:00",
         (Want("first_response", "breached", 1, 0, "2026-12-23T16:30",
               "sla.plans.vendor-standard.tiers.L1.priority.urgent.first_response",
               "partner-office", ((0.75, "2026-12-23T16:22:30"), (1.0, "2026-12-23T16:30"))),
          Want("time_in_tier", "breached", 1, 0, "2026-12-23T17:00",
               "sla.plans.vendor-standard.tiers.L1.priority.urgent.time_in_tier",
               "partner-office", ((0.75, "2026-12-23T16:45"), (1.0, "2026-12-23T17:00"))))),
    # Partner, vendor-standard, non-urgent L1 created at the same instant: 4h OLA. Wed
    # 17:00-18:00 (1h), then nothing until Monday 28 Dec 08:00 local: 3h more, due 11:00 local
    # (10:00Z).
    Case("partner L1 OLA resumes after the closing days", "partner-three-level",
         "vendor-standard", "L1", None,
         hist("2026-12-23T16:00", ("2026-12-23T16:00", "open"), reply="2026-12-23T16:10"),
         "2026-12-24T12:00",
         (Want("first_response", "stopped", 10 / 60, 0, None,
               "sla.plans.vendor-standard.tiers.L1.first_response", "partner-office"),
          Want("time_in_tier", "running", 1, 0, "2026-12-28T10:00",
               "sla.plans.vendor-standard.tiers.L1.time_in_tier", "partner-office"))),
    # Partner, premier, L2 (10h OLA), entered Tue 24 Nov 09:00 local. Waiting for the customer
    # (pending) 11:00-15:00 local pauses it; now 17:00 local: 2h + 2h elapsed, 4h paused; 6h
    # left: Tue 17:00-18:00, then Wed 08:00 + 5h = 13:00 local (12:00Z).
    Case("partner L2 OLA paused while waiting for the customer", "partner-three-level",
         "vendor-premier", "L2", None,
         hist("2026-11-23T09:00", ("2026-11-23T09:00", "open"), ("2026-11-24T10:00", "pending"),
              ("2026-11-24T14:00", "open"),
              tiers=(("2026-11-23T09:00", "L1"), ("2026-11-24T08:00", "L2"))),
         "2026-11-24T16:00",
         (Want("time_in_tier", "running", 4, 4, "2026-11-25T12:00",
               "sla.plans.vendor-premier.tiers.L2.time_in_tier", "partner-office"),)),
    # Partner, vendor-standard, L3: the vendor's backline on Dublin hours (09:00-17:30, UTC+0
    # in November), 42h30m = five of its days. Entered Mon 23 Nov 09:00; now 13:00: 4h
    # elapsed; 38.5h left: Mon 4.5h, Tue-Thu 8.5h each, Fri 8.5h: due Fri 27 Nov 17:30Z.
    Case("partner L3 on the vendor's calendar", "partner-three-level", "vendor-standard", "L3",
         None,
         hist("2026-11-20T10:00", ("2026-11-20T10:00", "open"),
              tiers=(("2026-11-20T10:00", "L1"), ("2026-11-23T09:00", "L3"))),
         "2026-11-23T13:00",
         (Want("time_in_tier", "running", 4, 0, "2026-11-27T17:30",
               "sla.plans.vendor-standard.tiers.L3.time_in_tier", "vendor-backline"),)),
    # External vendor, staff, L4: the underpinning contract, 22h of the vendor's Pacific
    # 06:00-17:00 (PST = UTC-8). Entered L4 Wed 25 Nov 14:00 local (22:00Z); on hold ("waiting
    # for vendor") does not pause it. Now 15:00 local: 1h. 21h left: Wed 15:00-17:00 (2h),
    # Thanksgiving and the day after (California holidays), Mon 30 Nov 11h, Tue 1 Dec 06:00 +
    # 8h = 14:00 local (22:00Z). Warnings at 50 % (11h) and 80 %.
    Case("external vendor's underpinning contract over Thanksgiving", "external-vendor", "staff",
         "L4", None,
         hist("2026-11-24T15:00", ("2026-11-24T15:00", "open"), ("2026-11-25T22:00", "hold"),
              tiers=(("2026-11-24T15:00", "L1"), ("2026-11-25T22:00", "L4"))),
         "2026-11-25T23:00",
         (Want("time_in_tier", "running", 1, 0, "2026-12-01T22:00",
               "sla.plans.staff.tiers.L4.time_in_tier", "vendor-uc"),)),
    # External vendor, staff, urgent L4: 4h of vendor time. Entered Mon 30 Nov 08:00 local
    # (16:00Z); waiting for the requester (pending) 09:00-10:00 local pauses it; now 12:00
    # local: 1h + 2h = 3h, 1h paused; past 50 % (2h, at 11:00 local = 19:00Z), not yet 80 %
    # (3.2h); 1h left: due 13:00 local (21:00Z).
    Case("external vendor urgent, paused while waiting for the requester", "external-vendor",
         "staff", "L4", "urgent",
         hist("2026-11-30T15:00", ("2026-11-30T15:00", "open"), ("2026-11-30T17:00", "pending"),
              ("2026-11-30T18:00", "open"),
              tiers=(("2026-11-30T15:00", "L1"), ("2026-11-30T16:00", "L4"))),
         "2026-11-30T20:00",
         (Want("time_in_tier", "warning", 3, 1, "2026-11-30T21:00",
               "sla.plans.staff.tiers.L4.priority.urgent.time_in_tier", "vendor-uc",
               ((0.5, "2026-11-30T19:00"),)),)),
    # External vendor, staff, L1 at the Chicago service desk (07:00-19:00 CST = UTC-6; the day
    # after Thanksgiving is a working day in Illinois). Created on Thanksgiving 10:00 local:
    # no business time until Fri 07:00. Now Fri 07:30 local: 30 min of first response (1h),
    # its 50 % reached now; due 08:00 local (14:00Z). The L1 OLA (4h) is due 11:00 local.
    Case("external vendor L1 created on Thanksgiving", "external-vendor", "staff", "L1", None,
         hist("2026-11-26T16:00", ("2026-11-26T16:00", "new")), "2026-11-27T13:30",
         (Want("first_response", "warning", 0.5, 0, "2026-11-27T14:00",
               "sla.plans.staff.tiers.L1.first_response", "service-desk",
               ((0.5, "2026-11-27T13:30"),)),
          Want("time_in_tier", "running", 0.5, 0, "2026-11-27T17:00",
               "sla.plans.staff.tiers.L1.time_in_tier", "service-desk"))),
    # Five-level, business, high priority, L1 (Berlin 08:00-13:00 and 13:30-18:00). Created Mon
    # 23 Nov 12:00 local; now 14:00 local: 12:00-13:00 + 13:30-14:00 = 1.5h (the handover half
    # hour does not count). First response at high priority is 2h: 75 % now, due 14:30 local.
    # The L1 OLA (9h30m, the tier's; the priority sets none): 8h left: Mon 14:00-18:00 (4h),
    # Tue 08:00-12:00: due Tue 12:00 local (11:00Z).
    Case("five-level split shifts and a priority target", "five-level", "business", "L1", "High",
         hist("2026-11-23T11:00", ("2026-11-23T11:00", "open")), "2026-11-23T13:00",
         (Want("first_response", "warning", 1.5, 0, "2026-11-23T13:30",
               "sla.plans.business.tiers.L1.priority.high.first_response", "support-berlin",
               ((0.75, "2026-11-23T13:00"),)),
          Want("time_in_tier", "running", 1.5, 0, "2026-11-24T11:00",
               "sla.plans.business.tiers.L1.time_in_tier", "support-berlin"))),
    # Five-level, enterprise, L3 from creation Mon 23 Nov 08:00 local. Solved at 18:00 (9.5h),
    # reopened Wed 08:00: solved time stops the clocks and is not paused time. Now Wed 10:00:
    # 11.5h. The L3 OLA (28h30m): 17h left: Wed 7.5h + Thu 9.5h: Thu 18:00 local (17:00Z).
    # Resolution (95h): 83.5h left = Wed 7.5h + eight 9.5h days (Thu 26 Nov - Mon 7 Dec):
    # Mon 7 Dec 18:00 local (17:00Z).
    Case("five-level solved and reopened", "five-level", "enterprise", "L3", None,
         hist("2026-11-23T07:00", ("2026-11-23T07:00", "open"), ("2026-11-23T17:00", "solved"),
              ("2026-11-25T07:00", "open"), tiers=(("2026-11-23T07:00", "L3"),)),
         "2026-11-25T09:00",
         (Want("time_in_tier", "running", 11.5, 0, "2026-11-26T17:00",
               "sla.plans.enterprise.tiers.L3.time_in_tier", "support-berlin"),
          Want("resolution", "running", 11.5, 0, "2026-12-07T17:00",
               "sla.plans.enterprise.tiers.L3.resolution", "support-berlin"))),
    # Hosting, shared, urgent, L1 on 24x7: first response 1h and OLA 2h (the priority's),
    # resolution 2d (the tier's). Created 24 Dec 22:00Z; now 23:00Z.
    Case("hosting L1 around the clock", "hosting-three-level", "shared", "L1", "urgent",
         hist("2026-12-24T22:00", ("2026-12-24T22:00", "new")), "2026-12-24T23:00",
         (Want("first_response", "breached", 1, 0, "2026-12-24T23:00",
               "sla.plans.shared.tiers.L1.priority.urgent.first_response", "24x7",
               ((0.75, "2026-12-24T22:45"), (1.0, "2026-12-24T23:00"))),
          Want("time_in_tier", "running", 1, 0, "2026-12-25T00:00",
               "sla.plans.shared.tiers.L1.priority.urgent.time_in_tier", "24x7"),
          Want("resolution", "running", 1, 0, "2026-12-26T22:00",
               "sla.plans.shared.tiers.L1.resolution", "24x7"))),
    # Hosting, managed, L2 on the systems team's calendar (Amsterdam 08:00-20:00, CET): entered
    # Wed 23 Dec 18:00 local (17:00Z). Closed 24-26 Dec by holidays/hosting-maintenance.ics (24
    # Dec is no Dutch public holiday), then Sunday. OLA 12h: Wed 18:00-20:00 (2h), Mon 28 Dec
    # 08:00 + 10h = 18:00 local (17:00Z). Resolution (24h, from creation at the same instant):
    # 2h + Mon 12h + Tue 29 Dec 08:00 + 10h: 18:00 local (17:00Z).
    Case("hosting L2 over the ICS closing days", "hosting-three-level", "managed", "L2", None,
         hist("2026-12-23T17:00", ("2026-12-23T17:00", "open"),
              tiers=(("2026-12-23T17:00", "L2"),)),
         "2026-12-24T10:00",
         (Want("time_in_tier", "running", 2, 0, "2026-12-28T17:00",
               "sla.plans.managed.tiers.L2.time_in_tier", "systems-team"),
          Want("resolution", "running", 2, 0, "2026-12-29T17:00",
               "sla.plans.managed.tiers.L2.resolution", "systems-team"))),
    # Hosting, managed, L3: on hold (waiting for the agreed maintenance window) pauses it.
    # Entered Mon 30 Nov 09:00 local (08:00Z), on hold 10:00-16:00 local; now 17:00 local:
    # 1h + 1h = 2h elapsed, 6h paused; the OLA (36h) has 34h left: Mon 17:00-20:00 (3h), Tue
    # and Wed 12h each (27h), then Thu 3 Dec 08:00 + 7h = 15:00 local (14:00Z).
    Case("hosting L3 paused while the change waits for its window", "hosting-three-level",
         "managed", "L3", None,
         hist("2026-11-30T08:00", ("2026-11-30T08:00", "open"), ("2026-11-30T09:00", "hold"),
              ("2026-11-30T15:00", "open"), tiers=(("2026-11-30T08:00", "L3"),)),
         "2026-11-30T16:00",
         (Want("time_in_tier", "running", 2, 6, "2026-12-03T14:00",
               "sla.plans.managed.tiers.L3.time_in_tier", "systems-team"),)),
    # Dispatch, standard, L0 (London 08:30-17:30, GMT = UTC). Created Fri 18 Dec 17:15; now
    # Mon 21 Dec 08:40: 15 + 10 = 25 min. The dispatch OLA (30m): 50 % reached Fri 17:30,
    # 90 % (27 min) next, at Mon 08:42; due 08:45. First response (1h): 35 min left, due
    # 09:15.
    Case("dispatch OLA across a weekend", "dispatch-line", "standard", "L0", None,
         hist("2026-12-18T17:15", ("2026-12-18T17:15", "new")), "2026-12-21T08:40",
         (Want("first_response", "running", 25 / 60, 0, "2026-12-21T09:15",
               "sla.plans.standard.tiers.L0.first_response", "london-office"),
          Want("time_in_tier", "warning", 25 / 60, 0, "2026-12-21T08:45",
               "sla.plans.standard.tiers.L0.time_in_tier", "london-office",
               ((0.5, "2026-12-18T17:30"),)))),
    # Dispatch, standard, L2 (9h): entered Thu 24 Dec 16:30. Christmas (Fri), Boxing Day (Sat)
    # and its substitute day (Mon 28 Dec) are English bank holidays: 1h on Thursday, then Tue
    # 29 Dec 08:30 + 8h = 16:30.
    Case("dispatch L2 over the English bank holidays", "dispatch-line", "standard", "L2", None,
         hist("2026-12-24T10:00", ("2026-12-24T10:00", "open"),
              tiers=(("2026-12-24T10:00", "L0"), ("2026-12-24T16:30", "L2"))),
         "2026-12-25T12:00",
         (Want("time_in_tier", "running", 1, 0, "2026-12-29T16:30",
               "sla.plans.standard.tiers.L2.time_in_tier", "london-office"),
          # Resolution (27h) from creation at 10:00: Thu 7.5h, Tue 29 - Thu 31 Dec 9h each:
          # 25.5h by Wed 30th 17:30 + 1.5h: Thu 31 Dec 10:00.
          Want("resolution", "running", 7.5, 0, "2026-12-31T10:00",
               "sla.plans.standard.tiers.L2.resolution", "london-office"))),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_reference_policy_clocks(case: Case) -> None:
    policy = policy_of(f"{case.model}.yaml")
    report = sla_for(case.history, policy.sla, plan=case.plan, tier=case.tier,
                     priority=case.priority, now=z(case.now))
    got = [(c.clock, c.state, round(c.elapsed / H, 4), round(c.paused / H, 4),
            c.due, c.source, c.calendar,
            tuple((t.fraction, t.at) for t in c.crossed)) for c in report.clocks]
    want = [(w.clock, w.state, round(w.elapsed_h, 4), round(w.paused_h, 4),
             z(w.due) if w.due else None, w.source, w.calendar,
             tuple((f, z(at)) for f, at in w.crossed)) for w in case.want]
    assert got == want


@pytest.mark.parametrize("model", ["dispatch-line", "external-vendor", "five-level",
                                   "hosting-three-level", "partner-three-level"])
def test_routed_unverified_and_self_help_tickets_have_no_clock(model: str) -> None:
    """No plan (an unverified customer), no tier (routed), or L0 self-help where the model
    gives it no target: no clock runs. Every other plan and tier the model lets a ticket reach
    has at least one."""
    policy = policy_of(f"{model}.yaml")
    sla = policy.sla
    assert sla.targets_for(plan=None, tier="L1", priority=None) == ()
    assert sla.targets_for(plan=next(iter(policy.plans)), tier=None, priority=None) == ()
    for name, plan in policy.plans.items():
        reachable = policy.tiers[:policy.tiers.index(plan.max_tier) + 1]
        for tier in reachable:
            clocks = sla.targets_for(plan=name, tier=tier, priority=None)
            if tier == "L0" and model != "dispatch-line":
                assert clocks == (), (name, tier)
            else:
                assert clocks, f"{model}: plan {name} has no clock in {tier}"


def test_premier_clocks_are_tighter_than_standard() -> None:
    """Partner model: each premier target is at most the standard one, tier by tier."""
    sla = policy_of("partner-three-level.yaml").sla
    for tier in ("L1", "L2"):
        for priority in (None, "urgent"):
            std = {t.clock: t.seconds for t in sla.targets_for(
                plan="vendor-standard", tier=tier, priority=priority)}
            pre = {t.clock: t.seconds for t in sla.targets_for(
                plan="vendor-premier", tier=tier, priority=priority)}
            for clock, seconds in pre.items():
                assert seconds <= std.get(clock, seconds), (tier, priority, clock)


def test_a_day_of_the_five_level_calendar_is_nine_and_a_half_hours() -> None:
    cal = policy_of("five-level.yaml").sla.calendars["support-berlin"]
    monday = z("2026-11-23T00:00")
    assert cal.business_seconds(monday, monday + timedelta(days=1)) == 9.5 * H
