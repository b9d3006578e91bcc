"""`tierdesk demo`: the whole chain on a local sandbox, with no account and no set-up.

The story and the process stack live in sandbox/story.py and sandbox/demo.py (what the demo
does, step by step, is in the latter's docstring); this module is the command.

`--jira-site dc9|dc10` plays the Jira story on a Data Center 9 or 10 sandbox instead of Cloud
(assignment by user name, the webhook API of that version: `install jira` reads serverInfo).
The Data Center seed names each user by its Cloud accountId, so the example policy's assignees
are valid user names there too.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import click

from sandbox.story import JIRA_SITES, jira_site_seed


@click.command("demo")
@click.option("--keep", is_flag=True, help="Keep the temporary directory (database, service log).")
@click.option("-v", "--verbose", is_flag=True,
              help="Also print the exact request counts (reads, writes, Retry-After checks).")
@click.option("--jira-site", type=click.Choice(sorted(JIRA_SITES)), default="cloud",
              show_default=True, help="Which Jira the sandbox plays: Cloud, Data Center 9 or 10.")
def demo(keep: bool, verbose: bool, jira_site: str) -> None:
    """Show tierdesk at work on a local Jira and Zendesk sandbox: no account needed."""
    from sandbox.demo import DEMO_ENV, Counts, install_stack, play, service, summary_line, tail
    from sandbox.server import run_in_thread

    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="tierdesk-demo-"))
    handle = run_in_thread(seed=jira_site_seed(jira_site))
    datacenter = JIRA_SITES[jira_site][0] == "Server"
    failed = False
    try:
        click.echo(f"Sandbox: Jira {handle.jira_url} ({jira_site}), Zendesk {handle.zendesk_url}")
        extra = {**DEMO_ENV, **({"TIERDESK_JIRA_DEPLOYMENT": "datacenter"} if datacenter
                                else {})}
        before = handle.state()["requests"]
        stack = install_stack(handle, workdir, echo=click.echo, extra_env=extra)
        installed = handle.state()["requests"]
        with service(stack):
            click.echo(f"tierdesk serve on {stack.base_url} (policy: {stack.policy_name})\n")
            failed = play(handle, datacenter=datacenter)
            if failed:
                click.echo(f"\nService log (last lines):\n{tail(stack.log_path)}", err=True)
        state = handle.state()
        setup = Counts.between(before, installed)
        story = Counts.between(installed, state["requests"])
        violations = int(state["retry_after_violations"])
        click.echo("\n" + summary_line(setup, story, retry_after_violations=violations))
        if verbose:
            click.echo(
                f"Vendor requests by tierdesk: install {setup.exact()}; story {story.exact()}"
                f" (start-up doctor off: TIERDESK_STARTUP_DOCTOR=false); Retry-After"
                f" violations: {violations}. Took {time.monotonic() - started:.1f} s."
            )
    finally:
        handle.stop()
        if keep:
            click.echo(f"Kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    if failed:
        raise click.ClickException("some steps did not come out as the policy says (see above)")
    click.echo("Every step came out as the policy says.")


def register(main: click.Group) -> None:
    """Add `tierdesk demo` to the command line."""
    main.add_command(demo)
