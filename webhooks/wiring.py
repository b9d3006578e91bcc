"""How the service finds its parts: the policy, the connectors and the engine, imported lazily.

The receiver's vendor functions come from the registry, `connectors.base.VENDORS`.

    build_connectors(settings, p)    -> {"jira": JiraConnector(..), "zendesk": ZendeskConnector(..)}
    vendor_lines(settings)           -> {"jira": VendorLine, ...}: pass to build_connectors
    decide_function()                -> tiering.decide
    load_policy_for(settings)        -> Policy from TIERDESK_POLICY, else the embedded example
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

from connectors.base import Connector
from tiering.models import Decision, Ticket
from tiering.policy import Policy, PolicyError, load_policy

if TYPE_CHECKING:
    from connectors.http import VendorLine
from webhooks.defaults import read_policy_file
from webhooks.settings import Settings

VENDORS = ("jira", "zendesk")

class DecideFunction(Protocol):
    """`tiering.decide`'s signature."""

    def __call__(self, ticket: Ticket, policy: Policy, *, now: datetime) -> Decision: ...


class WiringError(RuntimeError):
    """A part of the service cannot be set up; the message says what to fix."""


_REPO_EXAMPLE = Path(__file__).resolve().parents[1] / "deploy" / "policy.example.yaml"


def vendor_lines(settings: Settings) -> dict[str, VendorLine]:
    """One `VendorLine` per vendor for this process (TIERDESK_VENDOR_CONCURRENCY requests in
    flight at most; none while the vendor asked to wait). Build once and keep across policy
    reloads: a pause must outlive the connectors that saw it."""
    from connectors.http import VendorLine

    defaults = {"jira": 30.0, "zendesk": 60.0}  # the connectors' own floors for a bare 429
    return {
        vendor: VendorLine(vendor, concurrency=settings.vendor_concurrency,
                           default_pause=defaults[vendor])
        for vendor in VENDORS
    }


def build_connectors(
    settings: Settings, policy: Policy, *, lines: Mapping[str, VendorLine] | None = None
) -> dict[str, Connector]:
    """A connector for each vendor configured in `settings` (none configured: empty). With
    `lines`, every request a connector sends goes through its vendor's line."""
    from connectors.http import session_on

    out: dict[str, Connector] = {}
    jira = settings.jira_config()
    if jira is not None:
        module = _import("connectors.jira", "Jira")
        session = session_on(lines["jira"]) if lines else None
        try:
            out["jira"] = cast(Connector, module.JiraConnector(jira, policy, session=session))
        except ValueError as exc:
            raise WiringError(f"cannot use Jira: {exc}") from None
    zendesk = settings.zendesk_config()
    if zendesk is not None:
        module = _import("connectors.zendesk", "Zendesk")
        session = session_on(lines["zendesk"]) if lines else None
        out["zendesk"] = cast(Connector, module.ZendeskConnector(zendesk, policy, session=session))
    return out


def _import(name: str, label: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise WiringError(f"the {label} connector cannot be loaded ({name}: {exc})") from exc


def decide_function() -> DecideFunction:
    """The policy engine's `decide`."""
    try:
        module = importlib.import_module("tiering.engine")
    except ImportError as exc:
        raise WiringError(f"the policy engine is not installed (tiering.engine: {exc})") from exc
    return cast(DecideFunction, module.decide)


def default_policy_text() -> tuple[str, str]:
    """The embedded example policy (package data, webhooks.defaults) and its source name."""
    try:
        from webhooks.defaults import EXAMPLE_POLICY_SOURCE
        from webhooks.defaults import default_policy_text as embedded

        return embedded(), EXAMPLE_POLICY_SOURCE
    except (ImportError, OSError):
        pass
    if _REPO_EXAMPLE.is_file():
        return _REPO_EXAMPLE.read_text(encoding="utf-8"), str(_REPO_EXAMPLE)
    raise WiringError(
        "TIERDESK_POLICY is not set and no embedded example policy was found: set TIERDESK_POLICY"
        " to your policy file"
    )


def load_policy_for(settings: Settings) -> Policy:
    """Load the policy named by TIERDESK_POLICY (else the embedded example); WiringError lists
    every problem, each naming the file and key."""
    if settings.policy is None:
        text, source = default_policy_text()
    else:
        path = settings.policy
        try:
            text = read_policy_file(path)  # at most MAX_POLICY_BYTES are read
        except OSError as exc:
            raise WiringError(
                f"TIERDESK_POLICY: cannot read {path}: {exc.strerror or exc}"
            ) from None
        except PolicyError as exc:
            raise WiringError(str(exc)) from None
        source = str(path)
    try:
        return load_policy(text, source=source)
    except PolicyError as exc:
        raise WiringError(str(exc)) from None
