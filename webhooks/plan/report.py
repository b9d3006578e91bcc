"""The HTML plan report: one self-contained page drawn from a `tierdesk plan` JSON document.

`render_html(document)` checks the document (format tierdesk-plan/1, webhooks/plan/schema.py)
and returns one HTML file that needs nothing else: inline CSS, charts as inline SVG drawn in
Python (webhooks/plan/charts.py), no script, font, image or request. Drawing the charts in Python
instead of a script in the page keeps the file readable where scripts are blocked (mail
attachments, CI artifact viewers) and lets the page carry a Content-Security-Policy that forbids
every script and every request, so a ticket text that slipped past escaping still could not run.

Ticket text is hostile input: every value reaches the page through webhooks/plan/markup.py, which
escapes whatever is not markup built here, in text and attributes alike.

The page, top to bottom: the policies compared and the source; the summary (changes by kind,
writes and time per vendor at its rate); the tier distribution before and after, with the same
figures as a table; the tier changes; every changed ticket (its tier or route named as the
chart names it); the tickets that could not be planned. Chart and table elements carry their
numbers in data-* attributes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tiering.plan import NO_TIER, outcome_key
from webhooks.plan.charts import (
    AFTER_COLOUR,
    BEFORE_COLOUR,
    format_count,
    tier_chart,
    tier_order,
    transition_chart,
)
from webhooks.plan.markup import Html, esc, join, tag
from webhooks.plan.schema import PlanDocument, PolicyRef, Source, read_document

#: The kinds of change (tiering/plan.py's CHANGE_KINDS), as the summary names them.
CHANGE_HEADINGS: tuple[tuple[str, str], ...] = (
    ("escalate", "Escalate"),
    ("de-escalate", "De-escalate"),
    ("refused", "Refused (the plan does not cover the tier)"),
    ("waiting-for-documentation", "Wait for documentation"),
    ("route", "Change route or target"),
    ("labels-or-note", "Labels or note only"),
)


def format_duration(seconds: float) -> str:
    """A duration as the page shows it: 0 s, < 0.1 s, 12.5 s, 3 min 20 s, 2 h 5 min."""
    if 0 < seconds < 0.05:
        return "< 0.1 s"
    if seconds < 60:
        return f"{seconds:.1f} s".replace(".0 s", " s")
    hours, rest = divmod(round(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min {secs} s"


def _num(value: float) -> str:
    """A number for a data-* attribute: integers without a fraction, others as Python prints."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _section(key: str, heading: str, *content: Html) -> Html:
    return tag("section", {"id": key, "aria-labelledby": f"{key}-heading"},
               tag("h2", {"id": f"{key}-heading"}, heading), *content)


def _table(key: str, caption: str | None, columns: tuple[str, ...], rows: list[Html],
           cls: str | None = None) -> Html:
    return tag("table", {"id": key, "class": cls},
               None if caption is None else tag("caption", None, caption),
               tag("thead", None, tag("tr", None, *(tag("th", {"scope": "col"}, c)
                                                    for c in columns))),
               tag("tbody", None, *rows))


def _none(text: str = "—") -> Html:
    return tag("span", {"class": "none"}, text)


def _source_text(source: Source) -> str:
    names = []
    for kind in dict.fromkeys(source.kinds):
        if kind == "inbox":
            window = f" over the last {source.since}" if source.since else ""
            names.append(f"the inbox's record of the tickets tierdesk has seen{window}")
        else:
            names.append("the live backlog (the vendors' searches, read-only)")
    return " and ".join(names) or "no source"


def _header(doc: PlanDocument) -> Html:
    def policy(ref: PolicyRef) -> Html:
        return join([tag("code", {"class": "path"}, ref.path), " ",
                     tag("span", {"class": "digest"}, "digest ", tag("code", None, ref.digest))])

    source = doc.source
    read = join([tag("span", {"data-count": source.tickets}, format_count(source.tickets)),
                 " from ", _source_text(source),
                 "" if not source.skipped else
                 f"; {format_count(source.skipped)} could not be planned (listed at the end)"])
    rows = [
        ("Proposed policy", policy(doc.policies.proposed), "policy-proposed"),
        ("Compared with (current)", policy(doc.policies.current), "policy-current"),
        ("Tickets read", read, "source"),
        ("Generated", tag("time", {"datetime": doc.generated_at}, doc.generated_at),
         "generated"),
    ]
    return tag("header", None,
               tag("h1", None, "Policy plan: what the proposed policy would change"),
               tag("dl", {"class": "facts"}, *(
                   join([tag("dt", None, name), tag("dd", {"id": key}, value)])
                   for name, value, key in rows)))


def _summary(doc: PlanDocument) -> Html:
    summary = doc.summary
    headings = dict(CHANGE_HEADINGS)
    kinds = [k for k, _ in CHANGE_HEADINGS if k in summary.changes]
    kinds += [k for k in summary.changes if k not in headings]
    change_rows = [
        tag("tr", {"data-change-kind": kind, "data-count": summary.changes[kind]},
            tag("th", {"scope": "row"}, headings.get(kind, kind)),
            tag("td", {"class": "num"}, format_count(summary.changes[kind])))
        for kind in kinds]
    vendors = [v for v in dict.fromkeys([*summary.writes, *summary.enforce_seconds])
               if v != "total"] + ["total"]
    cost_rows = []
    for vendor in vendors:
        writes, seconds = summary.writes.get(vendor), summary.enforce_seconds.get(vendor)
        rate = summary.rates.get(vendor)
        rate_cell = (Html("") if vendor == "total" else
                     _none("no rate known: time not estimated") if rate is None else
                     join([f"{rate.writes_per_minute:g} writes/min ",
                           tag("span", {"class": "rate-source"}, f"({rate.source})")]))
        cost_rows.append(tag(
            "tr", {"data-vendor": vendor, "data-writes": writes,
                   "data-seconds": None if seconds is None else _num(seconds),
                   "class": "total" if vendor == "total" else None},
            tag("th", {"scope": "row"}, "All vendors" if vendor == "total" else vendor),
            tag("td", {"class": "num writes"}, _none() if writes is None
                else format_count(writes)),
            tag("td", {"class": "num seconds", "title": None if seconds is None
                       else f"{_num(seconds)} s"},
                _none() if seconds is None else format_duration(seconds)),
            tag("td", {"class": "rate"}, rate_cell)))
    return _section(
        "summary", "Summary",
        tag("p", {"class": "headline", "data-changed": summary.changed,
                  "data-tickets": summary.tickets},
            tag("strong", None, format_count(summary.changed)), " of ",
            format_count(summary.tickets), " ticket(s) would change."),
        tag("div", {"class": "cards"},
            _table("changes", "Changes by kind", ("Change", "Tickets"), change_rows),
            _table("costs", "Cost of enforcing the change",
                   ("Vendor", "Writes", "Time at the rate limit", "Write rate"), cost_rows)))


def _tier_table(before: Mapping[str, int], after: Mapping[str, int]) -> Html:
    rows = []
    for tier in tier_order(before, after):
        b, a = before.get(tier, 0), after.get(tier, 0)
        rows.append(tag("tr", {"data-tier": tier},
                        tag("th", {"scope": "row"}, tier),
                        tag("td", {"class": "num"}, format_count(b)),
                        tag("td", {"class": "num"}, format_count(a)),
                        tag("td", {"class": "num"}, f"{a - b:+,}" if a != b else "0")))
    return _table("tier-table", "The same figures as a table",
                  ("Tier", "Before", "After", "Change"), rows, cls="compact")


def _charts(doc: PlanDocument) -> Html:
    summary = doc.summary
    legend = tag("p", {"class": "legend"},
                 tag("span", {"class": "swatch", "style": f"background:{BEFORE_COLOUR}"}),
                 " Before (current policy) ",
                 tag("span", {"class": "swatch", "style": f"background:{AFTER_COLOUR}"}),
                 " After (proposed policy)")
    return join([
        _section("tiers", "Tier distribution before and after", legend,
                 tag("div", {"class": "chart-box"},
                     tier_chart(summary.tiers_before, summary.tiers_after)),
                 _tier_table(summary.tiers_before, summary.tiers_after)),
        _section("transitions", "Tier changes (before → after)",
                 tag("div", {"class": "chart-box"}, transition_chart(summary.transitions))),
    ])


def _pair(before: str | None, after: str | None, *, none: str) -> Html:
    def one(value: str | None) -> Html:
        return _none(none) if value is None else esc(value)

    if before == after:
        return one(before)
    return join([one(before), tag("span", {"class": "arrow"}, " → "), one(after)])


def _outcome(tier_before: str | None, route_before: str | None, tier_after: str | None,
             route_after: str | None) -> Html:
    """A ticket's tier or route before → after, named as the tier chart names them (`L2`,
    `route:billing`; `(none)` in grey)."""
    def key(tier: str | None, route: str | None) -> str | None:
        named = outcome_key(tier, route)
        return None if named == NO_TIER else named

    return _pair(key(tier_before, route_before), key(tier_after, route_after), none=NO_TIER)


def _items(values: list[str], *, cls: str, sign: str = "") -> Html:
    if not values:
        return _none()
    return tag("ul", {"class": cls}, *(tag("li", None, f"{sign}{v}") for v in values))


def _reasons(now: list[str], before: list[str]) -> Html:
    if not before:
        return _items(now, cls="reasons-after")
    return join([tag("div", {"class": "reason-side"}, "Proposed policy:"),
                 _items(now, cls="reasons-after"),
                 tag("div", {"class": "reason-side"}, "Current policy (no longer):"),
                 _items(before, cls="reasons-before")])


def _tickets(doc: PlanDocument) -> Html:
    if not doc.tickets:
        return _section("tickets", "Tickets that would change",
                        tag("p", {"class": "empty"}, "No ticket would change."))
    with_writes = any(t.writes is not None for t in doc.tickets)
    columns = ("Vendor", "Ticket", "Change", "Tier or route (before → after)", "Labels added",
               "Labels removed", "Target (before → after)", "Note to be posted", "Reasons",
               *(("Writes",) if with_writes else ()))
    rows = [
        tag("tr", {"data-vendor": t.vendor, "data-ticket": t.ticket, "data-change": t.change},
            tag("td", {"class": "vendor"}, t.vendor),
            tag("td", {"class": "ticket"}, tag("code", None, t.ticket)),
            tag("td", {"class": "change"}, tag("span", {"class": "badge",
                                                        "data-kind": t.change}, t.change)),
            tag("td", {"class": "tier", "data-before": t.tier_before,
                       "data-after": t.tier_after, "data-route-before": t.route_before,
                       "data-route-after": t.route_after},
                _outcome(t.tier_before, t.route_before, t.tier_after, t.route_after)),
            tag("td", {"class": "labels-added"}, _items(t.labels_added, cls="added", sign="+")),
            tag("td", {"class": "labels-removed"},
                _items(t.labels_removed, cls="removed", sign="−")),
            tag("td", {"class": "target"}, _pair(t.target_before, t.target_after, none="—")),
            tag("td", {"class": "note"}, _none() if t.note is None
                else tag("div", {"class": "note-text"}, t.note)),
            tag("td", {"class": "reasons"}, _reasons(t.reasons, t.reasons_before)),
            None if not with_writes else tag(
                "td", {"class": "num writes", "data-writes": t.writes},
                _none() if t.writes is None else format_count(t.writes)))
        for t in doc.tickets]
    table = _table("ticket-table", None, columns, rows)
    return _section("tickets", "Tickets that would change",
                    tag("div", {"class": "table-box"}, table))


def _skipped(doc: PlanDocument) -> Html:
    if not doc.skipped:
        return Html("")
    rows = [tag("tr", {"data-vendor": s.vendor, "data-ticket": s.ticket},
                tag("td", {"class": "vendor"}, s.vendor),
                tag("td", {"class": "ticket"}, tag("code", None, s.ticket)),
                tag("td", {"class": "reason"}, s.reason)) for s in doc.skipped]
    return _section("skipped", "Tickets that could not be planned",
                    tag("p", None, "These tickets are not counted above: fix what the reason "
                                   "says and run the plan again."),
                    _table("skipped-table", None, ("Vendor", "Ticket", "Reason"), rows))


_CSS = """
:root { color: #1a1a1a; background: #fff; font: 15px/1.45 system-ui, "DejaVu Sans", sans-serif; }
body { max-width: 1440px; margin: 0 auto; padding: 24px; }
h1 { font-size: 1.6rem; margin: 0 0 12px; } h2 { font-size: 1.25rem; margin: 32px 0 8px; }
code { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: .92em; }
.facts { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; margin: 0; }
.facts dt { font-weight: 600; } .facts dd { margin: 0; overflow-wrap: anywhere; }
.digest, .rate-source { color: #4b5563; }
.headline { font-size: 1.15rem; } .headline strong { font-size: 1.5rem; }
.cards { display: flex; flex-wrap: wrap; gap: 24px; align-items: flex-start; }
table { border-collapse: collapse; } caption { text-align: left; font-weight: 600; padding: 4px 0; }
th, td { border: 1px solid #d1d5db; padding: 4px 8px; text-align: left; vertical-align: top; }
thead th { background: #f3f4f6; } tr.total th, tr.total td { font-weight: 700; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.legend { margin: 4px 0; } .swatch { display: inline-block; width: 14px; height: 14px;
  vertical-align: -2px; margin-left: 12px; border-radius: 2px; }
.chart-box { overflow-x: auto; } svg.chart { display: block; max-width: none; }
svg .axis { stroke: #6b7280; stroke-width: 1; }
svg text { font-size: 13px; fill: #1a1a1a; } svg text.count { font-weight: 600; }
table.compact { margin-top: 12px; font-size: .9rem; }
.table-box { overflow-x: auto; }
#ticket-table td { overflow-wrap: anywhere; max-width: 320px; }
#ticket-table td.vendor, #ticket-table td.change, #ticket-table td.tier { overflow-wrap: normal;
  white-space: nowrap; }
#ticket-table td.note, #ticket-table td.reasons { min-width: 220px; }
#ticket-table thead th { position: sticky; top: 0; }
td ul { margin: 0; padding-left: 18px; } ul.added, ul.removed { list-style: none; padding: 0; }
ul.added li, ul.removed li { font-family: ui-monospace, "DejaVu Sans Mono", monospace; }
ul.added { color: #065f46; } ul.removed, ul.reasons-before { color: #991b1b; }
.reason-side { font-size: .85rem; font-weight: 600; color: #4b5563; }
.note-text { white-space: pre-wrap; }
.none { color: #4b5563; font-style: italic; } .empty { color: #4b5563; }
.badge { display: inline-block; padding: 0 6px; border-radius: 4px; background: #e5e7eb;
  color: #111827; white-space: nowrap; }
.badge[data-kind="escalate"] { background: #ffedd5; color: #7c2d12; }
.badge[data-kind="de-escalate"] { background: #dbeafe; color: #1e3a8a; }
.badge[data-kind="refused"] { background: #fee2e2; color: #991b1b; }
.badge[data-kind="waiting-for-documentation"] { background: #fef3c7; color: #78350f; }
.badge[data-kind="route"] { background: #ede9fe; color: #4c1d95; }
@media print { .chart-box, .table-box { overflow: visible; }
  #ticket-table thead th { position: static; } }
"""

#: No script, no request: styles inline, nothing from anywhere (the charts are inline SVG).
CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"


def render_html(document: Mapping[str, Any]) -> str:
    """The plan `document` (format tierdesk-plan/1) as one self-contained HTML page.

    Raises PlanDocumentError, naming every problem, when it is not such a document."""
    doc = read_document(document)
    title = f"tierdesk plan: {doc.policies.proposed.path} against {doc.policies.current.path}"
    head = join([
        Html('<meta charset="utf-8">'),
        Html(f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'),
        Html('<meta name="viewport" content="width=device-width, initial-scale=1">'),
        tag("title", None, title),
        tag("style", None, Html(_CSS)),
    ])
    body = join([_header(doc), _summary(doc), _charts(doc), _tickets(doc), _skipped(doc)])
    return f'<!DOCTYPE html>\n<html lang="en">\n<head>{head}</head>\n<body>{body}</body>\n</html>\n'
