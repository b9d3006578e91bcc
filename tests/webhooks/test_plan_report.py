"""The HTML plan report (webhooks/plan/report.py) read back with an HTML parser: escaping of
hostile text, the format check, self-containment and the numbers on the chart elements."""

from __future__ import annotations

import html
from html.parser import HTMLParser
from typing import Any

import pytest

from tests.webhooks.plan_documents import HOSTILE, agreed_shape_only, sample_document
from tiering.plan import CHANGE_KINDS
from webhooks.plan.charts import format_count, tier_order
from webhooks.plan.report import CHANGE_HEADINGS, format_duration, render_html
from webhooks.plan.schema import PlanDocumentError, read_document


class _Elements(HTMLParser):
    """Every start tag with its attributes, and the page's text, as a browser's parser sees it."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def having(self, tag: str, cls: str | None = None) -> list[dict[str, str | None]]:
        return [a for t, a in self.elements
                if t == tag and (cls is None or cls in (a.get("class") or "").split())]


def parse(document: dict[str, Any]) -> _Elements:
    return parse_markup(render_html(document))


def parse_markup(markup: str) -> _Elements:
    parser = _Elements()
    parser.feed(markup)
    parser.close()
    return parser


def test_hostile_text_is_shown_as_text_everywhere() -> None:
    """Markup in a note, a label, a reason, a ticket key, a target and a policy path is text."""
    page = render_html(sample_document())
    parsed = parse(sample_document())
    assert HOSTILE not in page
    assert [t for t, _ in parsed.elements if t in {"script", "img", "iframe", "object"}] == []
    assert not any(k.startswith("on") for _, attrs in parsed.elements for k in attrs)
    text = "".join(parsed.text)
    # In the title, the proposed path, a label, a reason, a reason before, a ticket key, a
    # target, a note and a skipped ticket's reason.
    assert text.count(HOSTILE) == 9
    assert html.escape(HOSTILE, quote=True) in page


def test_hostile_text_in_attributes_stays_in_the_attribute() -> None:
    """A hostile ticket key in data-ticket comes back whole from the attribute, closing nothing."""
    rows = [a for a in parse(sample_document()).having("tr") if "data-change" in a]
    assert [a["data-ticket"] for a in rows] == [t["ticket"] for t in sample_document()["tickets"]]


def test_the_page_is_self_contained() -> None:
    """No script, stylesheet link, image, font or URL: it loads nothing, and its CSP says so."""
    parsed = parse(sample_document())
    assert not [a for _, a in parsed.elements if {"src", "href", "srcset"} & set(a)]
    assert [t for t, _ in parsed.elements if t in {"script", "link", "img", "iframe"}] == []
    [csp] = [a["content"] for a in parsed.having("meta")
             if a.get("http-equiv") == "Content-Security-Policy"]
    assert csp is not None and "default-src 'none'" in csp and "script-src" not in csp
    assert "url(" not in render_html(sample_document())


def test_tier_bars_carry_the_documents_counts_and_proportional_heights() -> None:
    """One bar per tier and series with the JSON count; height proportional to the count."""
    doc = sample_document()
    parsed = parse(doc)
    groups = parsed.having("g", "bar")
    expected = {(tier, series): doc["summary"][f"tiers_{series}"].get(tier, 0)
                for tier in ("L1", "L2", "L3", "route:billing", "(none)")
                for series in ("before", "after")}
    assert {(g["data-tier"], g["data-series"]): int(g["data-count"] or "") for g in groups} \
        == expected
    heights = [float(r["height"] or "") for r in parsed.having("rect")][:len(groups)]
    unit = max(heights) / max(expected.values())
    for group, height in zip(groups, heights, strict=True):
        assert height == pytest.approx(int(group["data-count"] or "") * unit, abs=0.01)
    assert [a["data-tier"] for a in parsed.having("text", "tier-label")] \
        == ["L1", "L2", "L3", "route:billing", "(none)"]


@pytest.mark.parametrize(
    ("names", "order"),
    [
        # The document sorts keys as text: "(none)" first, L10 before L2.
        (["(none)", "L0", "L10", "L2"], ["L0", "L2", "L10", "(none)"]),
        # Routes after the tiers, before "(none)".
        (["(none)", "L1", "route:billing", "L3", "route:abuse"],
         ["L1", "L3", "route:abuse", "route:billing", "(none)"]),
        # Named tiers alphabetically.
        (["specialist", "frontline"], ["frontline", "specialist"]),
    ],
)
def test_tier_order(names: list[str], order: list[str]) -> None:
    """Tiers read in order: numbers as numbers, then routes, then "(none)"."""
    assert tier_order(dict.fromkeys(names[::2], 1), dict.fromkeys(names[1::2], 1)) == order


def test_every_change_kind_has_a_heading() -> None:
    """The summary names every kind tiering/plan.py counts, in its order."""
    assert tuple(k for k, _ in CHANGE_HEADINGS) == CHANGE_KINDS


def test_transition_bars_carry_the_documents_counts() -> None:
    """One bar per transition with its from, to and count, widest first."""
    doc = sample_document()
    groups = parse(doc).having("g", "transition")
    assert [(g["data-from"], g["data-to"], int(g["data-count"] or "")) for g in groups] \
        == [(t["from"], t["to"], t["count"]) for t in doc["summary"]["transitions"]]


def test_summary_figures_carry_the_documents_numbers() -> None:
    """Changes by kind, writes and enforce seconds per vendor and in total."""
    doc = sample_document()
    parsed = parse(doc)
    kinds = {a["data-change-kind"]: int(a["data-count"] or "")
             for a in parsed.having("tr") if "data-change-kind" in a}
    assert kinds == doc["summary"]["changes"]
    costs = {a["data-vendor"]: (int(a["data-writes"] or ""), float(a["data-seconds"] or ""))
             for a in parsed.having("tr") if "data-writes" in a}
    s = doc["summary"]
    assert costs == {v: (s["writes"][v], s["enforce_seconds"][v]) for v in s["writes"]}


def test_an_empty_plan_says_so() -> None:
    """A plan where nothing changes renders, saying no ticket would change and none moves tier."""
    doc = sample_document()
    doc["summary"].update(changed=0, transitions=[], tiers_after=doc["summary"]["tiers_before"])
    doc["tickets"] = []
    text = "".join(parse(doc).text)
    assert "No ticket would change." in text and "No ticket changes tier." in text


def test_the_agreed_shape_alone_renders() -> None:
    """Without the builder's additive keys the page has no writes column and no skipped list."""
    parsed = parse(agreed_shape_only())
    assert parsed.having("table", None) and not [
        a for a in parsed.having("table") if a.get("id") == "skipped-table"]
    assert not [a for a in parsed.having("td") if "data-writes" in a]
    assert "no rate known" in "".join(parsed.text)


def test_additive_keys_are_shown() -> None:
    """Skipped tickets, rates with their source, reasons no longer given and writes per ticket."""
    doc = sample_document()
    parsed = parse(doc)
    text = "".join(parsed.text)
    assert "Tickets that could not be planned" in text
    assert f"the stored body is not a ticket: {HOSTILE}" in text
    assert "60 writes/min (assumed: one request a second)" in text
    assert "Current policy (no longer):" in text
    assert [int(a["data-writes"] or "") for a in parsed.having("td") if "data-writes" in a] \
        == [t["writes"] for t in doc["tickets"]]
    assert "1 could not be planned" in text


def test_a_routed_ticket_shows_its_route_where_the_tier_would_be() -> None:
    """A ticket handed to billing has no tier after: its tier cell names `route:billing`, as the
    chart counts it, and carries the route in data-route-*; a ticket without `route_*` (a
    document from before they were added) reads as not routed."""
    doc = sample_document()
    parsed = read_document(doc)
    assert [(t.ticket, t.route_before, t.route_after) for t in parsed.tickets
            if t.route_before or t.route_after] == [("SUP-106", None, "billing")]
    [cell] = [a for a in parse(doc).having("td", "tier") if a.get("data-route-after")]
    # Attributes whose value is null are left out.
    assert {k: v for k, v in cell.items() if k.startswith("data-")} == {
        "data-before": "L1", "data-route-after": "billing"}
    page = render_html(doc)
    row = page[page.index('data-ticket="SUP-106"'):]
    row = row[:row.index("</tr>")]
    shown = "".join(parse_markup(row).text)
    assert "L1 → route:billing" in shown


def test_unknown_keys_are_ignored() -> None:
    """A key a later tierdesk adds does not stop the report."""
    doc = sample_document()
    doc["extra"] = {"anything": 1}
    doc["tickets"][0]["new_field"] = "x"
    assert "SUP-101" in render_html(doc)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        # Not a JSON object at all.
        ([1, 2], "expected a JSON object, got list"),
        # Some other JSON: no format key.
        ({"tickets": []}, 'no "format" key'),
        # A later format.
        ({**sample_document(), "format": "tierdesk-plan/2"},
         "format 'tierdesk-plan/2' is not supported"),
    ],
)
def test_a_document_of_another_format_is_refused(document: Any, message: str) -> None:
    """The format check comes first and says what was found and how to get a good document."""
    with pytest.raises(PlanDocumentError, match="tierdesk plan") as caught:
        render_html(document)
    assert message in str(caught.value)


def _broken(path: str, value: Any) -> dict[str, Any]:
    doc = sample_document()
    *parents, last = path.split(".")
    node: Any = doc
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    if value is _DELETE:
        del node[last]
    else:
        node[int(last) if last.isdigit() else last] = value
    return doc


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "problem"),
    [
        # A count as a string is not guessed at.
        ("summary.changed", "6", "summary.changed: Input should be a valid integer (got '6')"),
        # A negative count.
        ("summary.tiers_before.L1", -1, "summary.tiers_before.L1: Input should be greater"),
        # A change kind left out.
        ("summary.changes.route", _DELETE, "missing change kind(s): route"),
        # Writes without their total.
        ("summary.writes.total", _DELETE, 'writes needs a "total"'),
        # A source kind that does not exist.
        ("source.kinds.0", "mailbox", "source.kinds[0]: Input should be 'inbox' or 'backlog'"),
        # A ticket without its reasons.
        ("tickets.2.reasons", _DELETE, "tickets[2].reasons: missing (required)"),
        # A label that is not a string.
        ("tickets.0.labels_added.0", 7, "tickets[0].labels_added[0]: Input should be a valid"),
        # A route that is not a name (null means not routed).
        ("tickets.6.route_after", ["billing"],
         "tickets[6].route_after: Input should be a valid string (got a list)"),
        # A date that is not ISO 8601.
        ("generated_at", "yesterday", "expected an ISO 8601 date and time, got 'yesterday'"),
        # A policy without its digest.
        ("policies.current.digest", _DELETE, "policies.current.digest: missing (required)"),
    ],
)
def test_a_bad_document_names_the_key_and_the_problem(path: str, value: Any,
                                                      problem: str) -> None:
    """Each problem of a tierdesk-plan/1 document is reported with its key path."""
    with pytest.raises(PlanDocumentError, match=r"problem\(s\)") as caught:
        read_document(_broken(path, value))
    assert problem in str(caught.value)


def test_every_problem_is_reported_at_once() -> None:
    """Two problems in one document come back in one error."""
    doc = _broken("summary.changed", "6")
    del doc["tickets"][0]["note"]
    with pytest.raises(PlanDocumentError, match=r"2 problem\(s\)") as caught:
        read_document(doc)
    assert "summary.changed" in str(caught.value) and "tickets[0].note" in str(caught.value)


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0, "0 s"),  # nothing to write
        (1.4, "1.4 s"),  # under a minute: tenths
        (0.01, "< 0.1 s"),  # a few writes: not shown as nothing
        (59.96, "60 s"),  # rounds within the seconds form
        (190, "3 min 10 s"),  # minutes and seconds
        (3600, "1 h 0 min"),  # an hour
        (7530.4, "2 h 5 min"),  # hours and minutes
    ],
)
def test_format_duration(seconds: float, shown: str) -> None:
    """Enforce time is shown in the unit a person reads at a glance."""
    assert format_duration(seconds) == shown


def test_format_count_groups_thousands() -> None:
    """Counts are grouped by thousands."""
    assert [format_count(n) for n in (0, 999, 12345)] == ["0", "999", "12,345"]
