"""``gridsentinel hub devices ...``: issue, rotate, revoke and list MQTT credentials; write the broker files
(``devices command`` lives in :mod:`hub.commands.cli`).

Every command that changes a credential rewrites the broker files when
``--broker-dir`` is given, and signals mosquitto to reload them when
``--mosquitto-pid`` or ``--mosquitto-pid-file`` is given too.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from edge.wire import WireError

if TYPE_CHECKING:
    from hub.devices.provision import CredentialStore


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``devices`` subcommands to ``parser``."""
    sub = parser.add_subparsers(dest="devices_command", metavar="DEVICES_COMMAND", required=True)
    provision = sub.add_parser(
        "provision",
        help="issue an MQTT credential for a device and print its password (shown once)",
        description="Issue an MQTT user for a device: user name = device id = MQTT client id. Only a hash is kept.",
    )
    provision.add_argument("device_id", help="device id, e.g. kiosk-07 (also its MQTT user name and client id)")
    provision.add_argument("--site", required=True, help="site (community) id the device publishes under")
    provision.add_argument("--rotate", action="store_true", help="replace an active credential with a new password")
    hub = sub.add_parser(
        "provision-hub",
        help="issue an MQTT credential for a hub replica (full access under the topic root)",
        description="Issue an MQTT user for a hub; its client id must equal the user name.",
    )
    hub.add_argument("username", help="hub user name, e.g. gridsentinel-hub (the hub's client_id)")
    hub.add_argument("--rotate", action="store_true", help="replace an active credential with a new password")
    revoke = sub.add_parser(
        "revoke", help="revoke a device or hub credential (refused on its next connect once the broker reloads)"
    )
    revoke.add_argument("username", help="device id or hub user name")
    listing = sub.add_parser("list", help="list MQTT users (never their passwords)")
    listing.add_argument("--all", action="store_true", help="include revoked credentials")
    files = sub.add_parser(
        "write-broker-files", help="(re)write mosquitto's password_file and acl_file from the state DB"
    )
    for p in (provision, hub, revoke, listing, files):
        p.add_argument("--config", type=Path, help="TOML settings file of the hub (data dir, state DB, topic root)")
        p.add_argument("--data-dir", type=Path, help="the hub's data dir (default ./gridsentinel-data)")
        p.add_argument("--state-url", help="SQLAlchemy URL of the state DB (default SQLite in the data dir)")
    for p in (provision, hub, revoke, files):
        p.add_argument(
            "--broker-dir",
            type=Path,
            required=p is files,
            help="directory for password_file and acl_file (mosquitto.conf points at them)",
        )
        p.add_argument("--mosquitto-pid", type=int, help="send SIGHUP to this mosquitto so it reloads the files")
        p.add_argument("--mosquitto-pid-file", type=Path, help="mosquitto's pid_file (alternative to --mosquitto-pid)")
    for p in (provision, hub, revoke, listing, files):
        p.set_defaults(func=devices_command)
    from hub.commands.cli import configure as configure_command

    configure_command(sub)


@contextmanager
def _store(args: argparse.Namespace) -> Iterator[tuple[CredentialStore, str]]:
    from hub.config import load_settings
    from hub.db import make_engine, session_factory
    from hub.devices.provision import CredentialStore
    from hub.schema import init_schema

    settings = load_settings(args.config, {"data_dir": args.data_dir, "state_url": args.state_url})
    if settings.state_url is None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.resolved_state_url())
    try:
        init_schema(engine)
        yield CredentialStore(session_factory(engine)), settings.root
    finally:
        engine.dispose()


def devices_command(args: argparse.Namespace) -> int:
    """Run one ``devices`` subcommand; exit 0 on success, 1 when refused, 2 on bad input."""
    from hub.config import ConfigError
    from hub.devices.provision import ProvisionError, reload_mosquitto, write_broker_files

    cmd = args.devices_command
    try:
        with _store(args) as (store, root):
            if cmd == "list":
                for c in store.list(include_revoked=args.all):
                    state = "active" if c.active else "revoked"
                    print(f"{c.username}\t{c.role}\t{c.site or '-'}\t{state}")
                return 0
            if cmd == "provision":
                issued = store.provision(args.device_id, args.site, rotate=args.rotate)
                print(f"MQTT credential for device {issued.username} (site {issued.site}); shown once, store it now:")
                print(f"username = {issued.username}\npassword = {issued.password}")
            elif cmd == "provision-hub":
                issued = store.provision_hub(args.username, rotate=args.rotate)
                print(f"MQTT credential for hub {issued.username}; shown once, store it now:")
                print(f"username = {issued.username}\npassword = {issued.password}")
            elif cmd == "revoke":
                store.revoke(args.username)
                print(f"revoked {args.username}")
            if args.broker_dir is not None:
                files = write_broker_files(store, args.broker_dir, root)
                print(f"wrote {files.password_file} and {files.acl_file} ({files.users} users)")
                if args.mosquitto_pid is not None or args.mosquitto_pid_file is not None:
                    pid = reload_mosquitto(args.mosquitto_pid, args.mosquitto_pid_file)
                    print(f"mosquitto (pid {pid}) told to reload")
            elif cmd != "write-broker-files":
                print("broker files not rewritten (no --broker-dir): run 'devices write-broker-files' and reload")
            return 0
    except ProvisionError as exc:
        print(f"gridsentinel hub devices {cmd}: {exc}", file=sys.stderr)
        return 1
    except (ConfigError, WireError, OSError) as exc:
        print(f"gridsentinel hub devices {cmd}: {exc}", file=sys.stderr)
        return 2
