"""A calendar's `holidays.ics` is read relative to the policy file by every edge that loads a
policy file (`policy check`, `decide`, `serve`/`worker` through `load_policy_for`, policy
reload); a file that is missing, not UTF-8 or not iCalendar is a problem at the key naming it."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

from tiering.policy import PolicyError, files_named, load_policy
from webhooks.cli import main
from webhooks.defaults import load_policy_file, read_named_files
from webhooks.reload import PolicyHolder, PolicyWatcher
from webhooks.service import ServiceError, load_policy_for
from webhooks.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
HOSTING = ROOT / "deploy" / "policies" / "hosting-three-level.yaml"

POLICY = """\
version: 1
tiers: [L1, L2]
default_tier: L1
plans:
  standard: {max_tier: L2}
calendars:
  office:
    timezone: Europe/Berlin
    hours: {mon-fri: ["09:00-17:00"]}
    holidays: {ics: cal/closing.ics}
sla:
  plans:
    standard:
      calendar: office
      tiers:
        L1: {time_in_tier: 4h}
"""

ICS = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n"
    "BEGIN:VEVENT\r\nUID:a@test\r\nDTSTAMP:20260101T000000Z\r\n"
    "DTSTART;VALUE=DATE:20261228\r\nDTEND;VALUE=DATE:20261230\r\nSUMMARY:Closed\r\n"
    "END:VEVENT\r\nEND:VCALENDAR\r\n"
)


def _write(tmp_path: Path, ics: str | bytes | None = ICS) -> Path:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY, encoding="utf-8")
    if ics is not None:
        (tmp_path / "cal").mkdir()
        target = tmp_path / "cal" / "closing.ics"
        if isinstance(ics, bytes):
            target.write_bytes(ics)
        else:
            target.write_text(ics, encoding="utf-8", newline="")
    return policy


def test_files_named_lists_each_ics_once_and_nothing_for_unreadable_text() -> None:
    text = POLICY + "  other:\n"  # not a calendar: still only the one file
    assert files_named(POLICY) == ("cal/closing.ics",)
    assert files_named(text) == ("cal/closing.ics",)
    assert files_named("calendars: [1, 2") == ()
    assert files_named("calendars: {a: {holidays: {ics: 7}}}") == ()


def test_the_ics_dates_are_holidays_of_the_calendar(tmp_path: Path) -> None:
    """Read relative to the policy file (not the working directory), its dates count."""
    path = _write(tmp_path)
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        policy = load_policy_file(path)
    finally:
        os.chdir(cwd)
    office = policy.sla.calendars["office"]
    assert office.is_holiday(date(2026, 12, 28)) and office.is_holiday(date(2026, 12, 29))
    assert not office.is_holiday(date(2026, 12, 30))
    # The file is part of the digest: a changed holiday file is a changed policy.
    other = load_policy(POLICY, source="p", files={"cal/closing.ics": ICS.replace("1230", "1231")})
    assert other.digest != policy.digest


def test_policy_check_accepts_the_shipped_policy_with_its_ics_file() -> None:
    result = CliRunner().invoke(main, ["policy", "check", str(HOSTING)])
    assert result.exit_code == 0, result.output
    policy = load_policy_file(HOSTING)
    team = policy.sla.calendars["systems-team"]
    assert team.is_holiday(date(2026, 12, 24))   # from holidays/hosting-maintenance.ics
    assert team.is_holiday(date(2027, 5, 7))     # from the same file
    assert team.is_holiday(date(2026, 4, 27))    # King's Day, from the holidays package


@pytest.mark.parametrize(("ics", "said"), [
    (None, "no such file"),
    (b"\xff\xfe not utf-8", "is not UTF-8 text"),
    ("hello, not a calendar", "not an iCalendar file"),
    (ICS.replace("DTSTART;VALUE=DATE:20261228", "DTSTART;VALUE=DATE:2026xx"),
     "has a date that cannot be read"),
])
def test_policy_check_names_the_key_the_file_and_what_is_wrong(
    tmp_path: Path, ics: str | bytes | None, said: str
) -> None:
    path = _write(tmp_path, ics)
    result = CliRunner().invoke(main, ["policy", "check", str(path)])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    problem = next(line for line in lines if "holidays.ics" in line)
    assert problem.startswith(f"{path}: calendars.office.holidays.ics: ")
    assert said in problem and "(line 10)" in problem
    if ics is None:
        assert str(tmp_path / "cal" / "closing.ics") in problem
        assert f"relative path is read from the directory of {path}" in problem
    assert lines[-1] == f"{path}: 1 problem(s); the policy was refused."


def test_other_problems_are_reported_with_the_missing_file(tmp_path: Path) -> None:
    """One pass: the missing file does not hide the policy's other problems."""
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY.replace("default_tier: L1", "default_tier: L7"), encoding="utf-8")
    with pytest.raises(PolicyError) as caught:
        load_policy_file(path)
    where = [p.path for p in caught.value.problems]
    assert "calendars.office.holidays.ics" in where and "default_tier" in where


def test_read_named_files_reports_an_oversized_file(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("webhooks.defaults.MAX_ICS_BYTES", 10)
    path = _write(tmp_path)
    files, unreadable = read_named_files(path, POLICY)
    assert files == {} and "over the 10-byte limit" in unreadable["cal/closing.ics"]


def test_decide_reads_the_ics_file(tmp_path: Path) -> None:
    path = _write(tmp_path)
    ticket = tmp_path / "t.json"
    ticket.write_text('{"key": "T-1", "subject": "hello"}', encoding="utf-8")
    result = CliRunner().invoke(main, ["decide", "--policy", str(path), str(ticket)])
    assert result.exit_code == 0, result.output
    (tmp_path / "cal" / "closing.ics").unlink()
    result = CliRunner().invoke(main, ["decide", "--policy", str(path), str(ticket)])
    assert result.exit_code == 1 and "calendars.office.holidays.ics" in result.output


def test_the_service_edge_reads_the_ics_file_or_says_what_is_missing(tmp_path: Path) -> None:
    path = _write(tmp_path)
    settings = load_settings(policy=path)
    policy = load_policy_for(settings)
    assert policy.sla.calendars["office"].is_holiday(date(2026, 12, 28))
    (tmp_path / "cal" / "closing.ics").unlink()
    with pytest.raises(ServiceError) as caught:
        load_policy_for(settings)
    assert "calendars.office.holidays.ics" in str(caught.value)
    assert "no such file" in str(caught.value)


def test_reload_follows_a_changed_ics_file_and_refuses_a_broken_one(tmp_path: Path) -> None:
    path = _write(tmp_path)
    holder = PolicyHolder(path, load_policy_file(path))
    watcher = PolicyWatcher(holder, interval=60)
    assert holder.reload().changed is False  # same text, same files: nothing new
    assert watcher.check() is None
    ics = tmp_path / "cal" / "closing.ics"
    ics.write_text(ICS.replace("DTEND;VALUE=DATE:20261230", "DTEND;VALUE=DATE:20261231"),
                   encoding="utf-8", newline="")
    result = watcher.check()  # the holiday file's change is seen by the watcher
    assert result is not None and result.changed
    assert holder.current.sla.calendars["office"].is_holiday(date(2026, 12, 30))
    ics.write_text("garbage", encoding="utf-8")
    result = watcher.check()
    assert result is not None and not result.changed
    assert any("not an iCalendar file" in e for e in result.errors)
    assert holder.current.sla.calendars["office"].is_holiday(date(2026, 12, 30))


def test_policy_diff_and_plan_read_the_ics_file(tmp_path: Path) -> None:
    """`policy diff` (and `tierdesk plan`, which loads its files the same way: load_for_diff)
    read the ICS file: present, the policies load; missing, the key is named."""
    path = _write(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    moved = _write(other)
    result = CliRunner().invoke(main, ["policy", "diff", str(path), str(moved)])
    assert result.exit_code == 0 and "no semantic differences" in result.output
    (other / "cal" / "closing.ics").unlink()
    result = CliRunner().invoke(main, ["policy", "diff", str(path), str(moved)])
    assert result.exit_code == 1 and "calendars.office.holidays.ics" in result.output
    assert "no such file" in result.output
