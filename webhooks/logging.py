"""Structured logs: one JSON object per line on stderr, carrying vendor, delivery_id and ticket.

Use `log(event, **fields)` (or the stdlib logger `tierdesk` with `extra={"fields": {...}}`).
Never pass a secret, a token or a whole payload: fields are logged as given. A warning that
every event or thread would repeat is said once a window (`LogThrottle`).
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

LOGGER_NAME = "tierdesk"
logger = logging.getLogger(LOGGER_NAME)


class JsonFormatter(logging.Formatter):
    """Render a record as one JSON line: ts, level, event (the message) and its fields."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            out.update(fields)
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)


def configure_logging(level: str = "INFO") -> None:
    """Send tierdesk's and uvicorn's logs to stderr as JSON lines (idempotent)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    for name in (LOGGER_NAME, "uvicorn", "uvicorn.error"):
        target = logging.getLogger(name)
        target.handlers[:] = [handler]
        target.setLevel(level)
        target.propagate = False
    # One access line per webhook would drown the structured receiver logs; the receiver logs
    # each delivery itself.
    logging.getLogger("uvicorn.access").disabled = True


def log(event: str, *, level: int = logging.INFO, **fields: Any) -> None:
    """Log `event` with `fields` (vendor=, delivery_id=, ticket=, ...)."""
    if logger.isEnabledFor(level):
        logger.log(level, event, extra={"fields": fields})


class LogThrottle:
    """Whether a line is the first about `what` in its window of `seconds`: a warning every
    event and every worker thread would repeat is logged once a window. Thread-safe; one per
    process (webhooks/service.py shares it between the worker threads)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._said: dict[str, float] = {}
        self._lock = threading.Lock()
        self._clock = clock

    def first_in(self, what: str, seconds: float) -> bool:
        """True for the first call about `what` in each `seconds` window."""
        now = self._clock()
        with self._lock:
            last = self._said.get(what)
            if last is not None and now - last < seconds:
                return False
            self._said[what] = now
            return True
