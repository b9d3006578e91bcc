"""Fixtures of the receiver/inbox/worker tests: an inbox on SQLite and on PostgreSQL, a clock."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from urllib.parse import quote

import pytest
import sqlalchemy as sa

from webhooks.inbox.database import normalize_url
from webhooks.inbox.store import Inbox

PG_URL = os.environ.get("TIERDESK_TEST_DATABASE_URL")
PG_SKIP = "set TIERDESK_TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test to run"


class FakeClock:
    """A settable epoch-seconds clock for the inbox."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def _with_schema(url: str, schema: str) -> str:
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options={quote(f'-csearch_path={schema}')}"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    if not PG_URL:
        pytest.skip(PG_SKIP)
    schema = f"td_test_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(normalize_url(PG_URL))
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield _with_schema(PG_URL, schema)
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: os.PathLike[str]) -> str:
    """The same tests on SQLite (a temp file) and on PostgreSQL (a fresh schema)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/inbox.db"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
def inbox(db_url: str, clock: FakeClock) -> Iterator[Inbox]:
    box = Inbox.connect(db_url, clock=clock)
    try:
        yield box
    finally:
        box.close()


@pytest.fixture
def records() -> Iterator[list[logging.LogRecord]]:
    """What the `tierdesk` logger logs (its own handler: serve tests may stop propagation)."""
    got: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = got.append  # type: ignore[method-assign]
    logger = logging.getLogger("tierdesk")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield got
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
