"""The web console in a real browser: Debian's chromium, driven by Selenium through its
chromedriver, against a real ``cellgate demo``.

What a newcomer does: load the page, page forward and back, sort by a column, filter by
name, switch views; take cell2 down (the banner names it, rows still page, 2.69 shows its
servers as stubs); restore it (the listing completes by itself). Every table the browser
shows is compared with what the API answers for the same request. Screenshots go to the
test's temporary directory, or to ``$CONSOLE_SCREENSHOTS`` when set (the README's image).
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest

from tests.support.demo import running_demo

pytestmark = [pytest.mark.integration, pytest.mark.browser]

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

WAIT_S = 30
ADMIN = "admin:admin"


def _browser_binaries() -> tuple[str, str]:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or driver is None:
        reason = (
            "Debian's chromium and chromium-driver are not installed "
            "(scripts/test installs them with apt-get when it can)"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return chromium, driver


@pytest.fixture(scope="module")
def demo_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    # Short deadlines and cooldown, so drills and recovery show within seconds.
    env = {
        "CELLGATE_CELL_TIMEOUT_S": "1",
        "CELLGATE_REQUEST_BUDGET_S": "3",
        "CELLGATE_BREAKER_COOLDOWN_S": "1",
    }
    with running_demo(tmp_path_factory.mktemp("console-demo"), 900, env) as demo:
        banner = demo.banner()
        yield banner[0].split("serving on ", 1)[1].split()[0]


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    chromium, driver = _browser_binaries()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in (
        "--headless=new",
        "--no-sandbox",  # root in CI
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1280,860",
    ):
        options.add_argument(argument)
    browser = webdriver.Chrome(service=Service(driver), options=options)
    try:
        yield browser
    finally:
        browser.quit()


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    wanted = os.environ.get("CONSOLE_SCREENSHOTS")
    folder = Path(wanted) if wanted else tmp_path / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _api(url: str, path: str, query: dict[str, str], version: str = "2.1") -> dict[str, object]:
    request = urllib.request.Request(
        f"{url}{path}?{urlencode(query)}",
        headers={"X-Auth-Token": ADMIN, "OpenStack-API-Version": f"compute {version}"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        body: dict[str, object] = json.load(response)
        return body


def _query(sort_key: str = "created_at", sort_dir: str = "desc", **extra: str) -> dict[str, str]:
    return {"limit": "10", "sort_key": sort_key, "sort_dir": sort_dir, **extra, "all_tenants": "1"}


def _loads(browser: WebDriver) -> int:
    return int(browser.find_element(By.TAG_NAME, "body").get_attribute("data-loads") or 0)


def _settled(browser: WebDriver, after: int) -> None:
    """Wait until a listing request issued after ``after`` loads has been answered."""
    WebDriverWait(browser, WAIT_S).until(
        lambda b: (
            _loads(b) > after
            and b.find_element(By.TAG_NAME, "body").get_attribute("data-state") == "idle"
        )
    )


def _act(browser: WebDriver, css: str) -> None:
    """Click ``css`` and wait for the listing it triggers (retrying a redrawn element)."""
    before = _loads(browser)
    for _ in range(5):
        try:
            browser.find_element(By.CSS_SELECTOR, css).click()
            break
        except StaleElementReferenceException:
            continue
    _settled(browser, before)


def _ids(browser: WebDriver) -> list[str]:
    rows = browser.find_elements(By.CSS_SELECTOR, "#rows tr[data-id]")
    return [row.get_attribute("data-id") or "" for row in rows]


def _stub_ids(browser: WebDriver) -> list[str]:
    rows = browser.find_elements(By.CSS_SELECTOR, "#rows tr.stub[data-id]")
    return [row.get_attribute("data-id") or "" for row in rows]


def _column(browser: WebDriver, index: int) -> list[str]:
    cells = browser.find_elements(By.CSS_SELECTOR, f"#rows tr td:nth-child({index})")
    return [cell.text for cell in cells]


def _api_ids(body: dict[str, object]) -> list[str]:
    servers = body["servers"]
    assert isinstance(servers, list)
    return [server["id"] for server in servers]


def _banner(browser: WebDriver) -> str:
    banner = browser.find_element(By.ID, "banner")
    return "" if banner.get_attribute("hidden") is not None else banner.text


def test_console_pages_sorts_and_shows_an_outage(
    demo_url: str, browser: WebDriver, screenshots: Path
) -> None:
    browser.get(f"{demo_url}/console")
    _settled(browser, 0)
    detail = "/v2.1/servers/detail"

    # First page: the API's newest ten, in its order.
    first = _api_ids(_api(demo_url, detail, _query()))
    assert _ids(browser) == first
    assert _banner(browser) == ""
    browser.save_screenshot(str(screenshots / "1-first-page.png"))

    # Next, next, previous: the API's own next pages through servers_links.
    twenty = _api_ids(_api(demo_url, detail, {**_query(), "limit": "30"}))
    _act(browser, "#next")
    assert _ids(browser) == twenty[10:20]
    assert "Page 2" in browser.find_element(By.ID, "page-no").text
    _act(browser, "#next")
    assert _ids(browser) == twenty[20:30]
    _act(browser, "#prev")
    assert _ids(browser) == twenty[10:20]
    _act(browser, "#prev")
    assert _ids(browser) == first
    assert not browser.find_element(By.ID, "prev").is_enabled()

    # Sort by name, ascending then descending: the API's order, names shown as served.
    for direction in ("asc", "desc"):
        _act(browser, 'th[data-sort="display_name"]')
        body = _api(demo_url, detail, _query("display_name", direction))
        assert _ids(browser) == _api_ids(body)
        assert _column(browser, 1) == [s["name"] for s in body["servers"]]  # type: ignore[attr-defined]  # the API's body is parsed JSON (object)

    # Filter by name (a regular expression, as Nova's name filter).
    browser.find_element(By.ID, "name").send_keys("web")
    _act(browser, "#filter button[type=submit]")
    filtered = _api(demo_url, detail, _query("display_name", "desc", name="web"))
    assert _ids(browser) == _api_ids(filtered)
    assert _ids(browser), "the demo has servers named web-*"
    assert all("web" in name for name in _column(browser, 1))
    _act(browser, "#clear")

    # Summary view: only name and id, as GET /v2.1/servers answers.
    before = _loads(browser)
    Select(browser.find_element(By.ID, "view")).select_by_value("summary")
    _settled(browser, before)
    headers = [th.text.strip(" ▲▼") for th in browser.find_elements(By.CSS_SELECTOR, "#head th")]
    assert headers == ["Name", "ID"]
    assert _ids(browser) == _api_ids(_api(demo_url, "/v2.1/servers", _query("display_name")))
    before = _loads(browser)
    Select(browser.find_element(By.ID, "view")).select_by_value("detail")
    _settled(browser, before)

    # Take cell2 down: the banner names it, and rows still page.
    _act(browser, 'button[data-cell="cell2"][data-drill="down"]')
    WebDriverWait(browser, WAIT_S).until(lambda b: "cell2" in _banner(b))
    assert "missing from this page" in _banner(browser)
    partial_first = _ids(browser)
    assert len(partial_first) == 10
    _act(browser, "#next")
    assert "cell2" in _banner(browser)
    second = _ids(browser)
    assert len(second) == 10
    assert not set(second) & set(partial_first)
    WebDriverWait(browser, WAIT_S).until(
        lambda b: (
            "down"
            in (
                b.find_element(By.CSS_SELECTOR, 'li[data-cell="cell2"]').get_attribute("class")
                or ""
            )
        )
    )

    # At 2.69, newest first, the down cell's servers are stubs (status UNKNOWN) where the
    # API puts them.
    _act(browser, 'th[data-sort="created_at"]')
    before = _loads(browser)
    Select(browser.find_element(By.ID, "version")).select_by_value("2.69")
    _settled(browser, before)
    WebDriverWait(browser, WAIT_S).until(lambda b: "UNKNOWN stubs" in _banner(b))
    servers = _api(demo_url, detail, {**_query(), "limit": "60"}, "2.69")["servers"]
    assert isinstance(servers, list)
    stubs_seen: list[str] = []
    for page in range(6):
        expected = servers[page * 10 : page * 10 + 10]
        assert _ids(browser) == [s["id"] for s in expected]
        assert _stub_ids(browser) == [s["id"] for s in expected if s["status"] == "UNKNOWN"]
        stubs_seen += _stub_ids(browser)
        if stubs_seen:
            browser.save_screenshot(str(screenshots / "2-cell2-down-stubs.png"))
            break
        _act(browser, "#next")
    assert stubs_seen, "cell2's servers should appear as stubs within the first pages"

    # Restore: once cell2 answers /readyz again the page is asked again and completes.
    _act(browser, 'button[data-cell="cell2"][data-drill="none"]')
    WebDriverWait(browser, WAIT_S).until(lambda b: _banner(b) == "" and not _stub_ids(b))
    WebDriverWait(browser, WAIT_S).until(
        lambda b: (
            "up"
            in (
                b.find_element(By.CSS_SELECTOR, 'li[data-cell="cell2"]').get_attribute("class")
                or ""
            )
        )
    )
    browser.save_screenshot(str(screenshots / "3-restored.png"))

    # Hang cell2: the deadline cuts it off (partial), restore completes again.
    _act(browser, 'button[data-cell="cell2"][data-drill="hang"]')
    WebDriverWait(browser, WAIT_S).until(lambda b: "cell2" in _banner(b))
    assert len(_ids(browser)) == 10
    _act(browser, 'button[data-cell="cell2"][data-drill="none"]')
    WebDriverWait(browser, WAIT_S).until(lambda b: _banner(b) == "")
    severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not severe, severe
