"""Suite-wide hooks: how the tests share out between pytest-xdist workers, and the end-to-end
figures table (measured in the workers, printed once by the controller).

The README's command runs the suite on 2 workers (pyproject's addopts: `-n 2 --dist loadfile`).
A test module is one unit of work, run by one worker in its order, so a module- or class-scoped
fixture (a sandbox and `tierdesk serve`, a seeded database) starts once, as without xdist.
Session-scoped fixtures start once in each worker that needs them. The modules in `SPLIT` are
long, and none of their tests shares a fixture with another: their tests go one by one to
whichever worker is free (a collection-time check warns if one of them gains a shared
fixture). Each worker collects the modules that have a `slow` test first, so the long units
start early and the quick modules fill in at the end. `-n 0` runs the suite in one process.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.harness import FIGURES

#: Modules whose tests are scheduled one by one: long tests that start their own processes and
#: share no module- or class-scoped fixture (the e2e `stack` is per session, so per worker).
SPLIT = frozenset({
    "tests/deploy/test_observability.py",
    "tests/e2e/test_decisions.py",
    "tests/e2e/test_jira_truths.py",
    "tests/policies/test_stories_e2e.py",
    "tests/policies/test_stories_timed.py",
    "tests/sandbox/test_demo.py",
    "tests/sandbox/test_stale_deliveries.py",
    "tests/webhooks/test_limits.py",
    "tests/webhooks/test_policy_reload.py",
    "tests/webhooks/test_processes.py",
})
#: Fixture scopes whose instance several tests of one module share.
SHARED_SCOPES = {"module", "class", "package"}
#: The key of a worker's end-to-end figures in its `workeroutput` (pytest-xdist).
FIGURES_KEY = "tierdesk_e2e_figures"


def _module(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def _shares_a_fixture(item: pytest.Item) -> bool:
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return False
    return any(
        fixturedef.scope in SHARED_SCOPES
        for name in info.names_closure
        for fixturedef in info.name2fixturedefs.get(name, ())
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _module(item.nodeid) in SPLIT and _shares_a_fixture(item):
            item.warn(pytest.PytestWarning(
                f"{item.nodeid} uses a module- or class-scoped fixture but its module is in"
                " tests/conftest.py's SPLIT: each xdist worker would set it up again; take the"
                " module out of SPLIT"))
    if hasattr(config, "workerinput"):  # an xdist worker: the long modules first (stable)
        slow = {_module(i.nodeid) for i in items if i.get_closest_marker("slow") is not None}
        slow |= SPLIT
        items.sort(key=lambda i: _module(i.nodeid) not in slow)


@pytest.hookimpl(optionalhook=True, tryfirst=True)  # before xdist's own
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """`--dist loadfile`, except that the tests of `SPLIT` modules are units of their own."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class SplitLoadFile(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = _module(nodeid)
            return nodeid if module in SPLIT else module

    # Units in collection order (the workers put the long ones first), not by test count.
    config.option.loadscopereorder = False
    return SplitLoadFile(config, log)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """In a worker: hand the figures measured here to the controller."""
    workeroutput: dict[str, Any] | None = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput[FIGURES_KEY] = [list(row) for row in FIGURES]


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """In the controller: collect a finished worker's figures (pytest-xdist hook)."""
    rows = getattr(node, "workeroutput", {}).get(FIGURES_KEY, [])
    FIGURES.extend((str(a), str(b), str(c)) for a, b, c in rows)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the figures the end-to-end tests measured, as a table."""
    if not FIGURES:
        return
    tr = terminalreporter
    tr.section("tierdesk end-to-end figures")
    w1 = max(len(r[0]) for r in FIGURES)
    w2 = max(len(r[1]) for r in FIGURES)
    tr.write_line(f"{'test':<{w1}}  {'figure':<{w2}}  value")
    tr.write_line(f"{'-' * w1}  {'-' * w2}  -----")
    for test, name, value in sorted(FIGURES, key=lambda row: row[0]):  # stable: rows in order
        tr.write_line(f"{test:<{w1}}  {name:<{w2}}  {value}")
