"""Sign-in with opaque API tokens: issue, resolve, revoke; FastAPI dependencies that read them.

A token is ``gst_`` plus 32 random bytes (URL-safe base64), bound to one person id
of the cases directory and a label. Only its SHA-256 is stored (``api_tokens``),
so a copy of the state DB signs nobody in; the plaintext is shown once, when it
is issued (``gridsentinel hub token issue PERSON_ID``, or the demo banner).

Requests carry it as ``Authorization: Bearer <token>``. EventSource cannot set
headers, so the live stream alone also takes ``?token=``. Who may do what is
decided by the routes (the case workflow checks roles); this module only says
who is asking.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from hub.auth_models import ApiTokenRow

logger = logging.getLogger(__name__)

TOKEN_PREFIX: Final = "gst_"
#: ``last_used_ms`` is written at most this often per token (a read per request, not a write).
TOUCH_EVERY_MS: Final = 60_000
MAX_TOKEN_CHARS: Final = 200
#: Roles that may see evidence (snapshots); the page shows images only to them.
EVIDENCE_ROLES: Final = frozenset({"operator", "supervisor", "admin"})


def token_hash(token: str) -> str:
    """The stored form of a token: SHA-256 hex of its UTF-8 bytes."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """A stored token without its secret."""

    id: int
    person_id: str
    label: str
    created_ms: int
    last_used_ms: int | None
    revoked_ms: int | None

    def public(self) -> dict[str, Any]:
        """JSON view."""
        return {
            "id": self.id,
            "person_id": self.person_id,
            "label": self.label,
            "created_ms": self.created_ms,
            "last_used_ms": self.last_used_ms,
            "revoked_ms": self.revoked_ms,
        }


def _info(row: ApiTokenRow) -> TokenInfo:
    return TokenInfo(row.id, row.person_id, row.label, row.created_ms, row.last_used_ms, row.revoked_ms)


class TokenStore:
    """API tokens in the state DB (table ``api_tokens``)."""

    def __init__(self, sessions: sessionmaker[Session], clock: Callable[[], float] = time.time) -> None:
        self.sessions = sessions
        self.clock = clock

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    def issue_token(self, person_id: str, label: str = "") -> str:
        """A new token for ``person_id``; the plaintext is returned once and never stored."""
        if not person_id or len(person_id) > 64:
            raise ValueError(f"person id {person_id!r} must be 1..64 characters")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self.sessions() as s, s.begin():
            row = ApiTokenRow(
                token_sha256=token_hash(token), person_id=person_id, label=label[:200], created_ms=self._now_ms()
            )
            s.add(row)
            s.flush()
            logger.info("API token %s issued for %s (%s)", row.id, person_id, label or "no label")
        return token

    def resolve(self, token: str) -> str | None:
        """The person id of a valid (known, not revoked) token, else None."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > MAX_TOKEN_CHARS:
            return None
        digest = token_hash(token)
        with self.sessions() as s:
            row = s.execute(select(ApiTokenRow).where(ApiTokenRow.token_sha256 == digest)).scalar_one_or_none()
            if row is None or row.revoked_ms is not None:
                return None
            person_id, token_id, last_used = row.person_id, row.id, row.last_used_ms
        now = self._now_ms()
        if last_used is None or now - last_used >= TOUCH_EVERY_MS:
            with self.sessions() as s, s.begin():
                s.execute(update(ApiTokenRow).where(ApiTokenRow.id == token_id).values(last_used_ms=now))
        return person_id

    def revoke(self, token_id: int) -> bool:
        """Revoke a token by id; False when there is no such (unrevoked) token."""
        with self.sessions() as s, s.begin():
            row = s.get(ApiTokenRow, token_id)
            if row is None or row.revoked_ms is not None:
                return False
            row.revoked_ms = self._now_ms()
        logger.info("API token %s revoked", token_id)
        return True

    def revoke_token(self, token: str) -> bool:
        """Revoke a token by its plaintext (sign-out); False when unknown or already revoked."""
        with self.sessions() as s:
            token_id = s.execute(
                select(ApiTokenRow.id).where(ApiTokenRow.token_sha256 == token_hash(token))
            ).scalar_one_or_none()
        return token_id is not None and self.revoke(token_id)

    def list_tokens(self, person_id: str | None = None) -> list[TokenInfo]:
        """Stored tokens (newest first), optionally of one person."""
        stmt = select(ApiTokenRow).order_by(ApiTokenRow.id.desc())
        if person_id is not None:
            stmt = stmt.where(ApiTokenRow.person_id == person_id)
        with self.sessions() as s:
            return [_info(r) for r in s.scalars(stmt)]


# ---------------------------------------------------------------- FastAPI


def _unauthorized(reason: str, message: str) -> HTTPException:
    return HTTPException(
        status_code=401,
        detail={"reason": reason, "message": message},
        headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
    )


def get_tokens(request: Request) -> TokenStore:
    """The token store on the hub context (installed by the app factory)."""
    store = request.app.state.ctx.services.get("tokens")
    if not isinstance(store, TokenStore):
        raise HTTPException(status_code=503, detail="the token store is not running")
    return store


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header; None when absent; 401 when malformed."""
    if authorization is None or not authorization.strip():
        return None
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise _unauthorized("bad_authorization", "use 'Authorization: Bearer <token>'")
    return value.strip()


def _person_of(request: Request, token: str | None) -> str | None:
    if token is None:
        return None
    person_id = get_tokens(request).resolve(token)
    if person_id is None:
        raise _unauthorized("bad_token", "unknown or revoked token")
    return person_id


def token_person_id(request: Request, authorization: Annotated[str | None, Header()] = None) -> str | None:
    """The person id of the request's Bearer token; None without one; 401 for a bad one."""
    return _person_of(request, bearer_token(authorization))


def stream_person_id(
    request: Request,
    authorization: Annotated[str | None, Header()] = None,
    token: Annotated[str | None, Query(description="API token (EventSource cannot send headers)")] = None,
) -> str | None:
    """Like :func:`token_person_id`, but also reads ``?token=`` (for the SSE stream only)."""
    return _person_of(request, bearer_token(authorization) or token or None)


TokenPersonDep = Annotated[str | None, Depends(token_person_id)]
StreamPersonDep = Annotated[str | None, Depends(stream_person_id)]
TokensDep = Annotated[TokenStore, Depends(get_tokens)]

router = APIRouter(prefix="/api/v1", tags=["auth"])


@router.get("/me", responses={401: {"description": "no or bad token"}})
def who_am_i(request: Request, person_id: TokenPersonDep) -> dict[str, Any]:
    """The signed-in person (from the Bearer token): id, name, roles, force, and whether they may see evidence."""
    if person_id is None:
        raise _unauthorized("no_credentials", "Authorization: Bearer <token> required")
    cases = request.app.state.ctx.services.get("cases")
    person = None if cases is None else cases.directory.model().people.get(person_id)
    if person is None:
        return {"id": person_id, "name": person_id, "roles": [], "force": None, "evidence": False}
    roles = sorted(person.roles)
    return {
        "id": person.id,
        "name": person.name,
        "roles": roles,
        "force": person.force_id,
        "evidence": bool(EVIDENCE_ROLES.intersection(roles)),
    }


def person_name(sessions: sessionmaker[Session], person_id: str) -> str | None:
    """The name of ``person_id`` in the cases directory of the state DB, or None when unknown."""
    from hub.cases.models import PersonRow

    with sessions() as s:
        row = s.get(PersonRow, person_id)
        return None if row is None else row.name
