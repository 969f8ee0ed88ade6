"""Who is subscribed to what: plain subscriptions and ``$share`` groups over a filter trie."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from hub.broker.session import Session
from hub.broker.topics import FilterTrie, parse_shared

#: Topics whose matches are remembered between subscription changes.
MATCH_CACHE_SIZE: Final = 10_000


@dataclass
class SharedGroup:
    """Members of one ``$share/{group}/{filter}``; each message goes to one of them."""

    members: dict[str, int] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    cursor: int = 0

    def pick(self, sessions: dict[str, Session]) -> tuple[str, int]:
        """Next member round-robin, preferring members that are connected; (client id, granted QoS)."""
        count = len(self.order)
        start = self.cursor % count
        chosen = start
        for step in range(count):
            index = (start + step) % count
            session = sessions.get(self.order[index])
            if session is not None and session.online:
                chosen = index
                break
        self.cursor = chosen + 1
        client_id = self.order[chosen]
        return client_id, self.members[client_id]


@dataclass
class FilterSubscribers:
    """Everyone subscribed to one plain filter, directly or through shared groups."""

    clients: dict[str, int] = field(default_factory=dict)
    groups: dict[str, SharedGroup] = field(default_factory=dict)


class SubscriptionRegistry:
    """Subscriptions of every session, indexed for matching a topic name."""

    def __init__(self) -> None:
        self._trie: FilterTrie[FilterSubscribers] = FilterTrie()
        # Devices publish to the same few topics over and over: remember trie matches per topic
        # until the next (un)subscribe.
        self._cache: dict[str, list[FilterSubscribers]] = {}

    def __len__(self) -> int:
        return len(self._trie)

    def add(self, client_id: str, topic_filter: str, qos: int) -> None:
        """Subscribe ``client_id`` to a (validated) filter, plain or ``$share/...``."""
        group, plain = parse_shared(topic_filter)
        self._cache.clear()
        subscribers = self._trie.get(plain)
        if subscribers is None:
            subscribers = FilterSubscribers()
            self._trie.set(plain, subscribers)
        if group is None:
            subscribers.clients[client_id] = qos
            return
        shared = subscribers.groups.setdefault(group, SharedGroup())
        if client_id not in shared.members:
            shared.order.append(client_id)
        shared.members[client_id] = qos

    def remove(self, client_id: str, topic_filter: str) -> None:
        """Drop one subscription (a no-op when absent)."""
        group, plain = parse_shared(topic_filter)
        subscribers = self._trie.get(plain)
        if subscribers is None:
            return
        if group is None:
            subscribers.clients.pop(client_id, None)
        else:
            shared = subscribers.groups.get(group)
            if shared is not None and shared.members.pop(client_id, None) is not None:
                shared.order.remove(client_id)
                if not shared.members:
                    del subscribers.groups[group]
        if not subscribers.clients and not subscribers.groups:
            self._trie.pop(plain)
            self._cache.clear()

    def targets(self, topic: str, sessions: dict[str, Session]) -> list[tuple[str, int]]:
        """(client id, granted QoS) for one message: one entry per client, plus one per shared group."""
        matched = self._cache.get(topic)
        if matched is None:
            if len(self._cache) >= MATCH_CACHE_SIZE:
                self._cache.clear()
            matched = self._cache[topic] = self._trie.match(topic)
        if not matched:
            return []
        if len(matched) == 1 and not matched[0].groups:
            return list(matched[0].clients.items())
        plain: dict[str, int] = {}
        shared: list[tuple[str, int]] = []
        for subscribers in matched:
            for client_id, qos in subscribers.clients.items():
                if qos > plain.get(client_id, -1):
                    plain[client_id] = qos
            for group in subscribers.groups.values():
                shared.append(group.pick(sessions))
        return [*plain.items(), *shared]
