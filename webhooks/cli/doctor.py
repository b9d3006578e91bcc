"""`tierdesk doctor`: check the installation against each configured vendor, read-only.

The checks live with their vendor (connectors/jira/doctor.py, connectors/zendesk/doctor.py);
this module builds the clients from the settings, adds the receiver's own checks (a webhook
secret per configured vendor), prints the table (or `--json`) and sets the exit status: 1 when
any check failed. `serve` runs the same checks (without the Zendesk test delivery, since its own
receiver is still starting) in a background thread and logs a one-line summary; it never
refuses to start because of them.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Sequence

import click

from connectors.base import ConnectorError
from connectors.checks import MARKS, Check, fail, ok
from tiering.policy import Policy
from webhooks.command_settings import admin_settings
from webhooks.logging import log
from webhooks.settings import Settings


def collect(
    settings: Settings,
    policy: Policy,
    *,
    public_url: str | None = None,
    projects: Sequence[str] = (),
    test_delivery: bool = True,
) -> list[Check]:
    """Every check for every configured vendor, in order."""
    checks: list[Check] = []
    base = public_url.rstrip("/") if public_url else None
    jira = settings.jira_config()
    if jira is not None:
        from connectors.jira import doctor as jira_doctor
        from connectors.jira.client import make_client

        checks += _receiver(settings, "jira")
        try:
            checks += jira_doctor.run_checks(
                make_client(jira), jira, policy,
                callback_url=f"{base}/webhooks/jira" if base else None, projects=projects,
            )
        except ConnectorError as exc:  # a read the checks did not expect to fail
            checks.append(fail("jira", "checks", str(exc), "run doctor again; see the error"))
    zendesk = settings.zendesk_config()
    if zendesk is not None:
        from connectors.zendesk import ZendeskConnector
        from connectors.zendesk import doctor as zendesk_doctor
        from connectors.zendesk.admin import ZendeskAdmin

        checks += _receiver(settings, "zendesk")
        try:
            admin = ZendeskAdmin(ZendeskConnector(zendesk, policy))
            checks += zendesk_doctor.run_checks(
                admin, callback_url=f"{base}/webhooks/zendesk" if base else None,
                test_delivery=test_delivery and bool(settings.webhook_secret("zendesk")),
            )
        except (ConnectorError, ValueError) as exc:
            checks.append(fail("zendesk", "checks", str(exc), "run doctor again; see the error"))
    if jira is None and zendesk is None:
        checks.append(fail("tierdesk", "vendors", "no vendor is configured",
                           "set TIERDESK_JIRA_URL or TIERDESK_ZENDESK_SUBDOMAIN and credentials"))
    return checks


def _receiver(settings: Settings, vendor: str) -> list[Check]:
    variable = f"TIERDESK_{vendor.upper()}_WEBHOOK_SECRET"
    if settings.webhook_secret(vendor) or settings.webhook_basic_auth(vendor) is not None:
        return [ok(vendor, "receiver secret", f"{variable} is set")]
    return [fail(vendor, "receiver secret", f"{variable} is not set: every delivery is refused",
                 f"set {variable} to the secret `tierdesk install {vendor}` printed")]


def render(checks: Sequence[Check]) -> str:
    """The table: one line per check, its fix below each failure or warning."""
    width = max((len(c.vendor) for c in checks), default=0)
    name_width = max((len(c.name) for c in checks), default=0)
    lines = []
    for c in checks:
        lines.append(f"{MARKS[c.status]} {c.vendor:<{width}}  {c.name:<{name_width}}  {c.detail}")
        if c.fix:
            lines.append(f"  {' ' * width}  {'':<{name_width}}  fix: {c.fix}")
    failed = sum(c.status == "fail" for c in checks)
    warned = sum(c.status == "warn" for c in checks)
    lines.append(f"{len(checks)} checks: {failed} failed, {warned} warnings")
    return "\n".join(lines)


def summary(checks: Sequence[Check]) -> str:
    """One line: counts, and the failed checks by name."""
    failed = [f"{c.vendor} {c.name}" for c in checks if c.status == "fail"]
    warned = sum(c.status == "warn" for c in checks)
    text = f"{len(checks) - len(failed) - warned} ok, {len(failed)} failed, {warned} warnings"
    return text + (f" ({'; '.join(failed)})" if failed else "")


def start_summary_thread(settings: Settings, policy: Policy) -> threading.Thread:
    """Run the checks in the background and log their one-line summary (for `serve`)."""

    def run() -> None:
        try:
            checks = collect(settings, policy, test_delivery=False)
        except Exception as exc:  # never stop the service for a check
            log("doctor checks could not run", level=30, error=repr(exc)[:300])
            return
        failed = any(c.status == "fail" for c in checks)
        log("doctor: " + summary(checks), level=30 if failed else 20,
            hint="run `tierdesk doctor` for the fixes" if failed else None)

    thread = threading.Thread(target=run, name="tierdesk-doctor", daemon=True)
    thread.start()
    return thread


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the checks as JSON.")
@click.option("--public-url", default=None,
              help="The receiver's public base URL (e.g. https://tierdesk.example.com): the"
                   " vendors' webhooks must call <URL>/webhooks/<vendor>.")
@click.option("--project", "projects", multiple=True,
              help="A Jira project key to check (default: the projects the webhook JQL names).")
def doctor(as_json: bool, public_url: str | None, projects: tuple[str, ...]) -> None:
    """Check each configured vendor (read-only; safe against production). Exit 1 on a failure."""
    from webhooks.service import ServiceError, load_policy_for

    settings = admin_settings()
    try:
        policy = load_policy_for(settings)
    except ServiceError as exc:
        raise click.ClickException(str(exc)) from exc
    checks = collect(settings, policy, public_url=public_url, projects=projects)
    if as_json:
        click.echo(json.dumps({"checks": [c.to_dict() for c in checks],
                               "failed": sum(c.status == "fail" for c in checks)}, indent=2))
    else:
        click.echo(render(checks))
    if any(c.status == "fail" for c in checks):
        sys.exit(1)


def register(main: click.Group) -> None:
    main.add_command(doctor)
