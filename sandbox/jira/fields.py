"""The Jira sandbox's date fields: `duedate` and date time custom fields, refused as Jira does.

`edit(site, issue, fields, update, actor)` wraps the edit handler's `_apply`: it checks the date
values first (an edit with a wrong one is answered 400 and changes nothing), then lets `_apply`
do the rest and stores `duedate` (with its changelog item) only when that succeeded.

What Jira takes (the sources are those of connectors/jira/due.py):

- `duedate`: text `YYYY-MM-DD` ("Field input formats", developer.atlassian.com/server/
  jira-servicedesk/info/field-input-formats: `"duedate": "2015-11-18"`), or null to clear it;
- a date time custom field (`type: datetime` in the seed): text `YYYY-MM-DDThh:mm:ss.sTZD`
  with the offset written without a colon (same page: `"2015-11-18T14:39:00.000+1100"`); an
  offset with a colon is refused with "Error parsing time" (sooperset/mcp-atlassian #863);
- anything that is not text: "Operation value must be a string" (AtlassianPS/JiraPS #173,
  getsentry/sentry-plugins #185).
- a date picker custom field (`type: date` in the seed) takes what `duedate` takes ("Jira
  REST API examples", developer.atlassian.com/server/jira/platform/jira-rest-api-examples:
  DatePickerField `"customfield_10002": "2011-10-03"`, quoted in guilhemmarchand/
  TA-jira-service-desk-simple-addon #191).

GET /rest/api/2/field describes each field's type in `schema` (FieldDetails and JsonTypeBean
in platform-openapi-v3.json: `type`, plus `system` for a system field or the `custom` type
key): `schema_json` gives duedate `{"type": "date", "system": "duedate"}` and the custom types
`com.atlassian.jira.plugin.system.customfieldtypes:datetime` / `:datepicker` (the keys the same
OpenAPI names among its date field types) with `type` datetime / date, as public captures of
Jira's answer show; `tierdesk doctor` reads them (connectors/jira/doctor.py).

The exact wording of Jira's refusal of a malformed date string is unconfirmed (connectors/jira/
README.md); the status (400) and the `errors.<field>` shape are Jira's usual edit refusal.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sandbox.jira.records import Comment, Issue, _error

if TYPE_CHECKING:
    from sandbox.jira.issues import JiraIssues

DUE_DATE = "duedate"
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}[+-]\d{4}$")


def datetime_fields(site: JiraIssues) -> set[str]:
    """The seed's date time custom fields."""
    seed = getattr(site, "seed", None)
    return {f.id for f in seed.fields if f.type == "datetime"} if seed is not None else set()


def date_fields(site: JiraIssues) -> set[str]:
    """The seed's date picker custom fields."""
    seed = getattr(site, "seed", None)
    return {f.id for f in seed.fields if f.type == "date"} if seed is not None else set()


#: GET /rest/api/2/field `schema` of the system due date and of the date custom field types.
DUE_DATE_SCHEMA = {"type": "date", "system": DUE_DATE}
CUSTOM_SCHEMAS = {
    "datetime": {"type": "datetime",
                 "custom": "com.atlassian.jira.plugin.system.customfieldtypes:datetime"},
    "date": {"type": "date",
             "custom": "com.atlassian.jira.plugin.system.customfieldtypes:datepicker"},
}


def _check_date(value: Any, fid: str = DUE_DATE) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise _error(400, **{fid: "Operation value must be a string"})
    try:
        if not _DATE.match(value):
            raise ValueError(value)
        date.fromisoformat(value)
    except ValueError:
        raise _error(400, **{fid: f"Error parsing date string: {value}"}) from None
    return value


def _check_datetime(fid: str, value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, str):
        raise _error(400, **{fid: "Operation value must be a string"})
    try:
        if not _DATETIME.match(value):
            raise ValueError(value)
        datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%f%z")
    except ValueError:
        raise _error(400, **{fid: f"Error parsing time: {value}"}) from None


def check(site: JiraIssues, fields: Mapping[str, Any], update: Mapping[str, Any]) -> None:
    """Refuse a date value Jira refuses (400, nothing changed)."""
    if DUE_DATE in update:
        raise _error(400, **{DUE_DATE: "set duedate through 'fields'"})
    if DUE_DATE in fields:
        _check_date(fields[DUE_DATE])
    for fid in datetime_fields(site):
        if fid in fields:
            _check_datetime(fid, fields[fid])
    for fid in date_fields(site):
        if fid in fields:
            _check_date(fields[fid], fid)


def edit(
    site: JiraIssues,
    issue: Issue,
    fields: Mapping[str, Any],
    update: Mapping[str, Any],
    actor: str,
) -> tuple[list[dict[str, Any]], Comment | None]:
    """`site._apply` with the date rules above; `duedate` is stored here, after the rest."""
    check(site, fields, update)
    rest = {k: v for k, v in fields.items() if k != DUE_DATE}
    items, comment = site._apply(issue, rest, update, actor)
    if DUE_DATE in fields:
        old, new = issue.custom.get(DUE_DATE), fields[DUE_DATE]
        if old != new:
            if new is None:
                issue.custom.pop(DUE_DATE, None)
            else:
                issue.custom[DUE_DATE] = new
            items.append({
                "field": DUE_DATE, "fieldtype": "jira", "fieldId": DUE_DATE,
                "from": old, "fromString": old, "to": new, "toString": new,
            })
    return items, comment


def due_json(issue: Issue) -> dict[str, Any]:
    """`fields.duedate` of GET issue and webhook payloads: the date or null."""
    return {DUE_DATE: issue.custom.get(DUE_DATE)}
