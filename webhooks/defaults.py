"""Embedded defaults that make tierdesk run with no configuration: the example policy."""

from __future__ import annotations

from pathlib import Path

from tiering.policy_problems import PolicyError, Problem
from tiering.policy_yaml import MAX_POLICY_BYTES

EXAMPLE_POLICY_SOURCE = "deploy/policy.example.yaml (embedded)"


def default_policy_text() -> str:
    """The text of the example policy shipped with the package (deploy/policy.example.yaml)."""
    return (Path(__file__).parent / "data" / "policy.example.yaml").read_text("utf-8")


def read_policy_file(path: Path) -> str:
    """The text of the policy file at `path`, reading at most `MAX_POLICY_BYTES` + 1 bytes: a
    file (or a device, or a FIFO) over the limit is refused before it fills the memory.

    Raises OSError and UnicodeDecodeError as reading would, and PolicyError when too large."""
    with path.open("rb") as handle:
        data = handle.read(MAX_POLICY_BYTES + 1)
    if len(data) > MAX_POLICY_BYTES:
        raise PolicyError(str(path), [Problem(
            "", f"the file is over the {MAX_POLICY_BYTES}-byte limit of a policy")])
    return data.decode("utf-8")
