"""`civfed check-config`: city files, rulebook and a role's environment, with nothing started."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from services.cli.check_config import ROLES, check_config
from services.demo.local_federation import LocalFederation
from services.settings.cities import PACKAGED_CITIES

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def cities(tmp_path: Path) -> Path:
    """A writable copy of the packaged cities, to break on purpose."""
    folder = tmp_path / "cities"
    shutil.copytree(PACKAGED_CITIES, folder)
    return folder


def civfed(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The real command, as a pipeline runs it."""
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        cwd=ROOT,
        env={"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_packaged_cities_pass_for_every_event_path_role(tmp_path: Path) -> None:
    env = {"CIVFED_DATA_DIR": str(tmp_path / "data"), "CIVFED_KAFKA_BOOTSTRAP": "kafka:9092"}
    for role in ("relay", "projector", "dashboard"):
        report = check_config(role, None, env)
        assert report.problems == [], (role, report.problems)
        assert [c.split()[0] for c in report.checked] == [
            "bologna",
            "rome",
            "sint_niklaas",
            "vienna",
            "zwolle",
        ]
    assert not (tmp_path / "data").exists()  # nothing was opened or created


def test_a_complete_node_environment_passes(tmp_path: Path) -> None:
    fed = LocalFederation(tmp_path, ["vienna", "rome", "sint_niklaas"])
    result = civfed("check-config", "--role", "node", env=fed.environment("vienna"))
    assert result.returncode == 0, result.stderr
    assert "node configuration is valid: vienna (1 rule)" in result.stdout
    assert "warning" not in result.stderr  # both partners named in [federation] are configured
    # The node's data directory (made, empty, with its settings) stays empty: nothing was opened.
    assert [p.name for p in (tmp_path / "data").rglob("*")] == ["vienna"]


def test_a_negative_award_is_rejected_naming_the_rule_and_the_field(cities: Path) -> None:
    rulebook = cities / "bologna" / "rulebook.toml"
    rulebook.write_text(rulebook.read_text().replace("bus_ride = 3", "bus_ride = -3"))
    result = civfed(
        "check-config", "--role", "dashboard", "--city", "bologna", env={"CIVFED_CITIES_DIR": str(cities)}
    )
    assert result.returncode != 0
    assert "rule 'eco-actions' rejected: params.points.bus_ride is negative (-3)" in result.stderr
    assert "bologna/rulebook.toml" in result.stderr


def test_every_broken_rule_is_reported_not_just_the_first(cities: Path) -> None:
    rulebook = cities / "bologna" / "rulebook.toml"
    text = rulebook.read_text().replace("bus_ride = 3", "bus_ride = -3").replace("award = 25", "award = -25")
    rulebook.write_text(text.replace('scope = "wallet"', 'scope = "wallet"\nnationality = "it"'))
    report = check_config("projector", ["bologna"], {"CIVFED_CITIES_DIR": str(cities)})
    assert len(report.problems) == 2, report.problems
    assert "'eco-actions'" in report.problems[0] and "bus_ride is negative" in report.problems[0]
    assert "'civic-event'" in report.problems[1] and "protected attribute 'nationality'" in report.problems[1]


def test_a_rule_missing_a_parameter_names_it(cities: Path) -> None:
    rulebook = cities / "vienna" / "rulebook.toml"
    rulebook.write_text(rulebook.read_text().replace('baseline_mode = "car"', ""))
    report = check_config("dashboard", ["vienna"], {"CIVFED_CITIES_DIR": str(cities)})
    assert report.problems == [
        "vienna/rulebook.toml: rule 'mobility-co2' rejected: params.baseline_mode is missing"
    ]


def test_a_missing_node_setting_is_named(tmp_path: Path) -> None:
    fed = LocalFederation(tmp_path, ["vienna"])
    env = {**fed.environment("vienna"), "POSTGRES_PASSWORD": "db-s3cret-value"}
    del env["CIVFED_SIGNING_KEY_FILE"]
    result = civfed("check-config", "--role", "node", env=env)
    assert result.returncode != 0
    assert "CIVFED_SIGNING_KEY_FILE must be set" in result.stderr
    assert "db-s3cret-value" not in result.stderr + result.stdout  # secrets never echoed


def test_a_node_setting_naming_a_missing_file_is_named(tmp_path: Path) -> None:
    fed = LocalFederation(tmp_path, ["vienna"])
    env = {**fed.environment("vienna"), "CIVFED_TLS_CA_FILE": str(tmp_path / "nowhere.pem")}
    report = check_config("node", None, env)
    assert len(report.problems) == 1 and "CIVFED_TLS_CA_FILE" in report.problems[0], report.problems


def test_the_identity_provider_settings_are_checked(tmp_path: Path) -> None:
    fed = LocalFederation(tmp_path, ["vienna"])
    env = fed.environment("vienna")
    assert check_config("node", None, env).problems == []

    def problems(**change: str) -> list[str]:
        return check_config("node", None, {**env, **change}).problems

    assert problems(CIVFED_OIDC_ISSUER="") == [
        "CIVFED_OIDC_ISSUER: not set: no staff member could sign in (set the issuer, CIVFED_OIDC_JWKS"
        " and CIVFED_OIDC_ROLES_CLAIM of the city's identity provider)"
    ]
    assert problems(CIVFED_OIDC_ISSUER="id.wien.example/realms/civfed") == [
        "CIVFED_OIDC_ISSUER: 'id.wien.example/realms/civfed' is not an https URL,"
        " as an OpenID Connect issuer is"
    ]
    (plain,) = problems(CIVFED_OIDC_JWKS="http://id.civfed.test/realms/city/protocol/openid-connect/certs")
    assert plain.startswith("CIVFED_OIDC_JWKS: http://id.civfed.test/") and "not an https URL" in plain
    assert problems(CIVFED_OIDC_AUDIENCE=" ") == [
        "CIVFED_OIDC_AUDIENCE: empty: tokens meant for any other service would be accepted"
    ]
    (claim,) = problems(CIVFED_OIDC_ROLES_CLAIM="realm_access..roles")
    assert claim.startswith("CIVFED_OIDC_ROLES_CLAIM: 'realm_access..roles' is not a claim name")
    # A JWKS URL is checked for its form only: check-config opens no connection.
    keycloak = {**env, "CIVFED_OIDC_JWKS": "https://id.civfed.test/realms/city/protocol/openid-connect/certs"}
    assert check_config("node", None, keycloak).problems == []
    elsewhere = check_config("node", None, {**env, "CIVFED_OIDC_JWKS": "https://keys.elsewhere.test/jwks"})
    assert elsewhere.problems == []
    assert [w for w in elsewhere.warnings if "CIVFED_OIDC" in w] == [
        "CIVFED_OIDC_JWKS: served by keys.elsewhere.test, not by the issuer's host id.civfed.test;"
        " make sure it is the jwks_uri the issuer publishes"
    ]


def test_a_jwks_file_is_read_and_parsed_as_public_keys(tmp_path: Path) -> None:
    fed = LocalFederation(tmp_path, ["vienna"])
    env = fed.environment("vienna")
    jwks = json.loads(fed.idp.jwks_file.read_text())

    def problems(content: object) -> list[str]:
        path = tmp_path / "jwks.json"
        path.write_text(content if isinstance(content, str) else json.dumps(content))
        return check_config("node", None, {**env, "CIVFED_OIDC_JWKS": str(path)}).problems

    where = f"CIVFED_OIDC_JWKS: {tmp_path / 'jwks.json'}"
    assert problems(jwks) == []
    assert problems("-----BEGIN PUBLIC KEY-----\n") == [f"{where} is not a JWKS (not JSON)"]
    assert problems({"keys": []}) == [f'{where} is not a JWKS (no "keys" list, or an empty one)']
    assert problems(jwks["keys"][0]) == [f'{where} is not a JWKS (no "keys" list, or an empty one)']
    damaged = {**jwks["keys"][0], "x": "AAAA"}
    assert problems({"keys": [damaged]}) == [
        f"{where}: key 0 ({damaged['kid']!r}) cannot be read as a public key (ValueError)"
    ]
    encryption_only = {**jwks["keys"][0], "use": "enc"}
    assert problems({"keys": [encryption_only]}) == [
        f"{where} has no key that can check the signatures the node accepts (RS256, PS256, ES256, EdDSA)"
    ]
    # The signing key itself, published by mistake: named, never printed.
    private = {"keys": [fed.idp.key.as_dict(private=True)]}
    path = tmp_path / "private.json"
    path.write_text(json.dumps(private))
    result = civfed("check-config", "--role", "node", env={**env, "CIVFED_OIDC_JWKS": str(path)})
    assert result.returncode == 2
    assert (
        f"CIVFED_OIDC_JWKS: {path}: key 0 ({fed.idp.kid!r}) holds private or symmetric key material (d);"
        " the node needs only the provider's public keys"
    ) in result.stderr
    assert private["keys"][0]["d"] not in result.stderr + result.stdout


def test_a_port_named_by_two_settings_is_refused(tmp_path: Path) -> None:
    fed = LocalFederation(tmp_path, ["vienna"])
    env = {**fed.environment("vienna"), "CIVFED_GRPC_PORT": "50051", "CIVFED_PUBLIC_PORT": "50051"}
    assert check_config("node", None, env).problems == [
        "CIVFED_PUBLIC_PORT: 50051 is also CIVFED_GRPC_PORT; each port is bound alone"
    ]
    # Port 0 asks the kernel for any free port, so several settings may say 0.
    assert (
        check_config("node", None, {**env, "CIVFED_GRPC_PORT": "0", "CIVFED_PUBLIC_PORT": "0"}).problems == []
    )


def test_role_requirements_are_named() -> None:
    relay = check_config("relay", None, {})
    assert relay.problems == ["invalid relay settings: CIVFED_KAFKA_BOOTSTRAP: required for the relay"]
    postgres = check_config("dashboard", None, {"PERSISTENCE_MODULE": "eventsourcing.postgres"})
    assert len(postgres.problems) == 1 and "POSTGRES_DBNAME must be set" in postgres.problems[0]
    assert check_config("janitor", None, {}).problems == [
        f"--role: 'janitor' is not one of {', '.join(ROLES)}"
    ]


def test_missing_city_files_are_named(tmp_path: Path) -> None:
    report = check_config("dashboard", ["atlantis"], {"CIVFED_CITIES_DIR": str(tmp_path)})
    assert report.problems == [f"missing file {tmp_path / 'atlantis' / 'city.toml'}"]
    empty = check_config("dashboard", None, {"CIVFED_CITIES_DIR": str(tmp_path)})
    assert empty.problems == [f"CIVFED_CITIES_DIR: no city folders (with city.toml) in {tmp_path}"]


def test_kafka_security_problems_are_named_for_the_relay_and_the_projector(tmp_path: Path) -> None:
    (tmp_path / "ca.crt").write_text("a CA\n")
    env = {
        "CIVFED_DATA_DIR": str(tmp_path / "data"),
        "CIVFED_KAFKA_BOOTSTRAP": "kafka:9093",
        "CIVFED_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "CIVFED_KAFKA_SSL_CAFILE": str(tmp_path / "ca.crt"),
        "CIVFED_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "CIVFED_KAFKA_SASL_PASSWORD_FILE": str(tmp_path / "nowhere"),
    }
    for role in ("relay", "projector"):
        report = check_config(role, None, env)
        assert len(report.problems) == 1, (role, report.problems)
        assert (
            "CIVFED_KAFKA_SASL_USERNAME: required when CIVFED_KAFKA_SECURITY_PROTOCOL is SASL_SSL"
            in (report.problems[0])
        )
        assert f"CIVFED_KAFKA_SASL_PASSWORD_FILE: no such file {tmp_path / 'nowhere'}" in report.problems[0]
    (tmp_path / "password").write_text("s3cret\n")
    fixed = {
        **env,
        "CIVFED_KAFKA_SASL_USERNAME": "civfed-rome",
        "CIVFED_KAFKA_SASL_PASSWORD_FILE": str(tmp_path / "password"),
    }
    result = civfed(
        "check-config", "--role", "relay", env={**fixed, "CIVFED_KAFKA_SSL_CAFILE": str(tmp_path / "x")}
    )
    assert result.returncode == 2 and "CIVFED_KAFKA_SSL_CAFILE: no such file" in result.stderr
    assert "s3cret" not in result.stderr + result.stdout
    for role in ("relay", "projector"):
        assert check_config(role, None, fixed).problems == [], role


def test_the_relay_and_projector_refuse_to_start_with_incomplete_kafka_security(tmp_path: Path) -> None:
    env = {
        "CIVFED_DATA_DIR": str(tmp_path / "data"),
        "CIVFED_KAFKA_BOOTSTRAP": "127.0.0.1:9",
        "CIVFED_KAFKA_SECURITY_PROTOCOL": "SSL",
    }
    for command in (("relay", "--once"), ("project",)):
        result = civfed(*command, env=env)
        assert result.returncode == 2, (command, result.stderr)
        assert "CIVFED_KAFKA_SSL_CAFILE: required when CIVFED_KAFKA_SECURITY_PROTOCOL is SSL" in result.stderr
