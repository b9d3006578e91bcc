"""Run the real `tierdesk serve` / `tierdesk worker` code with a test connector, for the
process-level tests (crash safety, PostgreSQL concurrency, graceful stop).

    python -m tests.webhooks.service_launcher serve  VENDOR_DB [--no-worker]
    python -m tests.webhooks.service_launcher worker VENDOR_DB [--metrics-port N]

Settings come from TIERDESK_* like the real commands; only the Jira connector and classifier are
replaced by tests/webhooks/fakes.py (a vendor recorded in the SQLite file VENDOR_DB).
"""

from __future__ import annotations

import sys

from tests.webhooks.fakes import VendorBackedConnector, fake_envelope, vendors_classifying
from webhooks.logging import configure_logging
from webhooks.service import build_server, run_server, run_worker
from webhooks.settings import load_settings


def main(argv: list[str]) -> int:
    mode, vendor_db = argv[0], argv[1]
    settings = load_settings()
    configure_logging(settings.log_level)
    connectors = {"jira": VendorBackedConnector(vendor_db)}
    if mode == "serve":
        server, service = build_server(
            settings,
            with_worker="--no-worker" not in argv,
            connectors=connectors,
            vendors=vendors_classifying(jira=fake_envelope),
        )
        run_server(server, service)
        return 0
    if mode == "worker":
        port = int(argv[argv.index("--metrics-port") + 1]) if "--metrics-port" in argv else None
        run_worker(settings, connectors=connectors, metrics_port=port)
        return 0
    print(f"unknown mode {mode!r}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
