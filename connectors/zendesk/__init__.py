"""The Zendesk connector: webhook classification, Ticket mapping, one-PUT writes via zenpy."""

from connectors.zendesk.connector import ZendeskConnector
from connectors.zendesk.webhook import classify, parse

__all__ = ["ZendeskConnector", "classify", "parse"]
