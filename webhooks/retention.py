"""Retention: finished events and decision records older than TIERDESK_RETENTION_DAYS go.

The worker pool runs a `Pruner` beside its workers: a minute after start, then hourly, it calls
`Inbox.prune` for everything received (events) or recorded (decisions) before the cut-off.
Pending events, dead letters and per-ticket state are never pruned (see `Inbox.prune`), so a
decision is the same before and after. `tierdesk prune` does the same on demand.
"""

from __future__ import annotations

import threading

from webhooks.inbox.records import Pruned
from webhooks.inbox.store import Inbox
from webhooks.logging import log

DAY = 86_400.0


class Pruner:
    """Prunes `inbox` every `interval` seconds (first after `first_after`), keeping `days`."""

    def __init__(
        self, inbox: Inbox, *, days: float, interval: float = 3600.0, first_after: float = 60.0
    ) -> None:
        if days <= 0:
            raise ValueError("a Pruner needs a retention of more than 0 days")
        self.inbox = inbox
        self.days = days
        self.interval = interval
        self.first_after = first_after

    def prune_once(self) -> Pruned:
        """Prune now; log what went."""
        pruned = self.inbox.prune(older_than=self.inbox.clock() - self.days * DAY)
        if pruned.events or pruned.decisions or pruned.notices:
            log("inbox pruned", events=pruned.events, decisions=pruned.decisions,
                notices=pruned.notices, retention_days=self.days)
        return pruned

    def run(self, stop: threading.Event) -> None:
        """Prune until `stop` is set; a failure is logged and retried at the next interval."""
        wait = self.first_after
        while not stop.wait(wait):
            try:
                self.prune_once()
            except Exception as exc:  # the database may be briefly unavailable
                log("pruning failed; retried later", level=30, error=repr(exc)[:300])
            wait = self.interval
