"""REST API of the case workflow: grids, people, forces, cases, transitions, audit, evaluation.

The acting person comes from the ``Authorization: Bearer`` API token (see
:mod:`hub.security.auth`) in ONE dependency, :data:`hub.security.auth.PrincipalDep`; the ``X-Actor``
header (a person id) is honoured only when the hub runs in demo mode. What each
person sees is decided by :mod:`hub.security.authz`: lists are filtered, a case outside the
person's scope answers 404 like a missing one, a visible case they may not act on
403 (the state machine then checks the role per action; the built-in administrator,
who is no directory person, acts as an admin and the audit entry records its roles).
A transition's ``note`` is internal; ``public_note`` is written for residents and is
the only note Open311 shows. Transitions honour
``Idempotency-Key`` (same key + body → same result, other body → 422) and
``If-Match`` (stale version → 412); illegal transitions answer 409 with the reason.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Body, Depends, Header, HTTPException, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from hub.cases.checklist import complete_step
from hub.cases.errors import CaseServiceError
from hub.cases.evaluation import run_evaluation
from hub.cases.loader import ConfigError, load_yaml
from hub.cases.machine import TransitionError
from hub.cases.service import CaseService
from hub.security import authz
from hub.security.auth import PrincipalDep, require
from hub.security.authz import Principal
from hub.texts import language as localize
from hub.texts.language import LangDep

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1", tags=["cases"])
T = TypeVar("T")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def get_cases(request: Request) -> CaseService:
    """The case service on the hub context."""
    service = request.app.state.ctx.services.cases
    if service is None:
        raise HTTPException(status_code=503, detail="the case service is not running")
    svc: CaseService = service
    return svc


CasesDep = Annotated[CaseService, Depends(get_cases)]


def call(fn: Callable[[], T]) -> T:
    """Run a service call, turning typed errors into HTTP errors that carry the reason."""
    try:
        return fn()
    except TransitionError as exc:
        refused: dict[str, Any] = {
            "reason": exc.reason,
            "state": exc.state.value,
            "action": exc.action,
            "message": exc.message,
        }
        if exc.missing:
            refused["missing"] = list(exc.missing)
        raise HTTPException(status_code=409, detail=refused) from exc
    except CaseServiceError as exc:
        detail = {"reason": exc.reason, "message": exc.message}
        headers = {"ETag": f'"{exc.current}"'} if hasattr(exc, "current") else None
        raise HTTPException(status_code=exc.status, detail=detail, headers=headers) from exc


def visible_case(svc: CaseService, principal: Principal, case_id: int) -> dict[str, Any]:
    """The case if the principal may see it; 404 (as for a missing case) otherwise."""
    case = call(lambda: svc.get(case_id))
    if not authz.may_read_case(principal, case):
        raise HTTPException(status_code=404, detail={"reason": "case_not_found", "message": f"no case {case_id}"})
    return case


def parse_if_match(value: str | None) -> int | None:
    """'"3"', 'W/"3"' or '3' → 3; '*' or absent → None."""
    if value is None or value.strip() == "*":
        return None
    text = value.strip().removeprefix("W/").strip('"')
    if not text.isdigit():
        raise HTTPException(status_code=400, detail={"reason": "bad_if_match", "message": f"bad If-Match {value!r}"})
    return int(text)


class CaseCreate(BaseModel):
    """An operator-reported case."""

    model_config = ConfigDict(extra="forbid")
    category: str = Field(min_length=1, max_length=64)
    title: str = Field(min_length=1, max_length=300)
    severity: str = Field(default="normal", max_length=32)
    description: str = Field(default="", max_length=10_000)
    grid: str | None = Field(default=None, description="15-digit grid code; or give lat/lon")
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    address: str = Field(default="", max_length=300)


class TransitionIn(BaseModel):
    """Body of ``POST /cases/{id}/{action}``; fields other than note/evidence are action parameters."""

    model_config = ConfigDict(extra="forbid")
    note: str = Field(default="", max_length=4000, description="Internal note (staff only)")
    public_note: str = Field(
        default="", max_length=1000, description="Note written for residents: Open311 shows it as status_notes"
    )
    evidence: list[str] = Field(default_factory=list, description="SHA-256 hex digests of evidence files")
    assignees: list[str] | None = Field(default=None, description="dispatch: who (default: routing)")
    result: str | None = Field(default=None, description="verify: pass or fail")
    reason: str | None = Field(default=None, description="return/cancel: why")
    into: int | None = Field(default=None, description="merge: the surviving case id")
    satisfaction: int | None = Field(default=None, description="evaluate: 1..5")


def _case_response(response: Response, case: dict[str, Any]) -> dict[str, Any]:
    response.headers["ETag"] = str(case["etag"])
    return case


# ------------------------------------------------------------------ directory
@router.get("/grids")
def list_grids(svc: CasesDep, principal: PrincipalDep) -> list[dict[str, Any]]:
    """The areas (district, street, community, unit grid) in the caller's view: their subtree and its ancestors."""
    require(principal, authz.may_read_areas(principal), "read the grids")
    return [a for a in svc.directory.list_items("grids") if authz.area_in_view(principal, a["code"])]


@router.get("/people")
def list_people(svc: CasesDep, principal: PrincipalDep) -> list[dict[str, Any]]:
    """Every person with roles and responsibilities (operators, supervisors, admins)."""
    require(principal, authz.may_read_people(principal), "read the people directory")
    return svc.directory.list_items("people")


@router.get("/forces")
def list_forces(svc: CasesDep, principal: PrincipalDep) -> list[dict[str, Any]]:
    """Every professional force."""
    require(principal, authz.may_read_areas(principal), "read the forces")
    return svc.directory.list_items("forces")


def _put(svc: CaseService, actor: Principal, kind: str, key: str, data: dict[str, Any]) -> dict[str, Any]:
    require(actor, authz.may_manage_directory(actor), f"change {kind}")
    try:
        return call(lambda: svc.directory.put(kind, key, data))
    except KeyError as exc:
        raise HTTPException(status_code=422, detail={"reason": "missing_field", "message": str(exc)}) from exc


def _delete(svc: CaseService, actor: Principal, kind: str, key: str) -> Response:
    require(actor, authz.may_manage_directory(actor), f"change {kind}")
    call(lambda: svc.directory.delete(kind, key))
    return Response(status_code=204)


BodyDict = Annotated[dict[str, Any], Body()]


@router.put("/grids/{code}")
def put_grid(code: str, data: BodyDict, svc: CasesDep, actor: PrincipalDep) -> dict[str, Any]:
    """Create or replace an area: {name, households, population, polygon} (admin)."""
    return _put(svc, actor, "grids", code, data)


@router.put("/people/{person_id}")
def put_person(person_id: str, data: BodyDict, svc: CasesDep, actor: PrincipalDep) -> dict[str, Any]:
    """Create or replace a person: {name, roles, force, responsibilities} (admin)."""
    return _put(svc, actor, "people", person_id, data)


@router.put("/forces/{force_id}")
def put_force(force_id: str, data: BodyDict, svc: CasesDep, actor: PrincipalDep) -> dict[str, Any]:
    """Create or replace a force: {name, kind} (admin)."""
    return _put(svc, actor, "forces", force_id, data)


@router.delete("/grids/{code}", status_code=204)
def delete_grid(code: str, svc: CasesDep, actor: PrincipalDep) -> Response:
    """Remove an area (admin); refused while referenced."""
    return _delete(svc, actor, "grids", code)


@router.delete("/people/{person_id}", status_code=204)
def delete_person(person_id: str, svc: CasesDep, actor: PrincipalDep) -> Response:
    """Remove a person (admin)."""
    return _delete(svc, actor, "people", person_id)


@router.delete("/forces/{force_id}", status_code=204)
def delete_force(force_id: str, svc: CasesDep, actor: PrincipalDep) -> Response:
    """Remove a force (admin); refused while referenced."""
    return _delete(svc, actor, "forces", force_id)


@router.post("/grids/load")
async def load_grids(request: Request, svc: CasesDep, actor: PrincipalDep) -> dict[str, int]:
    """Replace grids, forces, people and routing from a YAML document (admin)."""
    require(actor, authz.may_manage_directory(actor), "load the directory")
    text = (await request.body()).decode("utf-8")
    try:
        cfg = load_yaml(text)
    except ConfigError as exc:
        detail = {"reason": "bad_config", "path": exc.path, "message": exc.message}
        raise HTTPException(status_code=422, detail=detail) from exc
    return call(lambda: svc.directory.load(cfg))


# ----------------------------------------------------------------------- cases
@router.get("/cases")
def list_cases(
    *,
    svc: CasesDep,
    principal: PrincipalDep,
    state: str | None = None,
    grid: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
    lang: LangDep,
) -> list[dict[str, Any]]:
    """Cases the caller may see, newest first (grid workers: their areas; residents: their own reports...)."""
    require(principal, authz.may_list_cases(principal), "read cases")
    if principal.has(*authz.ALL_SEEING):
        return localize.cases(svc.list_cases(state=state, grid=grid, limit=limit, offset=offset), lang)
    found = authz.visible_page(
        lambda lim, off: svc.list_cases(state=state, grid=grid, limit=lim, offset=off),
        lambda case: authz.may_read_case(principal, case),
        limit,
        offset,
    )
    return localize.cases(found, lang)


@router.post("/cases", status_code=201)
def create_case(
    body: CaseCreate, response: Response, svc: CasesDep, actor: PrincipalDep, lang: LangDep
) -> dict[str, Any]:
    """Report and register a case (operators, supervisors, admins)."""
    require(actor, authz.may_create_case(actor), "report cases")
    fields = body.model_dump()
    grid = fields.pop("grid")
    case = call(lambda: svc.create(source="operator", actor=actor.id, grid_code=grid, register=True, **fields))
    if case["grid"] is None:
        raise HTTPException(status_code=422, detail={"reason": "unknown_location", "message": "no grid for it"})
    return _case_response(response, localize.case_view(case, lang))


@router.get("/cases/{case_id}")
def get_case(case_id: int, response: Response, svc: CasesDep, principal: PrincipalDep, lang: LangDep) -> dict[str, Any]:
    """One case, with its ETag (404 outside the caller's scope); the hub's texts in the caller's language."""
    require(principal, authz.may_list_cases(principal), "read cases")
    return _case_response(response, localize.case_view(visible_case(svc, principal, case_id), lang))


@router.get("/cases/{case_id}/audit")
def get_audit(case_id: int, svc: CasesDep, principal: PrincipalDep, lang: LangDep) -> list[dict[str, Any]]:
    """The case's audit trail (whoever may act on the case); notes the hub wrote in the caller's language."""
    require(principal, authz.may_list_cases(principal), "read cases")
    case = visible_case(svc, principal, case_id)
    require(principal, authz.may_read_case_audit(principal, case), "read this case's trail")
    return localize.events(call(lambda: svc.audit(case_id)), lang)


@router.get("/cases/{case_id}/audit/verify")
def verify_audit(case_id: int, svc: CasesDep, principal: PrincipalDep) -> dict[str, Any]:
    """Re-check the hash chain: ok, or the first bad entry and why (operators, supervisors, admins)."""
    require(principal, authz.may_list_cases(principal), "read cases")
    case = visible_case(svc, principal, case_id)
    require(principal, authz.may_verify_audit(principal, case), "verify audit trails")
    return call(lambda: svc.verify(case_id))


class PlanStepIn(BaseModel):
    """Body of ``POST /cases/{id}/plan/{step}``."""

    model_config = ConfigDict(extra="forbid")
    note: str = Field(default="", max_length=4000, description="Internal note (staff only)")


@router.post("/cases/{case_id}/plan/{step}")
def plan_step_done(
    case_id: int,
    step: str,
    *,
    response: Response,
    svc: CasesDep,
    actor: PrincipalDep,
    body: PlanStepIn | None = None,
    lang: LangDep,
) -> dict[str, Any]:
    """Mark a step of the case's emergency plan done (its role or force, or staff on their behalf); audited."""
    require(actor, authz.may_list_cases(actor), "act on cases")
    case = visible_case(svc, actor, case_id)
    require(actor, authz.may_read_case_audit(actor, case), "work on this case's plan")
    note = (body or PlanStepIn()).note
    done = call(lambda: complete_step(svc, case_id, step, actor.id, note=note, actor_roles=actor.roles))
    return _case_response(response, localize.case_view(done["case"], lang)) | {"event": done["event"]}


@router.post("/cases/{case_id}/{action}")
def transition(  # noqa: PLR0917 - FastAPI passes path, body and headers as parameters
    case_id: int,
    action: str,
    response: Response,
    svc: CasesDep,
    actor: PrincipalDep,
    lang: LangDep,
    body: TransitionIn | None = None,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
    if_match: Annotated[str | None, Header()] = None,
) -> dict[str, Any]:
    """Apply an action (register, dispatch, accept, handle, pause, resume, feedback, verify, close, ...)."""
    require(actor, authz.may_list_cases(actor), "act on cases")
    case = visible_case(svc, actor, case_id)
    require(actor, authz.may_act_on_case(actor, case), f"{action} this case")
    body = body or TransitionIn()
    bad = [e for e in body.evidence if not _SHA256.match(e)]
    if bad:
        raise HTTPException(status_code=422, detail={"reason": "bad_evidence", "message": f"not SHA-256 hex: {bad}"})
    params = body.model_dump(exclude={"note", "public_note", "evidence"}, exclude_none=True)
    result = call(
        lambda: svc.transition(
            case_id,
            action,
            actor.id,
            params,
            note=body.note,
            evidence=body.evidence,
            idempotency_key=idempotency_key,
            if_match=parse_if_match(if_match),
            public_note=body.public_note,
            # the built-in administrator is no directory person: it acts as an admin, audited with its roles
            actor_roles=actor.roles,
        )
    )
    if result.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    response.status_code = result.status
    case, event = localize.case_view(result.body["case"], lang), localize.event_view(result.body["event"], lang)
    return _case_response(response, case) | {"event": event}


@router.get("/evaluation")
def evaluation(
    svc: CasesDep,
    actor: PrincipalDep,
    by: str = "grid",
    period: str | None = None,
    area: Annotated[str | None, Query(pattern=r"^[0-9]{6,15}$", description="grid-code prefix")] = None,
) -> dict[str, Any]:
    """Evaluation per grid, community, street, district, worker, force or 'all' for a period and area.

    Scoped like ``GET /cases``: operators and admins evaluate every case, supervisors the
    cases of their areas (and those they work on); ``scoped`` says whether it was filtered.
    An area outside the caller's subtree answers 404 like an unknown one.
    """
    require(actor, authz.may_evaluate(actor), "read evaluations")
    if area and not authz.may_read_area(actor, area):
        raise HTTPException(status_code=404, detail={"reason": "area_not_found", "message": f"no area {area}"})
    if actor.has(*authz.ALL_SEEING):
        return call(lambda: run_evaluation(svc, by, period, area=area))
    return call(lambda: run_evaluation(svc, by, period, lambda case: authz.may_read_case(actor, case), area))
