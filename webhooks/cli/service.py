"""The service's commands: `serve`, `worker`, `dead-letters list|show|replay`, `explain`.

    tierdesk serve                 receiver and worker in one process (the default deployment)
    tierdesk serve --no-worker     receiver only (split deployments: run `tierdesk worker` too)
    tierdesk worker [--once]       worker only; --once drains what is ready and exits
    tierdesk dead-letters list | show ID | replay ID | replay --all
    tierdesk explain VENDOR TICKET the decision history of one ticket, newest first
    tierdesk migrate               create the inbox database (or migrate it) and exit

Every start-up problem (a bad setting, an unreadable policy, an unreachable database, a busy
port) is printed as one line per problem naming what to fix, and the command exits with status 2.
Read-only commands (`explain`, `dead-letters`, `prune`, `worker --once`) never create a database
(webhooks/inbox/opening.py); `-v` names the database a command opened.
"""

from __future__ import annotations

import difflib
import json
import sys
import unicodedata
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NoReturn

import click

from connectors.base import VENDORS
from webhooks.command_settings import log_environment_warnings, verbose_option
from webhooks.inbox.opening import InboxUnavailable, database_label, open_inbox
from webhooks.logging import configure_logging, log
from webhooks.settings import Settings, SettingsError, load_settings

if TYPE_CHECKING:  # the service's modules load only when a command runs (fast `--help`)

    from webhooks.inbox.records import StoredEvent
    from webhooks.inbox.store import Inbox

def _fail(lines: list[str]) -> NoReturn:
    for line in lines:
        click.echo(f"tierdesk: {line}", err=True)
    sys.exit(2)


def _settings(*, warnings: bool = True) -> Settings:
    """The settings, or exit 2 naming each bad variable. Misspelt or unprefixed variable names
    are warned about on stderr (`warnings=False`: serve and worker log them instead)."""
    from webhooks.command_settings import echo_environment_warnings

    try:
        settings = load_settings()
    except SettingsError as exc:
        _fail(["invalid settings:", *(f"  {line}" for line in exc.lines)])
    if warnings:
        echo_environment_warnings()
    return settings


def _inbox(settings: Settings, *, verbose: bool = False, create: bool = False) -> Inbox:
    """The inbox of a command; read-only commands (`create=False`) never create one."""
    try:
        return open_inbox(settings.database_url, create=create, verbose=verbose)
    except InboxUnavailable as exc:
        _fail(exc.lines)


#: Said by the help of every command that reads settings or opens the inbox.
SETTINGS_HELP = (
    "Settings, including the inbox database (TIERDESK_DATABASE_URL), come from TIERDESK_*"
    " environment variables or a .env file in the current directory."
)


def printable(text: str) -> str:
    """`text` safe to print on a terminal: control and format characters (ANSI escapes,
    carriage returns, bidi overrides) written as `\\x1b`-style escapes. Ticket text is written
    by customers; `explain` must not let it repaint the admin's terminal."""
    out: list[str] = []
    for ch in text:
        if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp"):
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(ch)
    return "".join(out)


def _when(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%d %H:%M:%SZ")


@click.command(epilog=SETTINGS_HELP + " Exit status: 0 after SIGTERM/SIGINT, 2 when it cannot"
               " start (a setting, the policy, the database, a busy port), 3 when the inbox"
               " writer process cannot start.")
@click.option("--no-worker", is_flag=True, help="Receive only; run `tierdesk worker` separately.")
@click.option("--host", default=None, help="Listen address (default TIERDESK_HOST).")
@click.option("--port", type=click.IntRange(1, 65535), default=None,
              help="Listen port (default TIERDESK_PORT).")
@verbose_option
def serve(no_worker: bool, host: str | None, port: int | None, verbose: bool) -> None:
    """Run the webhook receiver (and, unless --no-worker, the worker) until SIGTERM/SIGINT."""
    from webhooks.service import StartupError, bind_port, build_server, run_server

    settings = _settings(warnings=False)
    configure_logging(settings.log_level)
    log_environment_warnings()
    host = host or settings.host
    port = port or settings.port
    try:
        # Bind first: a busy port must stop start-up before the worker touches the inbox.
        sock = bind_port(host, port, change="TIERDESK_PORT or --port")
    except StartupError as exc:
        _fail(exc.lines)
    try:
        server, service = build_server(settings, with_worker=not no_worker, host=host, port=port)
    except StartupError as exc:
        sock.close()
        _fail(exc.lines)
    if verbose:
        click.echo(f"tierdesk: opened the inbox database {database_label(settings.database_url)}",
                   err=True)
    log("serving", host=server.config.host, port=server.config.port,
        worker=service.pool is not None, database=database_label(settings.database_url))
    if settings.startup_doctor:
        from webhooks.cli.doctor import start_summary_thread

        # The same checks as `tierdesk doctor`, in the background: one summary line; a failed
        # check never stops the service.
        start_summary_thread(settings, service.policy)
    run_server(server, service, sockets=[sock])


@click.command(epilog=SETTINGS_HELP + " Exit status: 0 when stopped (or --once is done), 2"
               " when it cannot start (a setting, the policy, the database, a busy port).")
@click.option("--once", is_flag=True,
              help="Process what is ready now, then exit (never creates a database).")
@click.option("--metrics-port", type=click.IntRange(1, 65535), default=None,
              help="Serve this worker's Prometheus metrics on this port.")
@verbose_option
def worker(once: bool, metrics_port: int | None, verbose: bool) -> None:
    """Run the worker alone (split deployments), until SIGTERM/SIGINT."""
    from webhooks.service import StartupError, run_worker

    settings = _settings(warnings=False)
    configure_logging(settings.log_level)
    log_environment_warnings()
    if verbose:
        click.echo(f"tierdesk: opened the inbox database {database_label(settings.database_url)}",
                   err=True)
    try:
        done = run_worker(settings, once=once, metrics_port=metrics_port)
    except StartupError as exc:
        _fail(exc.lines)
    if once:
        click.echo(f"processed {done} ticket(s)")


@click.group("dead-letters", epilog=SETTINGS_HELP)
def dead_letters() -> None:
    """Events tierdesk gave up on: list, show, replay.

    These commands never create a database: run where the service runs, or point
    TIERDESK_DATABASE_URL at its database."""


@dead_letters.command("list", epilog=SETTINGS_HELP)
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True,
              help="Show at most this many dead letters (the newest).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@verbose_option
def dead_letters_list(limit: int, as_json: bool, verbose: bool) -> None:
    """List dead letters, newest first."""
    inbox = _inbox(_settings(), verbose=verbose)
    rows = inbox.dead_letters(limit=limit)
    if as_json:
        for e in rows:
            click.echo(json.dumps(_event_summary(e)))
        return
    if not rows:
        click.echo("no dead letters")
        return
    click.echo(f"{'ID':>8}  {'VENDOR':8} {'TICKET':16} {'EVENT':28} {'TRIES':>5}  {'RECEIVED':20}"
               " LAST ERROR")
    for e in rows:
        error = (e.last_error or "").splitlines()[0][:80] if e.last_error else ""
        ticket = printable(e.ticket or "-")[:16]
        click.echo(f"{e.id:>8}  {e.vendor:8} {ticket:16} {printable(e.event_type)[:28]:28}"
                   f" {e.attempts:>5}  {_when(e.received_at):20} {printable(error)}")


@dead_letters.command("show", epilog=SETTINGS_HELP)
@click.argument("event_id", type=int)
@verbose_option
def dead_letters_show(event_id: int, verbose: bool) -> None:
    """Show one dead letter: its error and its payload."""
    inbox = _inbox(_settings(), verbose=verbose)
    e = inbox.event(event_id)
    if e is None:
        _fail([f"no event {event_id}: see `tierdesk dead-letters list`"])
    summary = _event_summary(e)
    for key, value in summary.items():
        click.echo(f"{key}: {printable(str(value))}")
    click.echo("payload:")
    click.echo(json.dumps(e.payload, indent=2, ensure_ascii=False))


@dead_letters.command("replay", epilog=SETTINGS_HELP)
@click.argument("event_id", type=int, required=False)
@click.option("--all", "replay_all", is_flag=True, help="Replay every dead letter.")
@verbose_option
def dead_letters_replay(event_id: int | None, replay_all: bool, verbose: bool) -> None:
    """Queue a dead letter (or --all) again with a fresh attempt count."""
    if (event_id is None) == (not replay_all):
        _fail(["give either an event ID or --all (see `tierdesk dead-letters list`)"])
    inbox = _inbox(_settings(), verbose=verbose)
    if replay_all:
        n = inbox.replay()
        click.echo(f"queued {n} dead letter(s) again")
        return
    assert event_id is not None
    e = inbox.event(event_id)
    if e is None or e.status != "dead":
        what = "does not exist" if e is None else f"is {e.status}, not a dead letter"
        _fail([f"event {event_id} {what}: see `tierdesk dead-letters list`"])
    n = inbox.replay([event_id])
    click.echo(f"queued event {event_id} ({e.vendor} {e.ticket}) again" if n else "nothing queued")


@click.command(epilog=SETTINGS_HELP)
@click.option("--older-than", "days", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Age in days (default TIERDESK_RETENTION_DAYS).")
@click.option("--dry-run", is_flag=True, help="Count what would be deleted; delete nothing.")
@verbose_option
def prune(days: float | None, dry_run: bool, verbose: bool) -> None:
    """Delete processed events and decision records older than the retention.

    Pending events, dead letters and each ticket's state are kept. The worker pool does this
    hourly by itself (TIERDESK_RETENTION_DAYS, 0 = never)."""
    settings = _settings()
    if days is None:
        days = settings.retention_days
        if not days:
            _fail(["TIERDESK_RETENTION_DAYS is 0 (keep everything): give --older-than DAYS"])
    from webhooks.retention import DAY

    inbox = _inbox(settings, verbose=verbose)
    try:
        pruned = inbox.prune(older_than=inbox.clock() - days * DAY, dry_run=dry_run)
    finally:
        inbox.close()
    verb = "would delete" if dry_run else "deleted"
    click.echo(f"{verb} {pruned.events} event(s), {pruned.decisions} decision record(s) and"
               f" {pruned.notices} finished SLA notice(s) older than {days:g} day(s)")


@click.command("migrate", epilog=SETTINGS_HELP)
@verbose_option
def migrate(verbose: bool) -> None:
    """Create the inbox database, or bring its schema up to date, and exit.

    serve and worker do this by themselves on start; use it to create the database on purpose
    (the read-only commands never do), before a first backup, or in an upgrade window."""
    from webhooks.inbox.migrations import SCHEMA_VERSION

    settings = _settings()
    inbox = _inbox(settings, verbose=verbose, create=True)
    inbox.close()
    click.echo(f"the inbox at {database_label(settings.database_url)} has schema version"
               f" {SCHEMA_VERSION}")


def _event_summary(e: StoredEvent) -> dict[str, Any]:
    return {
        "id": e.id,
        "vendor": e.vendor,
        "ticket": e.ticket,
        "event_type": e.event_type,
        "delivery_id": e.delivery_id,
        "status": e.status,
        "attempts": e.attempts,
        "received_at": _when(e.received_at),
        "last_error": e.last_error,
    }


@click.command(epilog=SETTINGS_HELP)
@click.argument("vendor", type=click.Choice(list(VENDORS)))
@click.argument("ticket")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True,
              help="Show at most this many decisions (the newest).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@click.option("--now", "now_text", metavar="ISO-8601", default=None,
              help="Compute the SLA clocks as of this instant (default: the current time).")
@verbose_option
def explain(vendor: str, ticket: str, limit: int, as_json: bool, now_text: str | None,
            verbose: bool) -> None:
    """The decision history of one ticket with reasons, newest first, and its SLA clocks.

    TICKET is the Jira issue key (SUP-123; any letter case) or the Zendesk ticket number
    (123 or #123). The header line shows the ticket's state in the inbox: pending (work is
    waiting), failed attempts and the next attempt, the last error, and the last note (the
    key of the checklist note tierdesk posted last). The SLA clocks are recomputed from the
    ticket's recorded history under the policy in force (TIERDESK_POLICY) at --now: each
    clock's state, elapsed and paused business time, due time, thresholds (crossed when,
    acted on or not) and the policy key its target comes from. This command never creates a
    database."""
    from webhooks.cli.sla import parse_now

    now = parse_now(now_text)
    settings = _settings()
    inbox = _inbox(settings, verbose=verbose)
    asked = ticket
    if vendor == "zendesk":
        ticket = ticket.strip().lstrip("#")
    history = inbox.history(vendor, ticket, limit=limit)
    state = inbox.ticket_state(vendor, ticket)
    matched_other_case = False
    if state is None and not history:
        same = [k for k in inbox.ticket_keys(vendor, casefold=ticket) if k != ticket]
        if len(same) > 1:
            _fail([f"{len(same)} {vendor} tickets match {printable(asked)!r} ignoring case:"
                   f" {', '.join(printable(k) for k in same)}; give the exact key"])
        if same:
            ticket, matched_other_case = same[0], True
            history = inbox.history(vendor, ticket, limit=limit)
            state = inbox.ticket_state(vendor, ticket)
    sla = _sla_view(settings, inbox, vendor, ticket, now) if (state or history) else None
    if as_json:
        click.echo(json.dumps({
            "vendor": vendor,
            "ticket": ticket,
            "state": _state_view(state),
            "sla": sla,
            "decisions": [_record_view(r) for r in history],
        }, indent=2, default=str))
        return
    if state is None and not history:
        known = inbox.ticket_keys(vendor)
        folded = {k.casefold(): k for k in known}
        close = [folded[k] for k in difflib.get_close_matches(ticket.casefold(), list(folded),
                                                               n=5, cutoff=0.6)]
        click.echo(f"tierdesk has no events for {vendor} ticket {printable(ticket)}"
                   f" (searched {database_label(settings.database_url)} for"
                   f" {printable(asked)!r}, ignoring case)")
        if close:
            click.echo("close matches: " + ", ".join(printable(k) for k in close))
        return
    if matched_other_case:
        click.echo(f"(no ticket {printable(asked)!r}; showing {printable(ticket)}, the same key"
                   " in another letter case)")
    view = _state_view(state)
    if view:
        click.echo(f"{vendor} {printable(ticket)}: "
                   + ", ".join(f"{k} {printable(str(v))}" for k, v in view.items()))
    if sla is not None:
        from webhooks.cli.sla import clocks_lines

        for line in (clocks_lines(sla, printable) if "clocks" in sla
                     else [f"SLA clocks: {sla['error']}"]):
            click.echo(line)
    for r in history:
        arrow = printable(f"{r.tier_before or '-'} -> {r.tier_after or '-'}")
        digest = (r.policy_digest or "-")[:12]
        events = ", ".join(map(str, r.event_ids))
        click.echo(f"\n{_when(r.created_at)}  {r.outcome:10} {arrow}  (policy {digest},"
                   f" events {events})")
        for reason in r.reasons:
            click.echo(f"    - {printable(str(reason))}")
        for c in r.calls:
            click.echo(printable(f"    {c.get('method')} {c.get('path')} -> {c.get('status')}"
                                 f"  ({c.get('purpose')})"))
        if r.error:
            click.echo(f"    error: {printable(r.error)}")


def _sla_view(settings: Settings, inbox: Inbox, vendor: str, ticket: str, now: datetime
              ) -> dict[str, Any]:
    """The ticket's SLA clocks under the policy in force (webhooks/cli/sla.py), or why not."""
    from webhooks.cli.sla import clocks_view, ticket_clocks
    from webhooks.service import ServiceError, load_policy_for

    try:
        policy = load_policy_for(settings)
    except ServiceError as exc:
        return {"error": f"cannot load the policy to compute them: {exc}"}
    return clocks_view(ticket_clocks(inbox, policy, vendor, ticket, now), policy, now)


def _state_view(state: Any) -> dict[str, Any]:
    if not state:
        return {}
    view: dict[str, Any] = {"pending": bool(state["pending"])}
    if state["attempts"]:
        view["failed attempts"] = state["attempts"]
        view["next attempt"] = _when(state["next_attempt_at"])
    if state["last_error"]:
        view["last error"] = state["last_error"]
    if state["last_note_key"]:
        view["last note"] = state["last_note_key"]
    return view


def _record_view(r: Any) -> dict[str, Any]:
    return {
        "at": _when(r.created_at),
        "outcome": r.outcome,
        "tier_before": r.tier_before,
        "tier_after": r.tier_after,
        "policy_digest": r.policy_digest,
        "reasons": list(r.reasons),
        "calls": list(r.calls),
        "events": list(r.event_ids),
        "error": r.error,
    }


def register(main: click.Group) -> None:
    """Add the service commands to the `tierdesk` group."""
    for command in (serve, worker, dead_letters, explain, prune, migrate):
        main.add_command(command)

