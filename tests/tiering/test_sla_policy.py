"""The policy's `calendars` and `sla` sections: accepted, compiled into targets, or refused
with file, key path and line."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tiering import PolicyError, load_policy
from tiering.sla import StatusInterval, TicketHistory, sla_for
from tiering.sla_models import parse_duration

BASE = """\
version: 1
tiers: [L1, L2, L3]
default_tier: L1
plans:
  basic: {max_tier: L1}
  premium: {max_tier: L3}
targets:
  L3: {zendesk: {group_id: 3}}
"""

GOOD = BASE + """\
calendars:
  berlin:
    timezone: Europe/Berlin
    hours:
      mon-fri: ["09:00-12:30", "13:30-17:00"]
      sat: ["10:00-14:00"]
    holidays:
      country: DE
      subdivision: BE
      dates: [2026-12-24]
      yearly: ["12-31"]
      ics: berlin.ics
sla:
  warn_at: [0.5, 0.75]
  pause: {resolution: [pending, hold]}
  statuses:
    jira:
      names: {"Waiting for customer": pending}
  plans:
    premium:
      calendar: berlin
      tiers:
        L1:
          first_response: 1h
          time_in_tier: 4h
          resolution: 2d
          priority:
            Urgent: {first_response: 15m}
        L2:
          calendar: 24x7
          resolution: 1h30m
  on_warning: {note: true}
  on_breach: {label: sla-late, escalate: next, assign: L3,
              notify: {url: "https://hooks.example.com/x"}}
  due_field: {clock: resolution, jira: duedate, zendesk: 360001, zendesk_type: date}
"""

ICS = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//t//EN
BEGIN:VEVENT
UID:1@t
DTSTART;VALUE=DATE:20261127
DTEND;VALUE=DATE:20261128
END:VEVENT
END:VCALENDAR
"""


def test_full_sla_section_compiles_into_targets_per_plan_tier_and_priority() -> None:
    """Targets resolve per plan, tier and priority (any case), with the right calendar."""
    policy = load_policy(GOOD, source="p.yaml", files={"berlin.ics": ICS})
    sla = policy.sla
    by = {t.clock: t for t in sla.targets_for(plan="premium", tier="L1", priority="urgent")}
    assert {k: (v.seconds, v.calendar) for k, v in by.items()} == {
        "first_response": (900, "berlin"),
        "time_in_tier": (4 * 3600, "berlin"),
        "resolution": (2 * 86400, "berlin"),
    }
    # Each target names where it comes from, for explanations.
    assert by["first_response"].source == (
        "sla.plans.premium.tiers.L1.priority.Urgent.first_response"
    )
    assert by["resolution"].source == "sla.plans.premium.tiers.L1.resolution"
    assert by["resolution"].pause == {"pending", "hold"}
    assert by["first_response"].pause == frozenset()
    assert by["resolution"].warn_at == (0.5, 0.75)
    l2 = sla.targets_for(plan="premium", tier="L2", priority=None)
    assert [(t.clock, t.seconds, t.calendar) for t in l2] == [("resolution", 5400, "24x7")]
    # A plan or tier without targets runs no clock.
    assert sla.targets_for(plan="basic", tier="L1", priority=None) == ()
    assert sla.targets_for(plan=None, tier="L1", priority=None) == ()
    # The ICS date and the country's holidays are in the calendar.
    berlin = sla.calendars["berlin"]
    assert berlin.is_holiday(datetime(2026, 11, 27).date())
    assert berlin.is_holiday(datetime(2026, 12, 25).date())
    assert (sla.warning_label, sla.breach_label) == ("sla-warning", "sla-late")
    assert sla.jira_status("waiting for customer", "indeterminate") == "pending"
    assert sla.jira_status("In Progress", "indeterminate") == "open"
    assert sla.jira_status("Done", "done") == "solved"


def test_sla_for_measures_a_ticket_under_the_compiled_policy() -> None:
    """sla_for picks the ticket's targets and calendars from the policy and measures them."""
    policy = load_policy(GOOD, source="p.yaml", files={"berlin.ics": ICS})
    created = datetime(2026, 11, 16, 8, tzinfo=UTC)  # Monday 09:00 Berlin
    hist = TicketHistory(created_at=created, statuses=(StatusInterval("open", created),))
    report = sla_for(hist, policy.sla, plan="premium", tier="L2", priority=None,
                     now=datetime(2026, 11, 16, 9, tzinfo=UTC))
    c = report.clock("resolution")
    assert c is not None and (c.calendar, c.state, c.elapsed) == ("24x7", "warning", 3600.0)
    assert c.due == datetime(2026, 11, 16, 9, 30, tzinfo=UTC)


@pytest.mark.parametrize(("unmeasured", "clocks"), [
    (frozenset(), ["first_response", "resolution", "time_in_tier"]),
    (frozenset({"first_response"}), ["resolution", "time_in_tier"]),
    (frozenset({"first_response", "resolution"}), ["time_in_tier"]),
    (frozenset({"first_response", "time_in_tier", "resolution"}), []),
    (frozenset({"no-such-clock"}), ["first_response", "resolution", "time_in_tier"]),
])
def test_sla_for_leaves_out_the_clocks_a_vendor_cannot_measure(
    unmeasured: frozenset[str], clocks: list[str]
) -> None:
    """`unmeasured` (connectors.base.Vendor.unmeasured_clocks) drops those clocks and only
    those; the others are measured as without it."""
    policy = load_policy(GOOD, source="p.yaml", files={"berlin.ics": ICS})
    created = datetime(2026, 11, 16, 8, tzinfo=UTC)
    hist = TicketHistory(created_at=created, statuses=(StatusInterval("open", created),))
    now = datetime(2026, 11, 16, 9, tzinfo=UTC)
    every = sla_for(hist, policy.sla, plan="premium", tier="L1", priority=None, now=now)
    some = sla_for(hist, policy.sla, plan="premium", tier="L1", priority=None, now=now,
                   unmeasured=unmeasured)
    assert sorted(c.clock for c in some.clocks) == clocks
    assert all(c == every.clock(c.clock) for c in some.clocks)


def test_policy_without_sla_has_only_the_builtin_calendar_and_no_clocks() -> None:
    """A policy with no sla section loads as before: the 24x7 calendar, no targets."""
    sla = load_policy(BASE).sla
    assert list(sla.calendars) == ["24x7"]
    assert not sla.enabled
    assert sla.targets_for(plan="premium", tier="L1", priority=None) == ()


def _replace(old: str, new: str) -> str:
    assert old in GOOD, old
    return GOOD.replace(old, new)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # A bare number has no unit.
        (_replace("time_in_tier: 4h", "time_in_tier: 4"),
         "p.yaml: sla.plans.premium.tiers.L1.time_in_tier: expected a duration such as 90s,"
         " 15m, 8h or 2d, got 4 (a bare number has no unit) (line 33)"),
        # An unknown unit.
        (_replace("resolution: 2d", "resolution: 2w"),
         'p.yaml: sla.plans.premium.tiers.L1.resolution: "2w" is not a duration: write a number'
         " and a unit (s, m, h, d), such as 90s, 15m, 8h, 2d or 1h30m (line 34)"),
        # An interval that ends before it starts.
        (_replace('"13:30-17:00"', '"17:00-13:30"'),
         'p.yaml: calendars.berlin.hours: "17:00-13:30" ends before it starts: a shift past'
         " midnight is two intervals (22:00-24:00 on one day, 00:00-06:00 on the next)"
         " (line 12)"),
        # A day name that does not exist.
        (_replace("sat:", "saturday:"),
         'p.yaml: calendars.berlin.hours: "saturday" is not a day or range of days: use mon,'
         " tue, wed, thu, fri, sat, sun or a range like mon-fri (line 12)"),
        # A day given twice.
        (_replace('sat: ["10:00-14:00"]', 'fri: ["18:00-19:00"]'),
         "p.yaml: calendars.berlin.hours.fri: fri is given by both 'mon-fri' and 'fri'"
         " (line 14)"),
        # Not an IANA zone.
        (_replace("Europe/Berlin", "CET+1"),
         'p.yaml: calendars.berlin.timezone: unknown time zone "CET+1": use an IANA name'
         " such as Europe/Berlin (line 11)"),
        # A country the holidays package does not know.
        (_replace("country: DE", "country: Germany"),
         'p.yaml: calendars.berlin.holidays.country: unknown country "Germany" for the holidays'
         " package: use an ISO 3166-1 alpha-2 code such as DE or US (line 16)"),
        # A yearly day that does not exist.
        (_replace('"12-31"', '"13-01"'),
         'p.yaml: calendars.berlin.holidays.yearly: "13-01" is not a month and day: write'
         " MM-DD, like 12-25 (line 19)"),
        # A calendar name that is not defined.
        (_replace("calendar: berlin", "calendar: paris"),
         'p.yaml: sla.plans.premium.calendar: unknown calendar "paris" (calendars are: 24x7,'
         " berlin) (line 29)"),
        # A tier that does not exist.
        (_replace("        L2:\n", "        L9:\n"),
         'p.yaml: sla.plans.premium.tiers.L9: unknown tier "L9" (tiers are: L1, L2, L3)'
         " (line 37)"),
        # A plan that does not exist.
        (_replace("  plans:\n    premium:\n      calendar", "  plans:\n    gold:\n      calendar"),
         'p.yaml: sla.plans.gold: unknown plan "gold" (plans are: basic, premium) (line 28)'),
        # A fraction outside (0, 1).
        (_replace("warn_at: [0.5, 0.75]", "warn_at: [75]"),
         "p.yaml: sla.warn_at[0]: Input should be less than 1 (line 22)"),
        # A pause status that is not a neutral status.
        (_replace("[pending, hold]", "[waiting]"),
         "p.yaml: sla.pause.resolution[0]: expected 'new', 'open', 'pending', 'hold', 'solved'"
         " or 'closed', got \"waiting\" (line 23)"),
        # escalate takes only next.
        (_replace("escalate: next", "escalate: L3"),
         "p.yaml: sla.on_breach.escalate: expected 'next', got \"L3\" (line 41)"),
        # assign must name a target.
        (_replace("assign: L3", "assign: L2"),
         'p.yaml: sla.on_breach.assign: unknown target "L2" (add targets.L2) (line 41)'),
        # The due field must be a Jira date field or a custom field id.
        (_replace("jira: duedate", "jira: due"),
         'p.yaml: sla.due_field.jira: "due" is not a Jira due-time field: use duedate or a'
         " datetime custom field id such as customfield_10200 (line 43)"),
        # An unknown key.
        (_replace("warn_at:", "warn_when:"),
         'p.yaml: sla.warn_when: unknown key; did you mean "warn_at"?'
         " (line 22)"),
        # The outgoing webhook must be a web address.
        (_replace('"https://hooks.example.com/x"', '"hooks.example.com/x"'),
         'p.yaml: sla.on_breach.notify.url: "hooks.example.com/x" is not a web address: write'
         " https://host/path (line 42)"),
        # A tier the plan can never reach.
        (_replace("  plans:\n    premium:\n      calendar: berlin\n",
                  "  plans:\n    basic:\n      tiers: {L2: {resolution: 1d}}\n"
                  "    premium:\n      calendar: berlin\n"),
         'p.yaml: sla.plans.basic.tiers.L2: can never apply: plan "basic" reaches at most L1'
         " (its max_tier) (line 29)"),
        # A tier with no target at all.
        (_replace("          calendar: 24x7\n          resolution: 1h30m\n",
                  "          calendar: 24x7\n"),
         "p.yaml: sla.plans.premium.tiers.L2: no target: give first_response, time_in_tier or"
         " resolution (line 37)"),
    ],
)
def test_bad_sla_policy_is_refused_with_path_and_line(text: str, expected: str) -> None:
    """Each mistake in calendars or sla is one error naming the file, key path and line."""
    with pytest.raises(PolicyError) as info:
        load_policy(text, source="p.yaml", files={"berlin.ics": ICS})
    assert info.value.lines == [expected]


def test_ics_file_not_passed_in_is_an_error_naming_it() -> None:
    """A calendar naming an ICS file the caller did not pass is refused, saying so."""
    with pytest.raises(PolicyError) as info:
        load_policy(GOOD, source="p.yaml")
    assert info.value.lines == [
        'p.yaml: calendars.berlin.holidays.ics: ics file "berlin.ics" was not passed in: the'
        " program loading the policy must read it (relative to the policy file) and pass its"
        " text (line 20)"
    ]


def test_ics_file_that_is_not_icalendar_is_an_error_naming_it() -> None:
    """ICS text that does not parse is refused with the file's name."""
    with pytest.raises(PolicyError) as info:
        load_policy(GOOD, source="p.yaml", files={"berlin.ics": "garbage"})
    assert len(info.value.lines) == 1
    assert info.value.lines[0].startswith(
        "p.yaml: calendars.berlin.holidays.ics: berlin.ics: not an iCalendar file"
    )


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),  # seconds
        ("15m", 900),  # minutes
        ("8h", 28800),  # hours
        ("2d", 172800),  # a day is 24 business hours
        ("1h30m", 5400),  # sums
        ("1d 2h", 93600),  # spaces are allowed
    ],
)
def test_durations(text: str, seconds: int) -> None:
    """Durations are written with a unit, s m h d, and may be summed."""
    assert parse_duration(text) == seconds


def test_policy_digest_covers_the_ics_text() -> None:
    """A changed ICS file changes the policy's digest, so decisions record which one was used."""
    a = load_policy(GOOD, source="p.yaml", files={"berlin.ics": ICS})
    b = load_policy(GOOD, source="p.yaml", files={"berlin.ics": ICS.replace("1127", "1126")})
    assert a.digest != b.digest
    assert load_policy(BASE).digest == load_policy(BASE, files={}).digest


JIRA_MAP = load_policy(BASE + """\
sla:
  statuses:
    jira:
      names: {"Waiting for customer": pending, "Waiting for vendor": hold}
      categories: {done: closed}
""").sla


@pytest.mark.parametrize(
    ("name", "category", "expected"),
    [
        ("Waiting for customer", "indeterminate", "pending"),  # by name, whatever the category
        ("WAITING FOR VENDOR", "indeterminate", "hold"),  # names match in any case
        ("In Progress", "indeterminate", "open"),  # not listed: by category (default)
        ("To Do", "new", "new"),  # the new category
        ("Done", "done", "closed"),  # a category the policy overrides
        ("Weird", None, None),  # neither known: no neutral status (the caller decides)
    ],
)
def test_jira_status_mapping(name: str, category: str | None, expected: str | None) -> None:
    """Jira statuses become neutral ones by name first, then by status category."""
    assert JIRA_MAP.jira_status(name, category) == expected
