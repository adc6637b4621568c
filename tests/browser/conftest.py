import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# INKMETER_SHOTS puts them elsewhere (a CI artefact folder, say).
SCREENSHOTS = Path(
    os.environ.get("INKMETER_SHOTS") or Path(__file__).resolve().parents[2] / "var" / "screenshots"
)


# Package scope: Playwright's sync API keeps an event loop running while it is open, and later
# tests (the collector's) start loops of their own.
@pytest.fixture(scope="package")
def browser():
    if not Path(CHROMIUM).exists():
        if os.environ.get("INKMETER_REQUIRE_SERVICES") == "1" or os.environ.get("CI"):
            pytest.fail("browser tests need Debian's chromium (apt-get install chromium)")
        pytest.skip("Debian's chromium is not installed")
    # Playwright talks to the live server from a thread of its own; Django's async-safety
    # check would otherwise refuse the ORM calls of the test's set-up.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield browser
        browser.close()
    if previous is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1360, "height": 860})
    page = context.new_page()
    page.console_errors = []
    page.on("console", lambda m: m.type == "error" and page.console_errors.append(m.text))
    yield page
    context.close()


@pytest.fixture
def screenshot(page):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take
