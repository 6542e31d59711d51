"""The in-memory network between simulated cities, and the faults the simulation puts on it.

A call is a request and a reply. The network may drop either, deliver the request twice,
refuse the call, or hold the request back and deliver it later, in any order with other
held requests. The caller then sees what a real one would: no answer in time
(`PartnerUnreachable`), or a refused call.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from aggregates.errors import DomainError
from services.federation.partner import (
    Outcome,
    Partner,
    PartnerRefusedCall,
    PartnerUnreachable,
    PublishedTerms,
    Reservation,
)

FAULTS = ("drop-request", "drop-reply", "delay", "duplicate", "refuse")
# A lost reply and a refused call are weighted up: a retry after a reply that never came
# is where a saga most easily does a step twice, or undoes one it should not.
WEIGHTS = (1, 2, 1, 1, 2)


class Crash(BaseException):
    """A city's process dies here, between two saves; nothing in it catches this."""

    def __init__(self, city: str) -> None:
        super().__init__(f"{city} crashed")
        self.city = city


@dataclass
class Request:
    caller: str
    callee: str
    op: str  # "reserve", "commit" or "cancel"
    args: tuple[Any, ...]


class Network:
    """Delivers partner calls between cities; `partner(caller, home)` is the port a caller uses.

    `homes(city)` gives the real partner (services/federation/local_partner.py) of `city`'s
    node as it runs now, so a restarted node is reached like the old one. A node that
    crashes while serving a request is recorded in `crashed`, for the simulation to restart.
    """

    def __init__(
        self,
        rng: random.Random,
        homes: Callable[[str, str], Partner],
        fault_rate: float,
        log: Callable[[str], None],
    ) -> None:
        self.rng = rng
        self.homes = homes
        self.fault_rate = fault_rate
        self.faulty = True
        self.log = log
        self.held: list[Request] = []
        self.crashed: list[str] = []

    def partner(self, caller: str, home: str) -> Partner:
        return NetworkPartner(self, caller, home)

    def call(self, request: Request) -> Any:
        fault = ""
        if self.faulty and self.rng.random() < self.fault_rate:
            fault = self.rng.choices(FAULTS, WEIGHTS)[0]
        if fault:
            self.log(f"net {fault} {request.op} {request.caller}->{request.callee}")
        if fault == "drop-request":
            raise PartnerUnreachable(f"{request.callee}: request lost")
        if fault == "refuse":
            raise PartnerRefusedCall(f"{request.callee} refused: busy")
        if fault == "delay":
            self.held.append(request)
            raise PartnerUnreachable(f"{request.callee}: no reply in time")
        reply = self.deliver(request)
        if fault == "duplicate":
            reply = self.deliver(request)
        if fault == "drop-reply":
            raise PartnerUnreachable(f"{request.callee}: reply lost")
        return reply

    def deliver(self, request: Request) -> Any:
        """The callee serves the request; if it crashes doing so, the caller hears nothing."""
        if request.callee in self.crashed:
            raise PartnerUnreachable(f"{request.callee} is down")
        home = self.homes(request.callee, request.caller)
        try:
            return getattr(home, request.op)(*request.args)
        except Crash as crash:
            if crash.city != request.callee:
                raise
            self.crashed.append(request.callee)
            raise PartnerUnreachable(f"{request.callee} died serving the call") from None

    def deliver_held(self, everything: bool = False) -> int:
        """Some held requests (all with `everything`), in a shuffled order; replies go nowhere."""
        if not self.held:
            return 0
        self.rng.shuffle(self.held)
        n = len(self.held) if everything else self.rng.randint(1, len(self.held))
        due, self.held = self.held[:n], self.held[n:]
        for request in due:
            with contextlib.suppress(PartnerUnreachable, DomainError):
                self.deliver(request)
        return n


class NetworkPartner:
    """The Partner port as `caller` sees home city `city`, through the network."""

    def __init__(self, network: Network, caller: str, city: str) -> None:
        self.network = network
        self.caller = caller
        self.city = city

    def _call(self, op: str, *args: Any) -> Any:
        return self.network.call(Request(self.caller, self.city, op, args))

    def reserve(self, key: str, token: str) -> Reservation:
        reply: Reservation = self._call("reserve", key, token)
        return reply

    def commit(self, key: str, redemption_id: UUID) -> Outcome:
        reply: Outcome = self._call("commit", key, redemption_id)
        return reply

    def cancel(self, key: str, redemption_id: UUID, reason: str) -> Outcome:
        reply: Outcome = self._call("cancel", key, redemption_id, reason)
        return reply

    def published_terms(self) -> PublishedTerms:
        # Terms change only with a city file; the simulation does not fault them.
        return self.network.homes(self.city, self.caller).published_terms()

    def close(self) -> None:
        pass
