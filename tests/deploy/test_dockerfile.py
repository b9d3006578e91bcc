"""deploy/Dockerfile: official base, non-root, `tierdesk serve`, a HEALTHCHECK that really works."""

from __future__ import annotations

import fnmatch
import json
import os
import shlex
import subprocess
import sys

from dockerfile_parse import DockerfileParser  # type: ignore[import-untyped]

from tests.deploy.cli_check import parse_cli
from tests.deploy.conftest import LiveServer, free_port
from tests.deploy.deployfiles import DEPLOY, ROOT, SETTING_NAMES, Instruction, dockerfile

DOCKERFILE = DEPLOY / "Dockerfile"
INSTRUCTIONS = dockerfile(DOCKERFILE)
FINAL = max(i.stage for i in INSTRUCTIONS)


def final(name: str) -> list[Instruction]:
    return [i for i in INSTRUCTIONS if i.stage == FINAL and i.name == name]


def final_env() -> dict[str, str]:
    parser = DockerfileParser(path=str(DOCKERFILE))
    return dict(parser.envs)


def exec_form(value: str) -> list[str]:
    parsed = json.loads(value)
    assert isinstance(parsed, list) and all(isinstance(a, str) for a in parsed), value
    return parsed


def healthcheck_argv() -> list[str]:
    (check,) = final("HEALTHCHECK")
    _, sep, command = check.value.partition("CMD ")
    assert sep, f"HEALTHCHECK without CMD: {check.value}"
    return exec_form(command.strip())


def test_every_stage_is_an_official_python_image() -> None:
    """Each FROM resolves (through the ARG default) to an official python:<version>-slim image."""
    args = {
        k: v for i in INSTRUCTIONS if i.name == "ARG" and "=" in i.value
        for k, v in [i.value.split("=", 1)]
    }
    froms = [i.value.split()[0] for i in INSTRUCTIONS if i.name == "FROM"]
    assert len(froms) == 2, "a build stage and a runtime stage"
    for image in froms:
        resolved = args.get(image.strip("${}"), image) if image.startswith("$") else image
        assert resolved.startswith("python:3.") and "-slim" in resolved, resolved


def test_final_stage_runs_as_a_numeric_non_root_user() -> None:
    """The last USER of the runtime stage is a numeric UID other than 0 (k8s runAsNonRoot)."""
    users = final("USER")
    assert users, "the runtime stage must set USER"
    uid, _, gid = users[-1].value.partition(":")
    assert uid.isdigit() and int(uid) != 0
    assert not gid or (gid.isdigit() and int(gid) != 0)


def test_command_is_tierdesk_serve() -> None:
    """ENTRYPOINT + CMD is exactly `tierdesk serve`, a command line the CLI accepts."""
    (entry,) = final("ENTRYPOINT")
    (cmd,) = final("CMD")
    argv = exec_form(entry.value) + exec_form(cmd.value)
    assert argv == ["tierdesk", "serve"]
    assert parse_cli(argv) == ["serve"]


def test_exposed_port_and_env_match_the_settings() -> None:
    """Every TIERDESK_* ENV is a real setting; EXPOSE is TIERDESK_PORT; the host listens on all."""
    env = final_env()
    names = {k for k in env if k.startswith("TIERDESK_")}
    assert names <= SETTING_NAMES, names - SETTING_NAMES
    assert {"TIERDESK_POLICY", "TIERDESK_PORT", "TIERDESK_HOST"} <= names
    assert env["TIERDESK_HOST"] == "0.0.0.0"
    (expose,) = final("EXPOSE")
    assert expose.value.split() == [env["TIERDESK_PORT"]]


def test_no_secret_is_baked_into_the_image() -> None:
    """No ENV or ARG carries a token, secret, password or PAT."""
    for i in INSTRUCTIONS:
        if i.name in ("ENV", "ARG"):
            for word in ("TOKEN", "SECRET", "PASSWORD", "_PAT"):
                assert word not in i.value.upper(), i


def test_policy_is_expected_as_a_mounted_file() -> None:
    """TIERDESK_POLICY is a file under /etc/tierdesk, which the image creates but does not fill."""
    policy = final_env()["TIERDESK_POLICY"]
    assert policy == "/etc/tierdesk/policy.yaml"
    copies = [i.value for i in INSTRUCTIONS if i.name == "COPY"]
    assert not any(policy in c for c in copies), "the policy is mounted, not baked in"
    assert any("/etc/tierdesk" in i.value for i in final("RUN"))


def test_copy_sources_exist_in_the_build_context() -> None:
    """Every COPY source (context = repository root) exists, so `docker build` finds it."""
    for i in INSTRUCTIONS:
        if i.name != "COPY" or i.value.startswith("--from"):
            continue
        *sources, _dest = shlex.split(i.value)
        for src in sources:
            assert (ROOT / src).exists(), f"COPY {src}: not in the repository root"


def test_dockerignore_keeps_secrets_and_local_state_out() -> None:
    """deploy/Dockerfile.dockerignore excludes .env files, venvs, databases and .git."""
    patterns = [
        line.strip() for line in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def ignored(path: str) -> bool:
        verdict = False
        for p in patterns:
            negate = p.startswith("!")
            pat = p.lstrip("!")
            if fnmatch.fnmatch(path, pat) or fnmatch.fnmatch(path, pat.replace("**/", "")):
                verdict = not negate
        return verdict

    for path in (".env", "deploy/tierdesk.env", ".venv", "tierdesk.db", "tierdesk.db-wal", ".git"):
        assert ignored(path), f"{path} would be sent to the builder"
    for path in ("pyproject.toml", "README.md", "tiering", "connectors", "webhooks"):
        assert not ignored(path), f"{path} is needed by the build"


def test_healthcheck_probes_healthz() -> None:
    """HEALTHCHECK is exec form, standard-library Python, against /healthz on TIERDESK_PORT."""
    argv = healthcheck_argv()
    assert argv[:2] == ["python", "-c"]
    assert "/healthz" in argv[2] and "TIERDESK_PORT" in argv[2]


def test_healthcheck_command_passes_against_a_running_receiver(live_server: LiveServer) -> None:
    """The HEALTHCHECK command, run as written, exits 0 against a live `serve`, on a real route."""
    assert "/healthz" in live_server.get_paths
    argv = healthcheck_argv()
    env = {**os.environ, "TIERDESK_PORT": str(live_server.port)}
    done = subprocess.run([sys.executable, *argv[1:]], env=env, capture_output=True, timeout=30)
    assert done.returncode == 0, done.stderr.decode()


def test_healthcheck_command_fails_when_nothing_listens() -> None:
    """The same command exits non-zero when the receiver is down (so Docker marks it unhealthy)."""
    argv = healthcheck_argv()
    env = {**os.environ, "TIERDESK_PORT": str(free_port())}
    done = subprocess.run([sys.executable, *argv[1:]], env=env, capture_output=True, timeout=30)
    assert done.returncode != 0


def test_stop_signal_is_sigterm() -> None:
    """The container stops with SIGTERM, which `tierdesk serve` handles gracefully."""
    assert [i.value for i in final("STOPSIGNAL")] == ["SIGTERM"]
