"""`tierdesk sla list` and the SLA clocks `tierdesk explain` shows, from the inbox's records.

    tierdesk sla list [--at-risk [--within 1h]] [--vendor V] [--limit N] [--json]

`sla list` lists the open clocks of the inbox's timers (one row per ticket, kept by the worker
each time it evaluates a ticket), soonest due first; paused clocks, which have no due time, come
last. `--at-risk` keeps the clocks that need attention now: a warning threshold crossed,
breached, or due within `--within` (default 1h) of now.

`explain` recomputes one ticket's clocks from its recorded history (`Inbox.sla_history`) under the
policy in force (TIERDESK_POLICY) at `now`, with the plan, tier and priority of its timer or of
its last decision, and marks each threshold the worker has acted on (`Inbox.sla_fired_keys`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import click

from connectors.base import VENDORS
from webhooks.command_settings import verbose_option

if TYPE_CHECKING:
    from tiering.policy import Policy
    from tiering.sla import ClockState, SlaReport
    from webhooks.inbox.store import Inbox

#: `--within` of `sla list --at-risk` when not given.
DEFAULT_WINDOW = "1h"


def span(seconds: float) -> str:
    """Business seconds as 1h30m, 45m, 20s (hours, not days: a "d" is 24 business hours)."""
    total = round(abs(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours}h" if hours else "", f"{minutes}m" if minutes else "",
             f"{secs}s" if secs and not hours else ""]
    text = "".join(parts) or "0s"
    return f"-{text}" if seconds < 0 else text


def when(at: datetime | str | float | None) -> str:
    """An instant as 2026-12-01 10:15:00Z ("-" for none)."""
    if at is None:
        return "-"
    if isinstance(at, str):
        at = datetime.fromisoformat(at)
    elif isinstance(at, int | float):
        at = datetime.fromtimestamp(at, UTC)
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def parse_now(text: str | None, param: str = "--now") -> datetime:
    """`--now` as an aware instant (a time without a zone is UTC); the current time if None."""
    if text is None:
        return datetime.now(UTC)
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is not an ISO-8601 time (like 2026-12-01T10:00:00Z)", param_hint=param
        ) from None
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


# ----------------------------------------------------------------------------- explain


@dataclass(frozen=True)
class TicketClocks:
    """One ticket's clocks at `now` under the current policy, and what they were computed from."""

    plan: str | None
    tier: str | None
    priority: str | None
    #: Where plan/tier/priority were read: "timer" or "last decision".
    basis: str
    report: SlaReport | None
    fired: frozenset[str]
    policy_digest: str
    #: Why there are no clocks (None when there are).
    none_because: str | None = None
    #: Clocks the policy sets for this ticket that tierdesk cannot measure on its vendor
    #: (connectors.base.Vendor.unmeasured_clocks): left out, and said so.
    unmeasured: tuple[str, ...] = ()
    #: The timer as the inbox holds it, when a dead-lettered due event re-armed it (the worker
    #: tries the ticket again at its due instant): (times in a row, due instant, the error).
    rearmed: tuple[int, float | None, str | None] | None = None


def ticket_clocks(
    inbox: Inbox, policy: Policy, vendor: str, ticket: str, now: datetime
) -> TicketClocks:
    """Recompute one ticket's clocks (see the module docstring)."""
    from tiering.sla import HistoryError, sla_for

    fired = inbox.sla_fired_keys(vendor, ticket)
    digest = policy.digest[:12]
    timer = inbox.sla_timer(vendor, ticket)
    plan = tier = priority = None
    basis = ""
    if timer is not None:
        plan, tier, priority, basis = timer.plan, timer.tier, timer.priority, "timer"
    else:
        last = inbox.history(vendor, ticket, limit=1)
        if last and last[0].decision:
            plan = last[0].decision.get("plan")
            tier = last[0].decision.get("tier") or last[0].tier_after
            basis = "last decision"
    history = inbox.sla_history(vendor, ticket)

    rearmed = ((timer.rearms, timer.due_at, timer.rearm_error)
               if timer is not None and timer.rearms else None)

    def nothing(why: str) -> TicketClocks:
        return TicketClocks(plan, tier, priority, basis, None, fired, digest, why,
                            rearmed=rearmed)

    if not policy.sla.enabled:
        return nothing(f"SLA is not configured: the policy ({policy.source}) has no sla.plans")
    if history is None:
        return nothing("the inbox has recorded no SLA history of this ticket yet (its creation"
                       " is not known)")
    if tier is None and history.tiers:
        tier, basis = history.tiers[-1].tier, basis or "recorded history"
    vendor_unmeasured = VENDORS[vendor].unmeasured_clocks if vendor in VENDORS else frozenset()
    unmeasured = tuple(sorted(
        {t.clock for t in policy.sla.targets_for(plan=plan, tier=tier, priority=priority)}
        & vendor_unmeasured))
    try:
        report = sla_for(history, policy.sla, plan=plan, tier=tier, priority=priority, now=now,
                         unmeasured=vendor_unmeasured)
    except HistoryError as exc:
        return nothing(f"the recorded history cannot be measured: {exc}")
    if not report.clocks:
        if unmeasured:
            return replace(nothing(
                f"the policy sets only {', '.join(unmeasured)} for plan {plan or '(none)'} in"
                f" tier {tier or '(none)'}, which tierdesk does not measure on {vendor} yet"
            ), unmeasured=unmeasured)
        return nothing(f"the policy sets no clock for plan {plan or '(none)'} in tier"
                       f" {tier or '(none)'}")
    return TicketClocks(plan, tier, priority, basis, report, fired, digest,
                        unmeasured=unmeasured, rearmed=rearmed)


def _thresholds(c: ClockState, warn_at: Sequence[float], fired: frozenset[str]
                ) -> list[dict[str, Any]]:
    from tiering.sla_actions import threshold_key  # the key the worker records per threshold

    crossed = {round(t.fraction, 9): t.at for t in c.crossed}
    out: list[dict[str, Any]] = []
    for fraction in [*sorted(warn_at), 1.0]:
        at = crossed.get(round(fraction, 9))
        name = threshold_key(c.clock, c.started_at, fraction)
        key = name if name in fired else None
        out.append({
            "fraction": fraction,
            "crossed_at": at.isoformat() if at else None,
            "fired": key is not None,
            "fired_key": key,
        })
    return out


def clocks_view(tc: TicketClocks, policy: Policy, now: datetime) -> dict[str, Any]:
    """The JSON of `explain --json`'s "sla" member."""
    warn = tuple(policy.sla.spec.warn_at) if policy.sla.spec else ()
    clocks = []
    matched: set[str] = set()
    for c in tc.report.clocks if tc.report else ():
        view: dict[str, Any] = c.to_dict()
        thresholds = _thresholds(c, warn, tc.fired)
        view["thresholds"] = thresholds
        matched |= {str(t["fired_key"]) for t in thresholds if t["fired_key"]}
        clocks.append(view)
    return {
        "now": now.isoformat(),
        "policy_digest": tc.policy_digest,
        "plan": tc.plan,
        "tier": tc.tier,
        "priority": tc.priority,
        "basis": tc.basis or None,
        "clocks": clocks,
        "fired": sorted(tc.fired),
        "fired_elsewhere": sorted(tc.fired - matched),
        "none_because": tc.none_because,
        "unmeasured": list(tc.unmeasured),
        "rearmed": None if tc.rearmed is None else {
            "times": tc.rearmed[0],
            "due": when_iso(tc.rearmed[1]),
            "error": tc.rearmed[2],
        },
    }


def when_iso(at: float | None) -> str | None:
    return None if at is None else datetime.fromtimestamp(at, UTC).isoformat()


def clocks_lines(view: Mapping[str, Any], show: Any = str) -> list[str]:
    """`explain`'s text for the clocks of `clocks_view` (`show` makes ticket text printable)."""
    head = (f"SLA clocks at {when(view['now'])} (policy {view['policy_digest']}, plan"
            f" {show(str(view['plan'] or '-'))}, tier {show(str(view['tier'] or '-'))}, priority"
            f" {show(str(view['priority'] or '-'))}" + (f"; from its {view['basis']}"
                                                       if view["basis"] else "") + "):")
    lines = [f"SLA clocks: none ({view['none_because']})"] if view["none_because"] else [head]
    for c in view["clocks"]:
        target = c["target_seconds"]
        due = (f"due {when(c['due'])}" if c["due"] else
               "no due time while " + ("stopped" if c["state"] == "stopped" else "paused"))
        lines.append(
            f"  {c['clock']:<14} {c['state']:<9} elapsed {span(c['elapsed_seconds'])} of"
            f" {span(target)}, paused {span(c['paused_seconds'])}, {due} ({c['calendar']})"
        )
        lines.append(f"  {'':<14} why: {c['source']}; started {when(c['started_at'])}")
        marks = []
        for t in c["thresholds"]:
            name = "breach" if t["fraction"] == 1.0 else f"{round(t['fraction'] * 100)}%"
            if t["crossed_at"]:
                state = f"crossed {when(t['crossed_at'])}"
            elif t["fraction"] == 1.0 and c["due"]:
                state = f"at {when(c['due'])} if nothing changes"
            else:
                state = "not reached"
            state += ", acted on" if t["fired"] else ""
            marks.append(f"{name} {state}")
        lines.append(f"  {'':<14} thresholds: " + "; ".join(marks))
    for name in view.get("unmeasured", ()):
        lines.append(f"  {name:<14} not measured on this vendor yet: the policy sets it, but"
                     " tierdesk does not record what stops it here (left out, never breaches)")
    if view.get("rearmed"):
        r = view["rearmed"]
        lines.append(f"  timer re-armed after its due event became a dead letter ({r['times']}"
                     f" in a row): tried again at {when(r['due'])}; error:"
                     f" {show(str(r['error'] or '-'))[:200]}")
    if view["fired_elsewhere"]:
        lines.append("  thresholds acted on earlier (another tier or target): "
                     + ", ".join(show(k) for k in view["fired_elsewhere"]))
    return lines


# ----------------------------------------------------------------------------- sla list


def open_clocks(timers: Iterable[Any]) -> list[dict[str, Any]]:
    """Every open (not stopped) clock of the timers, soonest due first, paused ones last."""
    rows: list[dict[str, Any]] = []
    for timer in timers:
        for c in timer.clocks:
            if c.get("state") == "stopped":
                continue
            rows.append({
                "vendor": timer.vendor, "ticket": timer.ticket, "plan": timer.plan,
                "tier": timer.tier, "priority": timer.priority, "clock": c.get("clock"),
                "state": c.get("state"), "due": c.get("due"),
                "next_change": c.get("next_change"),
                "elapsed_seconds": c.get("elapsed_seconds"),
                "target_seconds": c.get("target_seconds"),
                "source": c.get("source"), "computed_at": timer.updated_at,
                "policy_digest": timer.policy_digest,
                # Re-armed after a dead-lettered due event (0: not): tried again at retry_at.
                "rearms": timer.rearms, "rearm_error": timer.rearm_error,
                "retry_at": when_iso(timer.due_at) if timer.rearms else None,
            })
    far = datetime.max.replace(tzinfo=UTC)
    rows.sort(key=lambda r: (datetime.fromisoformat(r["due"]) if r["due"] else far,
                             r["vendor"], r["ticket"], r["clock"] or ""))
    return rows


def state_now(row: Mapping[str, Any], now: datetime) -> str:
    """The clock's state at `now` from what was stored: a running clock whose next change (a
    threshold) or due time has passed since is reported as warning or breached."""
    state = str(row["state"])
    due = datetime.fromisoformat(row["due"]) if row["due"] else None
    nxt = datetime.fromisoformat(row["next_change"]) if row["next_change"] else None
    if state in ("running", "warning") and due is not None and due <= now:
        return "breached"
    if state == "running" and nxt is not None and nxt <= now:
        return "warning"
    return state


def at_risk(row: Mapping[str, Any], now: datetime, window: timedelta) -> bool:
    """Warning, breached, or due within `window` of `now`."""
    if state_now(row, now) in ("warning", "breached"):
        return True
    return bool(row["due"]) and datetime.fromisoformat(row["due"]) <= now + window


@click.group("sla")
def sla_group() -> None:
    """SLA and OLA clocks of the tickets in the inbox."""


@sla_group.command("list", epilog="Settings, including the inbox database"
                   " (TIERDESK_DATABASE_URL), come from TIERDESK_* environment variables or a"
                   " .env file in the current directory. This command never creates a"
                   " database.")
@click.option("--at-risk", "risky", is_flag=True,
              help="Only clocks past a warning threshold, breached, or due within --within.")
@click.option("--within", default=DEFAULT_WINDOW, show_default=True, metavar="DURATION",
              help="With --at-risk: how soon a due time counts as at risk (90s, 15m, 8h, 2d;"
                   " wall-clock time).")
@click.option("--vendor", type=click.Choice(list(VENDORS)), default=None,
              help="Only this vendor's tickets.")
@click.option("--limit", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Read at most this many tickets' timers (soonest breach first).")
@click.option("--now", "now_text", metavar="ISO-8601", default=None,
              help="Judge due times as of this instant (default: the current time, UTC).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@verbose_option
def list_command(risky: bool, within: str, vendor: str | None, limit: int,
                 now_text: str | None, as_json: bool, verbose: bool) -> None:
    """Open SLA/OLA clocks, soonest due first (paused clocks, with no due time, last).

    Each row is one clock of one ticket as the worker last computed it (its "computed" time);
    a threshold passed since then shows as warning or breached. At risk means: a warning
    threshold crossed, breached, or due within --within of now."""
    from tiering.sla_models import parse_duration
    from webhooks.cli.service import _inbox, _settings, printable
    from webhooks.inbox.opening import database_label
    from webhooks.service import ServiceError, load_policy_for

    try:
        window = timedelta(seconds=parse_duration(within))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--within") from None
    now = parse_now(now_text)
    settings = _settings()
    try:
        policy = load_policy_for(settings)
    except ServiceError as exc:
        policy = None
        click.echo(f"tierdesk: warning: cannot load the policy ({exc}); listing the clocks"
                   " the inbox holds", err=True)
    inbox = _inbox(settings, verbose=verbose)
    rows = open_clocks(inbox.sla_timers(vendor=vendor, limit=limit))
    for row in rows:
        row["state_now"] = state_now(row, now)
        row["at_risk"] = at_risk(row, now, window)
    if risky:
        rows = [r for r in rows if r["at_risk"]]
    configured = policy is None or policy.sla.enabled
    if as_json:
        click.echo(json.dumps({
            "now": now.isoformat(), "sla_configured": configured,
            "at_risk_only": risky, "within_seconds": window.total_seconds(),
            "clocks": rows,
        }, indent=2, default=str))
        return
    if not configured and policy is not None:
        click.echo(f"SLA is not configured: the policy ({policy.source}) has no sla.plans, so"
                   " tickets have no clocks (see docs/admin-guide.md, \"SLA and OLA clocks\").")
    if not rows:
        what = "at-risk SLA clocks" if risky else "open SLA clocks"
        where = f" of {vendor}" if vendor else ""
        click.echo(f"No {what}{where} in {database_label(settings.database_url)}"
                   + (f" (at risk: warning, breached or due within {within})" if risky else "")
                   + ".")
        return
    click.echo(f"{'DUE':<21} {'LEFT':>9}  {'STATE':<9} {'CLOCK':<14} {'VENDOR':<8}"
               f" {'TICKET':<12} {'TIER':<5} PLAN")
    for r in rows:
        due = datetime.fromisoformat(r["due"]) if r["due"] else None
        left = span((due - now).total_seconds()) if due else "-"
        click.echo(
            f"{when(due):<21} {left:>9}  {r['state_now']:<9} {r['clock']:<14}"
            f" {r['vendor']:<8} {printable(str(r['ticket'])):<12}"
            f" {printable(str(r['tier'] or '-')):<5} {printable(str(r['plan'] or '-'))}"
        )
    click.echo(f"({len(rows)} clocks; LEFT is wall-clock time to the due time, as of"
               f" {when(now)})")
    rearmed = {(r["vendor"], r["ticket"]): r for r in rows if r["rearms"]}
    for (v, t), r in rearmed.items():
        click.echo(f"re-armed: {v} {printable(str(t))}: its due event became a dead letter"
                   f" ({r['rearms']} in a row), tried again at {when(r['retry_at'])}: "
                   f"{printable(str(r['rearm_error'] or '-'))[:160]}")


def register(main: click.Group) -> None:
    """Add `sla list` to the `tierdesk` group."""
    main.add_command(sla_group)
