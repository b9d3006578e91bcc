"""A worker's claims in hand: tickets leased together in one transaction (Inbox.claim_many),
worked through one at a time, and handed back untouched when the worker stops or their vendor
is paused meanwhile."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Collection

from webhooks.inbox.records import Claim
from webhooks.inbox.store import Inbox, RearmListener


class ClaimsInHand:
    """Up to `batch` claims leased per claiming transaction, handed out one by one."""

    def __init__(self, inbox: Inbox, *, batch: int) -> None:
        self.inbox = inbox
        #: Tickets leased per claiming transaction: one commit per `batch` tickets instead of
        #: one each, while each ticket keeps its own lease (per-ticket serialisation).
        self.batch = max(1, batch)
        self._held: deque[Claim] = deque()

    def next(
        self,
        *,
        vendors: Collection[str],
        paused: Callable[[str], bool],
        lease_seconds: float,
        max_unfinished: int,
        on_rearm: RearmListener,
    ) -> Claim | None:
        """The next claim in hand, else up to `batch` new ones. A claim in hand whose vendor
        was paused meanwhile (`paused(vendor)`, a sibling's 429) or dropped by a reload is
        handed back untouched, as the worker would, without reading anything."""
        while self._held:
            claim = self._held.popleft()
            if claim.events and (claim.vendor not in vendors or paused(claim.vendor)):
                self.inbox.release(claim)
                continue
            return claim
        claims = self.inbox.claim_many(
            lease_seconds=lease_seconds, vendors=list(vendors), limit=self.batch,
            max_unfinished=max_unfinished, on_rearm=on_rearm)
        if not claims:
            return None
        self._held.extend(claims[1:])
        return claims[0]

    def release_all(self) -> None:
        """Hand back the claims not processed yet (the worker stops)."""
        while self._held:
            claim = self._held.popleft()
            if claim.events:
                self.inbox.release(claim)

    def __len__(self) -> int:
        return len(self._held)
