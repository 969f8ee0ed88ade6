"""Authentication and ACL hooks for the embedded broker, enforcing the rules of :mod:`hub.devices.provision`.

``CredentialAuthorizer(lookup)`` gives the broker's ``authenticate`` and
``authorize`` hooks. A client must present a user name, its password, and a
client id equal to the user name (so a device can never use another device's
id; the broker already refuses ids with ``+``, ``#``, ``/`` or NUL). The
credential is looked up on every CONNECT, so a revoked device is refused on its
next connect without any reload. Publishes and subscriptions are checked
against the user's :class:`~hub.devices.provision.AccessRules`, cached per user name at
connect time.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from edge.wire import DEFAULT_ROOT
from hub.broker.topics import TopicValidationError, matches, parse_shared
from hub.devices.provision import AccessRules, Credential, verify_password

logger = logging.getLogger(__name__)

CredentialLookup = Callable[[str], "Credential | None"]


def covers(rule: str, topic_filter: str) -> bool:
    """True when every topic ``topic_filter`` matches is also matched by filter ``rule``."""
    r_levels, f_levels = rule.split("/"), topic_filter.split("/")
    for index, r_level in enumerate(r_levels):
        if r_level == "#":
            return True
        if index >= len(f_levels):
            return False
        f_level = f_levels[index]
        if f_level == "#":
            return False  # the filter reaches deeper than a non-# rule allows
        if r_level != "+" and (f_level == "+" or f_level != r_level):
            return False
    return len(r_levels) == len(f_levels)


class CredentialAuthorizer:
    """``authenticate`` / ``authorize`` hooks backed by the MQTT credential store."""

    def __init__(self, lookup: CredentialLookup, root: str = DEFAULT_ROOT) -> None:
        self.lookup = lookup
        self.root = root
        self._rules: dict[str, AccessRules] = {}
        self._lock = threading.Lock()

    def authenticate(self, client_id: str, username: str | None, password: bytes | None) -> bool:
        """Allow a CONNECT with an active credential whose user name equals the client id."""
        if username is None or password is None:
            logger.warning("refused client %r: no user name or password", client_id)
            return False
        if client_id != username:
            logger.warning("refused client %r: client id must equal the user name %r", client_id, username)
            return False
        try:
            secret = password.decode("utf-8")
        except UnicodeDecodeError:
            return False
        cred = self.lookup(username)
        if cred is None or not cred.active or not verify_password(secret, cred.password_hash):
            with self._lock:
                self._rules.pop(username, None)
            logger.warning("refused client %r: unknown, revoked or wrong password", client_id)
            return False
        with self._lock:
            self._rules[username] = cred.rules(self.root)
        return True

    def authorize(self, client_id: str, username: str | None, topic: str, is_publish: bool) -> bool:
        """Allow a publish to a topic, or a subscription with a filter, inside the user's rules."""
        rules = self._rules.get(username or "")
        if rules is None or client_id != username:
            return False
        if is_publish:
            return any(matches(rule, topic) for rule in rules.publish)
        try:
            _group, inner = parse_shared(topic)
        except TopicValidationError:
            return False
        return any(covers(rule, inner) for rule in rules.subscribe)
