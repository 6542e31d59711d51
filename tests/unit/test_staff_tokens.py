"""Staff access tokens, verified by the production verifier against a provider's JWKS file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.demo.identity_provider import TestIdentityProvider
from services.identity.oidc import Jwks, StaffTokens
from services.identity.principals import Unauthenticated


def verifier(idp: TestIdentityProvider, roles_claim: str = "roles", min_refetch: float = 0.0) -> StaffTokens:
    return StaffTokens(
        idp.issuer, idp.audience, Jwks(str(idp.jwks_file), min_refetch=min_refetch), roles_claim
    )


def test_subject_roles_and_name_come_from_the_token(tmp_path: Path) -> None:
    idp = TestIdentityProvider(tmp_path)
    staff = verifier(idp).verify(idp.token("7f3a", ["recorder", "auditor", "coffee"], name="Eva"))
    assert (staff.subject, staff.roles, staff.name, staff.ref) == (
        "7f3a",
        frozenset({"recorder", "auditor"}),  # a role the node does not know grants nothing
        "Eva",
        "staff:7f3a",
    )


def test_keycloak_roles_sit_under_realm_access(tmp_path: Path) -> None:
    idp = TestIdentityProvider(tmp_path)
    token = idp.token("k1", [], realm_access={"roles": ["appeals_officer", "offline_access"]})
    assert verifier(idp, "realm_access.roles").verify(token).roles == {"appeals_officer"}
    # The same token read with another claim configured has no roles at all.
    assert verifier(idp).verify(token).roles == frozenset()


def test_a_rotated_provider_key_is_fetched_again_and_an_unpublished_one_refused(tmp_path: Path) -> None:
    idp = TestIdentityProvider(tmp_path)
    tokens = verifier(idp)
    assert tokens.verify(idp.token("a")).subject == "a"
    # The provider rotates: a new key id is published, and tokens signed with it verify.
    new = TestIdentityProvider(tmp_path / "next", issuer=idp.issuer)
    old_keys = json.loads(idp.jwks_file.read_text())["keys"]
    new_keys = json.loads(new.jwks_file.read_text())["keys"]
    idp.jwks_file.write_text(json.dumps({"keys": old_keys + new_keys}))
    assert tokens.verify(new.token("b")).subject == "b"
    with pytest.raises(Unauthenticated):
        tokens.verify(idp.token("c", key=idp.stranger_key()))


@pytest.mark.parametrize(
    "change",
    [{"issuer": "https://evil.example"}, {"audience": "other"}, {"ttl": -600}],
    ids=["issuer", "audience", "expired"],
)
def test_wrong_issuer_audience_or_expiry_is_refused_naming_why(tmp_path: Path, change: dict) -> None:  # type: ignore[type-arg]
    idp = TestIdentityProvider(tmp_path)
    with pytest.raises(Unauthenticated) as err:
        verifier(idp).verify(idp.token("a", ["recorder"], **change))
    assert str(err.value).startswith("staff token refused")
