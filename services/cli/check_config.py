"""`civfed check-config`: validate a city's files and one role's environment, start nothing.

Platform teams run it in their pipelines (and before a rollout) with the same
environment the role will get. It opens no database, broker or port: it reads the
settings, the city files and the certificate, key and JWKS files they name, and runs the
rule validation that loading a rulebook runs (`aggregates.rulebook.check_rule`, and the
city's published vocabulary, `aggregates.vocabulary`).
For a node it also checks how staff sign in: the identity provider's issuer, the
audience, the roles claim, and its signing keys (a JWKS file is read and parsed; a JWKS
URL is not fetched). Problems name the setting and the file, never a secret's content.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from aggregates.errors import DomainError
from aggregates.rulebook import check_rule
from aggregates.vocabulary import check_declared_kinds, check_vocabulary
from services.identity.oidc import ALGORITHMS
from services.privacy.journal import SETTING as JOURNAL
from services.privacy.keystore import KEYSTORE_URL
from services.privacy.keystore_key import SETTING
from services.settings.cities import (
    PACKAGED_CITIES,
    City,
    check_rule_funds,
    city_keys,
    load_city,
    load_settings,
)
from services.settings.errors import ConfigError
from services.settings.node import NodeSettings, load_node_settings
from services.settings.stream import load_stream_settings

# "retention": the daily `civfed retention run` (deploy/k8s/base/retention.yaml), which
# erases with the node's settings.
ROLES = ("node", "relay", "projector", "dashboard", "retention")
# Settings a role cannot run without, beyond the fields the settings models require.
ROLE_REQUIRES: dict[str, tuple[str, ...]] = {"relay": ("CIVFED_KAFKA_BOOTSTRAP",)}
# Roles that open a city's event store (and so its key store): on PostgreSQL they
# need the key-store key; SQLite makes one in the data dir.
OPENS_CITY_STORE = ("node", "relay", "retention")
# Roles that erase: on PostgreSQL the erasure journal must live apart from the store, or a
# restored database would forget the erasures it must re-apply (services/privacy/journal.py).
ERASES = ("node", "retention")
POSTGRES_REQUIRES: dict[str, tuple[str, ...]] = {
    role: (SETTING, JOURNAL) if role in ERASES else (SETTING,) for role in OPENS_CITY_STORE
}
# Roles that run for the one city named by CIVFED_CITY (or --city).
ONE_CITY = ("node", "retention")
# Members of a JWK that only a private or symmetric key has (RFC 7518, section 6).
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
# The key types that can check the signatures the node accepts (services/identity/oidc.py).
SIGNING_KEY_TYPES = ("RSA", "EC", "OKP")
NODE_PORTS = ("CIVFED_GRPC_PORT", "CIVFED_PUBLIC_PORT", "CIVFED_HEALTH_PORT", "CIVFED_METRICS_PORT")


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)


def check_rules(city: City) -> list[str]:
    """Every rule of the city's rulebook, through the same guard as publishing."""
    problems = []
    vocabulary = city.config.vocabulary
    try:
        check_declared_kinds(city.config.key, vocabulary.actions, vocabulary.events)
    except DomainError as exc:
        problems.append(f"{city.config.key}/city.toml: {exc}")
    for spec in city.rules:
        try:
            check_rule(spec.id, spec.kind, spec.params, spec.conditions, spec.activity)
            check_vocabulary(
                spec.id, spec.kind, spec.activity, spec.params, vocabulary.actions, vocabulary.events
            )
        except DomainError as exc:
            problems.append(f"{city.config.key}/rulebook.toml: {exc}")
        except KeyError as exc:
            problems.append(
                f"{city.config.key}/rulebook.toml: rule {spec.id!r} rejected: params.{exc.args[0]} is missing"
            )
        except (TypeError, AttributeError) as exc:
            problems.append(
                f"{city.config.key}/rulebook.toml: rule {spec.id!r} rejected: malformed params ({exc})"
            )
    try:
        check_rule_funds(city)  # every rule draws on one of the city's funds
    except ConfigError as exc:
        problems.append(f"{city.config.key}/city.toml: {exc}")
    return problems


def _role_settings(role: str, env: Mapping[str, str], report: Report) -> dict[str, Any]:
    """Validate the role's own settings; returns the node's partners (or nothing)."""
    if env.get("PERSISTENCE_MODULE") == "eventsourcing.postgres":
        for name in POSTGRES_REQUIRES.get(role, ()):
            if not env.get(name):
                report.problems.append(
                    f"invalid {role} settings: {name}: required for the {role} on eventsourcing.postgres"
                )
        if role in ERASES and not env.get(KEYSTORE_URL):
            report.warnings.append(
                f"{KEYSTORE_URL}: not set: the key store shares the events' database and is backed up "
                "and restored with it (deploy/README.md, section 6)"
            )
    if role == "retention":
        return {}  # the store's settings alone, checked with the city files
    if role == "node":
        try:
            node = load_node_settings(dict(env))
        except ConfigError as exc:
            report.problems.append(str(exc))
            return {}
        _ports(node, report)
        _identity_provider(node, report)
        return dict(node.CIVFED_PARTNERS)
    try:
        load_stream_settings(dict(env))
    except ConfigError as exc:
        report.problems.append(str(exc))
    for name in ROLE_REQUIRES.get(role, ()):
        if not env.get(name):
            report.problems.append(f"invalid {role} settings: {name}: required for the {role}")
    return {}


def _ports(node: NodeSettings, report: Report) -> None:
    """The node binds each of its ports alone: two settings naming one port cannot both listen."""
    seen: dict[int, str] = {}
    for setting in NODE_PORTS:
        port = getattr(node, setting)
        if port and port in seen:
            report.problems.append(f"{setting}: {port} is also {seen[port]}; each port is bound alone")
        seen.setdefault(port, setting)


def _identity_provider(node: NodeSettings, report: Report) -> None:
    """Staff sign in at the city's OpenID Connect provider: without its issuer and keys, no
    staff call can succeed (no wallet opened, no appeal decided)."""
    issuer = node.CIVFED_OIDC_ISSUER
    if not issuer:
        report.problems.append(
            "CIVFED_OIDC_ISSUER: not set: no staff member could sign in"
            " (set the issuer, CIVFED_OIDC_JWKS and CIVFED_OIDC_ROLES_CLAIM of the city's identity provider)"
        )
        return
    if not _is_https_url(issuer):
        report.problems.append(
            f"CIVFED_OIDC_ISSUER: {issuer!r} is not an https URL, as an OpenID Connect issuer is"
        )
    if not node.CIVFED_OIDC_AUDIENCE.strip():
        report.problems.append(
            "CIVFED_OIDC_AUDIENCE: empty: tokens meant for any other service would be accepted"
        )
    claim = node.CIVFED_OIDC_ROLES_CLAIM
    if not claim or any(not part.strip() for part in claim.split(".")):
        report.problems.append(
            f"CIVFED_OIDC_ROLES_CLAIM: {claim!r} is not a claim name or a dotted path to one"
            " (roles, realm_access.roles, resource_access.<client>.roles)"
        )
    source = node.CIVFED_OIDC_JWKS
    if source.startswith(("https://", "http://")):
        if not _is_https_url(source):
            report.problems.append(
                f"CIVFED_OIDC_JWKS: {source} is not an https URL: keys fetched without TLS could be"
                " replaced on the way, and with them anyone could sign staff tokens"
            )
        elif _is_https_url(issuer) and urlsplit(source).hostname != urlsplit(issuer).hostname:
            report.warnings.append(
                f"CIVFED_OIDC_JWKS: served by {urlsplit(source).hostname}, not by the issuer's host"
                f" {urlsplit(issuer).hostname}; make sure it is the jwks_uri the issuer publishes"
            )
    else:
        report.problems.extend(check_jwks_file(Path(source)))


def _is_https_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme == "https" and bool(parts.hostname)


def check_jwks_file(path: Path) -> list[str]:
    """A JWKS file as the node will read it: JSON with a "keys" list, every key importable,
    none private, and at least one that can check the signatures the node accepts. Messages
    name keys by position and key id only, never by their content."""
    name = f"CIVFED_OIDC_JWKS: {path}"
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        return [f"CIVFED_OIDC_JWKS: cannot read {path} ({exc.strerror})"]
    except (UnicodeDecodeError, json.JSONDecodeError):
        return [f"{name} is not a JWKS (not JSON)"]
    keys = data.get("keys") if isinstance(data, dict) else None
    if not isinstance(keys, list) or not keys:
        return [f'{name} is not a JWKS (no "keys" list, or an empty one)']
    problems: list[str] = []
    signing = 0
    for i, key in enumerate(keys):
        if not isinstance(key, dict):
            problems.append(f"{name}: key {i} is not a JSON object")
            continue
        label = f"key {i}" + (f" ({key['kid']!r})" if isinstance(key.get("kid"), str) else "")
        private = sorted(PRIVATE_MEMBERS & set(key))
        if private:
            problems.append(
                f"{name}: {label} holds private or symmetric key material ({', '.join(private)});"
                " the node needs only the provider's public keys"
            )
            continue
        try:
            KeySet.import_key_set({"keys": [key]})
        except (JoseError, ValueError, TypeError, KeyError) as exc:
            problems.append(f"{name}: {label} cannot be read as a public key ({type(exc).__name__})")
            continue
        if (
            key.get("kty") in SIGNING_KEY_TYPES
            and key.get("use", "sig") == "sig"
            and key.get("alg", ALGORITHMS[0]) in ALGORITHMS
        ):
            signing += 1
    if not problems and not signing:
        problems.append(
            f"{name} has no key that can check the signatures the node accepts ({', '.join(ALGORITHMS)})"
        )
    return problems


def _federation(city: City, partners: dict[str, Any], report: Report) -> None:
    """Partners named in [federation] need an address and key in CIVFED_PARTNERS."""
    terms = city.config.federation
    for other in sorted(set(terms.accepts) | set(terms.redeemable_at)):
        if other not in partners:
            report.warnings.append(
                f"{city.config.key}: [federation] names {other!r} but CIVFED_PARTNERS has no entry for it;"
                " redemptions with it will be refused"
            )
    for other in sorted(set(partners) - set(terms.accepts) - set(terms.redeemable_at)):
        report.warnings.append(
            f"CIVFED_PARTNERS: {other!r} has no terms in [federation] of {city.config.key}"
        )


def check_config(role: str, cities: list[str] | None, env: Mapping[str, str]) -> Report:
    """All problems found (each naming its setting, file or rule), not just the first."""
    report = Report()
    if role not in ROLES:
        report.problems.append(f"--role: {role!r} is not one of {', '.join(ROLES)}")
        return report
    cities_dir = Path(env.get("CIVFED_CITIES_DIR") or PACKAGED_CITIES)
    try:
        cities_dir = load_settings(dict(env)).CIVFED_CITIES_DIR
    except ConfigError as exc:
        report.problems.append(str(exc))
    if role in ONE_CITY and not cities and env.get("CIVFED_CITY"):
        cities = [env["CIVFED_CITY"]]
    if role == "node" and cities and len(cities) != 1:
        report.problems.append("--city: a node serves exactly one city")
    node_env = dict(env)
    if role == "node" and cities:
        node_env["CIVFED_CITY"] = cities[0]
    partners = _role_settings(role, node_env, report)
    keys = cities or city_keys(cities_dir)
    if not keys:
        report.problems.append(f"CIVFED_CITIES_DIR: no city folders (with city.toml) in {cities_dir}")
    for key in keys:
        try:
            city = load_city(key, cities_dir)
        except ConfigError as exc:
            report.problems.append(str(exc))
            continue
        report.problems.extend(check_rules(city))
        if role == "node":
            _federation(city, partners, report)
        n = len(city.rules)
        report.checked.append(f"{key} ({n} rule{'' if n == 1 else 's'})")
    return report


def cmd_check_config(args: argparse.Namespace) -> int:
    report = check_config(args.role, args.city, os.environ)
    for warning in report.warnings:
        print(f"civfed check-config: warning: {warning}", file=sys.stderr)
    for problem in report.problems:
        print(f"civfed check-config: {problem}", file=sys.stderr)
    if report.problems:
        print(f"civfed check-config: {len(report.problems)} problem(s) for role {args.role}", file=sys.stderr)
        return 2
    print(f"civfed check-config: {args.role} configuration is valid: {', '.join(report.checked)}")
    return 0


def add_check_config_parser(sub: Any) -> None:
    check = sub.add_parser(
        "check-config", help="validate city files, rulebook and a role's environment without starting"
    )
    check.add_argument("--role", required=True, choices=ROLES, help="whose settings to check")
    check.add_argument("--city", action="append", help="a city key (repeatable; default: CIVFED_CITY or all)")
    check.set_defaults(func=cmd_check_config)
