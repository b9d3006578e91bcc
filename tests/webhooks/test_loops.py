"""The label-loop guard: when tierdesk stops writing to a ticket another tool keeps rewriting."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from tiering.models import Decision, note_key_in
from webhooks.loops import LOOP_HALTED, LoopGuard

NOW = 10_000.0
ADD_L2 = Decision(ticket="SUP-1", tier="L2", previous_tier="L2", labels_add=("tier-l2",))


@dataclass(frozen=True)
class Rec:
    outcome: str
    created_at: float
    decision: dict[str, Any] | None = None


def rewrite(at: float, label: str = "tier-l2") -> Rec:
    return Rec("applied", at, {"labels_add": [label], "labels_remove": []})


CASES = [
    # fewer rewrites than the limit: applied as usual
    ([rewrite(NOW - 60 * i) for i in range(1, 3)], ADD_L2, None),
    # the limit reached within the window: halted, with the one note
    ([rewrite(NOW - 60 * i) for i in range(1, 4)], ADD_L2, "note"),
    # the same rewrites but spread beyond the window: applied
    ([rewrite(NOW - 700 * i) for i in range(1, 4)], ADD_L2, None),
    # applied decisions that changed only the owner are no label rewrites
    ([Rec("applied", NOW - 60 * i, {"labels_add": [], "labels_remove": [], "assign": "L2"})
      for i in range(1, 4)], ADD_L2, None),
    # halted already within the window: still halted, no second note
    ([*(rewrite(NOW - 60 * i) for i in range(2, 5)), Rec(LOOP_HALTED, NOW - 30)], ADD_L2,
     "silent"),
    # halted earlier but a whole window ago: applied again
    ([Rec(LOOP_HALTED, NOW - 900)], ADD_L2, None),
    # a ticket climbing tiers: a different label each time is no rewrite
    ([rewrite(NOW - 60 * i, label=f"tier-l{i}") for i in range(3, 6)], ADD_L2, None),
    # a decision that changes nothing is never stopped
    ([rewrite(NOW - 60 * i) for i in range(1, 4)],
     Decision(ticket="SUP-1", tier="L2", previous_tier="L2"), None),
    # while halted, a changing decision without labels (a new owner) is stopped too
    ([Rec(LOOP_HALTED, NOW - 30)],
     Decision(ticket="SUP-1", tier="L2", previous_tier="L2", assign="L2"), "silent"),
]


@pytest.mark.parametrize(("records", "decision", "expected"), CASES)
def test_loop_guard_table(records: list[Rec], decision: Decision, expected: str | None) -> None:
    """3 rewrites of the same label within 10 minutes halt the ticket with one note; halts
    continue while they keep coming; a quiet window resumes writing; new labels never halt."""
    verdict = LoopGuard(max_rewrites=3, window=600).verdict(records, decision, now=NOW)
    if expected is None:
        assert verdict is None
        return
    assert verdict is not None
    if expected == "silent":
        assert verdict.note is None
        return
    assert verdict.labels == ("tier-l2",)
    note = verdict.note
    assert note is not None and note.comment is not None
    assert "tier-l2" in note.comment and "3 times in the last 10 minutes" in note.comment
    assert note_key_in(note.comment) == note.note_key
    assert (note.labels_add, note.labels_remove, note.assign) == ((), (), None)
