"""The settings as the commands read them: a bad setting is a clean command-line error naming
it (not a traceback), the environment warnings (echoed or logged), and the `-v` option.

Shared by the commands in webhooks/cli/; not a command itself, so it lives beside
webhooks/settings.py (what the settings are) rather than in cli/."""

from __future__ import annotations

import click

from webhooks.settings import Settings, SettingsError, environment_warnings, load_settings


def admin_settings() -> Settings:
    """Load the settings or raise click.ClickException listing every bad variable; warn (on
    stderr) about misspelt or unprefixed variable names."""
    try:
        settings = load_settings()
    except SettingsError as exc:
        raise click.ClickException(f"invalid settings:\n{exc}") from exc
    echo_environment_warnings()
    return settings


def echo_environment_warnings() -> None:
    """Print each variable-name mistake (webhooks/settings.py) as a warning on stderr."""
    for line in environment_warnings():
        click.echo(f"tierdesk: warning: {line}", err=True)


def log_environment_warnings() -> None:
    """Log each variable-name mistake as a warning (serve and worker log JSON lines)."""
    from webhooks.logging import log

    for line in environment_warnings():
        log("setting ignored", level=30, problem=line)


#: `-v/--verbose` of every command that opens the inbox.
verbose_option = click.option(
    "-v", "--verbose", is_flag=True, help="Say which inbox database was opened (on stderr)."
)
