"""`tierdesk doctor` against the sandbox seeded right and wrong: on the right seed nothing fails;
each wrong seed (or setting) makes exactly the check that should fail fail, with its fix."""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from click.testing import CliRunner

from connectors.checks import Check
from connectors.jira.admin import JiraAdmin
from connectors.zendesk import ZendeskConnector
from connectors.zendesk.admin import ZendeskAdmin
from connectors.zendesk.webhook import verify_signature as verify_zendesk
from sandbox.server import SandboxHandle, run_in_thread
from sandbox.state import default_seed_text
from tests.webhook_receiver import Receiver, running_receiver
from tiering.policy import Policy, load_policy
from webhooks.cli import main
from webhooks.cli.doctor import collect, start_summary_thread
from webhooks.defaults import EXAMPLE_POLICY_SOURCE, default_policy_text
from webhooks.settings import Settings, load_settings

Seed = dict[str, Any]


def example_policy(extra_field: bool = False) -> Policy:
    text, source = default_policy_text(), EXAMPLE_POLICY_SOURCE
    if extra_field:
        # A documentation field added to the policy after `install zendesk` ran.
        text = text.replace(
            "  reproduced:         {jira: customfield_10104, zendesk: 360001114}",
            "  reproduced:         {jira: customfield_10104, zendesk: 360001114}\n"
            "  workaround:         {jira: customfield_10104, zendesk: 360001115}",
        ).replace(
            '    - {field: reproduced, label: "Reproduced in the lab by L2", one_of: ["yes"]}',
            '    - {field: reproduced, label: "Reproduced in the lab by L2", one_of: ["yes"]}\n'
            '    - {field: workaround, label: "Workaround", one_of: ["none", "found"]}',
        )
        assert "workaround" in text
    return load_policy(text, source=source)


def env(sb: SandboxHandle, receiver: Receiver, jira_secret: str, zendesk_secret: str,
        **over: Any) -> Settings:
    values: dict[str, Any] = {
        "jira_url": sb.jira_url, "jira_email": "bot@tierdesk.example",
        "jira_api_token": "sandbox-token", "jira_account_id": "acc-bot",
        "jira_comment_visibility": "role:Administrators", "jira_webhook_secret": jira_secret,
        "zendesk_url": sb.zendesk_url, "zendesk_email": "bot@tierdesk.example",
        "zendesk_api_token": "sandbox-token", "zendesk_user_id": 9001,
        "zendesk_webhook_secret": zendesk_secret,
    }
    values.update(over)
    return load_settings(**{k: v for k, v in values.items() if v is not None})


@contextmanager
def installed(seed: Seed, *, policy: Policy | None = None,
              jira_hook: bool = True) -> Iterator[tuple[SandboxHandle, Receiver, str, str]]:
    """A sandbox on `seed` with tierdesk's webhooks installed (as an install would), and a
    receiver for Zendesk's test delivery."""
    with running_receiver() as receiver, run_in_thread(seed=seed) as sb:
        settings = load_settings(
            jira_url=sb.jira_url, jira_email="admin@tierdesk.example",
            jira_api_token="sandbox-token", jira_comment_visibility="role:Administrators",
            zendesk_url=sb.zendesk_url, zendesk_email="bot@tierdesk.example",
            zendesk_api_token="sandbox-token", zendesk_user_id=9001,
        )
        jira_secret = "jira-secret"
        if jira_hook:
            jira_config = settings.jira_config()
            assert jira_config is not None
            JiraAdmin.from_config(jira_config).install_webhook(
                callback_url=receiver.url + "/webhooks/jira", jql="project = SUP",
                secret=jira_secret)
        zendesk_config = settings.zendesk_config()
        assert zendesk_config is not None
        result = ZendeskAdmin(
            ZendeskConnector(zendesk_config, policy or example_policy())
        ).install_webhook(
            callback_url=receiver.url + "/webhooks/zendesk",
        )
        assert result.secret
        yield sb, receiver, jira_secret, result.secret


def failed(checks: list[Check]) -> dict[str, Check]:
    return {f"{c.vendor} {c.name}": c for c in checks if c.status == "fail"}


def test_right_seed_passes_and_the_test_delivery_is_signed() -> None:
    """On the packaged seed with tierdesk installed nothing fails; the warnings are the optional
    project admin and the role check it needs; Zendesk's test delivery reached the receiver
    signed with the webhook's secret."""
    seed = json.loads(default_seed_text())
    with installed(seed) as (sb, receiver, jira_secret, zd_secret):
        settings = env(sb, receiver, jira_secret, zd_secret)
        before = sb.state()["requests"]
        checks = collect(settings, example_policy(), public_url=receiver.url)
        after = sb.state()["requests"]
        # Read-only: no write reached either vendor; every request counted (printed figure).
        for vendor in ("jira", "zendesk"):
            assert after[vendor]["writes"] == before[vendor]["writes"]
        print(f"doctor: {len(checks)} checks, requests jira"
              f" {after['jira']['requests'] - before['jira']['requests']}, zendesk"
              f" {after['zendesk']['requests'] - before['zendesk']['requests']}")
        assert failed(checks) == {}
        assert {f"{c.vendor} {c.name}" for c in checks if c.status == "warn"} == {
            "jira project admin in SUP", "jira comment visibility in SUP"}
        names = {f"{c.vendor} {c.name}" for c in checks}
        for expected in ("jira credentials", "jira bot identity", "jira webhook",
                         "jira permissions in SUP", "jira field steps_to_reproduce",
                         "jira target L1 in SUP", "jira target L3 component in SUP",
                         "zendesk credentials", "zendesk bot identity", "zendesk webhook",
                         "zendesk trigger", "zendesk reply trigger",
                         "zendesk test delivery", "zendesk target L2",
                         "zendesk field category", "zendesk organization field",
                         "jira receiver secret", "zendesk receiver secret"):
            assert expected in names, expected
        [delivery] = [r for r in receiver.calls if r.path == "/webhooks/zendesk"]
        verify_zendesk(delivery.body,
                       signature=delivery.headers["X-Zendesk-Webhook-Signature"],
                       timestamp=delivery.headers["X-Zendesk-Webhook-Signature-Timestamp"],
                       secret=zd_secret)


def _jira(seed: Seed) -> Seed:
    return seed["jira"]  # type: ignore[no-any-return]


def _zd(seed: Seed) -> Seed:
    return seed["zendesk"]  # type: ignore[no-any-return]


def no_edit(seed: Seed) -> None:
    _jira(seed)["permissions"]["acc-bot"]["SUP"].remove("EDIT_ISSUES")


def field_gone(seed: Seed) -> None:
    _jira(seed)["fields"] = [f for f in _jira(seed)["fields"] if f["id"] != "customfield_10101"]


def vendor_not_assignable(seed: Seed) -> None:
    _jira(seed)["permissions"]["acc-vendor"]["SUP"].remove("ASSIGNABLE_USER")


def no_engineering(seed: Seed) -> None:
    _jira(seed)["components"] = [c for c in _jira(seed)["components"]
                                 if c["name"] != "Engineering"]


def no_group_300(seed: Seed) -> None:
    _zd(seed)["groups"] = [g for g in _zd(seed)["groups"] if g["id"] != 300]


def version_off_forms(seed: Seed) -> None:
    _zd(seed)["ticket_forms"][0]["ticket_field_ids"].remove(360001112)


def no_plan_field(seed: Seed) -> None:
    _zd(seed)["organization_fields"] = []


def category_gone(seed: Seed) -> None:
    _zd(seed)["ticket_fields"] = [f for f in _zd(seed)["ticket_fields"] if f["id"] != 360001113]
    _zd(seed)["ticket_forms"][0]["ticket_field_ids"].remove(360001113)


def nothing(seed: Seed) -> None:
    return None


WRONG: list[tuple[str, Callable[[Seed], None], dict[str, Any], str, str]] = [
    # a wrong Jira API token: the first check fails and says which settings
    ("jira-token", nothing, {"jira_api_token": "wrong"}, "jira credentials",
     "TIERDESK_JIRA_API_TOKEN"),
    # the bot id is not the account the credentials belong to (the loop guard)
    ("jira-bot", nothing, {"jira_account_id": "acc-agent"}, "jira bot identity",
     "TIERDESK_JIRA_ACCOUNT_ID=acc-bot"),
    # the bot lacks Edit issues in SUP
    ("jira-permission", no_edit, {}, "jira permissions in SUP", "EDIT_ISSUES"),
    # a documentation field id that does not exist
    ("jira-field", field_gone, {}, "jira field steps_to_reproduce",
     "fields.steps_to_reproduce.jira"),
    # a target assignee who may not be assigned issues
    ("jira-assignee", vendor_not_assignable, {}, "jira target L4 in SUP",
     "targets.L4.jira.assignee"),
    # a target component the project lacks
    ("jira-component", no_engineering, {}, "jira target L3 component in SUP",
     "targets.L3.jira.component"),
    # comment visibility by a group the bot is not in
    ("jira-visibility", nothing, {"jira_comment_visibility": "group:jira-administrators"},
     "jira comment visibility in SUP", "TIERDESK_JIRA_COMMENT_VISIBILITY"),
    # no receiver secret for Jira
    ("jira-secret", nothing, {"jira_webhook_secret": None}, "jira receiver secret",
     "TIERDESK_JIRA_WEBHOOK_SECRET"),
    # a wrong Zendesk token
    ("zendesk-token", nothing, {"zendesk_api_token": "wrong"}, "zendesk credentials",
     "TIERDESK_ZENDESK_API_TOKEN"),
    # the Zendesk bot id is another user
    ("zendesk-bot", nothing, {"zendesk_user_id": 9002}, "zendesk bot identity",
     "TIERDESK_ZENDESK_USER_ID=9001"),
    # a target group that does not exist
    ("zendesk-group", no_group_300, {}, "zendesk target L3", "targets.L3.zendesk.group_id"),
    # a documentation field that is on no ticket form
    ("zendesk-form", version_off_forms, {}, "zendesk field product_version",
     "add field 360001112 to the ticket forms"),
    # a documentation field id Zendesk does not have (it would ignore it silently)
    ("zendesk-field", category_gone, {}, "zendesk field category", "fields.category.zendesk"),
    # the entitlement organization field key does not exist
    ("zendesk-org-field", no_plan_field, {}, "zendesk organization field",
     "entitlement.zendesk_organization_field"),
]


#: Checks that rightly fail with another: the trigger's loop guard names the bot id too.
ALSO = {"zendesk-bot": {"zendesk trigger", "zendesk reply trigger"}}


@pytest.mark.parametrize(("case", "mutate", "settings", "check", "fix"), WRONG,
                         ids=[w[0] for w in WRONG])
def test_wrong_seed_fails_the_check_that_names_it(
    case: str, mutate: Callable[[Seed], None], settings: dict[str, Any], check: str, fix: str
) -> None:
    """Exactly the check about what is wrong fails, and its fix names the key or setting."""
    seed = copy.deepcopy(json.loads(default_seed_text()))
    mutate(seed)
    with installed(seed) as (sb, receiver, jira_secret, zd_secret):
        checks = collect(env(sb, receiver, jira_secret, zd_secret, **settings), example_policy(),
                         public_url=receiver.url)
    bad = failed(checks)
    assert set(bad) == {check} | ALSO.get(case, set()), bad
    assert fix in bad[check].fix or fix in bad[check].detail, bad[check]


def test_stale_trigger_and_refused_test_delivery_are_caught() -> None:
    """A documentation field added without rerunning `install zendesk` fails the trigger check;
    a receiver refusing the signature (401) fails the test delivery; no webhook at Jira fails
    the webhook check."""
    seed = json.loads(default_seed_text())
    # The new field exists in Zendesk and is on the form: only the trigger is behind.
    _zd(seed)["ticket_fields"].append({"id": 360001115, "title": "Workaround", "type": "tagger"})
    _zd(seed)["ticket_forms"][0]["ticket_field_ids"].append(360001115)
    with installed(seed, jira_hook=False) as (sb, receiver, jira_secret, zd_secret):
        receiver.statuses.append(401)
        checks = collect(env(sb, receiver, jira_secret, zd_secret),
                         example_policy(extra_field=True), public_url=receiver.url)
    bad = failed(checks)
    # The public reply trigger sends the same body, so it is behind too.
    assert set(bad) == {"jira webhook", "zendesk trigger", "zendesk reply trigger",
                        "zendesk test delivery"}, bad
    assert "missing" in bad["zendesk trigger"].detail
    assert "install zendesk" in bad["zendesk trigger"].fix
    assert "TIERDESK_ZENDESK_WEBHOOK_SECRET" in bad["zendesk test delivery"].fix
    assert "install jira" in bad["jira webhook"].fix


def test_cli_prints_the_table_and_json_and_exits_1_on_a_failure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`tierdesk doctor` prints ✔/✘/! lines with the fix under each failure and exits 1;
    `--json` gives the same checks as data."""
    seed = json.loads(default_seed_text())
    no_group_300(seed)
    with installed(seed) as (sb, receiver, jira_secret, zd_secret):
        for key, value in {
            "TIERDESK_JIRA_URL": sb.jira_url, "TIERDESK_JIRA_EMAIL": "bot@tierdesk.example",
            "TIERDESK_JIRA_API_TOKEN": "sandbox-token", "TIERDESK_JIRA_ACCOUNT_ID": "acc-bot",
            "TIERDESK_JIRA_COMMENT_VISIBILITY": "role:Administrators",
            "TIERDESK_JIRA_WEBHOOK_SECRET": jira_secret, "TIERDESK_ZENDESK_URL": sb.zendesk_url,
            "TIERDESK_ZENDESK_EMAIL": "bot@tierdesk.example",
            "TIERDESK_ZENDESK_API_TOKEN": "sandbox-token", "TIERDESK_ZENDESK_USER_ID": "9001",
            "TIERDESK_ZENDESK_WEBHOOK_SECRET": zd_secret,
        }.items():
            monkeypatch.setenv(key, value)
        monkeypatch.delenv("TIERDESK_POLICY", raising=False)
        table = CliRunner().invoke(main, ["doctor", "--public-url", receiver.url])
        data = CliRunner().invoke(main, ["doctor", "--json"])
    assert table.exit_code == 1, table.output
    assert "✘ zendesk  target L3" in table.output
    assert "fix: targets.L3.zendesk.group_id:" in table.output
    assert "✔ jira     credentials" in table.output
    assert "! jira     project admin in SUP" in table.output
    assert data.exit_code == 1
    parsed = json.loads(data.output)
    assert parsed["failed"] == 1
    [bad] = [c for c in parsed["checks"] if c["status"] == "fail"]
    assert (bad["vendor"], bad["name"]) == ("zendesk", "target L3")


def test_serve_summary_is_one_line_and_never_raises(caplog: pytest.LogCaptureFixture) -> None:
    """The start-up summary `serve` logs: one warning line naming the failed checks (here the
    Zendesk target L3), without the test delivery; a vendor that cannot be reached is a failed
    check in that line, not an exception."""
    seed = json.loads(default_seed_text())
    no_group_300(seed)
    with installed(seed) as (sb, receiver, jira_secret, zd_secret):
        settings = env(sb, receiver, jira_secret, zd_secret)
        with caplog.at_level(logging.INFO, logger="tierdesk"):
            start_summary_thread(settings, example_policy()).join(timeout=30)
        calls = len(receiver.calls)
    lines = [r for r in caplog.records if r.getMessage().startswith("doctor: ")]
    assert len(lines) == 1
    assert lines[0].levelno == logging.WARNING
    assert "1 failed" in lines[0].getMessage()
    assert "zendesk target L3" in lines[0].getMessage()
    assert calls == 0  # no test delivery at start-up
    caplog.clear()
    down = load_settings(jira_url="http://127.0.0.1:9", jira_email="b@x.example",
                         jira_api_token="t", jira_comment_visibility="public", http_timeout=1)
    with caplog.at_level(logging.INFO, logger="tierdesk"):
        start_summary_thread(down, example_policy()).join(timeout=30)
    [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("doctor: ")]
    assert "jira reachable" in line
