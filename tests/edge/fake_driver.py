"""A test-only driver registered as ``test_counter``: a counter metric, optional scripted values.

Running this module (``python -m tests.edge.fake_driver edge run --config X``) registers
the driver and then runs the real ``gridsentinel`` CLI, so subprocess agents use it.
"""

from __future__ import annotations

import sys
from typing import Literal

from pydantic import Field

from edge.drivers import DriverConfigBase, DriverEvent, Sample, register_driver
from edge.wire import EventState, Severity


class CounterConfig(DriverConfigBase):
    """Config of the counter driver."""

    type: Literal["test_counter"] = Field(description="Driver key.")
    value: float = Field(default=1.0, description="Value reported as metric 'value'.")
    event_every: int = Field(default=0, ge=0, description="Raise a 'tick' event every N polls (0: never).")


class CounterDriver:
    """Counts its polls; the value can be changed by tests; has a snapshot() for commands."""

    def __init__(self, config: CounterConfig) -> None:
        self.config = config
        self.count = 0
        self.value = config.value

    def poll(self, now_ms: int) -> Sample:
        """One reading: n and value."""
        self.count += 1
        events: tuple[DriverEvent, ...] = ()
        if self.config.event_every and self.count % self.config.event_every == 0:
            events = (DriverEvent("tick", EventState.ACTIVE, Severity.INFO, value=float(self.count)),)
        return Sample({"n": self.count, "value": self.value}, events)

    def snapshot(self) -> bytes:
        """A tiny fake JPEG."""
        return b"\xff\xd8fake-jpeg\xff\xd9"

    def close(self) -> None:
        """Nothing to release."""


register_driver("test_counter", CounterConfig, CounterDriver, "test-only counter")

if __name__ == "__main__":
    from edge.cli import main

    sys.exit(main(sys.argv[1:]))
