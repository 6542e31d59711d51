"""SourceService: staff register, rotate and retire the sources that attest activities;
anyone may list them."""

from __future__ import annotations

from typing import Any

import grpc

from aggregates.source import SourceRegistry
from civfed.v1 import sources_pb2, sources_pb2_grpc
from services import commands as c
from services.event_log import event_type
from services.grpc import claim_requests as rq
from services.grpc.calls import Calls, as_staff
from services.grpc.node import CityNode

ACTIONS = {
    "SourceRegistry.SourceRegistered": "registered",
    "SourceRegistry.SourceKeyRotated": "key_rotated",
    "SourceRegistry.SourceRetired": "retired",
}


class SourceService(sources_pb2_grpc.SourceServiceServicer):
    def __init__(self, node: CityNode) -> None:
        self.node = node
        self.app = node.app
        self.call = Calls()

    def RegisterSource(self, request: Any, context: grpc.ServicerContext) -> Any:
        call = self.call(context, request, rq.RegisterSource)
        r = call.request
        bounds = [
            {"activity": b.activity, "max_per_day": b.max_per_day, "field": b.field, "where": b.where}
            for b in r.bounds
        ]
        by = as_staff(call.who).ref
        cmd = c.RegisterSource(
            call.key, r.source_id, r.name, r.key_id, r.public_key_pem, list(r.kinds), bounds, by, r.reason
        )
        out = self.node.execute(self.app.job(cmd))
        return sources_pb2.SourceChangeResponse(source_id=out["source_id"], key_id=out["key_id"])

    def RotateSourceKey(self, request: Any, context: grpc.ServicerContext) -> Any:
        call = self.call(context, request, rq.RotateSourceKey)
        r = call.request
        by = as_staff(call.who).ref
        cmd = c.RotateSourceKey(call.key, r.source_id, r.key_id, r.public_key_pem, by, r.reason)
        out = self.node.execute(self.app.job(cmd))
        return sources_pb2.SourceChangeResponse(source_id=out["source_id"], key_id=out["key_id"])

    def RetireSource(self, request: Any, context: grpc.ServicerContext) -> Any:
        call = self.call(context, request, rq.RetireSource)
        r = call.request
        cmd = c.RetireSource(call.key, r.source_id, as_staff(call.who).ref, r.reason)
        out = self.node.execute(self.app.job(cmd))
        return sources_pb2.SourceChangeResponse(source_id=out["source_id"], retired=out["retired"])

    def ListSources(self, request: Any, context: grpc.ServicerContext) -> Any:
        # No credentials: which systems may attest what is public.
        sources = [
            sources_pb2.Source(
                source_id=s.source_id,
                name=s.name,
                key_id=s.key_id,
                public_key_pem=s.public_key,
                kinds=s.kinds,
                bounds=[
                    sources_pb2.Bound(
                        activity=b.activity, field=b.field, max_per_day=b.max_per_day, where=b.where
                    )
                    for b in s.bounds
                ],
                active=s.active,
                retired_key_ids=s.retired_key_ids,
            )
            for s in self.app.sources()
        ]
        history = []
        for e in self.app.events.get(SourceRegistry.create_id(self.app.key)):
            action = ACTIONS.get(event_type(e))
            if action is None:
                continue
            f = vars(e)
            history.append(
                sources_pb2.SourceChange(
                    action=action,
                    source_id=f["source_id"],
                    key_id=f.get("key_id", ""),
                    by=f["by"],
                    why=f["reason"],
                    at=f["timestamp"].isoformat(),
                )
            )
        return sources_pb2.ListSourcesResponse(city=self.app.key, sources=sources, history=history)
