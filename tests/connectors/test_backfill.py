"""The backfill loop both vendors share: what it enqueues, counts and reports."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors.backfill import BackfillItem, BackfillSummary, run_backfill
from connectors.base import Envelope
from tiering.models import Decision


def _item(key: str, *, changed: bool | None = None, error: str | None = None) -> BackfillItem:
    envelope = None if error else Envelope(vendor="jira", event_type="tierdesk:backfill",
                                           handled=True, ticket=key, delivery_id=f"d-{key}")
    decision = None
    if changed is not None:
        decision = Decision(ticket=key, tier="L1", previous_tier=None if changed else "L1",
                            labels_add=("tier-l1",) if changed else ())
    return BackfillItem(key, envelope, {"key": key}, decision=decision, error=error)


def test_enqueues_counts_new_and_duplicates_and_reports_skips() -> None:
    """A run enqueues each readable item, counts duplicates, and reports only the skipped."""
    stored: list[str] = []

    def enqueue(envelope: Envelope, payload: Mapping[str, Any]) -> bool:
        stored.append(str(envelope.ticket))
        return envelope.ticket != "B"

    lines: list[str] = []
    summary = run_backfill([_item("A"), _item("B"), _item("C", error="cannot read")],
                           BackfillSummary(), enqueue=enqueue, describe=lambda i: i.key,
                           report=lines.append)
    assert stored == ["A", "B"] and lines == ["C"]
    assert summary == BackfillSummary(seen=3, queued=1, duplicates=1, skipped=1)


def test_dry_run_counts_decisions_and_enqueues_nothing() -> None:
    """A dry run (no enqueue) reports every item and counts would-change against unchanged."""
    lines: list[str] = []
    summary = run_backfill([_item("A", changed=True), _item("B", changed=False),
                            _item("C", error="x")], BackfillSummary(), enqueue=None,
                           describe=lambda i: i.key, report=lines.append)
    assert lines == ["A", "B", "C"]
    assert summary == BackfillSummary(seen=3, would_change=1, unchanged=1, skipped=1)
    assert summary.summary(dry_run=True) == (
        "Dry run: 3 ticket(s): 1 would change, 1 unchanged, 1 skipped. Nothing was written.")
