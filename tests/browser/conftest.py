"""A real browser for these tests: Debian's ``chromium`` driven by Playwright for Python.

It is never downloaded (no ``playwright install``): ``executable_path`` names the system's
chromium. One browser serves a whole module; each test gets a fresh context and page that
may reach loopback only: every request to another host is aborted and recorded, and the
test fails if there was any. Console messages are kept too, so that a test can show that
the page's Content-Security-Policy refused nothing.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, Route, sync_playwright

LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


def chromium_path() -> str:
    """The system's chromium (CI installs Debian's package when it is missing)."""
    path = shutil.which("chromium") or "/usr/bin/chromium"
    assert os.path.exists(path), "chromium is not installed (Debian: apt-get install chromium)"
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # As root, chromium refuses to start with its sandbox on; media may play without a click.
    args = ["--autoplay-policy=no-user-gesture-required"]
    args += ["--no-sandbox"] if os.geteuid() == 0 else []
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=chromium_path(), headless=True, args=args
        )
        yield launched
        launched.close()


@dataclass
class Tab:
    """A page, the requests it tried beyond loopback, and its console messages."""

    page: Page
    outside: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)


@pytest.fixture
def tab(browser: Browser) -> Iterator[Tab]:
    context = browser.new_context()
    tab = Tab(context.new_page())

    def loopback_only(route: Route) -> None:
        url = route.request.url
        if urlsplit(url).hostname not in LOOPBACK:
            tab.outside.append(url)
            route.abort()
        else:
            route.continue_()

    context.route("**/*", loopback_only)
    tab.page.on("console", lambda message: tab.console.append(message.text))
    try:
        yield tab
    finally:
        context.close()
    assert tab.outside == [], f"requests beyond loopback: {tab.outside}"
