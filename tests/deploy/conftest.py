"""The Kubernetes manifests as `kubectl kustomize` renders them, and helpers to read them."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import need

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
# Overlay folder -> city key (folder names follow Kubernetes naming, keys the city files).
OVERLAYS = {
    "rome": "rome",
    "vienna": "vienna",
    "sint-niklaas": "sint_niklaas",
    "bologna": "bologna",
    "zwolle": "zwolle",
}
ROLE_OF_COMMAND = {
    "serve": "node",
    "relay": "relay",
    "project": "projector",
    "dashboard": "dashboard",
    "retention": "retention",
}

Doc = dict[str, Any]


def kubectl() -> str:
    found = shutil.which("kubectl") or ("/usr/bin/kubectl" if os.path.exists("/usr/bin/kubectl") else None)
    if found is None:
        need("kubectl (with kustomize) is not installed: cannot render the manifests")
        raise AssertionError("unreachable")
    return found


def render(folder: Path) -> list[Doc]:
    out = subprocess.run(
        [kubectl(), "kustomize", str(folder)], capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode == 0, f"kubectl kustomize {folder} failed:\n{out.stderr}"
    return [d for d in yaml.safe_load_all(out.stdout) if d]


@pytest.fixture(scope="session")
def overlays() -> dict[str, list[Doc]]:
    """Every city overlay, rendered: overlay folder -> documents."""
    return {name: render(K8S / "overlays" / name) for name in OVERLAYS}


@pytest.fixture(scope="session")
def kafka_docs() -> list[Doc]:
    return render(K8S / "kafka")


def one(docs: list[Doc], kind: str, name: str) -> Doc:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def of_kind(docs: list[Doc], kind: str) -> list[Doc]:
    return [d for d in docs if d["kind"] == kind]


def generated(docs: list[Doc], kind: str, prefix: str) -> Doc:
    """A generated ConfigMap or Secret, whose name carries a content hash."""
    found = [d for d in of_kind(docs, kind) if d["metadata"]["name"].startswith(prefix + "-")]
    assert len(found) == 1, f"expected one generated {kind} {prefix}, found {len(found)}"
    return found[0]


def pod_template(workload: Doc) -> Doc:
    """The pod template of a Deployment or a CronJob."""
    if workload["kind"] == "CronJob":
        return dict(workload["spec"]["jobTemplate"]["spec"]["template"])
    return dict(workload["spec"]["template"])


def containers(docs: list[Doc]) -> Iterator[tuple[Doc, Doc]]:
    """(workload, container) for every container and init container of every Deployment
    and CronJob."""
    for dep in of_kind(docs, "Deployment") + of_kind(docs, "CronJob"):
        spec = pod_template(dep)["spec"]
        for c in spec.get("initContainers", []) + spec["containers"]:
            yield dep, c


def role(container: Doc) -> str:
    return ROLE_OF_COMMAND[container["args"][0]]


def effective_env(docs: list[Doc], container: Doc) -> dict[str, Any]:
    """Name -> literal value, or ("secret", name, key) for values a Secret supplies."""
    env: dict[str, Any] = {}
    for source in container.get("envFrom", []):
        assert "configMapRef" in source, f"envFrom only from ConfigMaps, not {source}"
        env.update(one(docs, "ConfigMap", source["configMapRef"]["name"])["data"])
    for var in container.get("env", []):
        if "value" in var:
            env[var["name"]] = var["value"]
            continue
        ref = var["valueFrom"]
        if "secretKeyRef" in ref:
            env[var["name"]] = ("secret", ref["secretKeyRef"]["name"], ref["secretKeyRef"]["key"])
        else:
            cm = ref["configMapKeyRef"]
            env[var["name"]] = one(docs, "ConfigMap", cm["name"])["data"][cm["key"]]
    return env


def expand(arg: str, env: dict[str, Any]) -> str:
    """Kubernetes' $(VAR) expansion in command and args."""
    for name, value in env.items():
        if isinstance(value, str):
            arg = arg.replace(f"$({name})", value)
    return arg
