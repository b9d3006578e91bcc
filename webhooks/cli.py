"""The `tierdesk` command line: one group, each area's commands registered from its own module."""

from __future__ import annotations

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="tierdesk")
def main() -> None:
    """tierdesk: tiered support for Jira and Zendesk, driven by one YAML tier policy."""


@main.group()
def install() -> None:
    """Register tierdesk's webhooks (and triggers) with a vendor."""


@main.group()
def backfill() -> None:
    """Queue existing tickets for evaluation."""


def _register() -> None:
    from webhooks import cli_policy

    cli_policy.register(main)
    from webhooks import cli_service

    cli_service.register(main)
    from webhooks import cli_sandbox

    cli_sandbox.register(main)
    from webhooks import cli_demo

    cli_demo.register(main)
    from webhooks import cli_jira

    cli_jira.register(main)
    from webhooks import cli_zendesk

    cli_zendesk.register(main)
    from webhooks import cli_doctor

    cli_doctor.register(main)


_register()
