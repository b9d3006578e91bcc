"""`tierdesk demo`: the whole chain on the sandbox, and how it judges the outcome."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sandbox.demo import NotReady, secret_lines, wait_until_ready
from sandbox.story import Case, Expect, View

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("site", ["cloud", "dc9", "dc10"])
def test_demo_runs_the_story_and_exits_zero(site: str) -> None:
    """The demo installs, serves, plays both vendors, every check passes, nothing is left, on a
    Cloud, a Data Center 9 and a Data Center 10 Jira site (each its own webhook API); it says
    what ✔ means, shows the L3 request only once it happened (Act 2), and sums up in plain
    words (the exact counts only with --verbose)."""
    done = subprocess.run(
        [sys.executable, "-c", "from webhooks.cli import main; main(prog_name='tierdesk')", "demo",
         "--verbose", "--jira-site", site],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "Every step came out as the policy says." in out
    # Act 1 shows 5 tickets per vendor (the L3 request is still to come), Act 2 the 2 changed.
    assert out.count("✔ jira") == 7 and out.count("✔ zendesk") == 7
    assert "✔ = the ticket now looks as the example policy says" in out
    act1, act2 = out.split("Act 2:")
    assert "L3 request from a basic-plan customer" not in act1
    assert act2.count("L3 request from a basic-plan customer") == 2
    assert "It always waited as long as a vendor asked it to." in out
    assert "to look at tickets" in out and "to change them)" in out
    assert "\n✘" not in out and "    ✘ label" not in out
    assert "Checklist for L2 (0 of 4 done)" in out
    assert "documentation for L2 is complete" in out
    assert "Retry-After violations: 0" in out  # --verbose's exact figures


def test_a_case_reports_every_difference() -> None:
    """A ticket that is not as the policy says yields one problem per difference."""
    case = Case(
        "zendesk",
        "crash",
        "4",
        Expect(
            has=frozenset({"tier-l2"}), lacks=frozenset({"tier-l1"}), owner="200", note="now in L2"
        ),
    )
    view = View(["tier-l1"], "100", ["tierdesk: stays in L1"], "L1 Support")
    assert case.check(view) == [
        "label tier-l2 missing",
        "label tier-l1 present",
        "handed to L1 Support, expected 200",
        "checklist note does not say 'now in L2'",
    ]
    assert case.check(View(["tier-l2"], "200", ["the ticket is now in L2."], "L2")) == []


def test_install_output_secrets_are_picked_up() -> None:
    """The secret lines printed by `tierdesk install` become the service's environment."""
    out = (
        "Jira webhook 'tierdesk' created (POST /rest/webhooks/1.0/webhook).\n"
        "Set this in tierdesk's environment:\nTIERDESK_JIRA_WEBHOOK_SECRET=abc=def\n"
    )
    assert secret_lines(out) == {"TIERDESK_JIRA_WEBHOOK_SECRET": "abc=def"}


def test_summary_line_in_plain_words() -> None:
    """The summary says how often tierdesk called each vendor to look and to change, and
    whether it ever called before a vendor's asked-for wait was over."""
    from sandbox.demo import summary_line

    state = {"requests": {"jira": {"reads": 1, "writes": 9}, "zendesk": {"reads": 3, "writes": 8}},
             "retry_after_violations": 0}
    assert summary_line(state) == (
        "tierdesk called Jira 10 time(s) (1 to look at tickets, 9 to change them) and Zendesk"
        " 11 time(s) (3 to look at tickets, 8 to change them). It always waited as long as a"
        " vendor asked it to.")
    state["retry_after_violations"] = 2
    assert summary_line(state).endswith(
        "✘ It called a vendor 2 time(s) before the wait the vendor asked for was over.")


def test_an_expectation_by_target_key_resolves_per_vendor() -> None:
    """The end-to-end suite's expectations name a target; `owned_by` turns it into its id, and
    an empty owner (nobody) or None (not checked) stays as it is."""
    by_target = Expect(has=frozenset({"tier-l1"}), owner="L1")
    assert by_target.owned_by({"L1": "100"}).owner == "100"
    assert Expect(owner="").owned_by({"L1": "100"}).owner == ""
    assert Expect().owned_by({"L1": "100"}).owner is None
    assert Expect(owner="").problems(View(["tier-l0"], "100", [], "L1")) == [
        "handed to L1, expected nobody"
    ]
    assert Expect(owner="").problems(View(["tier-l0"], None)) == []


def test_wait_until_ready_says_when_the_child_exited(tmp_path: Path) -> None:
    """A child that exits before it answers is reported with its exit code and log tail."""
    log = tmp_path / "child.log"
    log.write_text("boom: no such setting\n", "utf-8")
    proc = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    with pytest.raises(NotReady, match=r"(?s)child exited \(3\):.*boom: no such setting"):
        wait_until_ready(proc, "http://127.0.0.1:9/readyz", log_path=log, timeout=30,
                         name="child")
