"""The Zendesk connector: webhook classification, Ticket mapping, one-PUT writes via zenpy."""

from connectors.zendesk.events import envelope, parse_body

__all__ = ["envelope", "parse_body"]
