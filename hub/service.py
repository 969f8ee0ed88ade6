"""The hub process: state DB, registry, dead letter, series store and writer, plug-ins, broker, ingest, API.

``Hub(settings).start()`` brings everything up in dependency order and returns
once MQTT ingest and the HTTP server are running; ``stop()`` takes it down in
reverse (ingest first so nothing new arrives, then flush registry, dead letters,
data-loss records and the series writer). ``run()`` does both around a wait for
SIGINT/SIGTERM.
"""

from __future__ import annotations

import gc
import importlib
import logging
import math
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Final

import uvicorn

from hub.api.app import create_app
from hub.broker import ThreadedBroker
from hub.broker.acl import CredentialAuthorizer
from hub.cluster.replica import cluster_replica
from hub.config import HubSettings
from hub.context import PLUGINS, HubContext, need
from hub.db import make_engine, session_factory
from hub.devices.provision import CredentialStore
from hub.devices.registry import STATE_CODES, DeviceRegistry
from hub.ingest.deadletter import DeadLetterStore
from hub.ingest.gaps import GapManager
from hub.ingest.outage import OutageLog
from hub.ingest.pipeline import Ingest
from hub.ingest.ratelimit import DeviceRateLimiter
from hub.ingest.sinks import DeviceRef
from hub.ingest.watermark import resume_with_journal
from hub.metrics import HubCollector, HubMetrics, IngestStats
from hub.schema import init_schema
from hub.security import auth
from hub.series.base import SeriesPoint, SeriesStore
from hub.series.settings import open_store
from hub.series.writer import SeriesWriter

logger = logging.getLogger(__name__)

#: Seconds between health evaluation / gap sweep / dead-letter flush passes.
SWEEP_INTERVAL_S: Final = 0.25
#: Seconds between registry flushes to the state DB.
REGISTRY_FLUSH_S: Final = 1.0
#: Seconds after start before devices can turn stale (retained statuses and the backlog arrive first).
STARTUP_GRACE_S: Final = 10.0


#: Garbage-collector thresholds for a process that runs a hub (see :func:`tune_gc`).
GC_THRESHOLDS: Final = (50_000, 20, 100)


def tune_gc() -> None:
    """Make the cyclic garbage collector fit a hub process; call after start-up in a process's entry point.

    Ingest allocates a handful of container objects per message (decoded dicts, points, series rows),
    so with CPython's default threshold (700) a collection ran every ~100 messages and then scanned the
    series writer's queue too; at 10-point messages the drain gained ~12% with these thresholds
    (``gridsentinel bench ingest --batch 10``, three runs each). :func:`gc.freeze` moves everything
    built during start-up (modules, ORM metadata, the registry) out of the collector's way for good.
    Not done in :meth:`Hub.start`, because tests start many hubs in one process; calling it again after
    another hub started in the same process (the ingest bench's phases) only freezes that one's start-up too.
    """
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


class HubStartError(RuntimeError):
    """A part of the hub could not start; the message says which and why."""


class Hub:
    """One hub process."""

    def __init__(
        self, settings: HubSettings, *, store: SeriesStore | None = None, plugins: Sequence[str] | None = None
    ):
        self.settings = settings
        self._store_override = store
        self.plugins = tuple(PLUGINS if plugins is None else plugins)
        self.stats = IngestStats()
        self.stopping = threading.Event()
        #: The state DB as the sweep's flush sees it: one error when it goes away, one warning when it is back.
        self.state_db = OutageLog(
            logger,
            "state DB",
            "dead letters, device rows and data-loss records wait in memory; ingest and the series store go on",
        )
        self.ctx: HubContext | None = None
        self.broker: Any = None
        self.ingest: Ingest | None = None
        self.writer: Any = None
        self.store: SeriesStore | None = None
        self.registry: DeviceRegistry | None = None
        self.deadletters: DeadLetterStore | None = None
        self.gaps: GapManager | None = None
        self._threads: list[threading.Thread] = []
        self._stopped = False
        self._server: Any = None
        self._http_thread: threading.Thread | None = None
        self.http_port = settings.http_port
        self.mqtt_port = settings.broker_port
        self.mqtt_host = settings.broker_host
        #: (user name, password) of the hub's own MQTT connection, or (None, None)
        self._mqtt_login: tuple[str | None, str | None] = (None, None)
        #: With ``settings.cluster_url``: this replica's hub.cluster.replica.ClusterReplica (ingest from JetStream).
        self.cluster: Any = None

    # ---------------------------------------------------------------- start

    def start(self) -> None:
        """Start every part; raise :class:`HubStartError` when one cannot start."""
        s = self.settings
        admin_env = self._admin_env()
        s.data_dir.mkdir(parents=True, exist_ok=True)
        engine = make_engine(s.resolved_state_url())
        init_schema(engine)
        sessions = session_factory(engine)
        ctx = HubContext(data_dir=s.data_dir, engine=engine, sessions=sessions, root=s.root, demo=s.demo)
        self.ctx = ctx
        registry = DeviceRegistry(
            sessions,
            self.stats,
            stale_factor=s.stale_factor,
            default_interval_s=s.default_interval_s,
            flap_window_s=s.flap_window_s,
            flap_max_changes=s.flap_max_changes,
        )
        # A cluster replica loads the devices of the partitions it owns, as it claims them.
        loaded = registry.load() if s.cluster_url is None else 0
        registry.hold_staleness(ctx.now_ms() + int(STARTUP_GRACE_S * 1000))
        deadletters = DeadLetterStore(sessions, self.stats, cap=s.deadletter_cap)
        gaps = GapManager(
            sessions, self.stats, ctx.bus, registry.lock, grace_s=s.gap_grace_s, timeout_s=s.gap_timeout_s
        )
        self.registry, self.deadletters, self.gaps = registry, deadletters, gaps
        # Ingest below acknowledges durable points only: resume from the journal's safe seqs and gaps.
        watermark, corrected, resumed = (
            resume_with_journal(s.data_dir / f"seq-watermark-{s.client_id}.json", registry, gaps)
            if s.cluster_url is None
            else (None, 0, 0)  # a replica's safe seqs are the state DB's (hub.cluster.replica)
        )
        if corrected:
            logger.info(
                "seq journal: %d devices resume past the state DB's seq (acknowledged before a stop)", corrected
            )
        if resumed:
            logger.info("still waiting for %d seq gap(s) from the last run", resumed)
        self._start_series(deadletters)
        ingest = Ingest(
            registry=registry,
            gaps=gaps,
            deadletters=deadletters,
            stats=self.stats,
            bus=ctx.bus,
            sinks=ctx.sinks,
            submit_points=self.writer.submit,
            root=s.root,
            clock=ctx.clock,
            limiter=DeviceRateLimiter(s.rate_limit_per_s, s.rate_limit_burst) if s.rate_limit_per_s > 0 else None,
            encode_lines=self.writer.takes_lines,
            durable_through=self.writer.durable_through,
            watermark=watermark,
        )
        self.writer.on_durable = ingest.wake_link
        self.ingest = ingest
        ctx.send_command = ingest.send_command
        gaps.send_command = ingest.send_command
        registry.add_listener(self._on_health)
        writer = self.writer
        collector = HubCollector(self.stats, registry.health_counts, lambda: writer.stats, lambda: ingest.connected)
        services = ctx.services
        services.registry, services.deadletters, services.gaps, services.ingest = registry, deadletters, gaps, ingest
        services.store, services.writer = self.store, self.writer
        services.metrics, services.stats = HubMetrics(collector), self.stats
        services.stopping, services.settings, services.state_db = self.stopping, s, self.state_db
        if s.cluster_url is not None:
            # Made before the plug-ins install, joined after: they get the cluster's shared snapshot store.
            self.cluster = cluster_replica(self)
            services.snapshot_blobs = self.cluster.snapshot_blobs
        for name in self.plugins:
            importlib.import_module(name).install(ctx)
        if self.cluster is not None:
            self.cluster.start()
            host, port = "nats", 0
        else:
            host, port = self._start_broker()
        if s.share_group is not None:
            logger.warning(
                "shared subscription group %r: dedup and gap detection assume the broker sends each device's "
                "messages to one replica (EMQX shared_subscription_strategy=hash_clientid); a round-robin broker "
                "such as Mosquitto splits a device's seqs across replicas and every replica will see gaps",
                s.share_group,
            )
        username, password = self._mqtt_login
        if self.cluster is None:
            ingest.start(
                host,
                port,
                s.client_id,
                s.share_group,
                s.keepalive_s,
                username=username,
                password=password,
                tls=s.mqtt_tls(),
                ca_file=None if s.mqtt_ca_file is None else str(s.mqtt_ca_file),
            )
        self._spawn("hub-sweep", self._sweep_loop)
        for name, task in ctx.tasks:
            # A replica runs the singleton jobs only while it holds their lease (hub.cluster.replica).
            fn = task if self.cluster is None else self.cluster.task(name, task)
            self._spawn(name, self._task_runner(name, fn))
        self._start_http()
        self._bootstrap_admin(admin_env)
        logger.info(
            "hub up: mqtt %s:%s, http http://%s:%s, %d devices known, data in %s",
            host,
            port,
            s.http_host,
            self.http_port,
            loaded,
            s.data_dir,
        )

    @staticmethod
    def _admin_env() -> str | None:
        """``GRIDSENTINEL_ADMIN_TOKEN``, checked before anything starts."""
        value = os.environ.get(auth.ADMIN_TOKEN_ENV, "").strip() or None
        if value is not None and not auth.valid_token_shape(value):
            raise HubStartError(f"${auth.ADMIN_TOKEN_ENV}: {auth.TOKEN_SHAPE_HELP}")
        return value

    def _bootstrap_admin(self, admin_env: str | None) -> None:
        """No default passwords: the first start issues the administrator's token and prints it once."""
        assert self.ctx is not None
        token = auth.bootstrap_admin(need(self.ctx.services.tokens, "tokens"), admin_env)
        if token is not None:
            print(auth.admin_banner(token, f"http://{self.settings.http_host}:{self.http_port}/"), flush=True)
            logger.warning("administrator token for %r issued and printed on stdout (once)", auth.BOOTSTRAP_ADMIN_ID)

    def _start_series(self, deadletters: DeadLetterStore) -> None:
        s = self.settings
        series = s.series_settings()
        if self._store_override is not None:
            self.store = self._store_override
        else:
            self.store = open_store(series, s.data_dir)

        def bad_line(line: str, reason: str) -> None:
            deadletters.add(
                "(series)",
                line.encode("utf-8", "replace"),
                reason,
                "series store refused this line",
                int(time.time() * 1000),
                source="series",
            )

        def alert(kind: str, message: str) -> None:
            self.stats.alerts[kind] += 1
            logger.warning("series alert %s: %s", kind, message)
            if self.ctx is not None:
                self.ctx.bus.publish("alert", {"kind": kind, "message": message})

        self.writer = SeriesWriter(
            self.store,
            s.data_dir / "spool",
            batch_points=series.batch_points,
            flush_interval_s=series.flush_interval_s,
            spool_max_bytes=series.spool_max_bytes,
            on_bad_line=bad_line,
            on_alert=alert,
        )
        self.writer.start()

    def _start_broker(self) -> tuple[str, int]:
        s = self.settings
        if s.mqtt_url is not None:
            secret = None if s.mqtt_password is None else s.mqtt_password.get_secret_value()
            self._mqtt_login = (s.mqtt_username, secret)
            return s.mqtt_address()
        hooks: dict[str, Any] = {}
        if s.broker_auth:
            assert self.ctx is not None
            credentials = CredentialStore(self.ctx.sessions)
            # The hub's own connection: a fresh password for its client id on every start, never shown.
            issued = credentials.provision_hub(s.client_id, rotate=True)
            self._mqtt_login = (issued.username, issued.password)
            authorizer = CredentialAuthorizer(credentials.get, s.root)
            hooks = {"authenticate": authorizer.authenticate, "authorize": authorizer.authorize}
            logger.info("embedded broker admits provisioned devices only ('gridsentinel hub devices provision')")
        self.broker = ThreadedBroker(s.broker_host, s.broker_port, **hooks)
        try:
            self.broker.start()
        except Exception as exc:
            raise HubStartError(f"embedded broker on {s.broker_host}:{s.broker_port} did not start: {exc}") from exc
        self.mqtt_host, self.mqtt_port = s.broker_host, int(self.broker.port)
        return self.mqtt_host, self.mqtt_port

    def _start_http(self) -> None:

        assert self.ctx is not None
        s = self.settings
        try:
            sock = socket.socket(socket.AF_INET6 if ":" in s.http_host else socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((s.http_host, s.http_port))
        except OSError as exc:
            raise HubStartError(f"cannot listen on http {s.http_host}:{s.http_port}: {exc}") from exc
        self.http_port = int(sock.getsockname()[1])
        config = uvicorn.Config(
            create_app(self.ctx), log_level="warning", lifespan="off", timeout_graceful_shutdown=2, access_log=False
        )
        self._server = uvicorn.Server(config)
        thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, name="hub-http", daemon=True)
        thread.start()
        self._http_thread = thread
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise HubStartError(f"HTTP server on {s.http_host}:{self.http_port} did not start")
            time.sleep(0.01)

    # -------------------------------------------------------------- running

    def _on_health(self, ref: DeviceRef, old: str, new: str, at_ms: int) -> None:
        assert self.ctx is not None and self.registry is not None and self.ingest is not None
        if self.stopping.is_set():
            return  # never publish a health change caused by our own shutdown
        self.ingest._call_sinks("on_health", ref, old, new, at_ms)
        public = self.registry.get_public(ref.device_id) or {"id": ref.device_id}
        self.ctx.bus.publish("device", {**public, "old_state": old})
        code = STATE_CODES.get(new)
        if code is not None:
            tags = {"site": ref.site, "device": ref.device_id}
            if ref.grid:
                tags["grid"] = ref.grid
            self.writer.submit([SeriesPoint("device_status", tags, {"state_code": code}, at_ms)])

    def _sweep_loop(self) -> None:
        assert self.ctx is not None and self.registry and self.gaps and self.deadletters
        next_flush = 0.0
        while not self.stopping.wait(SWEEP_INTERVAL_S):
            now_ms = self.ctx.now_ms()
            for step in (self.registry.evaluate, self.gaps.sweep):
                try:
                    step(now_ms)
                except Exception:  # loop boundary: keep sweeping
                    logger.exception("hub sweep step %s failed", step.__name__)
            try:
                wrote = self.deadletters.flush()
                due = time.monotonic() >= next_flush
                if due and self.cluster is not None:
                    self.cluster.flush_state()  # (the open-gap table is one replica's: not saved)
                elif due:
                    self.registry.flush()
                    self.gaps.flush()
                    self.gaps.save_open()
                    next_flush = time.monotonic() + REGISTRY_FLUSH_S
                if wrote or due:
                    self.state_db.ok()
            except Exception as exc:  # loop boundary: what failed stays queued; retried next pass
                self.state_db.failed(exc)

    def _task_runner(self, name: str, fn: Any) -> Any:
        def run() -> None:
            try:
                fn(self.stopping)
            except Exception:  # loop boundary of a plug-in task
                logger.exception("hub task %s crashed", name)

        return run

    def _spawn(self, name: str, fn: Any) -> None:
        thread = threading.Thread(target=fn, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    # ----------------------------------------------------------------- stop

    def stop(self) -> None:
        """Stop everything in reverse order, flushing state and series on the way (idempotent)."""
        if self._stopped:
            return
        self._stopped = True
        self.stopping.set()
        if self.ctx is not None:
            self.ctx.bus.publish("shutdown", {})  # wakes live-stream clients so the HTTP server can close
        if self._server is not None:
            self._server.should_exit = True
            if self._http_thread is not None:
                self._http_thread.join(5)
        if self.cluster is not None:
            self.cluster.stop()  # its last batches stored and acknowledged, its leases given back
        if self.ingest is not None:
            self.ingest.stop()
        for thread in self._threads:
            thread.join(5)
        self._threads.clear()
        for name, step in (
            ("registry", self.registry.flush if self.registry else None),
            ("data loss", self.gaps.flush if self.gaps else None),
            ("open gaps", self.gaps.save_open if self.gaps and self.cluster is None else None),
            ("dead letters", self.deadletters.flush if self.deadletters else None),
        ):
            if step is not None:
                try:
                    step()
                except Exception:  # shutdown boundary: keep stopping the rest
                    logger.exception("final %s flush failed", name)
        if self.writer is not None:
            self.writer.stop(flush_timeout=10)
        if self.store is not None:
            self.store.close()
        if self.broker is not None:
            self.broker.stop()
            self.broker = None
        if self.ctx is not None:
            self.ctx.engine.dispose()
        logger.info("hub stopped")

    def alive(self) -> bool:
        """Every thread the hub started is still running (a crashed task or server thread is not)."""
        http = getattr(self, "_http_thread", None)
        return all(t.is_alive() for t in self._threads) and (http is None or http.is_alive())

    def run(self, notify: Callable[[str], bool] | None = None, watchdog_s: float | None = None) -> int:
        """Start, serve until SIGINT/SIGTERM, stop cleanly; the process exit code.

        ``notify`` gets systemd's notify lines: READY=1 once started, WATCHDOG=1 every half
        ``watchdog_s`` while :meth:`alive`, STOPPING=1 on the way out. A hub whose threads died
        stops feeding the watchdog, and systemd restarts it."""
        try:
            self.start()
        except Exception:
            self.stop()
            raise
        tune_gc()
        say = notify or (lambda _line: False)
        say("READY=1")
        ping_s = watchdog_s / 2 if watchdog_s else math.inf
        next_ping = time.monotonic()
        previous = {sig: signal.signal(sig, lambda *_: self.stopping.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            while not self.stopping.wait(min(0.5, ping_s)):
                if time.monotonic() >= next_ping and self.alive():
                    say("WATCHDOG=1")
                    next_ping = time.monotonic() + ping_s
        finally:
            say("STOPPING=1")
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.stop()
        return 0
