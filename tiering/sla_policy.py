"""The compiled `calendars` and `sla` sections: `SlaPolicy`, its `ClockTarget`s, `compile_sla`.

`compile_sla` turns the sections checked by tiering/sla_checks.py (models in
tiering/sla_models.py) into `Calendar`s and an `SlaPolicy`, which resolves the clocks and targets
of one ticket for `tiering.sla`.

The service enforces them (webhooks/sla_work.py: recorded history, durable timers, the actions
of tiering/sla_actions.py): see the admin guide.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from tiering.calendars import ALWAYS, Calendar, CalendarError, ics_holiday_dates
from tiering.sla_models import (
    CLOCKS,
    JIRA_CATEGORY_DEFAULTS,
    CalendarSpec,
    SlaSpec,
    Targets,
    parse_days,
    parse_interval,
    parse_month_day,
)


def _build(
    name: str,
    spec: CalendarSpec,
    files: Mapping[str, str],
    unreadable: Mapping[str, str] | None = None,
) -> Calendar:
    week: dict[int, list[tuple[int, int]]] = {}
    for key, intervals in spec.hours.items():
        for wd in parse_days(key):
            week.setdefault(wd, []).extend(parse_interval(t) for t in intervals)
    h = spec.holidays
    dates = set(h.dates)
    if h.ics is not None:
        text = files.get(h.ics)
        reason = (unreadable or {}).get(h.ics)
        if text is None and reason is not None:
            raise CalendarError(f'ics file "{h.ics}": {reason}')
        if text is None:
            raise CalendarError(
                f'ics file "{h.ics}" was not passed in: the program loading the policy must read'
                " it (relative to the policy file) and pass its text"
            )
        dates |= ics_holiday_dates(text, source=h.ics)
    return Calendar.build(
        name=name,
        zone=spec.timezone,
        week={wd: tuple(v) for wd, v in week.items()},
        dates=dates,
        yearly=[parse_month_day(t) for t in h.yearly],
        country=h.country,
        subdivision=h.subdivision,
    )



@dataclass(frozen=True, slots=True)
class ClockTarget:
    """One clock's target for one ticket, resolved from the policy: the input of `tiering.sla`."""

    clock: str
    seconds: int
    calendar: str
    pause: frozenset[str]
    warn_at: tuple[float, ...]
    #: Where the target comes from, as a policy key path (for explanations).
    source: str = ""


class SlaPolicy:
    """The compiled `calendars` and `sla` sections."""

    def __init__(self, spec: SlaSpec | None, calendars: Mapping[str, Calendar]) -> None:
        self.spec = spec
        self.calendars: dict[str, Calendar] = {ALWAYS: Calendar.always(), **calendars}
        cats: dict[str, str] = dict(JIRA_CATEGORY_DEFAULTS)
        if spec is not None:
            cats.update({str(k): str(v) for k, v in spec.statuses.jira.categories.items()})
        self._jira_categories = cats
        self._jira_names = (
            {k.lower(): v for k, v in spec.statuses.jira.names.items()} if spec else {}
        )
        self.warning_label = (spec.on_warning.label if spec else None) or "sla-warning"
        self.breach_label = (spec.on_breach.label if spec else None) or "sla-breached"

    @property
    def enabled(self) -> bool:
        return self.spec is not None and bool(self.spec.plans)

    def targets_for(
        self, *, plan: str | None, tier: str | None, priority: str | None
    ) -> tuple[ClockTarget, ...]:
        """The clocks a ticket of this plan, tier and priority runs, with their targets.

        The priority's targets replace the tier's clock by clock; the tier's calendar wins over
        the plan's, which wins over `sla.calendar`. No plan or tier without targets: no clock.
        """
        spec = self.spec
        if spec is None or plan is None or tier is None:
            return ()
        pt = spec.plans.get(plan)
        tt = pt.tiers.get(tier) if pt else None
        if pt is None or tt is None:
            return ()
        prio: Targets | None = None
        prio_key = ""
        if priority is not None:
            for k, v in tt.priority.items():
                if k.lower() == priority.lower():
                    prio, prio_key = v, k
        calendar = tt.calendar or pt.calendar or spec.calendar
        warn = tuple(sorted(spec.warn_at))
        out: list[ClockTarget] = []
        base = f"sla.plans.{plan}.tiers.{tier}"
        for clock in CLOCKS:
            seconds = getattr(prio, clock, None) if prio is not None else None
            source = f"{base}.priority.{prio_key}.{clock}"
            if seconds is None:
                seconds = getattr(tt, clock)
                source = f"{base}.{clock}"
            if seconds is None:
                continue
            out.append(ClockTarget(
                clock=clock,
                seconds=seconds,
                calendar=calendar,
                pause=frozenset(getattr(spec.pause, clock)),
                warn_at=warn,
                source=source,
            ))
        return tuple(out)

    def summary(self) -> str:
        """The tail of `Policy.summary`: calendars and SLA plans."""
        if self.spec is None and len(self.calendars) == 1:
            return ""
        plans = len(self.spec.plans) if self.spec else 0
        return f"; {len(self.calendars) - 1} calendars, SLA targets for {plans} plans"

    def jira_status(self, name: str | None, category: str | None) -> str | None:
        """A Jira status as a neutral status: by name (any case), else by category key."""
        if name is not None and name.lower() in self._jira_names:
            return self._jira_names[name.lower()]
        if category is not None:
            return self._jira_categories.get(category)
        return None


def compile_sla(
    calendars: Mapping[str, CalendarSpec], sla: SlaSpec | None, files: Mapping[str, str]
) -> SlaPolicy:
    """Build the checked sections (call after `semantic_errors` found nothing)."""
    return SlaPolicy(sla, {n: _build(n, s, files) for n, s in calendars.items()})
