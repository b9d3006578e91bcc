"""`tierdesk plan`: what a proposed policy would change on real tickets, before it is enforced.

    tierdesk plan --policy NEW.yaml [--against CURRENT.yaml] [--since 30d]
                  [--jira-jql JQL] [--zendesk-query QUERY] [--inbox]
                  [--format table|json|html] [--output FILE] [--exit-code] [--apply [--yes]]

Exit status: 0, or with --exit-code 2 when any ticket would change (as `git diff --exit-code`);
1 on every error (a bad policy lists all its problems as `policy check` does; a bad option, no
inbox, an unreachable vendor), never 2, so a CI job can tell "needs review" from "broken".
"""

from __future__ import annotations

import math
import sys
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from connectors.base import VENDORS, Connector, ConnectorError
from connectors.rates import RATES
from connectors.retry import retry_reads
from tiering.plan import Plan, plan_change
from tiering.policy import Policy
from webhooks.command_settings import admin_settings, verbose_option
from webhooks.plan.document import Rate, Skipped, dumps, plan_document
from webhooks.plan.sources import (
    BacklogSource,
    InboxSource,
    Search,
    connector_cost,
    parse_since,
    reads_alike,
    requeue_changed,
)
from webhooks.plan.text import duration_text, render_text
from webhooks.settings import Settings


class _UsageError(click.UsageError):
    """A usage error of `plan`: exit 1, since 2 means "tickets would change"."""

    exit_code = 1


class _PlanCommand(click.Command):
    """A click command whose usage errors exit 1, not click's 2."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            raise _UsageError(exc.format_message(), exc.ctx) from exc


def _fail(message: str) -> click.ClickException:
    return click.ClickException(message)


def _policies(policy_path: str, against: str | None, settings: Settings) -> tuple[Policy, Policy]:
    """The current policy (--against, else the one `serve` uses) and the proposed one; every
    problem of a bad file is printed as `policy check` prints it, then exit 1."""
    from webhooks.cli.policy import load_for_diff
    from webhooks.service import ServiceError, load_policy_for

    proposed = load_for_diff(policy_path)
    current: Policy | None
    if against is not None:
        current = load_for_diff(against)
    else:
        try:
            current = load_policy_for(settings)
        except ServiceError as exc:
            click.echo(f"the policy serve uses (TIERDESK_POLICY) cannot be read: {exc}", err=True)
            current = None
    if proposed is None or current is None:
        sys.exit(1)
    return current, proposed


def _rates(given: Sequence[str]) -> dict[str, Rate]:
    """Each vendor's write rate: connectors/rates.py, or `--rate VENDOR=N` (writes a minute)."""
    rates = {name: Rate(r.writes_per_minute, r.writes_source) for name, r in RATES.items()}
    for text in given:
        vendor, sep, number = text.partition("=")
        try:
            value = float(number)
        except ValueError:
            value = 0.0
        if not sep or vendor not in VENDORS or not math.isfinite(value) or value <= 0:
            raise _fail(
                f"--rate {text!r}: give VENDOR=WRITES_PER_MINUTE with a vendor of"
                f" {', '.join(VENDORS)} and a positive, finite number, e.g. --rate zendesk=100"
            )
        rates[vendor] = Rate(value, f"--rate {vendor}={number}")
    return rates


def _connectors(settings: Settings, policy: Policy) -> dict[str, Connector]:
    """A connector per configured vendor for `policy` (no request is made building one)."""
    from webhooks.service import ServiceError, build_connectors

    try:
        return build_connectors(settings, policy)
    except ServiceError as exc:
        raise _fail(str(exc)) from exc


def _searches(settings: Settings, current: Policy, proposed: Policy, jira_jql: str | None,
              zendesk_query: str | None) -> list[Search]:
    """The backlog searches asked for, each over its vendor's admin for each policy."""
    alike = reads_alike(current, proposed)
    searches: list[Search] = []
    if jira_jql is not None:
        from connectors.jira.admin import AdminError, JiraAdmin, check_jql

        try:
            check_jql(jira_jql)
        except AdminError as exc:
            raise _fail(str(exc).replace("--jql", "--jira-jql")) from exc
        config = settings.jira_config()
        if config is None:
            raise _fail("--jira-jql: Jira is not configured: set TIERDESK_JIRA_URL and its"
                        " credentials (see the admin guide)")
        searches.append(Search("jira", jira_jql, JiraAdmin.from_config(config, current),
                               None if alike else JiraAdmin.from_config(config, proposed)))
    if zendesk_query is not None:
        from connectors.zendesk.admin import ZendeskAdmin
        from connectors.zendesk.connector import ZendeskConnector

        if not zendesk_query.strip():
            raise _fail('--zendesk-query: give a Zendesk search query, e.g. "status<solved"')
        zconfig = settings.zendesk_config()
        if zconfig is None:
            raise _fail("--zendesk-query: Zendesk is not configured: set"
                        " TIERDESK_ZENDESK_SUBDOMAIN (or TIERDESK_ZENDESK_URL),"
                        " TIERDESK_ZENDESK_EMAIL and TIERDESK_ZENDESK_API_TOKEN")
        try:
            admins = [ZendeskAdmin(ZendeskConnector(zconfig, p)) for p in (current, proposed)]
        except ValueError as exc:
            raise _fail(f"cannot use Zendesk: {exc}") from exc
        searches.append(Search("zendesk", zendesk_query, admins[0],
                               None if alike else admins[1]))
    return searches


def _progress() -> Any:
    """The progress bar of each search pass (tqdm on stderr, only on a terminal), after one
    line per search with the estimated time at the vendor's read rate (connectors/rates.py).
    The vendor's count (one request) is asked once per search."""
    from webhooks.backfill_command import progress

    totals: dict[int, int | None] = {}

    def wrap(items: Iterable[Any], search: Search) -> Iterable[Any]:
        if id(search) not in totals:
            try:
                # A read like the pages: a 429 is waited out as Retry-After says, since the
                # vendor holds every next request of this client back until then.
                totals[id(search)] = retry_reads(search.current.count_tickets, search.query)
            except ConnectorError:
                totals[id(search)] = None  # only the bar's length; the search says what fails
            total = totals[id(search)]
            rate = RATES[search.vendor]
            passes = 1 if search.proposed is None else 2
            if total is not None:
                requests = 1 + passes * total * rate.reads_per_ticket
                seconds = requests / rate.reads_per_minute * 60
                click.echo(
                    f"tierdesk plan: reading about {total} {search.vendor} ticket(s)"
                    f" ({passes} search{'es' if passes > 1 else ''}): about"
                    f" {max(1, round(requests))} request(s), about {duration_text(seconds)} at"
                    f" {rate.reads_per_minute:g} requests a minute ({rate.reads_source})",
                    err=True)
        return progress(items, total=totals[id(search)])

    return wrap


def _apply(plan: Plan, *, settings: Settings, verbose: bool, yes: bool,
           known: Any, now: datetime) -> None:
    """Queue exactly the changed tickets for the workers, after a confirmation."""
    from webhooks.inbox.opening import InboxUnavailable, open_inbox

    if not plan.changes:
        click.echo("Nothing to apply: no ticket would change.", err=True)
        return
    if not yes and not click.confirm(
        f"Queue the {plan.changed} changed ticket(s) for the workers?", err=True
    ):
        click.echo("Nothing was queued.", err=True)
        return
    items = requeue_changed(plan.changes, known=known, run=uuid.uuid4().hex,
                            now_ms=int(now.timestamp() * 1000))
    try:
        inbox = open_inbox(settings.database_url, create=True, verbose=verbose)
    except InboxUnavailable as exc:
        raise _fail(f"cannot open the inbox: {exc}") from exc
    try:
        added = inbox.enqueue_many([(i.envelope, i.payload, None) for i in items])
    finally:
        inbox.close()
    click.echo(f"Queued {sum(added)} changed ticket(s) for the workers"
               f" ({len(added) - sum(added)} already queued); unchanged tickets were not"
               " touched. The workers apply the policy serve runs: deploy the proposed one"
               " first.", err=True)


@click.command("plan", cls=_PlanCommand)
@click.option("--policy", "policy_path", required=True, type=click.Path(dir_okay=False),
              help="The proposed policy file.")
@click.option("--against", type=click.Path(dir_okay=False),
              help="The current policy file (default: the one serve uses, TIERDESK_POLICY).")
@click.option("--since", "since_text", default="30d", show_default=True,
              help="Inbox: tickets with an event received within this window (s, m, h, d, w).")
@click.option("--inbox", "use_inbox", is_flag=True,
              help="Read the inbox too when a backlog search is given (it is read by default"
                   " only without one); a ticket both find is taken from the backlog.")
@click.option("--jira-jql", help='Live Jira backlog: issues matching this JQL (read-only).')
@click.option("--zendesk-query", help='Live Zendesk backlog: tickets this search matches.')
@click.option("--format", "fmt", type=click.Choice(["table", "json", "html"]), default="table",
              show_default=True, help="table (readable), json (tierdesk-plan/1), html (report).")
@click.option("--output", type=click.Path(dir_okay=False),
              help="Write the output to this file (required with --format html).")
@click.option("--rate", "rate_texts", multiple=True, metavar="VENDOR=N",
              help="Writes a minute a vendor allows, for the enforcing time (default:"
                   " connectors/rates.py, e.g. zendesk=100).")
@click.option("--now", "now_text", metavar="ISO-8601",
              help="Decide as of this time (default: now, UTC).")
@click.option("--exit-code", "exit_code", is_flag=True,
              help="Exit 2 when any ticket would change, 0 when none would (1: error).")
@click.option("--apply", "apply_", is_flag=True,
              help="Queue the changed tickets (only those) for the workers, after a prompt.")
@click.option("--yes", is_flag=True, help="With --apply: do not ask (scripts).")
@verbose_option
def plan_command(policy_path: str, against: str | None, since_text: str, use_inbox: bool,
                 jira_jql: str | None, zendesk_query: str | None, fmt: str,
                 output: str | None, rate_texts: tuple[str, ...], now_text: str | None,
                 exit_code: bool, apply_: bool, yes: bool, verbose: bool) -> None:
    """Show what the policy --policy would change on real tickets compared with the current
    one: per changed ticket the tier before and after, labels added and removed, the target,
    the note and the reasons; in aggregate the tier distribution, the kinds of change and the
    writes enforcing would cost at the vendor's rate. Nothing is written to any vendor.

    Tickets come from the inbox's own record (the newest stored snapshot of each ticket seen
    within --since; no vendor request) or, with --jira-jql / --zendesk-query, from the live
    backlog through the backfill searches (read-only, paged, rate limits honoured)."""
    if fmt == "html" and output is None:
        raise _fail("--format html writes a file: give --output FILE (e.g. plan.html)")
    if yes and not apply_:
        raise _fail("--yes only goes with --apply")
    try:
        window = parse_since(since_text)
    except ValueError as exc:
        raise _fail(f"--since: {exc}") from exc
    if now_text is None:
        now = datetime.now(UTC)
    else:
        try:
            now = datetime.fromisoformat(now_text)
        except ValueError as exc:
            raise _fail(f"--now: {now_text!r} is not an ISO-8601 time") from exc
        if now.tzinfo is None:
            now = now.replace(tzinfo=UTC)
    rates = _rates(rate_texts)
    settings = admin_settings()
    current, proposed = _policies(policy_path, against, settings)
    searches = _searches(settings, current, proposed, jira_jql, zendesk_query)
    inbox_used = use_inbox or not searches
    kinds = (["inbox"] if inbox_used else []) + (["backlog"] if searches else [])
    proposed_connectors = _connectors(settings, proposed)
    backlog = BacklogSource(searches, current, progress=_progress())
    sources: list[Any] = [backlog] if searches else []
    inbox: Any = None
    try:
        if inbox_used:
            from webhooks.inbox.opening import InboxUnavailable, open_inbox

            try:
                inbox = open_inbox(settings.database_url, create=False, verbose=verbose)
            except InboxUnavailable as exc:
                raise _fail(f"cannot read the inbox: {exc}") from exc
            current_connectors = _connectors(settings, current)
            readers = {v: (current_connectors[v], proposed_connectors[v])
                       for v in current_connectors if v in proposed_connectors}
            sources.append(InboxSource(inbox, readers, since=now.timestamp() - window))
        try:
            plan = plan_change(_chain(sources, backlog), current, proposed, now=now,
                               rates={v: r.writes_per_minute for v, r in rates.items()},
                               cost=connector_cost(proposed_connectors))
        except ConnectorError as exc:
            raise _fail(f"reading the backlog failed: {exc} (nothing was written)") from exc
    finally:
        if inbox is not None:
            inbox.close()
    skipped: list[Skipped] = [s for source in sources for s in source.skipped]
    doc = plan_document(plan, current=current, proposed=proposed, kinds=kinds,
                        since=since_text if inbox_used else None, generated_at=now,
                        rates=rates, skipped=skipped)
    if fmt == "json":
        text = dumps(doc)
    elif fmt == "html":
        from webhooks.plan.report import render_html
        from webhooks.plan.schema import PlanDocumentError

        try:
            text = render_html(doc)
        except PlanDocumentError as exc:  # a value the report refuses: say which, no traceback
            raise _fail(f"cannot draw the HTML report: {exc}") from exc
    else:
        text = render_text(doc)
    if output is not None:
        try:
            Path(output).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise _fail(f"--output {output}: cannot write it: {exc.strerror or exc}") from exc
        click.echo(f"tierdesk plan: wrote {output} ({plan.changed} changed ticket(s) of"
                   f" {plan.tickets})", err=True)
    else:
        click.echo(text, nl=False)
    if apply_:
        _apply(plan, settings=settings, verbose=verbose, yes=yes,
               known=backlog.requeue, now=now)
    sys.exit(2 if exit_code and plan.changes else 0)


def _chain(sources: Sequence[Any], backlog: BacklogSource) -> Iterable[Any]:
    """Every source's items in turn; an inbox ticket the backlog already gave is left out
    (the backlog's copy is the vendor's state now)."""
    for source in sources:
        for item in source:
            if source is not backlog and (item.vendor, item.ticket.key) in backlog.requeue:
                continue
            yield item


def register(main: click.Group) -> None:
    """Add `plan` to the `tierdesk` group."""
    main.add_command(plan_command)
