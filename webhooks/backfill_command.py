"""The body of `tierdesk backfill <vendor>`, the same for every vendor: open the inbox (or, on a
dry run, decide instead), count for the progress bar, run connectors/backfill.py's loop over the
vendor's `Backfill`, and print its lines and summary.

The per-ticket lines and the summary line come from connectors/backfill.py (one format for
every vendor) and go to stdout; the progress bar goes to stderr and only when stderr is a
terminal (tqdm's `disable=None`), so a piped or logged run holds the lines and nothing else.
The vendor commands (webhooks/cli/jira.py, zendesk.py) only parse their options.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any, TypeVar

import click
from tqdm import tqdm

from connectors.backfill import Backfill, BackfillSummary, run_backfill
from connectors.base import ConnectorError
from tiering.models import Decision, Ticket
from tiering.policy import Policy
from webhooks.inbox.opening import InboxUnavailable, open_inbox
from webhooks.settings import Settings

T = TypeVar("T")

#: Said by `tierdesk backfill --help` and each vendor's backfill help.
BACKFILL_EPILOG = (
    "Settings, the policy and the inbox database (TIERDESK_DATABASE_URL) come from TIERDESK_*"
    " environment variables or a .env file in the current directory. A progress bar is shown"
    " on stderr when it is a terminal."
)


def progress(items: Iterable[T], *, total: int | None) -> Iterator[T]:
    """`items`, with a progress bar on a terminal (length `total` when known)."""
    bar = tqdm(items, total=total, unit=" tickets", file=sys.stderr, disable=None, leave=False,
               dynamic_ncols=True)
    try:
        yield from bar
    finally:
        bar.close()


def backfill_command(
    source: Backfill,
    *,
    query: str,
    policy: Policy,
    settings: Settings,
    dry_run: bool,
    verbose: bool,
) -> None:
    """Queue every ticket `query` matches into the inbox (or, with `dry_run`, print what the
    policy would change and write nothing). A vendor error stops the run with a
    click.ClickException saying how far it got; what was queued stays queued."""
    from tiering.engine import decide as engine

    decide: Any = None
    inbox: Any = None
    if dry_run:
        now = datetime.now(UTC)

        def decide_now(ticket: Ticket) -> Decision:
            return engine(ticket, policy, now=now)

        decide = decide_now
    else:
        try:
            inbox = open_inbox(settings.database_url, create=True, verbose=verbose)
        except InboxUnavailable as exc:
            raise click.ClickException(f"cannot open the inbox: {exc}") from exc
    summary = BackfillSummary()
    lines: list[str] = []
    try:
        try:
            total = source.count_tickets(query)
        except ConnectorError:
            total = None  # only the progress bar's length; the search itself will say what fails
        items = source.backfill_items(query=query, decide=decide)
        run_backfill(progress(items, total=total), summary,
                     enqueue=None if dry_run else inbox.enqueue,
                     describe=source.describe, report=lines.append)
    except ConnectorError as exc:
        raise click.ClickException(
            f"backfill stopped after {summary.seen} ticket(s): {exc}"
            + (f"; {summary.queued} were queued and will be processed" if summary.queued
               else "")
        ) from exc
    finally:
        if inbox is not None:
            inbox.close()
    for line in lines:
        click.echo(line)
    click.echo(summary.summary(dry_run=dry_run))
