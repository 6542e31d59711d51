"""Starlette app over the read-model store. Every figure is published by `projections.disclosure`:
closed periods only, k people per cell, Laplace noise drawn once and stored (the one write).

Routes: `/` (federation page), `/city/{city}` (city page), `/api/cities`,
`/api/city/{city}`, `/api/federation`, `/static/...` (charts drawn by our own
script as SVG, so the pages work offline), and `/healthz` (the process answers) and
`/readyz` (the read-model store answers) for liveness and readiness probes.
"""

from __future__ import annotations

import html
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from projections.dashboard_view import cities, city_dashboard, federation_dashboard
from projections.disclosure import Policy
from projections.store import Store
from services.clock import Clock, utcnow

STATIC = Path(__file__).resolve().parent / "static"

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title} · civfed</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/static/dashboard.css"></head>
<body data-api="{api}" data-kind="{kind}">
<header><h1>{title}</h1><nav>{nav}</nav>
<p class="note">Aggregates only, for closed days and weeks: any figure drawn from fewer than {k} people is
shown as suppressed; every other carries discrete Laplace noise, drawn once and kept
(differential privacy, {epsilon}); every total is the sum of the published figures.
The JSON API states for each figure how it was protected.</p>
</header><main id="charts"><p class="loading">Loading…</p></main>
<script src="/static/charts.js"></script></body></html>
"""


def create_app(store: Store, policies: dict[str, Policy] | None = None, clock: Clock = utcnow) -> Starlette:
    """`policies`: each city's disclosure terms (services.settings.disclosure); `clock`: what
    decides which periods are closed."""
    terms = policies or {}

    def page(title: str, api: str, kind: str, city: str | None = None) -> HTMLResponse:
        with store.transaction() as tx:
            names = cities(tx)
        links = ['<a href="/">Federation</a>'] + [
            f'<a href="/city/{html.escape(c)}">{html.escape(c)}</a>' for c in names
        ]
        shown = [terms.get(c) or Policy() for c in ([city] if city else names)]
        epsilon = "; ".join(
            f"{c}: ε = {p.epsilon_per_day} per day, {p.epsilon_per_week} per week, "
            f"{p.epsilon_per_month} per month"
            for c, p in zip([city] if city else names, shown, strict=True)
        )
        body = PAGE.format(
            title=html.escape(title),
            api=api,
            kind=kind,
            nav=" · ".join(links),
            k=max([p.k for p in shown] + [Policy().k]),
            epsilon=html.escape(epsilon or "ε as each city sets it"),
        )
        return HTMLResponse(body)

    async def federation_page(request: Request) -> Response:
        return page("Federation", "/api/federation", "federation")

    async def city_page(request: Request) -> Response:
        city = request.path_params["city"]
        with store.transaction() as tx:
            if city not in cities(tx):
                return HTMLResponse("unknown city", status_code=404)
        return page(city, f"/api/city/{city}", "city", city)

    async def api_cities(request: Request) -> Response:
        with store.transaction() as tx:
            return JSONResponse({"cities": cities(tx)})

    async def api_city(request: Request) -> Response:
        city = request.path_params["city"]
        with store.transaction() as tx:
            if city not in cities(tx):
                return JSONResponse({"error": f"unknown city {city!r}"}, status_code=404)
            return JSONResponse(city_dashboard(tx, city, terms.get(city), clock()))

    async def api_federation(request: Request) -> Response:
        with store.transaction() as tx:
            return JSONResponse(federation_dashboard(tx, terms, clock()))

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        try:
            with store.transaction() as tx:
                tx.one("SELECT 1")
        except Exception as exc:  # any store failure means: do not route traffic here
            store.close()  # the next probe reconnects
            return JSONResponse({"status": "unavailable", "reason": type(exc).__name__}, status_code=503)
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/", federation_page),
            Route("/city/{city}", city_page),
            Route("/api/cities", api_cities),
            Route("/api/city/{city}", api_city),
            Route("/api/federation", api_federation),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ]
    )
