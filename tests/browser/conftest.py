"""Browser tests: Playwright (the pip package) driving Debian's chromium against pytest-django's live_server.

A missing ``chromium`` fails every browser test, in CI and locally alike: a browser test never skips.
``make test`` installs Debian's chromium first when it can (root with apt-get), or stops before pytest
naming the command to run. axe-core is vendored under tests/browser/vendor/ and injected only here, never
served.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.redis_cache import PrivateCache

AXE_JS = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    path = shutil.which("chromium")
    if path:
        return path
    pytest.fail(
        "Debian's chromium is not on PATH: run `sudo apt-get install chromium` (make test does it as root)",
        pytrace=False,
    )


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One Chromium per test module.

    Playwright's sync API runs an asyncio loop in this thread, and Django refuses ORM calls from a thread with
    a running loop unless told that this is deliberate (the test code is synchronous, so it is safe). The flag
    lives exactly as long as the loop: ``manage.py check --deploy``, run by another test, rightly fails if it
    inherits it.
    """
    executable = chromium_path()
    from playwright.sync_api import sync_playwright

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            instance = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
            yield instance
            instance.close()


@pytest.fixture
def world(transactional_db: None) -> Any:
    from tests.messages.inbox.conftest import build_inbox

    return build_inbox()


@pytest.fixture(autouse=True)
def _browser_settings(settings: Any, private_cache: PrivateCache) -> None:
    # The real Redis cache under this test's own key prefix (the live server thread uses it too), and fast
    # polling, so live updates show quickly.
    settings.INBOX_POLL_SECONDS = 1


@pytest.fixture
def browser_errors() -> list[str]:
    return []


@pytest.fixture
def new_page(browser: Any, live_server: Any, browser_errors: list[str]) -> Iterator[Callable[..., Any]]:
    """Open a page as a user (session cookie from Django's test client), collecting console errors (CSP
    violations among them) and uncaught page errors in ``browser_errors``."""
    contexts: list[Any] = []

    def open_page(user: Any = None, *, bypass_csp: bool = False) -> Any:
        context = browser.new_context(base_url=live_server.url, bypass_csp=bypass_csp)
        contexts.append(context)
        if user is not None:
            from django.test import Client

            client = Client()
            client.force_login(user)
            cookie = client.cookies["sessionid"]
            context.add_cookies([{"name": "sessionid", "value": cookie.value, "url": live_server.url}])
        page = context.new_page()
        page.set_default_timeout(10_000)
        page.on(
            "console",
            lambda msg: browser_errors.append(msg.text) if msg.type == "error" else None,
        )
        page.on("pageerror", lambda exc: browser_errors.append(f"page error: {exc}"))
        return page

    yield open_page
    for context in contexts:
        context.close()


def run_axe(page: Any) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations for WCAG 2.0/2.1 A and AA rules on the current page."""
    page.add_script_tag(path=str(AXE_JS))
    result = page.evaluate(
        """async () => {
            const tags = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];
            const r = await axe.run(document, {runOnly: {type: 'tag', values: tags}});
            return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                           nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}));
        }"""
    )
    return [v for v in result if v["impact"] in ("serious", "critical")]
