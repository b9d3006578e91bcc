"""deploy/k8s/: Deployments, Service, Secret, ConfigMap and PodDisruptionBudgets, well-formed and
consistent with each other, with the image and with the receiver's real endpoints."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.cli_check import parse_cli
from tests.deploy.conftest import LiveServer
from tests.deploy.deployfiles import DEPLOY, SETTING_NAMES, yaml_documents
from tests.deploy.test_dockerfile import final, final_env
from tiering.policy import load_policy

K8S = DEPLOY / "k8s"
MANIFESTS = sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")
DOCS: list[tuple[Path, dict[str, Any]]] = [(p, d) for p in MANIFESTS for d in yaml_documents(p)]


def of_kind(kind: str) -> list[dict[str, Any]]:
    return [d for _, d in DOCS if d["kind"] == kind]


def one(kind: str, name: str) -> dict[str, Any]:
    (found,) = [d for d in of_kind(kind) if d["metadata"]["name"] == name]
    assert isinstance(found, dict)
    return found


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    (c,) = deployment["spec"]["template"]["spec"]["containers"]
    assert isinstance(c, dict)
    return c


def env(c: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in c.get("env", [])}


def test_every_document_is_well_formed() -> None:
    """Each manifest has apiVersion, kind and a name; the kinds the issue asks for are all there."""
    for path, doc in DOCS:
        assert doc.get("apiVersion") and doc.get("kind"), path
        assert doc["metadata"]["name"], path
    kinds = sorted(d["kind"] for _, d in DOCS)
    assert kinds == [
        "ConfigMap", "Deployment", "Deployment", "PodDisruptionBudget", "PodDisruptionBudget",
        "Secret", "Service",
    ]


def test_kustomization_lists_every_manifest() -> None:
    """kustomization.yaml names each manifest of the folder, so `kubectl apply -k` applies all."""
    (kustomization,) = yaml_documents(K8S / "kustomization.yaml")
    assert sorted(kustomization["resources"]) == sorted(p.name for p in MANIFESTS)


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectl_kustomize_renders_the_folder() -> None:
    """`kubectl kustomize deploy/k8s` (offline) renders every resource without error."""
    done = subprocess.run(
        ["kubectl", "kustomize", str(K8S)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("\nkind: ") + done.stdout.startswith("kind: ") >= len(DOCS)


@pytest.mark.parametrize(
    ("name", "command"),
    [
        ("tierdesk-receiver", ["serve", "--no-worker"]),
        ("tierdesk-worker", ["worker", "--metrics-port", "9108"]),
    ],
)
def test_deployments_run_real_commands(name: str, command: list[str]) -> None:
    """Each Deployment's args, after the image's ENTRYPOINT, is a command the CLI accepts."""
    c = container(one("Deployment", name))
    (entry,) = final("ENTRYPOINT")
    argv = [*json.loads(entry.value), *c["args"]]
    assert c["args"] == command
    assert parse_cli(argv) == [command[0]]


def test_deployment_selectors_match_their_pods() -> None:
    """Each Deployment's selector matches its pod template's labels."""
    for d in of_kind("Deployment"):
        selector = d["spec"]["selector"]["matchLabels"]
        labels = d["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= labels.items(), d["metadata"]["name"]


def test_receiver_probes_point_at_real_endpoints(live_server: LiveServer) -> None:
    """liveness/startup GET /healthz and readiness GET /readyz, on the named container port."""
    c = container(one("Deployment", "tierdesk-receiver"))
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    probes = {k: c[k]["httpGet"] for k in ("livenessProbe", "readinessProbe", "startupProbe")}
    assert probes["livenessProbe"]["path"] == "/healthz"
    assert probes["readinessProbe"]["path"] == "/readyz"
    for probe in probes.values():
        assert probe["path"] in live_server.get_paths
        assert probe["port"] in ports
    assert str(ports["http"]) == env(c)["TIERDESK_PORT"] == final_env()["TIERDESK_PORT"]


def test_worker_probe_is_its_metrics_port() -> None:
    """The worker's liveness probe reads /metrics on the port its --metrics-port argument opens."""
    c = container(one("Deployment", "tierdesk-worker"))
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    probe = c["livenessProbe"]["httpGet"]
    assert probe["path"] == "/metrics"
    assert str(ports[probe["port"]]) == c["args"][c["args"].index("--metrics-port") + 1]


def test_pods_run_as_the_image_user_without_privileges() -> None:
    """runAsNonRoot with the Dockerfile's UID; no privilege escalation; read-only root; requests
    and a memory limit on every container."""
    uid = int(final("USER")[-1].value.split(":")[0])
    for d in of_kind("Deployment"):
        spec = d["spec"]["template"]["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] == uid
        c = container(d)
        assert c["securityContext"]["allowPrivilegeEscalation"] is False
        assert c["securityContext"]["readOnlyRootFilesystem"] is True
        assert c["resources"]["requests"]["cpu"] and c["resources"]["requests"]["memory"]
        assert c["resources"]["limits"]["memory"]


def test_grace_period_outlasts_uvicorn_shutdown(live_server: LiveServer) -> None:
    """terminationGracePeriodSeconds is longer than uvicorn's graceful shutdown."""
    for d in of_kind("Deployment"):
        grace = d["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        assert grace > live_server.graceful_seconds


def test_policy_configmap_is_mounted_at_tierdesk_policy() -> None:
    """Both Deployments mount the policy ConfigMap read-only so that the file is TIERDESK_POLICY."""
    (cm,) = of_kind("ConfigMap")
    for d in of_kind("Deployment"):
        c = container(d)
        policy = env(c)["TIERDESK_POLICY"]
        assert policy == final_env()["TIERDESK_POLICY"]
        volumes = {v["name"]: v for v in d["spec"]["template"]["spec"]["volumes"]}
        hits = []
        for m in c["volumeMounts"]:
            source = volumes[m["name"]].get("configMap")
            if source is None:
                continue
            assert source["name"] == cm["metadata"]["name"]
            assert m["readOnly"] is True
            for item in source["items"]:
                assert item["key"] in cm["data"]
                hits.append(f"{m['mountPath'].rstrip('/')}/{item['path']}")
        assert hits == [policy], d["metadata"]["name"]


def test_policy_configmap_holds_a_valid_policy() -> None:
    """The ConfigMap's policy.yaml passes the same validation as `tierdesk policy check`."""
    (cm,) = of_kind("ConfigMap")
    policy = load_policy(cm["data"]["policy.yaml"], source="deploy/k8s/configmap.yaml")
    assert policy.tiers


def test_secret_keys_and_env_names_are_settings() -> None:
    """The Secret's keys and each container's env names are Settings fields, and envFrom names
    the Secret that exists."""
    (secret,) = of_kind("Secret")
    assert set(secret["stringData"]) <= SETTING_NAMES, set(secret["stringData"]) - SETTING_NAMES
    assert secret["stringData"]["TIERDESK_DATABASE_URL"].startswith("postgresql://")
    for d in of_kind("Deployment"):
        c = container(d)
        assert set(env(c)) <= SETTING_NAMES
        assert c["envFrom"] == [{"secretRef": {"name": secret["metadata"]["name"]}}]
        for key in env(c):
            assert key not in secret["stringData"], f"{key} set twice: in env and in the Secret"


def test_service_targets_the_receiver_port() -> None:
    """The Service selects only receiver pods and forwards to their named http port."""
    (svc,) = of_kind("Service")
    receiver = one("Deployment", "tierdesk-receiver")
    worker = one("Deployment", "tierdesk-worker")
    selector = svc["spec"]["selector"]
    assert selector.items() <= receiver["spec"]["template"]["metadata"]["labels"].items()
    assert not selector.items() <= worker["spec"]["template"]["metadata"]["labels"].items()
    names = {p["name"] for p in container(receiver)["ports"]}
    assert all(p["targetPort"] in names for p in svc["spec"]["ports"])


def test_disruption_budgets_cover_receivers_and_workers() -> None:
    """One PodDisruptionBudget per Deployment keeps at least one pod, below its replica count."""
    budgets = of_kind("PodDisruptionBudget")
    for d in of_kind("Deployment"):
        labels = d["spec"]["template"]["metadata"]["labels"]
        (pdb,) = [
            b for b in budgets if b["spec"]["selector"]["matchLabels"].items() <= labels.items()
        ]
        assert 1 <= pdb["spec"]["minAvailable"] < d["spec"]["replicas"]
