"""Fixtures shared by every test package, and a missing server binary turned into a skip (a failure under CI)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from simulators.servers import MissingBinary, Mosquitto
from tests.servers import skip_or_fail


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(fixturedef: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fixture whose server is not installed skips its tests (fails them under CI)."""
    try:
        return (yield)
    except MissingBinary as exc:
        skip_or_fail(str(exc))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """A test that starts a server which is not installed is skipped (fails under CI)."""
    try:
        return (yield)
    except MissingBinary as exc:
        skip_or_fail(str(exc))


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """A real mosquitto broker on a free loopback port, stopped after the test."""
    server = Mosquitto(tmp_path / "mosquitto", log_notice=True)
    server.start()
    yield server
    server.stop()
