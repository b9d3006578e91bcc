"""The demo's story: the tickets it plays on each vendor and what each must look like after.

`Expect` (what the example policy says a ticket must look like once tierdesk has acted) and
`View` (what an agent sees on it) are shared with the end-to-end suite (tests/e2e/story.py).
`jira_story` and `zendesk_story` create the tickets through the sandbox's scripted agents and
return them with their second act; `jira_view` and `zendesk_view` read a ticket out of the
sandbox's `/_sandbox/state`.

Jira note: the example policy recognises Acme Corp and Initech by organization. tierdesk reads a
Jira organization only from a configured organization field; where none is configured the
Jira customers are recognised by email domain instead (Globex: standard) or not at all
(unverified). The story is built so that every check holds either way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import click

from tiering.models import note_key_in

TIER_LABELS = frozenset(f"tier-l{n}" for n in range(5))
#: tierdesk's bot on each vendor (email, Jira accountId / Zendesk user id), as seeded.
JIRA_BOT = ("bot@tierdesk.example", "acc-bot")
ZENDESK_BOT = ("bot@tierdesk.example", 9001)


@dataclass
class View:
    """What an agent sees on one ticket."""

    labels: list[str]
    #: Jira accountId or Zendesk group id the ticket is handed to (None: nobody).
    owner: str | None
    #: tierdesk's checklist notes, oldest first.
    notes: list[str] = field(default_factory=list)
    #: The owner as an agent reads it (a name, a group, components); "" when not known.
    owner_name: str = ""

    @property
    def note(self) -> str | None:
        """The newest checklist note, if any."""
        return self.notes[-1] if self.notes else None


@dataclass(frozen=True)
class Expect:
    """What the example policy says the ticket must look like once tierdesk has acted."""

    has: frozenset[str] = frozenset()
    lacks: frozenset[str] = frozenset()
    #: Jira accountId or Zendesk group id the ticket must be handed to ("": nobody; None: not
    #: checked). tests/e2e writes a target key (L1, billing) here and resolves it by `owned_by`.
    owner: str | None = None
    #: Text the newest checklist note must contain (None: no note expected to be checked).
    note: str | None = None

    def owned_by(self, owners: Mapping[str, str]) -> Expect:
        """This expectation with its owner, a key of `owners`, replaced by that owner's id."""
        return replace(self, owner=owners[self.owner]) if self.owner else self

    def problems(self, view: View) -> list[str]:
        """One line per difference between `view` and this expectation ([] when it holds)."""
        found = set(view.labels)
        problems = [f"label {x} missing" for x in sorted(self.has - found)]
        problems += [f"label {x} present" for x in sorted(self.lacks & found)]
        if self.owner is not None and view.owner != (self.owner or None):
            problems.append(
                f"handed to {view.owner_name or view.owner or 'nobody'},"
                f" expected {self.owner or 'nobody'}"
            )
        if self.note is not None and (view.note is None or self.note not in view.note):
            problems.append(f"checklist note does not say {self.note!r}")
        return problems


@dataclass
class Case:
    """One ticket of the story on one vendor."""

    vendor: str
    title: str
    ref: str = ""
    expect: Expect = field(default_factory=Expect)
    problems: list[str] = field(default_factory=list)

    def check(self, view: View) -> list[str]:
        return self.expect.problems(view)


def jira_view(state: dict[str, Any], key: str, users: dict[str, str]) -> View:
    """What an agent sees on Jira issue `key` in a `/_sandbox/state` snapshot."""
    issue = state["jira"]["issues"][key]
    notes = [
        c["body"]
        for c in issue["comments"]
        if c["author"] == JIRA_BOT[1] and note_key_in(c["body"])
    ]
    owner = issue["assignee"]
    name = users.get(owner, owner or "") if owner else ""
    if issue["components"]:
        name = (name + " " if name else "") + "component " + ", ".join(issue["components"])
    return View(issue["labels"], owner, notes, name)


def zendesk_view(state: dict[str, Any], ticket: str, groups: dict[int, str]) -> View:
    """What an agent sees on Zendesk ticket `ticket` in a `/_sandbox/state` snapshot."""
    t = state["zendesk"]["tickets"][ticket]
    notes = [
        c["body"]
        for c in t["comments"]
        if c["author_id"] == ZENDESK_BOT[1] and note_key_in(c["body"])
    ]
    group = t["group_id"]
    name = groups.get(group, str(group)) if group is not None else ""
    return View(t["tags"], None if group is None else str(group), notes, name)


L1 = Expect(has=frozenset({"tier-l1"}), lacks=TIER_LABELS - {"tier-l1"})

#: `--jira-site`: the sandbox's Jira deployment and version.
JIRA_SITES = {
    "cloud": ("Cloud", "9.12.0"),
    "dc9": ("Server", "9.12.0"),
    "dc10": ("Server", "10.3.6"),
}


def jira_site_seed(site: str) -> dict[str, Any]:
    """The default sandbox seed as a Cloud, Data Center 9 or Data Center 10 Jira site."""
    import json

    from sandbox.state import default_seed_text  # the sandbox itself only when it is run

    seed: dict[str, Any] = json.loads(default_seed_text())
    deployment, version = JIRA_SITES[site]
    seed["jira"]["deployment"] = deployment
    seed["jira"]["version"] = version
    if deployment == "Server":
        # Data Center refers to users by name: name them as the policy's assignees are spelled.
        old_names = {u["name"]: u["accountId"] for u in seed["jira"]["users"]}
        for user in seed["jira"]["users"]:
            user["name"] = user["accountId"]
        seed["jira"]["permissions"] = {
            old_names.get(who, who): grants for who, grants in seed["jira"]["permissions"].items()
        }
    return seed


def jira_story(
    agent: Callable[..., Any], *, datacenter: bool = False
) -> tuple[list[Case], Callable[[list[Case]], None]]:
    """Create the Jira tickets; return them and the second act (documentation, L3 request)."""

    def create(
        summary: str,
        description: str,
        reporter: str,
        org: str | None = None,
        priority: str = "Medium",
    ) -> str:
        fields: dict[str, Any] = {
            "project": {"key": "SUP"},
            "summary": summary,
            "description": description,
            "issuetype": {"name": "Task"},
            "priority": {"name": priority},
            # Data Center names users by name (the demo's DC seed names them by accountId).
            "reporter": {"name" if datacenter else "accountId": reporter},
        }
        if org:
            fields["customfield_10002"] = [{"id": org, "name": org}]
        answer = agent("jira", "acc-agent", "POST", "/rest/api/2/issue", {"fields": fields})
        if answer.status != 201:
            raise click.ClickException(f"sandbox refused to create a Jira issue: {answer.body}")
        return str(answer.body["key"])

    cases = [
        Case(
            "jira",
            "How-to question (Globex)",
            create(
                "How do I export a report to CSV?", "Where can I find the export?", "acc-globex"
            ),
            Expect(has=frozenset({"tier-l0"}), lacks=TIER_LABELS - {"tier-l0"}, note="Self-help"),
        ),
        Case(
            "jira",
            "Password reset (Initech)",
            create(
                "Password reset needed",
                "I am locked out, please reset my password.",
                "acc-initech",
                "Initech",
            ),
            Expect(L1.has, L1.lacks, owner="acc-l1"),
        ),
        Case(
            "jira",
            "Crash, asked up to L2 without documentation (Acme Corp)",
            create(
                "App crash on save",
                "The desktop app crashes with a stack trace on save.",
                "acc-globex",
                "Acme Corp",
                "High",
            ),
            Expect(
                has=frozenset({"tier-l1", "tier-docs-missing"}),
                lacks=TIER_LABELS - {"tier-l1"},
                owner="acc-l1",
                note="Checklist for L2",
            ),
        ),
        Case(
            "jira",
            "L3 request from a basic-plan customer (Initech)",
            create(
                "Report totals are wrong",
                "Monthly totals differ from the export.",
                "acc-initech",
                "Initech",
            ),
            L1,
        ),
        Case(
            "jira",
            "Invoice question (Globex)",
            create("Question about my invoice", "The invoice for March looks wrong.", "acc-globex"),
            Expect(has=frozenset({"tier-route-billing"}), lacks=TIER_LABELS, owner="acc-billing"),
        ),
        Case(
            "jira",
            "Unknown customer",
            create(
                "Dashboard shows no data",
                "Since this morning the dashboard is empty.",
                "acc-unknown",
            ),
            Expect(
                has=frozenset({"tier-l1", "tier-unverified"}),
                lacks=TIER_LABELS - {"tier-l1"},
                owner="acc-l1",
            ),
        ),
    ]

    def second_act(cases: list[Case]) -> None:
        crash, basic = cases[2], cases[3]
        agent(
            "jira",
            "acc-agent",
            "PUT",
            f"/rest/api/2/issue/{crash.ref}",
            {
                "fields": {
                    "customfield_10101": "Open any project, edit a cell, press Ctrl+S.",
                    "customfield_10102": "4.2.1 on Windows 11",
                    "customfield_10103": "bugfix",
                }
            },
        )
        agent(
            "jira",
            "acc-agent",
            "POST",
            f"/rest/api/2/issue/{crash.ref}/attachments",
            {"filename": "crash.log", "content": "Traceback ..."},
        )
        crash.title = "Crash, documented by the agent: moves to L2 by itself"
        crash.expect = Expect(
            has=frozenset({"tier-l2"}),
            lacks=(TIER_LABELS - {"tier-l2"}) | {"tier-docs-missing", "escalate-l2"},
            owner="acc-l2",
            note="now in L2",
        )
        agent(
            "jira",
            "acc-agent",
            "PUT",
            f"/rest/api/2/issue/{basic.ref}",
            {"update": {"labels": [{"add": "escalate-l3"}]}},
        )
        basic.expect = Expect(
            has=frozenset({"tier-l1", "tier-entitlement-exceeded"}),
            lacks=(TIER_LABELS - {"tier-l1"}) | {"escalate-l3"},
            note="refused",
        )

    return cases, second_act


def zendesk_story(agent: Callable[..., Any]) -> tuple[list[Case], Callable[[list[Case]], None]]:
    """Create the Zendesk tickets; return them and the second act."""

    def create(subject: str, body: str, requester: int, priority: str = "normal") -> str:
        answer = agent(
            "zendesk",
            "agent@tierdesk.example",
            "POST",
            "/api/v2/tickets.json",
            {
                "ticket": {
                    "subject": subject,
                    "comment": {"body": body},
                    "requester_id": requester,
                    "priority": priority,
                }
            },
        )
        if answer.status != 201:
            raise click.ClickException(f"sandbox refused to create a Zendesk ticket: {answer.body}")
        return str(answer.body["ticket"]["id"])

    cases = [
        Case(
            "zendesk",
            "How-to question (Globex, standard)",
            create("How do I export a report to CSV?", "Where can I find the export?", 9102),
            Expect(has=frozenset({"tier-l0"}), lacks=TIER_LABELS - {"tier-l0"}, note="Self-help"),
        ),
        Case(
            "zendesk",
            "Password reset (Initech, basic)",
            create("Password reset needed", "I am locked out, please reset my password.", 9103),
            Expect(L1.has, L1.lacks, owner="100"),
        ),
        Case(
            "zendesk",
            "Crash, asked up to L2 without documentation (Acme Corp, premium)",
            create(
                "App crash on save",
                "The desktop app crashes with a stack trace on save.",
                9101,
                "high",
            ),
            Expect(
                has=frozenset({"tier-l1", "tier-docs-missing"}),
                lacks=TIER_LABELS - {"tier-l1"},
                owner="100",
                note="Checklist for L2",
            ),
        ),
        Case(
            "zendesk",
            "L3 request from a basic-plan customer (Initech)",
            create("Report totals are wrong", "Monthly totals differ from the export.", 9103),
            L1,
        ),
        Case(
            "zendesk",
            "Invoice question (Globex)",
            create("Question about my invoice", "The invoice for March looks wrong.", 9102),
            Expect(has=frozenset({"tier-route-billing"}), lacks=TIER_LABELS, owner="900"),
        ),
        Case(
            "zendesk",
            "Unknown customer",
            create("Dashboard shows no data", "Since this morning the dashboard is empty.", 9104),
            Expect(
                has=frozenset({"tier-l1", "tier-unverified"}),
                lacks=TIER_LABELS - {"tier-l1"},
                owner="100",
            ),
        ),
    ]

    def second_act(cases: list[Case]) -> None:
        crash, basic = cases[2], cases[3]
        upload = agent(
            "zendesk",
            "agent@tierdesk.example",
            "POST",
            "/api/v2/uploads.json?filename=crash.log",
            None,
        )
        token = upload.body["upload"]["token"]
        agent(
            "zendesk",
            "agent@tierdesk.example",
            "PUT",
            f"/api/v2/tickets/{crash.ref}.json",
            {
                "ticket": {
                    "custom_fields": [
                        {"id": 360001111, "value": "Open any project, edit a cell, press Ctrl+S."},
                        {"id": 360001112, "value": "4.2.1 on Windows 11"},
                        {"id": 360001113, "value": "bugfix"},
                    ],
                    "comment": {"body": "Logs attached.", "public": False, "uploads": [token]},
                }
            },
        )
        crash.title = "Crash, documented by the agent: moves to L2 by itself"
        crash.expect = Expect(
            has=frozenset({"tier-l2"}),
            lacks=(TIER_LABELS - {"tier-l2"}) | {"tier-docs-missing", "escalate-l2"},
            owner="200",
            note="now in L2",
        )
        tags = agent(
            "zendesk", "agent@tierdesk.example", "GET", f"/api/v2/tickets/{basic.ref}.json"
        ).body["ticket"]["tags"]
        agent(
            "zendesk",
            "agent@tierdesk.example",
            "PUT",
            f"/api/v2/tickets/{basic.ref}.json",
            {"ticket": {"tags": [*tags, "escalate-l3"]}},
        )
        basic.expect = Expect(
            has=frozenset({"tier-l1", "tier-entitlement-exceeded"}),
            lacks=(TIER_LABELS - {"tier-l1"}) | {"escalate-l3"},
            note="refused",
        )

    return cases, second_act
