"""REST API of incidents, correlation groups and rules (``/api/v1/incidents``, ``-groups``, ``/rules``).

Access (see :mod:`hub.security.authz`): fleet readers see every incident; grid workers those of their areas;
force members those of their areas or of the categories routed to their force; an incident outside
the caller's scope answers 404. Acknowledge/note/close record the signed-in person as the actor.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from hub.api.deps import running
from hub.context import HubContext
from hub.incidents.queries import IncidentFilter, IncidentQueries
from hub.incidents.rulestore import RuleExistsError, RuleStore
from hub.incidents.service import IncidentNotFoundError, IncidentService
from hub.incidents.sink import IncidentSink
from hub.rules.loader import RuleConfigError, dump_rule, parse_rule
from hub.security import authz
from hub.security.auth import PrincipalDep, require
from hub.security.authz import Principal
from hub.series.base import StoreError
from hub.texts import language as localize
from hub.texts.language import LangDep

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1", tags=["incidents"])

#: Readings context around an incident: this much before it opened and after.
CONTEXT_MS = 30 * 60_000


class AckBody(BaseModel):
    """Who acknowledges."""

    model_config = ConfigDict(extra="forbid")
    by: str | None = Field(default=None, max_length=64, description="who (must be the signed-in person)")


class NoteBody(BaseModel):
    """An operator note."""

    model_config = ConfigDict(extra="forbid")
    author: str | None = Field(default=None, max_length=64, description="who (must be the signed-in person)")
    text: str = Field(min_length=1, max_length=4000, description="note text")


class CloseBody(BaseModel):
    """Who closes, and why."""

    model_config = ConfigDict(extra="forbid")
    by: str | None = Field(default=None, max_length=64, description="who (must be the signed-in person)")
    reason: str = Field(default="resolved", max_length=40, description="why it is closed")


def get_ctx(request: Request) -> HubContext:
    """The hub context."""
    ctx: HubContext = request.app.state.ctx
    return ctx


CtxDep = Annotated[HubContext, Depends(get_ctx)]


def _not_found(exc: IncidentNotFoundError) -> HTTPException:
    return HTTPException(status_code=404, detail=str(exc))


def _visible(ctx: HubContext, principal: Principal, incident_id: int) -> dict[str, Any]:
    """The incident if the principal may see it; 404 otherwise (as for a missing one)."""
    require(principal, authz.may_list_incidents(principal), "read incidents")
    queries: IncidentQueries = running(ctx.services.incident_queries, "incident_queries")
    try:
        incident = queries.incident(incident_id)
    except IncidentNotFoundError as exc:
        raise _not_found(exc) from exc
    if not authz.may_read_incident(principal, incident):
        raise _not_found(IncidentNotFoundError("incident", incident_id))
    return incident


def _actor(principal: Principal, incident: dict[str, Any], named: str | None) -> str:
    """The signed-in person, who must be allowed to act here (and be whom the body names, if it names anyone)."""
    require(principal, authz.may_act_on_incident(principal, incident), "act on this incident")
    if named is not None and named != principal.id:
        detail = {"reason": "actor_mismatch", "message": f"signed in as {principal.id!r}, not {named!r}"}
        raise HTTPException(status_code=422, detail=detail)
    return principal.id


# ------------------------------------------------------------------ incidents


@router.get("/incidents")
def list_incidents(
    *,
    ctx: CtxDep,
    principal: PrincipalDep,
    state: Annotated[str | None, Query(pattern="^(open|closed)$")] = None,
    category: str | None = None,
    severity: str | None = None,
    grid: Annotated[str | None, Query(description="grid code or prefix (community, street, district)")] = None,
    site: str | None = None,
    device: str | None = None,
    rule: str | None = None,
    group: int | None = None,
    since: Annotated[int | None, Query(description="opened at or after (ms)")] = None,
    until: Annotated[int | None, Query(description="opened before (ms)")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
    lang: LangDep,
) -> list[dict[str, Any]]:
    """Incidents the caller may see, newest first, filtered; titles in the caller's language."""
    require(principal, authz.may_list_incidents(principal), "read incidents")
    queries: IncidentQueries = running(ctx.services.incident_queries, "incident_queries")

    def fetch(lim: int, off: int) -> list[dict[str, Any]]:
        return localize.incidents(queries.list_incidents(_filter(lim, off)), lang)

    def _filter(lim: int, off: int) -> IncidentFilter:
        return IncidentFilter(
            state=state,
            category=category,
            severity=severity,
            grid=grid,
            site=site,
            device=device,
            rule=rule,
            group_id=group,
            since_ms=since,
            until_ms=until,
            limit=lim,
            offset=off,
        )

    if authz.reads_hub_wide(principal):
        return fetch(limit, offset)
    return authz.visible_page(fetch, lambda i: authz.may_read_incident(principal, i), limit, offset)


@router.get("/incidents/{incident_id}")
def get_incident(ctx: CtxDep, principal: PrincipalDep, incident_id: int, lang: LangDep) -> dict[str, Any]:
    """One incident with notes, readings context and snapshot links (links only for who may see evidence)."""
    incident = localize.incident_view(_visible(ctx, principal, incident_id), lang)
    incident["readings"] = _readings(ctx, incident)
    incident["snapshots"] = _snapshot_links(incident) if authz.may_see_evidence(principal, incident) else []
    return incident


def _snapshot_links(incident: dict[str, Any]) -> list[dict[str, Any]]:
    """Links to the evidence image of the raising event (served by the snapshots plug-in)."""
    snap = incident["detail"].get("snapshot")
    device = incident.get("device_id")
    if not isinstance(snap, dict) or not device or snap.get("status") == "withheld":
        return []  # withheld: the face filter failed on the device and no image left it
    base = f"/api/v1/snapshots/{device}/{snap['event_id']}"
    return [{"event_id": snap["event_id"], "sha256": snap.get("sha256"), "href": base, "meta": f"{base}/meta"}]


def _readings(ctx: HubContext, incident: dict[str, Any]) -> dict[str, Any]:
    store = ctx.services.store or ctx.services.store
    rules: RuleStore | None = ctx.services.rules
    device = incident.get("device_id")
    if store is None or rules is None or not device:
        return {}
    rule = rules.get(incident["rule_id"])
    metric = getattr(rule, "metric", None)
    if not metric:
        return {}
    end = (incident.get("closed_ms") or ctx.now_ms()) + CONTEXT_MS
    start = incident["opened_ms"] - CONTEXT_MS
    every = max(10, (end - start) // 1000 // 360)
    try:
        rows = store.query(device=device, metric=metric, start_ms=start, end_ms=end, every_s=every)
    except StoreError as exc:
        logger.warning("readings context for incident %s: %s", incident["id"], exc)
        return {"error": str(exc)}
    return {"metric": metric, "every_s": every, "rows": [{"ts_ms": r.ts_ms, "value": r.value} for r in rows]}


@router.post("/incidents/{incident_id}/ack")
def acknowledge(ctx: CtxDep, principal: PrincipalDep, incident_id: int, body: AckBody, lang: LangDep) -> dict[str, Any]:
    """Acknowledge an incident."""
    by = _actor(principal, _visible(ctx, principal, incident_id), body.by)
    service: IncidentService = running(ctx.services.incidents, "incidents")
    try:
        return localize.incident_view(service.acknowledge(incident_id, by), lang)
    except IncidentNotFoundError as exc:
        raise _not_found(exc) from exc


@router.post("/incidents/{incident_id}/close")
def close(ctx: CtxDep, principal: PrincipalDep, incident_id: int, body: CloseBody, lang: LangDep) -> dict[str, Any]:
    """Close an incident by hand."""
    by = _actor(principal, _visible(ctx, principal, incident_id), body.by)
    service: IncidentService = running(ctx.services.incidents, "incidents")
    try:
        return localize.incident_view(service.close(incident_id, by, body.reason), lang)
    except IncidentNotFoundError as exc:
        raise _not_found(exc) from exc


@router.post("/incidents/{incident_id}/notes", status_code=201)
def add_note(ctx: CtxDep, principal: PrincipalDep, incident_id: int, body: NoteBody) -> dict[str, Any]:
    """Add a note (by the signed-in person)."""
    author = _actor(principal, _visible(ctx, principal, incident_id), body.author)
    queries: IncidentQueries = running(ctx.services.incident_queries, "incident_queries")
    try:
        note = queries.add_note(incident_id, author, body.text, ctx.now_ms())
    except IncidentNotFoundError as exc:
        raise _not_found(exc) from exc
    ctx.bus.publish("incident_note", note)
    return note


# --------------------------------------------------------------------- groups


@router.get("/incident-groups")
def list_groups(
    *,
    ctx: CtxDep,
    principal: PrincipalDep,
    state: Annotated[str | None, Query(pattern="^(open|closed)$")] = None,
    category: str | None = None,
    grid: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    lang: LangDep,
) -> list[dict[str, Any]]:
    """Correlation groups the caller may see, newest first."""
    require(principal, authz.may_list_incidents(principal), "read incidents")
    queries: IncidentQueries = running(ctx.services.incident_queries, "incident_queries")
    if authz.reads_hub_wide(principal):
        groups = queries.list_groups(state=state, category=category, grid=grid, limit=limit)
    else:
        groups = queries.list_groups(state=state, category=category, grid=grid, limit=1000)
        groups = [g for g in groups if authz.may_read_incident(principal, g)][:limit]
    return [localize.group_view(g, lang) for g in groups]


@router.get("/incident-groups/{group_id}")
def get_group(ctx: CtxDep, principal: PrincipalDep, group_id: int, lang: LangDep) -> dict[str, Any]:
    """One group with its incidents."""
    require(principal, authz.may_list_incidents(principal), "read incidents")
    queries: IncidentQueries = running(ctx.services.incident_queries, "incident_queries")
    try:
        group = queries.group(group_id)
    except IncidentNotFoundError as exc:
        raise _not_found(exc) from exc
    if not authz.may_read_incident(principal, group):
        raise _not_found(IncidentNotFoundError("group", group_id))
    members = queries.list_incidents(IncidentFilter(group_id=group_id, limit=1000))
    group["incidents"] = localize.incidents((i for i in members if authz.may_read_incident(principal, i)), lang)
    return localize.group_view(group, lang)


# ---------------------------------------------------------------------- rules


def _parse(body: dict[str, Any]) -> Any:
    try:
        return parse_rule(body, "body")
    except RuleConfigError as exc:
        raise HTTPException(status_code=422, detail={"path": exc.path, "message": exc.detail}) from exc


def _reload(ctx: HubContext) -> None:
    sink: IncidentSink | None = ctx.services.incident_sink
    if sink is not None:
        sink.reload_rules(force=True)


@router.get("/rules")
def list_rules(ctx: CtxDep, principal: PrincipalDep) -> list[dict[str, Any]]:
    """Every rule."""
    require(principal, authz.may_read_rules(principal), "read rules")
    rules: RuleStore = running(ctx.services.rules, "rules")
    return [dump_rule(r) for r in rules.all()]


@router.get("/rules/{rule_id}")
def get_rule(ctx: CtxDep, principal: PrincipalDep, rule_id: str) -> dict[str, Any]:
    """One rule."""
    require(principal, authz.may_read_rules(principal), "read rules")
    rules: RuleStore = running(ctx.services.rules, "rules")
    rule = rules.get(rule_id)
    if rule is None:
        raise HTTPException(status_code=404, detail=f"rule {rule_id!r} not found")
    return dump_rule(rule)


@router.post("/rules", status_code=201)
def create_rule(ctx: CtxDep, principal: PrincipalDep, body: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
    """Add a rule (validated; errors name the bad key)."""
    require(principal, authz.may_change_operations(principal), "change rules")
    rules: RuleStore = running(ctx.services.rules, "rules")
    try:
        rule = rules.create(_parse(body), ctx.now_ms())
    except RuleExistsError as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from exc
    _reload(ctx)
    return dump_rule(rule)


@router.put("/rules/{rule_id}")
def replace_rule(
    ctx: CtxDep, principal: PrincipalDep, rule_id: str, body: Annotated[dict[str, Any], Body()]
) -> dict[str, Any]:
    """Replace a rule."""
    require(principal, authz.may_change_operations(principal), "change rules")
    rules: RuleStore = running(ctx.services.rules, "rules")
    rule = _parse({**body, "id": rule_id})
    try:
        rules.replace(rule, ctx.now_ms())
    except RuleExistsError as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from exc
    _reload(ctx)
    return dump_rule(rule)


@router.delete("/rules/{rule_id}", status_code=204)
def delete_rule(ctx: CtxDep, principal: PrincipalDep, rule_id: str) -> Response:
    """Remove a rule."""
    require(principal, authz.may_change_operations(principal), "change rules")
    rules: RuleStore = running(ctx.services.rules, "rules")
    try:
        rules.delete(rule_id)
    except RuleExistsError as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from exc
    _reload(ctx)
    return Response(status_code=204)
