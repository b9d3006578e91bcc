"""Everything the sandbox holds: both vendors' records, faults, the request log, the deliverer.

`Sandbox` is what the HTTP layer (server.py) and the Python API share. One lock guards all
vendor state; handlers run under it, so every request sees and leaves a consistent world.
Webhook deliveries leave through the `Deliverer`, which works outside the lock.
"""

from __future__ import annotations

import json
import random
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from sandbox.clock import SandboxClock
from sandbox.delivery import Deliverer, Delivery
from sandbox.faults import VENDORS, FaultSpec, FaultState, Vendor
from sandbox.jira.seed import JiraSeed
from sandbox.jira.site import JiraSim
from sandbox.zendesk.seed import ZendeskSeed
from sandbox.zendesk.site import ZendeskSim

#: Fault reasons (faults.FaultState.admit) that refuse a request before its handler runs.
REFUSALS = frozenset({"retry-after violated", "unavailable", "rate limited", "budget exhausted"})


class SeedInvalid(ValueError):
    """A seed file that cannot be loaded; the message names the file, the key and the problem."""


class Seed(BaseModel):
    """The whole seed file: one section per vendor."""

    model_config = ConfigDict(extra="forbid")
    jira: JiraSeed = JiraSeed()
    zendesk: ZendeskSeed = ZendeskSeed()


def default_seed_text() -> str:
    """The packaged seed.json: a support project and a Zendesk account with a few customers."""
    return (Path(__file__).parent / "seed.json").read_text("utf-8")


def load_seed(source: str | Path | dict[str, Any] | None = None) -> Seed:
    """A validated seed from a path, a dict, or (None) the packaged default."""
    name = "seed.json (packaged)"
    if source is None:
        raw: Any = json.loads(default_seed_text())
    elif isinstance(source, dict):
        raw, name = source, "seed"
    else:
        name = str(source)
        try:
            raw = json.loads(Path(source).read_text("utf-8"))
        except OSError as exc:
            raise SeedInvalid(f"{name}: cannot read the seed file: {exc.strerror}") from exc
        except ValueError as exc:
            raise SeedInvalid(f"{name}: not valid JSON: {exc}") from exc
    try:
        return Seed.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise SeedInvalid(f"{name}: {problems}") from exc


@dataclass
class LogEntry:
    """One request the sandbox answered."""

    seq: int
    at: float
    vendor: str
    method: str
    path: str
    query: str
    status: int | None
    actor: str | None
    write: bool
    fault: str | None


class Sandbox:
    """Both vendor simulations, their faults, the request log and the webhook deliverer."""

    def __init__(
        self,
        seed: Seed,
        *,
        delivery_workers: int = 4,
        retry_base: float = 0.25,
    ) -> None:
        self.lock = threading.RLock()
        #: The one time source of both sites and the deliveries (sandbox/clock.py).
        self.clock = SandboxClock()
        self.deliverer = Deliverer(workers=delivery_workers, retry_base=retry_base,
                                   wall=self.clock.now)
        self.faults: dict[str, FaultState] = {v: FaultState(v) for v in VENDORS}
        self.log: list[LogEntry] = []
        self._seq = 0
        self._delivery_seq = 0
        try:
            self.jira = JiraSim(seed.jira, emit=self._emit_jira, now=self.now)
            self.zendesk = ZendeskSim(seed.zendesk, emit=self._emit_zendesk, now=self.now)
        except ValueError as exc:
            self.deliverer.stop()
            raise SeedInvalid(str(exc)) from exc

    def now(self) -> datetime:
        """The sandbox's time (the system's unless a test set it: sandbox/clock.py)."""
        return self.clock.now()

    def sim(self, vendor: str) -> JiraSim | ZendeskSim:
        return self.jira if vendor == "jira" else self.zendesk

    # -------------------------------------------------------------------------- deliveries

    def _emit_jira(
        self,
        webhook_id: str,
        url: str,
        event: str,
        secret: str | None,
        body: dict[str, Any],
        ticket: str,
    ) -> None:
        raw = json.dumps(body, separators=(",", ":")).encode()
        self._submit("jira", webhook_id, url, event, secret, raw, ticket)

    def _emit_zendesk(
        self, webhook_id: str, url: str, event: str, secret: str | None, body: bytes, ticket: str
    ) -> None:
        self._submit("zendesk", webhook_id, url, event, secret, body, ticket)

    def _submit(
        self,
        vendor: Vendor,
        webhook_id: str,
        url: str,
        event: str,
        secret: str | None,
        body: bytes,
        ticket: str,
    ) -> None:
        self._delivery_seq += 1
        if vendor == "jira":
            delivery_id = f"sandbox-{self._delivery_seq:08d}-{random.getrandbits(32):08x}"
        else:
            delivery_id = str(8350205582 + self._delivery_seq)
        wf = self.faults[vendor].webhook_faults()
        for copy in range(1, wf.duplicate + 1):
            delay = random.uniform(0, wf.delay_seconds) if wf.delay_seconds else 0.0
            self.deliverer.submit(
                Delivery(
                    vendor,
                    webhook_id,
                    url,
                    body,
                    event,
                    ticket,
                    delivery_id,
                    secret,
                    account_id=self.zendesk.seed.account_id,
                    copy=copy,
                ),
                delay=delay,
            )

    # ------------------------------------------------------------------------------- log

    def record(
        self,
        vendor: str,
        method: str,
        path: str,
        query: str,
        status: int | None,
        actor: str | None,
        *,
        write: bool,
        fault: str | None,
    ) -> None:
        with self.lock:
            self._seq += 1
            self.log.append(
                LogEntry(
                    self._seq, time.time(), vendor, method, path, query, status, actor, write, fault
                )
            )

    def counts(self) -> dict[str, dict[str, int]]:
        """Requests per vendor: total; reads and writes that reached the vendor's handler
        (whatever it answered); `faulted`: refused by a 429/503 fault before that."""
        out: dict[str, dict[str, int]] = {
            v: {"requests": 0, "reads": 0, "writes": 0, "faulted": 0} for v in VENDORS
        }
        with self.lock:
            for e in self.log:
                if e.vendor not in out:
                    continue
                c = out[e.vendor]
                c["requests"] += 1
                if e.fault in REFUSALS:
                    # Refused before the handler ran (429, 503): neither a read nor a write.
                    c["faulted"] += 1
                else:
                    c["writes" if e.write else "reads"] += 1
        return out

    # --------------------------------------------------------------------------- control

    def set_faults(self, specs: dict[Vendor, FaultSpec]) -> None:
        now = time.monotonic()
        for vendor, spec in specs.items():
            self.faults[vendor].configure(spec, now=now)

    def clear_faults(self) -> None:
        self.set_faults({v: FaultSpec() for v in VENDORS})

    def violations(self) -> int:
        return sum(len(f.violations) for f in self.faults.values())

    def snapshot(self) -> dict[str, Any]:
        """The JSON of `GET /_sandbox/state`."""
        with self.lock:
            return {
                "jira": self.jira.state(),
                "zendesk": self.zendesk.state(),
                "faults": {v: f.snapshot() for v, f in self.faults.items()},
                "retry_after_violations": self.violations(),
                "requests": self.counts(),
                "deliveries": self.deliverer.snapshot(),
            }

    def log_since(self, since: int, deliveries_since: int | None = None) -> dict[str, Any]:
        """The JSON of `GET /_sandbox/log?since=N[&deliveries_since=M]`: requests after
        sequence number N, and delivery attempts after index M (default: all of them when N
        is 0, none otherwise, so that polling the request log stays cheap). `last` and
        `last_delivery` are the values to pass next time."""
        with self.lock:
            requests = [e.__dict__ for e in self.log if e.seq > since]
        attempts = list(self.deliverer.attempts)
        start = deliveries_since if deliveries_since is not None else (0 if since == 0 else None)
        chosen = [a.__dict__ for a in attempts[start:]] if start is not None else []
        return {
            "requests": requests,
            "deliveries": chosen,
            "last": requests[-1]["seq"] if requests else since,
            "last_delivery": len(attempts),
        }

    def close(self) -> None:
        self.deliverer.stop()
