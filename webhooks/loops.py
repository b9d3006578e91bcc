"""Label ping-pong: another tool keeps rewriting the labels tierdesk writes, so tierdesk stops.

A Jira Automation rule (or a Zendesk trigger, or a second integration) that changes tierdesk's
tier labels back makes each side undo the other forever, one vendor write per round. The guard
reads the ticket's decision records (the inbox's `history`): when tierdesk has made the same
label change (the same label added, or removed, again) `max_rewrites` times within `window`
seconds, the next such decision is not applied. Instead tierdesk posts one internal note naming
the labels that keep changing, records the evaluation as `loop-halted` (counted in `/metrics` by
`tierdesk_decisions_total{outcome="loop-halted"}`) and writes nothing more to the ticket while
halts keep coming within the window. Once the other tool has stopped for a whole window, the
ticket is decided and written as usual again.

Pure: `verdict` takes the records and `now`; the worker does the reading and the writing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tiering.models import NOTE_MARKER, Decision

#: The decision record outcome of an evaluation the guard stopped (at most 16 characters).
LOOP_HALTED = "loop-halted"
APPLIED = "applied"


@dataclass(frozen=True, slots=True)
class LoopGuard:
    """How many label rewrites within how many seconds mean another tool is fighting tierdesk."""

    max_rewrites: int = 5
    window: float = 600.0

    def verdict(
        self, records: Iterable[Any], decision: Decision, *, now: float
    ) -> LoopVerdict | None:
        """None when `decision` may be applied; else what to do instead.

        A rewrite is an earlier applied decision that made one of this decision's label
        operations already (the same label added, or removed, again): something undid it. A
        ticket climbing tiers adds a different label each time and is never stopped.
        `records` are the ticket's decision records (DecisionRecord: `outcome`, `created_at`,
        `decision`), in any order."""
        if not decision.changed:
            return None
        since = now - self.window
        recent = [r for r in records if r.created_at >= since]
        wanted = _ops_of(decision.labels_add, decision.labels_remove)
        rewrites = [r for r in recent if r.outcome == APPLIED and _label_ops(r.decision) & wanted]
        labels = tuple(sorted({label for r in rewrites for _, label in
                               _label_ops(r.decision) & wanted}))
        if any(r.outcome == LOOP_HALTED for r in recent):
            return LoopVerdict(labels=labels, note=None)
        if not wanted or len(rewrites) < self.max_rewrites:
            return None
        return LoopVerdict(labels=labels, note=self._note(decision, labels, len(rewrites)))

    def _note(self, decision: Decision, labels: Sequence[str], rewrites: int) -> Decision:
        minutes = self.window / 60
        body = (
            f"tierdesk stopped writing to this ticket: it rewrote the labels"
            f" {', '.join(labels)} {rewrites} times in the last {minutes:g} minutes, and"
            " something changes them back each time (a Jira Automation rule, a Zendesk trigger"
            " or another integration). Change that rule so it leaves these labels alone;"
            f" tierdesk resumes once they have stayed put for {minutes:g} minutes."
        )
        key = hashlib.sha256(f"{decision.ticket}\n{body}".encode()).hexdigest()[:16]
        return Decision(
            ticket=decision.ticket,
            tier=decision.previous_tier,
            previous_tier=decision.previous_tier,
            comment=f"{body}\n\n{NOTE_MARKER}{key}",
            note_key=key,
            reasons=(f"Label loop: {', '.join(labels)} rewritten {rewrites} times",),
        )


@dataclass(frozen=True, slots=True)
class LoopVerdict:
    """The guard stopped a decision: the labels that keep changing, and the one note to post
    (None when the note was posted already in this halt)."""

    labels: tuple[str, ...]
    note: Decision | None


def _ops_of(add: Iterable[str], remove: Iterable[str]) -> frozenset[tuple[str, str]]:
    return frozenset({("add", str(x)) for x in add} | {("remove", str(x)) for x in remove})


def _label_ops(decision: Mapping[str, Any] | None) -> frozenset[tuple[str, str]]:
    """The label operations an earlier decision (its recorded dict) made."""
    if not decision:
        return frozenset()
    return _ops_of(decision.get("labels_add") or (), decision.get("labels_remove") or ())
