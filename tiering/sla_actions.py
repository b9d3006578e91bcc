"""SLA actions: the thresholds a ticket's clocks crossed, acted on once, merged into its Decision.

    outcome = apply_clocks(ticket, policy, decide(ticket, policy, now=now), report,
                           fired=already_fired, now=now)
    outcome.decision   # the engine's decision plus labels, note, escalation, assignment, due time
    outcome.fired      # threshold keys acted on now: record them with the decision
    outcome.notices    # outgoing webhook messages (webhooks/notify.py sends them)

Pure, like `decide`: no I/O, no clock reads. A threshold is named by `threshold_key`, e.g.
`time_in_tier@1764590400:warn0.75` or `resolution@1764590400:breach`: the clock, the instant it
started (a new tier entry or a new ticket cycle gives new keys) and the fraction. A key in
`fired` is never acted on again, so deciding again on the same history changes nothing.

For each crossed threshold not in `fired`, on a clock that is not stopped, the policy's
`on_warning` (a `warn_at` fraction) or `on_breach` action applies:

- `label` (default sla-warning / sla-breached) is added; tierdesk does not remove it;
- `note`: an internal note saying the clock, elapsed and target business time, due time and
  why; the thresholds of one decision share one note, ending `tierdesk-sla:<key>`;
- `escalate: next`: one tier up, by deciding again as if an agent had added the next tier's
  request label, so the entitlement cap and the documentation gate apply as to any request; a
  gate that holds the ticket says so in the note. At most one tier per decision; none when the
  decision raises the tier anyway;
- `assign`: the decision assigns that target (it wins over the escalation's own target);
- `notify`: one `Notice` per threshold, keyed `<ticket>|<threshold key>`.

A warning crossed together with its clock's breach (the service was down, or a re-target jumped
past both) is recorded as fired but not acted on: the breach says more.

The due time: when `sla.due_field` is set and the connector read the field's current value into
`ticket.fields[DUE_DATE]` (a date field: `YYYY-MM-DD`) or `ticket.fields[DUE_TIME]` (a datetime or
text field: UTC `YYYY-MM-DDTHH:MMZ`), the decision carries the clock's due time to the minute,
in its calendar's zone, and `due_write` only when that differs from the current value. A paused
clock clears the field; a stopped clock (solved, closed, answered) or a ticket without that clock
leaves it as it is.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from tiering import notes
from tiering.engine import decide
from tiering.models import Decision, Ticket
from tiering.policy import Policy
from tiering.sla import ClockState, SlaReport, Threshold
from tiering.sla_models import ActionSpec

#: `Ticket.fields` keys a connector fills with the due field's current value (None: empty). The
#: colon keeps them apart from policy field names, which cannot contain one.
DUE_DATE = "tierdesk:due-date"
DUE_TIME = "tierdesk:due-time"
#: The form of a DUE_TIME value (UTC, to the minute).
DUE_TIME_FORMAT = "%Y-%m-%dT%H:%MZ"
#: `Ticket.fields` key a connector fills, on a read that includes comments, with the SLA note
#: keys found on the ticket: thresholds whose note is there already were acted on (a write that
#: landed before its keys were recorded) and are not acted on again.
SLA_NOTES = "tierdesk:sla-notes"

#: The last line of an SLA note: `tierdesk-sla:<key>` (not a `tierdesk-note:` marker, so the
#: checklist's note key found on a ticket stays the checklist's).
SLA_MARKER = "tierdesk-sla:"
_SLA_RE = re.compile(r"tierdesk-sla:([0-9a-f]{16})")

_LABEL_DEFAULT = {"warning": "sla-warning", "breach": "sla-breached"}
_CLOCK_WORDS = {
    "first_response": "first response",
    "time_in_tier": "time in tier",
    "resolution": "resolution",
}


def threshold_key(clock: str, started_at: datetime, fraction: float) -> str:
    """The stable name of one threshold of one clock run: `<clock>@<start epoch>:warn<f>` or
    `...:breach` (fraction 1.0)."""
    suffix = "breach" if fraction >= 1.0 else f"warn{fraction:g}"
    return f"{clock}@{int(started_at.timestamp())}:{suffix}"


def sla_note_keys_in(text: str | None) -> tuple[str, ...]:
    """The SLA note keys (`tierdesk-sla:<key>`) in a comment's text, oldest first."""
    return tuple(_SLA_RE.findall(text)) if text else ()


@dataclass(frozen=True, slots=True)
class Notice:
    """One outgoing webhook message: Slack-compatible `{"text": text}` to `url`, sent once
    (`notice_key` is unique per ticket and threshold)."""

    url: str
    text: str
    notice_key: str


@dataclass(frozen=True, slots=True)
class Crossing:
    """A threshold acted on by this outcome."""

    key: str
    kind: str  # "warning" or "breach"
    clock: ClockState
    threshold: Threshold
    action: ActionSpec


@dataclass(frozen=True, slots=True)
class SlaOutcome:
    """The merged decision, the threshold keys acted on now, and the notices to send."""

    decision: Decision
    fired: frozenset[str]
    notices: tuple[Notice, ...]
    crossings: tuple[Crossing, ...] = ()


def duration(seconds: float) -> str:
    """Business seconds in words: `45s`, `15m`, `2h 5m`, `1d 3h` (a day is 24 hours)."""
    total = max(0, round(seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{v}{u}" for v, u in ((days, "d"), (hours, "h"), (minutes, "m")) if v]
    if secs and not days and not hours:
        parts.append(f"{secs}s")
    return " ".join(parts[:2]) or "0s"


def _when(at: datetime | None, zone: ZoneInfo) -> str:
    if at is None:
        return "none while the clock does not run"
    return at.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")


def _zone(policy: Policy, clock: ClockState) -> ZoneInfo:
    calendar = policy.sla.calendars.get(clock.calendar)
    return calendar.zone if calendar is not None else ZoneInfo("UTC")


def _crossings(policy: Policy, report: SlaReport, fired: frozenset[str], now: datetime
               ) -> tuple[list[Crossing], set[str]]:
    """The thresholds to act on, and every key newly recorded (those plus superseded
    warnings)."""
    spec = policy.sla.spec
    on_warning = spec.on_warning if spec is not None else ActionSpec()
    on_breach = spec.on_breach if spec is not None else ActionSpec()
    acted: list[Crossing] = []
    recorded: set[str] = set()
    for clock in report.clocks:
        if clock.state == "stopped":
            continue
        new = [
            (threshold_key(clock.clock, clock.started_at, t.fraction), t)
            for t in clock.crossed
            if t.at <= now
        ]
        new = [(k, t) for k, t in new if k not in fired]
        breach = any(t.fraction >= 1.0 for _, t in new)
        for key, t in new:
            recorded.add(key)
            if t.fraction >= 1.0:
                acted.append(Crossing(key, "breach", clock, t, on_breach))
            elif not breach:
                acted.append(Crossing(key, "warning", clock, t, on_warning))
    return acted, recorded


def _has_label(labels: Iterable[str], label: str) -> bool:
    return any(x.lower() == label.lower() for x in labels)


def _escalate(ticket: Ticket, policy: Policy, base: Decision, now: datetime
              ) -> tuple[Decision, frozenset[str], str]:
    """One tier up through the engine's gates: the decision to build on, the labels it expects
    the ticket to have before its own adds and removes (the virtual request label), and what
    happened, in words for the note."""
    labels = frozenset(ticket.labels)
    if base.tier is None:
        return base, labels, "no escalation: the ticket is routed, it has no tier"
    if base.previous_tier is not None and policy.rank[base.tier] > policy.rank[base.previous_tier]:
        return base, labels, f"no further escalation: the ticket moves to {base.tier} now"
    rank = policy.rank[base.tier]
    if rank + 1 >= len(policy.tiers):
        return base, labels, f"no escalation: {base.tier} is the highest tier"
    nxt = policy.tiers[rank + 1]
    request = policy.request_label[nxt]
    virtual = labels | {request}
    again = decide(replace(ticket, labels=virtual), policy, now=now)
    asked = f"Escalation to {nxt} was requested (label {request})."
    if request not in labels:
        again = replace(again, reasons=tuple(
            f"The SLA action asks for {nxt} (label {request}, as an agent's request would)."
            if r == asked else r for r in again.reasons
        ))
    if again.tier == nxt:
        return again, virtual, f"escalated from {base.tier} to {nxt}"
    if again.missing:
        items = "; ".join(f"{i.label} ({i.problem})" for i in again.missing)
        return again, virtual, (
            f"escalation to {nxt} is held by the documentation gate: {items}. It stays in"
            f" {again.tier} and moves up by itself once that is complete"
        )
    refusal = next((r for r in again.reasons if "beyond what" in r), None)
    if refusal is not None:
        return again, virtual, f"escalation to {nxt} is refused by the entitlement gate: {refusal}"
    return again, virtual, f"escalation to {nxt} did not happen: " + " ".join(again.reasons[-2:])


def _note_text(ticket: Ticket, policy: Policy, crossings: list[Crossing],
               escalation: str | None, assigned: str | None) -> str:
    lines: list[str] = []
    for c in crossings:
        clock = c.clock
        zone = _zone(policy, clock)
        word = _CLOCK_WORDS.get(clock.clock, clock.clock)
        if c.kind == "breach":
            lines.append(f"tierdesk: the {word} target of ticket {ticket.key} is breached"
                         f" (at {_when(c.threshold.at, zone)}).")
        else:
            lines.append(f"tierdesk: the {word} clock of ticket {ticket.key} passed"
                         f" {c.threshold.fraction:.0%} of its target"
                         f" (at {_when(c.threshold.at, zone)}).")
        lines.append(
            f"Elapsed {duration(clock.elapsed)} of {duration(clock.target)} business time"
            f" on calendar {clock.calendar}"
            + (f", {duration(clock.paused)} paused not counted" if clock.paused else "")
            + f"; due {_when(clock.due or clock.breached_at, zone)}."
        )
        why = f"Why: the target is {clock.source}" if clock.source else "Why: the SLA policy"
        lines.append(f"{why} (clock started {_when(clock.started_at, zone)}).")
        lines.append("")
    if escalation is not None:
        lines.append(f"{escalation[0].upper()}{escalation[1:]}.")
    if assigned is not None:
        lines.append(f"Assigned to the {assigned} target.")
    return "\n".join(lines).rstrip()


def _notice_text(ticket: Ticket, policy: Policy, c: Crossing, escalation: str | None) -> str:
    clock = c.clock
    zone = _zone(policy, clock)
    word = _CLOCK_WORDS.get(clock.clock, clock.clock)
    head = "SLA breach" if c.kind == "breach" else f"SLA warning ({c.threshold.fraction:.0%})"
    text = (
        f"{head}: ticket {ticket.key}"
        + (f" ({ticket.subject})" if ticket.subject else "")
        + f", {word} {duration(clock.elapsed)} of {duration(clock.target)}"
        f" on {clock.calendar}, due {_when(clock.due or clock.breached_at, zone)}"
    )
    if escalation is not None and c.action.escalate == "next":
        text += f"; {escalation}"
    return _slack_escape(text + ".")


def _slack_escape(text: str) -> str:
    """Slack reads `&`, `<` and `>` as control characters in message text and asks for them as
    `&amp;`, `&lt;`, `&gt;` (Slack API docs, "Formatting text for app surfaces", "Escaping
    text")."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _due(ticket: Ticket, policy: Policy, report: SlaReport) -> tuple[datetime | None, bool]:
    """The due time to write and whether to write it (see the module docstring)."""
    spec = policy.sla.spec
    if spec is None or spec.due_field is None:
        return None, False
    if DUE_DATE in ticket.fields:
        kind, current = "date", ticket.fields[DUE_DATE]
    elif DUE_TIME in ticket.fields:
        kind, current = "time", ticket.fields[DUE_TIME]
    else:
        return None, False  # the connector does not map a due field for this vendor
    clock = report.clock(spec.due_field.clock)
    if clock is None or clock.state == "stopped":
        return None, False
    if clock.due is None:  # paused: no due time while the customer is awaited
        return None, current is not None and current != ""
    at = clock.due.astimezone(_zone(policy, clock)).replace(second=0, microsecond=0)
    wanted = (
        at.date().isoformat() if kind == "date" else at.astimezone(UTC).strftime(DUE_TIME_FORMAT)
    )
    return at, wanted != current


def _sla_note_key(ticket: Ticket, crossings: list[Crossing]) -> str:
    return notes.key("sla", ticket.key, *(c.key for c in crossings if c.action.note))


def apply_clocks(
    ticket: Ticket,
    policy: Policy,
    decision: Decision,
    report: SlaReport | None,
    *,
    fired: frozenset[str],
    now: datetime,
) -> SlaOutcome:
    """`decision` (the engine's, for `ticket`) with the SLA actions of every threshold in
    `report` crossed by `now` and not in `fired`, and the due time (module docstring)."""
    if report is None or policy.sla.spec is None:
        return SlaOutcome(decision=decision, fired=frozenset(), notices=())
    crossings, recorded = _crossings(policy, report, fired, now)
    on_ticket = ticket.fields.get(SLA_NOTES)
    if isinstance(on_ticket, tuple) and _sla_note_key(ticket, crossings) in on_ticket:
        crossings = []  # their note is on the ticket: the write landed, only the keys were lost
    base, before = decision, frozenset(ticket.labels)
    escalation: str | None = None
    if any(c.action.escalate == "next" for c in crossings):
        base, before, escalation = _escalate(ticket, policy, decision, now)
    assigned = next((c.action.assign for c in reversed(crossings) if c.action.assign), None)
    want = set(base.labels_after(before))
    for c in crossings:
        label = c.action.label or _LABEL_DEFAULT[c.kind]
        if not _has_label(want, label):
            want.add(label)
    have = frozenset(ticket.labels)
    labels_add = tuple(sorted(want - have))
    labels_remove = tuple(sorted(have - want))
    noted = [c for c in crossings if c.action.note]
    comment, note_key, sla_note_key = base.comment, base.note_key, None
    if noted:
        text = _note_text(ticket, policy, noted, escalation, assigned)
        sla_note_key = _sla_note_key(ticket, noted)
        sla_part = f"{text}\n\n{SLA_MARKER}{sla_note_key}"
        if base.comment:
            comment = f"{sla_part}\n\n{base.comment}"
        else:
            comment, note_key = sla_part, ticket.last_note_key
    due_at, due_write = _due(ticket, policy, report)
    reasons = [r for r in base.reasons if "nothing to write" not in r]
    for c in crossings:
        label = c.action.label or _LABEL_DEFAULT[c.kind]
        reasons.append(
            f"SLA {c.kind}: {c.clock.clock} {duration(c.clock.elapsed)} of"
            f" {duration(c.clock.target)} ({c.key}): label {label}."
        )
    superseded = sorted(recorded - {c.key for c in crossings})
    if superseded:
        reasons.append("SLA warnings passed together with their breach, not acted on: "
                       + ", ".join(superseded) + ".")
    if escalation is not None:
        reasons.append(f"SLA escalation: {escalation}.")
    if assigned is not None:
        reasons.append(f"SLA action: assigned to the {assigned} target.")
    if due_write:
        reasons.append(
            f"Due field: {due_at.isoformat() if due_at else 'cleared (the clock is paused)'}."
        )
    merged = replace(
        base,
        labels_add=labels_add,
        labels_remove=labels_remove,
        assign=assigned or base.assign,
        comment=comment,
        note_key=note_key,
        sla_note_key=sla_note_key,
        sla_fired=tuple(sorted(recorded)),
        due_at=due_at,
        due_write=due_write,
        decided_at=now,
    )
    if not merged.changed:
        reasons.append("The ticket already matches the policy: nothing to write.")
    merged = replace(merged, reasons=tuple(reasons))
    notices = tuple(
        Notice(url=c.action.notify.url, text=_notice_text(ticket, policy, c, escalation),
               notice_key=f"{ticket.key}|{c.key}")
        for c in crossings
        if c.action.notify is not None
    )
    return SlaOutcome(decision=merged, fired=frozenset(recorded), notices=notices,
                      crossings=tuple(crossings))
