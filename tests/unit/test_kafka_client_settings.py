"""Kafka security settings: start-up validation naming each setting, and the client arguments."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.settings.errors import ConfigError
from services.settings.stream import kafka_client_kwargs, load_stream_settings

BOOTSTRAP = "kafka.example:9093"


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    out = {}
    for name, text in (
        ("ca.crt", "CA"),
        ("client.crt", "CERT"),
        ("client.key", "KEY"),
        ("password", "s3cret\n"),
    ):
        (tmp_path / name).write_text(text)
        out[name] = str(tmp_path / name)
    return out


def sasl_env(files: dict[str, str]) -> dict[str, str]:
    return {
        "CIVFED_KAFKA_BOOTSTRAP": BOOTSTRAP,
        "CIVFED_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "CIVFED_KAFKA_SSL_CAFILE": files["ca.crt"],
        "CIVFED_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "CIVFED_KAFKA_SASL_USERNAME": "civfed-rome",
        "CIVFED_KAFKA_SASL_PASSWORD_FILE": files["password"],
    }


def problem(env: dict[str, str]) -> str:
    with pytest.raises(ConfigError) as caught:
        load_stream_settings(env)
    return str(caught.value)


def test_plaintext_is_the_default_and_maps_to_the_bootstrap_alone() -> None:
    stream = load_stream_settings({"CIVFED_KAFKA_BOOTSTRAP": BOOTSTRAP})
    assert kafka_client_kwargs(stream) == {"bootstrap_servers": BOOTSTRAP, "security_protocol": "PLAINTEXT"}


def test_ssl_maps_the_ca_and_verifies_the_host_name(files: dict[str, str]) -> None:
    env = {"CIVFED_KAFKA_BOOTSTRAP": BOOTSTRAP, "CIVFED_KAFKA_SECURITY_PROTOCOL": "SSL"}
    stream = load_stream_settings({**env, "CIVFED_KAFKA_SSL_CAFILE": files["ca.crt"]})
    assert kafka_client_kwargs(stream) == {
        "bootstrap_servers": BOOTSTRAP,
        "security_protocol": "SSL",
        "ssl_cafile": files["ca.crt"],
        "ssl_check_hostname": True,
    }


def test_ssl_with_a_client_certificate_maps_mutual_tls(files: dict[str, str]) -> None:
    env = {
        "CIVFED_KAFKA_BOOTSTRAP": BOOTSTRAP,
        "CIVFED_KAFKA_SECURITY_PROTOCOL": "SSL",
        "CIVFED_KAFKA_SSL_CAFILE": files["ca.crt"],
        "CIVFED_KAFKA_SSL_CERTFILE": files["client.crt"],
        "CIVFED_KAFKA_SSL_KEYFILE": files["client.key"],
    }
    kwargs = kafka_client_kwargs(load_stream_settings(env))
    assert kwargs["ssl_certfile"] == files["client.crt"] and kwargs["ssl_keyfile"] == files["client.key"]
    assert kwargs["ssl_cafile"] == files["ca.crt"] and "sasl_mechanism" not in kwargs


def test_sasl_ssl_maps_mechanism_user_and_the_password_read_from_its_file(files: dict[str, str]) -> None:
    stream = load_stream_settings(sasl_env(files))
    assert kafka_client_kwargs(stream) == {
        "bootstrap_servers": BOOTSTRAP,
        "security_protocol": "SASL_SSL",
        "ssl_cafile": files["ca.crt"],
        "ssl_check_hostname": True,
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "civfed-rome",
        "sasl_plain_password": "s3cret",  # the file's trailing newline is not part of it
    }
    for mechanism in ("PLAIN", "SCRAM-SHA-256"):
        env = {**sasl_env(files), "CIVFED_KAFKA_SASL_MECHANISM": mechanism}
        assert kafka_client_kwargs(load_stream_settings(env))["sasl_mechanism"] == mechanism


def test_ssl_without_a_ca_file_names_the_setting() -> None:
    for protocol in ("SSL", "SASL_SSL"):
        message = problem({"CIVFED_KAFKA_SECURITY_PROTOCOL": protocol})
        assert (
            f"CIVFED_KAFKA_SSL_CAFILE: required when CIVFED_KAFKA_SECURITY_PROTOCOL is {protocol}" in message
        )


def test_sasl_ssl_names_every_missing_setting_at_once(files: dict[str, str]) -> None:
    env = {"CIVFED_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "CIVFED_KAFKA_SSL_CAFILE": files["ca.crt"]}
    message = problem(env)
    for name in (
        "CIVFED_KAFKA_SASL_MECHANISM",
        "CIVFED_KAFKA_SASL_USERNAME",
        "CIVFED_KAFKA_SASL_PASSWORD_FILE",
    ):
        assert f"{name}: required when CIVFED_KAFKA_SECURITY_PROTOCOL is SASL_SSL" in message, message
    assert "CIVFED_KAFKA_SSL_CAFILE" not in message


def test_files_that_do_not_exist_are_named(files: dict[str, str], tmp_path: Path) -> None:
    for name in ("CIVFED_KAFKA_SSL_CAFILE", "CIVFED_KAFKA_SASL_PASSWORD_FILE"):
        missing = str(tmp_path / "nowhere")
        assert f"{name}: no such file {missing}" in problem({**sasl_env(files), name: missing})
    (tmp_path / "empty").write_text("\n")
    empty = problem({**sasl_env(files), "CIVFED_KAFKA_SASL_PASSWORD_FILE": str(tmp_path / "empty")})
    assert "CIVFED_KAFKA_SASL_PASSWORD_FILE" in empty and "is empty" in empty


def test_a_client_certificate_needs_its_key(files: dict[str, str]) -> None:
    env = {**sasl_env(files), "CIVFED_KAFKA_SSL_CERTFILE": files["client.crt"]}
    assert "CIVFED_KAFKA_SSL_KEYFILE: required for a client certificate" in problem(env)


def test_unknown_protocol_mechanism_and_counts_are_named(files: dict[str, str]) -> None:
    assert "CIVFED_KAFKA_SECURITY_PROTOCOL" in problem({"CIVFED_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT"})
    assert "CIVFED_KAFKA_SASL_MECHANISM" in problem(
        {**sasl_env(files), "CIVFED_KAFKA_SASL_MECHANISM": "GSSAPI"}
    )
    assert "CIVFED_KAFKA_TOPIC_PARTITIONS" in problem({"CIVFED_KAFKA_TOPIC_PARTITIONS": "0"})
    assert "CIVFED_KAFKA_REPLICATION_FACTOR" in problem({"CIVFED_KAFKA_REPLICATION_FACTOR": "0"})


def test_the_password_never_appears_in_an_error(files: dict[str, str]) -> None:
    env = {**sasl_env(files), "CIVFED_KAFKA_SASL_USERNAME": ""}
    assert "s3cret" not in problem(env)
