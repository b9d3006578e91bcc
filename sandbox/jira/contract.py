"""Jira request bodies checked against Atlassian's published OpenAPI description.

The schemas come from `../shared/vendor/jira/platform-openapi-v3.json` (Jira Cloud platform REST
API, public). The sandbox package cannot read that folder at run time, so the request schemas of
the operations tierdesk sends bodies to, and every component they reference, are kept in
`jira_request_schemas.json` beside this module; `tests/contract/test_jira_schemas.py` re-extracts
them from the full description and fails if the kept copy differs.

Validation is done by `openapi-schema-validator` (OpenAPI 3.0 dialect: `nullable`, `readOnly`
refused in requests), not by hand: `check(operation, body)` returns the validator's messages.

Operations (v2 paths as tierdesk sends them; the description documents v3, whose bodies are the
same except that v3 comment bodies are Atlassian Document Format, which `Comment.body` leaves
untyped):

    edit-issue      PUT  /rest/api/2/issue/{key}           IssueUpdateDetails (editIssue), and
                                                           each `update.comment[].add` as Comment
                                                           (addComment), `fields.assignee` as
                                                           User (assignIssue)
    add-comment     POST /rest/api/2/issue/{key}/comment   Comment (addComment)
    assign-issue    PUT  /rest/api/2/issue/{key}/assignee  User (assignIssue)
    create-issue    POST /rest/api/2/issue                 IssueUpdateDetails (createIssue)
    search          POST /rest/api/2/search                SearchRequestBean

Not in the description, so not checked by schema (what is checked instead is written in
connectors/jira/README.md): admin webhooks `/rest/webhooks/1.0/webhook` (the description holds
only the Connect-app `/rest/api/3/webhook`), and `/rest/api/{2,3}/search/jql` and
`search/approximate-count`, added after this 2022 snapshot, and Jira Service Management's
`/rest/servicedeskapi/request/{key}/comment` (a separate API description).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

#: operation name -> (OpenAPI path, method) in platform-openapi-v3.json.
OPERATIONS: dict[str, tuple[str, str]] = {
    "edit-issue": ("/rest/api/3/issue/{issueIdOrKey}", "put"),
    "add-comment": ("/rest/api/3/issue/{issueIdOrKey}/comment", "post"),
    "assign-issue": ("/rest/api/3/issue/{issueIdOrKey}/assignee", "put"),
    "create-issue": ("/rest/api/3/issue", "post"),
    "search": ("/rest/api/3/search", "post"),
}

SCHEMA_FILE = "jira_request_schemas.json"

#: Request paths (v2 or v3) -> operation; None: a body the description has no schema for.
_ROUTES: tuple[tuple[str, re.Pattern[str], str | None], ...] = (
    ("PUT", re.compile(r"^/rest/api/[23]/issue/[^/]+$"), "edit-issue"),
    ("POST", re.compile(r"^/rest/api/[23]/issue/[^/]+/comment$"), "add-comment"),
    ("PUT", re.compile(r"^/rest/api/[23]/issue/[^/]+/assignee$"), "assign-issue"),
    ("POST", re.compile(r"^/rest/api/[23]/issue$"), "create-issue"),
    ("POST", re.compile(r"^/rest/api/[23]/search$"), "search"),
    ("POST", re.compile(r"^/rest/api/[23]/search/(jql|approximate-count)$"), None),
    ("POST", re.compile(r"^/rest/webhooks/1\.0/webhook$"), None),
    ("PUT", re.compile(r"^/rest/webhooks/1\.0/webhook/\d+$"), None),
    ("POST", re.compile(r"^/rest/jira-webhook/1\.0/webhooks$"), None),
    ("PUT", re.compile(r"^/rest/jira-webhook/1\.0/webhooks/\d+$"), None),
    # Jira Service Management's own API: not in the platform description.
    ("POST", re.compile(r"^/rest/servicedeskapi/request/[^/]+/comment$"), None),
)


class Unmapped(LookupError):
    """A request with a body whose operation is neither checked nor listed as unchecked."""


def operation_for(method: str, path: str) -> str | None:
    """The operation whose schema a `method path` body must match; None when the description
    has none (listed in _ROUTES); Unmapped for a request nobody has looked at yet."""
    for m, pattern, operation in _ROUTES:
        if m == method.upper() and pattern.match(path):
            return operation
    raise Unmapped(f"{method} {path}: no OpenAPI operation mapped (sandbox/jira/contract.py)")


def _refs(node: Any) -> Iterable[str]:
    if isinstance(node, Mapping):
        ref = node.get("$ref")
        if isinstance(ref, str):
            yield ref
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def extract(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The kept subset of `spec`: each operation's request schema and the components it uses."""
    operations: dict[str, Any] = {}
    wanted: list[str] = []
    for name, (path, method) in OPERATIONS.items():
        body = spec["paths"][path][method]["requestBody"]["content"]["application/json"]
        operations[name] = {"path": path, "method": method, "schema": body["schema"]}
        wanted.extend(_refs(body["schema"]))
    schemas: dict[str, Any] = {}
    all_schemas = spec["components"]["schemas"]
    while wanted:
        ref = wanted.pop()
        name = ref.rsplit("/", 1)[1]
        if name in schemas:
            continue
        schemas[name] = all_schemas[name]
        wanted.extend(_refs(schemas[name]))
    return {
        "source": "platform-openapi-v3.json (Jira Cloud platform REST API, "
        f"OpenAPI {spec.get('openapi')})",
        "operations": operations,
        "components": {"schemas": dict(sorted(schemas.items()))},
    }


@cache
def _kept() -> dict[str, Any]:
    text = Path(__file__).with_name(SCHEMA_FILE).read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


@cache
def _validator(schema_ref: str) -> Any:
    from openapi_schema_validator import OAS30WriteValidator
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT4

    document = _kept()
    uri = "urn:tierdesk:jira-openapi"
    registry: Registry[Any] = Registry().with_resource(
        uri, Resource.from_contents(document, default_specification=DRAFT4)
    )
    return OAS30WriteValidator({"$ref": f"{uri}{schema_ref}"}, registry=registry)


def _messages(schema_ref: str, value: Any, where: str) -> list[str]:
    errors = sorted(_validator(schema_ref).iter_errors(value), key=lambda e: list(e.path))
    out = []
    for e in errors:
        parts = [*(where.split(".") if where else []), *(str(p) for p in e.path)]
        path = ".".join(parts)
        out.append(f"{path or '(body)'}: {e.message}")
    return out


def check(operation: str, body: Any) -> list[str]:
    """The schema violations of `body` as a request of `operation` (empty: valid)."""
    ops = _kept()["operations"]
    if operation not in ops:
        raise KeyError(f"no kept schema for Jira operation {operation!r}")
    ref = f"#/operations/{operation}/schema"
    problems = _messages(ref, body, "")
    if operation == "edit-issue" and isinstance(body, Mapping):
        # The edit's loose parts are checked with the schemas of the operations that define
        # them: a comment added in an edit is the addComment body; an assignee set in `fields`
        # is the assignIssue body.
        update = body.get("update")
        if isinstance(update, Mapping) and isinstance(update.get("comment"), list):
            for i, op in enumerate(update["comment"]):
                if isinstance(op, Mapping) and "add" in op:
                    problems += _messages(
                        "#/operations/add-comment/schema", op["add"], f"update.comment.{i}.add"
                    )
        fields = body.get("fields")
        if isinstance(fields, Mapping) and fields.get("assignee") is not None:
            problems += _messages(
                "#/operations/assign-issue/schema", _assignee(fields["assignee"]),
                "fields.assignee",
            )
    if operation == "assign-issue" and isinstance(body, Mapping):
        problems = _messages(ref, _assignee(body), "")
    return problems


def _assignee(value: Any) -> Any:
    """assignIssue documents `accountId` (or `name`) null as "set to unassigned" in its
    description while the User schema types it as a plain string: the documented null is taken."""
    if isinstance(value, Mapping):
        return {k: v for k, v in value.items() if not (k in ("accountId", "name") and v is None)}
    return value


def main() -> None:
    """`python -m sandbox.jira.contract SPEC.json`: print the kept subset of SPEC."""
    import sys

    with open(sys.argv[1], encoding="utf-8") as f:
        spec = json.load(f)
    print(json.dumps(extract(spec), indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
