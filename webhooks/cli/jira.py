"""`tierdesk install jira` and `tierdesk backfill jira`: thin shells over connectors.jira.admin."""

from __future__ import annotations

import json
from typing import Any

import click

from connectors.base import ConnectorError
from connectors.jira.admin import (
    DC10_WEBHOOK_PATH,
    DEFAULT_WEBHOOK_NAME,
    PAGE_SIZE,
    AdminError,
    JiraAdmin,
    check_jql,
)
from connectors.jira.config import JiraConfig
from webhooks.backfill_command import BACKFILL_EPILOG, backfill_command
from webhooks.command_settings import admin_settings, verbose_option


def _jira_config(settings: Any) -> JiraConfig:
    config: JiraConfig | None = settings.jira_config()
    if config is None:
        raise click.ClickException(
            "Jira is not configured: set TIERDESK_JIRA_URL and either TIERDESK_JIRA_PAT (Data"
            " Center) or TIERDESK_JIRA_EMAIL + TIERDESK_JIRA_API_TOKEN (Cloud)"
        )
    return config


@click.command("jira")
@click.option("--callback-url", required=True,
              help="Absolute URL Jira should call, e.g. https://tierdesk.example.com/webhooks/jira")
@click.option("--jql", default=None,
              help='Only issues matching this JQL, e.g. "project in (SUP, OPS)".')
@click.option("--name", default=DEFAULT_WEBHOOK_NAME, show_default=True,
              help="Webhook name: an existing webhook of this name is updated in place.")
@click.option("--dry-run", is_flag=True, help="Print the request without sending it.")
@click.option("--rotate-secret", is_flag=True,
              help="Send TIERDESK_JIRA_WEBHOOK_SECRET to an existing webhook as its new secret;"
                   " needs TIERDESK_JIRA_WEBHOOK_SECRET_PREVIOUS set (see the admin guide).")
def install_jira(
    callback_url: str, jql: str | None, name: str, dry_run: bool, rotate_secret: bool
) -> None:
    """Register (or update, matched by name) tierdesk's Jira admin webhook.

    A rerun keeps the receiver's secret (TIERDESK_JIRA_WEBHOOK_SECRET); only --rotate-secret
    changes it."""
    settings = admin_settings()
    config = _jira_config(settings)
    secret = settings.webhook_secret("jira")
    try:
        result = JiraAdmin.from_config(config).install_webhook(
            callback_url=callback_url, jql=jql, name=name, dry_run=dry_run,
            secret=secret, previous_secret=settings.previous_webhook_secret("jira"),
            rotate=rotate_secret,
        )
    except AdminError as exc:
        raise click.BadParameter(str(exc)) from exc
    except ConnectorError as exc:
        raise click.ClickException(f"installing the Jira webhook failed: {exc}") from exc
    plan = result.plan
    if dry_run:
        shown = {**plan.body}
        hidden = "<TIERDESK_JIRA_WEBHOOK_SECRET>" if secret else "<generated for a new webhook>"
        if "secret" in shown:
            shown["secret"] = hidden
        click.echo(f"Dry run: nothing sent. tierdesk would send to {config.base_url}:")
        click.echo("  GET /rest/api/2/serverInfo   (Data Center 10 and later: the same body with"
                   f" the secret in configuration.SECRET, sent to {DC10_WEBHOOK_PATH})")
        click.echo(f"  GET {plan.path}   (to find a webhook named {name!r})")
        click.echo(f"  then POST {plan.path}, or PUT {plan.path}/<id> if it exists, with:")
        click.echo(json.dumps(shown, indent=2))
        return
    site = result.api.site if result.api is not None else "Jira"
    click.echo(f"Jira webhook {name!r} {result.action} on {site} ({plan.method} {plan.path}).")
    if result.webhook_url:
        click.echo(f"  {result.webhook_url}")
    if secret and result.secret == secret:
        if rotate_secret:
            click.echo("Jira now signs with TIERDESK_JIRA_WEBHOOK_SECRET. Once deliveries signed"
                       " with the previous secret have drained (Jira Cloud retries for up to"
                       " about 30 minutes), unset TIERDESK_JIRA_WEBHOOK_SECRET_PREVIOUS and"
                       " restart tierdesk serve.")
        else:
            click.echo("The webhook keeps TIERDESK_JIRA_WEBHOOK_SECRET (nothing to change).")
        return
    click.echo("Set this in tierdesk's environment, then restart tierdesk serve:")
    click.echo(f"TIERDESK_JIRA_WEBHOOK_SECRET={result.secret}")


@click.command("jira", epilog=BACKFILL_EPILOG)
@click.option("--jql", required=True,
              help='Which issues, e.g. "project = SUP AND resolution IS EMPTY".')
@click.option("--dry-run", is_flag=True,
              help="Print per issue what would change; enqueue and write nothing.")
@click.option("--page-size", type=click.IntRange(1, 100), default=PAGE_SIZE, show_default=True,
              help="Issues read per search request (one request per page).")
@verbose_option
def backfill_jira(jql: str, dry_run: bool, page_size: int, verbose: bool) -> None:
    """Queue every issue matching JQL for evaluation (the worker applies the policy)."""
    from webhooks.service import ServiceError, load_policy_for

    try:
        check_jql(jql)
    except AdminError as exc:
        raise click.BadParameter(str(exc)) from exc
    settings = admin_settings()
    config = _jira_config(settings)
    try:
        policy = load_policy_for(settings)
    except ServiceError as exc:
        raise click.ClickException(str(exc)) from exc
    admin = JiraAdmin.from_config(config, policy)
    admin.page_size = page_size
    backfill_command(admin, query=jql, policy=policy, settings=settings, dry_run=dry_run,
                     verbose=verbose)


def register(main: click.Group) -> None:
    """Add `install jira` and `backfill jira` to the `tierdesk` group."""
    install = main.commands["install"]
    backfill = main.commands["backfill"]
    assert isinstance(install, click.Group) and isinstance(backfill, click.Group)
    install.add_command(install_jira)
    backfill.add_command(backfill_jira)
