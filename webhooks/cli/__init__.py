"""The `tierdesk` command line: one group, each area's commands registered from its own module."""

from __future__ import annotations

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="tierdesk")
def main() -> None:
    """tierdesk: tiered support for Jira and Zendesk, driven by one YAML tier policy."""


@main.group(name="install")
def install_group() -> None:
    """Register tierdesk's webhooks (and triggers) with a vendor."""


@main.group(epilog="Settings, the policy and the inbox database (TIERDESK_DATABASE_URL) come"
            " from TIERDESK_* environment variables or a .env file in the current directory.",
            name="backfill")
def backfill_group() -> None:
    """Queue existing tickets for evaluation."""


def _register() -> None:
    from webhooks.cli import policy

    policy.register(main)
    from webhooks.cli import service

    service.register(main)
    from webhooks.cli import sandbox

    sandbox.register(main)
    from webhooks.cli import demo

    demo.register(main)
    from webhooks.cli import jira

    jira.register(main)
    from webhooks.cli import zendesk

    zendesk.register(main)
    from webhooks.cli import doctor

    doctor.register(main)
    from webhooks.cli import sla

    sla.register(main)
    from webhooks.cli import plan

    plan.register(main)


#: The top-level command list's one-liners: whole sentences short enough for an 80-column
#: terminal (click would cut a longer first sentence mid-way with "...").
SHORT_HELP = {
    "backfill": "Queue existing tickets for evaluation.",
    "dead-letters": "List, show and replay events tierdesk gave up on.",
    "decide": "Print the decision for vendor-neutral tickets.",
    "demo": "Show tierdesk at work on a local Jira and Zendesk.",
    "doctor": "Check an installation against each vendor, read-only.",
    "explain": "Show one ticket's decisions and SLA clocks with reasons.",
    "install": "Register tierdesk's webhooks with a vendor.",
    "migrate": "Create or update the inbox database.",
    "plan": "Show what a policy change would do to tickets.",
    "policy": "Work with tier policy files.",
    "prune": "Delete old processed events and decisions.",
    "sandbox": "Run a local Jira and Zendesk for trials.",
    "serve": "Run the webhook receiver and the worker.",
    "sla": "List open SLA and OLA clocks.",
    "worker": "Run the worker alone (split deployments).",
}


_register()
for _name, _text in SHORT_HELP.items():
    if _name in main.commands:
        main.commands[_name].short_help = _text
