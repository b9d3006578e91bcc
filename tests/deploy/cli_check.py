"""Check that an argv is a command line the `tierdesk` CLI accepts (without running it)."""

from __future__ import annotations

from collections.abc import Sequence

import click

from webhooks.cli import main


def parse_cli(argv: Sequence[str]) -> list[str]:
    """Parse `tierdesk ARGS...` down to the leaf command; return the command path, e.g.
    ["serve"]. Raises click.UsageError for an unknown command or option."""
    if not argv or argv[0] != "tierdesk":
        raise click.UsageError(f"not a tierdesk command line: {list(argv)}")
    command: click.Command = main
    args = list(argv[1:])
    path: list[str] = []
    while isinstance(command, click.Group):
        if not args:
            raise click.UsageError(f"`tierdesk {' '.join(path)}` needs a subcommand")
        name = args.pop(0)
        with click.Context(command) as ctx:
            sub = command.get_command(ctx, name)
        if sub is None:
            raise click.UsageError(f"no such command: tierdesk {' '.join([*path, name])}")
        path.append(name)
        command = sub
    command.make_context(" ".join(["tierdesk", *path]), args)
    return path
