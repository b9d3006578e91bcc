"""The inbox's record types (deliveries, stored events, claims, decisions, depth) and their rows."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from connectors.base import Envelope
from webhooks.inbox.schema import IGNORED, PENDING

#: One delivery for `Inbox.enqueue_many`: its envelope, the parsed body, and the raw bytes as
#: received (None for a body that must be stored re-encoded from `payload`).
Delivery = tuple[Envelope, Mapping[str, Any], bytes | None]


def stored_json(payload: Mapping[str, Any], raw: bytes | None) -> bytes:
    """The bytes the inbox keeps for a delivery: `raw` as received when it is UTF-8 (the usual
    case: no re-encoding), else `payload` as UTF-8 JSON (a body in UTF-16/32, or a salvaged
    partial one)."""
    if raw is not None:
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            return raw
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def event_row(
    envelope: Envelope, payload: Mapping[str, Any], raw: bytes | None, now: float
) -> dict[str, Any]:
    """The events-table row for one delivery received at `now`."""
    if envelope.handled and not envelope.ticket:
        raise ValueError("a handled event needs a ticket")
    text = stored_json(payload, raw).decode("utf-8")
    return {
        "vendor": envelope.vendor,
        "delivery_id": envelope.delivery_id[:255],
        "event_type": envelope.event_type[:128],
        "ticket": envelope.ticket,
        "status": PENDING if envelope.handled else IGNORED,
        "actor": envelope.actor[:255] if envelope.actor else None,
        "occurred_at": envelope.occurred_at,
        "received_at": now,
        "payload": text,
        "attempts": 0,
        "claims": 0,
        "finished_at": None if envelope.handled else now,
        "last_error": None,
    }


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """One stored delivery."""

    id: int
    vendor: str
    delivery_id: str
    event_type: str
    ticket: str | None
    status: str
    actor: str | None
    occurred_at: int | None
    received_at: float
    attempts: int
    last_error: str | None
    payload_text: str
    claims: int = 0

    @property
    def payload(self) -> dict[str, Any]:
        value = json.loads(self.payload_text)
        return value if isinstance(value, dict) else {"_": value}

    def envelope(self) -> Envelope:
        """The envelope the receiver stored, rebuilt (for `Connector.is_own_event`)."""
        return Envelope(
            vendor=self.vendor,
            event_type=self.event_type,
            handled=self.status != IGNORED,
            ticket=self.ticket,
            delivery_id=self.delivery_id,
            actor=self.actor,
            occurred_at=self.occurred_at,
        )


@dataclass(frozen=True, slots=True)
class Claim:
    """A worker's lease on one ticket and the pending events it covers (arrival order)."""

    ticket_row: int
    vendor: str
    ticket: str
    token: str
    lease_until: float
    events: tuple[StoredEvent, ...]
    last_note_key: str | None
    last_occurred_at: int | None
    attempts: int
    #: See tickets.known_at.
    known_at: int | None = None
    #: Events this claim dead-lettered instead of handing out: claimed `max_unfinished` times
    #: without an evaluation finishing (see `Inbox.claim`). `events` may then be empty.
    dead_on_claim: tuple[int, ...] = ()




@dataclass(frozen=True, slots=True)
class DecisionRecord:
    """What one evaluation of a ticket decided and did."""

    vendor: str
    ticket: str
    outcome: str
    event_ids: tuple[int, ...]
    policy_digest: str | None = None
    tier_before: str | None = None
    tier_after: str | None = None
    reasons: tuple[str, ...] = ()
    calls: tuple[Mapping[str, Any], ...] = ()
    decision: Mapping[str, Any] | None = None
    error: str | None = None
    created_at: float = 0.0
    id: int | None = None


@dataclass(frozen=True, slots=True)
class Depth:
    """How much work the inbox holds."""

    pending_events: int
    ready_tickets: int
    dead_letters: int
    by_vendor: Mapping[str, int] = field(default_factory=dict)
    #: Seconds since the oldest pending event of each vendor was received.
    oldest_pending_age: Mapping[str, float] = field(default_factory=dict)
    #: Seconds each vendor stays paused (Retry-After); only vendors paused now.
    paused_for: Mapping[str, float] = field(default_factory=dict)




@dataclass(frozen=True)
class Pruned:
    """What `Inbox.prune` deleted (or, with `dry_run`, would delete)."""

    events: int
    decisions: int
    #: SLA notices sent or given up (tierdesk_sla_notices).
    notices: int = 0


def stored_event(row: Any) -> StoredEvent:
    """The StoredEvent of an events-table row."""
    return StoredEvent(
        id=row.id,
        vendor=row.vendor,
        delivery_id=row.delivery_id,
        event_type=row.event_type,
        ticket=row.ticket,
        status=row.status,
        actor=row.actor,
        occurred_at=row.occurred_at,
        received_at=row.received_at,
        attempts=row.attempts,
        last_error=row.last_error,
        payload_text=row.payload,
        claims=row.claims,
    )


# --------------------------------------------------------------------------- SLA (issue 18)


@dataclass(frozen=True, slots=True)
class SlaMark:
    """One thing tierdesk saw of a ticket's history: its creation (`created`), a status it was
    in (`status`, value a neutral status), a tier it entered (`tier`, value the tier) or its
    first public agent reply (`reply`); `at` in epoch seconds."""

    kind: str
    at: float
    value: str = ""


@dataclass(frozen=True, slots=True)
class Notice:
    """One outgoing notification for the outbox (tierdesk_sla_notices): sent once per
    `notice_key` (unique), `body` JSON-ready (Slack-compatible {"text": ...})."""

    notice_key: str
    url: str
    body: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class SlaTimer:
    """A ticket's SLA timer: when its next threshold falls due (`due_at`, None when nothing
    will fire by itself), which clock and fraction that is, the soonest breach of a running
    clock, what it was computed under and the clocks (ClockState.to_dict() each)."""

    vendor: str
    ticket: str
    due_at: float | None
    clock: str | None = None
    fraction: float | None = None
    breach_at: float | None = None
    policy_digest: str | None = None
    plan: str | None = None
    tier: str | None = None
    priority: str | None = None
    clocks: tuple[Mapping[str, Any], ...] = ()
    #: How many clocks are open (not stopped).
    open_clocks: int = 0
    updated_at: float = 0.0
    #: Times in a row a dead-lettered due event re-armed this timer, and that dead letter's
    #: error (0 and None once a decision records the timer).
    rearms: int = 0
    rearm_error: str | None = None
    #: Set on a timer claimed by `Inbox.claim_due_timers`.
    lease_token: str | None = None
    lease_until: float | None = None


@dataclass(frozen=True, slots=True)
class SlaRearm:
    """A ticket's SLA timer re-armed because its due event became a dead letter
    (`Inbox.rearm_after_dead`): due again at `due_at`, the `rearms`-th time in a row."""

    vendor: str
    ticket: str
    due_at: float
    rearms: int
    error: str


#: `SlaWrite.timer` value that deletes the ticket's timer (no clock left open).
CLEAR_TIMER = "clear"


@dataclass(frozen=True, slots=True)
class SlaWrite:
    """What one evaluation records of the ticket's SLA, in `Inbox.complete`'s transaction:
    observed history marks, the threshold keys acted on (exactly once: a key already recorded
    is skipped), notices for the outbox, and the ticket's next timer (`CLEAR_TIMER` deletes it;
    None leaves it as it is)."""

    marks: tuple[SlaMark, ...] = ()
    fired: tuple[str, ...] = ()
    notices: tuple[Notice, ...] = ()
    timer: SlaTimer | str | None = None


@dataclass(frozen=True, slots=True)
class OutgoingNotice:
    """A stored notice (a row of tierdesk_sla_notices)."""

    id: int
    vendor: str
    ticket: str
    notice_key: str
    url: str
    body: str
    created_at: float
    attempts: int
    next_attempt_at: float
    sent_at: float | None
    last_error: str | None
