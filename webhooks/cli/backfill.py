"""What `tierdesk backfill <vendor>` shares across vendors: the progress bar and the output.

The per-ticket lines and the summary line come from connectors/backfill.py (one format for
every vendor) and go to stdout; the progress bar goes to stderr and only when stderr is a
terminal (tqdm's `disable=None`), so a piped or logged run holds the lines and nothing else.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm import tqdm

T = TypeVar("T")

#: Said by `tierdesk backfill --help` and each vendor's backfill help.
BACKFILL_EPILOG = (
    "Settings, the policy and the inbox database (TIERDESK_DATABASE_URL) come from TIERDESK_*"
    " environment variables or a .env file in the current directory. A progress bar is shown"
    " on stderr when it is a terminal."
)


def progress(items: Iterable[T], *, total: int | None) -> Iterator[T]:
    """`items`, with a progress bar on a terminal (length `total` when known)."""
    bar = tqdm(items, total=total, unit=" tickets", file=sys.stderr, disable=None, leave=False,
               dynamic_ncols=True)
    try:
        yield from bar
    finally:
        bar.close()
