"""docs/admin-guide.md: every command in it is run (against the local sandbox) or, for Docker,
Kubernetes and systemd, checked against the files in deploy/.

Block kinds (the words after ```sh):
    (none)             run, in order, in one bash session (`set -euo pipefail`), in a scratch
                       directory holding a copy of deploy/, with no TIERDESK_* variable inherited
    background port=N  started in the background; the session waits until N accepts connections;
                       stopped with SIGTERM at the end, and it must exit with status 0
    postgres           run in a second session with TIERDESK_DATABASE_URL = a fresh PostgreSQL
                       database (needs TIERDESK_TEST_DATABASE_URL)
    deploy             not runnable here (no Docker engine, cluster or systemd): every deploy/
                       path, compose service, Kubernetes object and unit it names must exist
The guide's ports 8080 (tierdesk), 8081 (Jira sandbox) and 8082 (Zendesk sandbox, always the Jira
port + 1) are replaced by free ones, so the test never collides with anything listening.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import sqlalchemy as sa

from tests.deploy.deployfiles import DEPLOY, ROOT, yaml_documents

GUIDE = ROOT / "docs" / "admin-guide.md"
FENCE = re.compile(r"^( *)```(\S*)([^\n]*)\n(.*?)^\1```[ \t]*$", re.MULTILINE | re.DOTALL)
KINDS = {"", "background", "postgres", "deploy"}
PG_URL = os.environ.get("TIERDESK_TEST_DATABASE_URL")


@dataclass(frozen=True)
class Block:
    """One fenced shell block of the guide."""

    kind: str
    attrs: dict[str, str]
    text: str
    line: int


def sh_blocks() -> list[Block]:
    text = GUIDE.read_text(encoding="utf-8")
    out: list[Block] = []
    for m in FENCE.finditer(text):
        indent, lang, info, body = m.groups()
        if lang != "sh":
            continue
        words = info.split()
        kind = words[0] if words and "=" not in words[0] else ""
        attrs = dict(w.split("=", 1) for w in words if "=" in w)
        body = "\n".join(line[len(indent):] for line in body.splitlines())
        out.append(Block(kind, attrs, body, text.count("\n", 0, m.start()) + 1))
    return out


BLOCKS = sh_blocks()


def free_pair() -> tuple[int, int]:
    """Two free ports: one alone, and one whose successor is free too (Jira, Zendesk)."""
    for _ in range(50):
        with socket.socket() as a, socket.socket() as b, socket.socket() as c:
            a.bind(("127.0.0.1", 0))
            b.bind(("127.0.0.1", 0))
            port = b.getsockname()[1]
            try:
                c.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
            return int(a.getsockname()[1]), int(port)
    raise RuntimeError("no two adjacent free ports")


def clean_env(home: Path) -> dict[str, str]:
    """The environment of a fresh shell: the venv first on PATH, no TIERDESK_* settings."""
    venv_bin = str(Path(sys.executable).parent)
    return {
        "PATH": f"{venv_bin}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
    }


def script(blocks: list[Block], ports: dict[str, str], workdir: Path) -> str:
    """One bash script running `blocks` in order, recording which block runs in .guide-block."""
    lines = [
        "set -euo pipefail",
        "BG=()",
        "stop_background() {",
        '  for pid in "${BG[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done',
        '  for pid in "${BG[@]}"; do wait "$pid"; echo "$pid $?" >> .guide-exits; done',
        "}",
        "trap stop_background EXIT",
        "wait_port() {",
        '  for _ in $(seq 300); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0;'
        " sleep 0.1; done",
        '  echo "nothing listens on port $1 after 30 s" >&2; return 1',
        "}",
    ]
    for n, block in enumerate(blocks):
        body = re.sub(r"\b(8080|8081|8082)\b", lambda m: ports[m.group(1)], block.text)
        lines.append(f"echo {block.line} > {workdir}/.guide-block")
        if block.kind == "background":
            (command,) = [c for c in body.splitlines() if c.strip()]
            lines.append(f"{command} > {workdir}/background-{n}.log 2>&1 &")
            lines.append('BG+=("$!")')
            port = re.sub(r"\b(8080|8081|8082)\b", lambda m: ports[m.group(1)],
                          block.attrs["port"])
            lines.append(f"wait_port {port}")
        else:
            lines.append(body)
    lines.append("echo done > .guide-block")
    return "\n".join(lines) + "\n"


def run_session(blocks: list[Block], workdir: Path, env: dict[str, str],
                ports: dict[str, str]) -> subprocess.CompletedProcess[str]:
    (workdir / "session.sh").write_text(script(blocks, ports, workdir), encoding="utf-8")
    done = subprocess.run(
        ["bash", "session.sh"], cwd=workdir, env=env, capture_output=True, text=True, timeout=240
    )
    where = (workdir / ".guide-block").read_text().strip() if (
        workdir / ".guide-block").exists() else "?"
    if done.returncode != 0:
        logs = "\n".join(
            f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted(workdir.glob("background-*"))
        )
        raise AssertionError(
            f"the guide's block at docs/admin-guide.md line {where} failed"
            f" (exit {done.returncode}):\n--- stdout\n{done.stdout[-4000:]}\n"
            f"--- stderr\n{done.stderr[-4000:]}\n{logs}"
        )
    assert where == "done"
    return done


def test_every_shell_block_has_a_known_kind() -> None:
    """Each ```sh block is plain (run), background (with a port), postgres or deploy."""
    assert BLOCKS, "the guide has no shell blocks"
    for b in BLOCKS:
        assert b.kind in KINDS, f"line {b.line}: unknown block kind {b.kind!r}"
        if b.kind == "background":
            assert b.attrs.get("port", "").isdigit(), f"line {b.line}: background needs port=N"
            assert len([c for c in b.text.splitlines() if c.strip()]) == 1, b.line


def test_guide_is_linked_from_the_readme() -> None:
    """README.md links docs/admin-guide.md."""
    assert "docs/admin-guide.md" in (ROOT / "README.md").read_text(encoding="utf-8")


def test_guide_commands_run_against_the_sandbox(tmp_path: Path) -> None:
    """Every plain and background block runs without error, in order, against the sandbox; the
    walkthrough's tickets really get the policy's decision written back."""
    work = tmp_path / "guide"
    work.mkdir()
    shutil.copytree(DEPLOY, work / "deploy")
    tierdesk_port, jira_port = free_pair()
    ports = {"8080": str(tierdesk_port), "8081": str(jira_port), "8082": str(jira_port + 1)}
    blocks = [b for b in BLOCKS if b.kind in ("", "background")]
    done = run_session(blocks, work, clean_env(tmp_path), ports)
    exits = (work / ".guide-exits").read_text().split("\n")
    assert [line.split()[1] for line in exits if line] == ["0"] * len(
        [b for b in blocks if b.kind == "background"]
    ), "a background command did not stop cleanly on SIGTERM"
    # The walkthrough's decisions, as `tierdesk explain` printed them.
    assert "PUT /rest/api/2/issue/SUP-2 -> 204" in done.stdout
    assert "PUT /api/v2/tickets/2.json -> 200" in done.stdout
    assert "no dead letters" in done.stdout
    assert "ok" in done.stdout.splitlines(), "the SQLite backup's integrity_check"


@pytest.mark.postgres
def test_postgres_blocks_run_against_a_fresh_database(tmp_path: Path) -> None:
    """The PostgreSQL blocks (migrate, pg_dump, pg_restore --list) run on a fresh database."""
    if not PG_URL:
        pytest.skip("set TIERDESK_TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test")
    if shutil.which("pg_dump") is None or shutil.which("pg_restore") is None:
        pytest.skip("pg_dump/pg_restore are not installed")
    name = f"td_guide_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://", 1),
                             isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        parts = urlsplit(PG_URL)
        url = urlunsplit(parts._replace(path=f"/{name}"))
        env = {**clean_env(tmp_path), "TIERDESK_DATABASE_URL": url}
        blocks = [b for b in BLOCKS if b.kind == "postgres"]
        assert blocks
        done = run_session(blocks, tmp_path, env, {"8080": "8080", "8081": "8081", "8082": "8082"})
        # The inbox's tables (with their data sections) are in the dump.
        assert int(done.stdout.strip().splitlines()[-1]) >= 3
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


# --------------------------------------------------------------------------- deploy blocks


def compose_services() -> set[str]:
    (compose,) = yaml_documents(DEPLOY / "compose.yaml")
    return set(compose["services"])


def k8s_objects() -> set[str]:
    return {
        f"{d['kind'].lower()}/{d['metadata']['name']}"
        for p in (DEPLOY / "k8s").glob("*.yaml") if p.name != "kustomization.yaml"
        for d in yaml_documents(p)
    }


@pytest.mark.parametrize(
    "block", [b for b in BLOCKS if b.kind == "deploy"], ids=lambda b: f"line{b.line}"
)
def test_deploy_block_names_only_what_exists(block: Block) -> None:
    """Each path under deploy/, compose service, Kubernetes object and systemd unit that a
    Docker/Kubernetes/systemd block names exists in the repository."""
    created: set[str] = set()
    for raw in block.text.splitlines():
        if not raw.strip():
            continue
        words = shlex.split(raw)
        if words[0] == "sudo":
            words = words[1:]
        tool = words[0]
        assert tool in {
            "python3", "/opt/tierdesk/bin/pip", "docker", "kubectl", "systemctl", "journalctl",
            "cp", "promtool", "curl",
        }, f"line {block.line}: unexpected command {tool}"
        if tool == "curl":  # the file is named inside a quoted request body
            for w in re.findall(r"deploy/[A-Za-z0-9_./-]+", raw):
                assert (ROOT / w).is_file(), f"line {block.line}: {w} does not exist"
        named = words[:-1] if tool == "cp" else words  # cp's last word is what it creates
        for w in named:
            if w.startswith("deploy/") and w not in created:
                assert (ROOT / w).exists(), f"line {block.line}: {w} does not exist"
        if tool == "cp":
            created.add(words[-1])
            continue
        if tool == "docker" and words[1] == "build":
            assert words[-1] == "." and (ROOT / words[words.index("-f") + 1]).is_file()
        if tool == "docker" and words[1] == "compose":
            for verb in ("logs", "restart", "stop"):
                if verb in words:
                    service = words[-1]
                    assert service in compose_services(), f"line {block.line}: {service}"
        if tool == "kubectl":
            for w in words[1:]:
                if re.match(r"^(deployment|service|secret|configmap)/", w):
                    assert w in k8s_objects(), f"line {block.line}: no {w} in deploy/k8s"
        if tool in ("systemctl", "journalctl"):
            unit = words[-1] if tool == "systemctl" else words[words.index("-u") + 1]
            if unit != "daemon-reload":
                assert (DEPLOY / "systemd" / f"{unit}.service").is_file(), unit
