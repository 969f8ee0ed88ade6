"""What case intake and the SLA sweep need from the case service: a small Protocol.

:class:`~hub.cases.service.CaseService` satisfies it and calls :mod:`hub.cases.intake` and
:mod:`hub.cases.sweeper` with itself; they depend on this, not on the service, so the
imports point one way (service -> intake, sweeper -> core).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from sqlalchemy.orm import Session, sessionmaker

from hub.cases.directory import Directory
from hub.cases.models import CaseEventRow, CaseRow
from hub.cases.plans import PlanBook
from hub.cases.sla import SlaPolicy


class CaseCore(Protocol):
    """The case service as intake and the sweep see it."""

    sessions: sessionmaker[Session]
    directory: Directory
    policy: SlaPolicy
    plans: PlanBook

    def now_ms(self) -> int:
        """The service clock in ms."""
        ...

    def row(self, s: Session, case_id: int, *, lock: bool = False) -> CaseRow:
        """The case row (locked for update with ``lock``), or NotFoundError."""
        ...

    def publish(self, event: str, view: Mapping[str, Any], **extra: Any) -> None:
        """Push a case change to live subscribers."""
        ...

    def append_event(
        self,
        s: Session,
        row: CaseRow,
        actor: str,
        action: str,
        from_state: str,
        *,
        note: str = "",
        evidence: Iterable[str] = (),
        data: Mapping[str, Any] | None = None,
        now_ms: int,
    ) -> CaseEventRow:
        """Append one hash-chained audit entry (and its webhook rows) in ``s``."""
        ...

    def transition(
        self,
        case_id: int,
        action: str,
        actor_id: str,
        params: Mapping[str, Any] | None = None,
        *,
        note: str = "",
        evidence: Sequence[str] = (),
        idempotency_key: str | None = None,
        if_match: int | None = None,
        public_note: str = "",
        actor_roles: frozenset[str] | None = None,
    ) -> object:
        """Apply ``action`` by ``actor_id`` (the result is the service's)."""
        ...
