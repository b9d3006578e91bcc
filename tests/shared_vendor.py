"""Where the shared vendor material lives: `shared/vendor/` beside the project root (as CI lays it
out), else the workplace's `/work/shared/vendor`."""

from __future__ import annotations

from pathlib import Path

_REPO = Path(__file__).resolve().parents[1]
_CANDIDATES = (_REPO.parent / "shared" / "vendor", Path("/work/shared/vendor"))

#: The vendor folder: real webhook payloads, signature vectors and the Jira OpenAPI description.
VENDOR = next((c for c in _CANDIDATES if c.is_dir()), _CANDIDATES[0])
