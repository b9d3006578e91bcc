"""The HTML plan report opened in Chromium and checked against its JSON document: the numbers are
read back from the rendered page (visible text and element sizes), not from the HTML source."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.webhooks.browser import chromium
from webhooks.plan.charts import tier_order
from webhooks.plan.report import CHANGE_HEADINGS, format_duration, render_html

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page


def _number(text: str) -> int:
    return int(text.replace(",", "").strip())


def _box(locator: Locator) -> dict[str, float]:
    box = locator.bounding_box()
    assert box is not None, "the element is not rendered"
    return dict(box)


def _shown(locator: Locator) -> list[str]:
    """The visible text of each HTML element."""
    return [t.strip() for t in locator.all_inner_texts()]


def _drawn(locator: Locator) -> list[str]:
    """The text of each SVG element (SVG has no innerText; it is drawn, so check its box too)."""
    for i in range(locator.count()):
        assert _box(locator.nth(i))["width"] > 0
    return [t.strip() for t in locator.all_text_contents()]


def check_tier_chart(page: Page, summary: dict[str, Any]) -> None:
    """Each tier's two bars: label text = JSON count, height proportional to it, tiers named."""
    before, after = summary["tiers_before"], summary["tiers_after"]
    tiers = {*before, *after}
    bars = page.locator("#tier-chart g.bar")
    assert bars.count() == 2 * len(tiers)
    seen: dict[tuple[str, str], int] = {}
    heights: dict[tuple[str, str], float] = {}
    for i in range(bars.count()):
        bar = bars.nth(i)
        key = (bar.get_attribute("data-tier") or "", bar.get_attribute("data-series") or "")
        label = _number(bar.locator("text.count").text_content() or "")
        assert _number(bar.get_attribute("data-count") or "") == label
        seen[key] = label
        heights[key] = _box(bar.locator("rect"))["height"] if label else 0.0
        if label:
            # The count sits above its bar, on screen.
            assert _box(bar.locator("text.count"))["y"] < _box(bar.locator("rect"))["y"]
    assert seen == {(t, s): counts.get(t, 0) for t in tiers
                    for s, counts in (("before", before), ("after", after))}
    peak = max(seen.values())
    unit = max(heights.values()) / peak
    for key, count in seen.items():
        assert heights[key] == pytest.approx(count * unit, abs=1.0), key
    # Every tier named under its bars, in reading order (test_plan_report.py pins the order).
    assert _drawn(page.locator("#tier-chart text.tier-label")) == tier_order(before, after)
    # The table under the chart says the same.
    for tier in tiers:
        row = page.locator(f'#tier-table tr[data-tier="{tier}"] td')
        assert [_number(t) for t in _shown(row)[:2]] == [before.get(tier, 0), after.get(tier, 0)]


def check_transition_chart(page: Page, summary: dict[str, Any]) -> None:
    """Each transition's bar: label "from → to", count text = JSON, width proportional to it."""
    rows = page.locator("#transition-chart g.transition")
    assert rows.count() == len(summary["transitions"])
    if not summary["transitions"]:
        assert page.locator("#transitions p.empty").inner_text() == "No ticket changes tier."
        return
    seen, widths = {}, {}
    for i in range(rows.count()):
        row = rows.nth(i)
        label = (row.locator("text.transition-label").text_content() or "").strip()
        source, target = (part.strip() for part in label.split("→"))
        count = _number(row.locator("text.count").text_content() or "")
        seen[(source, target)] = count
        widths[(source, target)] = _box(row.locator("rect"))["width"]
    assert seen == {(t["from"], t["to"]): t["count"] for t in summary["transitions"]}
    unit = max(widths.values()) / max(seen.values())
    for key, count in seen.items():
        assert widths[key] == pytest.approx(count * unit, abs=1.0), key


def check_summary(page: Page, summary: dict[str, Any]) -> None:
    """The headline, the changes by kind, writes and enforce time per vendor, as shown."""
    assert page.locator("p.headline").inner_text().startswith(
        f"{summary['changed']:,} of {summary['tickets']:,} ticket(s)")
    for kind, heading in CHANGE_HEADINGS:
        row = page.locator(f'#changes tr[data-change-kind="{kind}"]')
        assert row.locator("th").inner_text() == heading
        assert _number(row.locator("td").inner_text()) == summary["changes"][kind]
    for vendor, writes in summary["writes"].items():
        row = page.locator(f'#costs tr[data-vendor="{vendor}"]')
        assert _number(row.locator("td.writes").inner_text()) == writes
        seconds = summary["enforce_seconds"][vendor]
        shown = row.locator("td.seconds")
        assert shown.inner_text() == format_duration(seconds)
        assert float((shown.get_attribute("title") or "").removesuffix(" s")) == seconds


def _pair(before: str | None, after: str | None, none: str) -> str:
    shown = [none if v is None else v for v in (before, after)]
    return shown[0] if before == after else f"{shown[0]} → {shown[1]}"


def _outcome(tier: str | None, route: str | None) -> str | None:
    return tier if tier is not None else None if route is None else f"route:{route}"


def check_ticket_table(page: Page, tickets: list[dict[str, Any]]) -> None:
    """One row per changed ticket, in order, each cell showing the JSON's value as text."""
    rows = page.locator("#ticket-table tbody tr")
    assert rows.count() == len(tickets)
    if not tickets:
        assert page.locator("#tickets p.empty").inner_text() == "No ticket would change."
    for i, ticket in enumerate(tickets):
        row = rows.nth(i)

        def cell(name: str, row: Locator = row) -> str:
            return row.locator(f"td.{name}").inner_text().strip()

        assert cell("vendor") == ticket["vendor"]
        assert cell("ticket") == ticket["ticket"]
        assert cell("change") == ticket["change"]
        # The tier or, for a routed ticket (no tier), its route as the tier chart names it.
        assert cell("tier") == _pair(_outcome(ticket["tier_before"], ticket.get("route_before")),
                                     _outcome(ticket["tier_after"], ticket.get("route_after")),
                                     "(none)")
        assert cell("target") == _pair(ticket["target_before"], ticket["target_after"], "—")
        for name, key, sign in (("labels-added", "labels_added", "+"),
                                ("labels-removed", "labels_removed", "−")):
            shown = _shown(row.locator(f"td.{name} li"))
            assert shown == [f"{sign}{label}" for label in ticket[key]]
        assert cell("note") == (ticket["note"] or "—").strip()
        assert _shown(row.locator("td.reasons ul.reasons-after li")) == ticket["reasons"]
        assert _shown(row.locator("td.reasons ul.reasons-before li")) \
            == ticket.get("reasons_before", [])
        if "writes" in ticket:
            assert _number(cell("writes")) == ticket["writes"]


def check_skipped(page: Page, skipped: list[dict[str, Any]]) -> None:
    """Every ticket that could not be planned is listed with its reason."""
    rows = page.locator("#skipped-table tbody tr")
    assert rows.count() == len(skipped)
    for i, entry in enumerate(skipped):
        cells = _shown(rows.nth(i).locator("td"))
        assert cells == [entry["vendor"], entry["ticket"], entry["reason"]]


@contextmanager
def open_report(document: dict[str, Any], out: Path) -> Iterator[tuple[Page, Path]]:
    """Render `document` into out/plan-report.html and open it with `open_page`."""
    report = out / "plan-report.html"
    report.write_text(render_html(document), encoding="utf-8")
    with open_page(report, document, out) as opened:
        yield opened


@contextmanager
def open_page(report: Path, document: dict[str, Any],
              out: Path) -> Iterator[tuple[Page, Path]]:
    """Open the HTML report `report` in Chromium, check every number and every ticket against
    `document`, and yield the page and the path where out/plan-report.png (a full-page
    screenshot) is saved before the browser closes."""
    screenshot = out / "plan-report.png"
    with chromium(out / "chromium-profile") as browser:
        page = browser.new_page()
        requests: list[str] = []
        problems: list[str] = []
        page.on("request", lambda request: requests.append(request.url))
        page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
        page.on("console", lambda message: problems.append(f"console: {message.text}"))
        page.on("dialog", lambda dialog: (problems.append(f"dialog: {dialog.message}"),
                                          dialog.dismiss()))
        page.goto(report.as_uri())
        # Nothing but the file itself was asked for, no script ran and none is in the page.
        assert requests == [report.as_uri()]
        assert page.evaluate("() => window.__tierdesk_xss") is None
        assert page.locator("script, img, iframe").count() == 0
        summary = document["summary"]
        for chart in ("#tier-chart", "#transition-chart", "#ticket-table"):
            present = page.locator(chart)
            assert present.count() == 0 or present.is_visible(), f"{chart} is not shown"
        check_tier_chart(page, summary)
        check_transition_chart(page, summary)
        check_summary(page, summary)
        check_ticket_table(page, document["tickets"])
        check_skipped(page, document.get("skipped", []))
        for side in ("proposed", "current"):
            policy = page.locator(f"#policy-{side}").inner_text()
            assert document["policies"][side]["path"] in policy
            assert document["policies"][side]["digest"] in policy
        yield page, screenshot
        page.screenshot(path=str(screenshot), full_page=True)
        assert problems == []
