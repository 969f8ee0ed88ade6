"""``gridsentinel hub run``, ``hub check-config FILE``, ``hub token ...`` and ``hub devices ...``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Final

#: one line of ``gridsentinel --help``
SUMMARY: Final = "run the hub: MQTT ingest, storage, incidents, cases, REST API and operator page"

#: CLI flag dest -> settings field (flags left unset fall through to the file and env).
_FLAG_FIELDS = (
    "mqtt_url",
    "http_host",
    "http_port",
    "data_dir",
    "share_group",
    "client_id",
    "state_url",
    "series_backend",
    "series_url",
    "series_token",
    "series_org",
    "series_bucket",
    "series_db",
    "series_rp",
    "series_username",
    "series_password",
    "broker_port",
    "mqtt_username",
    "mqtt_password_file",
    "mqtt_ca_file",
    "broker_auth",
    "cluster_url",
    "cluster_partitions",
)


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``hub`` subcommands."""
    sub = parser.add_subparsers(dest="hub_command", metavar="HUB_COMMAND", required=True)
    run = sub.add_parser("run", help="run the hub until Ctrl-C", description="Run the hub until Ctrl-C / SIGTERM.")
    run.add_argument("--config", type=Path, help="TOML settings file (flags and GRIDSENTINEL_* env override it)")
    run.add_argument("--mqtt-url", help="external broker mqtt://host:port (default: start the embedded broker)")
    run.add_argument("--broker-port", type=int, help="embedded broker port (default 1883)")
    run.add_argument(
        "--broker-auth",
        action="store_const",
        const=True,
        help="embedded broker: admit only provisioned devices within their own topics ('hub devices provision')",
    )
    run.add_argument("--mqtt-username", help="the hub's user name on an external broker ('hub devices provision-hub')")
    run.add_argument("--mqtt-password-file", type=Path, help="file holding the hub's MQTT password")
    run.add_argument("--mqtt-ca-file", type=Path, help="CA certificate for an mqtts:// broker")
    run.add_argument("--http-host", help="REST API / operator page address (default 127.0.0.1)")
    run.add_argument("--http-port", type=int, help="REST API / operator page port (default 8080)")
    run.add_argument("--data-dir", type=Path, help="state DB, embedded series and spool (default ./gridsentinel-data)")
    run.add_argument("--share-group", help="MQTT shared-subscription group when running several hub replicas")
    run.add_argument("--client-id", help="fixed MQTT client id of this hub (one per replica)")
    run.add_argument(
        "--cluster", dest="cluster_url", help="run as a replica of a NATS district cluster: nats://host:port[,...]"
    )
    run.add_argument("--cluster-partitions", type=int, help="partitions of the cluster's NATS mappings (default 12)")
    run.add_argument("--state-url", help="SQLAlchemy URL of the state DB (default SQLite in the data dir)")
    run.add_argument(
        "--series", dest="series_backend", choices=("embedded", "influxdb-v1", "influxdb-v2"), help="series backend"
    )
    for name, text in (
        ("url", "InfluxDB URL, e.g. http://127.0.0.1:8086"),
        ("token", "InfluxDB v2 token (or GRIDSENTINEL_SERIES_TOKEN)"),
        ("org", "InfluxDB v2 organisation"),
        ("bucket", "InfluxDB v2 bucket"),
        ("db", "InfluxDB v1 database"),
        ("rp", "InfluxDB v1 retention policy"),
        ("username", "InfluxDB v1 user"),
        ("password", "InfluxDB v1 password (or GRIDSENTINEL_SERIES_PASSWORD)"),
    ):
        run.add_argument(f"--series-{name}", dest=f"series_{name}", help=text)
    run.set_defaults(func=run_hub)
    check = sub.add_parser("check-config", help="validate a settings file and print the result")
    check.add_argument("file", type=Path, help="TOML settings file")
    check.set_defaults(func=check_config)
    _configure_token(sub)
    from hub.cluster.cli import configure as configure_cluster

    configure_cluster(
        sub.add_parser("cluster-config", help="write the NATS server configuration of a district cluster's nodes")
    )
    from hub.devices.cli import configure as configure_devices

    configure_devices(
        sub.add_parser(
            "devices",
            help="provision, revoke and list device MQTT credentials; write mosquitto's password_file/acl_file",
            description="Per-device MQTT credentials and the Mosquitto password_file/acl_file generated from them.",
        )
    )


def _configure_token(sub: Any) -> None:
    token = sub.add_parser(
        "token",
        help="issue, list or revoke API tokens (sign-in for the operator page and the API)",
        description="API tokens: each signs in one person of the cases directory; only its hash is stored.",
    )
    tsub = token.add_subparsers(dest="token_command", metavar="TOKEN_COMMAND", required=True)
    issue = tsub.add_parser("issue", help="issue a token for a person and print it (shown once) with a sign-in link")
    issue.add_argument("person_id", help="a person id of the cases directory, e.g. operator-01")
    issue.add_argument("--label", default="", help="what the token is for, e.g. 'wall screen, hall 2'")
    listing = tsub.add_parser("list", help="list tokens (never their secrets)")
    listing.add_argument("--person", help="only this person's tokens")
    revoke = tsub.add_parser("revoke", help="revoke a token by its id (from 'token list')")
    revoke.add_argument("token_id", type=int, help="token id")
    for p in (issue, listing, revoke):
        p.add_argument("--config", type=Path, help="TOML settings file of the hub (for data dir and state DB)")
        p.add_argument("--data-dir", type=Path, help="the hub's data dir (default ./gridsentinel-data)")
        p.add_argument("--state-url", help="SQLAlchemy URL of the state DB (default SQLite in the data dir)")
    issue.set_defaults(func=token_command)
    listing.set_defaults(func=token_command)
    revoke.set_defaults(func=token_command)


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    return {name: getattr(args, name, None) for name in _FLAG_FIELDS}


def run_hub(args: argparse.Namespace) -> int:
    """Run the hub in the foreground."""
    from edge.systemd import sd_notify, watchdog_seconds
    from hub.config import ConfigError, load_settings
    from hub.service import Hub, HubStartError

    try:
        settings = load_settings(args.config, _overrides(args))
        settings.series_settings()
    except (ConfigError, ValueError) as exc:
        print(f"gridsentinel hub: bad settings: {exc}", file=sys.stderr)
        return 2
    try:
        return Hub(settings).run(notify=sd_notify, watchdog_s=watchdog_seconds())
    except HubStartError as exc:
        print(f"gridsentinel hub: cannot start: {exc}", file=sys.stderr)
        return 1


def check_config(args: argparse.Namespace) -> int:
    """Validate a settings file (plus env) and print the effective settings, secrets masked."""
    from hub.config import ConfigError, load_settings

    try:
        settings = load_settings(args.file)
        settings.series_settings()
    except (ConfigError, ValueError) as exc:
        print(f"{args.file}: invalid: {exc}", file=sys.stderr)
        return 2
    for key, value in settings.model_dump().items():
        shown = "***" if value is not None and key in ("series_token", "series_password") else value
        print(f"{key} = {shown}")
    print(f"{args.file}: ok")
    return 0


def token_command(args: argparse.Namespace) -> int:
    """``hub token issue|list|revoke`` against the hub's state DB."""
    from hub.config import ConfigError, load_settings
    from hub.db import make_engine, session_factory
    from hub.schema import init_schema
    from hub.security.auth import TokenStore, person_name

    try:
        settings = load_settings(args.config, {"data_dir": args.data_dir, "state_url": args.state_url})
    except (ConfigError, ValueError) as exc:
        print(f"gridsentinel hub token: bad settings: {exc}", file=sys.stderr)
        return 2
    if settings.state_url is None and not (settings.data_dir / "state.db").is_file():
        print(f"gridsentinel hub token: no state DB in {settings.data_dir} (run the hub once first)", file=sys.stderr)
        return 2
    engine = make_engine(settings.resolved_state_url())
    try:
        init_schema(engine)
        sessions = session_factory(engine)
        tokens = TokenStore(sessions)
        if args.token_command == "issue":
            name = person_name(sessions, args.person_id)
            if name is None:
                print(
                    f"gridsentinel hub token: unknown person {args.person_id!r} (see GET /api/v1/people)",
                    file=sys.stderr,
                )
                return 2
            token = tokens.issue_token(args.person_id, args.label)
            print(f"token for {args.person_id} ({name}); shown once, store it now:\n{token}")
            print(f"sign-in link: http://{settings.http_host}:{settings.http_port}/?token={token}")
            return 0
        if args.token_command == "list":
            for info in tokens.list_tokens(args.person):
                state = "revoked" if info.revoked_ms is not None else "active"
                print(f"{info.id}\t{info.person_id}\t{state}\t{info.label}")
            return 0
        if not tokens.revoke(args.token_id):
            print(f"gridsentinel hub token: no active token {args.token_id}", file=sys.stderr)
            return 1
        print(f"token {args.token_id} revoked")
        return 0
    finally:
        engine.dispose()
