"""Readers for the files under deploy/: YAML documents, env files, systemd units, the Dockerfile."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from dockerfile_parse import DockerfileParser  # type: ignore[import-untyped]

from webhooks.settings import ENV_PREFIX, Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
#: Files under deploy/ that other areas own (policies and example tickets): not checked here.
NOT_OURS = ("policies", "examples", "policy.example.yaml")

#: Every environment variable tierdesk reads: TIERDESK_ + a Settings field, upper-cased.
SETTING_NAMES = frozenset(ENV_PREFIX + name.upper() for name in Settings.model_fields)


def deploy_files() -> list[Path]:
    """Every file under deploy/ that this area owns."""
    return sorted(
        p for p in DEPLOY.rglob("*")
        if p.is_file() and p.relative_to(DEPLOY).parts[0] not in NOT_OURS
    )


def yaml_documents(path: Path) -> list[Any]:
    """All YAML documents of `path` (safe loader; anchors and merge keys resolved)."""
    with path.open(encoding="utf-8") as fh:
        return [d for d in yaml.safe_load_all(fh) if d is not None]


def env_file(path: Path, *, commented: bool = False) -> dict[str, str]:
    """NAME=value lines of an env file; with `commented`, also the optional `#NAME=value` lines."""
    out: dict[str, str] = {}
    pattern = re.compile(r"^(#)?([A-Z][A-Z0-9_]*)=(.*)$")
    for line in path.read_text(encoding="utf-8").splitlines():
        m = pattern.match(line)
        if m and (commented or not m.group(1)):
            out[m.group(2)] = m.group(3)
    return out


def unit_file(path: Path) -> dict[str, list[tuple[str, str]]]:
    """A systemd unit as {section: [(key, value), ...]} in order (keys may repeat)."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    for n, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
            continue
        key, sep, value = line.partition("=")
        if current is None or not sep:
            raise ValueError(f"{path}:{n}: not a `Key=value` line inside a section: {raw!r}")
        current.append((key.strip(), value.strip()))
    return sections


@dataclass(frozen=True)
class Instruction:
    """One Dockerfile instruction of one build stage."""

    stage: int
    name: str
    value: str


def dockerfile(path: Path) -> list[Instruction]:
    """The Dockerfile's instructions (dockerfile-parse), each tagged with its stage number."""
    parser = DockerfileParser(path=str(path))
    out: list[Instruction] = []
    stage = -1
    for item in parser.structure:
        name = str(item["instruction"]).upper()
        if name == "FROM":
            stage += 1
        out.append(Instruction(stage=stage, name=name, value=str(item["value"])))
    return out
