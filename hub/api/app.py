"""The FastAPI app factory: core routers, plug-in routers from the context, sign-in, and the operator page."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import StatementError

import hub.web
from hub.api.routes import deadletters, devices, gaps, health, series, stream
from hub.context import HubContext
from hub.security import auth


def page_shell(name: str = "index.html") -> str:
    """A page shell from ``hub/web`` (the operator page, or ``resident.html``); its modules are under ``/web``."""
    return resources.files("hub.web").joinpath(name).read_text(encoding="utf-8")


def create_app(ctx: HubContext) -> FastAPI:
    """Build the hub's app around ``ctx`` (routes reach it via ``request.app.state.ctx``)."""
    app = FastAPI(
        title="GridSentinel hub",
        version="1",
        description="Devices, health, dead letters, data loss, series history, live changes, cases and sign-in.",
    )
    app.state.ctx = ctx
    if ctx.services.tokens is None:
        ctx.services.tokens = auth.TokenStore(ctx.sessions, clock=ctx.clock)
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

    def out_of_range(_request: Request, exc: Exception) -> JSONResponse:
        # An integer beyond 64 bits in a path or query reaches the database driver, which cannot bind it.
        return JSONResponse(
            status_code=422,
            content={"detail": {"reason": "out_of_range", "message": f"a number in the request is too large: {exc}"}},
        )

    def statement_error(request: Request, exc: Exception) -> JSONResponse:
        if isinstance(exc, StatementError) and isinstance(exc.orig, OverflowError):
            return out_of_range(request, exc.orig)
        raise exc

    def openapi() -> dict[str, Any]:
        # A 422 is either FastAPI's own validation error list or one of our domain errors
        # ({"reason", "message"} or {"path", "message"}, or a plain message): the schema says so, as the API answers.
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            schemas = schema.setdefault("components", {}).setdefault("schemas", {})
            schemas["DomainError"] = {
                "type": "object",
                "title": "DomainError",
                "properties": {
                    "reason": {"type": "string", "description": "stable code, e.g. out_of_range"},
                    "message": {"type": "string"},
                    "path": {"type": "string", "description": "where in the request body (rule validation)"},
                },
                "required": ["message"],
            }
            if "HTTPValidationError" in schemas:
                schemas["HTTPValidationError"]["properties"]["detail"] = {
                    "title": "Detail",
                    "anyOf": [
                        {"type": "array", "items": {"$ref": "#/components/schemas/ValidationError"}},
                        {"$ref": "#/components/schemas/DomainError"},
                        {"type": "string"},
                    ],
                }
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.add_exception_handler(OverflowError, out_of_range)
    app.add_exception_handler(StatementError, statement_error)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index() -> HTMLResponse:
        # no-store: a wall screen reloading the page gets the current modules' version stamp
        return HTMLResponse(page_shell(), headers={"Cache-Control": "no-store"})

    @app.get("/resident", response_class=HTMLResponse, include_in_schema=False)
    def resident() -> HTMLResponse:
        # the residents' page: report with a photo and a map point, follow one's requests (Open311)
        return HTMLResponse(page_shell("resident.html"), headers={"Cache-Control": "no-store"})

    app.mount("/web", StaticFiles(directory=Path(hub.web.__file__).parent), name="web")
    return app
