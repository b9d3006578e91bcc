"""The sandbox's control API over HTTP, seed validation, and the `tierdesk sandbox` command."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from sandbox.faults import FaultsInvalid, parse_faults
from sandbox.server import SandboxHandle, run_in_thread
from sandbox.state import SeedInvalid, load_seed
from tests.webhook_receiver import Receiver
from webhooks.cli import main


def test_state_reports_records_counts_and_deliveries(sandbox: SandboxHandle) -> None:
    """GET /_sandbox/state shows issues, tickets, request counts by kind and delivery counts."""
    requests.get(
        f"{sandbox.jira_url}/rest/api/2/issue/SUP-1",
        auth=("bot@tierdesk.example", "sandbox-token"),
        timeout=5,
    )
    state = requests.get(f"{sandbox.zendesk_url}/_sandbox/state", timeout=5).json()
    assert state["jira"]["issues"]["SUP-1"]["summary"].startswith("How do I export")
    assert state["zendesk"]["tickets"]["1"]["organization_id"] == 1002
    assert state["requests"]["jira"] == {"requests": 1, "reads": 1, "writes": 0, "faulted": 0}
    assert state["deliveries"]["pending"] == 0
    assert state["retry_after_violations"] == 0


def test_faults_over_http_and_their_errors(sandbox: SandboxHandle) -> None:
    """POST /_sandbox/faults switches faults on; a bad spec is a 400 naming the key."""
    url = f"{sandbox.jira_url}/_sandbox/faults"
    ok = requests.post(url, json={"zendesk": {"unavailable": {"seconds": 5}}}, timeout=5)
    assert ok.status_code == 200
    assert ok.json()["zendesk"]["spec"] == {"unavailable": {"seconds": 5.0}}
    bad = requests.post(url, json={"zendesk": {"rate_limit": {"retry_after": 0}}}, timeout=5)
    assert bad.status_code == 400
    assert "zendesk.rate_limit.retry_after" in bad.json()["error"]
    assert requests.delete(url, timeout=5).status_code == 204


def test_agent_over_http_and_log(sandbox: SandboxHandle) -> None:
    """POST /_sandbox/jira/agent acts as that user; the log lists it apart from client calls."""
    answer = requests.post(
        f"{sandbox.jira_url}/_sandbox/jira/agent",
        timeout=5,
        json={
            "as": "agent",
            "method": "PUT",
            "path": "/rest/api/2/issue/SUP-1",
            "body": {"update": {"labels": [{"add": "escalate-l3"}]}},
        },
    ).json()
    assert answer == {"status": 204, "body": None}
    log = requests.get(f"{sandbox.jira_url}/_sandbox/log", timeout=5).json()
    assert [(r["vendor"], r["method"], r["actor"]) for r in log["requests"]] == [
        ("jira-agent", "PUT", "acc-agent")
    ]
    unknown = requests.post(
        f"{sandbox.jira_url}/_sandbox/jira/agent",
        timeout=5,
        json={"as": "nobody", "method": "GET", "path": "/rest/api/2/myself"},
    )
    assert unknown.status_code == 400
    assert "no jira user 'nobody'" in unknown.json()["error"]


def test_wait_endpoint(sandbox: SandboxHandle) -> None:
    """POST /_sandbox/wait returns once no delivery is pending."""
    answer = requests.post(f"{sandbox.jira_url}/_sandbox/wait?timeout=1", timeout=5).json()
    assert answer == {"idle": True}


@pytest.mark.parametrize(
    ("seed", "message"),
    [
        # Unknown top-level key.
        ({"servicenow": {}}, "servicenow: Extra inputs are not permitted"),
        # Wrong type deep inside.
        ({"zendesk": {"groups": [{"id": "x", "name": "g"}]}}, "zendesk.groups.0.id"),
        # An issue in a project that is not seeded.
        ({"jira": {"issues": [{"key": "NOPE-1", "summary": "s"}]}}, "project NOPE"),
        # A ticket whose requester is not a seeded user.
        ({"zendesk": {"tickets": [{"id": 1, "subject": "s", "requester_id": 5}]}}, "user 5"),
    ],
)
def test_bad_seeds_are_refused_with_the_key(seed: dict[str, object], message: str) -> None:
    """A seed that cannot be used raises SeedInvalid naming what is wrong."""
    with pytest.raises(SeedInvalid) as err:
        run_in_thread(seed=seed).stop()
    assert message in str(err.value)


def test_seed_file_errors_name_the_file(tmp_path: Path) -> None:
    """Unreadable or non-JSON seed files are named in the error."""
    broken = tmp_path / "seed.json"
    broken.write_text("{nope")
    with pytest.raises(SeedInvalid, match=r"seed\.json: not valid JSON"):
        load_seed(broken)


def test_fault_spec_errors() -> None:
    """Unknown vendors and unknown fault names are refused."""
    with pytest.raises(FaultsInvalid, match="unknown vendor 'github'"):
        parse_faults({"github": {}})
    with pytest.raises(FaultsInvalid, match=r"jira\.explode"):
        parse_faults({"jira": {"explode": True}})


def test_cli_refuses_bad_faults_option() -> None:
    """`tierdesk sandbox --faults` with bad JSON says what to pass."""
    result = CliRunner().invoke(main, ["sandbox", "--port", "0", "--faults", "{bad"])
    assert result.exit_code == 2
    assert "not valid JSON" in result.output


def test_cli_runs_and_stops_on_sigterm(tmp_path: Path) -> None:
    """`tierdesk sandbox --port 0 --json` prints its URLs at once (even into a pipe), serves,
    and exits on SIGTERM."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from webhooks.cli import main; main()",
            "sandbox",
            "--port",
            "0",
            "--json",
            "--faults",
            '{"jira": {"budget_per_minute": 100}}',
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert proc.stdout is not None
        urls = json.loads(proc.stdout.readline())
        state = requests.get(f"{urls['zendesk_url']}/_sandbox/state", timeout=5).json()
        assert state["faults"]["jira"]["spec"] == {"budget_per_minute": 100}
        assert urls["ZENPY_FORCE_NETLOC"] == urls["zendesk_url"].split("://")[1]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0


def test_log_pages_requests_and_deliveries(sandbox: SandboxHandle, receiver: Receiver) -> None:
    """/_sandbox/log returns what came after the marks it handed out last time."""
    requests.post(
        f"{sandbox.jira_url}/rest/webhooks/1.0/webhook",
        timeout=5,
        auth=("bot@tierdesk.example", "sandbox-token"),
        json={"url": receiver.url, "events": ["jira:issue_updated"]},
    )
    sandbox.agent("jira", "agent", "PUT", "/rest/api/2/issue/SUP-1", {"fields": {"summary": "one"}})
    receiver.wait_for(1)
    assert sandbox.wait_for_deliveries()
    first = requests.get(f"{sandbox.jira_url}/_sandbox/log", timeout=5).json()
    assert len(first["requests"]) == 2 and len(first["deliveries"]) == 1
    sandbox.agent("jira", "agent", "PUT", "/rest/api/2/issue/SUP-1", {"fields": {"summary": "two"}})
    receiver.wait_for(2)
    assert sandbox.wait_for_deliveries()
    params = {"since": first["last"], "deliveries_since": first["last_delivery"]}
    second = requests.get(f"{sandbox.jira_url}/_sandbox/log", params=params, timeout=5).json()
    assert [r["path"] for r in second["requests"]] == ["/rest/api/2/issue/SUP-1"]
    assert [d["attempt"] for d in second["deliveries"]] == [0]
    polled = requests.get(
        f"{sandbox.jira_url}/_sandbox/log", params={"since": second["last"]}, timeout=5
    ).json()
    assert polled["requests"] == [] and polled["deliveries"] == []
