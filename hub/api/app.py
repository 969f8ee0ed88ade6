"""The FastAPI app factory: core routers, plug-in routers from the context, sign-in, and the operator page."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

import hub.web
from hub import auth
from hub.api.routes import deadletters, devices, gaps, health, series, stream
from hub.context import HubContext


def operator_page() -> str:
    """The operator page shell (``hub/web/index.html``); its modules and styles are served under ``/web``."""
    return resources.files("hub.web").joinpath("index.html").read_text(encoding="utf-8")


def create_app(ctx: HubContext) -> FastAPI:
    """Build the hub's app around ``ctx`` (routes reach it via ``request.app.state.ctx``)."""
    app = FastAPI(
        title="GridSentinel hub",
        version="1",
        description="Devices, health, dead letters, data loss, series history, live changes, cases and sign-in.",
    )
    app.state.ctx = ctx
    ctx.services.setdefault("tokens", auth.TokenStore(ctx.sessions, clock=ctx.clock))
    for router in (
        health.router,
        devices.router,
        deadletters.router,
        gaps.router,
        series.router,
        stream.router,
        auth.router,
    ):
        app.include_router(router)
    for router in ctx.routers:
        app.include_router(router)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index() -> HTMLResponse:
        # no-store: a wall screen reloading the page gets the current modules' version stamp
        return HTMLResponse(operator_page(), headers={"Cache-Control": "no-store"})

    app.mount("/web", StaticFiles(directory=Path(hub.web.__file__).parent), name="web")
    return app
