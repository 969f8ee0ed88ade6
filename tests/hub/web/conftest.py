"""Page test fixtures: a real headless Chromium (Debian's, driven by Playwright) and a hub serving the pages."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import sync_playwright

from hub.config import HubSettings
from hub.context import need
from hub.security.auth import TokenStore
from hub.service import Hub
from simulators.community import generate_community
from simulators.community_workflow import write_workflow
from tests.servers import require_binary


@dataclass
class Site:
    """The running hub, its grid codes and a sign-in token per person."""

    hub: Hub
    grids: list[str]
    tokens: dict[str, str]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.hub.http_port}"

    @property
    def data_dir(self) -> Path:
        assert self.hub.ctx is not None
        return self.hub.ctx.data_dir

    def api(self, person: str) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.tokens[person]}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=5)


def start_site(data_dir: Path, people: tuple[str, ...]) -> Site:
    """A demo-mode hub (embedded broker) on a generated 3-grid community, with tokens for ``people``."""
    community = generate_community(3, seed=7, mix_per_grid={"smoke": 1.0})
    write_workflow(data_dir / "cases.yaml", community)
    settings = HubSettings(http_port=0, broker_port=0, data_dir=data_dir, demo=True, client_id=data_dir.name)
    hub = Hub(settings)
    hub.start()
    assert hub.ctx is not None
    tokens: TokenStore = need(hub.ctx.services.tokens, "tokens")
    return Site(hub, community.grid_codes(), {p: tokens.issue_token(p, "browser test") for p in people})


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium for one test module, stopped after it."""
    chromium = require_binary("chromium", "chromium")

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
        yield b
        b.close()
