"""`tierdesk backfill <vendor>` for every vendor: the loop, its summary and its line format.

Each vendor's admin class is a `Backfill` (the same three methods, the same names:
`count_tickets`, `backfill_items`, `describe`) whose items come from its search;
`run_backfill` enqueues them (or, on a dry run, counts and reports their decisions) into one
`BackfillSummary`. Lines:

    SUP-1: tier - -> L1; labels +tier-l1 -tier-l0; assign L1 (alice); checklist note
    #42: no change (tier L2)
    #43: skipped: cannot read: VendorUnavailable (HTTP 503)

and the summary line both vendors end with. Pure: reads nothing; what it writes goes through
the `enqueue` it is given.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from connectors.base import Envelope
from tiering.models import Decision, Ticket


def change_line(key: str, decision: Decision, *, labels: str = "labels",
                assignee: str | None = None) -> str:
    """One line for a dry run: what would change on the ticket `key`, or that nothing would.
    `labels` is the vendor's word for them ("labels" on Jira, "tags" on Zendesk); `assignee`
    says who the assign target is on this vendor (e.g. "group 360001")."""
    if not decision.changed:
        return f"{key}: no change (tier {decision.tier or decision.route or '-'})"
    parts = [f"tier {decision.previous_tier or '-'} -> {decision.tier or '-'}"]
    if decision.route:
        parts.append(f"route {decision.route}")
    marks = [f"+{x}" for x in decision.labels_add] + [f"-{x}" for x in decision.labels_remove]
    if marks:
        parts.append(f"{labels} " + " ".join(marks))
    if decision.assign:
        parts.append(f"assign {decision.assign}" + (f" ({assignee})" if assignee else ""))
    if decision.missing:
        parts.append("missing: " + "; ".join(
            f"{m.label} ({m.problem})" if m.problem else m.label for m in decision.missing))
    if decision.comment:
        parts.append("checklist note")
    return f"{key}: " + "; ".join(parts)


def skipped_line(key: str, reason: str) -> str:
    """One line for a ticket the backfill could not read (it is not queued)."""
    return f"{key}: skipped: {reason}"


@dataclass(frozen=True, slots=True)
class BackfillItem:
    """One ticket a backfill search found."""

    #: The ticket as the lines name it (`SUP-1`, `#42`).
    key: str
    envelope: Envelope | None
    payload: Mapping[str, Any]
    #: Set on a dry run: the decision the worker would make now.
    decision: Decision | None = None
    ticket: Ticket | None = None
    #: Set when the ticket could not be read (it is skipped, not enqueued).
    error: str | None = None


class Backfill(Protocol):
    """What a vendor's admin class offers a backfill (JiraAdmin, ZendeskAdmin): the same job in
    the same shape, `query` being the vendor's search language (JQL, Zendesk search)."""

    def count_tickets(self, query: str) -> int | None:
        """How many tickets `query` matches (a progress bar's length); None if unknown."""
        ...

    def backfill_items(
        self, *, query: str, decide: Callable[[Ticket], Decision] | None = None
    ) -> Iterator[BackfillItem]:
        """Every ticket `query` matches as an item; with `decide` (a dry run), decided too."""
        ...

    def describe(self, item: BackfillItem) -> str:
        """The item's dry-run line (`change_line` / `skipped_line`)."""
        ...


@dataclass
class BackfillSummary:
    """What one backfill run did, for the summary line."""

    seen: int = 0
    queued: int = 0
    duplicates: int = 0
    would_change: int = 0
    unchanged: int = 0
    skipped: int = 0

    def summary(self, *, dry_run: bool) -> str:
        """The run's last line, the same for every vendor."""
        if dry_run:
            return (f"Dry run: {self.seen} ticket(s): {self.would_change} would change,"
                    f" {self.unchanged} unchanged, {self.skipped} skipped."
                    " Nothing was written.")
        return (f"Backfill: {self.seen} ticket(s): {self.queued} queued,"
                f" {self.duplicates} already queued, {self.skipped} skipped.")


def run_backfill(
    items: Iterable[BackfillItem],
    summary: BackfillSummary,
    *,
    enqueue: Callable[[Envelope, Mapping[str, Any]], bool] | None,
    describe: Callable[[BackfillItem], str],
    report: Callable[[str], None],
) -> BackfillSummary:
    """Enqueue each item, or with `enqueue=None` (a dry run) count and `report` its decision;
    a skipped item is reported either way. `summary` is counted as the run goes, so a caller
    still has it when the vendor stops the run half-way."""
    for item in items:
        summary.seen += 1
        if item.error is not None or item.envelope is None:
            summary.skipped += 1
            report(describe(item))
        elif enqueue is None:
            if item.decision is not None and item.decision.changed:
                summary.would_change += 1
            else:
                summary.unchanged += 1
            report(describe(item))
        elif enqueue(item.envelope, item.payload):
            summary.queued += 1
        else:
            summary.duplicates += 1
    return summary
