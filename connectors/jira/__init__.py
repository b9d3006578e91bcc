"""Jira connector: webhook classification, issue -> Ticket mapping, one-PUT writes, admin tasks."""

from connectors.jira.config import JiraConfig
from connectors.jira.connector import JiraConnector
from connectors.jira.webhook import classify

__all__ = ["JiraConfig", "JiraConnector", "classify"]
