"""The manifests agree with the application: settings, files, commands and ports."""

from __future__ import annotations

import base64
import json
import re
import secrets
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic_settings import BaseSettings

from civfed.v1 import clearing_pb2, federation_pb2
from services.cli.check_config import POSTGRES_REQUIRES, ROLE_REQUIRES, check_config
from services.cli.main import build_parser
from services.cli.rights import cmd_retention_run
from services.cli.stream import cmd_dashboard, cmd_project, cmd_relay
from services.grpc.server import SERVICES, cmd_serve
from services.privacy.journal import SETTING as JOURNAL
from services.privacy.keystore_key import SETTING as KEK
from services.settings.cities import Settings
from services.settings.node import NodeSettings, PartnerNode
from services.settings.stream import StreamSettings
from tests.deploy.conftest import (
    OVERLAYS,
    ROOT,
    Doc,
    containers,
    effective_env,
    expand,
    generated,
    one,
    pod_template,
    role,
)

MODELS: dict[str, list[type[BaseSettings]]] = {
    "node": [Settings, NodeSettings],
    "relay": [Settings, StreamSettings],
    "projector": [Settings, StreamSettings],
    "dashboard": [Settings, StreamSettings],
    "retention": [Settings],
}
# Read by libpq for every PostgreSQL connection, not by civfed's settings.
LIBPQ = {"PGSSLMODE", "PGSSLROOTCERT", "PGCONNECT_TIMEOUT", "PGAPPNAME"}
COMMANDS = {
    "node": cmd_serve,
    "relay": cmd_relay,
    "projector": cmd_project,
    "dashboard": cmd_dashboard,
    "retention": cmd_retention_run,
}


def default(model: type[BaseSettings], name: str) -> Any:
    return model.model_fields[name].default


def required_settings(role_name: str, postgres: bool) -> set[str]:
    """Fields without a default in the role's settings models, plus the role's own needs."""
    names = {n for m in MODELS[role_name] for n, f in m.model_fields.items() if f.is_required()}
    names |= set(ROLE_REQUIRES.get(role_name, ()))
    return names | set(POSTGRES_REQUIRES.get(role_name, ())) if postgres else names


def test_the_required_settings_are_derived_from_the_models() -> None:
    assert {"CIVFED_CITY", "CIVFED_TLS_KEY_FILE", "CIVFED_SIGNING_KEY_FILE"} <= required_settings(
        "node", False
    )
    assert "CIVFED_KAFKA_BOOTSTRAP" in required_settings("relay", False)
    # The roles that open a city's store need the key-store key on PostgreSQL.
    for name in ("node", "relay", "retention"):
        assert KEK not in required_settings(name, False) and KEK in required_settings(name, True)
    # The roles that erase keep the erasure journal apart from the store on PostgreSQL.
    for name in ("node", "retention"):
        assert JOURNAL not in required_settings(name, False) and JOURNAL in required_settings(name, True)
    for name in ("projector", "dashboard"):
        assert KEK not in required_settings(name, True)


def test_every_required_setting_is_set_in_every_overlay(overlays: dict[str, list[Doc]]) -> None:
    for name, docs in overlays.items():
        for dep, c in containers(docs):
            env = effective_env(docs, c)
            postgres = env["PERSISTENCE_MODULE"] == "eventsourcing.postgres"
            missing = required_settings(role(c), postgres) - set(env)
            assert not missing, f"{name}/{dep['metadata']['name']}: {sorted(missing)} not set"
            # Every name the manifests set is a real setting: a typo would be silently ignored.
            known = {n for m in (Settings, NodeSettings, StreamSettings) for n in m.model_fields} | LIBPQ
            assert set(env) <= known, (name, sorted(set(env) - known))
            if env["PERSISTENCE_MODULE"] == "eventsourcing.postgres":
                for pg in ("POSTGRES_HOST", "POSTGRES_DBNAME", "POSTGRES_USER", "POSTGRES_PASSWORD"):
                    assert env.get(pg), (name, pg)


def _materialise(docs: list[Doc], c: Doc, dep: Doc, root: Path) -> dict[str, str]:
    """The container's environment with its mounts laid out under `root`.

    ConfigMap volumes get their rendered content. Secret volumes and optional
    ConfigMaps are created by each city; they get stand-in files at the paths the
    settings name, and secretKeyRef values get stand-in strings.
    """
    volumes = {v["name"]: v for v in pod_template(dep)["spec"]["volumes"]}
    mounts = {m["mountPath"]: volumes[m["name"]] for m in c.get("volumeMounts", [])}
    external: list[str] = []
    for path, vol in mounts.items():
        target = root / path.lstrip("/")
        target.mkdir(parents=True, exist_ok=True)
        cm = vol.get("configMap")
        if cm and not cm.get("optional"):
            data = one(docs, "ConfigMap", cm["name"])["data"]
            for item in cm.get("items") or [{"key": k, "path": k} for k in data]:
                (target / item["path"]).parent.mkdir(parents=True, exist_ok=True)
                (target / item["path"]).write_text(data[item["key"]])
        elif "secret" in vol or cm:
            external.append(path)
    env: dict[str, str] = {}
    read = {n for m in MODELS[role(c)] for n in m.model_fields}
    for key, value in effective_env(docs, c).items():
        if key not in read:
            continue  # another role's setting: this one ignores it
        if isinstance(value, tuple):
            env[key] = secrets.token_urlsafe(24)
            continue
        env[key] = value

    def local(path: str) -> str:
        for mount in mounts:
            if path.startswith(mount.rstrip("/") + "/"):
                if mount in external:
                    (root / path.lstrip("/")).write_text("stand-in for a file the city provides\n")
                return str(root / path.lstrip("/"))
        raise AssertionError(f"{dep['metadata']['name']}: {path} is on no mounted volume")

    for key, value in list(env.items()):
        # _FILE, and kafka-python's spellings: CIVFED_KAFKA_SSL_CAFILE, _CERTFILE, _KEYFILE.
        if key.endswith(("FILE", "_DIR")) and value.startswith("/"):
            if key == "CIVFED_DATA_DIR":
                env[key] = str(root / value.lstrip("/"))  # /tmp: an emptyDir
                continue
            env[key] = local(value) if key.endswith("FILE") else local(value + "/x")[:-2]
    if KEK in env:  # the Secret's stand-in must be a key the app accepts
        Path(env[KEK]).write_text(base64.b64encode(secrets.token_bytes(32)).decode() + "\n")
    if "CIVFED_PARTNERS" in env:
        partners = json.loads(env["CIVFED_PARTNERS"])
        for p in partners.values():
            p["public_key_file"] = local(p["public_key_file"])
        env["CIVFED_PARTNERS"] = json.dumps(partners)
    return env


def test_check_config_passes_for_every_role_with_each_overlays_environment(
    overlays: dict[str, list[Doc]], tmp_path: Path
) -> None:
    """The settings, the mounted city files and the paths they name, as the app reads them."""
    for name, docs in overlays.items():
        for dep, c in containers(docs):
            root = tmp_path / name / dep["metadata"]["name"]
            env = _materialise(docs, c, dep, root)
            report = check_config(role(c), None, env)
            assert report.problems == [], (name, role(c), report.problems)
            assert [x.split()[0] for x in report.checked] == [OVERLAYS[name]], (name, role(c))
            assert report.warnings == [], (name, role(c), report.warnings)


def test_city_files_are_the_repositorys_and_mounted_read_only(overlays: dict[str, list[Doc]]) -> None:
    for name, docs in overlays.items():
        key = OVERLAYS[name]
        data = generated(docs, "ConfigMap", "civfed-city")["data"]
        for file in ("city.toml", "rulebook.toml"):
            assert data[file] == (ROOT / "cities" / key / file).read_text(), (name, file)
        for _dep, c in containers(docs):
            for m in c.get("volumeMounts", []):
                assert m.get("readOnly") or m["mountPath"] == "/tmp", (name, m)


def test_partners_are_configured_for_every_city_in_the_federation_terms(
    overlays: dict[str, list[Doc]], tmp_path: Path
) -> None:
    stand_in = tmp_path / "partner.pub"
    stand_in.write_text("a partner's public key\n")
    for name, docs in overlays.items():
        node = one(docs, "Deployment", "civfed-node")["spec"]["template"]["spec"]["containers"][0]
        partners = json.loads(effective_env(docs, node)["CIVFED_PARTNERS"])
        terms = tomllib.loads((ROOT / "cities" / OVERLAYS[name] / "city.toml").read_text()).get(
            "federation", {}
        )
        assert set(partners) == set(terms.get("accepts", {})) | set(terms.get("redeemable_at", [])), name
        for city, p in partners.items():
            PartnerNode.model_validate({**p, "public_key_file": stand_in})  # the app's own address rule
            assert p["public_key_file"] == f"/etc/civfed/partners/{city}.pub"


def test_each_roles_command_exists_in_the_image(overlays: dict[str, list[Doc]]) -> None:
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["civfed"]' in dockerfile
    assert 'civfed = "services.cli:main"' in (ROOT / "pyproject.toml").read_text()
    parser = build_parser()
    for name, docs in overlays.items():
        for _dep, c in containers(docs):
            assert "command" not in c, "the image's entrypoint is the civfed command"
            env = effective_env(docs, c)
            args = [expand(a, env) for a in c["args"]]
            assert not any("$(" in a for a in args), (name, args)
            parsed = parser.parse_args(args)
            assert parsed.func is COMMANDS[role(c)], (name, args)
            if role(c) in ("node", "retention"):
                assert parsed.city == OVERLAYS[name]
            if role(c) == "projector":
                assert parsed.follow


def _ports(c: Doc) -> dict[str, int]:
    return {p["name"]: p["containerPort"] for p in c.get("ports", [])}


def test_ports_and_probes_match_the_apps_defaults(overlays: dict[str, list[Doc]]) -> None:
    grpc_port = default(NodeSettings, "CIVFED_GRPC_PORT")
    public_port = default(NodeSettings, "CIVFED_PUBLIC_PORT")
    health_port = default(NodeSettings, "CIVFED_HEALTH_PORT")
    http_port = default(StreamSettings, "CIVFED_DASHBOARD_PORT")
    grace = default(NodeSettings, "CIVFED_SHUTDOWN_GRACE_SECONDS")
    for name, docs in overlays.items():
        node = one(docs, "Deployment", "civfed-node")
        c = node["spec"]["template"]["spec"]["containers"][0]
        env = effective_env(docs, c)
        # Ports are left to the defaults; where set, they must agree.
        for setting, port in (
            ("CIVFED_GRPC_PORT", grpc_port),
            ("CIVFED_PUBLIC_PORT", public_port),
            ("CIVFED_HEALTH_PORT", health_port),
        ):
            assert int(env.get(setting, port)) == port, (name, setting)
        metrics_port = int(env["CIVFED_METRICS_PORT"])
        assert _ports(c) == {
            "grpc": grpc_port,
            "grpc-public": public_port,
            "grpc-health": health_port,
            "metrics": metrics_port,
        }
        assert env["CIVFED_GRPC_HOST"] == "0.0.0.0"  # the kubelet and the Service reach the pod IP
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            assert c[probe]["grpc"] == {"port": health_port}, (name, probe)
        pause = c["lifecycle"]["preStop"]["sleep"]["seconds"]
        assert node["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > pause + grace
        svc = one(docs, "Service", "civfed-node")["spec"]["ports"]
        assert [(p["port"], p["targetPort"]) for p in svc] == [(grpc_port, "grpc")]
        public = one(docs, "Service", "civfed-node-public")["spec"]
        assert public["selector"] == node["spec"]["selector"]["matchLabels"]
        assert [(p["name"], p["port"], p["targetPort"]) for p in public["ports"]] == [
            ("grpc-public", public_port, "grpc-public")
        ]

        # Node, relay and projector serve metrics on the pod IP, and say where to scrape.
        for component in ("node", "relay", "projector"):
            dep = one(docs, "Deployment", f"civfed-{component}")
            served = dep["spec"]["template"]["spec"]["containers"][0]
            senv = effective_env(docs, served)
            assert senv["CIVFED_METRICS_HOST"] == "0.0.0.0", (name, component)
            assert int(senv["CIVFED_METRICS_PORT"]) == metrics_port, (name, component)
            assert _ports(served)["metrics"] == metrics_port, (name, component)
            annotations = dep["spec"]["template"]["metadata"]["annotations"]
            assert annotations == {
                "prometheus.io/scrape": "true",
                "prometheus.io/port": str(metrics_port),
                "prometheus.io/path": "/metrics",
            }, (name, component)
        metrics_in = one(docs, "NetworkPolicy", "allow-metrics-ingress")["spec"]["ingress"]
        assert [p["port"] for rule in metrics_in for p in rule["ports"]] == [metrics_port]

        dash = one(docs, "Deployment", "civfed-dashboard")["spec"]["template"]["spec"]["containers"][0]
        denv = effective_env(docs, dash)
        assert int(denv.get("CIVFED_DASHBOARD_PORT", http_port)) == http_port
        assert denv["CIVFED_DASHBOARD_HOST"] == "0.0.0.0"
        assert _ports(dash) == {"http": http_port}
        assert dash["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": http_port}
        assert dash["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": http_port}
        assert one(docs, "Service", "civfed-dashboard")["spec"]["ports"][0]["targetPort"] == "http"

        ingress = one(docs, "NetworkPolicy", "allow-federation-ingress")["spec"]["ingress"]
        assert ingress == [{"ports": [{"port": grpc_port, "protocol": "TCP"}]}]
        dash_in = one(docs, "NetworkPolicy", "allow-dashboard-ingress")["spec"]["ingress"]
        assert [p["port"] for rule in dash_in for p in rule["ports"]] == [http_port]
        pg = one(docs, "NetworkPolicy", "allow-postgres-egress")["spec"]["egress"]
        assert [p["port"] for rule in pg for p in rule["ports"]] == [int(env["POSTGRES_PORT"])]
        assert int(env["POSTGRES_PORT"]) == default(Settings, "POSTGRES_PORT")
        kafka = one(docs, "NetworkPolicy", "allow-kafka-egress")["spec"]["egress"]
        bootstrap = env["CIVFED_KAFKA_BOOTSTRAP"]
        assert [p["port"] for rule in kafka for p in rule["ports"]] == [int(bootstrap.rsplit(":", 1)[1])]
    exposed = re.search(r"^EXPOSE (.+)$", (ROOT / "deploy" / "Dockerfile").read_text(), re.M)
    assert exposed and exposed.group(1).split() == [
        str(grpc_port),
        str(public_port),
        str(health_port),
        str(http_port),
        str(metrics_port),
    ]


def _service_port_targets(docs: list[Doc], service: str, port: int) -> int:
    """The container port a Service port leads to, through its targetPort (name or number)."""
    svc = one(docs, "Service", service)
    entries = [p for p in svc["spec"]["ports"] if p["port"] == port]
    assert len(entries) == 1, f"Service {service} has no port {port}"
    entry = entries[0]
    target = entry["targetPort"]
    if isinstance(target, int):
        return target
    pods = [
        d
        for d in docs
        if d["kind"] == "Deployment"
        and svc["spec"]["selector"].items() <= d["spec"]["template"]["metadata"]["labels"].items()
    ]
    found = {
        p["containerPort"]
        for dep in pods
        for c in dep["spec"]["template"]["spec"]["containers"]
        for p in c.get("ports", [])
        if p["name"] == target
    }
    assert len(found) == 1, (service, port, found)
    return found.pop()


def test_the_gateway_routes_apps_tills_and_staff_to_the_public_port_only(
    overlays: dict[str, list[Doc]],
) -> None:
    """The public port (TLS, bearer credentials) is what the gateway reaches; the mutual-TLS
    port of partner nodes is never a route's backend, and federation calls are not routed."""
    grpc_port = default(NodeSettings, "CIVFED_GRPC_PORT")
    public_port = default(NodeSettings, "CIVFED_PUBLIC_PORT")
    federation = federation_pb2.DESCRIPTOR.services_by_name["FederationService"].full_name
    # Between nodes only, like the federation service; its staff side is routed.
    clearing = clearing_pb2.DESCRIPTOR.services_by_name["ClearingService"].full_name
    for_apps = sorted(set(SERVICES) - {federation, clearing})
    for name, docs in overlays.items():
        namespace = f"civfed-{name}"
        gateway = one(docs, "Gateway", "civfed-public")
        (listener,) = gateway["spec"]["listeners"]
        assert (listener["protocol"], listener["port"]) == ("HTTPS", 443), name
        assert listener["tls"]["mode"] == "Terminate", name
        assert [r["name"] for r in listener["tls"]["certificateRefs"]] == ["civfed-public-tls"], name
        assert listener["allowedRoutes"] == {
            "namespaces": {"from": "Same"},
            "kinds": [{"group": "gateway.networking.k8s.io", "kind": "GRPCRoute"}],
        }, name
        assert "set-by-overlay" not in listener["hostname"], name
        assert not [d for d in docs if d["kind"] in ("HTTPRoute", "TLSRoute", "TCPRoute", "Ingress")], name

        route = one(docs, "GRPCRoute", "civfed-public")
        assert [(p["name"], p.get("sectionName")) for p in route["spec"]["parentRefs"]] == [
            ("civfed-public", listener["name"])
        ], name
        routed = []
        for rule in route["spec"]["rules"]:
            for match in rule["matches"]:
                assert match["method"]["type"] == "Exact" and "method" not in match["method"], (name, match)
                routed.append(match["method"]["service"])
            for ref in rule["backendRefs"]:
                assert ref["kind"] == "Service" and ref["name"] == "civfed-node-public", (name, ref)
                target = _service_port_targets(docs, ref["name"], ref["port"])
                assert target == public_port != grpc_port, (name, ref, target)
        assert sorted(routed) == for_apps, name  # every service apps use, and never federation
        # The routed Service has no way to the mutual-TLS port at all.
        public_svc = one(docs, "Service", "civfed-node-public")["spec"]["ports"]
        assert all(
            _service_port_targets(docs, "civfed-node-public", p["port"]) != grpc_port for p in public_svc
        )

        # The gateway calls the node over TLS and checks its certificate.
        policy = one(docs, "BackendTLSPolicy", "civfed-node-public")["spec"]
        assert policy["targetRefs"] == [
            {"group": "", "kind": "Service", "name": "civfed-node-public", "sectionName": "grpc-public"}
        ], name
        assert [r["name"] for r in policy["validation"]["caCertificateRefs"]] == ["civfed-node-ca"], name
        assert policy["validation"]["hostname"] == f"civfed-node-public.{namespace}.svc", name


def test_staff_sign_in_at_each_citys_identity_provider(overlays: dict[str, list[Doc]]) -> None:
    """Issuer, keys, audience and roles claim are set per city, follow the provider's own
    layout (Keycloak realms, Entra ID tenants), and the keys come from the issuer's host."""
    for name, docs in overlays.items():
        node = one(docs, "Deployment", "civfed-node")["spec"]["template"]["spec"]["containers"][0]
        env = effective_env(docs, node)
        issuer, jwks = env["CIVFED_OIDC_ISSUER"], env["CIVFED_OIDC_JWKS"]
        assert issuer.startswith("https://") and jwks.startswith("https://"), name
        assert urlsplit(jwks).hostname == urlsplit(issuer).hostname, name
        assert env["CIVFED_OIDC_AUDIENCE"], name
        claim = env["CIVFED_OIDC_ROLES_CLAIM"]
        if "/realms/" in issuer:  # Keycloak
            assert jwks == issuer + "/protocol/openid-connect/certs", name
            assert claim in ("realm_access.roles", f"resource_access.{env['CIVFED_OIDC_AUDIENCE']}.roles"), (
                name
            )
        else:  # Entra ID, v2.0 access tokens: the audience is the API's application id
            tenant = re.fullmatch(r"https://login\.microsoftonline\.com/([0-9a-f-]{36})/v2\.0", issuer)
            assert tenant, (name, issuer)
            assert jwks == f"https://login.microsoftonline.com/{tenant.group(1)}/discovery/v2.0/keys", name
            assert claim == "roles" and re.fullmatch(r"[0-9a-f-]{36}", env["CIVFED_OIDC_AUDIENCE"]), name


def test_the_dashboard_serves_the_probe_paths() -> None:
    from projections.store import Store
    from services.dashboard.app import create_app

    paths = {getattr(r, "path", None) for r in create_app(Store("sqlite:///unused")).routes}
    assert {"/healthz", "/readyz"} <= paths


def test_kafka_bootstrap_points_at_the_example_cluster(
    overlays: dict[str, list[Doc]], kafka_docs: list[Doc]
) -> None:
    kafka = one(kafka_docs, "Kafka", "civfed")
    listener = kafka["spec"]["kafka"]["listeners"][0]
    expected = (
        f"{kafka['metadata']['name']}-kafka-bootstrap.{kafka['metadata']['namespace']}.svc:{listener['port']}"
    )
    for name, docs in overlays.items():
        relay = one(docs, "Deployment", "civfed-relay")["spec"]["template"]["spec"]["containers"][0]
        assert effective_env(docs, relay)["CIVFED_KAFKA_BOOTSTRAP"] == expected, name
        peers = listener["networkPolicyPeers"][0]["namespaceSelector"]["matchExpressions"][0]["values"]
        assert f"civfed-{name}" in peers


def test_kafka_is_reached_over_tls_with_each_citys_own_scram_user(
    overlays: dict[str, list[Doc]], kafka_docs: list[Doc]
) -> None:
    from projections.integration import topic_for

    kafka = one(kafka_docs, "Kafka", "civfed")["spec"]["kafka"]
    assert [(x["tls"], x["authentication"]) for x in kafka["listeners"]] == [
        (True, {"type": "scram-sha-512"})
    ]
    assert kafka["authorization"] == {"type": "simple"}
    users = {u["metadata"]["name"]: u["spec"] for u in kafka_docs if u["kind"] == "KafkaUser"}
    for name, docs in overlays.items():
        seen = set()
        for dep, c in containers(docs):
            env = effective_env(docs, c)
            if role(c) not in ("relay", "projector"):
                assert env.get("CIVFED_KAFKA_SECURITY_PROTOCOL") is None, (name, role(c))
                continue
            assert env["CIVFED_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL", (name, role(c))
            assert env["CIVFED_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512", (name, role(c))
            volumes = {v["name"]: v for v in pod_template(dep)["spec"]["volumes"]}
            mounts = {m["mountPath"]: volumes[m["name"]] for m in c["volumeMounts"]}
            for setting, secret in (
                ("CIVFED_KAFKA_SSL_CAFILE", "civfed-kafka-ca"),
                ("CIVFED_KAFKA_SASL_PASSWORD_FILE", "civfed-kafka-user"),
            ):
                assert mounts[env[setting].rsplit("/", 1)[0]]["secret"]["secretName"] == secret, (
                    name,
                    setting,
                )
            seen.add(env["CIVFED_KAFKA_SASL_USERNAME"])
        assert seen == {f"civfed-{name}"}, name  # one user per city, shared by its relay and projector
        user = users[f"civfed-{name}"]
        assert user["authentication"] == {"type": "scram-sha-512"}
        acls = user["authorization"]["acls"]
        assert [
            (a["resource"]["type"], a["resource"]["name"], a["resource"]["patternType"]) for a in acls
        ] == [("topic", topic_for(OVERLAYS[name]), "literal")], name
        assert {"Create", "Write", "Read", "Describe"} <= set(acls[0]["operations"]), name
    assert sorted(users) == sorted(f"civfed-{name}" for name in overlays)


def test_every_overlay_runs_retention_daily_with_the_nodes_settings(overlays: dict[str, list[Doc]]) -> None:
    """`civfed retention run` as a CronJob per city: same image, settings, Secrets and city
    files as the node, so it erases in the same stores and writes the same erasure journal."""
    for name, docs in overlays.items():
        job = one(docs, "CronJob", "civfed-retention")
        spec = job["spec"]
        minute, hour, day, month, weekday = spec["schedule"].split()
        assert minute.isdigit() and hour.isdigit() and (day, month, weekday) == ("*", "*", "*"), name
        assert spec["concurrencyPolicy"] == "Forbid", name
        pod = pod_template(job)["spec"]
        assert pod["restartPolicy"] in ("Never", "OnFailure"), name
        (c,) = pod["containers"]
        env = effective_env(docs, c)
        parsed = build_parser().parse_args([expand(a, env) for a in c["args"]])
        assert parsed.func is cmd_retention_run and parsed.city == OVERLAYS[name], name
        node_dep = one(docs, "Deployment", "civfed-node")
        node = pod_template(node_dep)["spec"]["containers"][0]
        node_env = effective_env(docs, node)
        assert c["image"] == node["image"], name
        assert c["envFrom"] == node["envFrom"], name
        # The stores, the key store, the journal and the key-store key: exactly the node's.
        for setting in (*Settings.model_fields, "POSTGRES_PASSWORD", "PGSSLMODE"):
            assert env.get(setting) == node_env.get(setting), (name, setting)
        assert env[JOURNAL] and env["CIVFED_KEYSTORE_URL"], name
        node_volumes = {v["name"]: v for v in pod_template(node_dep)["spec"]["volumes"]}
        for mount in c["volumeMounts"]:
            if mount["mountPath"] == "/tmp":
                continue
            assert mount in node["volumeMounts"], (name, mount)
            assert {v["name"]: v for v in pod["volumes"]}[mount["name"]] == node_volumes[mount["name"]], name
    assert check_config("retention", None, {}).problems == []  # SQLite: nothing more to set
    postgres = {"PERSISTENCE_MODULE": "eventsourcing.postgres", "POSTGRES_HOST": "db", "POSTGRES_DBNAME": "x"}
    problems = check_config("retention", ["vienna"], {**postgres, "POSTGRES_USER": "civfed"}).problems
    assert problems == [
        f"invalid retention settings: {KEK}: required for the retention on eventsourcing.postgres",
        f"invalid retention settings: {JOURNAL}: required for the retention on eventsourcing.postgres",
    ]
