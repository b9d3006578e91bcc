"""Fixtures of the end-to-end suite: one sandbox process and one `tierdesk serve` process per
session (per xdist worker), installed through tierdesk's own `install` commands; the figures
table they fill is printed at the end by tests/conftest.py.

Scale (the issue's full figures in brackets; CI runs the defaults on 2 cores):

    TIERDESK_E2E_OUTAGE_SECONDS   the 503 outage of the fault test, s   (default 20) [120]
    TIERDESK_E2E_BURST            events in the fault and crash bursts  (default 200) [1000]
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.harness import (
    REPO,
    VENDORS,
    InboxView,
    SandboxClient,
    SandboxProcess,
    Service,
    free_port,
    install,
    settle,
    vendor_env,
)

POLICY = REPO / "deploy" / "policy.example.yaml"


def example_policy_with_sla(workdir: Path, name: str, sla: str) -> Path:
    """`workdir/name`: the example policy with its calendars and sla sections replaced by
    `sla` (YAML text for both), for the end-to-end tests' second-scale clocks."""
    text = POLICY.read_text("utf-8")
    cut = text.index("\ncalendars:")
    path = workdir / name
    path.write_text(text[:cut] + "\n" + sla, "utf-8")
    return path

def outage_seconds() -> float:
    return float(os.environ.get("TIERDESK_E2E_OUTAGE_SECONDS", "20"))


def burst_size() -> int:
    return int(os.environ.get("TIERDESK_E2E_BURST", "200"))


@dataclass
class Stack:
    """The running sandbox and service, and how to look at them."""

    sandbox: SandboxProcess
    service: Service
    inbox: InboxView
    workdir: Path

    @property
    def client(self) -> SandboxClient:
        return self.sandbox.client

    def settle(self, timeout: float = 60.0) -> None:
        try:
            settle(self.client, self.inbox, timeout=timeout)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\nservice log:\n{self.service.logs()}") from exc


@contextmanager
def running_stack(policy: Callable[[Path], Path], *, prefix: str = "tierdesk-e2e-"
                  ) -> Iterator[Stack]:
    """Sandbox + `tierdesk serve` (SQLite inbox in a temp dir), webhooks installed by the CLI,
    with the policy `policy(workdir)` returns; stopped and removed when the block ends."""
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    sandbox = SandboxProcess(workdir)
    service: Service | None = None
    try:
        db = workdir / "inbox.db"
        port = free_port()
        env = vendor_env(sandbox, db, policy(workdir))
        for vendor in VENDORS:
            env.update(install(vendor, env, f"http://127.0.0.1:{port}/webhooks/{vendor}"))
        service = Service(env, port, workdir)
        service.start()
        yield Stack(sandbox, service, InboxView(db), workdir)
    finally:
        if service is not None:
            service.stop()
        sandbox.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    """The shared stack on the example policy."""
    with running_stack(lambda _: POLICY) as running:
        yield running


@pytest.fixture
def quiet_stack(stack: Stack) -> Iterator[Stack]:
    """The stack with no faults, settled before and after the test (tests stay independent)."""
    stack.client.clear_faults()
    if stack.service.proc is None or stack.service.proc.poll() is not None:
        stack.service.start()
    stack.settle()
    yield stack
    stack.client.clear_faults()
    if stack.service.proc is None or stack.service.proc.poll() is not None:
        stack.service.start()
    # A failed test may leave retries behind; give them a bounded time, never fail teardown.
    deadline = time.monotonic() + 30
    while stack.inbox.pending() and time.monotonic() < deadline:
        time.sleep(0.2)

