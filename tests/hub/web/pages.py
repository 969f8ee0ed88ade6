"""Helpers of the Chromium page tests: sign a person in, collect console errors, take screenshots."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

REPO = Path(__file__).resolve().parents[3]
ARTIFACTS = REPO / "test-artifacts" / "operator-page"
VIEWPORT = {"width": 1366, "height": 768}


class SignedSite(Protocol):
    """A running hub's address and a sign-in token per person."""

    @property
    def url(self) -> str: ...

    tokens: dict[str, str]


@dataclass
class Tab:
    """A signed-in page and the console errors it logged."""

    page: Any
    errors: list[str]


def open_page(browser: Any, site: SignedSite, person: str, lang: str = "en", view: str = "") -> Tab:
    """A new browser context signed in as ``person`` (via the sign-in link), data loaded; ``view`` = #hash."""
    context = browser.new_context(viewport=VIEWPORT, locale="en-US")
    context.add_init_script(f"localStorage.setItem('gs.lang', '{lang}')")
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{site.url}/?token={site.tokens[person]}" + (f"#{view}" if view else ""))
    page.locator(f'#who[data-person="{person}"]').wait_for(timeout=10_000)
    page.locator("body[data-ready]").wait_for(state="attached", timeout=10_000)
    return Tab(page, errors)


def shoot(page: Any, name: str) -> Path:
    """Screenshot to ``test-artifacts/operator-page/NAME.png``."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path
