"""Vendor connectors: Jira and Zendesk payloads in, one write per decision out."""
