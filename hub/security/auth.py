"""Sign-in with opaque API tokens: issue, resolve, revoke; FastAPI dependencies that read them.

A token is ``gst_`` plus 32 random bytes (URL-safe base64), bound to one person id
of the cases directory and a label. Only its SHA-256 is stored (``api_tokens``),
so a copy of the state DB signs nobody in; the plaintext is shown once, when it
is issued (``gridsentinel hub token issue PERSON_ID``, or the demo banner).

Requests carry it as ``Authorization: Bearer <token>``. EventSource cannot set
headers, so the live stream alone also takes ``?token=``. This module says who is
asking (a :class:`hub.security.authz.Principal`); what they may see and do is decided by
the pure policies of :mod:`hub.security.authz`, applied by each route.

No default passwords: on the first start the hub issues a token for the built-in
administrator ``hub-admin`` and prints it once (:func:`bootstrap_admin`);
``GRIDSENTINEL_ADMIN_TOKEN`` sets it instead (only its hash is stored). Without a
token every API route answers 401, except in demo mode, where anonymous requests
act as the read-only demo viewer and ``X-Actor`` names a person.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Final, Protocol

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request
from sqlalchemy import Select, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from hub.cases.directory import Directory
from hub.cases.models import PersonRow
from hub.security.authz import ADMIN, DEMO_PRINCIPAL, Principal, principal_of
from hub.security.models import ApiTokenRow

logger = logging.getLogger(__name__)

TOKEN_PREFIX: Final = "gst_"
#: ``last_used_ms`` is written at most this often per token (a read per request, not a write).
TOUCH_EVERY_MS: Final = 60_000
MAX_TOKEN_CHARS: Final = 200
#: The built-in administrator: holds the bootstrap token, is an admin with or without a cases directory.
BOOTSTRAP_ADMIN_ID: Final = "hub-admin"
#: Environment variable that sets the administrator's token (for automation) instead of a printed one.
ADMIN_TOKEN_ENV: Final = "GRIDSENTINEL_ADMIN_TOKEN"
_TOKEN_SHAPE = re.compile(r"^gst_[A-Za-z0-9_-]{32,190}$")
TOKEN_SHAPE_HELP: Final = (
    "a token must be 'gst_' followed by 32 or more URL-safe characters (A-Z a-z 0-9 _ -), "
    "e.g. python -c \"import secrets; print('gst_' + secrets.token_urlsafe(32))\""
)


def token_hash(token: str) -> str:
    """The stored form of a token: SHA-256 hex of its UTF-8 bytes."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def valid_token_shape(token: str) -> bool:
    """True when ``token`` looks like one this hub issues (``gst_`` + 32..190 URL-safe characters)."""
    return bool(_TOKEN_SHAPE.match(token))


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


def _check_person(person_id: str) -> None:
    if not person_id or len(person_id) > 64:
        raise ValueError(f"person id {person_id!r} must be 1..64 characters")


def _active(person_id: str) -> Select[int]:
    """One unrevoked token of ``person_id``, if there is one."""
    return select(ApiTokenRow.id).where(ApiTokenRow.person_id == person_id, ApiTokenRow.revoked_ms.is_(None)).limit(1)


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
        _check_person(person_id)
        with self.sessions() as s, s.begin():
            return self._add_token(s, person_id, label)

    def _add_token(self, s: Session, person_id: str, label: str) -> str:
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
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

    def store_token(self, token: str, person_id: str, label: str = "") -> bool:
        """Register a token chosen elsewhere (``GRIDSENTINEL_ADMIN_TOKEN``); False when it is already stored."""
        if not valid_token_shape(token):
            raise ValueError(TOKEN_SHAPE_HELP)
        digest = token_hash(token)
        known = select(ApiTokenRow.id).where(ApiTokenRow.token_sha256 == digest)
        try:
            with self.sessions() as s, s.begin():
                if s.execute(known).first() is not None:
                    return False
                s.add(
                    ApiTokenRow(token_sha256=digest, person_id=person_id, label=label[:200], created_ms=self._now_ms())
                )
        except IntegrityError:
            # Stored by another process between our check and our insert (replicas starting together).
            with self.sessions() as s:
                if s.execute(known).first() is not None:
                    return False
            raise
        logger.info("API token registered for %s (%s)", person_id, label or "no label")
        return True

    def issue_first_token(self, person_id: str, label: str = "") -> str | None:
        """A new token for ``person_id`` only while they hold no unrevoked one, else None; one issuer at a time
        across processes on PostgreSQL (an advisory lock for the transaction), so replicas starting together
        issue one token, not one each."""
        _check_person(person_id)
        with self.sessions() as s, s.begin():
            if s.get_bind().dialect.name == "postgresql":
                s.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"gs-first-token:{person_id}"})
            if s.execute(_active(person_id)).first() is not None:
                return None
            return self._add_token(s, person_id, label)

    def has_active(self, person_id: str) -> bool:
        """True when ``person_id`` holds at least one token that is not revoked."""
        with self.sessions() as s:
            return s.execute(_active(person_id)).first() is not None

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


def bootstrap_admin(tokens: TokenStore, env_token: str | None) -> str | None:
    """Make sure the built-in administrator can sign in; return a new token to print once, else None.

    With ``env_token`` (``GRIDSENTINEL_ADMIN_TOKEN``) its hash is stored (once) and nothing is
    printed; a malformed one raises ValueError. Without it, a token is issued only while the
    administrator holds no unrevoked token (the first start, or after revoking them all).
    """
    if env_token:
        tokens.store_token(env_token.strip(), BOOTSTRAP_ADMIN_ID, f"from ${ADMIN_TOKEN_ENV}")
        return None
    return tokens.issue_first_token(BOOTSTRAP_ADMIN_ID, "first start (printed once)")


def admin_banner(token: str, url: str) -> str:
    """The once-only message that shows the administrator's token."""
    line = "=" * 78
    return "\n".join(
        [
            line,
            "  GridSentinel: administrator token created (shown ONCE, only its hash is stored)",
            f"  person: {BOOTSTRAP_ADMIN_ID}   token: {token}",
            f"  use:    curl -H 'Authorization: Bearer {token}' {url}api/v1/me",
            f"  issue tokens for people with 'gridsentinel hub token issue PERSON'; set ${ADMIN_TOKEN_ENV}",
            "  to choose this token yourself (automation).",
            line,
        ]
    )


class _HasDirectory(Protocol):
    @property
    def directory(self) -> Directory: ...


class DirectoryPeers(Protocol):
    """Where sign-in finds the directory of people: the case service, when the hub runs one."""

    @property
    def cases(self) -> _HasDirectory | None: ...


def principal_for(services: DirectoryPeers, person_id: str) -> Principal | None:
    """The principal of a directory person (or of the built-in administrator); None for an unknown id."""
    cases = services.cases
    model = None if cases is None else cases.directory.model()
    person = None if model is None else model.people.get(person_id)
    if model is None or person is None:
        if person_id == BOOTSTRAP_ADMIN_ID:
            return Principal(BOOTSTRAP_ADMIN_ID, frozenset({ADMIN}))
        return None
    return principal_of(
        person.id,
        person.roles,
        [(r.grids, r.categories) for r in person.responsibilities],
        person.force_id,
        model.routes,
    )


# ---------------------------------------------------------------- FastAPI


def _unauthorized(reason: str, message: str) -> HTTPException:
    return HTTPException(
        status_code=401,
        detail={"reason": reason, "message": message},
        headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
    )


def get_tokens(request: Request) -> TokenStore:
    """The token store on the hub context (installed by the app factory)."""
    store = request.app.state.ctx.services.tokens
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


def _principal(request: Request, person_id: str | None, x_actor: str | None) -> Principal:
    services = request.app.state.ctx.services
    if person_id is not None:
        principal = principal_for(services, person_id)
        if principal is None:
            raise _unauthorized("unknown_person", f"the token's person {person_id!r} is not in the directory")
        return principal
    if request.app.state.ctx.demo:
        if not x_actor:
            return DEMO_PRINCIPAL
        principal = principal_for(services, x_actor)
        if principal is None:
            raise _unauthorized("unknown_actor", f"unknown person {x_actor!r}")
        return principal
    message = "Authorization: Bearer <token> required" + (" (X-Actor works only in demo mode)" if x_actor else "")
    raise _unauthorized("no_credentials", message)


def current_principal(
    request: Request,
    authorization: Annotated[str | None, Header()] = None,
    x_actor: Annotated[str | None, Header()] = None,
) -> Principal:
    """Who is asking: the Bearer token's person; in demo mode X-Actor's person or the demo viewer; else 401."""
    return _principal(request, _person_of(request, bearer_token(authorization)), x_actor)


def stream_principal(
    request: Request,
    authorization: Annotated[str | None, Header()] = None,
    token: Annotated[str | None, Query(description="API token (EventSource cannot send headers)")] = None,
    x_actor: Annotated[str | None, Header()] = None,
) -> Principal:
    """Like :func:`current_principal`, but also reads ``?token=`` (for the SSE stream only)."""
    return _principal(request, _person_of(request, bearer_token(authorization) or token or None), x_actor)


def refuse(principal: Principal, what: str) -> HTTPException:
    """The error for a principal not allowed ``what``: 401 for the anonymous demo viewer, else 403."""
    if principal.anonymous:
        return _unauthorized("no_credentials", f"sign in to {what} (anonymous demo access is read-only)")
    return HTTPException(
        status_code=403,
        detail={
            "reason": "role_not_allowed",
            "message": f"{principal.id} ({', '.join(sorted(principal.roles))}) may not {what}",
        },
    )


def require(principal: Principal, allowed: bool, what: str) -> None:
    """Raise :func:`refuse` unless ``allowed``."""
    if not allowed:
        raise refuse(principal, what)


TokenPersonDep = Annotated[str | None, Depends(token_person_id)]
StreamPersonDep = Annotated[str | None, Depends(stream_person_id)]
PrincipalDep = Annotated[Principal, Depends(current_principal)]
StreamPrincipalDep = Annotated[Principal, Depends(stream_principal)]
TokensDep = Annotated[TokenStore, Depends(get_tokens)]

router = APIRouter(prefix="/api/v1", tags=["auth"])


@router.get("/me", responses={401: {"description": "no or bad token"}})
def who_am_i(request: Request, principal: PrincipalDep) -> dict[str, Any]:
    """The signed-in person: id, name, roles, areas, force, and whether they may see evidence."""
    if principal.anonymous:
        raise _unauthorized("no_credentials", "Authorization: Bearer <token> required")
    cases = request.app.state.ctx.services.cases
    person = None if cases is None else cases.directory.model().people.get(principal.id)
    name = person.name if person is not None else "Hub administrator"
    return principal.public() | {"name": name}


def person_name(sessions: sessionmaker[Session], person_id: str) -> str | None:
    """The name of ``person_id`` in the cases directory of the state DB, or None when unknown."""
    with sessions() as s:
        row = s.get(PersonRow, person_id)
        return None if row is None else row.name
