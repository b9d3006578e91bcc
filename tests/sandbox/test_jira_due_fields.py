"""The Jira sandbox's date fields (sandbox/jira/fields.py) through the real `jira` library:
`duedate` and a date time custom field, taken and read back as Jira does, refused as Jira does,
and a refused edit changes nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from jira import JIRA, JIRAError

from sandbox.server import SandboxHandle, run_in_thread
from sandbox.state import default_seed_text

DT = "customfield_10200"
DP = "customfield_10201"  # a Date Picker


@pytest.fixture(scope="module")
def jira() -> Iterator[tuple[SandboxHandle, JIRA]]:
    seed = json.loads(default_seed_text())
    seed["jira"]["fields"].append({"id": DT, "name": "SLA due", "type": "datetime"})
    seed["jira"]["fields"].append({"id": DP, "name": "SLA due day", "type": "date"})
    with run_in_thread(seed=seed) as handle:
        client = JIRA(server=handle.jira_url, basic_auth=("bot@tierdesk.example", "sandbox-token"),
                      max_retries=0, timeout=5, options={"check_update": False})
        yield handle, client


def _put(client: JIRA, url: str, body: dict[str, Any]) -> None:
    client._session.put(f"{url}/rest/api/2/issue/SUP-1", data=json.dumps(body))


def test_duedate_set_read_back_and_cleared(jira: tuple[SandboxHandle, JIRA]) -> None:
    handle, client = jira
    _put(client, handle.jira_url, {"fields": {"duedate": "2026-11-22"}})
    assert client.issue("SUP-1", fields="duedate").raw["fields"] == {"duedate": "2026-11-22"}
    _put(client, handle.jira_url, {"fields": {"duedate": None}})
    assert client.issue("SUP-1", fields="duedate").raw["fields"] == {"duedate": None}


def test_datetime_field_set_and_read_back(jira: tuple[SandboxHandle, JIRA]) -> None:
    handle, client = jira
    _put(client, handle.jira_url, {"fields": {DT: "2026-11-22T11:00:00.000+0000"}})
    assert client.issue("SUP-1", fields=DT).raw["fields"][DT] == "2026-11-22T11:00:00.000+0000"


@pytest.mark.parametrize(("field", "value", "message"), [
    ("duedate", "2026-11-22T11:00:00.000+0000", "Error parsing date string"),
    ("duedate", "22/11/2026", "Error parsing date string"),
    ("duedate", "2026-02-30", "Error parsing date string"),
    ("duedate", 20261122, "Operation value must be a string"),
    (DT, "2026-11-22T11:00:00.000+00:00", "Error parsing time"),  # colon offset
    (DT, "2026-11-22", "Error parsing time"),
    (DT, {"value": "x"}, "Operation value must be a string"),
    (DP, "2026-11-22T11:00:00.000+0000", "Error parsing date string"),  # a Date Picker
    (DP, 20261122, "Operation value must be a string"),
])
def test_wrong_formats_are_refused_and_change_nothing(
    jira: tuple[SandboxHandle, JIRA], field: str, value: Any, message: str
) -> None:
    handle, client = jira
    before = client.issue("SUP-1").raw["fields"]
    with pytest.raises(JIRAError) as refused:
        _put(client, handle.jira_url, {"fields": {field: value, "summary": "changed?"},
                                       "update": {"labels": [{"add": "should-not-land"}]}})
    assert refused.value.status_code == 400
    errors = refused.value.response.json()["errors"]
    assert message in errors[field]
    assert client.issue("SUP-1").raw["fields"] == before


def test_duedate_is_not_stored_when_the_rest_of_the_edit_is_refused(
    jira: tuple[SandboxHandle, JIRA],
) -> None:
    handle, client = jira
    before = client.issue("SUP-1", fields="duedate").raw["fields"]["duedate"]
    with pytest.raises(JIRAError):
        _put(client, handle.jira_url, {"fields": {"duedate": "2027-01-05"},
                                       "update": {"labels": [{"add": "has space"}]}})
    assert client.issue("SUP-1", fields="duedate").raw["fields"]["duedate"] == before


def test_get_fields_gives_the_date_types(jira: tuple[SandboxHandle, JIRA]) -> None:
    """GET /rest/api/2/field lists duedate as a system date and each seeded date custom field
    with its schema type and custom type key (what `tierdesk doctor` judges)."""
    handle, client = jira
    fields = {f["id"]: f for f in client._session.get(f"{handle.jira_url}/rest/api/2/field").json()}
    assert fields["duedate"]["schema"] == {"type": "date", "system": "duedate"}
    assert fields[DT]["schema"]["type"] == "datetime"
    assert fields[DT]["schema"]["custom"].endswith("customfieldtypes:datetime")
    assert fields[DP]["schema"]["type"] == "date"
    assert fields[DP]["schema"]["custom"].endswith("customfieldtypes:datepicker")
    _put(client, handle.jira_url, {"fields": {DP: "2026-11-22"}})
    assert client.issue("SUP-1", fields=DP).raw["fields"][DP] == "2026-11-22"
