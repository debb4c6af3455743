"""The dashboard in a real headless Chromium (Debian's chromium + chromium-driver, driven by
Selenium): a sandbox server started as a user starts it, jobs created over HTTP, the page's own
controls moving the clock and the jobs, the journal showing a rejected request's violation."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select, WebDriverWait
from sqlalchemy import insert

from sandbox.core import jobs, lists
from sandbox.core import store as t
from sandbox.core.backend import Backend
from sandbox.settings import Settings
from tests.webhook_receiver import Receiver, running_receiver

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("SANDBOX_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("SANDBOX_CHROMEDRIVER", "/usr/bin/chromedriver")
SCREENSHOT = ROOT / "docs" / "dashboard.png"
START = "2025-01-15T10:00:00Z"
KEY = "wbk_dashboard_demo"
MANY = 10_000
TOKEN = "demo-token-42"
# Seconds a page condition may take: usually one poll (about 1 s); the bound is for slow,
# shared machines.
WAIT = 20


# ---- a real server -------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SandboxServer:
    """`python -m sandbox serve` on a free port, frozen at START, as a user starts it."""

    def __init__(self, *extra: str) -> None:
        self.base = f"http://127.0.0.1:{free_port()}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("SANDBOX_")}
        # A file, not a pipe: a chatty server must never block on a full pipe nobody reads.
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 (closed by stop())
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sandbox", "serve", "--port", self.base.rsplit(":", 1)[1],
             "--clock-start", START, "--frozen", *extra], cwd=ROOT, env=env,
            stdout=subprocess.DEVNULL, stderr=self.log)

    def wait_until_ready(self) -> str:
        for _attempt in range(600):  # bounded: half a minute at most
            if self.proc.poll() is not None:
                self.log.seek(0)
                raise RuntimeError(f"the sandbox exited: {self.log.read().decode()[-2000:]}")
            try:
                if httpx.get(self.base + "/__sandbox/health", timeout=1).status_code == 200:
                    return self.base
            except httpx.TransportError:
                time.sleep(0.05)  # back off between attempts at a port not yet listening
        raise RuntimeError("the sandbox did not answer /__sandbox/health")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def seed_many_jobs(db_url: str, key: str) -> None:
    """MANY finished InboxApp jobs in one workspace of a file database, written in one bulk
    insert (creating them over HTTP would take minutes; what is measured here is the page)."""
    backend = Backend(Settings(db_url=db_url, clock_start=START, clock_mode="frozen"))
    with backend.workspace(key) as (conn, ws):
        list_pk = lists.get(conn, ws.id, "inboxapp", "demolist1")["pk"]
        counts = {**jobs.new_counts(), "added": 7, "skipped": 3}
        conn.execute(insert(t.jobs), [dict(
            workspace=ws.id, vendor="inboxapp", id=f"bulkjob{i:05d}", list_pk=list_pk,
            kind="csv", status="completed", plan={}, total=10, processed=10, counts=counts,
            row_errors=[], error=None, created_at=ws.now, updated_at=ws.now,
            completed_at=ws.now, source_offset=0, extra={}) for i in range(MANY)])
    backend.store.dispose()


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Two servers, started side by side: a plain one, and one behind a control token whose
    file database holds a workspace of MANY jobs."""
    db_url = f"sqlite:///{tmp_path_factory.mktemp('crowded') / 'sandbox.db'}"
    seed_many_jobs(db_url, KEY)
    started = [SandboxServer(), SandboxServer("--db", db_url, "--control-token", TOKEN)]
    try:
        plain, crowded = (s.wait_until_ready() for s in started)
        yield {"plain": plain, "crowded": crowded}
    finally:
        for s in started:
            s.stop()


@pytest.fixture
def server(servers: dict[str, str]) -> str:
    return servers["plain"]


@pytest.fixture
def crowded_server(servers: dict[str, str]) -> str:
    return servers["crowded"]


# ---- a real browser ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    for path in (CHROMIUM, CHROMEDRIVER):
        assert Path(path).exists(), (
            f"{path} is missing: apt-get install chromium chromium-driver (.ci/run does)")
    profile = tempfile.mkdtemp(prefix="sandbox-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # The browser's console, to catch script errors and Content-Security-Policy refusals.
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                 "--disable-extensions", "--window-size=1440,1700",
                 f"--user-data-dir={profile}"):
        options.add_argument(flag)
    # An explicit driver path: Selenium Manager is not consulted and downloads nothing.
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait_for(driver: WebDriver, what: str, condition: Callable[[WebDriver], Any]) -> Any:
    def attempt(d: WebDriver) -> Any:
        try:
            return condition(d)
        except StaleElementReferenceException:  # the row was re-rendered under our feet
            return False

    try:
        return WebDriverWait(driver, WAIT, poll_frequency=0.1).until(attempt, message=what)
    except TimeoutException as exc:
        seen = {i: driver.find_element(By.ID, i).text for i in ("message", "page-info")}
        raise AssertionError(f"{what}: not seen within {WAIT} s; the page shows {seen}") from exc


def job_row(driver: WebDriver, job_id: str) -> WebElement:
    return driver.find_element(By.CSS_SELECTOR, f'#jobs-rows tr[data-job="{job_id}"]')


def row_state(driver: WebDriver, job_id: str) -> tuple[str, str, str]:
    """(generic status, bar value, bar text) as the jobs table shows them."""
    row = job_row(driver, job_id)
    badge = row.find_element(By.CSS_SELECTOR, ".badge")
    bar = row.find_element(By.CSS_SELECTOR, '[role="progressbar"]')
    pct = row.find_element(By.CSS_SELECTOR, ".pct")
    return (str(badge.get_attribute("data-status")), str(bar.get_attribute("aria-valuenow")),
            pct.text)


def detail_status(driver: WebDriver) -> str:
    badge = driver.find_element(By.CSS_SELECTOR, "#job-facts .badge")
    return str(badge.get_attribute("data-status"))


def console_errors(driver: WebDriver, *expected: str) -> list[str]:
    """Errors the page logged since the last call, less those containing an expected text."""
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"
            and not any(text in e["message"] for text in expected)]


def unlabelled_controls(driver: WebDriver) -> list[str]:
    return list(driver.execute_script("""
        return [...document.querySelectorAll('input, select, button')].filter(el =>
            !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
            && !el.textContent.trim()).map(el => el.outerHTML);"""))


def fill(driver: WebDriver, element_id: str, value: str) -> None:
    field = driver.find_element(By.ID, element_id)
    field.clear()
    field.send_keys(value)


# ---- the vendors, over HTTP ------------------------------------------------------------------

def inboxapp_csv_job(base: str, usernames: list[str]) -> dict[str, Any]:
    content = "username,company\n" + "".join(f"{u},Acme\n" for u in usernames)
    r = httpx.post(f"{base}/inboxapp/lists/demolist1/import-jobs",
                   headers={"Authorization": f"Bearer {KEY}"},
                   json={"data": {"type": "csv", "fileName": "prospects.csv", "content": content,
                                  "columnMapping": [
                                      {"csvHeader": "username", "targetColumnId": "username"}]}})
    assert r.status_code == 200, r.text
    return dict(r.json())


def open_from_the_live_list(driver: WebDriver, base: str, key: str) -> None:
    driver.get(base + "/__sandbox/ui")
    wait_for(driver, "the workspace among the live ones", lambda d: d.find_element(
        By.CSS_SELECTOR, f'#picker-rows button[aria-label="Open workspace {key}"]')).click()
    wait_for(driver, "the workspace view", lambda d: d.find_element(
        By.ID, "clock-now").text.startswith("2025-01-15"))
    assert driver.find_element(By.ID, "ws-name").text == key


# ---- the tests -------------------------------------------------------------------------------

def test_the_page_and_its_assets_load_nothing_from_elsewhere(server: str) -> None:
    page = httpx.get(server + "/__sandbox/ui")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    media_types = {".css": "text/css", ".js": "application/javascript"}
    assets = sorted((ROOT / "sandbox" / "dashboard" / "static").iterdir())
    assert {a.suffix for a in assets} == set(media_types)
    for asset in assets:
        r = httpx.get(f"{server}/__sandbox/ui/{asset.name}")
        assert r.status_code == 200, asset.name
        assert r.headers["content-type"].startswith(media_types[asset.suffix])
        assert "http://" not in r.text and "https://" not in r.text and "//cdn" not in r.text
        assert r.text.isascii()  # served without a charset parameter
    assert "https://" not in page.text and "http://" not in page.text
    missing = httpx.get(server + "/__sandbox/ui/missing.js")
    assert missing.status_code == 404 and missing.json()["error"]["field"] == "asset"


def test_a_job_completes_on_the_page_and_a_rejection_shows_its_violation(
        server: str, browser: WebDriver, tmp_path: Path) -> None:
    with running_receiver() as receiver:
        _live_demo(server, browser, receiver, tmp_path)


def _live_demo(server: str, driver: WebDriver, receiver: Receiver, tmp_path: Path) -> None:
    job = inboxapp_csv_job(server, ["ada_lovelace", "grace_hopper", "alan_turing", "edsger"])
    assert job["status"] == "queued"
    open_from_the_live_list(driver, server, KEY)
    wait_for(driver, "the new job, queued at 0%",
             lambda d: row_state(d, job["id"])[:2] == ("queued", "0"))
    lists = driver.find_element(By.ID, "lists-rows").text
    assert "Demo list 1" in lists and "Demo campaign 1" in lists

    # The page's own control moves the clock: 60 s is well past the 3 s wait + 4 rows at 20/s.
    fill(driver, "advance-amount", "60")
    Select(driver.find_element(By.ID, "advance-unit")).select_by_visible_text("seconds")
    driver.find_element(By.ID, "advance-button").click()
    wait_for(driver, "the job at 100%, completed",
             lambda d: row_state(d, job["id"])[:2] == ("completed", "100"))
    _status, _value, text = row_state(driver, job["id"])
    assert text.startswith("100%") and "4/4" in text
    assert job_row(driver, job["id"]).find_element(By.CSS_SELECTOR, ".badge").text == "completed"
    assert "10:01:00" in driver.find_element(By.ID, "clock-now").text

    # A rejected request: an importer type the contract does not know.
    r = httpx.post(f"{server}/inboxapp/lists/demolist1/import-jobs",
                   headers={"Authorization": f"Bearer {KEY}"},
                   json={"data": {"type": "spreadsheet", "content": "username\nx\n"}})
    assert r.status_code == 400 and r.json()["error"]["field"] == "data.type"
    rejected = wait_for(driver, "the rejected request, highlighted", lambda d: d.find_element(
        By.CSS_SELECTOR, "#journal-rows li.entry.rejected"))
    assert "400" in rejected.text and "rejected" in rejected.text.lower()
    violation = rejected.find_element(By.CSS_SELECTOR, ".violation")
    assert violation.find_element(By.TAG_NAME, "code").text == "data.type"
    assert "spreadsheet" in violation.text
    ok = driver.find_elements(By.CSS_SELECTOR, "#journal-rows li.entry:not(.rejected)")
    assert ok and "200" in ok[-1].text  # the job created above, not highlighted
    driver.find_element(By.ID, "only-rejected").click()
    assert all("rejected" in li.get_attribute("class")  # type: ignore[operator]
               for li in driver.find_elements(By.CSS_SELECTOR, "#journal-rows li.entry"))
    driver.find_element(By.ID, "only-rejected").click()

    _job_controls(server, driver)
    _webhook_attempts(server, driver, receiver)
    _screenshot(server, driver, tmp_path)
    assert unlabelled_controls(driver) == []
    assert console_errors(driver) == []


def _job_controls(server: str, driver: WebDriver) -> None:
    """Pause, resume, complete and fail, each through the page's job panel."""
    slow = inboxapp_csv_job(server, [f"prospect_{i}" for i in range(400)])
    doomed = inboxapp_csv_job(server, [f"lead_{i}" for i in range(200)])
    fill(driver, "find-input", slow["id"])
    driver.find_element(By.CSS_SELECTOR, "#find-form button").click()
    wait_for(driver, "the job panel", lambda d: d.find_element(By.ID, "job-id").text == slow["id"])
    driver.find_element(By.ID, "job-pause").click()
    wait_for(driver, "the job paused", lambda d: detail_status(d) == "paused")
    wait_for(driver, "paused in the table", lambda d: row_state(d, slow["id"])[0] == "paused")
    driver.find_element(By.ID, "job-resume").click()
    wait_for(driver, "the job running", lambda d: detail_status(d) == "running")
    fill(driver, "advance-amount", "5")
    driver.find_element(By.ID, "advance-button").click()
    wait_for(driver, "the job part way", lambda d: 0 < int(row_state(d, slow["id"])[1]) < 100)

    job_row(driver, doomed["id"]).find_element(By.CSS_SELECTOR, "button").click()
    wait_for(driver, "the other job's panel",
             lambda d: d.find_element(By.ID, "job-id").text == doomed["id"])
    fill(driver, "fail-message", "CSV column 'username' is empty")
    driver.find_element(By.ID, "job-fail").click()
    wait_for(driver, "the job failed", lambda d: detail_status(d) == "failed")
    assert "CSV column 'username' is empty" in driver.find_element(By.ID, "job-facts").text
    assert driver.find_element(By.ID, "job-complete").get_attribute("disabled") is not None

    row = job_row(driver, slow["id"])
    row.find_element(By.CSS_SELECTOR, "button").click()
    wait_for(driver, "the slow job's panel",
             lambda d: d.find_element(By.ID, "job-id").text == slow["id"])
    driver.find_element(By.ID, "job-complete").click()
    wait_for(driver, "the job completed at once",
             lambda d: row_state(d, slow["id"])[:2] == ("completed", "100"))


def _webhook_attempts(server: str, driver: WebDriver, receiver: Receiver) -> None:
    """A Leadlex import of more than 500 rows is queued and announces its end by webhook; the
    receiver fails the first attempt, so the page shows two."""
    headers = {"Authorization": f"Bearer {KEY}"}
    r = httpx.post(f"{server}/leadlex/v1/webhooks", headers=headers,
                   json={"url": receiver.url(), "events": ["import.completed"]})
    assert r.status_code == 201, r.text
    receiver.answer(500)
    rows = [{"full_name": f"Contact {i}", "email": f"contact{i}@example.com"} for i in range(600)]
    r = httpx.post(f"{server}/leadlex/v1/import/contacts", headers=headers, json={"rows": rows})
    assert r.status_code == 200 and r.json()["data"]["status"] == "queued", r.text
    driver.find_element(By.ID, "clock-resume").click()
    wait_for(driver, "the clock running", lambda d: "running" in d.find_element(
        By.ID, "clock-state").text)
    fill(driver, "speed-input", "20")
    driver.find_element(By.ID, "speed-button").click()
    wait_for(driver, "speed x20", lambda d: "20" in d.find_element(By.ID, "clock-state").text)
    driver.find_element(By.ID, "clock-freeze").click()
    wait_for(driver, "the clock frozen", lambda d: d.find_element(
        By.ID, "clock-state").text == "frozen")
    fill(driver, "advance-amount", "1")
    Select(driver.find_element(By.ID, "advance-unit")).select_by_visible_text("minutes")
    driver.find_element(By.ID, "advance-button").click()
    delivery = wait_for(driver, "a delivery with two attempts", lambda d: [
        li for li in d.find_elements(By.CSS_SELECTOR, "#webhook-rows li.delivery")
        if len(li.find_elements(By.CSS_SELECTOR, ".attempts > li")) == 2])[0]
    text = delivery.text
    assert "import.completed" in text and "delivered" in text
    assert "#1" in text and "HTTP 500" in text and "#2" in text and "HTTP 200" in text
    assert len(receiver.requests) == 2


def _screenshot(server: str, driver: WebDriver, tmp_path: Path) -> None:
    # One more job part way through, so that the picture shows a live bar.
    live = inboxapp_csv_job(server, [f"demo_{i}" for i in range(300)])
    Select(driver.find_element(By.ID, "advance-unit")).select_by_visible_text("seconds")
    fill(driver, "advance-amount", "8" + Keys.ENTER)  # the keyboard alone moves the clock
    wait_for(driver, "the live job part way",
             lambda d: 0 < int(row_state(d, live["id"])[1]) < 100)
    job_row(driver, live["id"]).find_element(By.CSS_SELECTOR, "button").click()
    wait_for(driver, "its panel", lambda d: d.find_element(By.ID, "job-id").text == live["id"])
    driver.execute_script("window.scrollTo(0, 0); document.activeElement.blur();")
    shot = tmp_path / "dashboard.png"
    assert driver.save_screenshot(str(shot))
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000
    if os.environ.get("SANDBOX_UPDATE_SCREENSHOT") == "1":
        SCREENSHOT.parent.mkdir(exist_ok=True)
        shutil.copyfile(shot, SCREENSHOT)


def test_the_page_asks_for_the_control_token_and_pages_through_10000_jobs(
        crowded_server: str, browser: WebDriver) -> None:
    base = crowded_server
    # The page and its assets hold no data: served without the token; the data needs it.
    assert httpx.get(base + "/__sandbox/ui").status_code == 200
    assert httpx.get(base + "/__sandbox/ui/dashboard.js").status_code == 200
    assert httpx.get(f"{base}/__sandbox/workspaces/{KEY}").status_code == 401
    browser.get(base + "/__sandbox/ui")
    token_field = browser.find_element(By.ID, "token-input")
    assert token_field.is_displayed()
    fill(browser, "workspace-input", KEY)
    browser.find_element(By.ID, "workspace-open").click()
    wait_for(browser, "a request for the token", lambda d: "token" in d.find_element(
        By.ID, "message").text)
    token_field.send_keys(TOKEN)
    started = time.monotonic()
    browser.find_element(By.CSS_SELECTOR, "#token-form button").click()
    info = wait_for(browser, "the first page of jobs", lambda d: d.find_element(
        By.ID, "page-info").text.startswith("Jobs 1\u201350 of 10,000") and d.find_element(
        By.ID, "page-info"))
    first_page = time.monotonic() - started
    assert "page 1 of 200" in info.text
    rows = browser.find_elements(By.CSS_SELECTOR, "#jobs-rows tr")
    assert len(rows) == 50 and rows[0].get_attribute("data-job") == "bulkjob00000"
    assert "InboxApp (10,000)" in browser.find_element(By.ID, "vendor-tabs").text
    browser.find_element(By.ID, "page-next").click()
    wait_for(browser, "the second page", lambda d: d.find_element(
        By.CSS_SELECTOR, "#jobs-rows tr").get_attribute("data-job") == "bulkjob00050")
    assert browser.find_element(By.ID, "page-info").text.startswith("Jobs 51\u2013100")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#jobs-rows tr")) == 50
    # The only errors: the calls answered 401 before the token was given.
    assert console_errors(browser, "401") == []
    Select(browser.find_element(By.ID, "page-size")).select_by_visible_text("200")
    wait_for(browser, "200 rows", lambda d: len(d.find_elements(
        By.CSS_SELECTOR, "#jobs-rows tr")) == 200)
    assert first_page < WAIT
