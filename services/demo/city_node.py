"""A city's node, started in this process on the demo's own store, that a scenario drives
through the node's gRPC contracts, as a deployed city's desks, residents' apps and shops'
tills would: staff with tokens from the demo's identity provider, residents with the
holder credential their wallet was opened with, partner businesses with a till credential
a merchant admin issued.

The node runs on the scenario's clock, so what the scenario does on a given day is dated
that day and the figures come out the same on every run. A credential is shown once, when
it is made; the demo keeps them in its data directory (`Phones`) so a second run, whose
calls all replay their first answers, can still act as the same people and tills.

Calls that do not depend on each other go out side by side (`calls`), and the node saves
those that queue up behind its writer together; calls whose order matters, such as claims
on one task's last slots, go out in order within their lane (`lanes`).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from aggregates.errors import DomainError
from civfed.v1 import credentials_pb2, merchant_pb2, wallet_pb2
from services.city import CityApplication
from services.demo.clock import ScenarioClock
from services.demo.groups import Step, run_group
from services.demo.local_federation import CityStubs, LocalFederation
from services.grpc.auth import bearer
from services.settings.cities import Settings
from services.unit_of_work import Job

# How many calls are in flight at once: enough for the node's writer to save them in
# groups, few enough that none waits long for a worker thread.
WINDOW = 48
TIMEOUT = 60.0
# What a refused command answers: the scenario expects some (a spend at a shop outside the
# basic economy, a claim on a full task); anything else is a fault and stops the demo.
REFUSED = (grpc.StatusCode.FAILED_PRECONDITION,)

Metadata = Sequence[tuple[str, str]]


@dataclass(frozen=True)
class Call:
    """One unary call: the stub's method, its request and the caller's credentials."""

    method: Any
    request: Any
    metadata: Metadata

    def future(self) -> Any:
        return self.method.future(self.request, metadata=self.metadata, timeout=TIMEOUT)


def answer(future: Any) -> Any:
    """The call's response, or its refusal (an `grpc.RpcError` with a REFUSED code)."""
    try:
        return future.result()
    except grpc.RpcError as err:
        if err.code() in REFUSED:
            return err
        raise


def refused(result: Any) -> bool:
    return isinstance(result, grpc.RpcError)


def answered(results: list[Any]) -> list[Any]:
    """The responses among `results`, refusals left out."""
    return [r for r in results if not refused(r)]


class Phones:
    """Where the demo's people and shops keep their credentials between runs, as a phone or
    a till would: a node shows a credential once, and a rerun's replayed opening shows none."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.kept: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}

    def keep(self, key: str, shown: str) -> str:
        if shown:
            self.kept[key] = shown
        if key not in self.kept:
            raise RuntimeError(f"{key}: no credential kept from an earlier run in {self.path}")
        return self.kept[key]

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(self.kept, indent=1, sort_keys=True))


def store_env(settings: Settings) -> dict[str, str]:
    """The demo's store settings, so the nodes open the embedded demo's city stores."""
    values = {name: getattr(settings, name) for name in Settings.model_fields}
    # An unset optional setting stays unset, rather than becoming the text "None".
    return {name: str(value) for name, value in values.items() if value is not None}


class DemoNode:
    """`key`'s node, serving on loopback from the demo's store on the scenario's clock."""

    def __init__(self, settings: Settings, key: str, clock: ScenarioClock, folder: Path) -> None:
        self.key = key
        self.fed = LocalFederation(
            folder,
            [key],
            # No sweep while the scenario plays: a prize claim is handed over the day it is made.
            sweep_seconds=3600,
            extra_env=store_env(settings),
            signing_folder=settings.CIVFED_DATA_DIR / "federation-keys",
        )
        self.running = self.fed.start_in_process(key, clock)
        self.stubs: CityStubs = self.fed.stubs(key)
        self.phones = Phones(settings.CIVFED_DATA_DIR / f"{key}-credentials.json")
        self._staff: dict[tuple[str, tuple[str, ...]], Metadata] = {}

    @property
    def app(self) -> CityApplication:
        app: CityApplication = self.running.node.app
        return app

    # -- who calls ------------------------------------------------------------------------
    def staff(self, subject: str, *roles: str) -> Metadata:
        """A staff member's call metadata, with a token from the cities' identity provider."""
        if (subject, roles) not in self._staff:
            self._staff[(subject, roles)] = self.fed.staff(subject, *roles)
        return self._staff[(subject, roles)]

    def holder(self, wallet_id: str) -> Metadata:
        return bearer(self.phones.kept[f"wallet:{wallet_id}"])

    # -- calls ----------------------------------------------------------------------------
    def calls(self, calls: list[Call], step: Step) -> list[Any]:
        """Every call's answer (a response or a refusal), in the order of `calls`."""
        results: list[Any] = []
        for i in range(0, len(calls), WINDOW):
            chunk = calls[i : i + WINDOW]
            results += [answer(f) for f in [c.future() for c in chunk]]
            step(len(chunk))
        return results

    def lanes(self, lanes: list[list[Call]], step: Step) -> list[list[Any]]:
        """Each lane's calls in order, one after the other; the lanes side by side."""
        results: list[list[Any]] = [[] for _ in lanes]
        for wave in range(max((len(lane) for lane in lanes), default=0)):
            live = [(n, lane[wave]) for n, lane in enumerate(lanes) if wave < len(lane)]
            for (n, _), result in zip(live, self.calls([c for _, c in live], step), strict=True):
                results[n].append(result)
        return results

    def in_process(self, cmds: list[Job], step: Step) -> list[dict[str, Any] | DomainError]:
        """The parts of a scenario still played inside the program, on the node's own
        application and under its writer's lock."""
        with self.running.node.lock:
            return run_group(self.app, cmds, step)

    # -- the desks --------------------------------------------------------------------------
    def open_wallets(self, keys: list[str], kind: str, consent: str, step: Step) -> list[str]:
        """Wallets opened at the city's desk (a `recorder`); each holder keeps the credential
        the wallet was opened with. Returns the wallet ids, in the order of `keys`."""
        desk = self.staff("desk-1", "recorder")
        opened = self.calls(
            [
                Call(
                    self.stubs.wallet.OpenWallet,
                    wallet_pb2.OpenWalletRequest(
                        idempotency_key=key, participant_kind=kind, consent_version=consent
                    ),
                    desk,
                )
                for key in keys
            ],
            step,
        )
        wallets = [str(w.wallet_id) for w in opened]
        for w in opened:
            self.phones.keep(f"wallet:{w.wallet_id}", w.holder_token)
        self.phones.save()
        return wallets

    def register_merchants(self, shops: list[tuple[str, str, str, bool, bool]], step: Step) -> list[str]:
        """Shops registered by a merchant admin: (key, name, category, local, basic economy)."""
        admin = self.staff("merchants-1", "merchant_admin")
        registered = self.calls(
            [
                Call(
                    self.stubs.merchant.RegisterMerchant,
                    merchant_pb2.RegisterMerchantRequest(
                        idempotency_key=key, name=name, category=category, local=local, basic_economy=basic
                    ),
                    admin,
                )
                for key, name, category, local, basic in shops
            ],
            step,
        )
        return [str(m.merchant_id) for m in registered]

    def tills(self, merchants: list[str], label: str, step: Step) -> list[Metadata]:
        """A till credential for each merchant, issued by a merchant admin; the call metadata
        each till then calls with."""
        admin = self.staff("merchants-1", "merchant_admin")
        issued = self.calls(
            [
                Call(
                    self.stubs.credentials.IssueTillCredential,
                    credentials_pb2.IssueTillCredentialRequest(
                        idempotency_key=f"demo:till:{m}:{label}", merchant_id=m, label=label
                    ),
                    admin,
                )
                for m in merchants
            ],
            step,
        )
        tokens = [
            self.phones.keep(f"till:{m}:{label}", t.credential)
            for m, t in zip(merchants, issued, strict=True)
        ]
        self.phones.save()
        return [bearer(t) for t in tokens]

    def close(self) -> None:
        self.stubs.close()
        self.fed.stop_all()


@contextmanager
def demo_node(settings: Settings, key: str, clock: ScenarioClock) -> Iterator[DemoNode]:
    """`key`'s node for the length of its scenario, with a throwaway CA for its TLS."""
    with tempfile.TemporaryDirectory(prefix=f"civfed-{key}-") as folder:
        node = DemoNode(settings, key, clock, Path(folder))
        try:
            yield node
        finally:
            node.close()


NodeScenario = Callable[[DemoNode, ScenarioClock, Step, int], None]
