"""`tierdesk policy check`, `policy schema`, `policy diff` and `tierdesk decide`: the policy
engine from the command line."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from tiering import Policy, PolicyError, decide, load_policy
from tiering.diff import diff_policies
from tiering.neutral import TicketFormatError, ticket_from_dict
from tiering.policy_models import policy_json_schema
from webhooks.defaults import EXAMPLE_POLICY_SOURCE, default_policy_text, load_policy_file


def read_policy(path: str | None) -> Policy:
    """Load the policy at `path`, or the embedded example when `path` is None.

    Raises click.ClickException with every problem listed when the file is missing or invalid."""
    if path is None:
        return load_policy(default_policy_text(), source=EXAMPLE_POLICY_SOURCE)
    try:
        # The policy and the ICS files its calendars name (relative to it).
        return load_policy_file(Path(path), source=path)
    except FileNotFoundError as exc:
        raise click.ClickException(f"{path}: no such policy file") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise click.ClickException(f"{path}: cannot read the policy file: {exc}") from exc
    except PolicyError as exc:
        raise click.ClickException(
            f"{len(exc.problems)} problem(s) in the policy:\n" + str(exc)
        ) from exc


@click.group("policy")
def policy_group() -> None:
    """Work with tier policy files."""


@policy_group.command("check")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
def check(files: tuple[str, ...]) -> None:
    """Validate policy FILES: list every problem (exit 1) or print a one-line summary."""
    failed = False
    for path in files:
        try:
            # Read through the size cap: a huge file is refused before it is read whole. The
            # ICS files its calendars name are read relative to it.
            policy = load_policy_file(Path(path), source=path)
        except FileNotFoundError:
            click.echo(f"{path}: no such policy file", err=True)
            failed = True
            continue
        except (OSError, UnicodeDecodeError) as exc:
            click.echo(f"{path}: cannot read the policy file: {exc}", err=True)
            failed = True
            continue
        except PolicyError as exc:
            for line in exc.lines:
                click.echo(line, err=True)
            click.echo(f"{path}: {len(exc.problems)} problem(s); the policy was refused.", err=True)
            failed = True
            continue
        click.echo(policy.summary())
    sys.exit(1 if failed else 0)


def schema_text() -> str:
    """The policy's JSON Schema as `policy schema` prints it (and deploy/policy.schema.json
    holds): indented, keys in the models' order, ending in a newline."""
    return json.dumps(policy_json_schema(), indent=2, ensure_ascii=False) + "\n"


@policy_group.command("schema")
def schema() -> None:
    """Print the JSON Schema of a policy file, for editors that complete and check YAML.

    Save it (or use deploy/policy.schema.json) and name it on a policy's first line:
    `# yaml-language-server: $schema=policy.schema.json`."""
    click.echo(schema_text(), nl=False)


def load_for_diff(path: str) -> Policy | None:
    """The policy at `path`, or None after printing why it cannot be used (as `check` does):
    `policy diff` and `plan` read their files so."""
    try:
        return load_policy_file(Path(path), source=path)
    except FileNotFoundError:
        click.echo(f"{path}: no such policy file", err=True)
    except (OSError, UnicodeDecodeError) as exc:
        click.echo(f"{path}: cannot read the policy file: {exc}", err=True)
    except PolicyError as exc:
        for line in exc.lines:
            click.echo(line, err=True)
        click.echo(f"{path}: {len(exc.problems)} problem(s); the policy was refused.", err=True)
    return None


@policy_group.command("diff")
@click.option("--exit-code", "exit_code", is_flag=True,
              help="Exit 2 when the policies differ (as `git diff --exit-code`), 0 when not.")
@click.argument("old", type=click.Path(dir_okay=False))
@click.argument("new", type=click.Path(dir_okay=False))
def diff(old: str, new: str, exit_code: bool) -> None:
    """Print what changes in meaning from policy OLD to NEW, one line per difference: tiers,
    rules (by name: added, removed, renamed, moved, changed), customers, documentation, plans,
    fields, targets, entitlement, calendars and sla. Comments and layout never show.

    Exit 0 (with --exit-code: 2 when anything differs), or 1 with the `policy check` problems
    when a file is invalid."""
    before, after = load_for_diff(old), load_for_diff(new)
    if before is None or after is None:
        sys.exit(1)
    lines = diff_policies(before, after)
    for line in lines:
        click.echo(line)
    if not lines:
        click.echo(f"{old} and {new}: no semantic differences")
    sys.exit(2 if lines and exit_code else 0)


@click.command("decide")
@click.option("--policy", "policy_path", type=click.Path(dir_okay=False),
              help="Policy file (default: the embedded example policy).")
@click.option("--now", "now_text", metavar="ISO-8601",
              help="Decide as of this time (default: the current time, UTC).")
@click.argument("tickets", nargs=-1, required=True, type=click.Path(dir_okay=False))
def decide_command(policy_path: str | None, now_text: str | None, tickets: tuple[str, ...]) -> None:
    """Print the decision for each vendor-neutral TICKET.json as JSON (one object per ticket)."""
    policy = read_policy(policy_path)
    if now_text is None:
        now = datetime.now(UTC)
    else:
        try:
            now = datetime.fromisoformat(now_text)
        except ValueError as exc:
            raise click.BadParameter(
                f"{now_text!r} is not an ISO-8601 time", param_hint="--now"
            ) from exc
    out = []
    for path in tickets:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise click.ClickException(f"{path}: no such ticket file") from exc
        except json.JSONDecodeError as exc:
            raise click.ClickException(
                f"{path}: not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
            ) from exc
        try:
            ticket = ticket_from_dict(data, source=path)
        except TicketFormatError as exc:
            raise click.ClickException(str(exc)) from exc
        out.append(decide(ticket, policy, now=now).to_dict())
    payload = out[0] if len(out) == 1 else out
    click.echo(json.dumps(payload, indent=2, ensure_ascii=False))


def register(main: click.Group) -> None:
    """Add `policy check`, `policy schema`, `policy diff` and `decide` to the `tierdesk` group."""
    main.add_command(policy_group)
    main.add_command(decide_command)
