"""Typed msgspec schemas for the wire contract's telemetry fast path (:mod:`edge.wire` uses them when
msgspec is installed; without it, or for anything they refuse, the reference path decides).

One pass in C parses the JSON and checks the shapes and types: ``seq``/``ts``/``v`` integers (never
bools or floats), metric values int, float or bool, ``hist`` a bool, each point an object with
``metrics`` and an optional ``ts``. What msgspec cannot say -- ranges, metric names, duplicate or
unknown keys -- :func:`edge.wire.decode` checks on the result, and any doubt sends the payload down
the reference path, which names every refusal. Fields a payload leaves out stay ``UNSET``, so the
caller can count the members it was given.
"""

from __future__ import annotations

from typing import Final

import msgspec
from msgspec import UNSET, UnsetType

__all__ = ["TELEMETRY_DECODER", "UNSET", "RawPoint", "RawTelemetry"]


class RawPoint(msgspec.Struct, gc=False):
    """One point of a batch as sent: its metrics and, optionally, its own timestamp."""

    metrics: dict[str, float | int | bool]
    ts: int | UnsetType = UNSET


class RawTelemetry(msgspec.Struct, gc=False):
    """A telemetry payload as sent: one point (``metrics``) or a batch (``points``)."""

    v: int
    seq: int
    ts: int
    metrics: dict[str, float | int | bool] | UnsetType = UNSET
    points: list[RawPoint] | UnsetType = UNSET
    hist: bool | UnsetType = UNSET


#: Built once: a Decoder holds its compiled schema.
TELEMETRY_DECODER: Final = msgspec.json.Decoder(RawTelemetry)
