"""Holder credentials belong to the holder: nothing the node holds makes one for an existing
wallet, and a lost wallet is recovered only by two different staff members, in the holder's
own history, with every earlier credential revoked. Through gRPC against real nodes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import uuid
from pathlib import Path
from typing import Any

import grpc
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, OKPKey, RSAKey

from aggregates.errors import DomainError
from civfed.v1 import credentials_pb2 as pb
from civfed.v1 import wallet_pb2
from services import commands as c
from services.demo.local_federation import CityStubs, LocalFederation
from services.grpc.auth import bearer
from services.history import history
from services.identity.credentials import CredentialCheck, NewCredential
from tests.e2e.flows import open_wallet
from tests.rights.apps import city_app
from tests.rights.apps import opened as app_opened


def balance_code(v: CityStubs, wallet_id: str, token: str) -> grpc.StatusCode:
    try:
        v.wallet.GetBalance(
            wallet_pb2.GetBalanceRequest(wallet_id=wallet_id), metadata=bearer(token), timeout=5
        )
    except grpc.RpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


def events_of(v: CityStubs, wallet_id: str, token: str) -> list[Any]:
    req = wallet_pb2.ListMyEventsRequest(wallet_id=wallet_id)
    return list(v.wallet.ListMyEvents(req, metadata=bearer(token), timeout=5).events)


def refused(call: Any, request: Any, metadata: Any) -> grpc.StatusCode:
    try:
        call(request, metadata=metadata, timeout=5)
    except grpc.RpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


# -- recovery ------------------------------------------------------------------------------


def test_recovery_needs_two_staff_subjects_revokes_the_old_credentials_and_shows_in_history(
    fed: LocalFederation,
) -> None:
    v = fed.stubs("vienna")
    opened = open_wallet(v, f"recover:{uuid.uuid4()}")
    w, old = opened.wallet_id, opened.holder_token
    second = v.credentials.RotateMyCredential(
        pb.RotateMyCredentialRequest(idempotency_key="tablet", wallet_id=w, keep_current=True),
        metadata=bearer(old),
        timeout=5,
    ).credential
    eva = fed.staff("eva", "recorder")
    asked = v.credentials.RequestRecovery(
        pb.RequestRecoveryRequest(
            idempotency_key="ask", wallet_id=w, reason="phone stolen, reported at the desk"
        ),
        metadata=eva,
        timeout=5,
    )
    # A retry of the request names the same recovery.
    retried = v.credentials.RequestRecovery(
        pb.RequestRecoveryRequest(
            idempotency_key="ask", wallet_id=w, reason="phone stolen, reported at the desk"
        ),
        metadata=eva,
        timeout=5,
    )
    assert retried.recovery_id == asked.recovery_id
    approve = pb.ApproveRecoveryRequest(idempotency_key="approve", wallet_id=w, recovery_id=asked.recovery_id)
    # The same person cannot approve, under another display name or with more roles either.
    for same in (
        eva,
        bearer(fed.idp.token("eva", ["recorder"], name="Eva M.")),
        fed.staff("eva", "recorder", "auditor"),
    ):
        assert refused(v.credentials.ApproveRecovery, approve, same) == grpc.StatusCode.FAILED_PRECONDITION
    # Staff without the role, holders and tills cannot approve at all.
    assert refused(v.credentials.ApproveRecovery, approve, fed.staff("otto", "appeals_officer")) == (
        grpc.StatusCode.PERMISSION_DENIED
    )
    assert refused(v.credentials.ApproveRecovery, approve, bearer(old)) == grpc.StatusCode.PERMISSION_DENIED
    # Nothing changed so far: both of the holder's credentials still work.
    assert balance_code(v, w, old) == balance_code(v, w, second) == grpc.StatusCode.OK

    jan = fed.staff("jan", "recorder")
    recovered = v.credentials.ApproveRecovery(approve, metadata=jan, timeout=5)
    assert recovered.credential and set(recovered.revoked) == {old.split(".")[2], second.split(".")[2]}
    # Every earlier credential stops at once; the new one works.
    assert balance_code(v, w, old) == grpc.StatusCode.UNAUTHENTICATED
    assert balance_code(v, w, second) == grpc.StatusCode.UNAUTHENTICATED
    assert balance_code(v, w, recovered.credential) == grpc.StatusCode.OK
    # A retry of the approval names the credential but never shows it again; a second
    # approval of the same recovery is refused.
    again = v.credentials.ApproveRecovery(approve, metadata=jan, timeout=5)
    assert again.credential_id == recovered.credential_id and again.credential == ""
    twice = pb.ApproveRecoveryRequest(idempotency_key="approve-2", wallet_id=w, recovery_id=asked.recovery_id)
    assert refused(v.credentials.ApproveRecovery, twice, fed.staff("ana", "recorder")) == (
        grpc.StatusCode.FAILED_PRECONDITION
    )

    # The holder reads it in their own history: who asked, who approved, why; never a hash.
    events = events_of(v, w, recovered.credential)
    kinds = [e.type for e in events]
    assert "Keyring.RecoveryRequested" in kinds and "Keyring.RecoveryApproved" in kinds
    asked_event = next(e for e in events if e.type == "Keyring.RecoveryRequested")
    approved_event = next(e for e in events if e.type == "Keyring.RecoveryApproved")
    assert "staff:eva" in asked_event.explanation and "phone stolen" in asked_event.explanation
    assert "staff:jan" in approved_event.explanation
    assert json.loads(approved_event.fields_json)["approved_by"] == "staff:jan"
    assert all("secret_hash" not in e.fields_json for e in events)
    secret = recovered.credential.rsplit(".", 1)[1]
    assert all(hashlib.sha256(secret.encode()).hexdigest() not in e.fields_json for e in events)


def test_recovery_is_requested_by_a_recorder_with_a_reason(fed: LocalFederation) -> None:
    v = fed.stubs("vienna")
    opened = open_wallet(v, f"recover:{uuid.uuid4()}")
    ask = pb.RequestRecoveryRequest(idempotency_key="ask", wallet_id=opened.wallet_id, reason="lost")
    for who in (
        fed.staff("mia", "merchant_admin"),
        fed.staff("otto", "appeals_officer"),
        bearer(opened.holder_token),
    ):
        assert refused(v.credentials.RequestRecovery, ask, who) == grpc.StatusCode.PERMISSION_DENIED
    no_reason = pb.RequestRecoveryRequest(idempotency_key="ask", wallet_id=opened.wallet_id)
    assert refused(v.credentials.RequestRecovery, no_reason, fed.staff("eva", "recorder")) == (
        grpc.StatusCode.INVALID_ARGUMENT
    )


# -- nothing the operator holds makes a credential -----------------------------------------


def everything_configured(fed: LocalFederation, city: str) -> list[bytes]:
    """Every setting's value, and the bytes of every file a setting names (TLS and signing
    keys, the JWKS, the key-store key) and of everything in the data directory."""
    node = fed.running[city].node
    every = {**fed.environment(city), **node.app.env}
    values = {k: v for k, v in every.items() if k.startswith(("CIVFED_", "SQLITE_", "POSTGRES_"))}
    found: list[bytes] = [v.encode() for v in values.values()]
    paths = [Path(v) for v in values.values() if v and len(v) < 4096 and v.startswith("/")]
    for p in paths:
        if p.is_file():
            found.append(p.read_bytes())
        elif p.is_dir():
            found.extend(f.read_bytes() for f in sorted(p.rglob("*")) if f.is_file())
    return found


def secret_candidates(blobs: list[bytes], wallet_id: str) -> set[str]:
    """Anything in the configuration or the store that could be, or derive, a secret: every
    value and line, every stored hash and hash-sized string, and HMACs of the wallet under
    each of them (how holder tokens were once made)."""
    words: set[str] = set()
    for blob in blobs:
        text = blob.decode("latin-1")
        if blob.isascii():
            words.add(text.strip())
            words.update(line.strip() for line in text.splitlines() if line.strip())
        words.update(re.findall(r"[0-9a-f]{64}", text))
        words.update(re.findall(r"[A-Za-z0-9_-]{43}", text))
    candidates = set(words)
    for word in sorted(words)[:2000]:
        mac = hmac.new(word.encode(), wallet_id.encode(), hashlib.sha256).digest()
        candidates.add(base64.urlsafe_b64encode(mac).rstrip(b"=").decode())
        candidates.add(mac.hex())
    return {c for c in candidates if c and "\n" not in c and len(c) < 2000}


def signing_keys(blobs: list[bytes]) -> list[Any]:
    """Every private key the node holds, as a JOSE key (to sign a staff token with)."""
    keys: list[Any] = []
    for blob in blobs:
        for pem in re.findall(
            rb"-----BEGIN [A-Z ]*PRIVATE KEY-----.+?-----END [A-Z ]*PRIVATE KEY-----", blob, re.S
        ):
            for kind in (ECKey, RSAKey, OKPKey):
                try:
                    keys.append(kind.import_key(pem))
                    break
                except Exception:
                    continue
    return keys


def test_nothing_the_node_holds_makes_a_working_credential_for_an_existing_wallet(
    fed: LocalFederation,
) -> None:
    v = fed.stubs("vienna")
    node = fed.running["vienna"].node
    app = node.app
    opened = open_wallet(v, "target")
    w = uuid.UUID(opened.wallet_id)
    real = opened.holder_token
    ring = app.keyring("holder", w)
    assert ring is not None
    ids = [str(i) for i in ring.entries]
    tokens: dict[str, str] = {}

    # 1. Every function that makes a credential, called as the operator.
    tokens["first credential again"] = node.first_credential("holder", w, "staff:operator")
    assert tokens["first credential again"] == ""
    for first_only in (False, True):
        new = NewCredential.make("holder", w)
        try:
            out = app.execute(
                app.issue_credential(f"op:{first_only}", new, "op", 365, "staff:op", first_only)
            )
            assert not out.get("issued"), out
        except DomainError:
            pass
        tokens[f"issue_credential first_only={first_only}"] = new.token
    for i, presented in enumerate([*ring.entries.values()]):
        new = NewCredential.make("holder", w)
        for guess in (presented.secret_hash, "", "x" * 43):
            with pytest.raises(DomainError):
                app.execute(
                    c.RotateCredential(
                        f"op:rotate:{i}:{guess[:4]}", w, "op", 365, False, presented.credential_id, guess,
                        new.credential_id, new.hash,
                    )
                )  # fmt: skip
        tokens[f"rotation without the secret {i}"] = new.token
    new = NewCredential.make("till", w)
    with pytest.raises(DomainError):
        app.execute(c.IssueTillCredential("op:till", w, "op", 365, "staff:op", new.credential_id, new.hash))
    tokens["a till credential for the wallet's id"] = new.token
    tokens["a till credential relabelled as the holder's"] = new.token.replace(
        "civfed-till.", "civfed-holder."
    )
    # A wallet a city's own tooling opened without a credential, then used, gets none either.
    batch = app_opened(app, "batch")
    app.execute(
        app.record_activity(
            "batch:trip", batch, "trip", {"mode": "bike", "distance_m": 5000, "date": "2026-05-03"}
        )
    )
    tokens["first credential of a used wallet"] = node.first_credential("holder", batch, "staff:operator")
    assert tokens["first credential of a used wallet"] == ""
    # Retrying the opening (replaying its stored result) shows no credential.
    again = open_wallet(v, "target")
    assert again.wallet_id == opened.wallet_id and again.holder_token == ""

    # 2. Everything configured or stored, as the secret of every stored credential id: the
    # stored hashes, each setting and HMACs under them through gRPC, and every other string
    # of the store and the files through the node's own check (the interceptor's code).
    blobs = everything_configured(fed, "vienna")
    settings = [s.encode() for s in fed.environment("vienna").values()]
    key_files = [
        Path(p).read_bytes()
        for p in (node.settings.CIVFED_TLS_KEY_FILE, node.settings.CIVFED_SIGNING_KEY_FILE)
    ]
    plausible = secret_candidates(settings + key_files, str(w)) | {
        e.secret_hash for e in ring.entries.values()
    }
    for secret in sorted(plausible):
        for cid in ids:
            token = f"civfed-holder.{w}.{cid}.{secret}"
            assert balance_code(v, str(w), token) == grpc.StatusCode.UNAUTHENTICATED, secret
    check = node.authenticator.credentials
    every = secret_candidates(blobs, str(w))
    assert len(every) > len(plausible)
    # The scan reads the store itself: the stored hashes are among what it found.
    assert {e.secret_hash for e in ring.entries.values()} <= every
    for secret in every:
        for cid in ids:
            assert check.principal(f"civfed-holder.{w}.{cid}.{secret}") is None, secret

    # 3. A staff token signed with any key the node holds, to run a recovery.
    now_claims = jwt.decode(fed.idp.token("op", ["recorder"]), fed.idp.key).claims
    keys = signing_keys(blobs)
    assert len(keys) >= 2  # the TLS key and the voucher signing key at least
    for n, key in enumerate(keys):
        alg = {ECKey: "ES256", RSAKey: "RS256", OKPKey: "EdDSA"}[type(key)]
        try:
            forged = jwt.encode({"alg": alg, "kid": fed.idp.kid}, {**now_claims, "sub": f"op{n}"}, key)
        except Exception:
            continue
        ask = pb.RequestRecoveryRequest(idempotency_key=f"op{n}", wallet_id=str(w), reason="operator")
        assert refused(v.credentials.RequestRecovery, ask, bearer(forged)) == grpc.StatusCode.UNAUTHENTICATED

    for what, token in tokens.items():
        if token:
            assert balance_code(v, str(w), token) == grpc.StatusCode.UNAUTHENTICATED, what
    # The holder's own credential still works, and is still the wallet's only live one.
    assert balance_code(v, str(w), real) == grpc.StatusCode.OK
    ring = app.keyring("holder", w)
    assert ring is not None and [str(e.credential_id) for e in ring.live(app.clock())] == ids


# -- every replica sees a revocation at once ---------------------------------------------------


def test_a_revocation_by_one_replica_is_refused_by_another_with_the_credential_cached(tmp_path: Path) -> None:
    """Two applications on one store (two replicas): the one checking credentials has the
    keyring in its cache, and still refuses a credential the other revoked, on the next check."""
    writer, reader = city_app("vienna", tmp_path), city_app("vienna", tmp_path)
    try:
        w = app_opened(writer)
        new = NewCredential.make("holder", w)
        writer.execute(writer.issue_credential("first", new, "phone", 365, "staff:eva", first_only=True))
        check = CredentialCheck(reader)
        assert check.principal(new.token) is not None  # now cached in the reader
        writer.execute(
            writer.revoke_credential("lost", "holder", w, new.credential_id, f"holder:{w}", "lost")
        )
        assert check.principal(new.token) is None
    finally:
        writer.close()
        reader.close()


def test_a_recovery_reason_is_sealed_in_the_store(tmp_path: Path) -> None:
    app = city_app("vienna", tmp_path)
    w = app_opened(app)
    reason = "phone lost on tram 71 near Simmering"
    app.execute(c.RequestRecovery("ask", w, reason, "staff:eva"))
    shown = " ".join(e.explanation for e in history(app, w))
    app.close()
    assert reason in shown  # the holder reads it
    raw = b"".join(f.read_bytes() for f in tmp_path.rglob("*.sqlite*") if f.is_file())
    assert reason.encode() not in raw
