"""CredentialService through gRPC against a real in-process node: a holder's credentials are
the holder's alone, recovery takes two staff members, tills are revoked one by one, and every
revocation takes effect on the very next call."""

from __future__ import annotations

import uuid
from typing import Any

import grpc
import pytest

from civfed.v1 import credentials_pb2 as pb
from civfed.v1 import merchant_pb2, wallet_pb2
from services.demo.local_federation import CityStubs, LocalFederation
from services.grpc.auth import bearer
from tests.e2e.flows import open_wallet


def code_of(call: Any, request: Any, metadata: Any) -> grpc.StatusCode:
    try:
        call(request, metadata=metadata, timeout=5)
    except grpc.RpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


def balance_code(v: CityStubs, wallet_id: str, token: str) -> grpc.StatusCode:
    return code_of(v.wallet.GetBalance, wallet_pb2.GetBalanceRequest(wallet_id=wallet_id), bearer(token))


def statement_code(v: CityStubs, token: str) -> grpc.StatusCode:
    return code_of(v.merchant.GetStatement, merchant_pb2.GetStatementRequest(), bearer(token))


def mine(v: CityStubs, wallet_id: str, token: str) -> list[Any]:
    req = pb.ListMyCredentialsRequest(wallet_id=wallet_id)
    return list(v.credentials.ListMyCredentials(req, metadata=bearer(token), timeout=5).credentials)


def rotate(v: CityStubs, wallet_id: str, token: str, key: str, keep: bool = False) -> Any:
    req = pb.RotateMyCredentialRequest(
        idempotency_key=key, wallet_id=wallet_id, label="phone", keep_current=keep
    )
    return v.credentials.RotateMyCredential(req, metadata=bearer(token), timeout=5)


def revoke(v: CityStubs, wallet_id: str, token: str, key: str, credential_id: str) -> Any:
    req = pb.RevokeMyCredentialRequest(idempotency_key=key, wallet_id=wallet_id, credential_id=credential_id)
    return v.credentials.RevokeMyCredential(req, metadata=bearer(token), timeout=5)


@pytest.fixture
def v(fed: LocalFederation) -> CityStubs:
    return fed.stubs("vienna")


def test_a_holder_lists_their_own_credentials_with_no_hash_or_secret(v: CityStubs) -> None:
    opened = open_wallet(v, f"cred:{uuid.uuid4()}")
    listed = mine(v, opened.wallet_id, opened.holder_token)
    assert len(listed) == 1
    assert listed[0].live and listed[0].current and listed[0].revoked_at == ""
    assert listed[0].credential_id in opened.holder_token
    secret = opened.holder_token.rsplit(".", 1)[1]
    shown = str(listed)
    assert secret not in shown and secret[-4:] not in shown
    assert set(pb.CredentialInfo.DESCRIPTOR.fields_by_name) == {
        "credential_id", "label", "issued_at", "expires_at", "revoked_at", "live", "current",
    }  # fmt: skip


def test_a_rotated_credential_works_and_the_old_one_stops_at_once(v: CityStubs) -> None:
    opened = open_wallet(v, f"cred:{uuid.uuid4()}")
    w, old = opened.wallet_id, opened.holder_token
    new = rotate(v, w, old, "rotate-1")
    assert new.credential and new.credential != old and list(new.revoked) == [old.split(".")[2]]
    assert balance_code(v, w, new.credential) == grpc.StatusCode.OK
    assert balance_code(v, w, old) == grpc.StatusCode.UNAUTHENTICATED
    # A retry with the same key (made with the new credential) names the credential, shows no secret.
    again = rotate(v, w, new.credential, "rotate-1")
    assert again.credential_id == new.credential_id and again.credential == ""
    assert [c.credential_id for c in mine(v, w, new.credential) if c.live] == [new.credential_id]


def test_a_revoked_holder_credential_stops_working_on_the_very_next_call(v: CityStubs) -> None:
    opened = open_wallet(v, f"cred:{uuid.uuid4()}")
    w, phone = opened.wallet_id, opened.holder_token
    second = rotate(v, w, phone, "second-phone", keep=True)
    assert second.credential and list(second.revoked) == []
    assert balance_code(v, w, phone) == grpc.StatusCode.OK
    # The first phone is lost: the second one revokes it.
    lost = phone.split(".")[2]
    out = revoke(v, w, second.credential, "lost", lost)
    assert out.revoked and out.credential_id == lost
    assert balance_code(v, w, phone) == grpc.StatusCode.UNAUTHENTICATED
    assert balance_code(v, w, second.credential) == grpc.StatusCode.OK
    # Idempotent: the same key replays; a new key on a revoked credential is refused.
    assert revoke(v, w, second.credential, "lost", lost).revoked
    with pytest.raises(grpc.RpcError) as err:
        revoke(v, w, second.credential, "lost-again", lost)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    # And the lost phone cannot rotate itself back to life.
    with pytest.raises(grpc.RpcError) as err:
        rotate(v, w, phone, "revive")
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_another_holder_cannot_list_rotate_or_revoke_yours(v: CityStubs) -> None:
    alice = open_wallet(v, f"cred:{uuid.uuid4()}")
    mallory = open_wallet(v, f"cred:{uuid.uuid4()}")
    alices = alice.holder_token.split(".")[2]
    m = bearer(mallory.holder_token)
    calls = [
        (v.credentials.ListMyCredentials, pb.ListMyCredentialsRequest(wallet_id=alice.wallet_id)),
        (
            v.credentials.RotateMyCredential,
            pb.RotateMyCredentialRequest(idempotency_key="x", wallet_id=alice.wallet_id),
        ),
        (
            v.credentials.RevokeMyCredential,
            pb.RevokeMyCredentialRequest(
                idempotency_key="y", wallet_id=alice.wallet_id, credential_id=alices
            ),
        ),
    ]
    for call, request in calls:
        assert code_of(call, request, m) == grpc.StatusCode.PERMISSION_DENIED
    # Naming Alice's credential under Mallory's own wallet finds nothing of hers.
    own = pb.RevokeMyCredentialRequest(idempotency_key="z", wallet_id=mallory.wallet_id, credential_id=alices)
    assert code_of(v.credentials.RevokeMyCredential, own, m) == grpc.StatusCode.NOT_FOUND
    # A credential whose owner part is rewritten to Alice's wallet is not a credential at all.
    forged = mallory.holder_token.replace(mallory.wallet_id, alice.wallet_id)
    assert balance_code(v, alice.wallet_id, forged) == grpc.StatusCode.UNAUTHENTICATED
    assert balance_code(v, alice.wallet_id, alice.holder_token) == grpc.StatusCode.OK


def test_staff_cannot_list_rotate_or_revoke_a_holders_credentials(fed: LocalFederation, v: CityStubs) -> None:
    opened = open_wallet(v, f"cred:{uuid.uuid4()}")
    cid = opened.holder_token.split(".")[2]
    for role in ("recorder", "appeals_officer", "merchant_admin", "erasure_officer", "auditor"):
        staff = fed.staff(f"desk-{role}", role)
        req = pb.RevokeMyCredentialRequest(idempotency_key="s", wallet_id=opened.wallet_id, credential_id=cid)
        assert code_of(v.credentials.RevokeMyCredential, req, staff) == grpc.StatusCode.PERMISSION_DENIED
        rot = pb.RotateMyCredentialRequest(idempotency_key="s", wallet_id=opened.wallet_id)
        assert code_of(v.credentials.RotateMyCredential, rot, staff) == grpc.StatusCode.PERMISSION_DENIED
    assert balance_code(v, opened.wallet_id, opened.holder_token) == grpc.StatusCode.OK


# -- tills --------------------------------------------------------------------------------


def register(v: CityStubs, fed: LocalFederation, name: str) -> Any:
    req = merchant_pb2.RegisterMerchantRequest(
        idempotency_key=f"shop:{uuid.uuid4()}", name=name, category="food", local=True
    )
    return v.merchant.RegisterMerchant(req, metadata=fed.staff("mia", "merchant_admin"), timeout=5)


def test_tills_get_their_own_credentials_and_one_revoked_stops_at_once(
    fed: LocalFederation, v: CityStubs
) -> None:
    admin = fed.staff("mia", "merchant_admin")
    shop = register(v, fed, "Bakery")
    issue = v.credentials.IssueTillCredential
    till2 = issue(
        pb.IssueTillCredentialRequest(idempotency_key="till2", merchant_id=shop.merchant_id, label="till 2"),
        metadata=admin,
        timeout=5,
    )
    till3 = issue(
        pb.IssueTillCredentialRequest(idempotency_key="till3", merchant_id=shop.merchant_id, label="till 3"),
        metadata=admin,
        timeout=5,
    )
    # A retry names the same till credential and shows no secret.
    again = issue(
        pb.IssueTillCredentialRequest(idempotency_key="till2", merchant_id=shop.merchant_id, label="till 2"),
        metadata=admin,
        timeout=5,
    )
    assert again.credential_id == till2.credential_id and again.credential == ""
    for token in (shop.merchant_token, till2.credential, till3.credential):
        assert statement_code(v, token) == grpc.StatusCode.OK
    listed = v.credentials.ListTillCredentials(
        pb.ListTillCredentialsRequest(merchant_id=shop.merchant_id), metadata=admin, timeout=5
    )
    assert {c.label for c in listed.credentials} == {"first till", "till 2", "till 3"}
    revoked = v.credentials.RevokeTillCredential(
        pb.RevokeTillCredentialRequest(
            idempotency_key="r2", merchant_id=shop.merchant_id, credential_id=till2.credential_id
        ),
        metadata=admin,
        timeout=5,
    )
    assert revoked.revoked
    assert statement_code(v, till2.credential) == grpc.StatusCode.UNAUTHENTICATED
    # A retry replays the revocation.
    retry = pb.RevokeTillCredentialRequest(
        idempotency_key="r2", merchant_id=shop.merchant_id, credential_id=till2.credential_id
    )
    assert v.credentials.RevokeTillCredential(retry, metadata=admin, timeout=5).revoked
    assert statement_code(v, till3.credential) == grpc.StatusCode.OK
    assert statement_code(v, shop.merchant_token) == grpc.StatusCode.OK


def test_one_tills_credential_cannot_act_for_another_merchant(fed: LocalFederation, v: CityStubs) -> None:
    admin = fed.staff("mia", "merchant_admin")
    a, b = register(v, fed, "Shop A"), register(v, fed, "Shop B")
    # Rewriting the merchant part of A's credential to B's id makes nothing that works.
    assert (
        statement_code(v, a.merchant_token.replace(a.merchant_id, b.merchant_id))
        == grpc.StatusCode.UNAUTHENTICATED
    )
    # Revoking A's till under B's id finds nothing, and A's till still works.
    a_till = a.merchant_token.split(".")[2]
    req = pb.RevokeTillCredentialRequest(
        idempotency_key="cross", merchant_id=b.merchant_id, credential_id=a_till
    )
    assert code_of(v.credentials.RevokeTillCredential, req, admin) == grpc.StatusCode.NOT_FOUND
    assert statement_code(v, a.merchant_token) == grpc.StatusCode.OK
    # A till manages no tills, its own merchant's included.
    own = pb.IssueTillCredentialRequest(idempotency_key="self", merchant_id=a.merchant_id)
    assert (
        code_of(v.credentials.IssueTillCredential, own, bearer(a.merchant_token))
        == grpc.StatusCode.PERMISSION_DENIED
    )
    # A till credential for a merchant that does not exist is refused.
    ghost = pb.IssueTillCredentialRequest(idempotency_key="ghost", merchant_id=str(uuid.uuid4()))
    assert code_of(v.credentials.IssueTillCredential, ghost, admin) == grpc.StatusCode.NOT_FOUND
