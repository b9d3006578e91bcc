"""Zendesk secret rotation by the admin guide, end to end: no delivery lost at any step.

Real processes (the sandbox, `tierdesk serve`, `tierdesk install zendesk --rotate-secret`);
tickets are created before, during and after every step of "Rotating a webhook secret", also
while each install command runs, and every one is decided with no delivery refused.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from connectors.zendesk.webhook import sign as sign_zendesk
from tests.e2e.harness import (
    REPO,
    TIERDESK,
    InboxView,
    SandboxClient,
    SandboxProcess,
    Service,
    free_port,
    install,
    settle,
    vendor_env,
)
from tests.e2e.story import Case, create, view

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
POLICY = REPO / "deploy" / "policy.example.yaml"
SECRET = "TIERDESK_ZENDESK_WEBHOOK_SECRET"
PREVIOUS = "TIERDESK_ZENDESK_WEBHOOK_SECRET_PREVIOUS"
#: Tickets created in the background while one install command runs (bounded).
BACKGROUND_MAX = 12


@contextmanager
def zendesk_site() -> Iterator[tuple[SandboxProcess, Service, InboxView, dict[str, str], int]]:
    """A sandbox and `tierdesk serve`, webhooks installed by the CLI."""
    workdir = Path(tempfile.mkdtemp(prefix="tierdesk-e2e-zendesk-rotation-"))
    sandbox = SandboxProcess(workdir)
    service: Service | None = None
    try:
        db = workdir / "inbox.db"
        port = free_port()
        env = vendor_env(sandbox, db, POLICY)
        env.update(install("jira", env, f"http://127.0.0.1:{port}/webhooks/jira"))
        env.update(install("zendesk", env, f"http://127.0.0.1:{port}/webhooks/zendesk"))
        service = Service(env, port, workdir)
        service.start()
        yield sandbox, service, InboxView(db), env, port
    finally:
        if service is not None:
            service.stop()
        sandbox.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def _probe(port: int, secret: str) -> int:
    """One delivery signed now with `secret`, straight to the receiver: an event tierdesk
    accepts and ignores (a merged ticket), so only the signature decides the answer."""
    body = json.dumps({
        "type": "zen:event-type:ticket.merged", "id": str(uuid.uuid4()),
        "subject": "zen:ticket:1", "account_id": 1234567,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "detail": {"id": "1"}, "event": {}, "zendesk_event_version": "2022-11-06",
    }).encode()
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    answer = requests.post(
        f"http://127.0.0.1:{port}/webhooks/zendesk", data=body, timeout=10,
        headers={"Content-Type": "application/json",
                 "X-Zendesk-Webhook-Signature-Timestamp": stamp,
                 "X-Zendesk-Webhook-Signature": sign_zendesk(body, secret, stamp),
                 "X-Zendesk-Webhook-Id": "probe",
                 "X-Zendesk-Webhook-Invocation-Id": uuid.uuid4().hex})
    return answer.status_code


def _rotate(env: dict[str, str], port: int, sandbox: SandboxProcess,
            cases: list[Case]) -> subprocess.CompletedProcess[str]:
    """`tierdesk install zendesk --rotate-secret` while tickets keep being created."""
    stop = threading.Event()
    client = SandboxClient(sandbox.jira_url, sandbox.zendesk_url)  # its own session

    def traffic() -> None:
        for i in range(BACKGROUND_MAX):
            if stop.is_set():
                return
            cases.append(create(client, "zendesk", "triage", tag=f"during install {i}"))
            stop.wait(0.1)

    thread = threading.Thread(target=traffic, daemon=True)
    thread.start()
    try:
        return subprocess.run(
            [*TIERDESK, "install", "zendesk", "--rotate-secret", "--callback-url",
             f"http://127.0.0.1:{port}/webhooks/zendesk"],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False,
        )
    finally:
        stop.set()
        thread.join(timeout=60)


def _lines(out: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in out.splitlines():
        name, sep, value = line.strip().partition("=")
        if sep and name in (SECRET, PREVIOUS):
            found[name] = value
    return found


def test_zendesk_rotation_by_the_guide_loses_no_event() -> None:
    """Step 1 creates a second webhook (the trigger still calls the old one), serve restarts
    with SECRET=new and SECRET_PREVIOUS=old, step 2 moves the trigger, deletes the old webhook
    and renames the new one, then the overlap ends: every Zendesk delivery of the whole run is
    accepted and every ticket decided; the old secret passes during the overlap and is refused
    after it."""
    with zendesk_site() as (sandbox, service, inbox, env, port):
        client = sandbox.client
        mark = client.delivery_mark()
        old = env[SECRET]
        cases = [create(client, "zendesk", "triage", tag="before")]
        settle(client, inbox, timeout=90)

        # 1. A second webhook; the command prints what to set and how to go on.
        step1 = _rotate(env, port, sandbox, cases)
        assert step1.returncode == 0, step1.stderr or step1.stdout
        assert "Rotation step 1 of 2 done" in step1.stdout
        assert "--rotate-secret --callback-url" in step1.stdout
        printed = _lines(step1.stdout)
        assert printed[PREVIOUS] == old and printed[SECRET] != old
        hooks = client.state()["zendesk"]["webhooks"]
        assert sorted(h["name"] for h in hooks) == ["tierdesk", "tierdesk (rotation)"]
        cases.append(create(client, "zendesk", "triage", tag="two webhooks, old one called"))
        settle(client, inbox, timeout=90)

        # A rerun before the restart moves nothing and says what is missing.
        early = _rotate(env, port, sandbox, cases)
        assert early.returncode == 1 and "does not accept the new webhook" in early.stderr

        # 2. The receiver accepts both secrets.
        env.update(printed)
        service.stop()
        service.start()
        cases.append(create(client, "zendesk", "triage", tag="overlap, old webhook called"))
        settle(client, inbox, timeout=90)
        assert _probe(port, old) in (200, 202)  # the old secret, during the overlap

        # 3. + 4. The trigger moves to the new webhook; the old one goes, the new one is renamed.
        step2 = _rotate(env, port, sandbox, cases)
        assert step2.returncode == 0, step2.stderr or step2.stdout
        assert "Rotation step 2 of 2 done" in step2.stdout and PREVIOUS in step2.stdout
        hooks = client.state()["zendesk"]["webhooks"]
        assert [h["name"] for h in hooks] == ["tierdesk"]
        cases.append(create(client, "zendesk", "triage", tag="overlap, new webhook called"))
        settle(client, inbox, timeout=90)
        again = _rotate(env, port, sandbox, cases)  # idempotent: says it is finished
        assert again.returncode == 0 and "The rotation is finished" in again.stdout

        # 5. The overlap ends.
        del env[PREVIOUS]
        service.stop()
        service.start()
        cases.append(create(client, "zendesk", "triage", tag="after"))
        settle(client, inbox, timeout=90)
        assert _probe(port, old) == 401  # the old secret no longer passes
        assert _probe(port, env[SECRET]) in (200, 202)

        deliveries = [d for d in client.deliveries(mark) if d["vendor"] == "zendesk"]
        refused = [d for d in deliveries
                   if d["status"] is not None and not 200 <= d["status"] < 300]
        assert refused == []
        assert len(cases) > 5 + BACKGROUND_MAX  # the background traffic ran
        state = client.state()
        for case in cases:
            tags = view(state, case).labels
            assert any(tag.startswith("tier-") for tag in tags), (case, tags)
