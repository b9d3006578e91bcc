"""Jira as it really is, end to end: JSM notes stay internal, a secret rotation loses nothing.

Each test runs its own sandbox process and `tierdesk serve`, so the site (JSM) and the secrets
can differ from the shared stack's.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from connectors.jira.webhook import sign as sign_jira
from sandbox.state import default_seed_text
from tests.e2e.harness import (
    JIRA_BOT,
    REPO,
    TIERDESK,
    InboxView,
    SandboxProcess,
    Service,
    free_port,
    install,
    settle,
)
from tests.e2e.story import KINDS, Case, create, second_act, view
from tiering.models import note_key_in

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]
POLICY = REPO / "deploy" / "policy.example.yaml"


@dataclass
class Site:
    sandbox: SandboxProcess
    service: Service
    inbox: InboxView
    env: dict[str, str]
    port: int

    def settle(self) -> None:
        settle(self.sandbox.client, self.inbox, timeout=90)


@contextmanager
def jira_site(*, jsm: bool = False, extra_env: dict[str, str] | None = None) -> Iterator[Site]:
    """A sandbox (JSM when `jsm`) and `tierdesk serve`, webhooks installed by the CLI."""
    workdir = Path(tempfile.mkdtemp(prefix="tierdesk-e2e-jira-"))
    seed = json.loads(default_seed_text())
    seed["jira"]["service_management"] = jsm
    seed_path = workdir / "seed.json"
    seed_path.write_text(json.dumps(seed))
    sandbox = SandboxProcess(workdir, seed=seed_path)
    service: Service | None = None
    try:
        from tests.e2e.harness import vendor_env

        db = workdir / "inbox.db"
        port = free_port()
        env = vendor_env(sandbox, db, POLICY)
        if jsm:
            # JSM alone keeps the checklist from customers: no role visibility is set.
            env.pop("TIERDESK_JIRA_COMMENT_VISIBILITY")
            env["TIERDESK_JIRA_SERVICE_MANAGEMENT"] = "true"
        env.update(extra_env or {})
        env.update(install("jira", env, f"http://127.0.0.1:{port}/webhooks/jira"))
        env.update(install("zendesk", env, f"http://127.0.0.1:{port}/webhooks/zendesk"))
        service = Service(env, port, workdir)
        service.start()
        yield Site(sandbox, service, InboxView(db), env, port)
    finally:
        if service is not None:
            service.stop()
        sandbox.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def test_no_checklist_or_refusal_note_is_public_on_jsm() -> None:
    """On a JSM site every note tierdesk posts (checklists, the entitlement refusal, progress)
    is internal (jsdPublic false) and was posted through the Service Management API."""
    with jira_site(jsm=True) as site:
        client = site.sandbox.client
        mark = client.last_seq()
        cases: list[Case] = [create(client, "jira", kind) for kind in KINDS]
        site.settle()
        by_kind = {c.kind: c for c in cases}
        second_act(client, by_kind["docs"])
        second_act(client, by_kind["entitlement"])
        site.settle()
        state = client.state()
        notes = [
            (c.kind, comment)
            for c in cases
            for comment in state["jira"]["issues"][c.ref]["comments"]
            if comment["author"] == JIRA_BOT[1]
        ]
        kinds = {kind for kind, comment in notes if note_key_in(comment["body"])}
        assert {"docs", "entitlement"} <= kinds, notes  # a checklist and a refusal were posted
        assert any("Entitlement" in comment["body"] for _, comment in notes)
        assert [(k, c["body"][:60]) for k, c in notes if c["jsdPublic"]] == []
        assert "L2" in view(state, by_kind["docs"]).notes[-1]
        log = client.log(mark)["requests"]
        posts = [e for e in log if e.get("method") == "POST" and e.get("vendor") == "jira"
                 and "/comment" in e.get("path", "") and e.get("actor") == JIRA_BOT[1]]
        assert posts and all(e["path"].startswith("/rest/servicedeskapi/request/")
                             for e in posts), posts


def _jira_post(site: Site, body: bytes, secret: str) -> int:
    """One delivery straight to the receiver, signed with `secret`."""
    answer = requests.post(
        f"http://127.0.0.1:{site.port}/webhooks/jira", data=body, timeout=10,
        headers={"Content-Type": "application/json", "X-Hub-Signature": sign_jira(body, secret)},
    )
    return answer.status_code


def _rotate(site: Site) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*TIERDESK, "install", "jira", "--rotate-secret", "--callback-url",
         f"http://127.0.0.1:{site.port}/webhooks/jira"],
        cwd=REPO, env=site.env, capture_output=True, text=True, timeout=120, check=False,
    )


def test_secret_rotation_by_the_guide_loses_no_event() -> None:
    """The admin guide's rotation (overlap, restart, --rotate-secret, drop the previous secret,
    restart) leaves every Jira delivery accepted and every issue decided; during the overlap a
    delivery signed with the old secret is accepted, after it the old secret is refused."""
    with jira_site() as site:
        client = site.sandbox.client
        delivery_mark = client.delivery_mark()
        old = site.env["TIERDESK_JIRA_WEBHOOK_SECRET"]
        new = "rotated-" + "n" * 40
        cases = [create(client, "jira", "triage", tag="before")]
        site.settle()

        # 1. The receiver accepts both: the new secret as current, the old one as previous.
        site.env.update(TIERDESK_JIRA_WEBHOOK_SECRET=new, TIERDESK_JIRA_WEBHOOK_SECRET_PREVIOUS=old)
        site.service.stop()
        site.service.start()
        cases.append(create(client, "jira", "triage", tag="overlap, Jira still signs old"))
        site.settle()
        # Signed now, as Jira would: a body with an old `timestamp` is refused as a replay
        # whatever its signature (TIERDESK_JIRA_REPLAY_HORIZON).
        probe = json.dumps({"webhookEvent": "jira:issue_updated",
                            "timestamp": int(time.time() * 1000),
                            "issue": {"key": "SUP-1", "fields": {}}}).encode()
        assert _jira_post(site, probe, old) in (200, 202)  # old secret, during the overlap

        # 2. Jira is told the new secret (a rerun without --rotate-secret would keep it).
        done = _rotate(site)
        assert done.returncode == 0, done.stderr or done.stdout
        assert "unset TIERDESK_JIRA_WEBHOOK_SECRET_PREVIOUS" in done.stdout
        cases.append(create(client, "jira", "triage", tag="overlap, Jira signs new"))
        site.settle()

        # 3. The overlap ends.
        del site.env["TIERDESK_JIRA_WEBHOOK_SECRET_PREVIOUS"]
        site.service.stop()
        site.service.start()
        cases.append(create(client, "jira", "triage", tag="after"))
        site.settle()
        assert _jira_post(site, probe, old) == 401  # the old secret no longer passes

        refused = [d for d in client.deliveries(delivery_mark)
                   if d["vendor"] == "jira" and d["status"] is not None
                   and not 200 <= d["status"] < 300]
        assert refused == []
        state = client.state()
        for case in cases:
            labels = view(state, case).labels
            assert any(label.startswith("tier-") for label in labels), (case, labels)


def test_a_rule_that_keeps_undoing_tier_labels_is_stopped_with_one_note() -> None:
    """An automation that removes tierdesk's tier label each time: after 3 rewrites within the
    window tierdesk writes once more (the internal note naming the label) and then nothing, and
    /metrics counts the halted evaluations."""
    from tests.e2e.harness import JIRA_AGENT, Traffic

    with jira_site(extra_env={"TIERDESK_LOOP_MAX_REWRITES": "3"}) as site:
        client = site.sandbox.client
        case = create(client, "jira", "triage", tag="automation fights back")
        site.settle()
        mark = client.last_seq()
        for round_no in range(6):  # the "automation rule": bounded, 6 rounds
            labels = client.state()["jira"]["issues"][case.ref]["labels"]
            tier = [x for x in labels if x.startswith("tier-l")]
            if tier:
                answer = client.agent("jira", JIRA_AGENT, "PUT", f"/rest/api/2/issue/{case.ref}",
                                      {"update": {"labels": [{"remove": x} for x in tier]}})
                assert answer.status == 204
            else:
                # tierdesk left the label off: touch the issue so it is evaluated again
                answer = client.agent("jira", JIRA_AGENT, "PUT", f"/rest/api/2/issue/{case.ref}",
                                      {"fields": {"summary": f"Still there? ({round_no})"}})
                assert answer.status == 204
            site.settle()
        writes = Traffic.since(client, mark).writes("jira", ticket=case.ref)
        # rounds 1-2 re-add the label (3 rewrites with the first triage), round 3 posts the
        # note, rounds 4-6 write nothing
        assert len(writes) == 3, writes
        notes = [c["body"] for c in client.state()["jira"]["issues"][case.ref]["comments"]
                 if c["author"] == JIRA_BOT[1] and "stopped writing" in c["body"]]
        assert len(notes) == 1 and "tier-l1" in notes[0]
        metrics = requests.get(f"http://127.0.0.1:{site.port}/metrics", timeout=10).text
        halted = [line for line in metrics.splitlines()
                  if line.startswith("tierdesk_decisions_total") and "loop-halted" in line]
        assert halted and float(halted[0].rsplit(" ", 1)[1]) >= 4
