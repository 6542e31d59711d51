"""Starlette app over the read-model store. Reads only; every figure is k-anonymous.

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
from projections.store import Store

STATIC = Path(__file__).resolve().parent / "static"

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title} · civfed</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/static/dashboard.css"></head>
<body data-api="{api}" data-kind="{kind}">
<header><h1>{title}</h1><nav>{nav}</nav>
<p class="note">Aggregates only: any figure drawn from fewer than 10 people is shown as suppressed.</p>
</header><main id="charts"><p class="loading">Loading…</p></main>
<script src="/static/charts.js"></script></body></html>
"""


def create_app(store: Store) -> Starlette:
    def page(title: str, api: str, kind: str) -> HTMLResponse:
        with store.transaction() as tx:
            names = cities(tx)
        links = ['<a href="/">Federation</a>'] + [
            f'<a href="/city/{html.escape(c)}">{html.escape(c)}</a>' for c in names
        ]
        body = PAGE.format(title=html.escape(title), api=api, kind=kind, nav=" · ".join(links))
        return HTMLResponse(body)

    async def federation_page(request: Request) -> Response:
        return page("Federation", "/api/federation", "federation")

    async def city_page(request: Request) -> Response:
        city = request.path_params["city"]
        with store.transaction() as tx:
            if city not in cities(tx):
                return HTMLResponse("unknown city", status_code=404)
        return page(city, f"/api/city/{city}", "city")

    async def api_cities(request: Request) -> Response:
        with store.transaction() as tx:
            return JSONResponse({"cities": cities(tx)})

    async def api_city(request: Request) -> Response:
        city = request.path_params["city"]
        with store.transaction() as tx:
            if city not in cities(tx):
                return JSONResponse({"error": f"unknown city {city!r}"}, status_code=404)
            return JSONResponse(city_dashboard(tx, city))

    async def api_federation(request: Request) -> Response:
        with store.transaction() as tx:
            return JSONResponse(federation_dashboard(tx))

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
