"""The FastAPI app factory: core routers, plug-in routers from the context, and the operator page."""

from __future__ import annotations

from importlib import resources

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

from hub.api.routes import deadletters, devices, gaps, health, series, stream
from hub.context import HubContext


def operator_page() -> str:
    """The plain operator page (``hub/web/index.html``)."""
    return resources.files("hub.web").joinpath("index.html").read_text(encoding="utf-8")


def create_app(ctx: HubContext) -> FastAPI:
    """Build the hub's app around ``ctx`` (routes reach it via ``request.app.state.ctx``)."""
    app = FastAPI(
        title="GridSentinel hub",
        version="1",
        description="Devices, health, dead letters, data loss, series history and live changes.",
    )
    app.state.ctx = ctx
    for router in (health.router, devices.router, deadletters.router, gaps.router, series.router, stream.router):
        app.include_router(router)
    for router in ctx.routers:
        app.include_router(router)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index() -> str:
        return operator_page()

    return app
