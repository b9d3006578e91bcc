"""The HTML plan report: one self-contained page drawn from a `tierdesk plan` JSON document.

`render_html(document)` checks the document against format `tierdesk-plan/1` and returns one HTML
file that needs nothing else: inline CSS, charts as inline SVG drawn here in Python, no script, no
font, no image and no request. Drawing the charts in Python (instead of a script in the page)
keeps the file readable where scripts are blocked (mail attachments, CI artifact viewers) and lets
the page carry a Content-Security-Policy that forbids every script and every request, so a ticket
text that slipped past escaping could still not run.

Ticket text is hostile input: every value from the document reaches the page through `_esc`
(`html.escape`, quotes included), in text and in attributes alike; `_tag` escapes each child that
is not already markup, so escaping is the default rather than a habit.

Chart and table elements carry their numbers in `data-*` attributes (`data-count`, `data-tier`,
`data-series`, `data-from`, `data-to`, ...) so a test in a real browser can compare what is drawn
with the document.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

FORMAT = "tierdesk-plan/1"

#: The kinds of change a plan counts, in the order the report lists them, with their headings.
CHANGE_KINDS: tuple[tuple[str, str], ...] = (
    ("escalate", "Escalate"),
    ("de-escalate", "De-escalate"),
    ("refused", "Refused (plan does not cover the tier)"),
    ("waiting-for-documentation", "Wait for documentation"),
    ("route", "Change route"),
    ("labels-or-note", "Labels or note only"),
)

NO_TIER = "(none)"


class PlanReportError(ValueError):
    """The document is not a plan document this report can draw; the message says what to fix."""


# ---- the document, as format tierdesk-plan/1 documents it -------------------------------------

Count = Annotated[int, Field(ge=0)]
Seconds = Annotated[float, Field(ge=0)]


class _Model(BaseModel):
    # Strict: a count written as "3" or true is an error, not a guess. Unknown keys are ignored,
    # so a document with additions of a later tierdesk still renders what this one knows.
    model_config = ConfigDict(frozen=True, strict=True, extra="ignore")


class _PolicyRef(_Model):
    path: str
    digest: str


class _Policies(_Model):
    current: _PolicyRef
    proposed: _PolicyRef


class _Source(_Model):
    kinds: list[Literal["inbox", "backlog"]]
    since: str | None
    tickets: Count


class _Transition(_Model):
    from_: str = Field(alias="from")
    to: str
    count: Count


def _with_total(value: dict[str, Any], what: str) -> dict[str, Any]:
    if "total" not in value:
        raise ValueError(f"{what} needs a \"total\" beside the per-vendor figures")
    return value


class _Summary(_Model):
    tickets: Count
    changed: Count
    tiers_before: dict[str, Count]
    tiers_after: dict[str, Count]
    transitions: list[_Transition]
    changes: dict[str, Count]
    writes: dict[str, Count]
    enforce_seconds: dict[str, Seconds]

    @field_validator("changes")
    @classmethod
    def _all_kinds(cls, value: dict[str, int]) -> dict[str, int]:
        missing = [kind for kind, _ in CHANGE_KINDS if kind not in value]
        if missing:
            raise ValueError("missing change kind(s): " + ", ".join(missing))
        return value

    @field_validator("writes")
    @classmethod
    def _writes_total(cls, value: dict[str, int]) -> dict[str, int]:
        return _with_total(value, "writes")

    @field_validator("enforce_seconds")
    @classmethod
    def _seconds_total(cls, value: dict[str, float]) -> dict[str, float]:
        return _with_total(value, "enforce_seconds")


class _TicketChange(_Model):
    vendor: str
    ticket: str
    change: str
    tier_before: str | None
    tier_after: str | None
    labels_added: list[str]
    labels_removed: list[str]
    target_before: str | None
    target_after: str | None
    note: str | None
    reasons: list[str]


class PlanDocument(_Model):
    """A plan document (format tierdesk-plan/1), checked."""

    format: Literal["tierdesk-plan/1"]
    generated_at: str
    policies: _Policies
    source: _Source
    summary: _Summary
    tickets: list[_TicketChange]

    @field_validator("generated_at")
    @classmethod
    def _iso8601(cls, value: str) -> str:
        try:
            datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"expected an ISO 8601 date and time, got {value[:40]!r}") from None
        return value


def read_document(document: Any) -> PlanDocument:
    """Check `document` (the parsed JSON of `tierdesk plan --format json`) against format
    tierdesk-plan/1, or raise PlanReportError listing every problem with its key path."""
    if not isinstance(document, Mapping):
        raise PlanReportError(
            "not a tierdesk plan document: expected a JSON object, got "
            f"{type(document).__name__}; make one with `tierdesk plan --format json`")
    version = document.get("format")
    if version is None:
        raise PlanReportError(
            "not a tierdesk plan document: it has no \"format\" key; make one with "
            "`tierdesk plan --format json`")
    if version != FORMAT:
        raise PlanReportError(
            f"plan document format {str(version)[:40]!r} is not supported: this tierdesk draws "
            f"{FORMAT!r} documents; render it with the tierdesk version that wrote it, or run "
            "`tierdesk plan` again with this one")
    try:
        return PlanDocument.model_validate(document)
    except ValidationError as exc:
        problems = [f"  {_loc(e['loc'])}: {_describe(e)}" for e in exc.errors()]
        raise PlanReportError(
            f"the plan document ({FORMAT}) has {len(problems)} problem(s):\n"
            + "\n".join(problems)) from exc


def _loc(loc: Iterable[int | str]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".") or "(top)"


def _describe(error: Any) -> str:
    message = str(error["msg"])
    value = error.get("input")
    if error["type"] == "missing":
        return "missing (required)"
    if isinstance(value, str | int | float | bool) or value is None:
        return f"{message} (got {str(value)[:40]!r})"
    return f"{message} (got a {type(value).__name__})"


# ---- markup: everything not already markup is escaped -------------------------------------------

class _Html(str):
    """Markup built here, already escaped."""

    __slots__ = ()


Child = _Html | str | int | float | None


def _esc(value: Child) -> _Html:
    if isinstance(value, _Html):
        return value
    return _Html("" if value is None else html.escape(str(value), quote=True))


def _tag(name: str, attrs: Mapping[str, object] | None = None, *children: Child) -> _Html:
    """`<name attrs>children</name>`; attribute values and plain-string children are escaped,
    attributes whose value is None are left out."""
    attributes = "".join(
        f' {key}="{html.escape(str(value), quote=True)}"'
        for key, value in (attrs or {}).items() if value is not None)
    return _Html(f"<{name}{attributes}>" + "".join(_esc(c) for c in children) + f"</{name}>")


def _join(parts: Iterable[Child]) -> _Html:
    return _Html("".join(_esc(p) for p in parts))


def _num(value: float) -> str:
    """A number for a data-* attribute: integers without a fraction, others as Python prints."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def format_count(value: int) -> str:
    """A count as the page shows it: digits grouped by thousands (12,345)."""
    return f"{value:,}"


def format_duration(seconds: float) -> str:
    """A duration as the page shows it: 0 s, < 0.1 s, 12.5 s, 3 min 20 s, 2 h 5 min."""
    if 0 < seconds < 0.05:
        return "< 0.1 s"
    if seconds < 60:
        return f"{seconds:.1f} s".replace(".0 s", " s")
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {secs} s"


# ---- charts (inline SVG) ------------------------------------------------------------------------

_BEFORE_COLOUR = "#0072B2"  # Okabe-Ito blue and vermillion: told apart with any colour vision,
_AFTER_COLOUR = "#D55E00"  # each at least 3:1 against white (WCAG 1.4.11 graphical objects).
_TRANSITION_COLOUR = "#4B5563"


def _tier_order(before: Mapping[str, int], after: Mapping[str, int]) -> list[str]:
    """Tiers in the document's order (the builder's: the policy's), "(none)" last."""
    order = list(dict.fromkeys([*before, *after]))
    return [t for t in order if t != NO_TIER] + [t for t in order if t == NO_TIER]


def _tier_chart(before: Mapping[str, int], after: Mapping[str, int]) -> _Html:
    tiers = _tier_order(before, after)
    if not tiers:
        return _tag("p", {"class": "empty"}, "The plan read no ticket.")
    bar_w, pair_gap, group_gap, left, top, plot_h, bottom = 34, 4, 30, 16, 26, 220, 44
    group_w = 2 * bar_w + pair_gap
    width = left * 2 + len(tiers) * group_w + (len(tiers) - 1) * group_gap
    height = top + plot_h + bottom
    peak = max([1, *before.values(), *after.values()])
    parts: list[_Html] = [
        _tag("title", {"id": "tier-chart-title"}, "Tickets per tier before and after"),
        _tag("line", {"x1": left - 6, "x2": width - left + 6, "y1": top + plot_h,
                      "y2": top + plot_h, "class": "axis"}),
    ]
    for index, tier in enumerate(tiers):
        x0 = left + index * (group_w + group_gap)
        for offset, series, counts, colour in (
            (0, "before", before, _BEFORE_COLOUR),
            (bar_w + pair_gap, "after", after, _AFTER_COLOUR),
        ):
            count = counts.get(tier, 0)
            h = plot_h * count / peak
            x, y = x0 + offset, top + plot_h - h
            parts.append(_tag(
                "g", {"class": "bar", "data-tier": tier, "data-series": series,
                      "data-count": count},
                _tag("title", None, f"{tier}, {series}: {format_count(count)} ticket(s)"),
                _tag("rect", {"x": x, "y": f"{y:.2f}", "width": bar_w, "height": f"{h:.2f}",
                              "fill": colour}),
                _tag("text", {"class": "count", "x": x + bar_w / 2, "y": f"{y - 6:.2f}",
                              "text-anchor": "middle"}, format_count(count)),
            ))
        parts.append(_tag("text", {"class": "tier-label", "data-tier": tier,
                                   "x": x0 + group_w / 2, "y": top + plot_h + 22,
                                   "text-anchor": "middle"}, tier))
    return _tag("svg", {"class": "chart", "id": "tier-chart", "role": "img",
                        "aria-labelledby": "tier-chart-title", "width": width, "height": height,
                        "viewBox": f"0 0 {width} {height}"}, *parts)


def _transition_chart(transitions: list[_Transition]) -> _Html:
    if not transitions:
        return _tag("p", {"class": "empty"}, "No ticket changes tier.")
    rows = sorted(transitions, key=lambda t: -t.count)
    labels = [f"{t.from_} → {t.to}" for t in rows]
    label_w = min(320, max(90, 8 * max(len(label) for label in labels) + 16))
    plot_w, row_h, top, count_w = 420, 30, 8, 70
    width, height = label_w + plot_w + count_w, top * 2 + row_h * len(rows)
    peak = max(1, *(t.count for t in rows))
    parts: list[_Html] = [_tag("title", {"id": "transition-chart-title"},
                               "Tickets per tier change, before → after")]
    for index, (transition, label) in enumerate(zip(rows, labels, strict=True)):
        y = top + index * row_h
        w = plot_w * transition.count / peak
        parts.append(_tag(
            "g", {"class": "transition", "data-from": transition.from_,
                  "data-to": transition.to, "data-count": transition.count},
            _tag("title", None, f"{label}: {format_count(transition.count)} ticket(s)"),
            _tag("text", {"class": "transition-label", "x": label_w - 10, "y": y + row_h / 2 + 5,
                          "text-anchor": "end"}, label),
            _tag("rect", {"x": label_w, "y": y + 4, "width": f"{w:.2f}", "height": row_h - 8,
                          "fill": _TRANSITION_COLOUR}),
            _tag("text", {"class": "count", "x": f"{label_w + w + 6:.2f}",
                          "y": y + row_h / 2 + 5}, format_count(transition.count)),
        ))
    return _tag("svg", {"class": "chart", "id": "transition-chart", "role": "img",
                        "aria-labelledby": "transition-chart-title", "width": width,
                        "height": height, "viewBox": f"0 0 {width} {height}"}, *parts)


# ---- sections -----------------------------------------------------------------------------------

def _source_text(source: _Source) -> str:
    names = []
    for kind in dict.fromkeys(source.kinds):
        if kind == "inbox":
            window = f" over the last {source.since}" if source.since else ""
            names.append(f"the inbox's record of the tickets tierdesk has seen{window}")
        else:
            names.append("the live backlog (the vendors' searches, read-only)")
    return " and ".join(names) or "no source"


def _header(doc: PlanDocument) -> _Html:
    def policy(ref: _PolicyRef) -> _Html:
        return _join([_tag("code", {"class": "path"}, ref.path), " ",
                      _tag("span", {"class": "digest"}, "digest ", _tag("code", None, ref.digest))])

    rows = [
        ("Proposed policy", policy(doc.policies.proposed), "policy-proposed"),
        ("Compared with (current)", policy(doc.policies.current), "policy-current"),
        ("Tickets read", _join([_tag("span", {"data-count": doc.source.tickets},
                                     format_count(doc.source.tickets)), " from ",
                                _source_text(doc.source)]), "source"),
        ("Generated", _tag("time", {"datetime": doc.generated_at}, doc.generated_at),
         "generated"),
    ]
    return _tag("header", None,
                _tag("h1", None, "Policy plan: what the proposed policy would change"),
                _tag("dl", {"class": "facts"}, *(
                    _join([_tag("dt", None, name), _tag("dd", {"id": key}, value)])
                    for name, value, key in rows)))


def _summary(doc: PlanDocument) -> _Html:
    summary = doc.summary
    kinds = list(CHANGE_KINDS) + [(k, k) for k in summary.changes if k not in dict(CHANGE_KINDS)]
    change_rows = [
        _tag("tr", {"data-change-kind": kind, "data-count": summary.changes[kind]},
             _tag("th", {"scope": "row"}, heading),
             _tag("td", {"class": "num"}, format_count(summary.changes[kind])))
        for kind, heading in kinds]
    vendors = [v for v in dict.fromkeys([*summary.writes, *summary.enforce_seconds])
               if v != "total"] + ["total"]
    cost_rows = []
    for vendor in vendors:
        writes, seconds = summary.writes.get(vendor), summary.enforce_seconds.get(vendor)
        cost_rows.append(_tag(
            "tr", {"data-vendor": vendor, "data-writes": writes,
                   "data-seconds": None if seconds is None else _num(seconds),
                   "class": "total" if vendor == "total" else None},
            _tag("th", {"scope": "row"}, "All vendors" if vendor == "total" else vendor),
            _tag("td", {"class": "num writes"}, "—" if writes is None else format_count(writes)),
            _tag("td", {"class": "num seconds", "title": None if seconds is None
                        else f"{_num(seconds)} s"},
                 "—" if seconds is None else format_duration(seconds))))
    return _tag(
        "section", {"id": "summary", "aria-labelledby": "summary-heading"},
        _tag("h2", {"id": "summary-heading"}, "Summary"),
        _tag("p", {"class": "headline", "data-changed": summary.changed,
                   "data-tickets": summary.tickets},
             _tag("strong", None, format_count(summary.changed)), " of ",
             format_count(summary.tickets), " ticket(s) would change."),
        _tag("div", {"class": "cards"},
             _tag("table", {"id": "changes"},
                  _tag("caption", None, "Changes by kind"),
                  _tag("thead", None, _tag("tr", None, _tag("th", {"scope": "col"}, "Change"),
                                           _tag("th", {"scope": "col"}, "Tickets"))),
                  _tag("tbody", None, *change_rows)),
             _tag("table", {"id": "costs"},
                  _tag("caption", None, "Cost of enforcing the change"),
                  _tag("thead", None, _tag("tr", None, _tag("th", {"scope": "col"}, "Vendor"),
                                           _tag("th", {"scope": "col"}, "Writes"),
                                           _tag("th", {"scope": "col"},
                                                "Time at the rate limit"))),
                  _tag("tbody", None, *cost_rows))))


def _tier_table(before: Mapping[str, int], after: Mapping[str, int]) -> _Html:
    rows = []
    for tier in _tier_order(before, after):
        b, a = before.get(tier, 0), after.get(tier, 0)
        rows.append(_tag("tr", {"data-tier": tier},
                         _tag("th", {"scope": "row"}, tier),
                         _tag("td", {"class": "num"}, format_count(b)),
                         _tag("td", {"class": "num"}, format_count(a)),
                         _tag("td", {"class": "num"}, f"{a - b:+,}" if a != b else "0")))
    return _tag("table", {"id": "tier-table", "class": "compact"},
                _tag("caption", None, "The same figures as a table"),
                _tag("thead", None, _tag("tr", None, *(_tag("th", {"scope": "col"}, h) for h in
                                                       ("Tier", "Before", "After", "Change")))),
                _tag("tbody", None, *rows))


def _charts(doc: PlanDocument) -> _Html:
    summary = doc.summary
    legend = _tag("p", {"class": "legend"},
                  _tag("span", {"class": "swatch", "style": f"background:{_BEFORE_COLOUR}"}),
                  " Before (current policy) ",
                  _tag("span", {"class": "swatch", "style": f"background:{_AFTER_COLOUR}"}),
                  " After (proposed policy)")
    return _join([
        _tag("section", {"id": "tiers", "aria-labelledby": "tiers-heading"},
             _tag("h2", {"id": "tiers-heading"}, "Tier distribution before and after"),
             legend, _tag("div", {"class": "chart-box"},
                          _tier_chart(summary.tiers_before, summary.tiers_after)),
             _tier_table(summary.tiers_before, summary.tiers_after)),
        _tag("section", {"id": "transitions", "aria-labelledby": "transitions-heading"},
             _tag("h2", {"id": "transitions-heading"}, "Tier changes (before → after)"),
             _tag("div", {"class": "chart-box"}, _transition_chart(summary.transitions))),
    ])


def _pair(before: str | None, after: str | None, *, none: str) -> _Html:
    def one(value: str | None) -> _Html:
        return _tag("span", {"class": "none"}, none) if value is None else _esc(value)

    if before == after:
        return one(before)
    return _join([one(before), _tag("span", {"class": "arrow", "aria-label": "becomes"}, " → "),
                  one(after)])


def _items(values: list[str], *, cls: str, sign: str) -> _Html:
    if not values:
        return _tag("span", {"class": "none"}, "—")
    return _tag("ul", {"class": cls}, *(_tag("li", None, _tag("code", None, f"{sign}{v}"))
                                        for v in values))


def _ticket_table(doc: PlanDocument) -> _Html:
    heading = _tag("h2", {"id": "tickets-heading"}, "Tickets that would change")
    if not doc.tickets:
        return _tag("section", {"id": "tickets", "aria-labelledby": "tickets-heading"}, heading,
                    _tag("p", {"class": "empty"}, "No ticket would change."))
    columns = ("Vendor", "Ticket", "Change", "Tier (before → after)", "Labels added",
               "Labels removed", "Target (before → after)", "Note to be posted", "Reasons")
    rows = [
        _tag("tr", {"data-vendor": t.vendor, "data-ticket": t.ticket, "data-change": t.change},
             _tag("td", {"class": "vendor"}, t.vendor),
             _tag("td", {"class": "ticket"}, _tag("code", None, t.ticket)),
             _tag("td", {"class": "change"}, _tag("span", {"class": "badge",
                                                           "data-kind": t.change}, t.change)),
             _tag("td", {"class": "tier", "data-before": t.tier_before,
                         "data-after": t.tier_after},
                  _pair(t.tier_before, t.tier_after, none=NO_TIER)),
             _tag("td", {"class": "labels-added"}, _items(t.labels_added, cls="added", sign="+")),
             _tag("td", {"class": "labels-removed"},
                  _items(t.labels_removed, cls="removed", sign="−")),
             _tag("td", {"class": "target"}, _pair(t.target_before, t.target_after, none="—")),
             _tag("td", {"class": "note"}, _tag("span", {"class": "none"}, "—")
                  if t.note is None else _tag("div", {"class": "note-text"}, t.note)),
             _tag("td", {"class": "reasons"}, _tag("ul", None, *(_tag("li", None, r)
                                                                  for r in t.reasons))))
        for t in doc.tickets]
    return _tag("section", {"id": "tickets", "aria-labelledby": "tickets-heading"}, heading,
                _tag("div", {"class": "table-box"}, _tag(
                    "table", {"id": "ticket-table", "data-rows": len(doc.tickets)},
                    _tag("thead", None, _tag("tr", None, *(_tag("th", {"scope": "col"}, c)
                                                           for c in columns))),
                    _tag("tbody", None, *rows))))


_CSS = """
:root { color: #1a1a1a; background: #fff; font: 15px/1.45 system-ui, "DejaVu Sans", sans-serif; }
body { max-width: 1280px; margin: 0 auto; padding: 24px; }
h1 { font-size: 1.6rem; margin: 0 0 12px; } h2 { font-size: 1.25rem; margin: 32px 0 8px; }
code { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: .92em; }
.facts { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; margin: 0; }
.facts dt { font-weight: 600; } .facts dd { margin: 0; overflow-wrap: anywhere; }
.digest { color: #4b5563; }
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
#ticket-table td.vendor, #ticket-table td.change { overflow-wrap: normal; white-space: nowrap; }
#ticket-table thead th { position: sticky; top: 0; }
td ul { margin: 0; padding-left: 18px; } ul.added, ul.removed { list-style: none; padding: 0; }
ul.added code { color: #065f46; } ul.removed code { color: #991b1b; }
.note-text { white-space: pre-wrap; }
.none { color: #4b5563; font-style: italic; } .empty { color: #4b5563; }
.badge { display: inline-block; padding: 0 6px; border-radius: 4px; background: #e5e7eb;
  color: #111827; white-space: nowrap; }
.badge[data-kind="escalate"] { background: #ffedd5; color: #7c2d12; }
.badge[data-kind="de-escalate"] { background: #dbeafe; color: #1e3a8a; }
.badge[data-kind="refused"] { background: #fee2e2; color: #991b1b; }
.badge[data-kind="waiting-for-documentation"] { background: #fef3c7; color: #78350f; }
.badge[data-kind="route"] { background: #ede9fe; color: #4c1d95; }
@media print { .chart-box, .table-box { overflow: visible; } #ticket-table thead th
  { position: static; } }
"""

# No script, no request: styles inline, nothing else from anywhere (the charts are inline SVG).
_CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"


def render_html(document: Mapping[str, Any]) -> str:
    """The plan `document` (format tierdesk-plan/1) as one self-contained HTML page.

    Raises PlanReportError, naming every problem, when the document is not one this draws."""
    doc = read_document(document)
    title = f"tierdesk plan: {doc.policies.proposed.path} against {doc.policies.current.path}"
    head = _join([
        _Html('<meta charset="utf-8">'),
        _Html(f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'),
        _Html('<meta name="viewport" content="width=device-width, initial-scale=1">'),
        _Html('<meta name="generator" content="tierdesk plan">'),
        _tag("title", None, title),
        _tag("style", None, _Html(_CSS)),
    ])
    body = _join([_header(doc), _summary(doc), _charts(doc), _ticket_table(doc)])
    return f'<!DOCTYPE html>\n<html lang="en">\n<head>{head}</head>\n<body>{body}</body>\n</html>\n'
