"""Hostile policies and hostile ticket text: linear-time regexes, capped text, bounded YAML."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime

import pytest
import yaml

from tiering import PolicyError, Ticket, load_policy
from tiering.engine import first_matching_rule
from tiering.patterns import MAX_MATCH_CHARS
from tiering.policy_yaml import MAX_POLICY_BYTES, MAX_POLICY_DEPTH
from webhooks.defaults import default_policy_text

EXAMPLE = default_policy_text()
NOW = datetime(2026, 1, 1, tzinfo=UTC)

#: Patterns that backtrack catastrophically on Python's `re` and that RE2 runs in linear time;
#: bench/hostile.py times each on 64 KB of hostile text.
EXPONENTIAL = [
    r"(a+)+$",        # nested quantifiers: the classic
    r"(a|aa)+$",      # overlapping alternation
    r"(a|a?)+$",      # optional inside a repeat
    r"(\w+\s?)+$",    # the "words" pattern met in real validators
    r"^(a+)+b",       # anchored at the start
]


def _policy_with_rule(regex: str) -> str:
    data = yaml.safe_load(EXAMPLE)
    data["rules"].insert(0, {"name": "hostile", "when": {"text_regex": regex}, "tier": "L2"})
    return yaml.safe_dump(data, sort_keys=False)


def _policy_with_pattern(pattern: str) -> str:
    data = yaml.safe_load(EXAMPLE)
    data["documentation"]["L2"][1]["pattern"] = pattern
    return yaml.safe_dump(data, sort_keys=False)


def test_exponential_pattern_finishes_on_hostile_text() -> None:
    """`(a+)+$` against 'a'*40 + '!' returns at once (it never finished on Python's re)."""
    # A child process, so that a regression (a backtracking engine) fails by the timeout below
    # instead of freezing the test run; the bound is one of termination, not of speed.
    code = (
        "import sys\n"
        "from datetime import UTC, datetime\n"
        "from tiering import Ticket, decide, load_policy\n"
        "policy = load_policy(sys.stdin.read())\n"
        "ticket = Ticket(key='T-1', description='a' * 40 + '!')\n"
        "print(decide(ticket, policy, now=datetime(2026, 1, 1, tzinfo=UTC)).tier)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], input=_policy_with_rule(r"(a+)+$"),
                          capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "L1"  # no match: the default tier


# Each row: a pathological pattern, a text, and whether the pattern matches it (as on `re`).
MATCHES = [
    # the text ends in a run of a's: matches
    (r"(a+)+$", "a" * 30, True),
    # one character spoils the end: no match, found in linear time
    (r"(a+)+$", "a" * 30 + "!", False),
    # overlapping alternation, matching and not
    (r"(a|aa)+$", "xaaaa", True),
    (r"(a|aa)+$", "a" * 30 + "!", False),
    # the "words" pattern
    (r"(\w+\s?)+$", "word " * 10 + "!", False),
    # anchored at a line start (the description follows the subject's line), b present
    (r"(?m)^(a+)+b", "a" * 30 + "b", True),
]


@pytest.mark.parametrize(("regex", "text", "hit"), MATCHES)
def test_exponential_patterns_match_as_written(regex: str, text: str, hit: bool) -> None:
    """Each pathological pattern is accepted and matches exactly what it says, on RE2."""
    policy = load_policy(_policy_with_rule(regex))
    rule = first_matching_rule(policy, Ticket(key="T-1", description=text), None)
    assert (rule is not None and rule.name == "hostile") is hit


# Each row: a pattern RE2 cannot run in linear time, and the reason `policy check` gives.
REFUSED = [
    # a backreference needs backtracking
    (r"(\w+) \1", "invalid escape sequence: \\1"),
    # lookahead
    (r"crash(?=ing)", "invalid perl operator: (?="),
    # negative lookbehind
    (r"(?<!not )working", "invalid perl operator: (?<!"),
    # a possessive repeat
    (r"a*+b", "bad repetition operator: *+"),
    # a repetition count over RE2's limit of 1000
    (r"a{1001}", "invalid repetition size: {1001}"),
]

HINT = (" (policy patterns run on RE2, in linear time: no backreferences, lookaround, possessive"
        " repeats or counts over 1000)")


@pytest.mark.parametrize(("regex", "reason"), REFUSED, ids=[r[0] for r in REFUSED])
def test_rule_regex_refused_with_reason_and_path(regex: str, reason: str) -> None:
    """A text_regex RE2 cannot run is refused, naming the key path and RE2's reason."""
    with pytest.raises(PolicyError) as info:
        load_policy(_policy_with_rule(regex), source="p.yaml")
    assert [line.split(" (line")[0] for line in info.value.lines] == [
        f"p.yaml: rules[0].when.text_regex: invalid regular expression: {reason}{HINT}"
        .split(" (line")[0]
    ]
    assert info.value.lines[0].endswith(HINT + f" (line {_rule_line(info.value.lines[0])})")


def _rule_line(line: str) -> str:
    return line.rsplit("(line ", 1)[1].rstrip(")")


@pytest.mark.parametrize(("regex", "reason"), REFUSED, ids=[r[0] for r in REFUSED])
def test_documentation_pattern_refused_with_reason_and_path(regex: str, reason: str) -> None:
    """A documentation pattern RE2 cannot run is refused the same way, under its own key."""
    with pytest.raises(PolicyError) as info:
        load_policy(_policy_with_pattern(regex), source="p.yaml")
    assert len(info.value.lines) == 1
    assert info.value.lines[0].startswith(
        f"p.yaml: documentation.L2[1].pattern: invalid regular expression: {reason}{HINT}")


def test_policy_check_refuses_a_backreference(tmp_path: pytest.TempPathFactory) -> None:
    """`tierdesk policy check` exits 1 and prints the key path and RE2's reason."""
    from click.testing import CliRunner

    from webhooks.cli import main

    path = tmp_path / "p.yaml"  # type: ignore[operator]
    path.write_text(_policy_with_rule(r"(\w+) \1"), encoding="utf-8")
    result = CliRunner().invoke(main, ["policy", "check", str(path)])
    assert result.exit_code == 1
    assert f"{path}: rules[0].when.text_regex: invalid regular expression: invalid escape" \
        " sequence: \\1" in result.output


# Each row: where a rule's term sits in the description, and whether the rule sees it.
CAP = [
    # inside the cap: matched
    (MAX_MATCH_CHARS - 100, "hostile"),
    # past the cap: the text there is never looked at
    (MAX_MATCH_CHARS + 100, None),
]


@pytest.mark.parametrize(("offset", "rule"), CAP)
def test_text_matched_is_capped(offset: int, rule: str | None) -> None:
    """Rules see the first MAX_MATCH_CHARS characters of subject + description, no more."""
    policy = load_policy(_policy_with_rule(r"needle\d"))
    description = "x" * offset + " needle7 "
    found = first_matching_rule(policy, Ticket(key="T-1", description=description), None)
    assert (found.name if found is not None else None) == rule


BOMB = """version: 1
tiers: [L0, L1]
default_tier: L1
a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
"""

# Each row: a YAML attack and the one problem it is refused with.
YAML_ATTACKS = [
    # billion laughs: aliases are refused where the first one is used
    ("aliases", BOMB,
     "p.yaml: YAML aliases (*a) are not allowed in a policy: write the value out in full"
     " (line 5)"),
    # a merge key is an alias too
    ("merge-key", "version: 1\nbase: &b {max_tier: L1}\nplans:\n  gold:\n    <<: *b\n",
     "p.yaml: YAML aliases (*b) are not allowed in a policy: write the value out in full"
     " (line 5)"),
    # deep flow nesting, which recursed in the composer
    ("deep-lists", "version: 1\nx: " + "[" * 5000 + "]" * 5000 + "\n",
     f"p.yaml: nested deeper than {MAX_POLICY_DEPTH} levels (a policy needs about 6) (line 2)"),
    # deep block nesting
    ("deep-mappings",
     "version: 1\n" + "".join(" " * i + f"k{i}:\n" for i in range(60)) + " " * 60 + "v: 1\n",
     f"p.yaml: nested deeper than {MAX_POLICY_DEPTH} levels (a policy needs about 6)"
     f" (line {MAX_POLICY_DEPTH + 2})"),
    # a file over the size cap is refused before it is parsed
    ("too-large", "version: 1\n# " + "x" * MAX_POLICY_BYTES + "\n",
     f"p.yaml: the file is {MAX_POLICY_BYTES + 14} bytes, over the {MAX_POLICY_BYTES}-byte"
     " limit of a policy (split long customer lists across fewer, broader matches)"),
]


@pytest.mark.parametrize(("case", "text", "message"), YAML_ATTACKS,
                         ids=[a[0] for a in YAML_ATTACKS])
def test_yaml_attacks_are_refused(case: str, text: str, message: str) -> None:
    """Aliases, deep nesting and oversized files are refused with one plain problem."""
    with pytest.raises(PolicyError) as info:
        load_policy(text, source="p.yaml")
    assert info.value.lines == [message]


def test_recursion_error_becomes_a_policy_problem() -> None:
    """A RecursionError while loading (here: a low recursion limit) is an ordinary problem."""
    nested = "version: 1\nx: " + "[" * (MAX_POLICY_DEPTH - 2) + "]" * (MAX_POLICY_DEPTH - 2)
    frames = 0
    frame = sys._getframe()
    while frame.f_back is not None:
        frames += 1
        frame = frame.f_back
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(frames + 25)  # room for load_policy, not for the nested lists
    try:
        with pytest.raises(PolicyError) as info:
            load_policy(nested, source="p.yaml")
    finally:
        sys.setrecursionlimit(old)
    assert info.value.lines == [
        "p.yaml: nested too deeply to read; a policy needs about 6 levels of nesting"]


def test_policy_check_refuses_a_bomb_quickly(tmp_path: pytest.TempPathFactory) -> None:
    """`policy check` on the billion-laughs file exits 1 with the alias problem."""
    from click.testing import CliRunner

    from webhooks.cli import main

    path = tmp_path / "bomb.yaml"  # type: ignore[operator]
    path.write_text(BOMB, encoding="utf-8")
    result = CliRunner().invoke(main, ["policy", "check", str(path)])
    assert result.exit_code == 1
    assert "YAML aliases (*a) are not allowed in a policy" in result.output


def test_policy_file_over_the_cap_is_not_read_whole(tmp_path: pytest.TempPathFactory) -> None:
    """read_policy_file refuses a file over the cap (a 64 MB one here) without reading it all."""
    from webhooks.defaults import read_policy_file

    path = tmp_path / "huge.yaml"  # type: ignore[operator]
    with path.open("wb") as handle:
        handle.truncate(64 * 1024 * 1024)  # sparse: costs no disk
    with pytest.raises(PolicyError) as info:
        read_policy_file(path)
    assert info.value.lines == [
        f"{path}: the file is over the {MAX_POLICY_BYTES}-byte limit of a policy"]


# Each row: a hostile file saved over the policy of a running service, and the problem logged.
RELOAD_ATTACKS = [
    # billion laughs
    ("aliases", BOMB.encode(), "YAML aliases (*a) are not allowed in a policy"),
    # deep nesting
    ("deep", b"version: 1\nx: " + b"[" * 100_000 + b"]" * 100_000, "nested deeper than 32"),
    # a file far over the size cap
    ("huge", b"version: 1\n# " + b"x" * (8 * MAX_POLICY_BYTES), "over the 262144-byte limit"),
]


@pytest.mark.parametrize(("case", "content", "problem"), RELOAD_ATTACKS,
                         ids=[a[0] for a in RELOAD_ATTACKS])
def test_reload_refuses_hostile_files_and_keeps_the_policy(
    tmp_path: pytest.TempPathFactory, case: str, content: bytes, problem: str
) -> None:
    """The reload inside serve (PolicyHolder.reload, what the watcher and SIGHUP call) refuses
    each YAML attack with its problem and keeps the policy in force."""
    from webhooks.reload import PolicyHolder, PolicyWatcher

    path = tmp_path / "policy.yaml"  # type: ignore[operator]
    path.write_text(EXAMPLE, encoding="utf-8")
    holder = PolicyHolder(path, load_policy(EXAMPLE, source=str(path)))
    watcher = PolicyWatcher(holder)
    before = holder.current
    path.write_bytes(content)
    result = watcher.check()
    assert result is not None and not result.changed
    assert holder.current is before
    assert len(holder.last_error) == 1 and problem in holder.last_error[0], holder.last_error
