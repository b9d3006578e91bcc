"""The policy's `calendars` and `sla` sections as models, with their durations, hours and days.

    calendars:
      berlin-office:
        timezone: Europe/Berlin
        hours: {mon-fri: ["09:00-12:30", "13:30-17:00"]}
        holidays: {country: DE, subdivision: BE, dates: [2026-12-24], yearly: ["12-31"],
                   ics: holidays/berlin.ics}
    sla:
      calendar: 24x7
      warn_at: [0.75]
      plans:
        premium:
          calendar: berlin-office
          tiers:
            L1: {first_response: 1h, time_in_tier: 4h, resolution: 2d,
                 priority: {urgent: {first_response: 15m}}}

The structure is checked by pydantic when tiering/policy_validate.py validates the whole file;
meaning by tiering/sla_checks.py, and tiering/sla_policy.py compiles the checked sections.

The service enforces them (webhooks/sla_work.py): see the admin guide.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    WithJsonSchema,
    field_validator,
)

from tiering.calendars import ALWAYS

# The same name rule as tiering.policy_models.NAME_PATTERN (not imported: that module imports
# this one).
_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
Name = Annotated[StrictStr, Field(pattern=_NAME)]

#: Vendor-neutral statuses: Zendesk's system ticket statuses. "new", "open", "pending", "hold",
#: "solved" are its status categories, "closed" belongs to "solved", and "hold" may be turned off
#: (Zendesk API reference, "Custom ticket statuses": each custom status belongs to one of these
#: categories, so a ticket's `status` stays one of them). Jira statuses are mapped by name or by
#: status category (below).
Status = Literal["new", "open", "pending", "hold", "solved", "closed"]
STATUSES: tuple[str, ...] = ("new", "open", "pending", "hold", "solved", "closed")
#: A solved or closed ticket stops every clock; reopening resumes them.
STOP_STATUSES = frozenset({"solved", "closed"})

#: Jira status category keys and their neutral status. The keys are "new", "indeterminate" and
#: "done" in real issue payloads (statusCategory {"id": 4, "key": "indeterminate"} in Cloud
#: responses recorded in public Jira clients' test fixtures); the example on Atlassian's "Get
#: all status categories" page (GET /rest/api/3/statuscategory) shows other, made-up keys, so
#: the page alone was not trusted. Unconfirmed: what Data Center sends for "No Category".
JIRA_CATEGORY_DEFAULTS: Mapping[str, str] = {
    "new": "new", "indeterminate": "open", "done": "solved",
}

CLOCKS = ("first_response", "time_in_tier", "resolution")
Clock = Literal["first_response", "time_in_tier", "resolution"]

_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"(\d+)([smhd])")


def parse_duration(text: str) -> int:
    """`90s`, `15m`, `8h`, `2d` or a sum such as `1h30m`, in seconds. `d` is 24 hours."""
    raw = text.strip().replace(" ", "")
    if not raw or _DURATION.sub("", raw):
        raise ValueError(
            f'"{text}" is not a duration: write a number and a unit (s, m, h, d), such as 90s,'
            " 15m, 8h, 2d or 1h30m"
        )
    total = sum(int(n) * _UNIT[u] for n, u in _DURATION.findall(raw))
    if total <= 0:
        raise ValueError(f'"{text}" is zero: a target must be longer than that')
    return total


def _duration(value: object) -> int:
    if not isinstance(value, str):
        raise ValueError(
            f"expected a duration such as 90s, 15m, 8h or 2d, got {value!r}"
            " (a bare number has no unit)"
        )
    return parse_duration(value)


#: In the JSON Schema (`tierdesk policy schema`) a duration is the text written, not the seconds.
Duration = Annotated[int, BeforeValidator(_duration), WithJsonSchema(
    {"type": "string", "pattern": r"^\s*(\d+\s*[smhd]\s*)+$"}
)]

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HHMM = re.compile(r"^([01]\d|2[0-4]):([0-5]\d)$")


def _clock_time(text: str) -> int:
    m = _HHMM.match(text)
    if not m or (m.group(1) == "24" and m.group(2) != "00"):
        raise ValueError(f'"{text}" is not a time of day: write HH:MM, 00:00 to 24:00')
    return int(m.group(1)) * 3600 + int(m.group(2)) * 60


def parse_interval(text: str) -> tuple[int, int]:
    """`09:00-17:00` as seconds of the day; the end may be 24:00."""
    parts = text.replace(" ", "").split("-")
    if len(parts) != 2:
        raise ValueError(f'"{text}" is not a working interval: write HH:MM-HH:MM, like 09:00-17:00')
    start, end = _clock_time(parts[0]), _clock_time(parts[1])
    if end <= start:
        raise ValueError(
            f'"{text}" ends before it starts: a shift past midnight is two intervals'
            " (22:00-24:00 on one day, 00:00-06:00 on the next)"
        )
    return start, end


def parse_days(key: str) -> tuple[int, ...]:
    """`mon`, `mon-fri` or `sat-sun` as weekday numbers (0 = Monday)."""
    k = key.strip().lower()
    if k in _DAYS:
        return (_DAYS.index(k),)
    a, _, b = k.partition("-")
    if a in _DAYS and b in _DAYS and _DAYS.index(a) <= _DAYS.index(b):
        return tuple(range(_DAYS.index(a), _DAYS.index(b) + 1))
    raise ValueError(
        f'"{key}" is not a day or range of days: use mon, tue, wed, thu, fri, sat, sun or a'
        " range like mon-fri"
    )


def parse_month_day(text: str) -> tuple[int, int]:
    m = re.match(r"^(\d{2})-(\d{2})$", text)
    if m:
        month, day = int(m.group(1)), int(m.group(2))
        try:
            date(2024, month, day)  # a leap year: 02-29 is allowed
        except ValueError:
            pass
        else:
            return month, day
    raise ValueError(f'"{text}" is not a month and day: write MM-DD, like 12-25')


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HolidaysSpec(_Model):
    """Days without business time."""

    #: One-off dates (YYYY-MM-DD).
    dates: list[date] = Field(default=[], description="One-off dates (YYYY-MM-DD).")
    #: Every year on these days (MM-DD).
    yearly: list[StrictStr] = Field(default=[], description="Every year on these days (MM-DD).")
    #: Public holidays from the `holidays` package: ISO 3166-1 alpha-2 country, and subdivision.
    country: StrictStr | None = Field(
        default=None,
        description="Public holidays from the holidays package: an ISO 3166-1 country code, "
        "e.g. DE, US.",
    )
    subdivision: StrictStr | None = Field(
        default=None,
        description="The country's state or province, e.g. BE, NY.",
    )
    #: An iCalendar file of holidays, relative to the policy file; its text is passed to
    #: load_policy by the caller (tiering reads no file).
    ics: StrictStr | None = Field(
        default=None,
        description="An iCalendar file of holidays, relative to the policy file.",
    )

    @field_validator("dates", mode="before")
    @classmethod
    def _strict_dates(cls, v: object) -> object:
        if isinstance(v, list):
            for item in v:
                if not isinstance(item, date | str):
                    raise ValueError(f"expected dates written YYYY-MM-DD, got {item!r}")
        return v

    @field_validator("yearly")
    @classmethod
    def _month_days(cls, v: list[str]) -> list[str]:
        for item in v:
            parse_month_day(item)
        return v


class CalendarSpec(_Model):
    """A business calendar: an IANA zone, weekly working hours, holidays."""

    timezone: StrictStr = Field(
        description="An IANA zone, e.g. Europe/Berlin; summer time is followed.",
    )
    #: Day or day range (mon, mon-fri) -> working intervals (HH:MM-HH:MM), split shifts allowed.
    hours: dict[StrictStr, list[StrictStr]] = Field(
        description="Day (mon ... sun) or range (mon-fri) -> working intervals HH:MM-HH:MM "
        "(split shifts allowed; 24:00 ends a day).",
    )
    holidays: HolidaysSpec = Field(
        default=HolidaysSpec(),
        description="Days without business time: public holidays of a country, yearly and"
        " one-off dates, an ICS file.",
    )
    description: StrictStr | None = Field(default=None, description="Free text.")

    @field_validator("hours")
    @classmethod
    def _hours(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        for key, intervals in v.items():
            parse_days(key)
            for text in intervals:
                parse_interval(text)
        return v


class Targets(_Model):
    """Business-time targets of one plan and tier (or one priority of them)."""

    first_response: Duration | None = Field(
        default=None,
        description="To the first public agent reply (a duration: 90s, 15m, 8h, 2d, 1h30m).",
    )
    time_in_tier: Duration | None = Field(
        default=None,
        description="An OLA: how long a ticket may stay in this tier before it is solved or "
        "escalated (a duration).",
    )
    resolution: Duration | None = Field(default=None, description="To solved (a duration).")


class TierTargets(Targets):
    calendar: StrictStr | None = Field(
        default=None,
        description="This tier's calendar (wins over the plan's).",
    )
    #: Priority (any case: Jira High, Zendesk urgent ...) -> targets that replace these.
    priority: dict[StrictStr, Targets] = Field(
        default={},
        description="Targets for one priority (any case); they replace the tier's, clock by "
        "clock.",
    )


class PlanTargets(_Model):
    calendar: StrictStr | None = Field(
        default=None,
        description="This plan's calendar (default: sla.calendar).",
    )
    tiers: dict[StrictStr, TierTargets] = Field(
        default={},
        description="Targets per tier: tier -> targets.",
    )


class NotifySpec(_Model):
    """An outgoing Slack-compatible webhook ({"text": ...}), signed with an HMAC secret from the
    settings (webhooks/notify.py): TIERDESK_SLA_NOTIFY_SECRET, or the one `secret` names in
    TIERDESK_SLA_NOTIFY_SECRETS."""

    url: StrictStr = Field(description="A Slack-compatible outgoing webhook (http(s)://...).")
    #: A key of the TIERDESK_SLA_NOTIFY_SECRETS setting (a JSON object); unset: the secret is
    #: TIERDESK_SLA_NOTIFY_SECRET. The secret itself never goes in the policy.
    secret: Name | None = Field(
        default=None,
        description="A key of the TIERDESK_SLA_NOTIFY_SECRETS setting (unset: "
        "TIERDESK_SLA_NOTIFY_SECRET signs it).",
    )

    @field_validator("url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        if not re.match(r"^https?://[^\s/]+", v):
            raise ValueError(f'"{v}" is not a web address: write https://host/path')
        return v


class ActionSpec(_Model):
    """What happens when a clock crosses a warning threshold or breaches."""

    #: A label or tag to add; unset means the default (sla-warning, sla-breached).
    label: Name | None = Field(
        default=None,
        description="A label or tag to add (default sla-warning / sla-breached).",
    )
    #: Post an internal note, once per threshold.
    note: StrictBool = Field(default=True, description="An internal note, once per threshold.")
    #: Raise one tier, through the entitlement and documentation gates.
    escalate: Literal["next"] | None = Field(
        default=None,
        description="next: one tier up, through the entitlement and documentation gates.",
    )
    #: Assign to a key of `targets`.
    assign: StrictStr | None = Field(default=None, description="A key of targets.")
    notify: NotifySpec | None = Field(
        default=None,
        description="An outgoing Slack-compatible webhook.",
    )


class PauseSpec(_Model):
    """Neutral statuses during which a clock does not run (waiting for the customer)."""

    first_response: list[Status] = Field(
        default=[],
        description="Statuses during which the first_response clock does not run.",
    )
    time_in_tier: list[Status] = Field(
        default=["pending"],
        description="Statuses during which the time_in_tier clock does not run.",
    )
    resolution: list[Status] = Field(
        default=["pending"],
        description="Statuses during which the resolution clock does not run.",
    )


class JiraStatuses(_Model):
    """How Jira statuses become neutral ones: by exact status name first, then by category."""

    names: dict[StrictStr, Status] = Field(
        default={},
        description="A Jira status (by exact name, any case) as a neutral status.",
    )
    categories: dict[Literal["new", "indeterminate", "done"], Status] = Field(
        default={},
        description="Jira statuses not listed by name, by status category key.",
    )


class StatusMap(_Model):
    jira: JiraStatuses = Field(
        default=JiraStatuses(),
        description="How Jira statuses become neutral ones.",
    )


class DueField(_Model):
    """Where the next due time of one clock is written, so agents can sort by it."""

    clock: Clock = Field(
        default="resolution",
        description="The clock whose next due time is written.",
    )
    #: `duedate` (a date: Jira's system field takes YYYY-MM-DD, see the issue examples in the
    #: Jira Cloud platform REST API, IssueBean fields) or a datetime custom field id.
    jira: StrictStr | None = Field(
        default=None,
        description="Jira's due date (duedate, a date) or a datetime custom field "
        "(customfield_N).",
    )
    #: A Zendesk ticket field id, of type date or text.
    zendesk: StrictInt | None = Field(default=None, description="A Zendesk ticket field id.")
    zendesk_type: Literal["date", "text"] = Field(
        default="date",
        description="The type of that Zendesk field.",
    )

    @field_validator("jira")
    @classmethod
    def _jira_field(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^(duedate|customfield_\d+)$", v):
            raise ValueError(
                f'"{v}" is not a Jira due-time field: use duedate or a datetime custom field id'
                " such as customfield_10200"
            )
        return v


class SlaSpec(_Model):
    """The `sla` section as written."""

    #: The calendar of plans and tiers that name none (`24x7` is built in).
    calendar: StrictStr = Field(
        default=ALWAYS,
        description="The calendar of plans and tiers that name none.",
    )
    warn_at: list[Annotated[float, Field(gt=0, lt=1)]] = Field(
        default=[0.75],
        description="Fractions of a target (between 0 and 1) at which on_warning applies, "
        "once each.",
    )
    pause: PauseSpec = Field(
        default=PauseSpec(),
        description="Statuses during which a clock does not run.",
    )
    statuses: StatusMap = Field(
        default=StatusMap(),
        description="How vendor statuses become neutral ones.",
    )
    plans: dict[StrictStr, PlanTargets] = Field(
        default={},
        description="Targets per plan and tier: plan -> targets.",
    )
    on_warning: ActionSpec = Field(
        default=ActionSpec(),
        description="What should happen at a warning threshold.",
    )
    on_breach: ActionSpec = Field(
        default=ActionSpec(),
        description="What should happen at a breach.",
    )
    due_field: DueField | None = Field(
        default=None,
        description="Where the next due time of one clock is written.",
    )
