"""``gridsentinel edge redact IN OUT [--config FILE]``: the camera box's snapshot filter on an image file.

Runs exactly :class:`edge.camera.privacy.PrivacyFilter` -- masks, face blur,
fail-closed fallback, EXIF-free JPEG -- so operators can check what would leave
the box. Exit codes: 0 sent, 3 face filter failed and the image was pixelated,
4 withheld (nothing written), 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_BAD_INPUT, EXIT_PIXELATED, EXIT_WITHHELD = 0, 2, 3, 4


class RedactConfigError(ValueError):
    """The --config file has no usable privacy settings."""


def load_privacy_config(path: Path | None) -> Any:
    """The :class:`PrivacyConfig` from an agent config (first camera driver), a ``[privacy]`` table, or bare keys."""
    from edge.camera.config import PrivacyConfig

    if path is None:
        return PrivacyConfig()
    text = path.read_text()
    raw: dict[str, Any] = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    if "drivers" in raw:
        from edge.config import load_config

        agent = load_config(path)
        for driver in agent.drivers:
            privacy = getattr(driver, "privacy", None)
            if isinstance(privacy, PrivacyConfig):
                return privacy
        raise RedactConfigError(f"{path}: no camera driver with privacy settings")
    section = raw.get("privacy", raw)
    if not isinstance(section, dict):
        raise RedactConfigError(f"{path}: 'privacy' must be a table")
    return PrivacyConfig.model_validate(section)


def run(args: argparse.Namespace) -> int:
    """Filter ``args.input`` into ``args.output``."""
    import cv2
    from pydantic import ValidationError

    from edge.camera.privacy import PrivacyFilter

    try:
        config = load_privacy_config(args.config)
    except (OSError, ValueError, ValidationError, tomllib.TOMLDecodeError) as exc:
        print(f"redact: bad --config: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    image = cv2.imread(str(args.input), cv2.IMREAD_COLOR)
    if image is None:
        print(f"redact: cannot read image {args.input}", file=sys.stderr)
        return EXIT_BAD_INPUT
    result = PrivacyFilter(config).apply(image)
    summary = {"status": result.status, "faces": result.faces, "sha256": result.sha256, "note": result.note}
    if result.jpeg is not None:
        Path(args.output).write_bytes(result.jpeg)
        summary["output"] = str(args.output)
        summary["bytes"] = len(result.jpeg)
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"{result.status}: {result.note or 'no faces found'} -> {summary.get('output', 'nothing written')}")
    if result.status == "withheld":
        return EXIT_WITHHELD
    return EXIT_PIXELATED if result.status == "pixelated" else EXIT_OK


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the redact arguments."""
    parser.add_argument("input", type=Path, metavar="IN", help="image file to filter")
    parser.add_argument("output", type=Path, metavar="OUT", help="where to write the filtered JPEG")
    parser.add_argument(
        "--config", type=Path, default=None, help="agent config (TOML) with a camera driver, or a [privacy] table"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)
