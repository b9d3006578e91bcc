"""Environment variable names across deploy/: all are real settings, and the example lists all."""

from __future__ import annotations

import re

from tests.deploy.deployfiles import DEPLOY, SETTING_NAMES, deploy_files, env_file
from webhooks.settings import load_settings

EXAMPLE = DEPLOY / "tierdesk.env.example"


def test_example_lists_every_setting() -> None:
    """tierdesk.env.example names each Settings field (set or as an optional `#NAME=` line)."""
    names = {n for n in env_file(EXAMPLE, commented=True) if n.startswith("TIERDESK_")}
    missing, unknown = SETTING_NAMES - names, names - SETTING_NAMES
    assert not missing and not unknown, {"missing": missing, "unknown": unknown}


def test_example_loads_as_settings() -> None:
    """The example, used as it is, is accepted by the settings loader (no bad value in it)."""
    settings = load_settings(_env_file=str(EXAMPLE))
    assert str(settings.policy) == env_file(EXAMPLE)["TIERDESK_POLICY"]
    assert settings.database_url == env_file(EXAMPLE)["TIERDESK_DATABASE_URL"]


def test_example_sets_no_secret() -> None:
    """Secret variables are left commented out in the example (only placeholders elsewhere)."""
    active = env_file(EXAMPLE)
    for name in active:
        if any(w in name for w in ("TOKEN", "WEBHOOK_SECRET", "_PAT")):
            raise AssertionError(f"{name} is set in the example")


def test_every_tierdesk_name_in_deploy_is_a_setting() -> None:
    """No file under deploy/ mentions a TIERDESK_* variable that the settings do not read."""
    pattern = re.compile(r"\bTIERDESK_[A-Z0-9_]+")
    for path in deploy_files():
        found = set(pattern.findall(path.read_text(encoding="utf-8")))
        found.discard("TIERDESK_TEST_DATABASE_URL")
        assert found <= SETTING_NAMES, (path.name, found - SETTING_NAMES)
