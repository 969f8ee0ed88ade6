"""Whether this machine can build the optional C extensions (hub/series/_lines.c, edge/wire/_points.c)."""

from __future__ import annotations

import shutil
import sysconfig
from pathlib import Path

import pytest


def require_c_build() -> None:
    """Skip (saying why) where ``pip install`` cannot compile them: no C compiler or no Python headers.
    Everywhere else an extension that was not built is a failure, not a silent fallback."""
    if shutil.which("cc") is None or not Path(sysconfig.get_paths()["include"], "Python.h").exists():
        pytest.skip("no C compiler or no Python headers here: the Python path is the one in use")
