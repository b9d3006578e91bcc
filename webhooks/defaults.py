"""Embedded defaults that make tierdesk run with no configuration: the example policy."""

from __future__ import annotations

from importlib import resources

EXAMPLE_POLICY_SOURCE = "deploy/policy.example.yaml (embedded)"


def default_policy_text() -> str:
    """The text of the example policy shipped with the package (deploy/policy.example.yaml)."""
    return resources.files("webhooks").joinpath("data/policy.example.yaml").read_text("utf-8")
