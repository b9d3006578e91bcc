"""The tierdesk service: settings, webhook receiver, durable inbox, worker and CLI."""
