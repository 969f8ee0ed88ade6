"""``install(ctx)``: rules and incidents plug into the hub (sink, API, worker, data-loss listener)."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import asdict
from typing import Final

from hub.context import HubContext, Task
from hub.incidents.api import router
from hub.incidents.queries import MAX_LIMIT, IncidentFilter, IncidentQueries
from hub.incidents.rulestore import EngineStateStore, RuleStore
from hub.incidents.service import DEFAULT_GROUP_WINDOW_S, IncidentService
from hub.incidents.sink import IncidentSink
from hub.ingest.deadletter import DeadLetterStore
from hub.rules.engine import RuleEngine
from hub.rules.loader import default_rules
from hub.rules.state import Candidate

logger = logging.getLogger(__name__)

#: Services this plug-in offers on ``ctx.services``.
SERVICE_NAMES: Final = ("incidents", "incident_queries", "incident_sink", "rules")


def build(
    ctx: HubContext, *, instance: str | None = None, group_window_s: float = DEFAULT_GROUP_WINDOW_S
) -> IncidentSink:
    """Create the store, service, engine and sink on ``ctx`` (without registering them)."""
    if instance is None:
        settings = ctx.services.settings
        instance = str(getattr(settings, "client_id", "hub"))
    rule_store = RuleStore(ctx.sessions)
    rule_store.seed(default_rules(), ctx.now_ms())
    service = IncidentService(
        ctx.sessions, bus=ctx.bus, services=ctx.services, clock=ctx.clock, group_window_s=group_window_s
    )
    sink = IncidentSink(
        RuleEngine(),
        service,
        state_store=EngineStateStore(ctx.sessions, instance),
        rule_store=rule_store,
        clock=ctx.clock,
    )
    sink.reload_rules(force=True)
    if sink.load_state():
        logger.info("rule engine resumed from saved state of %s", instance)
    queries = IncidentQueries(ctx.sessions)
    rebuilt = sink.rebuild_open(queries.list_incidents(IncidentFilter(state="open", limit=MAX_LIMIT)))
    if rebuilt:
        logger.info("rule engine rebuilt %d open incident keys from the state DB", rebuilt)
    ctx.services.incidents, ctx.services.incident_queries, ctx.services.incident_sink = service, queries, sink
    ctx.services.rules = rule_store
    deadletters = ctx.services.deadletters
    if deadletters is not None:
        sink.on_set_aside = set_aside_to(deadletters, ctx)
    return sink


def set_aside_to(deadletters: DeadLetterStore, ctx: HubContext) -> Callable[[Candidate, str], None]:
    """Put a candidate the incident store kept refusing in the dead letter (source ``incident``: listed
    and purgeable, not requeueable), with the reason, so it is neither lost silently nor in the way."""

    def put(cand: Candidate, reason: str) -> None:
        payload = json.dumps(asdict(cand), default=repr, sort_keys=True).encode()
        topic = f"incident/{cand.rule_id}/{cand.subject}"
        deadletters.add(
            topic, payload, "incident_failed", reason, ctx.now_ms(), device_id=cand.device_id, source="incident"
        )

    return put


def data_loss_listener(ctx: HubContext, sink: IncidentSink) -> Task:
    """A task that turns ``data_loss`` bus records into incidents."""

    def run(stop: threading.Event) -> None:
        sub = ctx.bus.subscribe(maxlen=10_000)
        try:
            while not stop.is_set():
                for event in sub.get(0.5):
                    if event.kind != "data_loss":
                        continue
                    try:
                        sink.on_data_loss(event.data)
                    except Exception:  # loop boundary: one bad record must not stop the listener
                        logger.exception("data-loss record %s not turned into an incident", event.data)
        finally:
            ctx.bus.unsubscribe(sub)

    return run


def install(ctx: HubContext) -> None:
    """Plug rules and incidents into the hub."""
    sink = build(ctx)
    ctx.add_sink(sink)
    ctx.add_router(router)
    ctx.add_task("incidents", sink.run)
    ctx.add_task("incidents-data-loss", data_loss_listener(ctx, sink))
