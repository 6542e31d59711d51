"""Every overlay renders, and every manifest is valid against the Kubernetes schema (the
Gateway API resources against their own, tests/deploy/gateway_api.py)."""

from __future__ import annotations

import copy

import kubernetes_validate
import pytest

from services.cli.check_config import ROLES
from services.settings.cities import city_keys
from tests.deploy import gateway_api
from tests.deploy.conftest import K8S, OVERLAYS, Doc, containers, effective_env, of_kind, one, render, role

# kubectl 1.32 renders these; kubernetes-validate ships the 1.32 schemas.
KUBERNETES_VERSION = "1.32.0"
# Custom resources have no schema in kubernetes-validate: they are checked by hand below.
CUSTOM_GROUPS = ("kafka.strimzi.io/",)
# The Gateway API resources that expose the public port, against their own (strict) schemas.
GATEWAY_API = gateway_api.GROUP + "/"


def validate(doc: Doc) -> None:
    if doc["apiVersion"].startswith(GATEWAY_API):
        gateway_api.validate(doc)
        return
    try:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        where = f"{doc['kind']} {doc['metadata']['name']}"
        raise AssertionError(f"{where}: {exc.message} at {'.'.join(map(str, exc.path))}") from None


def test_there_is_one_overlay_per_city_and_nothing_else() -> None:
    assert sorted(p.name for p in (K8S / "overlays").iterdir()) == sorted(OVERLAYS)
    assert sorted(OVERLAYS.values()) == city_keys()


def test_every_overlay_manifest_matches_the_kubernetes_schema(overlays: dict[str, list[Doc]]) -> None:
    for name, docs in overlays.items():
        assert len(docs) > 15, name
        for doc in docs:
            assert not doc["apiVersion"].startswith(CUSTOM_GROUPS), f"{name}: custom resource in an overlay"
            validate(doc)


def test_the_base_alone_is_valid_too() -> None:
    for doc in render(K8S / "base"):
        validate(doc)


def test_the_schema_check_catches_a_misspelt_field(overlays: dict[str, list[Doc]]) -> None:
    """Strict validation: an unknown field fails, so the checks above can fail."""
    dep = dict(one(overlays["rome"], "Deployment", "civfed-node"))
    dep["spec"] = {**dep["spec"], "replica": 2}
    with pytest.raises(AssertionError, match="replica"):
        validate(dep)


def test_every_overlay_exposes_the_public_port_with_gateway_api_resources(
    overlays: dict[str, list[Doc]],
) -> None:
    for name, docs in overlays.items():
        kinds = sorted(d["kind"] for d in docs if d["apiVersion"].startswith(GATEWAY_API))
        assert kinds == ["BackendTLSPolicy", "GRPCRoute", "Gateway"], name


def test_the_gateway_api_check_catches_misspelt_fields_and_wrong_values(
    overlays: dict[str, list[Doc]],
) -> None:
    route = copy.deepcopy(one(overlays["vienna"], "GRPCRoute", "civfed-public"))
    route["spec"]["rules"][0]["backendRef"] = route["spec"]["rules"][0].pop("backendRefs")
    with pytest.raises(AssertionError, match="backendRef"):
        validate(route)
    gateway = copy.deepcopy(one(overlays["vienna"], "Gateway", "civfed-public"))
    gateway["spec"]["listeners"][0]["tls"]["mode"] = "Terminated"
    with pytest.raises(AssertionError, match="Terminated"):
        validate(gateway)
    policy = copy.deepcopy(one(overlays["sint-niklaas"], "BackendTLSPolicy", "civfed-node-public"))
    policy["spec"]["validation"]["hostname"] = "sint_niklaas"  # a city key is no host name
    with pytest.raises(AssertionError, match="sint_niklaas"):
        validate(policy)


def test_every_overlay_runs_each_role_in_its_own_namespace(overlays: dict[str, list[Doc]]) -> None:
    for name, docs in overlays.items():
        namespace = f"civfed-{name}"
        assert one(docs, "Namespace", namespace)["metadata"]["labels"][
            "pod-security.kubernetes.io/enforce"
        ] == ("restricted")
        assert {d["metadata"].get("namespace") for d in docs if d["kind"] != "Namespace"} == {namespace}
        assert sorted(role(c) for _, c in containers(docs)) == sorted(ROLES)
        settings = effective_env(
            docs, one(docs, "Deployment", "civfed-node")["spec"]["template"]["spec"]["containers"][0]
        )
        assert settings["CIVFED_CITY"] == OVERLAYS[name]


def test_workloads_services_and_autoscaling(overlays: dict[str, list[Doc]]) -> None:
    for name, docs in overlays.items():
        for single in ("civfed-relay", "civfed-projector"):
            spec = one(docs, "Deployment", single)["spec"]
            assert spec["replicas"] == 1 and spec["strategy"] == {"type": "Recreate"}, (name, single)
        node = one(docs, "Deployment", "civfed-node")
        assert node["spec"]["replicas"] >= 2
        for service in ("civfed-node", "civfed-dashboard"):
            svc = one(docs, "Service", service)
            dep = one(docs, "Deployment", service)
            assert svc["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"]
        hpa = one(docs, "HorizontalPodAutoscaler", "civfed-dashboard")
        assert hpa["spec"]["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": "civfed-dashboard",
        }
        assert 2 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
        assert "replicas" not in one(docs, "Deployment", "civfed-dashboard")["spec"]  # the HPA owns it


def test_every_workload_has_a_disruption_budget(overlays: dict[str, list[Doc]]) -> None:
    for name, docs in overlays.items():
        budgets = of_kind(docs, "PodDisruptionBudget")
        for dep in of_kind(docs, "Deployment"):
            labels = dep["spec"]["template"]["metadata"]["labels"]
            matching = [b for b in budgets if b["spec"]["selector"]["matchLabels"].items() <= labels.items()]
            assert len(matching) == 1, (name, dep["metadata"]["name"])
            budget = matching[0]["spec"]
            if dep["spec"].get("replicas", 2) == 1:
                # minAvailable: 1 on a single replica would block every node drain.
                assert budget == {"maxUnavailable": 1, "selector": budget["selector"]}
            else:
                assert budget["minAvailable"] == 1


def test_the_example_kafka_keeps_three_replicas_and_two_in_sync(
    kafka_docs: list[Doc], overlays: dict[str, list[Doc]]
) -> None:
    from projections.integration import topic_for
    from services.settings.stream import StreamSettings

    for doc in kafka_docs:  # custom resources: parsed, with the fields Strimzi requires
        assert doc["apiVersion"] == "kafka.strimzi.io/v1beta2"
        assert doc["metadata"]["name"] and isinstance(doc["spec"], dict)
        assert doc["metadata"]["namespace"] == "kafka"
    kafka = one(kafka_docs, "Kafka", "civfed")
    config = kafka["spec"]["kafka"]["config"]
    assert config["default.replication.factor"] == 3 and config["min.insync.replicas"] == 2
    assert config["auto.create.topics.enable"] is False
    pool = one(kafka_docs, "KafkaNodePool", "civfed")
    assert pool["spec"]["replicas"] >= 3 and pool["metadata"]["labels"]["strimzi.io/cluster"] == "civfed"
    topics = of_kind(kafka_docs, "KafkaTopic")
    assert sorted(t["spec"]["topicName"] for t in topics) == sorted(topic_for(c) for c in city_keys())
    partitions = StreamSettings.model_fields["CIVFED_KAFKA_TOPIC_PARTITIONS"].default
    retention_days = StreamSettings.model_fields["CIVFED_KAFKA_TOPIC_RETENTION_DAYS"].default
    for name, docs in overlays.items():
        # A topic the relay creates itself has the same shape as the KafkaTopics.
        relay = one(docs, "Deployment", "civfed-relay")["spec"]["template"]["spec"]["containers"][0]
        env = effective_env(docs, relay)
        assert int(env["CIVFED_KAFKA_REPLICATION_FACTOR"]) == 3, name
        assert int(env.get("CIVFED_KAFKA_TOPIC_PARTITIONS", partitions)) == partitions, name
        assert int(env.get("CIVFED_KAFKA_TOPIC_RETENTION_DAYS", retention_days)) == retention_days, name
    for t in topics:
        assert t["metadata"]["labels"]["strimzi.io/cluster"] == "civfed"
        assert t["spec"]["replicas"] == 3 and t["spec"]["partitions"] == partitions
        assert t["spec"]["config"]["min.insync.replicas"] == 2
        # Finite, as the relay sets it: rebuilds read the city's store, not the topic.
        assert t["spec"]["config"]["retention.ms"] == retention_days * 86_400_000
