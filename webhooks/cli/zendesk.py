"""`tierdesk install zendesk` and `tierdesk backfill zendesk`: thin shells over
connectors.zendesk.admin."""

from __future__ import annotations

from typing import Any

import click

from connectors.base import ConnectorError
from connectors.zendesk.admin import ROTATION_NAME, WEBHOOK_NAME, InstallResult, ZendeskAdmin
from connectors.zendesk.config import ZendeskConfig
from connectors.zendesk.rotation import PREVIOUS_VARIABLE, RotationNotReady
from webhooks.backfill_command import BACKFILL_EPILOG, backfill_command
from webhooks.command_settings import admin_settings, verbose_option


def _admin(settings: Any) -> ZendeskAdmin:
    from connectors.zendesk import ZendeskConnector
    from webhooks.service import ServiceError, load_policy_for

    config: ZendeskConfig | None = settings.zendesk_config()
    if config is None:
        raise click.ClickException(
            "Zendesk is not configured: set TIERDESK_ZENDESK_SUBDOMAIN (or TIERDESK_ZENDESK_URL),"
            " TIERDESK_ZENDESK_EMAIL and TIERDESK_ZENDESK_API_TOKEN"
        )
    try:
        policy = load_policy_for(settings)
    except ServiceError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        return ZendeskAdmin(ZendeskConnector(config, policy))
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc


@click.command("zendesk")
@click.option("--callback-url", required=True,
              help="Absolute URL Zendesk should call, e.g."
                   " https://tierdesk.example.com/webhooks/zendesk")
@click.option("--dry-run", is_flag=True,
              help="Read what exists and print the writes install would send; send none.")
@click.option("--loop-guard", type=click.Choice(["user", "api"]), default="user",
              show_default=True,
              help="How the trigger skips tierdesk's own updates: 'user' (updater is not the bot,"
                   " TIERDESK_ZENDESK_USER_ID) or 'api' (update not made through the API).")
@click.option("--rotate-secret", is_flag=True,
              help="Rotate the signing secret with no delivery lost, by replacing the webhook:"
                   " the first run creates a second webhook and prints both secrets to set;"
                   " after serve restarts with them, the same command moves the trigger and"
                   " retires the old webhook (admin guide, \"Rotating a webhook secret\")."
                   " Rerun it to resume an interrupted rotation. Without it the secret is kept.")
def install_zendesk(callback_url: str, dry_run: bool, loop_guard: str,
                    rotate_secret: bool) -> None:
    """Create or update (matched by name) tierdesk's Zendesk webhook and trigger."""
    settings = admin_settings()
    admin = _admin(settings)
    try:
        result = admin.install_webhook(
            callback_url=callback_url, dry_run=dry_run,
            loop_guard="api" if loop_guard == "api" else "user",
            rotate_secret=rotate_secret, secret=settings.webhook_secret("zendesk"),
            previous_secret=settings.previous_webhook_secret("zendesk"),
        )
    except RotationNotReady as exc:
        _secret_lines(exc.result)
        raise click.ClickException(str(exc)) from exc
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    except ConnectorError as exc:
        raise click.ClickException(f"installing the Zendesk webhook failed: {exc}") from exc
    base = admin.connector.config.base_url
    if dry_run:
        click.echo(f"Dry run: nothing written. tierdesk would send to {base}:")
        for request in result.writes:
            click.echo(request.render())
        if not result.writes:
            click.echo("(no writes: the webhook and the triggers are up to date)")
        return
    reply = (f", public reply trigger {result.reply_trigger_id}"
             if result.reply_trigger_id else "")
    click.echo(f"Zendesk webhook {result.webhook_id}, trigger {result.trigger_id}{reply}:"
               f" {len(result.writes)} change(s) sent.")
    for request in result.writes:
        click.echo(f"  {request.method} {request.path}")
    if result.rotation is not None:
        _rotation_report(result, callback_url)
        return
    if result.secret_line:
        click.echo("Set this in tierdesk's environment:")
        click.echo(result.secret_line)


def _secret_lines(result: InstallResult) -> None:
    click.echo("Set both in tierdesk's environment and restart tierdesk serve (every replica):")
    click.echo(result.secret_line)
    click.echo(f"{PREVIOUS_VARIABLE}={result.previous_secret}")


def _rotation_report(result: InstallResult, callback_url: str) -> None:
    """What the rotation step did and what the admin does next."""
    if result.rotation == "started":
        click.echo(f"Rotation step 1 of 2 done: Zendesk webhook {result.webhook_id}"
                   f" ({ROTATION_NAME!r}) created beside {result.old_webhook_id}. The trigger"
                   f" still calls {result.old_webhook_id}, which signs with the current secret.")
        _secret_lines(result)
        click.echo("Then run the same command again, with those settings, to move the trigger to"
                   " the new webhook:")
        click.echo(f"  tierdesk install zendesk --rotate-secret --callback-url {callback_url}")
        return
    if result.writes:
        click.echo(f"Rotation step 2 of 2 done: the trigger calls webhook {result.webhook_id}, now"
                   f" named {WEBHOOK_NAME!r}; the old webhook"
                   f" {result.old_webhook_id or '(already gone)'} is deleted. Zendesk signs with"
                   " the new secret only.")
    else:
        click.echo(f"The rotation is finished: webhook {result.webhook_id} ({WEBHOOK_NAME!r})"
                   " signs with the current secret.")
    click.echo("Deliveries signed with the old secret may still arrive (in flight or retried): an"
               f" hour from now, unset {PREVIOUS_VARIABLE} and restart tierdesk serve. From then"
               " on the old secret is refused.")


@click.command("zendesk", epilog=BACKFILL_EPILOG)
@click.option("--query", required=True,
              help='Zendesk search query for tickets, e.g. "status<solved".')
@click.option("--dry-run", is_flag=True,
              help="Read each ticket and print what would change; enqueue and write nothing.")
@verbose_option
def backfill_zendesk(query: str, dry_run: bool, verbose: bool) -> None:
    """Queue every ticket the search matches for evaluation (the worker applies the policy)."""
    settings = admin_settings()
    admin = _admin(settings)
    backfill_command(admin, query=query, policy=admin.connector.policy, settings=settings,
                     dry_run=dry_run, verbose=verbose)


def register(main: click.Group) -> None:
    """Add `install zendesk` and `backfill zendesk` to the `tierdesk` group."""
    install_group = main.commands["install"]
    backfill_group = main.commands["backfill"]
    assert isinstance(install_group, click.Group) and isinstance(backfill_group, click.Group)
    install_group.add_command(install_zendesk)
    backfill_group.add_command(backfill_zendesk)
