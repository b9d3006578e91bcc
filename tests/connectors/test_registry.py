"""The vendor registry: one entry per vendor, importable from any module first, and a receiver
that names no vendor."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from connectors.base import VENDORS, WebhookAuth
from connectors.jira import webhook as jira_webhook
from connectors.signatures import SignatureInvalid
from connectors.zendesk import webhook as zendesk_webhook

ROOT = Path(__file__).resolve().parents[2]


def test_each_entry_is_named_by_its_key() -> None:
    """`VENDORS[name].name` is `name`, and the registry holds exactly Jira and Zendesk."""
    assert sorted(VENDORS) == ["jira", "zendesk"]
    assert all(vendor.name == name for name, vendor in VENDORS.items())


def test_entries_are_the_vendor_webhook_functions() -> None:
    """Each entry names its vendor's webhook module's functions and delivery header."""
    for module, vendor in ((jira_webhook, VENDORS["jira"]), (zendesk_webhook, VENDORS["zendesk"])):
        assert vendor.verify is module.verify
        assert vendor.parse is module.parse
        assert vendor.classify is module.classify
        assert vendor.replayed is module.replayed
    assert VENDORS["jira"].delivery_header == "x-atlassian-webhook-identifier"
    assert VENDORS["zendesk"].delivery_header == "x-zendesk-webhook-invocation-id"


@pytest.mark.parametrize("first", ["connectors.base", "connectors.jira.webhook",
                                   "connectors.zendesk.webhook", "connectors.jira",
                                   "connectors.zendesk.connector", "connectors.http",
                                   "connectors.vendor_limit", "webhooks.app"])
def test_registry_imports_whichever_module_comes_first(first: str) -> None:
    """No import cycle: the registry is complete whichever module a process imports first."""
    code = f"import {first}; from connectors.base import VENDORS; print(sorted(VENDORS))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "['jira', 'zendesk']"


@pytest.mark.parametrize("name", sorted(VENDORS))
def test_verify_fails_closed_without_a_secret(name: str) -> None:
    """Every vendor's `verify` refuses a delivery when no secret is configured."""
    with pytest.raises(SignatureInvalid, match=r"no \w+ webhook secret is configured"):
        VENDORS[name].verify(b"{}", {}, WebhookAuth(secret=None), now=datetime.now(UTC))


@pytest.mark.parametrize("module", ["app.py", "service.py"])
def test_receiver_and_service_name_no_vendor(module: str) -> None:
    """webhooks/app.py and service.py name no vendor: they loop over the registry, and each
    vendor's own values (its pause after a bare 429, its settings) live with the vendor."""
    text = (ROOT / "webhooks" / module).read_text(encoding="utf-8")
    assert not re.search(r"jira|zendesk", text, re.IGNORECASE)


@pytest.mark.parametrize("name, floor", [("jira", 30.0), ("zendesk", 60.0)])
def test_pause_after_a_bare_429_is_the_connectors_own(name: str, floor: float) -> None:
    """A 429 without Retry-After pauses the vendor for the floor its client puts on the
    RateLimited it raises (Jira 30 s, Zendesk one 60 s window): one value, kept in the
    vendor's config module and named by the registry, not by the service."""
    from connectors.jira import client as jira_client
    from connectors.zendesk import client as zendesk_client

    raised_by = {"jira": jira_client, "zendesk": zendesk_client}[name]
    assert VENDORS[name].default_pause == raised_by.DEFAULT_RETRY_AFTER == floor
