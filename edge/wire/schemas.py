"""Typed msgspec schemas for the wire contract's telemetry fast path (:mod:`edge.wire.decoding` uses them when
msgspec is installed; without it, or for anything they refuse, the reference path decides).

One pass in C parses the JSON and checks the shapes and types: ``seq``/``ts``/``v`` integers (never
bools or floats), metric values int, float or bool, ``hist`` a bool, each point an object with
``metrics`` and an optional ``ts``. What msgspec cannot say -- ranges, metric names, duplicate or
unknown keys -- :func:`edge.wire.decode` checks on the result, and any doubt sends the payload down
the reference path, which names every refusal. Fields a payload leaves out stay ``UNSET``, so the
caller can count the members it was given.
"""

from __future__ import annotations

from typing import Annotated, Final, TypeAlias

import msgspec
from msgspec import UNSET, Meta, UnsetType

__all__ = ["TELEMETRY_DECODER", "UNSET", "RawPoint", "RawTelemetry"]


#: A metric value: an integer within 64 bits (as the contract's MIN_INT..MAX_INT), a float or a bool.
#: msgspec refuses a float literal that overflows a double, and JSON has no NaN or Infinity.
MetricValue: TypeAlias = Annotated[int, Meta(ge=-(2**63), le=2**63 - 1)] | float | bool
Metrics: TypeAlias = dict[str, MetricValue]


class RawPoint(msgspec.Struct, gc=False):
    """One point of a batch as sent: its metrics and, optionally, its own timestamp."""

    metrics: Metrics
    ts: int | UnsetType = UNSET


class RawTelemetry(msgspec.Struct, gc=False):
    """A telemetry payload as sent: one point (``metrics``) or a batch (``points``)."""

    v: int
    seq: int
    ts: int
    metrics: Metrics | UnsetType = UNSET
    points: list[RawPoint] | UnsetType = UNSET
    hist: bool | UnsetType = UNSET


#: Built once: a Decoder holds its compiled schema.
TELEMETRY_DECODER: Final = msgspec.json.Decoder(RawTelemetry)
