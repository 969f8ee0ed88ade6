"""pytest's side of the server launchers in :mod:`simulators.servers`.

Binaries come from Debian packages, which the README's test command installs when it runs as root.
When one is missing the test is skipped with the reason -- except under CI (``CI`` or
``GS_REQUIRE_SERVERS`` set), where a missing server is a failure: a skipped integration test must
never pass for a green run. :func:`require_binary` checks a binary up front; tests/conftest.py does the
same for :class:`~simulators.servers.MissingBinary` raised by a launcher in a fixture or a test.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

from simulators.servers import find_binary


def servers_required() -> bool:
    """True when missing server binaries must fail the run instead of skipping."""
    return bool(os.environ.get("CI") or os.environ.get("GS_REQUIRE_SERVERS"))


def skip_or_fail(missing: str) -> NoReturn:
    """Skip the test because ``missing`` (a binary, named with its package), or fail it under CI."""
    message = f"{missing} (the README test command does, as root)"
    if servers_required():
        pytest.fail(message)
    pytest.skip(message)


def require_binary(name: str, package: str) -> str:
    """Path of binary ``name``; skip (or fail under CI) naming the Debian ``package`` to install."""
    path = find_binary(name)
    if path is None:
        skip_or_fail(f"{name} not found: install the Debian package '{package}'")
    return path
