"""The HTML plan report opened in Debian's headless Chromium (driven by Playwright): the charts,
the summary and the per-ticket table show the JSON document's numbers; a PNG is saved."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.webhooks.browser import chromium_or_fail
from tests.webhooks.plan_documents import HOSTILE, sample_document
from tests.webhooks.plan_report_dom import open_report


def test_the_report_shows_the_documents_numbers_in_chromium(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Bars, labels, summary and ticket rows read back from Chromium match the JSON (a routed
    ticket's route in its tier cell); hostile text in a note, a label, a ticket key and the
    policy path is shown as text, never run."""
    doc = sample_document()
    with open_report(doc, tmp_path) as (page, screenshot):
        notes = page.locator("#ticket-table td.note").all_inner_texts()
        assert notes[0].endswith(f"Customer wrote: {HOSTILE}")
        assert HOSTILE in page.title()
        assert HOSTILE in page.locator("#ticket-table tbody tr").nth(3).locator(
            "td.ticket").inner_text()
        # The ticket handed to billing shows its route where the tier would be, as the chart.
        routed = page.locator('#ticket-table tbody tr[data-ticket="SUP-106"] td.tier')
        assert routed.inner_text().strip() == "L1 → route:billing"
        assert page.locator('#tier-chart text.tier-label[data-tier="route:billing"]').count() == 1
    with capsys.disabled():
        print(f"\nplan report screenshot: {screenshot}")
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_an_empty_plan_renders_in_chromium(tmp_path: Path) -> None:
    """A plan where nothing changes still draws the tier chart and says no ticket changes."""
    doc = sample_document()
    doc["summary"].update(changed=0, transitions=[], tiers_after=doc["summary"]["tiers_before"])
    doc["summary"]["changes"] = dict.fromkeys(doc["summary"]["changes"], 0)
    doc["tickets"] = []
    with open_report(doc, tmp_path) as (page, _):
        assert page.locator("#ticket-table").count() == 0


def test_a_missing_chromium_fails_saying_how_to_install_it(tmp_path: Path) -> None:
    """Without Chromium the browser test fails (never skips) and names the apt-get command."""
    with pytest.raises(pytest.fail.Exception, match=r"apt-get install -y chromium"):
        chromium_or_fail(tmp_path / "no-chromium")
