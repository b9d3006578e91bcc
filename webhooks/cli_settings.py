"""The settings as the admin commands (`install`, `backfill`) read them: a bad setting is a clean
command-line error naming it, not a traceback."""

from __future__ import annotations

import click

from webhooks.settings import Settings, SettingsError, load_settings


def admin_settings() -> Settings:
    """Load the settings or raise click.ClickException listing every bad variable."""
    try:
        return load_settings()
    except SettingsError as exc:
        raise click.ClickException(f"invalid settings:\n{exc}") from exc
