"""Opening the inbox for a command or the service: read-only commands never create a database,
and `verbose` names the database opened.

The default `TIERDESK_DATABASE_URL` (`sqlite:///./tierdesk.db`) is relative to the current
directory, so `tierdesk explain` run in the wrong directory would otherwise create an empty
database there and answer "no events" with exit 0: a silent wrong answer. `open_inbox(...,
create=False)` refuses instead, with the URL resolved to an absolute path and how to point at
the right one.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

if TYPE_CHECKING:
    from webhooks.inbox.store import Inbox

#: The table every tierdesk inbox has (webhooks/inbox/migrations.py's first migration).
_MARKER_TABLE = "tierdesk_events"

_HOW_TO_POINT = (
    "run the command where the service runs (the same directory and .env), or set"
    " TIERDESK_DATABASE_URL (environment or .env) to the service's database, e.g."
    " sqlite:////var/lib/tierdesk/tierdesk.db or postgresql://tierdesk@db-host/tierdesk"
)


class InboxUnavailable(Exception):
    """The inbox cannot be opened; `lines` say what was tried and what to do."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        super().__init__("\n".join(lines))


def sqlite_path(url: str) -> Path | None:
    """The absolute path of a `sqlite:///` URL's file (relative paths are taken from the
    current directory, as SQLite does), or None for another database or a bad URL."""
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        return None
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    if parsed.database == ":memory:":
        return None
    return Path(parsed.database).expanduser().absolute()


def database_label(url: str) -> str:
    """The database as a person reads it: an absolute SQLite path, or the URL without its
    password."""
    path = sqlite_path(url)
    if path is not None:
        return f"SQLite file {path}"
    from webhooks.inbox.database import normalize_url

    try:
        return sa.engine.make_url(normalize_url(url)).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return url


def _missing(url: str) -> list[str] | None:
    """Why `url` holds no tierdesk inbox yet (so a read-only command must not open it), or
    None when it holds one or cannot be checked here (Inbox.connect then reports the error)."""
    path = sqlite_path(url)
    if path is not None:
        if path.is_file():
            return None
        return [
            f"no inbox database at {path} (TIERDESK_DATABASE_URL={url}"
            + ("; a relative path is taken from the current directory" if
               not Path(sa.engine.make_url(url).database or "").is_absolute() else "")
            + "); nothing was created.",
            f"  To fix: {_HOW_TO_POINT}.",
        ]
    from webhooks.inbox.database import normalize_url

    try:
        engine = sa.create_engine(normalize_url(url))
    except (sa.exc.ArgumentError, ImportError):
        return None
    try:
        with engine.connect() as conn:
            present = sa.inspect(conn).has_table(_MARKER_TABLE)
    except sa.exc.SQLAlchemyError:
        return None  # unreachable: Inbox.connect names the error
    finally:
        engine.dispose()
    if present:
        return None
    return [
        f"the database {database_label(url)} holds no tierdesk inbox (no {_MARKER_TABLE}"
        " table); nothing was created.",
        f"  To fix: {_HOW_TO_POINT}.",
    ]


def open_inbox(
    url: str, *, create: bool, verbose: bool = False, clock: Callable[[], float] = time.time
) -> Inbox:
    """Open the inbox at `url`. With `create=False` (read-only commands) a database that does
    not exist yet is refused rather than created. With `verbose` the database opened is named
    on stderr. `clock` (epoch seconds) is the inbox's time source. Raises InboxUnavailable."""
    from webhooks.inbox.database import InboxError
    from webhooks.inbox.store import Inbox

    if not create:
        problem = _missing(url)
        if problem is not None:
            raise InboxUnavailable(problem)
    try:
        inbox = Inbox.connect(url, clock=clock)
    except InboxError as exc:
        raise InboxUnavailable([str(exc)]) from None
    if verbose:
        print(f"tierdesk: opened the inbox database {database_label(url)}", file=sys.stderr)
    return inbox

