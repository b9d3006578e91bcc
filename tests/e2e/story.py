"""Ticket kinds of the end-to-end suite, the scripted agent's edits, and what an agent then sees.

Every kind is one decision of deploy/policy.example.yaml on one vendor, created and edited only
through the sandbox's agent control API (so tierdesk learns of it only by webhook):

    triage        "password reset" text, verified customer       -> tier-l1, L1 target
    suggest       "how do I" text                                -> tier-l0, note with the links
    docs          crash at high priority, no documentation        -> tier-l1 + tier-docs-missing +
                                                                    checklist; documented -> L2
    entitlement   default tier, then the agent adds escalate-l3  -> refused: entitlement-exceeded
    route         "invoice" text                                 -> tier-route-billing, billing
    unverified    customer no plan matches                        -> tier-l1 + tier-unverified
    quiet         like triage, later a public agent comment      -> no write for the comment

Jira has no organization field configured (settings have none), so Jira customers are known by
email domain only: Globex (standard, up to L2) is the verified one; the entitlement case asks
Globex for L3. Zendesk reads the plan from the organization (Acme premium, Globex standard,
Initech basic).

`Expect` and `View` are the demo's (sandbox/story.py): one definition of what a ticket must look
like; here an expectation's owner is a target key of OWNERS, resolved per vendor by `owned_by`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sandbox.story import TIER_LABELS, Expect, View
from tests.e2e.harness import JIRA_AGENT, JIRA_BOT, ZENDESK_AGENT, ZENDESK_BOT, SandboxClient
from tiering.models import note_key_in

KINDS = ("triage", "suggest", "docs", "entitlement", "route", "unverified", "quiet")

#: Who takes a ticket in each target (deploy/policy.example.yaml `targets`): `Expect.owned_by`.
OWNERS = {
    "jira": {"L1": "acc-l1", "L2": "acc-l2", "billing": "acc-billing"},
    "zendesk": {"L1": "100", "L2": "200", "billing": "900"},
}

#: (summary, description, priority, customer) per kind; customer per vendor below.
_TEXT = {
    "triage": ("Password reset needed", "I am locked out, please reset my password.", "normal"),
    "suggest": ("How do I export a report to CSV?", "Where can I find the export?", "low"),
    "docs": ("App crash on save", "The desktop app crashes with a stack trace on save.", "high"),
    "entitlement": ("Report totals are wrong", "Monthly totals differ from the export.", "normal"),
    "route": ("Question about my invoice", "The invoice for March looks wrong.", "normal"),
    "unverified": ("Dashboard shows no data", "Since this morning the dashboard is empty.",
                   "normal"),
    "quiet": ("Password reset needed", "Locked out since the update, please help.", "normal"),
}
_CUSTOMER = {
    "jira": {"unverified": "acc-unknown", "default": "acc-globex"},
    # 9101 Acme (premium), 9102 Globex (standard), 9103 Initech (basic), 9104 no organization.
    "zendesk": {"unverified": "9104", "docs": "9101", "entitlement": "9103", "default": "9102"},
}
_JIRA_PRIORITY = {"low": "Low", "normal": "Medium", "high": "High"}


#: Expected state after tierdesk's first decision (act 1) per kind.
FIRST: dict[str, Expect] = {
    "triage": Expect(frozenset({"tier-l1"}), TIER_LABELS - {"tier-l1"} | {"tier-unverified"},
                     owner="L1"),
    "suggest": Expect(frozenset({"tier-l0"}), TIER_LABELS - {"tier-l0"}, owner="",
                      note="https://docs.example.com/faq"),
    "docs": Expect(frozenset({"tier-l1", "tier-docs-missing"}), TIER_LABELS - {"tier-l1"},
                   owner="L1", note="Checklist for L2"),
    "entitlement": Expect(frozenset({"tier-l1"}), TIER_LABELS - {"tier-l1"}, owner="L1"),
    "route": Expect(frozenset({"tier-route-billing"}), TIER_LABELS, owner="billing"),
    "unverified": Expect(frozenset({"tier-l1", "tier-unverified"}), TIER_LABELS - {"tier-l1"},
                         owner="L1", note="Customer not verified"),
    "quiet": Expect(frozenset({"tier-l1"}), TIER_LABELS - {"tier-l1"}, owner="L1"),
}

#: Expected final state after the agent's second act, where it differs from FIRST.
FINAL: dict[str, Expect] = {
    **FIRST,
    "docs": Expect(frozenset({"tier-l2"}),
                   (TIER_LABELS - {"tier-l2"}) | {"tier-docs-missing", "escalate-l2"},
                   owner="L2", note="now in L2"),
    "entitlement": Expect(frozenset({"tier-l1", "tier-entitlement-exceeded"}),
                          (TIER_LABELS - {"tier-l1"}) | {"escalate-l3"}, owner="L1",
                          note="refused"),
}


@dataclass
class Case:
    """One ticket of one kind on one vendor."""

    vendor: str
    kind: str
    ref: str


def create(client: SandboxClient, vendor: str, kind: str, *, tag: str = "") -> Case:
    """Create a ticket of `kind` as the scripted agent; tierdesk hears of it by webhook."""
    summary, description, priority = _TEXT[kind]
    if tag:
        description = f"{description} ({tag})"
    customers = _CUSTOMER[vendor]
    customer = customers.get(kind, customers["default"])
    if vendor == "jira":
        answer = client.agent("jira", JIRA_AGENT, "POST", "/rest/api/2/issue", {"fields": {
            "project": {"key": "SUP"}, "summary": summary, "description": description,
            "issuetype": {"name": "Task"}, "priority": {"name": _JIRA_PRIORITY[priority]},
            "reporter": {"accountId": customer},
        }})
        if answer.status != 201:
            raise AssertionError(f"sandbox refused to create a Jira issue: {answer.body}")
        return Case(vendor, kind, str(answer.body["key"]))
    answer = client.agent("zendesk", ZENDESK_AGENT, "POST", "/api/v2/tickets.json", {"ticket": {
        "subject": summary, "comment": {"body": description},
        "requester_id": int(customer), "priority": priority,
    }})
    if answer.status != 201:
        raise AssertionError(f"sandbox refused to create a Zendesk ticket: {answer.body}")
    return Case(vendor, kind, str(answer.body["ticket"]["id"]))


def document(client: SandboxClient, case: Case, *, step: str = "all") -> None:
    """The agent fills in the L2 documentation of a docs ticket.

    Jira needs two requests (fields, then the attachment upload: two webhooks); `step` picks
    "fields", "attachment" or "all". Zendesk does it in one ticket update with an upload."""
    fields = {"steps_to_reproduce": "Open any project, edit a cell, press Ctrl+S.",
              "product_version": "4.2.1 on Windows 11", "category": "bugfix"}
    if case.vendor == "jira":
        ids = {"steps_to_reproduce": "customfield_10101", "product_version": "customfield_10102",
               "category": "customfield_10103"}
        if step in ("fields", "all"):
            _ok(client.agent("jira", JIRA_AGENT, "PUT", f"/rest/api/2/issue/{case.ref}",
                             {"fields": {ids[k]: v for k, v in fields.items()}}))
        if step in ("attachment", "all"):
            _ok(client.agent("jira", JIRA_AGENT, "POST",
                             f"/rest/api/2/issue/{case.ref}/attachments",
                             {"filename": "crash.log", "content": "Traceback ..."}))
        return
    upload = client.agent("zendesk", ZENDESK_AGENT, "POST",
                          "/api/v2/uploads.json?filename=crash.log", None)
    _ok(upload)
    field_ids = {"steps_to_reproduce": 360001111, "product_version": 360001112,
                 "category": 360001113}
    _ok(client.agent("zendesk", ZENDESK_AGENT, "PUT", f"/api/v2/tickets/{case.ref}.json", {
        "ticket": {
            "custom_fields": [{"id": field_ids[k], "value": v} for k, v in fields.items()],
            "comment": {"body": "Logs attached.", "public": False,
                        "uploads": [upload.body["upload"]["token"]]},
        }}))


def ask_escalation(client: SandboxClient, case: Case, label: str = "escalate-l3") -> None:
    """The agent asks for a higher tier by adding an escalate-lN label / tag."""
    if case.vendor == "jira":
        _ok(client.agent("jira", JIRA_AGENT, "PUT", f"/rest/api/2/issue/{case.ref}",
                         {"update": {"labels": [{"add": label}]}}))
        return
    tags = client.agent("zendesk", ZENDESK_AGENT, "GET",
                        f"/api/v2/tickets/{case.ref}.json").body["ticket"]["tags"]
    _ok(client.agent("zendesk", ZENDESK_AGENT, "PUT", f"/api/v2/tickets/{case.ref}.json",
                     {"ticket": {"tags": [*tags, label]}}))


def comment(client: SandboxClient, case: Case, text: str) -> None:
    """The agent adds a public comment: an event tierdesk evaluates and must leave alone."""
    if case.vendor == "jira":
        _ok(client.agent("jira", JIRA_AGENT, "POST", f"/rest/api/2/issue/{case.ref}/comment",
                         {"body": text}))
        return
    _ok(client.agent("zendesk", ZENDESK_AGENT, "PUT", f"/api/v2/tickets/{case.ref}.json",
                     {"ticket": {"comment": {"body": text, "public": True}}}))


def second_act(client: SandboxClient, case: Case) -> None:
    """The agent's follow-up that changes the decision (docs filled in, L3 asked for)."""
    if case.kind == "docs":
        document(client, case)
    elif case.kind == "entitlement":
        ask_escalation(client, case)


def _ok(answer: Any) -> None:
    if answer.status >= 300:
        raise AssertionError(f"sandbox agent request failed: {answer.status} {answer.body}")


def view(state: dict[str, Any], case: Case) -> View:
    """What an agent sees on `case` in a `/_sandbox/state` snapshot."""
    if case.vendor == "jira":
        issue = state["jira"]["issues"][case.ref]
        notes = [c["body"] for c in issue["comments"]
                 if c["author"] == JIRA_BOT[1] and note_key_in(c["body"])]
        return View(list(issue["labels"]), issue["assignee"], notes)
    t = state["zendesk"]["tickets"][case.ref]
    notes = [c["body"] for c in t["comments"]
             if str(c["author_id"]) == str(ZENDESK_BOT[1]) and note_key_in(c["body"])]
    group = t["group_id"]
    return View(list(t["tags"]), None if group is None else str(group), notes)


def bot_comment_bodies(state: dict[str, Any], case: Case) -> list[str]:
    """Every comment tierdesk's bot wrote on the ticket (notes or not)."""
    if case.vendor == "jira":
        return [c["body"] for c in state["jira"]["issues"][case.ref]["comments"]
                if c["author"] == JIRA_BOT[1]]
    return [c["body"] for c in state["zendesk"]["tickets"][case.ref]["comments"]
            if str(c["author_id"]) == str(ZENDESK_BOT[1])]


def duplicate_notes(state: dict[str, Any], case: Case) -> list[str]:
    """Note keys tierdesk posted more than once on the ticket (must be empty)."""
    keys = [note_key_in(b) for b in bot_comment_bodies(state, case)]
    return sorted({k for k in keys if k is not None and keys.count(k) > 1})
