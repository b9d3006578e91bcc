"""`tierdesk demo`: the whole chain on the sandbox, and how it judges the outcome."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sandbox.demo import (
    DEMO_ENV,
    Counts,
    NotReady,
    install_stack,
    secret_lines,
    service,
    summary_line,
    wait_until_ready,
)
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
    # The plain-words summary says what --verbose counts exactly: install's requests apart
    # from the story's, and no start-up doctor read among the story's.
    exact = re.search(r"install Jira (\d+) reads \+ (\d+) writes, Zendesk (\d+) reads \+ (\d+)"
                      r" writes; story Jira (\d+) reads \+ (\d+) writes, Zendesk (\d+) reads \+"
                      r" (\d+) writes \(start-up doctor off", out)
    assert exact is not None, out
    ir, iw, zr, zw, jr, jw, sr, sw = (int(n) for n in exact.groups())
    assert (f"`tierdesk install` called Jira {ir + iw} time(s) and Zendesk {zr + zw} time(s)."
            f" During the story tierdesk called Jira {jr + jw} time(s) ({jr} to look at tickets,"
            f" {jw} to change them) and Zendesk {sr + sw} time(s) ({sr} to look at tickets,"
            f" {sw} to change them).") in out
    # Each install creates a webhook; every ticket of the story is changed at least once.
    assert iw >= 1 and zw >= 1 and jw >= 7 and sw >= 7
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
    """The summary says how often `install` called each vendor, apart from how often tierdesk
    called it during the story to look and to change, and whether it ever called before a
    vendor's asked-for wait was over."""
    start = {"jira": {"reads": 0, "writes": 0}, "zendesk": {"reads": 0, "writes": 0}}
    installed = {"jira": {"reads": 2, "writes": 1}, "zendesk": {"reads": 3, "writes": 2}}
    end = {"jira": {"reads": 3, "writes": 10}, "zendesk": {"reads": 6, "writes": 10}}
    setup, story = Counts.between(start, installed), Counts.between(installed, end)
    assert story == Counts({"jira": 1, "zendesk": 3}, {"jira": 9, "zendesk": 8})
    assert summary_line(setup, story, retry_after_violations=0) == (
        "Setting up its webhooks, `tierdesk install` called Jira 3 time(s) and Zendesk 5"
        " time(s). During the story tierdesk called Jira 10 time(s) (1 to look at tickets, 9 to"
        " change them) and Zendesk 11 time(s) (3 to look at tickets, 8 to change them). It"
        " always waited as long as a vendor asked it to.")
    assert story.exact() == "Jira 1 reads + 9 writes, Zendesk 3 reads + 8 writes"
    assert summary_line(setup, story, retry_after_violations=2).endswith(
        "✘ It called a vendor 2 time(s) before the wait the vendor asked for was over.")


def _requests_while_serving(workdir: Path, extra_env: dict[str, str] | None) -> int:
    """Install against a fresh sandbox, serve (no ticket, no story) and return how many
    requests tierdesk sent while serving: polled until the first one arrives (then a second
    more, so the rest arrive too) or for at most 5 s."""
    from sandbox.server import run_in_thread

    workdir.mkdir()
    handle = run_in_thread()
    try:
        stack = install_stack(handle, workdir, extra_env=extra_env)
        installed = len(handle.sandbox.log)
        with service(stack):
            deadline = time.monotonic() + 5
            while len(handle.sandbox.log) == installed and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(1.0)
            return len(handle.sandbox.log) - installed
    finally:
        handle.stop()


@pytest.mark.slow
def test_the_demos_serve_sends_no_start_up_doctor_read(tmp_path: Path) -> None:
    """Without the demo's environment, serve's start-up doctor reads the vendors before any
    ticket arrives (reads the summary once counted as looking at tickets); with it, serve
    sends nothing until the story starts, so the story's counts are the story's."""
    assert _requests_while_serving(tmp_path / "default", None) > 0
    assert _requests_while_serving(tmp_path / "demo", DEMO_ENV) == 0


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
