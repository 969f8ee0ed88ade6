"""``install(ctx)``: the case workflow plugs into the hub (service, API, Open311, SLA sweep, webhooks,
open-case counts for the series store).

Config: ``$GS_CASES_CONFIG`` or ``<data_dir>/cases.yaml`` (see ``example.yaml``);
in demo mode without one, the packaged example city is used. The YAML seeds the
grid model into an empty database; afterwards the API manages it.
"""

from __future__ import annotations

import logging
import os
from importlib import resources
from pathlib import Path
from typing import Final

from sqlalchemy import select

from hub.cases import api, models, open311
from hub.cases.directory import Directory
from hub.cases.loader import WorkflowConfig, load_file, load_yaml, parse_config, plan_book, sla_policy
from hub.cases.models import GridRow
from hub.cases.series import CaseStatsWriter
from hub.cases.service import CaseService, WebhookTarget
from hub.cases.sweeper import DEFAULT_SWEEP_S, sweep_task
from hub.cases.webhooks import WebhookDispatcher
from hub.context import HubContext
from hub.db import Base

logger = logging.getLogger(__name__)
CONFIG_ENV: Final = "GS_CASES_CONFIG"


def example_config() -> WorkflowConfig:
    """The packaged example city (demo and tests)."""
    return load_yaml(resources.files("hub.cases").joinpath("example.yaml").read_text(encoding="utf-8"))


def find_config(ctx: HubContext) -> WorkflowConfig:
    """The configured YAML, the demo example, or an empty city."""
    env = os.environ.get(CONFIG_ENV)
    for candidate in ([Path(env)] if env else []) + [ctx.data_dir / "cases.yaml"]:
        if candidate.is_file():
            logger.info("case workflow config from %s", candidate)
            return load_file(candidate)
    if ctx.demo:
        return example_config()
    logger.warning("no %s and no %s: the case workflow starts with an empty grid model", CONFIG_ENV, "cases.yaml")
    return parse_config({"city": {"code": "000000", "name": "unconfigured"}})


def build(ctx: HubContext, cfg: WorkflowConfig | None = None) -> CaseService:
    """Create tables, seed the grid model if empty, and build the service on ``ctx``."""
    cfg = cfg or find_config(ctx)
    tables = [t for t in Base.metadata.sorted_tables if t.name in models.TABLE_NAMES]
    Base.metadata.create_all(ctx.engine, tables=tables)
    directory = Directory(ctx.sessions, cfg.city.code, cfg.city.name)
    with ctx.sessions() as s:
        empty = s.execute(select(GridRow.code).limit(1)).first() is None
    if empty:
        directory.load(cfg)
    targets = [WebhookTarget(w.name, w.url, w.secret) for w in cfg.webhooks]
    service = CaseService(
        ctx.sessions,
        directory,
        sla_policy(cfg),
        bus=ctx.bus,
        clock=ctx.clock,
        targets=targets,
        services=ctx.services,
        plans=plan_book(cfg),
    )
    ctx.services.cases = service
    return service


def install(ctx: HubContext) -> None:
    """Plug the case workflow into the hub."""
    service = build(ctx)
    ctx.add_router(api.router)
    ctx.add_router(open311.router)
    ctx.services.open311 = open311.policy_from(ctx.services.settings)
    ctx.add_task("cases-sla", sweep_task(service, DEFAULT_SWEEP_S))
    writer = ctx.services.writer
    if writer is not None:
        stats = CaseStatsWriter(service, writer.submit)
        ctx.services.case_stats = stats
        ctx.add_task("cases-series", stats.task())
    if service.targets:
        dispatcher = WebhookDispatcher(ctx.sessions, service.targets, clock=ctx.clock)
        ctx.services.case_webhooks = dispatcher
        ctx.add_task("cases-webhooks", dispatcher.task)
