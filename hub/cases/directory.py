"""Grids, forces, people and routing stored in the database, and the :class:`GridModel` built from them."""

from __future__ import annotations

import logging
import threading
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from hub.cases.errors import InvalidInputError, NotFoundError
from hub.cases.grid import Area, Force, GridError, GridModel, Person, Responsibility
from hub.cases.loader import WorkflowConfig
from hub.cases.models import ForceRow, GridRow, PersonRow, RouteRow

logger = logging.getLogger(__name__)


def grid_public(row: GridRow) -> dict[str, Any]:
    """JSON view of a grid row."""
    return {
        "code": row.code,
        "name": row.name,
        "households": row.households,
        "population": row.population,
        "polygon": row.polygon,
    }


def person_public(row: PersonRow) -> dict[str, Any]:
    """JSON view of a person row."""
    return {
        "id": row.id,
        "name": row.name,
        "roles": row.roles,
        "force": row.force_id,
        "responsibilities": row.responsibilities,
    }


def force_public(row: ForceRow) -> dict[str, Any]:
    """JSON view of a force row."""
    return {"id": row.id, "name": row.name, "kind": row.kind}


class Directory:
    """Reads and writes the grid model; caches the validated :class:`GridModel` until a change."""

    def __init__(self, sessions: sessionmaker[Session], city_code: str = "000000", city_name: str = "") -> None:
        self.sessions = sessions
        self.city_code = city_code
        self.city_name = city_name
        self._lock = threading.Lock()
        self._model: GridModel | None = None

    def model(self) -> GridModel:
        """The current grid model (rebuilt from the database after each change)."""
        with self._lock:
            if self._model is None:
                with self.sessions() as s:
                    self._model = self._build(s)
            return self._model

    def _build(self, s: Session) -> GridModel:
        return GridModel(
            city_code=self.city_code,
            city_name=self.city_name,
            areas={
                r.code: Area(r.code, r.name, r.households, r.population, tuple((p[0], p[1]) for p in r.polygon))
                for r in s.scalars(select(GridRow))
            },
            forces={r.id: Force(r.id, r.name, r.kind) for r in s.scalars(select(ForceRow))},
            people={
                r.id: Person(
                    r.id,
                    r.name,
                    frozenset(r.roles),
                    r.force_id,
                    tuple(
                        Responsibility(tuple(x["grids"]), tuple(x.get("categories", ["*"]))) for x in r.responsibilities
                    ),
                )
                for r in s.scalars(select(PersonRow))
            },
            routes={r.category: r.force_id for r in s.scalars(select(RouteRow))},
        )

    def _changed(self, s: Session) -> None:
        """Validate the model as it stands in this transaction; raise before commit if broken."""
        try:
            s.flush()
            self._build(s).validate()
        except IntegrityError as exc:
            raise InvalidInputError("still_referenced", f"change refused by the database: {exc.orig}") from exc
        except GridError as exc:
            raise InvalidInputError("invalid_grid_model", str(exc)) from exc
        with self._lock:
            self._model = None

    def load(self, cfg: WorkflowConfig) -> dict[str, int]:
        """Replace grids, forces, people and routing with a config's (one transaction)."""
        self.city_code, self.city_name = cfg.city.code, cfg.city.name
        with self.sessions() as s, s.begin():
            for table in (RouteRow, PersonRow, ForceRow, GridRow):
                s.execute(delete(table))
            s.flush()
            for f in cfg.forces:
                s.add(ForceRow(id=f.id, name=f.name, kind=f.kind))
            s.flush()
            for g in cfg.grids:
                s.add(
                    GridRow(
                        code=g.code,
                        name=g.name,
                        households=g.households,
                        population=g.population,
                        polygon=[list(p) for p in g.polygon],
                    )
                )
            for p in cfg.people:
                s.add(
                    PersonRow(
                        id=p.id,
                        name=p.name,
                        roles=[r.value for r in p.roles],
                        force_id=p.force,
                        responsibilities=[r.model_dump() for r in p.responsibilities],
                    )
                )
            for category, force_id in cfg.routing.items():
                s.add(RouteRow(category=category, force_id=force_id))
            self._changed(s)
        logger.info(
            "grid model loaded: %s grids, %s people, %s forces", len(cfg.grids), len(cfg.people), len(cfg.forces)
        )
        return {"grids": len(cfg.grids), "people": len(cfg.people), "forces": len(cfg.forces)}

    def list_items(self, kind: str) -> list[dict[str, Any]]:
        """All grids, people or forces as JSON."""
        with self.sessions() as s:
            if kind == "grids":
                return [grid_public(r) for r in s.scalars(select(GridRow).order_by(GridRow.code))]
            if kind == "people":
                return [person_public(r) for r in s.scalars(select(PersonRow).order_by(PersonRow.id))]
            return [force_public(r) for r in s.scalars(select(ForceRow).order_by(ForceRow.id))]

    def put(self, kind: str, key: str, data: dict[str, Any]) -> dict[str, Any]:
        """Create or replace one grid, person or force (validated against the whole model)."""
        with self.sessions() as s, s.begin():
            if kind == "grids":
                grid = GridRow(
                    code=key,
                    name=data["name"],
                    households=data.get("households", 0),
                    population=data.get("population", 0),
                    polygon=data.get("polygon", []),
                )
                s.merge(grid)
                self._changed(s)
                return grid_public(grid)
            if kind == "people":
                person = PersonRow(
                    id=key,
                    name=data["name"],
                    roles=data["roles"],
                    force_id=data.get("force"),
                    responsibilities=data.get("responsibilities", []),
                )
                s.merge(person)
                self._changed(s)
                return person_public(person)
            force = ForceRow(id=key, name=data["name"], kind=data["kind"])
            s.merge(force)
            self._changed(s)
            return force_public(force)

    def delete(self, kind: str, key: str) -> None:
        """Remove one grid, person or force; refused when something still refers to it."""
        table: type[GridRow] | type[PersonRow] | type[ForceRow] = ForceRow
        if kind == "grids":
            table = GridRow
        elif kind == "people":
            table = PersonRow
        with self.sessions() as s, s.begin():
            row = s.get(table, key)
            if row is None:
                raise NotFoundError("not_found", f"no {kind} {key!r}")
            s.delete(row)
            self._changed(s)
