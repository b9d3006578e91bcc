"""Test doubles for the receiver and worker tests: a connector implementing connectors.base's
Protocol against an in-memory (or SQLite-file) "vendor", and a small deterministic `decide`.

The fake's webhook bodies look like `{"ticket": "T-1", "id": "d1", "seq": 1, "actor": "u",
"ts": 1000, "labels": [...]}`.
"""

from __future__ import annotations

import fcntl
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from connectors.base import VENDORS, Applied, Call, Decide, Envelope, PayloadInvalid, Vendor
from tiering.models import Decision, Ticket
from tiering.policy import Policy

BOT = "tierdesk-bot"


def fake_envelope(body: Mapping[str, Any], headers: Mapping[str, str]) -> Envelope:
    """Classify a fake body: `ignored: true` marks a known event tierdesk does not act on."""
    if body.get("ignored"):
        return Envelope(vendor="jira", event_type="jira:worklog_updated", handled=False,
                        ticket=None, delivery_id=str(body.get("id", "")))
    ticket = body.get("ticket")
    if not isinstance(ticket, str) or not ticket:
        raise PayloadInvalid("the body has no ticket (expected a non-empty string at .ticket)")
    ts = body.get("ts")
    return Envelope(
        vendor="jira",
        event_type=str(body.get("event", "jira:issue_updated")),
        handled=True,
        ticket=ticket,
        delivery_id=str(headers.get("x-atlassian-webhook-identifier") or body.get("id") or ""),
        actor=body.get("actor") if isinstance(body.get("actor"), str) else None,
        occurred_at=ts if isinstance(ts, int) else None,
    )


def vendors_classifying(
    **classify: Callable[[Mapping[str, Any], Mapping[str, str]], Envelope],
) -> dict[str, Vendor]:
    """The registry's vendors named here, each classifying with the function given."""
    return {name: replace(VENDORS[name], classify=function) for name, function in classify.items()}


def fake_decide(ticket: Ticket, policy: Policy, *, now: datetime) -> Decision:
    """Desired state: label `tier-l1` present and the note `ab000000` posted once."""
    add = () if "tier-l1" in ticket.labels else ("tier-l1",)
    key = "ab000000"
    comment = None if ticket.last_note_key == key else f"checklist\ntierdesk-note:{key}"
    return Decision(
        ticket=ticket.key,
        tier="L1",
        previous_tier="L1" if not add else None,
        labels_add=add,
        comment=comment,
        note_key=key,
        reasons=("fake rule: everything is L1",),
    )


@dataclass
class CurrentCall:
    payloads: list[Mapping[str, Any]]
    fresh: bool
    last_note_key: str | None


@dataclass
class FakeConnector:
    """Records every call; `errors` are raised by the next `apply` calls, in order."""

    vendor: str = "jira"
    errors: list[Exception] = field(default_factory=list)
    current_calls: list[CurrentCall] = field(default_factory=list)
    applied: list[tuple[Ticket, Decision]] = field(default_factory=list)
    bot: str = BOT

    def is_own_event(self, envelope: Envelope) -> bool:
        return envelope.actor == self.bot

    def current_ticket(
        self,
        payloads: Sequence[Mapping[str, Any]],
        *,
        fresh: bool = False,
        last_note_key: str | None = None,
    ) -> Ticket:
        self.current_calls.append(CurrentCall(list(payloads), fresh, last_note_key))
        newest = payloads[-1]
        return Ticket(
            key=str(newest["ticket"]),
            labels=frozenset(newest.get("labels", ())),
            last_note_key=last_note_key,
            fields={"seqs": tuple(str(p.get("seq")) for p in payloads)},
        )

    def apply(self, ticket: Ticket, decision: Decision, *, decide: Decide) -> Applied:
        if self.errors:
            raise self.errors.pop(0)
        if not decision.changed:
            return Applied(decision=decision)
        self.applied.append((ticket, decision))
        return Applied(
            calls=(Call("PUT", f"/rest/api/2/issue/{ticket.key}", 204, "apply decision"),),
            decision=decision,
            note_key=decision.note_key if decision.comment else None,
            wrote=True,
        )


class RecordingVendor:
    """A fake vendor in a SQLite file shared by processes: every write records the payload
    sequence numbers it covered, and whether other holders were active on the ticket at once."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._local = threading.local()
        with self._locked() as c:
            c.execute("CREATE TABLE IF NOT EXISTS writes (ticket TEXT, seq INTEGER, pid INTEGER)")
            c.execute("CREATE TABLE IF NOT EXISTS active (ticket TEXT PRIMARY KEY)")
            c.execute("CREATE TABLE IF NOT EXISTS overlaps (ticket TEXT)")

    @contextmanager
    def _locked(self) -> Iterator[sqlite3.Connection]:
        # One writer across processes through flock (woken at once by the kernel), rather
        # than SQLite's sleeping busy handler. synchronous=OFF still survives a process kill.
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=60, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=OFF")
            self._local.conn = conn
            self._local.lock = open(self.path + ".lock", "a+")  # noqa: SIM115
        fcntl.flock(self._local.lock, fcntl.LOCK_EX)
        try:
            yield conn
        finally:
            fcntl.flock(self._local.lock, fcntl.LOCK_UN)

    def enter(self, ticket: str) -> None:
        with self._locked() as c:
            try:
                c.execute("INSERT INTO active VALUES (?)", (ticket,))
            except sqlite3.IntegrityError:
                c.execute("INSERT INTO overlaps VALUES (?)", (ticket,))

    def leave(self, ticket: str) -> None:
        with self._locked() as c:
            c.execute("DELETE FROM active WHERE ticket = ?", (ticket,))

    def written(self, ticket: str) -> set[int]:
        with self._locked() as c:
            return {r[0] for r in c.execute("SELECT seq FROM writes WHERE ticket = ?", (ticket,))}

    def write(self, ticket: str, seqs: Sequence[int], pid: int) -> None:
        with self._locked() as c:
            c.execute("BEGIN")
            c.executemany("INSERT INTO writes VALUES (?, ?, ?)", [(ticket, s, pid) for s in seqs])
            c.execute("COMMIT")


class VendorBackedConnector(FakeConnector):
    """A FakeConnector whose writes land in a RecordingVendor. Like a real connector it is
    idempotent on a fresh read: sequence numbers already on the vendor are not written again."""

    def __init__(self, vendor_db: str) -> None:
        super().__init__()
        self.store = RecordingVendor(vendor_db)
        self._fresh = threading.local()

    def current_ticket(
        self,
        payloads: Sequence[Mapping[str, Any]],
        *,
        fresh: bool = False,
        last_note_key: str | None = None,
    ) -> Ticket:
        ticket = str(payloads[-1]["ticket"])
        self.store.enter(ticket)
        self._fresh.value = fresh
        return Ticket(key=ticket, fields={"seqs": tuple(str(p["seq"]) for p in payloads)},
                      last_note_key=last_note_key)

    def apply(self, ticket: Ticket, decision: Decision, *, decide: Decide) -> Applied:
        import os

        try:
            seqs = [int(s) for s in ticket.fields["seqs"]]  # type: ignore[union-attr]
            if getattr(self._fresh, "value", False):
                done = self.store.written(ticket.key)
                seqs = [s for s in seqs if s not in done]
            self.store.write(ticket.key, seqs, os.getpid())
        finally:
            self.store.leave(ticket.key)
        return Applied(calls=(Call("PUT", f"/fake/{ticket.key}", 204, "write"),),
                       decision=decision, wrote=True)
