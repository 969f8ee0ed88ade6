"""Topic names, topic filters and the subscription trie (pure, no I/O).

Rules (MQTT 3.1.1 §4.7): ``+`` matches one level, ``#`` matches the rest (and the
parent level itself) and must be last; wildcards never appear in topic names; a
topic starting with ``$`` is not matched by a wildcard in the first level.
``$share/{group}/{filter}`` is a shared subscription (one copy per group).
"""

from __future__ import annotations

from typing import Final, Generic, TypeVar

from hub.mqtt.packets import ProtocolError

V = TypeVar("V")

SHARE_PREFIX: Final = "$share/"


class TopicValidationError(ProtocolError):
    """An invalid topic name or topic filter (the server disconnects the client)."""


def validate_topic_name(topic: str) -> None:
    """Raise TopicValidationError unless ``topic`` is a valid PUBLISH topic name."""
    if not topic:
        raise TopicValidationError("empty_topic")
    if "+" in topic or "#" in topic:
        raise TopicValidationError("wildcard_in_topic", topic)
    if "\x00" in topic:
        raise TopicValidationError("nul_in_topic")


def validate_filter(topic_filter: str) -> None:
    """Raise TopicValidationError unless ``topic_filter`` is a valid SUBSCRIBE filter (shared or not)."""
    if topic_filter.startswith(SHARE_PREFIX):
        parse_shared(topic_filter)
        return
    _validate_plain_filter(topic_filter)


def _validate_plain_filter(topic_filter: str) -> None:
    if not topic_filter:
        raise TopicValidationError("empty_filter")
    if "\x00" in topic_filter:
        raise TopicValidationError("nul_in_filter")
    levels = topic_filter.split("/")
    last = len(levels) - 1
    for index, level in enumerate(levels):
        if level in ("+", "#"):
            if level == "#" and index != last:
                raise TopicValidationError("hash_not_last", topic_filter)
        elif "+" in level or "#" in level:
            raise TopicValidationError("wildcard_inside_level", topic_filter)


def parse_shared(topic_filter: str) -> tuple[str | None, str]:
    """Split ``$share/{group}/{filter}`` into (group, filter); (None, filter) for a plain filter."""
    if not topic_filter.startswith(SHARE_PREFIX):
        return None, topic_filter
    group, sep, inner = topic_filter[len(SHARE_PREFIX) :].partition("/")
    if not group or not sep or any(c in group for c in "+#\x00"):
        raise TopicValidationError("bad_shared_filter", topic_filter)
    _validate_plain_filter(inner)
    return group, inner


def matches(topic_filter: str, topic: str) -> bool:
    """True when plain filter ``topic_filter`` matches topic name ``topic``."""
    if topic.startswith("$") and topic_filter[:1] in ("+", "#"):
        return False
    f_levels = topic_filter.split("/")
    t_levels = topic.split("/")
    for index, f_level in enumerate(f_levels):
        if f_level == "#":
            return True
        if index >= len(t_levels):
            return False
        if f_level != "+" and f_level != t_levels[index]:
            return False
    return len(f_levels) == len(t_levels)


class _Node(Generic[V]):
    __slots__ = ("children", "value")

    def __init__(self) -> None:
        self.children: dict[str, _Node[V]] = {}
        self.value: V | None = None


class FilterTrie(Generic[V]):
    """Maps plain topic filters to values; ``match(topic)`` finds every value whose filter matches."""

    def __init__(self) -> None:
        self._root: _Node[V] = _Node()
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def get(self, topic_filter: str) -> V | None:
        """The value stored for exactly ``topic_filter``, or None."""
        node: _Node[V] | None = self._root
        for level in topic_filter.split("/"):
            node = node.children.get(level) if node is not None else None
        return node.value if node is not None else None

    def set(self, topic_filter: str, value: V) -> None:
        """Store ``value`` for ``topic_filter`` (replacing any previous one)."""
        node = self._root
        for level in topic_filter.split("/"):
            child = node.children.get(level)
            if child is None:
                child = node.children[level] = _Node()
            node = child
        if node.value is None:
            self._size += 1
        node.value = value

    def pop(self, topic_filter: str) -> V | None:
        """Remove and return the value for ``topic_filter``; prune empty branches."""
        path: list[tuple[_Node[V], str]] = []
        node = self._root
        for level in topic_filter.split("/"):
            child = node.children.get(level)
            if child is None:
                return None
            path.append((node, level))
            node = child
        value = node.value
        if value is None:
            return None
        node.value = None
        self._size -= 1
        for parent, level in reversed(path):
            child = parent.children[level]
            if child.children or child.value is not None:
                break
            del parent.children[level]
        return value

    def match(self, topic: str) -> list[V]:
        """Values of every stored filter that matches topic name ``topic`` (each at most once)."""
        out: list[V] = []
        nodes: list[_Node[V]] = [self._root]
        dollar = topic.startswith("$")
        for index, level in enumerate(topic.split("/")):
            following: list[_Node[V]] = []
            for node in nodes:
                children = node.children
                if not children:
                    continue
                if not (dollar and index == 0):
                    rest = children.get("#")
                    if rest is not None and rest.value is not None:
                        out.append(rest.value)
                    one = children.get("+")
                    if one is not None:
                        following.append(one)
                exact = children.get(level)
                if exact is not None:
                    following.append(exact)
            nodes = following
            if not nodes:
                return out
        for node in nodes:
            if node.value is not None:
                out.append(node.value)
            # "a/#" also matches "a" itself.
            rest = node.children.get("#")
            if rest is not None and rest.value is not None:
                out.append(rest.value)
        return out
