"""The inbox's tables (SQLAlchemy Core metadata) and the values stored in them.

    events          one row per delivery; unique (vendor, delivery_id) is the dedupe key.
                    status: pending -> done | dead; ignored (a known event tierdesk does not act
                    on) is final from the start.
    tickets         one row per (vendor, ticket): `pending` (has pending events), the lease
                    (`lease_token`, `lease_until`), backoff (`next_attempt_at`), `last_note_key`
                    (the checklist last posted), `last_occurred_at` (newest event processed)
                    and `sla_due` (a pending SLA due event: claimed first).
    decisions       every evaluation: policy digest, tier before/after, reasons, vendor calls.
    vendor_pauses   a vendor's rate limit is per account: no ticket of it is claimed until then.
    sla_marks       what tierdesk saw of each ticket's history, for the SLA clocks (issue 18):
                    one row per observation, `kind` created | status | tier | reply, its value
                    and instant; `Inbox.sla_history` turns them into a tiering.sla.TicketHistory.
    sla_timers      one row per ticket with open clocks: `due_at` (the next instant a clock
                    crosses a threshold; NULL: nothing to fire), its lease (`lease_token`,
                    `lease_until`, like events), the policy digest it was computed under, the
                    clocks as JSON for `tierdesk sla list`, and `rearms` / `rearm_error` when a
                    dead-lettered due event re-armed it (Inbox.rearm: nothing is lost).
    sla_fired       one row per (vendor, ticket, threshold_key) acted on: the exactly-once record.
    sla_notices     the outbox of outgoing notification webhooks (webhooks/notify.py sends them).
    schema_version  the migration level (webhooks/inbox/migrations.py).
"""

from __future__ import annotations

import sqlalchemy as sa

# Event statuses.
#: The longest ticket key and delivery id the inbox stores (the columns are VARCHAR(255)).
MAX_KEY_LENGTH = 255

PENDING = "pending"
DONE = "done"
IGNORED = "ignored"
DEAD = "dead"

metadata = sa.MetaData()

schema_version = sa.Table(
    "tierdesk_schema_version",
    metadata,
    sa.Column("version", sa.Integer, nullable=False),
)

events = sa.Table(
    "tierdesk_events",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
              autoincrement=True),
    sa.Column("vendor", sa.String(16), nullable=False),
    sa.Column("delivery_id", sa.String(255), nullable=False),
    sa.Column("event_type", sa.String(128), nullable=False),
    sa.Column("ticket", sa.String(255)),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("actor", sa.String(255)),
    sa.Column("occurred_at", sa.BigInteger),
    sa.Column("received_at", sa.Float, nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    #: Failed attempts (counted towards max_attempts).
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    #: Times a worker claimed the event: above 1 means an earlier holder failed or crashed,
    #: perhaps after its write reached the vendor, so the next one reads fresh state first.
    sa.Column("claims", sa.Integer, nullable=False, default=0),
    sa.Column("last_error", sa.Text),
    sa.Column("finished_at", sa.Float),
    sa.UniqueConstraint("vendor", "delivery_id", name="uq_tierdesk_events_delivery"),
    sa.Index("ix_tierdesk_events_ticket", "vendor", "ticket", "status"),
    sa.Index("ix_tierdesk_events_status", "status"),
    #: A ticket's events by event time: finds a replayed body in one seek (enqueue_many).
    sa.Index("ix_tierdesk_events_occurred", "vendor", "ticket", "occurred_at"),
    sa.Index("ix_tierdesk_events_received", "received_at"),
)

tickets = sa.Table(
    "tierdesk_tickets",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
              autoincrement=True),
    sa.Column("vendor", sa.String(16), nullable=False),
    sa.Column("ticket", sa.String(255), nullable=False),
    sa.Column("pending", sa.Boolean, nullable=False, default=False),
    sa.Column("lease_token", sa.String(64)),
    sa.Column("lease_until", sa.Float),
    sa.Column("next_attempt_at", sa.Float, nullable=False, default=0.0),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("last_note_key", sa.String(128)),
    sa.Column("last_occurred_at", sa.BigInteger),
    sa.Column("last_error", sa.Text),
    sa.Column("updated_at", sa.Float, nullable=False, default=0.0),
    #: Epoch ms (tierdesk's clock) as of which tierdesk knows the ticket's state: the end of its
    #: last write, or the start of its last fresh read. An event that happened before this
    #: carries a stale snapshot, so the worker reads fresh instead of deciding on it.
    sa.Column("known_at", sa.BigInteger),
    #: True while the ticket has a pending synthetic SLA due event (migration 7): such tickets
    #: are claimed before the ordinary backlog (a breach must not wait behind a backfill).
    sa.Column("sla_due", sa.Boolean, nullable=False, default=False, server_default=sa.false()),
    sa.UniqueConstraint("vendor", "ticket", name="uq_tierdesk_tickets_ticket"),
    sa.Index("ix_tierdesk_tickets_ready", "pending", "next_attempt_at"),
    #: The due-first claim's seek (migration 7): the few tickets with a due event, by backoff.
    sa.Index("ix_tierdesk_tickets_sla_due", "sla_due", "pending", "next_attempt_at"),
)

decisions = sa.Table(
    "tierdesk_decisions",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
              autoincrement=True),
    sa.Column("vendor", sa.String(16), nullable=False),
    sa.Column("ticket", sa.String(255), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("policy_digest", sa.String(64)),
    sa.Column("tier_before", sa.String(64)),
    sa.Column("tier_after", sa.String(64)),
    #: applied | unchanged | own-event | loop-halted | retry | dead
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("reasons", sa.Text, nullable=False),
    sa.Column("calls", sa.Text, nullable=False),
    sa.Column("decision", sa.Text),
    sa.Column("event_ids", sa.Text, nullable=False),
    sa.Column("error", sa.Text),
    sa.Index("ix_tierdesk_decisions_ticket", "vendor", "ticket", "id"),
    sa.Index("ix_tierdesk_decisions_created", "created_at"),
)

#: The start of a pause reason recorded when a vendor refuses tierdesk's credentials (401):
#: /readyz lists such pauses.
CREDENTIALS_PAUSE_PREFIX = "credentials rejected"

vendor_pauses = sa.Table(
    "tierdesk_vendor_pauses",
    metadata,
    sa.Column("vendor", sa.String(16), primary_key=True),
    sa.Column("until", sa.Float, nullable=False),
    sa.Column("reason", sa.Text),
)


#: Kinds of sla_marks rows.
MARK_CREATED = "created"
MARK_STATUS = "status"
MARK_TIER = "tier"
MARK_REPLY = "reply"

sla_marks = sa.Table(
    "tierdesk_sla_marks",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
              autoincrement=True),
    sa.Column("vendor", sa.String(16), nullable=False),
    sa.Column("ticket", sa.String(255), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    #: The status (status), the tier (tier); empty for created and reply.
    sa.Column("value", sa.String(64), nullable=False),
    #: Epoch seconds of the instant (the vendor's time for created/status/reply, tierdesk's
    #: decision time for a tier entry).
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("recorded_at", sa.Float, nullable=False),
    sa.UniqueConstraint("vendor", "ticket", "kind", "at", "value", name="uq_tierdesk_sla_marks"),
    sa.Index("ix_tierdesk_sla_marks_ticket", "vendor", "ticket", "kind", "at"),
)

sla_timers = sa.Table(
    "tierdesk_sla_timers",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
              autoincrement=True),
    sa.Column("vendor", sa.String(16), nullable=False),
    sa.Column("ticket", sa.String(255), nullable=False),
    #: Epoch seconds: when the soonest threshold of the ticket's clocks is crossed (NULL while
    #: nothing is due: every clock paused, breached already, or stopped).
    sa.Column("due_at", sa.Float),
    #: The clock and threshold fraction due at `due_at` (for the synthetic event and listing).
    sa.Column("clock", sa.String(32)),
    sa.Column("fraction", sa.Float),
    #: The soonest breach instant of a running clock (what `sla list` sorts by).
    sa.Column("breach_at", sa.Float),
    sa.Column("lease_token", sa.String(64)),
    sa.Column("lease_until", sa.Float),
    sa.Column("policy_digest", sa.String(64)),
    sa.Column("plan", sa.String(64)),
    sa.Column("tier", sa.String(64)),
    sa.Column("priority", sa.String(64)),
    #: Every clock of the ticket as tiering.sla.ClockState.to_dict(), a JSON list.
    sa.Column("clocks", sa.Text, nullable=False, default="[]"),
    #: How many of those clocks are open (not stopped), for the open-clocks gauge.
    sa.Column("open_clocks", sa.Integer, nullable=False, default=0),
    sa.Column("updated_at", sa.Float, nullable=False),
    #: Times in a row the timer was re-armed because the ticket's due event became a dead
    #: letter (migration 7; 0 once a decision records the timer again): sets the backoff.
    sa.Column("rearms", sa.Integer, nullable=False, default=0, server_default="0"),
    #: The dead letter's error that last re-armed the timer (NULL once a decision records it).
    sa.Column("rearm_error", sa.Text),
    sa.UniqueConstraint("vendor", "ticket", name="uq_tierdesk_sla_timers_ticket"),
    sa.Index("ix_tierdesk_sla_timers_due", "due_at"),
    #: `next_timer_in`'s seeks (migration 6): the soonest due among unleased timers is the
    #: first entry after (NULL, ...); the leased ones (few: those in flight) are a short range.
    sa.Index("ix_tierdesk_sla_timers_lease_due", "lease_until", "due_at"),
)

sla_fired = sa.Table(
    "tierdesk_sla_fired",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
              autoincrement=True),
    sa.Column("vendor", sa.String(16), nullable=False),
    sa.Column("ticket", sa.String(255), nullable=False),
    sa.Column("threshold_key", sa.String(255), nullable=False),
    sa.Column("fired_at", sa.Float, nullable=False),
    sa.UniqueConstraint("vendor", "ticket", "threshold_key", name="uq_tierdesk_sla_fired"),
)

sla_notices = sa.Table(
    "tierdesk_sla_notices",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
              autoincrement=True),
    sa.Column("vendor", sa.String(16), nullable=False),
    sa.Column("ticket", sa.String(255), nullable=False),
    sa.Column("notice_key", sa.String(255), nullable=False),
    sa.Column("url", sa.Text, nullable=False),
    #: The JSON body to send ({"text": ...}, Slack-compatible).
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_attempt_at", sa.Float, nullable=False),
    sa.Column("sent_at", sa.Float),
    sa.Column("last_error", sa.Text),
    sa.UniqueConstraint("notice_key", name="uq_tierdesk_sla_notices_key"),
    sa.Index("ix_tierdesk_sla_notices_due", "sent_at", "next_attempt_at"),
)

#: The event type of the synthetic event a due SLA timer enqueues for its ticket.
SLA_DUE_EVENT = "tierdesk:sla-due"


UNFINISHED_ERROR = (
    "evaluation did not finish: claimed {claims} times without finishing (the process crashed"
    " or hung while deciding on this event); the ticket's other events went on"
)

