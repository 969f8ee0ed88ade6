"""Store-and-forward outboxes: the :class:`Outbox` seam and its memory and SQLite backends."""

from __future__ import annotations

from typing import TYPE_CHECKING

from edge.outbox.base import Outbox, OutboxError, OutboxItem, OutboxStats
from edge.outbox.memory import MemoryOutbox
from edge.outbox.sqlite import SqliteOutbox, read_stats

if TYPE_CHECKING:
    from edge.config import OutboxConfig

__all__ = [
    "MemoryOutbox",
    "Outbox",
    "OutboxError",
    "OutboxItem",
    "OutboxStats",
    "SqliteOutbox",
    "open_outbox",
    "read_stats",
]


def open_outbox(config: OutboxConfig) -> Outbox:
    """The outbox backend the config names."""
    if config.backend == "memory":
        return MemoryOutbox(config.max_bytes, config.replay_hours, config.replay_max_bytes)
    return SqliteOutbox(config.path, config.max_bytes, config.replay_hours, config.replay_max_bytes)
