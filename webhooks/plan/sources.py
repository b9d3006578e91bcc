"""Where `tierdesk plan` gets its tickets and what it does with the changed ones: the inbox's
newest stored snapshots (no vendor request), the live backlog through the backfill searches
(read-only), the connectors' write cost, and the queueing of changed tickets for the workers.

Each source yields `tiering.plan.PlanInput`s one at a time (the plan is streamed, so memory
holds the changes, not the tickets) and lists what it could not plan in `skipped`, with why.

- `InboxSource`: each ticket with an event received within the window, from the newest stored
  payload its connector can read on its own (`Connector.payload_ticket`: a whole Jira issue,
  tierdesk's Zendesk trigger body). The proposed policy reads the same payload; where it cannot
  (a field it maps that the body lacks), the ticket is skipped rather than guessed at.
- `BacklogSource`: a vendor's `Backfill` search (`backfill_items` with a decide, the dry run's
  read), honouring its pagination and rate limits. When the two policies read tickets
  differently (`fields`, `entitlement` or `documentation` differ: field mappings, the
  organization plan field, attachment checks), each policy's own search runs and the tickets
  are matched by key, which costs the reads twice; otherwise one search serves both.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from connectors.backfill import Backfill
from connectors.base import VENDORS, Connector, Envelope, PayloadInvalid
from tiering.engine import decide
from tiering.models import Decision, Ticket
from tiering.plan import PlanInput, TicketChange, WriteCost, one_write
from tiering.policy import Policy
from webhooks.inbox.reads import InboxReads
from webhooks.plan.document import Skipped

_SINCE = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
#: `BacklogSource`'s read-triggering decide needs a `now`; the plan's own decisions use the
#: plan's `now`, so this one only has to be a valid time.
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parse_since(text: str) -> float:
    """Seconds in a window such as `30d`, `12h`, `90m`, `2w`; ValueError saying how to write
    one otherwise."""
    found = _SINCE.match(text)
    if found is None or int(found.group(1)) == 0:
        raise ValueError(
            f"{text!r} is not a time window: give a positive number and a unit, s, m, h, d or w"
            " (e.g. 30d, 12h, 2w)"
        )
    return float(int(found.group(1)) * _UNIT[found.group(2)])


@dataclass(frozen=True, slots=True)
class Requeue:
    """What to enqueue so the workers take one ticket up again: an envelope and its payload."""

    envelope: Envelope
    payload: Mapping[str, Any]


def connector_cost(connectors: Mapping[str, Connector]) -> WriteCost:
    """The write cost of a proposed decision from its vendor's connector (`writes_for`, the
    connector's own write planning); a vendor without a connector costs `one_write`."""

    def cost(vendor: str, ticket: Ticket, decision: Decision) -> int:
        connector = connectors.get(vendor)
        if connector is None:
            return one_write(vendor, ticket, decision)
        return connector.writes_for(ticket, decision)

    return cost


def reads_alike(current: Policy, proposed: Policy) -> bool:
    """Whether a connector built for either policy reads a ticket the same: the same field
    mappings, entitlement settings (the organization plan field) and documentation (whether
    attachments are counted)."""
    a, b = current.doc, proposed.doc
    return a.fields == b.fields and a.entitlement == b.entitlement and (
        a.documentation == b.documentation)


@dataclass
class InboxSource:
    """Tickets from the inbox's newest stored snapshots, read by both policies' connectors."""

    inbox: InboxReads
    #: vendor -> (connector for the current policy, connector for the proposed one); a vendor
    #: the settings do not configure is missing, and its tickets are skipped.
    readers: Mapping[str, tuple[Connector, Connector]]
    #: Events received at or after this time (epoch seconds) count.
    since: float
    skipped: list[Skipped] = field(default_factory=list)

    def __iter__(self) -> Iterator[PlanInput]:
        for stored in self.inbox.newest_payloads(since=self.since):
            pair = self.readers.get(stored.vendor)
            if pair is None:
                self.skipped.append(Skipped(
                    stored.vendor, stored.ticket,
                    f"{stored.vendor} is not configured in the settings, so its stored bodies"
                    " cannot be read",
                ))
                continue
            item = self._item(stored.vendor, stored.ticket, stored.last_note_key,
                              stored.payloads, *pair)
            if isinstance(item, Skipped):
                self.skipped.append(item)
                continue
            yield item

    @staticmethod
    def _item(vendor: str, key: str, note: str | None, payloads: Iterable[Mapping[str, Any]],
              current: Connector, proposed: Connector) -> PlanInput | Skipped:
        for payload in payloads:  # newest first
            try:
                ticket = current.payload_ticket(payload, last_note_key=note)
            except PayloadInvalid:
                continue
            if ticket is None:
                continue
            try:
                other = proposed.payload_ticket(payload, last_note_key=note)
            except PayloadInvalid:
                other = None
            if other is None:
                return Skipped(vendor, key, "the newest stored body lacks what the proposed"
                               " policy reads (a field it maps); plan it from the live backlog")
            return PlanInput(vendor, ticket, None if other == ticket else other)
        return Skipped(vendor, key, "no stored body shows the whole ticket (comment events,"
                       " backfill bodies need a read); plan it from the live backlog")


@dataclass(frozen=True, slots=True)
class Search:
    """One vendor's live-backlog search for a plan: its `Backfill` for each policy (one object
    when the policies read tickets alike) and the query in its language."""

    vendor: str
    query: str
    current: Backfill
    proposed: Backfill | None = None


@dataclass
class BacklogSource:
    """Tickets from the vendors' backfill searches (read-only: nothing is enqueued or written
    while planning). `requeue` keeps each ticket's backfill item so `--apply` queues exactly
    what the backfill would."""

    searches: list[Search]
    current: Policy
    #: Wraps each search's items (the progress bar); the total is the vendor's count.
    progress: Callable[[Iterable[Any], Search], Iterable[Any]] = lambda items, search: items
    skipped: list[Skipped] = field(default_factory=list)
    requeue: dict[tuple[str, str], Requeue] = field(default_factory=dict)

    def _tickets(self, search: Search, source: Backfill) -> Iterator[tuple[str, Ticket | None,
                                                                             Any]]:
        def keep(ticket: Ticket) -> Decision:
            # The dry run's decide: it makes the search read and map each ticket. The plan
            # decides again under both policies, so this one is only the read's trigger.
            return decide(ticket, self.current, now=_EPOCH)

        for item in self.progress(source.backfill_items(query=search.query, decide=keep), search):
            if item.error is not None or item.ticket is None or item.envelope is None:
                self.skipped.append(Skipped(search.vendor, item.key, item.error or "unreadable"))
                yield item.key, None, item
                continue
            yield item.ticket.key, item.ticket, item

    def __iter__(self) -> Iterator[PlanInput]:
        for search in self.searches:
            if search.proposed is None:
                for key, ticket, item in self._tickets(search, search.current):
                    if ticket is not None:
                        self.requeue[(search.vendor, key)] = Requeue(item.envelope, item.payload)
                        yield PlanInput(search.vendor, ticket)
                continue
            # The policies read tickets differently: each reads its own, matched by key.
            read_now = {key: (ticket, item) for key, ticket, item in
                        self._tickets(search, search.current) if ticket is not None}
            for key, ticket, item in self._tickets(search, search.proposed):
                if ticket is None:
                    continue
                found = read_now.pop(key, None)
                if found is None:
                    self.skipped.append(Skipped(search.vendor, key, "found by the proposed"
                                                " policy's search only (changed meanwhile)"))
                    continue
                self.requeue[(search.vendor, key)] = Requeue(item.envelope, item.payload)
                yield PlanInput(search.vendor, found[0], ticket)
            for key in read_now:
                self.skipped.append(Skipped(search.vendor, key, "found by the current"
                                            " policy's search only (changed meanwhile)"))


def requeue_changed(
    changes: Iterable[TicketChange],
    *,
    known: Mapping[tuple[str, str], Requeue],
    run: str,
    now_ms: int,
) -> list[Requeue]:
    """What to enqueue for the changed tickets, and nothing else: the backfill item a backlog
    search found for it, else the vendor's requeue body (a ticket reference the worker reads
    fresh before deciding)."""
    out: list[Requeue] = []
    for change in changes:
        found = known.get((change.vendor, change.ticket))
        if found is not None:
            out.append(found)
            continue
        vendor = VENDORS[change.vendor]
        body = vendor.requeue_body(change.ticket, run, now_ms=now_ms)
        out.append(Requeue(vendor.classify(body, {}), body))
    return out
