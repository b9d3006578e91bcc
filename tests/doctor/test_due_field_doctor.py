"""`tierdesk doctor` checks the policy's SLA due field (`sla.due_field`) on both vendors, from the
field lists it already reads: the right seed passes; each wrong seed or policy fails exactly the
due field check, with the fix; the doctor's requests are pinned, one by one."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from connectors.jira.doctor import due_field_check as jira_due_check
from connectors.zendesk.doctor import due_field_check as zendesk_due_check
from sandbox.state import default_seed_text
from tests.doctor.test_doctor import Seed, env, example_policy, failed, installed
from tiering.policy import Policy, load_policy
from webhooks.cli.doctor import collect
from webhooks.defaults import EXAMPLE_POLICY_SOURCE, default_policy_text

#: The example policy's due field line (deploy/policy.example.yaml).
DUE_LINE = "due_field: {clock: resolution, jira: duedate, zendesk: 360001120, zendesk_type: date}"
#: A Date Time Picker custom field added to the Jira seed by `jira_datetime_field`.
DATETIME_FIELD = "customfield_10200"
DATE_FIELD = "customfield_10201"


def due_policy(*, jira: str = "duedate", zendesk: int = 360001120,
               zendesk_type: str = "date") -> Policy:
    """The example policy with its due field mapped as given."""
    text = default_policy_text()
    assert DUE_LINE in text
    text = text.replace(DUE_LINE, f"due_field: {{clock: resolution, jira: {jira},"
                                  f" zendesk: {zendesk}, zendesk_type: {zendesk_type}}}")
    return load_policy(text, source=EXAMPLE_POLICY_SOURCE)


def date_fields(seed: Seed) -> None:
    """A Date Time Picker and a Date Picker custom field in the Jira seed (not used by the
    policy's documentation rules)."""
    seed["jira"]["fields"] += [
        {"id": DATETIME_FIELD, "name": "SLA due at", "type": "datetime"},
        {"id": DATE_FIELD, "name": "SLA due day", "type": "date"},
    ]


def due_zd_field(**change: Any) -> Callable[[Seed], None]:
    def mutate(seed: Seed) -> None:
        [field] = [f for f in seed["zendesk"]["ticket_fields"] if f["id"] == 360001120]
        field.update(change)
    return mutate


def due_zd_gone(seed: Seed) -> None:
    zd = seed["zendesk"]
    zd["ticket_fields"] = [f for f in zd["ticket_fields"] if f["id"] != 360001120]
    zd["ticket_forms"][0]["ticket_field_ids"].remove(360001120)


def nothing(seed: Seed) -> None:
    return None


def run(mutate: Callable[[Seed], None], policy: Policy) -> dict[str, Any]:
    seed = copy.deepcopy(json.loads(default_seed_text()))
    mutate(seed)
    with installed(seed, policy=policy) as (sb, receiver, jira_secret, zd_secret):
        checks = collect(env(sb, receiver, jira_secret, zd_secret), policy,
                         public_url=receiver.url)
    return {"bad": failed(checks),
            "all": {f"{c.vendor} {c.name}": c for c in checks}}


RIGHT: list[tuple[str, Callable[[Seed], None], dict[str, Any], str, str]] = [
    # the example policy: Jira duedate (a date), Zendesk 360001120 (an active date field)
    ("example", nothing, {}, "duedate ('Due date', date)", "360001120 ('SLA due', date)"),
    # a Date Time Picker custom field on Jira; a text field declared as text on Zendesk
    ("datetime-and-text", lambda s: (date_fields(s), due_zd_field(type="text")(s)),
     {"jira": DATETIME_FIELD, "zendesk_type": "text"},
     f"{DATETIME_FIELD} ('SLA due at', datetime)", "360001120 ('SLA due', text)"),
]


@pytest.mark.parametrize(("case", "mutate", "mapping", "jira", "zendesk"), RIGHT,
                         ids=[r[0] for r in RIGHT])
def test_a_usable_due_field_passes(case: str, mutate: Callable[[Seed], None],
                                   mapping: dict[str, Any], jira: str, zendesk: str) -> None:
    """A usable due field on each vendor is an ok check that names the field and its type;
    nothing else fails."""
    result = run(mutate, due_policy(**mapping))
    assert result["bad"] == {}
    assert result["all"]["jira sla due field"].status == "ok"
    assert jira in result["all"]["jira sla due field"].detail
    assert result["all"]["zendesk sla due field"].status == "ok"
    assert zendesk in result["all"]["zendesk sla due field"].detail


WRONG: list[tuple[str, Callable[[Seed], None], dict[str, Any], str, str, str]] = [
    # a Jira custom field id that does not exist
    ("jira-unknown", nothing, {"jira": "customfield_19999"}, "jira sla due field",
     "customfield_19999 does not exist", "Date Time Picker"),
    # a Jira text custom field (the sandbox's "any" type): not a date and time
    ("jira-text", nothing, {"jira": "customfield_10101"}, "jira sla due field",
     "not a date and time field", "sla.due_field.jira: duedate, or the id of a Date Time Picker"),
    # a Jira Date Picker: it takes no time of day
    ("jira-date-picker", date_fields, {"jira": DATE_FIELD}, "jira sla due field",
     "is a Date Picker", "use a Date Time Picker custom field, or duedate"),
    # a Zendesk field id that does not exist (Zendesk would ignore the writes silently)
    ("zendesk-unknown", due_zd_gone, {}, "zendesk sla due field",
     "360001120 is not a ticket field", "sla.due_field.zendesk: the id of a date ticket field"),
    # an inactive Zendesk field
    ("zendesk-inactive", due_zd_field(active=False), {}, "zendesk sla due field",
     "is inactive", "activate field 360001120"),
    # a Zendesk drop-down field
    ("zendesk-tagger", due_zd_field(type="tagger"), {}, "zendesk sla due field",
     "neither a date nor a text field", "the id of a date ticket field"),
    # the policy says text, the field is a date: Zendesk would refuse every write (422)
    ("zendesk-type-text", nothing, {"zendesk_type": "text"}, "zendesk sla due field",
     "zendesk_type is text", "set sla.due_field.zendesk_type: date"),
    # the policy says date, the field is text: the due time would lose its time of day
    ("zendesk-type-date", due_zd_field(type="text"), {}, "zendesk sla due field",
     "zendesk_type is date", "set sla.due_field.zendesk_type: text"),
]


@pytest.mark.parametrize(("case", "mutate", "mapping", "check", "detail", "fix"), WRONG,
                         ids=[w[0] for w in WRONG])
def test_a_wrong_due_field_fails_exactly_that_check(
    case: str, mutate: Callable[[Seed], None], mapping: dict[str, Any], check: str,
    detail: str, fix: str,
) -> None:
    """Exactly the vendor's due field check fails; its detail says what is wrong and its fix
    names the policy key or what to do in the vendor."""
    bad = run(mutate, due_policy(**mapping))["bad"]
    assert set(bad) == {check}, bad
    assert detail in bad[check].detail, bad[check]
    assert fix in bad[check].fix, bad[check]


def test_no_due_field_no_check() -> None:
    """A policy without `sla.due_field` has no due field check (and nothing fails)."""
    text = default_policy_text()
    policy = load_policy(text.replace("  " + DUE_LINE + "\n", ""), source=EXAMPLE_POLICY_SOURCE)
    assert policy.sla.spec is not None and policy.sla.spec.due_field is None
    result = run(nothing, policy)
    assert result["bad"] == {}
    assert not {"jira sla due field", "zendesk sla due field"} & set(result["all"])


def test_duedate_not_listed_names_the_permission() -> None:
    """Jira lists a field only to an account that can browse a project using it: a missing
    duedate says so (pure check, as Get fields would answer)."""
    check = jira_due_check("duedate", None)
    assert check.status == "fail"
    assert "Browse Projects" in check.fix


@pytest.mark.parametrize(("fid", "declared", "field", "status"), [
    # a date field declared date, listed without `active` (Zendesk's default is active)
    (7, "date", {"id": 7, "title": "Due", "type": "date"}, "ok"),
    # a multi-line text field is not accepted (views show text fields; textarea untested)
    (7, "text", {"id": 7, "title": "Due", "type": "textarea", "active": True}, "fail"),
])
def test_zendesk_due_check_table(fid: int, declared: str, field: dict[str, Any],
                                 status: str) -> None:
    """The Zendesk judgement on field shapes the sandbox seed does not produce."""
    assert zendesk_due_check(fid, declared, field).status == status


def test_doctor_requests_are_pinned_and_read_only() -> None:
    """On the right seed the doctor makes exactly these 11 Jira and 8 Zendesk requests, all
    reads but Zendesk's webhook test (which changes nothing in Zendesk): the due field checks
    add none, they judge the field lists already read (GET /rest/api/2/field, GET
    /api/v2/ticket_fields)."""
    seed = json.loads(default_seed_text())
    with installed(seed) as (sb, receiver, jira_secret, zd_secret):
        since = len(sb.sandbox.log)
        before = sb.state()["requests"]
        checks = collect(env(sb, receiver, jira_secret, zd_secret), example_policy(),
                         public_url=receiver.url)
        after = sb.state()["requests"]
        calls = [(e.vendor, e.method, e.path) for e in sb.sandbox.log[since:]]
    assert failed(checks) == {}
    for vendor in ("jira", "zendesk"):
        assert after[vendor]["writes"] == before[vendor]["writes"]
    jira = [(m, p) for v, m, p in calls if v == "jira"]
    zendesk = [(m, p) for v, m, p in calls if v == "zendesk"]
    print("doctor requests:", jira, zendesk)
    assert jira == JIRA_REQUESTS
    assert zendesk == ZENDESK_REQUESTS


#: connectors/jira/doctor.py's module docstring lists why each is made.
JIRA_REQUESTS = [
    ("GET", "/rest/api/2/myself"),
    ("GET", "/rest/api/2/serverInfo"),
    ("GET", "/rest/webhooks/1.0/webhook"),
    ("GET", "/rest/api/2/mypermissions"),                # project SUP
    ("GET", "/rest/api/2/field"),                        # documentation, Organizations, due
    ("GET", "/rest/api/2/user/assignable/search"),       # target L1's assignee
    ("GET", "/rest/api/2/user/assignable/search"),       # L2
    ("GET", "/rest/api/2/project/SUP/components"),       # L3's component
    ("GET", "/rest/api/2/user/assignable/search"),       # L4
    ("GET", "/rest/api/2/user/assignable/search"),       # billing
    ("GET", "/rest/api/2/project/SUP/role"),             # role visibility (no admin: a warning)
]
#: connectors/zendesk/doctor.py's module docstring lists why each is made.
ZENDESK_REQUESTS = [
    ("GET", "/api/v2/users/me"),
    ("GET", "/api/v2/ticket_fields"),                    # documentation fields and the due field
    ("GET", "/api/v2/ticket_forms"),
    ("GET", "/api/v2/groups"),
    ("GET", "/api/v2/organization_fields"),
    ("GET", "/api/v2/webhooks"),
    ("GET", "/api/v2/triggers/search"),
    ("POST", "/api/v2/webhooks/test"),                   # the test delivery (no change in Zendesk)
]
