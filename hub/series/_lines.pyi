"""Type stub of the native line-protocol encoder (hub/series/_lines.c)."""

from collections.abc import Sequence

def point_lines(prefix: str, points: Sequence[object], plain: set[str]) -> list[str] | None: ...
