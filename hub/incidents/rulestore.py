"""Rules and rule-engine state in the state DB (rules seeded from ``defaults.yaml`` on first start)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from hub.incidents.models import RuleEngineStateRow, RuleRow
from hub.rules.loader import RuleConfigError, dump_rule, parse_rule
from hub.rules.models import Rule

logger = logging.getLogger(__name__)


class RuleExistsError(ValueError):
    """A rule with this id already exists (POST) or does not (PUT/DELETE)."""

    def __init__(self, rule_id: str, exists: bool) -> None:
        super().__init__(f"rule {rule_id!r} {'already exists' if exists else 'does not exist'}")
        self.rule_id = rule_id
        self.exists = exists


class RuleStore:
    """CRUD of rule definitions; each body is validated before it is stored."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def seed(self, rules: Iterable[Rule], now_ms: int) -> int:
        """Store ``rules`` if the table is empty (first start); returns how many were added."""
        try:
            with self._sessions() as s, s.begin():
                if s.scalar(select(func.count()).select_from(RuleRow)):
                    return 0
                rows = [RuleRow(id=r.id, body=dump_rule(r), source="default", updated_ms=now_ms) for r in rules]
                s.add_all(rows)
        except IntegrityError:
            return 0  # another replica seeded at the same moment
        logger.info("seeded %d default rules", len(rows))
        return len(rows)

    def all(self) -> list[Rule]:
        """Every stored rule; a row that no longer validates is logged and skipped."""
        out: list[Rule] = []
        with self._sessions() as s:
            for row in s.scalars(select(RuleRow).order_by(RuleRow.id)):
                try:
                    out.append(parse_rule(row.body, f"rule {row.id}"))
                except RuleConfigError:
                    logger.exception("stored rule %s is invalid; skipped", row.id)
        return out

    def version(self) -> tuple[int, int]:
        """(count, newest update) so replicas notice rule changes made elsewhere."""
        with self._sessions() as s:
            count, newest = s.execute(select(func.count(), func.max(RuleRow.updated_ms))).one()
            return int(count or 0), int(newest or 0)

    def get(self, rule_id: str) -> Rule | None:
        """One rule, or None."""
        with self._sessions() as s:
            row = s.get(RuleRow, rule_id)
            return None if row is None else parse_rule(row.body, f"rule {rule_id}")

    def create(self, rule: Rule, now_ms: int) -> Rule:
        """Add a new rule; :class:`RuleExistsError` if the id is taken."""
        try:
            with self._sessions() as s, s.begin():
                s.add(RuleRow(id=rule.id, body=dump_rule(rule), source="api", updated_ms=now_ms))
        except IntegrityError as exc:
            raise RuleExistsError(rule.id, True) from exc
        return rule

    def replace(self, rule: Rule, now_ms: int) -> Rule:
        """Replace an existing rule."""
        with self._sessions() as s, s.begin():
            row = s.get(RuleRow, rule.id)
            if row is None:
                raise RuleExistsError(rule.id, False)
            row.body, row.source, row.updated_ms = dump_rule(rule), "api", now_ms
        return rule

    def delete(self, rule_id: str) -> None:
        """Remove a rule (its open incidents stay until closed by hand)."""
        with self._sessions() as s, s.begin():
            row = s.get(RuleRow, rule_id)
            if row is None:
                raise RuleExistsError(rule_id, False)
            s.delete(row)


class EngineStateStore:
    """Saves and loads one hub instance's serialised rule-engine state."""

    def __init__(self, sessions: sessionmaker[Session], name: str = "hub") -> None:
        self._sessions = sessions
        self.name = name

    def save(self, state: dict[str, Any], now_ms: int) -> None:
        """Upsert the state."""
        with self._sessions() as s, s.begin():
            row = s.get(RuleEngineStateRow, self.name)
            if row is None:
                s.add(RuleEngineStateRow(name=self.name, body=state, saved_ms=now_ms))
            else:
                row.body, row.saved_ms = state, now_ms

    def load(self) -> dict[str, Any] | None:
        """The last saved state, or None."""
        with self._sessions() as s:
            row = s.get(RuleEngineStateRow, self.name)
            return None if row is None else dict(row.body)
