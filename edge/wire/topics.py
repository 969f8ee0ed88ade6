"""Topics: ``{root}/v1/{site}/{device_id}/{channel}``, built and parsed here only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from edge.wire.contract import DEFAULT_ROOT, TOPIC_VERSION, Channel, TopicError, check_id

# ------------------------------------------------------------------------ topics


@dataclass(frozen=True, slots=True)
class Topic:
    """A parsed device topic. ``str(topic)`` gives the MQTT topic name."""

    site: str
    device_id: str
    channel: Channel
    event_id: str | None = None
    root: str = DEFAULT_ROOT

    def __post_init__(self) -> None:
        check_id(self.root, "root")
        check_id(self.site, "site")
        check_id(self.device_id, "device_id")
        if self.channel is Channel.SNAPSHOT:
            check_id(self.event_id, "event_id")
        elif self.event_id is not None:
            raise TopicError("bad_topic", f"only snapshot topics carry an event id, not {self.channel}")

    def __str__(self) -> str:
        tail = f"snapshot/{self.event_id}" if self.channel is Channel.SNAPSHOT else self.channel.value
        return f"{self.root}/{TOPIC_VERSION}/{self.site}/{self.device_id}/{tail}"


def topic(
    site: str,
    device_id: str,
    channel: Channel,
    *,
    event_id: str | None = None,
    root: str = DEFAULT_ROOT,
) -> str:
    """Build a device topic name, validating every level."""
    return str(Topic(site, device_id, channel, event_id, root))


_CHANNELS_BY_TAIL: Final = {c.value: c for c in Channel if c is not Channel.SNAPSHOT}


def parse_topic(name: str, root: str = DEFAULT_ROOT) -> Topic:
    """Parse a topic name into a :class:`Topic`; raise :class:`TopicError` if it is not one."""
    if not isinstance(name, str) or len(name) > 512:
        raise TopicError("bad_topic", "topic must be a string of at most 512 characters")
    parts = name.split("/")
    if len(parts) < 5 or len(parts) > 6:
        raise TopicError("bad_topic", f"{name!r} is not {root}/{TOPIC_VERSION}/<site>/<device>/<channel>")
    if parts[0] != root:
        raise TopicError("bad_topic", f"{name!r} does not start with root {root!r}")
    if parts[1] != TOPIC_VERSION:
        raise TopicError("unknown_version", f"topic version {parts[1]!r} is not {TOPIC_VERSION}")
    site, device_id = parts[2], parts[3]
    tail = "/".join(parts[4:])
    if len(parts) == 6 and parts[4] == "snapshot":
        return Topic(site, device_id, Channel.SNAPSHOT, parts[5], root)
    channel = _CHANNELS_BY_TAIL.get(tail)
    if channel is None:
        raise TopicError("bad_channel", f"unknown channel {tail!r} in {name!r}")
    return Topic(site, device_id, channel, None, root)


def subscription(
    channel: Channel | None = None,
    *,
    site: str | None = None,
    device_id: str | None = None,
    root: str = DEFAULT_ROOT,
) -> str:
    """An MQTT topic filter: ``None`` for a level means any (``+``); no channel means all (``#``)."""
    site_level = "+" if site is None else check_id(site, "site")
    device_level = "+" if device_id is None else check_id(device_id, "device_id")
    check_id(root, "root")
    if channel is None:
        tail = "#"
    elif channel is Channel.SNAPSHOT:
        tail = "snapshot/+"
    else:
        tail = channel.value
    return f"{root}/{TOPIC_VERSION}/{site_level}/{device_level}/{tail}"


def shared_subscription(group: str, topic_filter: str) -> str:
    """An MQTT shared subscription filter (``$share/{group}/{filter}``) for hub replicas."""
    check_id(group, "share group")
    return f"$share/{group}/{topic_filter}"
