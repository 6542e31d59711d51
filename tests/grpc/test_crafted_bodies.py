"""Undecodable bodies and crafted vouchers: INVALID_ARGUMENT on every method of every service, never
UNKNOWN or INTERNAL, and nothing changes.

The methods come from the descriptors of the services the node serves, so a new method or
service is covered without touching this file.
"""

from __future__ import annotations

import base64
import itertools
import json
import uuid
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from google.protobuf import descriptor_pool, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import DecodeError
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from civfed.v1 import federation_pb2, merchant_pb2
from services.demo.local_federation import LocalFederation
from services.federation.vouchers import load_private_key
from services.grpc.auth import bearer
from services.grpc.server import SERVICES
from tests.e2e.flows import shop, vienna_citizen

OK, INVALID = grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT
NEVER = (grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL)
# Bodies no message decodes: corrupt tags, truncated varints and lengths, stray groups.
CORRUPT = {
    "0xffffff": b"\xff\xff\xff",
    "truncated varint": b"\x08\x80",
    "length past the end": b"\x0a\x05ab",
    "huge length": b"\x0a\xff\xff\xff\xff\x0f",
    "wire type 6": b"\x0e",
    "wire type 7": b"\x0f",
    "end group without start": b"\x0c",
    "group never closed": b"\x0b",
    "varint of eleven bytes": b"\x08" + b"\xff" * 10 + b"\x01",
    "groups nested too deep": b"\x0b" * 200 + b"\x0c" * 200,
}


def served_methods() -> list[tuple[str, Descriptor]]:
    """(path, request type) of every method of every service the node registers."""
    pool = descriptor_pool.Default()
    return [
        (f"/{service}/{m.name}", m.input_type)
        for service in SERVICES
        for m in pool.FindServiceByName(service).methods
    ]


def tag(field: int, wire_type: int) -> bytes:
    """A field's key as a varint."""
    value, out = field << 3 | wire_type, b""
    while value > 0x7F:
        out, value = out + bytes([value & 0x7F | 0x80]), value >> 7
    return out + bytes([value])


def undecodable(request: Descriptor) -> dict[str, bytes]:
    """CORRUPT, plus invalid UTF-8 in each string field of `request`."""
    bodies = dict(CORRUPT)
    for f in request.fields:
        if f.type == FieldDescriptor.TYPE_STRING and not f.is_repeated:
            bodies[f"bad UTF-8 in {f.name}"] = tag(f.number, 2) + b"\x02\xc3\x28"
    return bodies


def odd_but_decodable(request: Descriptor) -> dict[str, bytes]:
    """Each field with the wrong wire type, and an unknown field: protobuf keeps these as unknown."""
    bodies = {"unknown field 99": b"\x98\x06\x01", "empty": b""}
    for f in request.fields:
        wrong = 0 if f.type in (FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_MESSAGE) else 2
        bodies[f"{f.name} as wire type {wrong}"] = tag(f.number, wrong) + (
            b"\x01" if wrong == 0 else b"\x01x"
        )
        bodies[f"{f.name} as fixed32"] = tag(f.number, 5) + b"\x00\x00\x00\x00"
    return bodies


def decodes(request: Descriptor, body: bytes) -> bool:
    try:
        message_factory.GetMessageClass(request).FromString(body)
    except DecodeError:
        return False
    return True


def raw_call(
    channel: grpc.Channel, path: str, body: bytes, metadata: Any = ()
) -> tuple[grpc.StatusCode, str]:
    """`body` sent as it is (no serializer), whatever the method's request type."""
    try:
        channel.unary_unary(path)(body, metadata=metadata, timeout=10)
    except grpc.RpcError as exc:
        return exc.code(), exc.details() or ""
    return OK, ""


class World:
    """What the tests call with, and the state that must not change."""

    def __init__(self, fed: LocalFederation) -> None:
        self.fed = fed
        self.vienna = fed.stubs("vienna")
        self.citizen = vienna_citizen(self.vienna, "crafted", km_by_bike=500)
        # A real voucher: a tampered copy of it is the likeliest crafted token.
        self.voucher = self.citizen.voucher(2, "crafted:voucher")
        self.merchants = {c: shop(fed.stubs(c), f"crafted-{c}") for c in fed.cities}
        other = {"vienna": "sint_niklaas", "sint_niklaas": "vienna"}
        # Each city seen by a partner (the other city's certificate) and by a citizen's app.
        self.partner = {
            c: fed.channel(c, fed.files[other[c]].cert, fed.files[other[c]].key) for c in fed.cities
        }
        self.citizen_channel = {c: fed.channel(c) for c in fed.cities}
        self.roles = [
            self.vienna.staff,
            self.citizen.auth,
            self.merchants["vienna"][1],
            bearer("holder.x.y"),
            (("authorization", "Bearer " + "x" * 3000),),
            (),
        ]

    def state(self) -> tuple[Any, ...]:
        balance = self.citizen.balance()
        logs = [running.node.app.recorder.max_notification_id() for running in self.fed.running.values()]
        return balance.balance.units, balance.available.units, balance.held.units, *logs


@pytest.fixture(scope="module")
def world(fed: LocalFederation) -> Iterator[World]:
    w = World(fed)
    yield w
    for channel in [*w.partner.values(), *w.citizen_channel.values()]:
        channel.close()


@pytest.mark.timeout(600)
def test_undecodable_bodies_are_invalid_argument_on_every_method_for_every_caller(world: World) -> None:
    methods = served_methods()
    assert {p.split("/")[1] for p, _ in methods} >= {
        "civfed.v1.WalletService",
        "civfed.v1.MerchantService",
        "civfed.v1.FederationService",
        "civfed.v1.RulebookService",
    }
    before = world.state()
    channels = [*world.partner.values(), *world.citizen_channel.values()]
    for path, request in methods:
        bodies = undecodable(request)
        assert not any(decodes(request, b) for b in bodies.values()), path
        for (name, body), channel, metadata in itertools.product(bodies.items(), channels, world.roles):
            code, details = raw_call(channel, path, body, metadata)
            assert (code, details) == (INVALID, f"request: not a valid {request.full_name} message"), (
                path,
                name,
            )
    assert world.state() == before


@pytest.mark.timeout(600)
def test_odd_but_decodable_bodies_never_yield_internal(world: World) -> None:
    before = world.state()
    channels = [*world.partner.values(), *world.citizen_channel.values()]
    for path, request in served_methods():
        for (name, body), channel, metadata in itertools.product(
            odd_but_decodable(request).items(), channels, world.roles
        ):
            assert decodes(request, body), (path, name)
            code, details = raw_call(channel, path, body, metadata)
            assert code not in NEVER, (path, name, details)
    assert world.state() == before


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token(payload: dict[str, Any] | bytes, key: Ed25519PrivateKey) -> str:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return f"{b64(body)}.{b64(key.sign(body))}"


def crafted_tokens(home: str, ref: str, key: Ed25519PrivateKey) -> dict[str, str]:
    """A voucher payload with one field out of type or range, well signed by `key`."""
    good: dict[str, Any] = {"v": 1, "home": home, "ref": ref, "amount": 2, "exp": 1_900_000_000}
    changes: dict[str, dict[str, Any]] = {
        "exp 2**62": {"exp": 2**62},
        "exp -2**62": {"exp": -(2**62)},
        "exp 10**30": {"exp": 10**30},
        "exp a float": {"exp": 1.9e9},
        "exp a string": {"exp": "1900000000"},
        "exp null": {"exp": None},
        "amount negative": {"amount": -2},
        "amount 2**70": {"amount": 2**70},
        "amount a float": {"amount": 2.0},
        "amount a string": {"amount": "2"},
        "amount true": {"amount": True},
        "version 2": {"v": 2},
        "home a list": {"home": [home]},
        "ref not a uuid": {"ref": "x"},
    }
    out = {name: token({**good, **change}, key) for name, change in changes.items()}
    out["deeply nested JSON"] = token(b"[" * 1400, key)
    out["not JSON"] = token(b"\xff\x00", key)
    return out


def voucher_ref(voucher: str) -> str:
    body = voucher.split(".")[0]
    return str(json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))["ref"])


def reserve(redemption_token: str) -> Any:
    return federation_pb2.ReserveRequest(
        idempotency_key=f"crafted:{uuid.uuid4()}", redemption_token=redemption_token
    )


def accept(redemption_token: str) -> Any:
    return merchant_pb2.AcceptVoucherRequest(
        idempotency_key=f"crafted:{uuid.uuid4()}", redemption_token=redemption_token
    )


# (city called, whose vouchers, method): a partner reserves a city's own vouchers; a shop
# takes the other city's.
VOUCHER_CALLS = [
    ("vienna", "vienna", "Reserve"),
    ("sint_niklaas", "sint_niklaas", "Reserve"),
    ("vienna", "sint_niklaas", "AcceptVoucher"),
    ("sint_niklaas", "vienna", "AcceptVoucher"),
]


def send_voucher(world: World, city: str, method: str, redemption_token: str) -> tuple[grpc.StatusCode, str]:
    if method == "Reserve":
        channel, request, metadata = world.partner[city], reserve(redemption_token), ()
    else:
        channel, request, metadata = (
            world.citizen_channel[city],
            accept(redemption_token),
            world.merchants[city][1],
        )
    service = "FederationService" if method == "Reserve" else "MerchantService"
    return raw_call(channel, f"/civfed.v1.{service}/{method}", request.SerializeToString(), metadata)


@pytest.mark.timeout(300)
def test_crafted_vouchers_are_invalid_argument_at_reserve_and_accept(world: World) -> None:
    fed = world.fed
    before = world.state()
    # A tampered copy of a real voucher (its ref) is the likeliest crafted token.
    ref = voucher_ref(world.voucher)
    for city, home, method in VOUCHER_CALLS:
        real = load_private_key(fed.files[home].signing_key)
        for signer, key in (("real key", real), ("fresh key", Ed25519PrivateKey.generate())):
            for name, crafted in crafted_tokens(home, ref, key).items():
                answer = send_voucher(world, city, method, crafted)
                assert answer == (INVALID, "redemption_token: not a well-formed redemption voucher"), (
                    city,
                    method,
                    signer,
                    name,
                )
    assert world.state() == before
    # The real voucher is untouched by all of it: it still pays at a partner's shop.
    assert send_voucher(world, "sint_niklaas", "AcceptVoucher", world.voucher)[0] == OK
    assert world.citizen.balance().balance.units == before[0] - 2


def test_health_and_reflection_still_work_and_refuse_undecodable_bodies(world: World) -> None:
    fed = world.fed
    running = fed.running["vienna"]
    plaintext = grpc.insecure_channel(f"127.0.0.1:{running.health_port}")
    for channel in (world.citizen_channel["vienna"], plaintext):
        health = health_pb2_grpc.HealthStub(channel)
        assert (
            health.Check(health_pb2.HealthCheckRequest(), timeout=5).status
            == health_pb2.HealthCheckResponse.SERVING
        )
        watch = health.Watch(health_pb2.HealthCheckRequest(), timeout=5)
        assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
        watch.cancel()
        for body in CORRUPT.values():
            assert raw_call(channel, "/grpc.health.v1.Health/Check", body) == (
                INVALID,
                "request: not a valid grpc.health.v1.HealthCheckRequest message",
            )
            watching = channel.unary_stream("/grpc.health.v1.Health/Watch")(body, timeout=5)
            with pytest.raises(grpc.RpcError) as refused:
                next(watching)
            assert refused.value.code() == INVALID
    plaintext.close()

    channel = world.citizen_channel["vienna"]
    info = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo
    [answer] = list(info(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5))
    assert set(SERVICES) <= {s.name for s in answer.list_services_response.service}
    streamed = channel.stream_stream("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo")
    with pytest.raises(grpc.RpcError) as refused:
        list(streamed(iter([b"\xff\xff\xff"]), timeout=5))
    assert refused.value.code() == INVALID
    assert "grpc.reflection.v1alpha.ServerReflectionRequest" in (refused.value.details() or "")


def test_the_partner_channel_reaches_the_federation_service(world: World) -> None:
    """The partner channel really is a partner's: GetTerms answers it (so refusals above are not TLS's)."""
    terms = federation_pb2.GetTermsRequest()
    call = world.partner["vienna"].unary_unary(
        "/civfed.v1.FederationService/GetTerms",
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=federation_pb2.GetTermsResponse.FromString,
    )
    assert call(terms, timeout=5).city == "vienna"
