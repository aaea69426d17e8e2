"""Real-browser smoke test: serve the app headless, open every page in Chromium, check it drew.

The server starts on an empty studio database, so the first page load is the README quickstart's
first launch (it ingests the default datasets itself); that first load is a deep link, which must
still go through ``app.py``'s navigation. Each page is awaited until its heading is
shown and Streamlit's running indicator is gone; then no exception and no error box may be on
it. A full-page screenshot of each lands in ``screenshots/`` (gitignored) for a human to look at.

Needs Debian's ``chromium`` and the ``playwright`` package (never ``playwright install``).
Skipped with a reason where chromium is missing, except under CI, where it must run.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.app_support import chromium_page, require_chromium, served_app

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = ROOT / "screenshots"
# (url path, heading): later pages add themselves here.
PAGES = [
    ("", "KPI overview"),
    ("bundles", "Bundles"),
    ("pricing", "Pricing studio"),
    ("model", "Model"),
    ("scenarios", "Scenarios"),
    ("customers", "Customers"),
    ("tour", "Guided tour"),
    ("data", "Data"),
]
FIRST_LAUNCH_S = 600  # the first page load ingests The Complete Journey on a busy 2-core machine
PAGE_S = 120


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``streamlit run app.py`` on a free port with an empty database; yields the base URL."""
    require_chromium()
    folder = tmp_path_factory.mktemp("browser")
    with served_app(folder / "studio.duckdb", folder / "server.log") as base:
        yield base


@pytest.fixture(scope="module")
def browser_page(server):
    with chromium_page() as page:
        yield page


def open_and_wait(page, url: str, heading: str, timeout_s: float) -> None:
    """Open ``url`` and wait until its heading is shown and the script run has finished."""
    page.goto(url, wait_until="domcontentloaded")
    page.get_by_role("heading", level=1, name=heading, exact=True).wait_for(state="visible", timeout=timeout_s * 1000)
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="detached", timeout=timeout_s * 1000)
    page.wait_for_timeout(1500)  # let plotly finish drawing before the screenshot


def screenshot_whole_page(page, target: Path) -> None:
    """Streamlit scrolls inside its main container, so grow the window to the content first."""
    height = page.evaluate(
        "Math.max(...Array.from(document.querySelectorAll('section, div')).map(e => e.scrollHeight))"
    )
    page.set_viewport_size({"width": 1440, "height": min(int(height) + 40, 12000)})
    page.wait_for_timeout(1000)  # plotly redraws at the new size
    page.screenshot(path=str(target), full_page=True)
    page.set_viewport_size({"width": 1440, "height": 1000})


@pytest.mark.slow
def test_every_page_draws_without_errors(server, browser_page):
    SCREENSHOTS.mkdir(exist_ok=True)
    # The fresh server's first request is a deep link: it must still go through app.py's
    # navigation (sidebar, first-launch ingest), not run the page file alone.
    visits = PAGES[1:] + PAGES[:1]
    for index, (path, heading) in enumerate(visits):
        open_and_wait(browser_page, f"{server}/{path}", heading, FIRST_LAUNCH_S if index == 0 else PAGE_S)
        screenshot_whole_page(browser_page, SCREENSHOTS / f"{path or 'home'}.png")
        exceptions = browser_page.locator('[data-testid="stException"]')
        assert exceptions.count() == 0, f"/{path}: {exceptions.first.inner_text()}"
        errors = browser_page.locator('[data-testid="stAlertContainer"] [data-testid="stAlertContentError"]')
        assert errors.count() == 0, f"/{path}: {errors.first.inner_text()}"
        assert browser_page.locator('[data-testid="stSidebarNavLink"]').count() == len(PAGES)
        sidebar = browser_page.locator('[data-testid="stSidebar"]')
        assert sidebar.get_by_text("Dataset", exact=True).count() == 1  # the shared sidebar's picker
        if index == 0:  # the quickstart's first launch said what it ingested, then folded away
            assert browser_page.get_by_text("First launch: datasets ready").count() == 1
        if path == "":
            assert browser_page.locator('[data-testid="stMetric"]').count() == 9
            assert browser_page.locator(".js-plotly-plot").count() >= 6
