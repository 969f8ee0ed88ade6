"""Open311 GeoReport v2: residents report and follow cases with any Open311 client.

Endpoints (JSON format): ``GET /open311/v2/services.json``, ``GET|POST
/open311/v2/requests.json`` and ``GET /open311/v2/requests/{id}.json``. POST takes
form-encoded fields (as the spec says) or a JSON object.

Sign-in is optional, as GeoReport v2 lets a server leave ``api_key`` unused: any
Open311 client may file and follow requests anonymously (contact details are
never shown back), and an ``api_key`` naming the client application is accepted
and not used. A resident who passes their GridSentinel token (``gst_...``) as
``api_key`` or as ``Authorization: Bearer`` files the request as themselves, so it
appears among their own cases in ``/api/v1/cases``; an unknown or revoked token is
refused with 403.

lat/long are located to a unit grid by polygon; ``expected_datetime`` is
projected from the SLA limits, each stage on the calendar its rule names.
Errors are the spec's ``[{"code": ..., "description": ...}]`` lists.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from typing import Annotated, Any, Final
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select

from edge.vocabulary import CATEGORIES, Category
from hub.auth import TOKEN_PREFIX, bearer_token, get_tokens, principal_for
from hub.cases.api import get_cases
from hub.cases.errors import CaseServiceError
from hub.cases.models import CaseEventRow, CaseRow
from hub.cases.records import projected_done_ms
from hub.cases.service import CaseService

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/open311/v2", tags=["open311"])
CasesDep = Annotated[CaseService, Depends(get_cases)]
CLOSED_STATES: Final = frozenset({"closed", "evaluated", "cancelled", "merged"})
STATUS_NOTES: Final[dict[str, str]] = {
    "reported": "Received; waiting to be registered.",
    "registered": "Registered by the service centre.",
    "dispatched": "Dispatched to the responsible grid worker and force.",
    "accepted": "Accepted by the handler.",
    "handling": "Being handled.",
    "returned": "Being re-dispatched to the right team.",
    "feedback": "Handled; awaiting verification.",
    "verified": "Verified; about to be closed.",
    "closed": "Closed after verification.",
    "evaluated": "Closed and evaluated.",
    "cancelled": "Cancelled.",
    "merged": "Merged into another request about the same problem.",
}


def _error(status: int, description: str) -> JSONResponse:
    return JSONResponse(status_code=status, content=[{"code": status, "description": description}])


def _iso(ms: int | None, svc: CaseService) -> str | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, tz=timezone(svc.calendar.utc_offset)).isoformat(timespec="seconds")


def _parse_iso(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def services_of(svc: CaseService) -> list[dict[str, Any]]:
    """One Open311 service per category residents may report (the vocabulary's), named in en and zh."""
    model = svc.directory.model()
    out = []
    for category, info in CATEGORIES.items():
        if not info.open311:
            continue
        force = model.forces.get(model.routes.get(category, ""))
        out.append(
            {
                "service_code": category.value,
                "service_name": info.en,
                "service_name_zh": info.zh,
                "description": f"Handled by {force.name}" if force else "Handled by the community service centre",
                "metadata": False,
                "type": "realtime",
                "keywords": category.value.replace("_", ","),
                "group": force.kind if force else "community",
            }
        )
    return out


def request_public(svc: CaseService, row: CaseRow, note: str | None = None) -> dict[str, Any]:
    """A case as an Open311 service request."""
    now = svc.now_ms()
    force = svc.directory.model().forces.get(row.force_id or "")
    return {
        "service_request_id": str(row.id),
        "status": "closed" if row.state in CLOSED_STATES else "open",
        "status_notes": note or STATUS_NOTES.get(row.state, row.state),
        "service_name": CATEGORIES[Category(row.category)].en if row.category in CATEGORIES else row.category,
        "service_code": row.category,
        "description": row.description,
        "agency_responsible": force.name if force else "Community service centre",
        "service_notice": "",
        "requested_datetime": _iso(row.created_ms, svc),
        "updated_datetime": _iso(row.updated_ms, svc),
        "expected_datetime": _iso(projected_done_ms(row, svc.policy, now), svc),
        "address": row.address,
        "address_id": row.grid_code or "",
        "zipcode": "",
        "lat": row.lat,
        "long": row.lon,
        "media_url": "",
    }


@router.get("/services.json")
def services(svc: CasesDep) -> list[dict[str, Any]]:
    """The service list."""
    return services_of(svc)


async def _fields(request: Request) -> dict[str, str]:
    raw = await request.body()
    if request.headers.get("content-type", "").startswith("application/json"):
        data = json.loads(raw or b"{}")
        if not isinstance(data, dict):
            raise ValueError("a JSON object is required")
        return {str(k): "" if v is None else str(v) for k, v in data.items()}
    return dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))


@router.post("/requests.json", status_code=201, response_model=None)
async def create_request(request: Request, svc: CasesDep) -> JSONResponse | list[dict[str, Any]]:
    """File a service request (form-encoded or JSON)."""
    try:
        fields = await _fields(request)
    except (ValueError, UnicodeDecodeError) as exc:
        return _error(400, f"unreadable request body: {exc}")
    code = fields.get("service_code", "")
    if not code:
        return _error(400, "service_code is required")
    if code not in {s["service_code"] for s in services_of(svc)}:
        return _error(404, f"unknown service_code {code!r}")
    try:
        lat = float(fields["lat"]) if fields.get("lat") else None
        lon = float(fields["long"]) if fields.get("long") else None
    except ValueError:
        return _error(400, "lat and long must be numbers")
    if lat is None or lon is None:
        return _error(400, "lat and long are required (address-only requests are not supported yet)")
    if svc.directory.model().locate(lon, lat) is None:
        return _error(400, "the location is outside every grid of this service area")
    description = fields.get("description", "")[:4000]
    contact = fields.get("email") or fields.get("phone") or fields.get("account_id")
    try:
        key = bearer_token(request.headers.get("authorization"))
    except HTTPException:
        return _error(403, "use 'Authorization: Bearer <token>' or the api_key field")
    api_key = fields.get("api_key", "")
    if key is None and api_key.startswith(TOKEN_PREFIX):
        key = api_key  # a person's token; any other api_key names the client application and is not used
    person_id: str | None = None
    if key:
        person_id = get_tokens(request).resolve(key)
        if person_id is None or principal_for(request.app.state.ctx.services, person_id) is None:
            return _error(403, "invalid api_key")
        contact = None
    try:
        case = svc.create(
            source="resident",
            category=code,
            title=(description or code)[:120],
            description=description,
            lat=lat,
            lon=lon,
            address=fields.get("address_string", ""),
            reporter_id=person_id or (f"open311:{contact}"[:64] if contact else None),
        )
    except CaseServiceError as exc:
        return _error(400, exc.message)
    logger.info("Open311 request %s filed in grid %s", case["id"], case["grid"])
    return [{"service_request_id": str(case["id"]), "service_notice": "", "account_id": None}]


@router.get("/requests.json")
def list_requests(
    svc: CasesDep,
    *,
    service_request_id: str | None = None,
    service_code: str | None = None,
    status: str | None = None,
    start_date: str | None = None,
    end_date: str | None = None,
) -> Any:
    """Requests, newest first; filters as in the spec (comma-separated ids, codes, statuses)."""
    stmt = select(CaseRow).order_by(CaseRow.id.desc()).limit(1000)
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
        return _error(400, f"bad filter: {exc}")
    wanted = set(status.split(",")) if status else {"open", "closed"}
    with svc.sessions() as s:
        out = [request_public(svc, r) for r in s.scalars(stmt)]
    return [r for r in out if r["status"] in wanted]


@router.get("/requests/{request_id}.json", response_model=None)
def get_request(request_id: str, svc: CasesDep) -> JSONResponse | list[dict[str, Any]]:
    """One request (as a one-element list, per the spec), with the latest note as status_notes."""
    if not request_id.isdigit():
        return _error(404, f"no request {request_id}")
    with svc.sessions() as s:
        row = s.get(CaseRow, int(request_id))
        if row is None:
            return _error(404, f"no request {request_id}")
        last_note = s.scalars(
            select(CaseEventRow.note)
            .where(CaseEventRow.case_id == row.id, CaseEventRow.note != "")
            .order_by(CaseEventRow.seq.desc())
            .limit(1)
        ).first()
        base = STATUS_NOTES.get(row.state, row.state)
        return [request_public(svc, row, f"{base} {last_note}" if last_note else None)]
