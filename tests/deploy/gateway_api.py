"""The Gateway API resources the manifests use (Gateway, GRPCRoute, BackendTLSPolicy, all
gateway.networking.k8s.io/v1), as a strict JSON schema of the fields civfed sets.

kubernetes-validate has no schemas for custom resources. This is a subset of the Gateway
API's own v1 schemas, written from its reference (field names, required fields, enums and
name patterns), with every object closed: an unknown or misspelt field fails, as in the
strict Kubernetes check. A field civfed starts to use has to be added here first.
"""

from __future__ import annotations

from typing import Any

import jsonschema

GROUP = "gateway.networking.k8s.io"
API_VERSION = f"{GROUP}/v1"
# RFC 1123 names and host names, as the Gateway API's ObjectName, SectionName and
# PreciseHostname.
NAME = {"type": "string", "minLength": 1, "maxLength": 253, "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"}
HOSTNAME = {
    "type": "string",
    "minLength": 1,
    "maxLength": 253,
    "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
}
PORT = {"type": "integer", "minimum": 1, "maximum": 65535}
LABELS = {"type": "object", "additionalProperties": {"type": "string"}}
GRPC_NAME = {
    "type": "string",
    "maxLength": 1024,
    "pattern": r"^[A-Za-z_][A-Za-z_0-9]*(\.[A-Za-z_][A-Za-z_0-9]*)*$",
}


def closed(required: list[str], **properties: Any) -> dict[str, Any]:
    return {"type": "object", "required": required, "additionalProperties": False, "properties": properties}


def core_ref(kind: str, **extra: Any) -> dict[str, Any]:
    """A reference to a core object (group "")."""
    return closed(["name"], group={"const": ""}, kind={"const": kind}, name=NAME, **extra)


def resource(kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    metadata = closed(["name"], name=NAME, namespace=NAME, labels=LABELS, annotations=LABELS)
    return closed(
        ["apiVersion", "kind", "metadata", "spec"],
        apiVersion={"const": API_VERSION},
        kind={"const": kind},
        metadata=metadata,
        spec=spec,
    )


GATEWAY = resource(
    "Gateway",
    closed(
        ["gatewayClassName", "listeners"],
        gatewayClassName=NAME,
        listeners={
            "type": "array",
            "minItems": 1,
            "maxItems": 64,
            "items": closed(
                ["name", "port", "protocol"],
                name=NAME,
                hostname=HOSTNAME,
                port=PORT,
                protocol={"enum": ["HTTP", "HTTPS", "TLS", "TCP", "UDP"]},
                tls=closed(
                    ["mode"],
                    mode={"enum": ["Terminate", "Passthrough"]},
                    certificateRefs={"type": "array", "maxItems": 64, "items": core_ref("Secret")},
                ),
                allowedRoutes=closed(
                    [],
                    namespaces=closed([], **{"from": {"enum": ["All", "Selector", "Same"]}}),
                    kinds={
                        "type": "array",
                        "maxItems": 8,
                        "items": closed(["kind"], group={"const": GROUP}, kind={"type": "string"}),
                    },
                ),
            ),
        },
    ),
)

GRPC_ROUTE = resource(
    "GRPCRoute",
    closed(
        ["parentRefs", "rules"],
        parentRefs={
            "type": "array",
            "minItems": 1,
            "maxItems": 32,
            "items": closed(
                ["name"], group={"const": GROUP}, kind={"const": "Gateway"}, name=NAME, sectionName=NAME
            ),
        },
        hostnames={"type": "array", "maxItems": 16, "items": HOSTNAME},
        rules={
            "type": "array",
            "minItems": 1,
            "maxItems": 16,
            "items": closed(
                ["backendRefs"],
                matches={
                    "type": "array",
                    "maxItems": 64,
                    "items": closed(
                        ["method"],
                        method={
                            **closed(
                                [],
                                type={"enum": ["Exact", "RegularExpression"]},
                                service=GRPC_NAME,
                                method={"type": "string", "pattern": r"^[A-Za-z_][A-Za-z_0-9]*$"},
                            ),
                            "anyOf": [{"required": ["service"]}, {"required": ["method"]}],
                        },
                    ),
                },
                backendRefs={
                    "type": "array",
                    "minItems": 1,
                    "maxItems": 16,
                    "items": core_ref("Service", port=PORT),
                },
            ),
        },
    ),
)

BACKEND_TLS_POLICY = resource(
    "BackendTLSPolicy",
    closed(
        ["targetRefs", "validation"],
        targetRefs={
            "type": "array",
            "minItems": 1,
            "maxItems": 16,
            "items": core_ref("Service", sectionName=NAME),
        },
        validation=closed(
            ["hostname"],
            caCertificateRefs={"type": "array", "minItems": 1, "maxItems": 8, "items": core_ref("ConfigMap")},
            hostname=HOSTNAME,
        ),
    ),
)

SCHEMAS = {"Gateway": GATEWAY, "GRPCRoute": GRPC_ROUTE, "BackendTLSPolicy": BACKEND_TLS_POLICY}


def validate(doc: dict[str, Any]) -> None:
    """Raise AssertionError naming the resource, the field and what is wrong."""
    where = f"{doc.get('kind')} {doc.get('metadata', {}).get('name')}"
    schema = SCHEMAS.get(str(doc.get("kind")))
    if schema is None:
        raise AssertionError(f"{where}: not a Gateway API kind the manifests are checked for")
    try:
        jsonschema.validate(doc, schema)
    except jsonschema.ValidationError as exc:
        raise AssertionError(f"{where}: {exc.message} at {'.'.join(map(str, exc.absolute_path))}") from None
