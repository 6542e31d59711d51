"""Hardening: no secret committed, locked-down containers, and deny-by-default networking."""

from __future__ import annotations

import re

import yaml
from pydantic import SecretStr

from services.privacy.keystore_key import SETTING as KEK
from services.settings.cities import Settings
from services.settings.node import NodeSettings
from services.settings.stream import StreamSettings
from tests.deploy.conftest import (
    DEPLOY,
    ROOT,
    Doc,
    containers,
    effective_env,
    of_kind,
    one,
    pod_template,
    role,
)

# The Kafka cluster's CA and the city's Kafka password, for the roles that talk to Kafka.
KAFKA_FILES = ("CIVFED_KAFKA_SSL_CAFILE", "CIVFED_KAFKA_SASL_PASSWORD_FILE")


def secret_settings() -> set[str]:
    """Settings that carry secrets: SecretStr fields, and passwords."""
    names = set()
    for model in (Settings, NodeSettings, StreamSettings):
        for name, f in model.model_fields.items():
            # A *_FILE setting is a path; its content is checked to be on a Secret volume.
            if f.annotation is SecretStr or ("PASSWORD" in name and not name.endswith("_FILE")):
                names.add(name)
    return names


def test_no_secret_is_committed_anywhere_under_deploy() -> None:
    for path in sorted(DEPLOY.rglob("*")) + sorted((ROOT / "cities").rglob("kustomization.yaml")):
        if path.suffix not in (".yaml", ".yml") or not path.is_file():
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc:
                continue
            assert doc.get("kind") != "Secret", f"{path}: a Secret is committed"
            assert not doc.get("secretGenerator"), f"{path}: generates a Secret from committed values"


def test_no_shared_staff_or_token_secret_is_left(overlays: dict[str, list[Doc]]) -> None:
    """Staff sign in at the city's identity provider and holder and till credentials are
    stored hashed: the shared staff token and the token-signing secret are gone from the
    settings, and no manifest still hands them to a pod."""
    settings = {n for m in (Settings, NodeSettings, StreamSettings) for n in m.model_fields}
    assert not {"CIVFED_STAFF_TOKEN", "CIVFED_TOKEN_SECRET"} & settings
    for name, docs in overlays.items():
        rendered = yaml.safe_dump_all(docs)
        for gone in ("CIVFED_STAFF_TOKEN", "CIVFED_TOKEN_SECRET", "civfed-node-tokens"):
            assert gone not in rendered, (name, gone)


def test_secrets_come_only_from_secret_references(overlays: dict[str, list[Doc]]) -> None:
    sensitive = secret_settings()
    assert "POSTGRES_PASSWORD" in sensitive
    for name, docs in overlays.items():
        for secret in of_kind(docs, "Secret"):
            assert not secret.get("data") and not secret.get("stringData"), (name, secret["metadata"]["name"])
        for cm in of_kind(docs, "ConfigMap"):
            assert not sensitive & set(cm["data"]), (name, cm["metadata"]["name"])
            for key, value in cm["data"].items():
                assert "PRIVATE KEY" not in value and not re.search(r"://[^/\s]*:[^@\s]+@", value), (
                    name,
                    key,
                )
        for dep, c in containers(docs):
            env = effective_env(docs, c)
            for setting in sensitive & set(env):
                assert isinstance(env[setting], tuple) and env[setting][0] == "secret", (name, setting)
            # Private keys are files on Secret volumes, by name only. The key-store key
            # goes only to the roles that open the city's store.
            volumes = {v["name"]: v for v in pod_template(dep)["spec"]["volumes"]}
            mounts = {m["mountPath"]: volumes[m["name"]] for m in c["volumeMounts"]}
            files = {
                "node": ("CIVFED_TLS_KEY_FILE", "CIVFED_TLS_CERT_FILE", "CIVFED_SIGNING_KEY_FILE", KEK),
                "relay": (KEK, *KAFKA_FILES),
                "projector": KAFKA_FILES,
                "retention": (KEK,),
            }.get(role(c), ())
            for setting in files:
                folder = env[setting].rsplit("/", 1)[0]
                assert set(mounts[folder]["secret"]) == {"secretName", "defaultMode"}, (name, setting)
            if KEK in files:
                assert mounts["/etc/civfed/keystore"]["secret"]["secretName"] == "civfed-keystore-key"
            else:
                assert KEK not in env and "civfed-keystore-key" not in str(volumes), (name, role(c))


def test_every_container_is_locked_down(overlays: dict[str, list[Doc]]) -> None:
    uid = int(re.findall(r"^USER (\d+):(\d+)$", (DEPLOY / "Dockerfile").read_text(), re.M)[-1][0])
    for name, docs in overlays.items():
        for dep, c in containers(docs):
            where = (name, dep["metadata"]["name"], c["name"])
            pod = pod_template(dep)["spec"]
            sc = c["securityContext"]
            assert sc["runAsNonRoot"] is True, where
            assert sc["readOnlyRootFilesystem"] is True, where
            assert sc["allowPrivilegeEscalation"] is False, where
            assert sc["capabilities"] == {"drop": ["ALL"]}, where
            assert sc["seccompProfile"] == {"type": "RuntimeDefault"}, where
            assert pod["securityContext"]["runAsNonRoot"] is True, where
            assert pod["securityContext"]["runAsUser"] == uid, where  # the image's own user
            assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, where
            assert pod["automountServiceAccountToken"] is False, where
            assert "hostNetwork" not in pod and "hostPID" not in pod, where
            # A read-only root needs a writable /tmp: an emptyDir, bounded.
            volumes = {v["name"]: v for v in pod["volumes"]}
            tmp = [m for m in c["volumeMounts"] if m["mountPath"] == "/tmp"]
            assert len(tmp) == 1 and volumes[tmp[0]["name"]]["emptyDir"]["sizeLimit"], where
            for kind in ("requests", "limits"):
                assert set(c["resources"][kind]) == {"cpu", "memory"}, (where, kind)
            assert not c["image"].endswith(":latest") and ":" in c["image"], where
    assert one(overlays["rome"], "ServiceAccount", "civfed")["automountServiceAccountToken"] is False


def _selects(policy: Doc, labels: dict[str, str]) -> bool:
    sel = policy["spec"]["podSelector"]
    if not sel:
        return True
    if not sel.get("matchLabels", {}).items() <= labels.items():
        return False
    return all(labels.get(e["key"]) in e["values"] for e in sel.get("matchExpressions", []))


def test_network_policies_deny_by_default_and_open_only_what_each_role_needs(
    overlays: dict[str, list[Doc]],
) -> None:
    grpc_port = NodeSettings.model_fields["CIVFED_GRPC_PORT"].default
    public_port = NodeSettings.model_fields["CIVFED_PUBLIC_PORT"].default
    http_port = StreamSettings.model_fields["CIVFED_DASHBOARD_PORT"].default
    for name, docs in overlays.items():
        policies = of_kind(docs, "NetworkPolicy")
        deny = one(docs, "NetworkPolicy", "default-deny-all")["spec"]
        assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}, name
        for dep, c in containers(docs):
            labels = pod_template(dep)["metadata"]["labels"]
            env = effective_env(docs, c)
            pg, kafka = int(env["POSTGRES_PORT"]), int(env["CIVFED_KAFKA_BOOTSTRAP"].rsplit(":", 1)[1])
            applying = [p for p in policies if _selects(p, labels)]
            ingress = {
                p["port"] for pol in applying for r in pol["spec"].get("ingress", []) for p in r["ports"]
            }
            egress = {
                p["port"] for pol in applying for r in pol["spec"].get("egress", []) for p in r["ports"]
            }
            metrics = {int(env["CIVFED_METRICS_PORT"])}
            expected_in = {
                "node": {grpc_port, public_port} | metrics,
                "relay": metrics,
                "projector": metrics,
                "dashboard": {http_port},
            }.get(role(c), set())
            # The node fetches the identity provider's keys over https when the JWKS is a URL.
            jwks_url = str(env.get("CIVFED_OIDC_JWKS", "")).startswith("https://")
            expected_out = {
                "node": {53, pg, grpc_port} | ({443} if jwks_url else set()),
                "relay": {53, pg, kafka},
                "projector": {53, pg, kafka},
                "dashboard": {53, pg},
                "retention": {53, pg},
            }[role(c)]
            assert ingress == expected_in, (name, role(c), ingress)
            assert egress == expected_out, (name, role(c), egress)
        for pol in policies:
            for rule in pol["spec"].get("ingress", []) + pol["spec"].get("egress", []):
                assert rule.get("ports"), (name, pol["metadata"]["name"], "a rule open on every port")
        # Database egress goes to the city's own PostgreSQL range, not anywhere.
        pg_rule = one(docs, "NetworkPolicy", "allow-postgres-egress")["spec"]["egress"][0]["to"]
        assert [t["ipBlock"]["cidr"] for t in pg_rule] != ["0.0.0.0/0"], name
        dns = one(docs, "NetworkPolicy", "allow-dns-egress")["spec"]["egress"][0]["to"][0]
        assert dns["podSelector"]["matchLabels"] == {"k8s-app": "kube-dns"}, name
        # The public port is open only to the gateway's proxies, never to every address;
        # the mutual-TLS port is open to partners anywhere and needs their certificate.
        node_rules = [
            r
            for p in policies
            if p["metadata"]["name"].startswith("allow-")
            for r in p["spec"].get("ingress", [])
        ]
        public_rules = [r for r in node_rules if {p["port"] for p in r["ports"]} & {public_port}]
        assert public_rules, name
        for rule in public_rules:
            assert [p["port"] for p in rule["ports"]] == [public_port], (name, rule)
            assert rule.get("from") and all("ipBlock" not in peer for peer in rule["from"]), (name, rule)
            for peer in rule["from"]:
                assert peer["namespaceSelector"]["matchLabels"] and peer["podSelector"]["matchLabels"], name
        # Metrics only to Prometheus in the monitoring namespace: no address range, no port else.
        for rule in one(docs, "NetworkPolicy", "allow-metrics-ingress")["spec"]["ingress"]:
            assert rule.get("from") and all("ipBlock" not in peer for peer in rule["from"]), (name, rule)
            for peer in rule["from"]:
                assert peer["namespaceSelector"]["matchLabels"] and peer["podSelector"]["matchLabels"], name
        federation = one(docs, "NetworkPolicy", "allow-federation-ingress")["spec"]["ingress"]
        assert [p["port"] for r in federation for p in r["ports"]] == [grpc_port], name
