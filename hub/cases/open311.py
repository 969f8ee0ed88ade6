"""Open311 GeoReport v2: residents report and follow cases with any Open311 client.

Endpoints, each as ``.json`` or ``.xml``: ``GET /open311/v2/services``, ``GET|POST
/open311/v2/requests`` and ``GET /open311/v2/requests/{id}``. POST takes
form-encoded fields (as the spec says) or a JSON object.

Sign-in is optional, as GeoReport v2 lets a server leave ``api_key`` unused: any
Open311 client may file and follow requests anonymously, and an ``api_key`` naming
the client application is accepted and not used. Anonymous readers see only the
public view (:mod:`hub.cases.open311_view`): resident-filed requests and the
categories the hub lists as public, with public fields, a coarse location and the
notes staff wrote for residents. Anonymous filing is rate-limited per client address.
A resident who passes their GridSentinel token (``gst_...``) as ``api_key`` or as
``Authorization: Bearer`` files the request as themselves (it appears among their
own cases in ``/api/v1/cases``) and reads their own requests in full; an unknown or
revoked token is refused with 403.

A request may carry a photo: ``media``, base64 (or a ``data:image/...;base64,`` URL),
in the JSON or form body. It passes the camera box's face filter before it is stored
(:mod:`hub.cases.media`; fail-closed: a hub that cannot filter refuses the request
with 503 and stores nothing); ``media_url`` then points at
``/open311/v2/requests/{id}/media.jpg``, which only the filer and staff who may see
the case can read.

lat/long are located to a unit grid by polygon; ``expected_datetime`` is
projected from the SLA limits, each stage on the calendar its rule names.
Errors are the spec's ``[{"code": ..., "description": ...}]`` lists.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from typing import Annotated, Any, Final, Literal
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from edge.vocabulary import CATEGORIES, Category
from hub.cases.api import get_cases
from hub.cases.errors import CaseServiceError
from hub.cases.media import PhotoRefusedError, PhotoStore, decode_upload
from hub.cases.models import CaseEventRow, CaseRow
from hub.cases.open311_view import (
    RESIDENT_SOURCE,
    XML_SHAPES,
    PublicPolicy,
    public_location,
    shape,
    status_notes,
    to_xml,
)
from hub.cases.records import projected_done_ms, scope_of
from hub.cases.service import PUBLIC_NOTE, CaseService
from hub.context import Services
from hub.security import authz
from hub.security.auth import TOKEN_PREFIX, bearer_token, get_tokens, principal_for
from hub.security.authz import Principal
from hub.texts.catalogue import CATALOGUE, Lang, content_language
from hub.texts.catalogue import text as tr
from hub.texts.language import LangDep

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/open311/v2", tags=["open311"])
CasesDep = Annotated[CaseService, Depends(get_cases)]
CLOSED_STATES: Final = frozenset({"closed", "evaluated", "cancelled", "merged"})
#: GeoReport v2 document formats (the path suffix).
Format = Literal["json", "xml"]
_BOTH: Final[dict[str, Any]] = {"content": {"application/json": {}, "application/xml": {}}}
#: What the routes answer, in either format (errors are the spec's error lists).
DOCUMENTED: Final[dict[int | str, dict[str, Any]]] = {
    200: {"description": "The document", **_BOTH},
    400: {"description": "Bad request (spec error list)", **_BOTH},
    403: {"description": "Unknown or revoked token given as api_key or Bearer", **_BOTH},
    404: {"description": "No such request, or not one the caller may see", **_BOTH},
}


def _iso(ms: int | None, svc: CaseService) -> str | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, tz=timezone(svc.calendar.utc_offset)).isoformat(timespec="seconds")


def _parse_iso(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def services_of(svc: CaseService, lang: Lang = "en") -> list[dict[str, Any]]:
    """One Open311 service per category residents may report (the vocabulary's), named in en and zh.

    ``service_name`` and ``description`` are in ``lang``; ``service_name_zh`` stays for older clients.
    """
    model = svc.directory.model()
    out = []
    for category, info in CATEGORIES.items():
        if not info.open311:
            continue
        force = model.forces.get(model.routes.get(category, ""))
        out.append(
            {
                "service_code": category.value,
                "service_name": info.zh if lang == "zh" else info.en,
                "service_name_zh": info.zh,
                "description": tr("open311.service.handled_by", lang, force=force.name)
                if force
                else tr("open311.service.handled_by_centre", lang),
                "metadata": False,
                "type": "realtime",
                "keywords": category.value.replace("_", ","),
                "group": force.kind if force else "community",
            }
        )
    return out


def request_view(
    svc: CaseService,
    row: CaseRow,
    public_notes: list[str],
    *,
    full: bool,
    policy: PublicPolicy | None = None,
    lang: Lang = "en",
) -> dict[str, Any]:
    """A case as an Open311 service request: public fields, plus the filer's own for ``full``.

    The state's standard sentence, the service name and the default agency are in ``lang``;
    notes staff wrote for residents are shown as written.
    """
    now = svc.now_ms()
    model = svc.directory.model()
    force = model.forces.get(row.force_id or "")
    area = model.areas.get(row.grid_code or "")
    lat, lon = (row.lat, row.lon) if full else public_location(row, area.polygon if area else ())
    view = {
        "service_request_id": str(row.id),
        "status": "closed" if row.state in CLOSED_STATES else "open",
        "status_notes": status_notes(_state_sentence(row.state, lang), public_notes),
        "service_name": _service_name(row.category, lang),
        "service_code": row.category,
        "description": row.description,
        "agency_responsible": force.name if force else tr("open311.agency.centre", lang),
        "service_notice": "",
        "requested_datetime": _iso(row.created_ms, svc),
        "updated_datetime": _iso(row.updated_ms, svc),
        "expected_datetime": _iso(projected_done_ms(row, svc.policy, now), svc),
        "address": row.address,
        "address_id": row.grid_code or "",
        "zipcode": "",
        "lat": lat,
        "long": lon,
        "media_url": f"{router.prefix}/requests/{row.id}/media.jpg" if row.media_sha256 else "",
    }
    return shape(view, full)


def _state_sentence(state: str, lang: Lang) -> str:
    return tr(f"open311.status.{state}", lang) if f"open311.status.{state}" in CATALOGUE else state


def _service_name(category: str, lang: Lang) -> str:
    if category not in CATEGORIES:
        return category
    info = CATEGORIES[Category(category)]
    return info.zh if lang == "zh" else info.en


def _policy(request: Request) -> PublicPolicy:
    """The hub's Open311 policy (``ctx.services.open311``), built from the settings on first use."""
    services: Services = request.app.state.ctx.services
    if services.open311 is None:
        services.open311 = policy_from(services.settings)
    return services.open311


def policy_from(settings: Any) -> PublicPolicy:
    """The policy the hub settings describe (defaults when there are none)."""
    if settings is None:
        return PublicPolicy()
    return PublicPolicy(
        frozenset(settings.open311_public_categories), settings.open311_posts_per_hour, settings.open311_post_burst
    )


def _photos(request: Request) -> PhotoStore:
    """The hub's resident photo store (``need(ctx.services.resident_photos, "resident_photos")``), made on first use."""
    ctx = request.app.state.ctx
    store = ctx.services.resident_photos
    if not isinstance(store, PhotoStore):
        store = ctx.services.resident_photos = PhotoStore(ctx.data_dir)
    return store


def _render(fmt: str, kind: str, rows: list[dict[str, Any]], status: int = 200, lang: Lang | None = None) -> Response:
    if fmt == "xml":
        root, item = XML_SHAPES[kind]
        response = Response(to_xml(root, item, rows), status_code=status, media_type="application/xml")
    else:
        response = JSONResponse(status_code=status, content=rows)
    if lang is not None:  # texts chosen by Accept-Language or ?lang=: say which, and that caches must key on it
        response.headers["Content-Language"] = content_language(lang)
        response.headers["Vary"] = "Accept-Language"
    return response


def _error(status: int, description: str, fmt: str = "json", headers: dict[str, str] | None = None) -> Response:
    response = _render(fmt, "errors", [{"code": status, "description": description}], status)
    response.headers.update(headers or {})
    return response


def _caller(request: Request, api_key: str) -> Principal | Response | None:
    """The signed-in resident or staff member (Bearer token or a ``gst_`` api_key), None if anonymous."""
    try:
        key = bearer_token(request.headers.get("authorization"))
    except HTTPException:
        return _error(403, "use 'Authorization: Bearer <token>' or the api_key field")
    if key is None and api_key.startswith(TOKEN_PREFIX):
        key = api_key  # a person's token; any other api_key names the client application and is not used
    if not key:
        return None
    person_id = get_tokens(request).resolve(key)
    principal = None if person_id is None else principal_for(request.app.state.ctx.services, person_id)
    return _error(403, "invalid api_key") if principal is None else principal


def _full(principal: Principal | None, row: CaseRow) -> bool:
    """The filer (and staff who may see the case) read the full request."""
    return principal is not None and authz.may_read_case(principal, scope_of(row))


def _public_notes(s: Session, case_ids: list[int]) -> dict[int, list[str]]:
    """Notes staff wrote for residents, per case, oldest first (internal notes are never read here)."""
    notes: dict[int, list[str]] = {}
    if not case_ids:
        return notes
    stmt = (
        select(CaseEventRow.case_id, CaseEventRow.data)
        .where(CaseEventRow.case_id.in_(case_ids))
        .order_by(CaseEventRow.case_id, CaseEventRow.seq)
    )
    for case_id, data in s.execute(stmt):
        text = (data or {}).get(PUBLIC_NOTE) if isinstance(data, dict) else None
        if isinstance(text, str) and text:
            notes.setdefault(case_id, []).append(text)
    return notes


@router.get("/services.{fmt}", responses={200: DOCUMENTED[200]})
def services(fmt: Format, svc: CasesDep, lang: LangDep) -> Response:
    """The service list (``.json`` or ``.xml``), named in ``Accept-Language`` or ``?lang=`` (zh, en)."""
    return _render(fmt, "services", services_of(svc, lang), lang=lang)


async def _fields(request: Request) -> dict[str, str]:
    raw = await request.body()
    if request.headers.get("content-type", "").startswith("application/json"):
        data = json.loads(raw or b"{}")
        if not isinstance(data, dict):
            raise ValueError("a JSON object is required")
        return {str(k): "" if v is None else str(v) for k, v in data.items()}
    return dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))


@router.post(
    "/requests.{fmt}",
    status_code=201,
    responses={
        201: {"description": "Filed", **_BOTH},
        **{k: v for k, v in DOCUMENTED.items() if k != 200},
        429: {"description": "Too many anonymous requests from this address (Retry-After)", **_BOTH},
    },
)
async def create_request(fmt: Format, request: Request, svc: CasesDep) -> Response:
    """File a service request (form-encoded or JSON); anonymous filing is rate-limited per client address."""
    try:
        fields = await _fields(request)
    except (ValueError, UnicodeDecodeError) as exc:
        return _error(400, f"unreadable request body: {exc}", fmt)
    caller = _caller(request, fields.get("api_key", ""))
    if isinstance(caller, Response):
        return caller if fmt == "json" else _error(caller.status_code, "invalid api_key", fmt)
    policy = _policy(request)
    address = request.client.host if request.client is not None else ""
    if caller is None and not policy.admit_post(address):
        logger.warning("Open311: anonymous request from %s refused (over its rate)", address)
        retry = {"Retry-After": str(policy.retry_after_s())}
        return _error(429, "too many requests from this address; try later or sign in", fmt, retry)
    code = fields.get("service_code", "")
    if not code:
        return _error(400, "service_code is required", fmt)
    if code not in {s["service_code"] for s in services_of(svc)}:
        return _error(404, f"unknown service_code {code!r}", fmt)
    try:
        lat = float(fields["lat"]) if fields.get("lat") else None
        lon = float(fields["long"]) if fields.get("long") else None
    except ValueError:
        return _error(400, "lat and long must be numbers", fmt)
    if lat is None or lon is None:
        return _error(400, "lat and long are required (address-only requests are not supported yet)", fmt)
    if svc.directory.model().locate(lon, lat) is None:
        return _error(400, "the location is outside every grid of this service area", fmt)
    description = fields.get("description", "")[:4000]
    contact = fields.get("email") or fields.get("phone") or fields.get("account_id")
    media_sha256 = None
    if fields.get("media"):
        try:  # faces are blurred before anything is written; a photo the hub cannot filter is not kept
            media_sha256 = _photos(request).put(decode_upload(fields["media"])).sha256
        except PhotoRefusedError as exc:
            logger.warning("Open311: photo refused (%s): %s", exc.reason, exc.message)
            return _error(exc.status, exc.message, fmt)
    try:
        case = svc.create(
            source=RESIDENT_SOURCE,
            category=code,
            title=(description or code)[:120],
            description=description,
            lat=lat,
            lon=lon,
            address=fields.get("address_string", ""),
            reporter_id=caller.id if caller is not None else (f"open311:{contact}"[:64] if contact else None),
            media_sha256=media_sha256,
        )
    except CaseServiceError as exc:
        return _error(400, exc.message, fmt)
    logger.info("Open311 request %s filed in grid %s", case["id"], case["grid"])
    filed = {"service_request_id": str(case["id"]), "service_notice": "", "account_id": None}
    return _render(fmt, "requests", [filed], 201)


@router.get("/requests.{fmt}", responses=DOCUMENTED)
def list_requests(
    fmt: Format,
    request: Request,
    svc: CasesDep,
    *,
    service_request_id: str | None = None,
    service_code: str | None = None,
    status: str | None = None,
    start_date: str | None = None,
    end_date: str | None = None,
    api_key: str = "",
    mine: bool = False,
    lang: LangDep,
) -> Response:
    """Requests, newest first; filters as in the spec (comma-separated ids, codes, statuses).

    Anonymous readers get the public view of the public cases; a signed-in resident also
    gets their own requests, in full. ``mine=true`` (an extension the resident page uses)
    lists only the signed-in caller's own requests.
    """
    caller = _caller(request, api_key)
    if isinstance(caller, Response):
        return caller if fmt == "json" else _error(caller.status_code, "invalid api_key", fmt)
    if mine and caller is None:
        return _error(403, "mine=true needs a signed-in caller (api_key or Bearer token)", fmt)
    policy = _policy(request)
    shown = policy.where() if caller is None else or_(policy.where(), CaseRow.reporter_id == caller.id)
    if mine and caller is not None:
        shown = CaseRow.reporter_id == caller.id
    stmt = select(CaseRow).where(shown).order_by(CaseRow.id.desc()).limit(1000)
    try:
        if service_request_id:
            stmt = stmt.where(CaseRow.id.in_([int(x) for x in service_request_id.split(",") if x.strip()]))
        if service_code:
            stmt = stmt.where(CaseRow.category.in_(service_code.split(",")))
        if start_date:
            stmt = stmt.where(CaseRow.created_ms >= _parse_iso(start_date))
        if end_date:
            stmt = stmt.where(CaseRow.created_ms <= _parse_iso(end_date))
    except ValueError as exc:
        return _error(400, f"bad filter: {exc}", fmt)
    wanted = set(status.split(",")) if status else {"open", "closed"}
    with svc.sessions() as s:
        rows = list(s.scalars(stmt))
        notes = _public_notes(s, [r.id for r in rows])
    out = [request_view(svc, r, notes.get(r.id, []), full=_full(caller, r), lang=lang) for r in rows]
    return _render(fmt, "requests", [r for r in out if r["status"] in wanted], lang=lang)


@router.get("/requests/{request_id}.{fmt}", responses=DOCUMENTED)
def get_request(
    request_id: str, fmt: Format, request: Request, *, svc: CasesDep, lang: LangDep, api_key: str = ""
) -> Response:
    """One request (a one-element list, per the spec); 404 for a case the caller may not see, like a missing one."""
    caller = _caller(request, api_key)
    if isinstance(caller, Response):
        return caller if fmt == "json" else _error(caller.status_code, "invalid api_key", fmt)
    if not request_id.isdigit():
        return _error(404, f"no request {request_id}", fmt)
    with svc.sessions() as s:
        row = s.get(CaseRow, int(request_id))
        if row is None or not (_policy(request).listed(row) or _full(caller, row)):
            return _error(404, f"no request {request_id}", fmt)
        notes = _public_notes(s, [row.id]).get(row.id, [])
    view = request_view(svc, row, notes, full=_full(caller, row), lang=lang)
    return _render(fmt, "requests", [view], lang=lang)


@router.get(
    "/requests/{request_id}/media.jpg",
    responses={200: {"description": "The face-filtered photo", "content": {"image/jpeg": {}}}, 404: DOCUMENTED[404]},
)
def get_media(request_id: str, request: Request, svc: CasesDep, api_key: str = "") -> Response:
    """The photo filed with a request, face-filtered: for the filer and staff who may see the case (404 otherwise)."""
    caller = _caller(request, api_key)
    if isinstance(caller, Response):
        return caller
    with svc.sessions() as s:
        row = s.get(CaseRow, int(request_id)) if request_id.isdigit() else None
        sha = row.media_sha256 if row is not None and _full(caller, row) else None
    photo = _photos(request).get(sha) if sha else None
    if photo is None:
        return _error(404, f"no photo for request {request_id}")
    return Response(photo, media_type="image/jpeg", headers={"Cache-Control": "private, no-store"})
