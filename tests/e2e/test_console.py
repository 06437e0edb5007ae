"""End to end: the web console of issue 11 (spec/CONTROL.md: ``GET /`` on the API port is the web console).

The console's files are checked over plain HTTP; the console itself runs in a
real headless Chromium (Debian's ``chromium`` and ``chromium-driver``, driven
by selenium) against the real system, with a simulated charge point on the
other side. Without the event stream (``GET /api/v1/events`` answers 404 here)
the page polls every 2 s, which is what these tests see.

These tests skip only when Chromium or its driver is missing; ``.ci/run``
installs both. Set ``CSMS_CONSOLE_SCREENSHOT=/path.png`` to keep a screenshot
of the station page.
"""

from __future__ import annotations

import os
import queue
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from tests.support.browser import WAIT, chromium, missing, row_of, sign_in, text_of, until
from tests.support.chargepoint import ChargePoint
from tests.support.system import CentralSystem

pytestmark = pytest.mark.e2e

TAG = "CONSOLE-TAG"


def get(system: CentralSystem, path: str, headers: dict[str, str] | None = None) -> tuple[int, Any, bytes]:
    request = urllib.request.Request(system.api_url + path, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


# -- the files, over plain HTTP ---------------------------------------------------------------


def test_the_console_is_served_at_the_root_of_the_api_port_without_a_key(csms: CentralSystem) -> None:
    status, headers, body = get(csms, "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert b'<script type="module" src="/console/app.js">' in body
    assert "script-src 'self'" in headers["Content-Security-Policy"] and headers["X-Content-Type-Options"] == "nosniff"
    for name, media in (("app.js", "text/javascript"), ("app.css", "text/css")):
        status, headers, body = get(csms, f"/console/{name}")
        assert status == 200 and headers["Content-Type"].startswith(media) and body


def test_a_console_file_is_revalidated_with_its_etag_and_nothing_else_on_disk_is_served(csms: CentralSystem) -> None:
    _, headers, _ = get(csms, "/console/app.js")
    assert get(csms, "/console/app.js", {"If-None-Match": headers["ETag"]})[0] == 304
    for path in ("/console/nope.js", "/console/..%2F..%2Fserver.py", "/console/%2E%2E%2Fconsole.py", "/console/"):
        assert get(csms, path)[0] == 404, path


# -- the console in Chromium ------------------------------------------------------------------


@pytest.fixture(scope="module")
def keys(csms: CentralSystem) -> dict[str, str]:
    csms.ctl_ok("tag", "add", TAG)
    return {scope: csms.ctl_ok("api-key", "create", f"console-{scope}", "--scope", scope)["key"]
            for scope in ("read", "operate")}


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    if (why := missing()) is not None:
        pytest.skip(why)
    with chromium(tmp_path_factory.mktemp("chromium")) as driver:
        yield driver


@pytest.fixture
def cp_handlers() -> dict[str, Any]:
    return {"Reset": lambda payload: {"status": "Accepted"}}


def open_station(driver: Any, system: CentralSystem, station_id: str) -> None:
    driver.get(f"{system.api_url}/#/stations/{station_id}")
    until(driver, lambda d: "Connected" in text_of(d, "#connection"), f"the page of {station_id}, connected")


def received(cp: ChargePoint, action: str, timeout: float = WAIT) -> dict:
    """The payload of the next CALL ``action`` the charge point got (others are skipped), within ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            got, payload = cp.received.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise AssertionError(f"the charge point got no {action} within {timeout}s") from None
        if got == action:
            return payload


def test_the_console_after_a_key_is_entered_lists_a_connected_station(
        csms: CentralSystem, keys: dict[str, str], browser: Any, cp: ChargePoint) -> None:
    sign_in(browser, csms.api_url, keys["operate"])
    line = until(browser, lambda d: "Connected" in (text := row_of(d, cp.station_id)) and text,
                 f"{cp.station_id} listed as connected")
    assert "1: Available" in line and "2: Available" in line and "TestVendor TestModel" in line
    until(browser, lambda d: text_of(d, "#live") == "Live: event stream", "the console on the event stream")
    cp.status(2, "Faulted", error_code="GroundFailure", info="RCD tripped")
    line = until(browser, lambda d: "GroundFailure" in (text := row_of(d, cp.station_id)) and text, "the fault listed")
    assert "2: Faulted" in line and "RCD tripped" in line


def test_the_station_page_shows_the_connector_charging_when_a_transaction_starts(
        csms: CentralSystem, keys: dict[str, str], browser: Any, cp: ChargePoint) -> None:
    sign_in(browser, csms.api_url, keys["operate"])
    open_station(browser, csms, cp.station_id)
    until(browser, lambda d: "No transaction is active" in text_of(d, "#tx-title + *"), "no transaction yet")
    started = datetime.now(timezone.utc) - timedelta(minutes=6)
    cp.status(1, "Preparing")
    tx = cp.start(1, TAG, meter_start=1000, timestamp=iso(started))
    assert tx["idTagInfo"]["status"] == "Accepted", tx
    cp.status(1, "Charging")
    for minute, wh in ((1, 1400), (2, 2300), (3, 3100), (4, 4400), (5, 5200)):
        cp.call("MeterValues", {"connectorId": 1, "transactionId": tx["transactionId"], "meterValue": [
            {"timestamp": iso(started + timedelta(minutes=minute)), "sampledValue": [
                {"value": str(wh), "measurand": "Energy.Active.Import.Register", "unit": "Wh"}]}]})

    until(browser, lambda d: "Charging" in connector_row(d, 1), "connector 1 shown Charging")
    until(browser, lambda d: d.execute_script("return document.querySelectorAll('.chart circle').length") == 6,
          "the meter values drawn")
    section = text_of(browser, 'section[aria-labelledby="tx-title"]')
    assert str(tx["transactionId"]) in section and "4.200 kWh" in section
    assert "Available" in connector_row(browser, 2)
    # The station log (GET /api/v1/stations/{id}/log) is shown, with the boot among its frames.
    log = 'section[aria-labelledby="log-title"]'
    until(browser, lambda d: "BootNotification" in text_of(d, log), "the station log's frames shown")
    assert not browser.execute_script("return document.querySelector(arguments[0]).hidden", log)
    screenshot = os.environ.get("CSMS_CONSOLE_SCREENSHOT")
    if screenshot:
        browser.save_screenshot(str(Path(screenshot)))


def test_a_reset_pressed_in_the_page_reaches_the_charge_point_and_its_answer_is_shown(
        csms: CentralSystem, keys: dict[str, str], browser: Any, cp: ChargePoint) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    sign_in(browser, csms.api_url, keys["operate"])
    open_station(browser, csms, cp.station_id)
    Select(browser.find_element(By.ID, "reset-type")).select_by_visible_text("Hard")
    browser.find_element(By.XPATH, "//button[normalize-space()='Reset']").click()
    assert received(cp, "Reset") == {"type": "Hard"}
    until(browser, lambda d: "Reset: the charge point answered Accepted" in text_of(d, "#answer"), "the answer shown")


def test_a_read_key_pressing_reset_is_told_it_is_not_allowed_and_nothing_is_sent(
        csms: CentralSystem, keys: dict[str, str], browser: Any, cp: ChargePoint) -> None:
    from selenium.webdriver.common.by import By

    sign_in(browser, csms.api_url, keys["read"])
    open_station(browser, csms, cp.station_id)
    browser.find_element(By.XPATH, "//button[normalize-space()='Reset']").click()
    answer = until(browser, lambda d: "not allowed" in (text := text_of(d, "#answer")) and text, "a refusal shown")
    assert "scope read" in answer and "scope operate" in answer
    assert all(action != "Reset" for action, _ in list(cp.received.queue))


def test_the_transactions_page_filters_by_station_tag_and_start_date(
        csms: CentralSystem, keys: dict[str, str], browser: Any, cp: ChargePoint) -> None:
    from selenium.webdriver.common.by import By

    csms.ctl_ok("tag", "add", "FILTER-A")
    csms.ctl_ok("tag", "add", "FILTER-B")
    first = cp.start(1, "FILTER-A")["transactionId"]
    cp.stop(first, 100)
    second = cp.start(2, "FILTER-B")["transactionId"]
    with ChargePoint(csms.url, cp.station_id + "-2", connectors=1) as other:
        other.booted()
        elsewhere = other.start(1, "FILTER-A")["transactionId"]
    sign_in(browser, csms.api_url, keys["read"])

    def listed(hash_: str, expected: set[int], *, among: bool = False) -> None:
        """Open ``hash_``; wait until the ids listed are ``expected`` (``among``: include them)."""
        browser.get(f"{csms.api_url}/{hash_}")
        ids = "return [...document.querySelectorAll('tbody tr td.num:first-child')].map((c) => Number(c.innerText))"
        until(browser, lambda d: "newest first" in text_of(d, "caption") and (
            expected <= set(d.execute_script(ids)) if among else expected == set(d.execute_script(ids))),
            f"{sorted(expected)} listed for {hash_}")

    listed("#/transactions", {first, second, elsewhere}, among=True)
    listed(f"#/transactions?station={cp.station_id}", {first, second})
    listed(f"#/transactions?station={cp.station_id}&tag=filter-a", {first})
    listed("#/transactions?tag=FILTER-A&active=1", {elsewhere})
    today = datetime.now(timezone.utc).date()
    listed(f"#/transactions?station={cp.station_id}&from={today}&to={today}", {first, second})
    listed(f"#/transactions?station={cp.station_id}&to={today - timedelta(days=1)}", set())

    # The form writes the filters into the address, so a filtered list can be bookmarked and shared.
    browser.get(f"{csms.api_url}/#/transactions")
    until(browser, lambda d: "newest first" in text_of(d, "caption"), "the transactions")
    browser.find_element(By.ID, "f-tag").send_keys("filter-b")
    browser.find_element(By.XPATH, "//button[normalize-space()='Apply filters']").click()
    until(browser, lambda d: d.current_url.endswith("#/transactions?tag=filter-b"), "the filter in the address")
    until(browser, lambda d: "FILTER-B" in text_of(d, "tbody") and "FILTER-A" not in text_of(d, "tbody"),
          "only FILTER-B listed")


def test_a_revoked_key_brings_the_key_form_back_and_says_why(
        csms: CentralSystem, browser: Any, cp: ChargePoint) -> None:
    from selenium.webdriver.common.by import By

    key = csms.ctl_ok("api-key", "create", "console-revoked", "--scope", "read")["key"]
    sign_in(browser, csms.api_url, key)
    until(browser, lambda d: row_of(d, cp.station_id), "the station listed")
    csms.ctl_ok("api-key", "revoke", "console-revoked")
    until(browser, lambda d: d.find_element(By.ID, "key").is_displayed(), "the key form, at the next poll")
    assert "refused" in text_of(browser, "#key-message")
    assert browser.execute_script("return sessionStorage.length") == 0 and not row_of(browser, cp.station_id)


def test_a_pending_station_is_approved_from_its_page_with_an_admin_key_and_not_with_an_operate_key(
        tmp_path_factory: pytest.TempPathFactory, browser: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from websockets.exceptions import InvalidStatus

    system = CentralSystem(tmp_path_factory.mktemp("pending"), extra_args=["--unknown-stations", "pending"]).start()
    try:
        keys = {scope: system.ctl_ok("api-key", "create", f"pending-{scope}", "--scope", scope)["key"]
                for scope in ("operate", "admin")}
        with pytest.raises(InvalidStatus):
            ChargePoint(system.url, "WAITING-1").connect(timeout=5)
        approve = 'button[aria-label="Approve WAITING-1"]'

        sign_in(browser, system.api_url, keys["operate"])
        browser.get(system.api_url + "/#/pending")
        until(browser, lambda d: d.find_element(By.CSS_SELECTOR, approve), "WAITING-1 listed").click()
        until(browser, lambda d: "scope admin" in text_of(d, ".answer"), "the refusal shown")
        assert "not allowed" in text_of(browser, ".answer")
        assert [p["id"] for p in system.ctl_ok("station", "list", "--pending")] == ["WAITING-1"]

        sign_in(browser, system.api_url, keys["admin"])
        browser.get(system.api_url + "/#/pending")
        until(browser, lambda d: d.find_element(By.CSS_SELECTOR, approve), "WAITING-1 listed").send_keys(Keys.ENTER)
        until(browser, lambda d: "WAITING-1 is registered" in text_of(d, ".answer"), "the approval shown")
        until(browser, lambda d: "No station is waiting" in text_of(d, "tbody"), "the list emptied")
        assert system.ctl_ok("station", "list", "--pending") == []
        assert "WAITING-1" in {s["id"] for s in system.ctl_ok("station", "list")}
    finally:
        system.stop()


def test_every_page_names_every_control_keeps_it_in_the_tab_order_and_has_readable_contrast(
        csms: CentralSystem, keys: dict[str, str], browser: Any, cp: ChargePoint) -> None:
    from selenium.webdriver.common.by import By

    controls = "button, input, select, a[href], [role=img]"
    browser.get_log("browser")  # the messages of the tests before: gone
    browser.get(csms.api_url + "/")
    browser.execute_script("sessionStorage.clear()")
    browser.get(csms.api_url + "/#/stations")
    until(browser, lambda d: d.find_element(By.ID, "key").is_displayed(), "the key form")
    pages = {"the key form": problems(browser, controls)}
    sign_in(browser, csms.api_url, keys["operate"])
    for name, hash_, ready in (
            ("stations", "#/stations", f'a[href="#/stations/{cp.station_id}"]'),
            ("station", f"#/stations/{cp.station_id}", "#connection .badge"),
            ("transactions", "#/transactions", "form[role=search]"),
            ("pending stations", "#/pending", "tbody tr")):
        browser.get(f"{csms.api_url}/{hash_}")
        until(browser, lambda d: d.execute_script("return !!document.querySelector(arguments[0])", ready), name)  # noqa: B023
        pages[name] = problems(browser, controls)
        assert browser.execute_script("return document.querySelectorAll('main, header, nav[aria-label]').length") == 3
        headings = [h1.text for h1 in browser.find_elements(By.TAG_NAME, "h1") if h1.is_displayed()]
        assert len(headings) == 1 and headings[0], headings
    assert pages == {name: [] for name in pages}, "unnamed or untabbable controls, or text of low contrast"
    assert browser.execute_script("return document.documentElement.lang") == "en"
    # No script error and no Content-Security-Policy violation on any page; the only failed requests
    # are the console's probes of endpoints this server does not have (yet): the event stream, the log.
    probes = ("/api/v1/events - ", f"/api/v1/stations/{cp.station_id}/log - ")
    assert [entry["message"] for entry in browser.get_log("browser") if entry["level"] == "SEVERE"
            and not (entry["source"] == "network" and any(probe in entry["message"] for probe in probes)
                     and "404" in entry["message"])] == []


def problems(driver: Any, css: str) -> list[str]:
    """What fails the smoke check on the page shown: visible controls matching ``css`` whose accessible
    name (the browser's computed one) is empty or that are out of the tab order, and text below the
    WCAG AA contrast (4.5:1; 3:1 for large text) against its nearest opaque background."""
    from selenium.webdriver.common.by import By

    found = []
    for element in driver.find_elements(By.CSS_SELECTOR, css):
        if not element.is_displayed():
            continue
        if not element.accessible_name.strip():
            found.append("no name: " + element.get_attribute("outerHTML")[:120])
        if element.tag_name != "svg" and int(element.get_attribute("tabIndex")) < 0:
            found.append("not in the tab order: " + element.get_attribute("outerHTML")[:120])
    return found + list(driver.execute_script(CONTRAST))


CONTRAST = """
const rgb = (text) => (text.match(/[\\d.]+/g) || []).map(Number);
const channel = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
const luminance = ([r, g, b]) => 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
const background = (element) => {
  for (let e = element; e; e = e.parentElement) {
    const c = rgb(getComputedStyle(e).backgroundColor);
    if (c.length === 3 || c[3] === 1) return c.slice(0, 3);
  }
  return [255, 255, 255];
};
const low = [];
for (const element of document.body.querySelectorAll("*")) {
  if (element.namespaceURI !== "http://www.w3.org/1999/xhtml" || !element.getClientRects().length) continue;
  if (![...element.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim())) continue;
  const style = getComputedStyle(element);
  const [a, b] = [luminance(rgb(style.color)), luminance(background(element))].sort((x, y) => y - x);
  const ratio = (a + 0.05) / (b + 0.05);
  const size = parseFloat(style.fontSize), large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
  if (ratio < (large ? 3 : 4.5)) low.push(`contrast ${ratio.toFixed(2)}: ${element.tagName} ${element.textContent.trim().slice(0, 40)}`);
}
return low;
"""


def connector_row(driver: Any, connector: int) -> str:
    return str(driver.execute_script(
        "for (const row of document.querySelectorAll('#connectors-title + table tbody tr'))"
        "  if (row.querySelector('th').innerText.trim() === String(arguments[0])) return row.innerText;"
        "return '';", connector))


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
