"""The public port: TLS with server authentication only, for residents' apps, shop tills and
staff, who bring bearer credentials; partner cities stay on the mutual-TLS port.

Clients here present no certificate at all, as a phone app or a till does: they only trust
the CA that signed the node's certificate.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from civfed.v1 import (
    federation_pb2,
    federation_pb2_grpc,
    merchant_pb2,
    merchant_pb2_grpc,
    wallet_pb2,
    wallet_pb2_grpc,
)
from services.demo.local_federation import HOST, LocalFederation
from services.grpc.auth import bearer
from services.grpc.tls import channel_credentials
from tests.e2e.flows import CONSENT

Channel = Iterator[grpc.Channel]


def server_auth_only(fed: LocalFederation, port: int) -> grpc.Channel:
    """What a resident's app holds: trust in the CA of the node's certificate, nothing of its own."""
    creds = grpc.ssl_channel_credentials(root_certificates=Path(fed.ca.ca_file).read_bytes())
    return grpc.secure_channel(f"{HOST}:{port}", creds, options=[("grpc.ssl_target_name_override", "vienna")])


def code_of(call: Any, request: Any, **kw: Any) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as err:
        call(request, timeout=5, **kw)
    return err.value.code(), err.value.details() or ""


@pytest.fixture(scope="module")
def public_port(fed: LocalFederation) -> int:
    port = fed.running["vienna"].public_port
    assert port and port not in (fed.ports["vienna"], fed.health_ports["vienna"])
    return port


@pytest.fixture
def app(fed: LocalFederation, public_port: int) -> Channel:
    channel = server_auth_only(fed, public_port)
    yield channel
    channel.close()


def test_an_app_without_a_certificate_reaches_the_wallet_service_with_bearer_credentials(
    fed: LocalFederation, app: grpc.Channel
) -> None:
    wallets: Any = wallet_pb2_grpc.WalletServiceStub(app)
    staff = bearer(fed.staff_token)  # a staff member's access token from the identity provider
    opened = wallets.OpenWallet(
        wallet_pb2.OpenWalletRequest(
            idempotency_key="public-port-open", participant_kind="resident", consent_version=CONSENT["vienna"]
        ),
        metadata=staff,
        timeout=5,
    )
    assert opened.wallet_id and opened.holder_token
    mine = wallet_pb2.GetBalanceRequest(wallet_id=opened.wallet_id)
    balance = wallets.GetBalance(mine, metadata=bearer(opened.holder_token), timeout=5)
    assert balance.balance.units == 0
    events = wallets.ListMyEvents(
        wallet_pb2.ListMyEventsRequest(wallet_id=opened.wallet_id),
        metadata=bearer(opened.holder_token),
        timeout=5,
    ).events
    assert events[0].type == "Wallet.Opened"
    # The same access policy as on the mutual-TLS port: no credentials, no wallet; a holder
    # reads only their own wallet; a holder is no recorder.
    assert code_of(wallets.GetBalance, mine)[0] == grpc.StatusCode.UNAUTHENTICATED
    other = wallet_pb2.GetBalanceRequest(wallet_id=str(uuid.uuid4()))
    code = code_of(wallets.GetBalance, other, metadata=bearer(opened.holder_token))[0]
    assert code == grpc.StatusCode.PERMISSION_DENIED
    again = wallet_pb2.OpenWalletRequest(
        idempotency_key="public-port-open-2", participant_kind="resident", consent_version=CONSENT["vienna"]
    )
    code = code_of(wallets.OpenWallet, again, metadata=bearer(opened.holder_token))[0]
    assert code == grpc.StatusCode.PERMISSION_DENIED
    # A staff token that is not signed by the city's identity provider is refused here too.
    forged = fed.idp.token("intruder", ["recorder"], key=fed.idp.stranger_key())
    assert code_of(wallets.OpenWallet, again, metadata=bearer(forged))[0] == grpc.StatusCode.UNAUTHENTICATED


def test_a_till_without_a_certificate_uses_its_credential(fed: LocalFederation, app: grpc.Channel) -> None:
    merchants: Any = merchant_pb2_grpc.MerchantServiceStub(app)
    shop = merchants.RegisterMerchant(
        merchant_pb2.RegisterMerchantRequest(
            idempotency_key="public-port-shop", name="Corner", category="food", local=True
        ),
        metadata=bearer(fed.staff_token),  # a merchant administrator
        timeout=5,
    )
    statement = merchants.GetStatement(
        merchant_pb2.GetStatementRequest(), metadata=bearer(shop.merchant_token), timeout=5
    )
    assert list(statement.lines) == []
    assert code_of(merchants.GetStatement, merchant_pb2.GetStatementRequest())[0] == (
        grpc.StatusCode.UNAUTHENTICATED
    )


def test_the_mutual_tls_port_refuses_a_client_without_a_certificate(fed: LocalFederation) -> None:
    """The handshake itself fails: no call, not even health, reaches the servicers."""
    no_cert = server_auth_only(fed, fed.ports["vienna"])
    try:
        health = health_pb2_grpc.HealthStub(no_cert)
        code, _ = code_of(health.Check, health_pb2.HealthCheckRequest())
        assert code == grpc.StatusCode.UNAVAILABLE
        wallets: Any = wallet_pb2_grpc.WalletServiceStub(no_cert)
        request = wallet_pb2.GetBalanceRequest(wallet_id=str(uuid.uuid4()))
        code, _ = code_of(wallets.GetBalance, request, metadata=bearer(fed.staff_token))
        assert code == grpc.StatusCode.UNAVAILABLE
    finally:
        no_cert.close()


def test_a_partner_certificate_on_the_public_port_makes_no_partner(
    fed: LocalFederation, public_port: int
) -> None:
    """The public port requests no client certificate, so a partner node's certificate
    presented there identifies nobody: federation calls are refused as unauthenticated.
    On the mutual-TLS port the same certificate is the partner, and the same call gets
    as far as reading the request."""
    sn = fed.files["sint_niklaas"]
    request = federation_pb2.ReserveRequest(idempotency_key="public-port-k", redemption_token="a.b")
    creds = channel_credentials(sn.cert, sn.key, fed.ca.ca_file)
    public = grpc.secure_channel(
        f"{HOST}:{public_port}", creds, options=[("grpc.ssl_target_name_override", "vienna")]
    )
    mutual = fed.channel("vienna", sn.cert, sn.key)
    try:
        on_public: Any = federation_pb2_grpc.FederationServiceStub(public)
        code, details = code_of(on_public.Reserve, request)
        assert code == grpc.StatusCode.UNAUTHENTICATED, details
        on_mutual: Any = federation_pb2_grpc.FederationServiceStub(mutual)
        code, details = code_of(on_mutual.Reserve, request)
        assert (code, details.split(":")[0]) == (grpc.StatusCode.INVALID_ARGUMENT, "redemption_token")
    finally:
        public.close()
        mutual.close()
