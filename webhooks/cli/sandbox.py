"""`tierdesk sandbox`: run the local Jira and Zendesk emulators in the foreground."""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import click


def _faults_option(value: str | None) -> dict[str, Any] | None:
    """`--faults` takes JSON text or the path of a JSON file."""
    if not value:
        return None
    text = value
    if not value.lstrip().startswith("{"):
        path = Path(value)
        try:
            text = path.read_text("utf-8")
        except OSError as exc:
            raise click.BadParameter(
                f"{value}: not JSON and not a readable file ({exc.strerror}); pass JSON like"
                ' \'{"jira": {"rate_limit": {"requests": 5, "retry_after": 2}}}\''
            ) from exc
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise click.BadParameter(f"not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise click.BadParameter('expected an object like {"jira": {...}, "zendesk": {...}}')
    return data


@click.command("sandbox")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8081,
    show_default=True,
    help="Jira port (0: any free port).",
)
@click.option(
    "--zendesk-port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Zendesk port [default: --port + 1, or any free port when --port is 0].",
)
@click.option(
    "--seed",
    "seed_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Seed JSON file [default: the packaged sandbox/seed.json].",
)
@click.option(
    "--faults",
    "faults_text",
    default=None,
    metavar="JSON|FILE",
    help='Faults at start, e.g. \'{"zendesk": {"rate_limit": {"requests": 3, "retry_after":'
    ' 2}}, "jira": {"unavailable": {"seconds": 120}}}\'. Change them later with POST'
    " /_sandbox/faults.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the URLs as one JSON line.")
def sandbox(
    host: str,
    port: int,
    zendesk_port: int | None,
    seed_path: Path | None,
    faults_text: str | None,
    as_json: bool,
) -> None:
    """Run a local Jira and Zendesk (in memory, real HTTP, webhooks, faults) until Ctrl-C."""
    from sandbox.faults import FaultsInvalid
    from sandbox.server import run_in_thread
    from sandbox.state import SeedInvalid

    faults = _faults_option(faults_text)
    if zendesk_port is None:
        zendesk_port = 0 if port == 0 else port + 1
    try:
        handle = run_in_thread(
            seed=seed_path, host=host, jira_port=port, zendesk_port=zendesk_port, faults=faults
        )
    except (SeedInvalid, FaultsInvalid) as exc:
        raise click.ClickException(str(exc)) from exc
    except OSError as exc:
        raise click.ClickException(
            f"cannot listen on {host}:{port}/{zendesk_port}: {exc.strerror}; choose other"
            " ports with --port and --zendesk-port (0 picks free ones)"
        ) from exc
    stop = threading.Event()

    def _stop(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "jira_url": handle.jira_url,
                    "zendesk_url": handle.zendesk_url,
                    **handle.zenpy_env(),
                }
            ),
            nl=True,
        )
    else:
        env = handle.zenpy_env()
        click.echo(f"Jira sandbox     {handle.jira_url}    TIERDESK_JIRA_URL={handle.jira_url}")
        click.echo(
            f"Zendesk sandbox  {handle.zendesk_url}    TIERDESK_ZENDESK_URL={handle.zendesk_url}"
        )
        click.echo(
            f"  (zenpy clients: ZENPY_FORCE_SCHEME={env['ZENPY_FORCE_SCHEME']}"
            f" ZENPY_FORCE_NETLOC={env['ZENPY_FORCE_NETLOC']})"
        )
        click.echo(f"State, log, faults, agents: {handle.jira_url}/_sandbox/state  (Ctrl-C stops)")
    # A script reading the URLs through a pipe must get them now, not when the sandbox exits.
    sys.stdout.flush()
    try:
        stop.wait()
    finally:
        handle.stop()


def register(main: click.Group) -> None:
    """Add `tierdesk sandbox` to the command line."""
    main.add_command(sandbox)
