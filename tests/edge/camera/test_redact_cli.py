"""``gridsentinel edge redact``: the same filter on image files, with the same fail-closed outcomes."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import pytest
import skimage.data

from edge.camera import redact_cli


@pytest.fixture(scope="module")
def photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("redact") / "astronaut.png"
    rgb = skimage.data.astronaut()  # type: ignore[no-untyped-call]
    # The top-left 320x320 holds the face; a smaller image keeps the test quick.
    cv2.imwrite(str(path), cv2.cvtColor(rgb[:320, :320], cv2.COLOR_RGB2BGR))
    return path


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    redact_cli.configure(parser)
    args = parser.parse_args(list(argv))
    return int(args.func(args))


def test_redact_writes_a_filtered_jpeg(photo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out.jpg"
    config = tmp_path / "privacy.toml"
    config.write_text("[privacy]\ntimeout_s = 60\nmasks = [[[0.0, 0.9], [0.2, 0.9], [0.2, 1.0], [0.0, 1.0]]]\n")
    assert run(str(photo), str(out), "--config", str(config), "--json") == redact_cli.EXIT_OK
    summary = json.loads(capsys.readouterr().out)
    assert summary["status"] == "sent" and summary["faces"] >= 1
    data = out.read_bytes()
    assert data.startswith(b"\xff\xd8") and b"Exif" not in data
    image = cv2.imread(str(out))
    assert image is not None and float(image[290:320, 5:60].mean()) < 5.0  # the mask is burned in


def test_redact_fails_closed_with_missing_model(photo: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.jpg"
    config = tmp_path / "privacy.toml"
    config.write_text(f'cascade_dir = "{tmp_path}"\n')
    assert run(str(photo), str(out), "--config", str(config)) == redact_cli.EXIT_PIXELATED
    assert out.read_bytes().startswith(b"\xff\xd8")


def test_redact_withholds_when_configured(photo: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.jpg"
    config = tmp_path / "privacy.json"
    config.write_text(json.dumps({"privacy": {"cascade_dir": str(tmp_path), "on_failure": "withhold"}}))
    assert run(str(photo), str(out), "--config", str(config)) == redact_cli.EXIT_WITHHELD
    assert not out.exists()


def test_redact_refuses_bad_input(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[privacy]\nsurprise = 1\n")
    assert run(str(tmp_path / "none.png"), str(tmp_path / "o.jpg")) == redact_cli.EXIT_BAD_INPUT
    assert run(str(tmp_path / "none.png"), str(tmp_path / "o.jpg"), "--config", str(bad)) == redact_cli.EXIT_BAD_INPUT
