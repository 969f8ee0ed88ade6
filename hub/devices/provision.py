"""Device provisioning: per-device MQTT credentials, Mosquitto ``password_file`` / ``acl_file``, revocation.

Each device gets its own MQTT user whose name is its device id; the password is
generated here, shown once, and only its PBKDF2-SHA512 hash is kept, in the
exact form Mosquitto 2 reads (``$7$<iterations>$<salt b64>$<hash b64>``), so the
password file is regenerated from the state DB at any time. The ACL binds each
device to its own topics (:func:`device_rules`): it may publish only
``{root}/v1/<site>/<device>/{status,telemetry,event,gap,snapshot/+,cmd/ack}``
and subscribe only to its own ``cmd``; hub users may read and write every
device topic. The broker must also run with ``use_username_as_clientid true``
so a device cannot connect under another device's client id (and take over its
session). Revoking a device deletes it from both files; after the broker reloads
them (SIGHUP, :func:`reload_mosquitto`) the device is refused on reconnect.

The same rules protect the embedded broker through :mod:`hub.broker.acl`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import secrets
import signal
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from edge.wire import DEFAULT_ROOT, Channel, check_id, subscription, topic
from hub.devices.credentials import MqttCredentialRow

logger = logging.getLogger(__name__)

Role = Literal["device", "hub"]
ROLES: Final = ("device", "hub")

#: PBKDF2 rounds. The passwords are 192-bit random tokens, so stretching adds nothing against
#: guessing; the count only has to be one Mosquitto accepts (it reads any), and stays cheap per CONNECT.
PBKDF2_ITERATIONS: Final = 1000
SALT_BYTES: Final = 12  # what mosquitto_passwd uses
PASSWORD_BYTES: Final = 24
PASSWORD_FILE: Final = "password_file"
ACL_FILE: Final = "acl_file"
#: Channels a device publishes on (snapshots under ``snapshot/<event_id>``).
DEVICE_PUBLISH: Final = (Channel.STATUS, Channel.TELEMETRY, Channel.EVENT, Channel.GAP, Channel.CMD_ACK)


class ProvisionError(ValueError):
    """A provisioning request that cannot be done; ``code`` is ``exists``, ``not_found`` or ``bad_hash``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


# ------------------------------------------------------------------ password hashes


def hash_password(password: str, *, iterations: int = PBKDF2_ITERATIONS, salt: bytes | None = None) -> str:
    """Mosquitto 2 ``$7$`` PBKDF2-SHA512 hash of ``password``."""
    salt = os.urandom(SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_password(password: str, encoded: str) -> bool:
    """True when ``password`` matches a ``$7$`` hash (constant-time compare)."""
    try:
        empty, seven, rounds, salt_b64, hash_b64 = encoded.split("$")
        iterations = int(rounds)
        salt, expected = base64.b64decode(salt_b64, validate=True), base64.b64decode(hash_b64, validate=True)
    except ValueError:
        return False
    if empty or seven != "7" or not 1 <= iterations <= 10_000_000:
        return False
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations)
    return hmac.compare_digest(digest, expected)


def new_password() -> str:
    """A random URL-safe password (192 bits)."""
    return secrets.token_urlsafe(PASSWORD_BYTES)


# ------------------------------------------------------------------ access rules


@dataclass(frozen=True, slots=True)
class AccessRules:
    """What one MQTT user may do: topic filters it may publish to and filters it may subscribe with."""

    publish: tuple[str, ...]
    subscribe: tuple[str, ...]


def device_rules(site: str, device_id: str, root: str = DEFAULT_ROOT) -> AccessRules:
    """A device publishes only on its own topics and subscribes only to its own ``cmd``."""
    own = [topic(site, device_id, channel, root=root) for channel in DEVICE_PUBLISH]
    own.append(subscription(Channel.SNAPSHOT, site=site, device_id=device_id, root=root))
    return AccessRules(tuple(own), (topic(site, device_id, Channel.CMD, root=root),))


def hub_rules(root: str = DEFAULT_ROOT) -> AccessRules:
    """A hub reads and writes every device topic under the root."""
    every = subscription(None, root=root)
    return AccessRules((every,), (every,))


# ------------------------------------------------------------------ the store


@dataclass(frozen=True, slots=True)
class Credential:
    """One MQTT user as stored (never the password)."""

    username: str
    role: Role
    site: str | None
    password_hash: str
    created_ms: int
    revoked_ms: int | None

    @property
    def active(self) -> bool:
        """False once revoked."""
        return self.revoked_ms is None

    def rules(self, root: str = DEFAULT_ROOT) -> AccessRules:
        """This user's access rules."""
        if self.role == "hub":
            return hub_rules(root)
        assert self.site is not None
        return device_rules(self.site, self.username, root)


@dataclass(frozen=True, slots=True)
class Issued:
    """A freshly issued credential: the password is here once and nowhere else."""

    username: str
    role: Role
    site: str | None
    password: str


def _credential(row: MqttCredentialRow) -> Credential:
    role: Role = "hub" if row.role == "hub" else "device"
    return Credential(row.username, role, row.site, row.password_hash, row.created_ms, row.revoked_ms)


class CredentialStore:
    """MQTT credentials in the state DB: provision, rotate, revoke, list."""

    def __init__(self, sessions: sessionmaker[Session], clock: Callable[[], float] = time.time) -> None:
        self.sessions = sessions
        self.clock = clock

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    def provision(self, device_id: str, site: str, *, rotate: bool = False) -> Issued:
        """Issue a device credential; an active one is replaced only with ``rotate``."""
        check_id(device_id, "device_id")
        check_id(site, "site")
        return self._issue(device_id, "device", site, rotate)

    def provision_hub(self, username: str, *, rotate: bool = False) -> Issued:
        """Issue a hub credential (its MQTT client id must equal ``username``)."""
        check_id(username, "hub user")
        return self._issue(username, "hub", None, rotate)

    def _issue(self, username: str, role: Role, site: str | None, rotate: bool) -> Issued:
        password = new_password()
        with self.sessions.begin() as session:
            row = session.get(MqttCredentialRow, username)
            if row is not None and row.revoked_ms is None and not rotate:
                raise ProvisionError(
                    "exists", f"{username!r} already has an active credential (rotate it to issue a new password)"
                )
            if row is not None and row.revoked_ms is None and row.role != role:
                raise ProvisionError("exists", f"{username!r} is already a {row.role} user")
            if row is None:
                row = MqttCredentialRow(username=username)
                session.add(row)
            row.role, row.site, row.password_hash = role, site, hash_password(password)
            row.created_ms, row.revoked_ms = self._now_ms(), None
        logger.info("issued MQTT credential for %s %s (site %s)", role, username, site)
        return Issued(username, role, site, password)

    def revoke(self, username: str) -> Credential:
        """Revoke a credential (kept as a record; the broker files drop it)."""
        with self.sessions.begin() as session:
            row = session.get(MqttCredentialRow, username)
            if row is None or row.revoked_ms is not None:
                raise ProvisionError("not_found", f"no active MQTT credential for {username!r}")
            row.revoked_ms = self._now_ms()
            cred = _credential(row)
        logger.info("revoked MQTT credential of %s %s", cred.role, username)
        return cred

    def get(self, username: str) -> Credential | None:
        """One credential (active or revoked), or None."""
        with self.sessions() as session:
            row = session.get(MqttCredentialRow, username)
            return None if row is None else _credential(row)

    def list(self, *, include_revoked: bool = False) -> list[Credential]:
        """Every credential, by user name."""
        query = select(MqttCredentialRow).order_by(MqttCredentialRow.username)
        if not include_revoked:
            query = query.where(MqttCredentialRow.revoked_ms.is_(None))
        with self.sessions() as session:
            return [_credential(row) for row in session.scalars(query)]

    def authenticate(self, username: str, password: str) -> Credential | None:
        """The active credential for ``username`` when ``password`` is right, else None."""
        cred = self.get(username)
        if cred is None or not cred.active or not verify_password(password, cred.password_hash):
            return None
        return cred


# ------------------------------------------------------------------ broker files


def render_password_file(creds: Iterable[Credential]) -> str:
    """Mosquitto ``password_file`` text: ``user:$7$...`` for every active credential."""
    return "".join(f"{c.username}:{c.password_hash}\n" for c in sorted(creds, key=lambda c: c.username) if c.active)


def render_acl_file(creds: Iterable[Credential], root: str = DEFAULT_ROOT) -> str:
    """Mosquitto ``acl_file`` text: per-user topic lines; anything not listed is denied."""
    lines = [
        "# Generated by 'gridsentinel hub devices write-broker-files'; do not edit (regenerated on every change).",
        "# Each device may publish only its own topics and read only its own cmd; hubs read and write all.",
        "",
    ]
    for cred in sorted(creds, key=lambda c: c.username):
        if not cred.active:
            continue
        rules = cred.rules(root)
        lines.append(f"user {cred.username}")
        if cred.role == "hub":
            lines += [f"topic readwrite {f}" for f in rules.publish]
        else:
            lines += [f"topic write {f}" for f in rules.publish]
            lines += [f"topic read {f}" for f in rules.subscribe]
        lines.append("")
    return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class BrokerFiles:
    """Paths of the generated files and how many users they hold."""

    password_file: Path
    acl_file: Path
    users: int


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def write_broker_files(store: CredentialStore, directory: Path, root: str = DEFAULT_ROOT) -> BrokerFiles:
    """Write ``password_file`` and ``acl_file`` into ``directory`` (atomically, mode 0640)."""
    directory.mkdir(parents=True, exist_ok=True)
    creds = store.list()
    pw, acl = directory / PASSWORD_FILE, directory / ACL_FILE
    _write_atomic(pw, render_password_file(creds))
    _write_atomic(acl, render_acl_file(creds, root))
    logger.info("wrote %s and %s for %d MQTT users", pw, acl, len(creds))
    return BrokerFiles(pw, acl, len(creds))


def mosquitto_auth_conf(files: BrokerFiles) -> str:
    """The mosquitto.conf lines that enforce the generated files."""
    return "\n".join(
        [
            "allow_anonymous false",
            f"password_file {files.password_file}",
            f"acl_file {files.acl_file}",
            "# the client id is replaced by the user name: a device cannot use another device's id",
            "use_username_as_clientid true",
            "",
        ]
    )


def reload_mosquitto(pid: int | None = None, pid_file: Path | None = None) -> int:
    """Send SIGHUP to mosquitto so it rereads its password and ACL files; return the pid signalled."""
    if pid is None:
        if pid_file is None:
            raise ProvisionError("not_found", "give the mosquitto pid or its pid_file")
        try:
            pid = int(pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError) as exc:
            raise ProvisionError("not_found", f"cannot read a pid from {pid_file}: {exc}") from exc
    os.kill(pid, signal.SIGHUP)
    logger.info("sent SIGHUP to mosquitto (pid %s) to reload credentials and ACL", pid)
    return pid
