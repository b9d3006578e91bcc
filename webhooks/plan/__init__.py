"""`tierdesk plan`'s service side: where a plan's tickets come from and how its result is shown.

`tiering/plan.py` compares the two policies (pure); this package feeds it and presents it. The
command itself is `webhooks/cli/plan.py`.

- `sources`: the tickets to plan (the inbox's stored snapshots, the live backlog), the
  connectors' write cost of a decision and the queueing of changed tickets (`--apply`);
- `document`: the `tierdesk-plan/1` JSON document built from a `tiering.plan.Plan`;
- `schema`: that document checked on reading, every problem named with its key path;
- `text`: the readable plan (`--format table`, the default);
- `report`: the self-contained HTML report (`--format html`), drawn with
- `charts`: the report's charts as inline SVG, and
- `markup`: HTML built with every value escaped.

Nothing is imported here, so `tierdesk plan --format json` never loads the HTML modules.
"""
