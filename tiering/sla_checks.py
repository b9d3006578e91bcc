"""The checks of meaning of the policy's `calendars` and `sla` sections.

`semantic_errors` finds unknown calendar, plan, tier or target names and ICS files not passed
in (or that the caller could not read), with the same (key path, message) pairs as the rest of
the policy (tiering/policy_checks.py), so errors name file, key path and line.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping

from tiering.calendars import ALWAYS, CalendarError
from tiering.sla_models import _DAYS, _NAME, CLOCKS, ActionSpec, CalendarSpec, SlaSpec, parse_days
from tiering.sla_policy import _build
from tiering.suggest import did_you_mean

Loc = tuple[str | int, ...]


def semantic_errors(
    calendars: Mapping[str, CalendarSpec],
    sla: SlaSpec | None,
    *,
    tiers: list[str],
    plans: Mapping[str, object],
    targets: Mapping[str, object],
    files: Mapping[str, str],
    unreadable: Mapping[str, str] | None = None,
) -> Iterator[tuple[Loc, str]]:
    """Every problem of meaning in `calendars` and `sla`, as (key path, message).

    `unreadable`: files the caller could not read (path as written -> why), reported at the
    key that names them."""
    if ALWAYS in calendars:
        yield ("calendars", ALWAYS), f'"{ALWAYS}" is the built-in calendar; choose another name'
    for name, spec in calendars.items():
        loc: Loc = ("calendars", name)
        if not re.match(_NAME, name):
            yield loc, f'"{name}" is not a valid calendar name'
        try:
            _build(name, spec, files, unreadable)
        except CalendarError as exc:
            yield _calendar_loc(loc, str(exc)), str(exc)
        days: dict[int, str] = {}
        for key in spec.hours:
            for wd in parse_days(key):
                if wd in days:
                    yield (
                        (*loc, "hours", key),
                        f"{_DAYS[wd]} is given by both {days[wd]!r} and {key!r}",
                    )
                days.setdefault(wd, key)
    if sla is None:
        return
    known = ", ".join([ALWAYS, *calendars])

    def cal_ref(loc: Loc, name: str | None) -> Iterator[tuple[Loc, str]]:
        if name is not None and name != ALWAYS and name not in calendars:
            yield loc, f'unknown calendar "{name}" (calendars are: {known})'

    yield from cal_ref(("sla", "calendar"), sla.calendar)
    if len(set(sla.warn_at)) != len(sla.warn_at):
        yield ("sla", "warn_at"), "a fraction is listed twice"
    tier_names = ", ".join(tiers)
    plan_names = ", ".join(plans) or "none defined"
    for plan, pt in sla.plans.items():
        ploc: Loc = ("sla", "plans", plan)
        if plan not in plans:
            yield ploc, (
                f'unknown plan "{plan}" (plans are: {plan_names}){did_you_mean(plan, plans)}'
            )
        yield from cal_ref((*ploc, "calendar"), pt.calendar)
        for tier, tt in pt.tiers.items():
            tloc: Loc = (*ploc, "tiers", tier)
            if tier not in tiers:
                yield tloc, (
                    f'unknown tier "{tier}" (tiers are: {tier_names}){did_you_mean(tier, tiers)}'
                )
            elif plan in plans:
                cap = getattr(plans[plan], "max_tier", None)
                if cap in tiers and tiers.index(tier) > tiers.index(cap):
                    yield tloc, (
                        f'can never apply: plan "{plan}" reaches at most {cap} (its max_tier)'
                    )
            yield from cal_ref((*tloc, "calendar"), tt.calendar)
            seen: set[str] = set()
            for prio in tt.priority:
                if prio.lower() in seen:
                    yield (*tloc, "priority", prio), f'priority "{prio}" is listed twice'
                seen.add(prio.lower())
            if not any(getattr(tt, c) for c in CLOCKS) and not tt.priority:
                yield tloc, "no target: give first_response, time_in_tier or resolution"
    for key in ("on_warning", "on_breach"):
        action: ActionSpec = getattr(sla, key)
        if action.assign is not None and action.assign not in targets:
            yield (
                ("sla", key, "assign"),
                f'unknown target "{action.assign}" (add targets.{action.assign})',
            )
    due = sla.due_field
    if due is not None and due.jira is None and due.zendesk is None:
        yield ("sla", "due_field"), "give jira or zendesk (or remove due_field)"


def _calendar_loc(loc: Loc, message: str) -> Loc:
    if "time zone" in message:
        return (*loc, "timezone")
    if "country" in message:
        return (*loc, "holidays", "country")
    if "subdivision" in message:
        return (*loc, "holidays", "subdivision")
    if ".ics" in message or "iCalendar" in message or "ics" in message:
        return (*loc, "holidays", "ics")
    return (*loc, "hours")
