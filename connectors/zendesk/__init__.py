"""The Zendesk connector: webhook classification, Ticket mapping, one-PUT writes via zenpy."""

from connectors.zendesk.connector import ZendeskConnector
from connectors.zendesk.events import envelope, parse_body

__all__ = ["ZendeskConnector", "envelope", "parse_body"]
