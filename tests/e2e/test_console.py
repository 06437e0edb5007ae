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
    assert b'<script src="/console/app.js"' in body
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
    assert text_of(browser, "#live") == "Live: polling every 2 s"  # no event stream on this server (404)
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
    section = text_of(browser, ".grid + section")
    assert str(tx["transactionId"]) in section and "4.200 kWh" in section
    assert "Available" in connector_row(browser, 2)
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


def test_every_button_and_input_of_every_page_has_an_accessible_name(
        csms: CentralSystem, keys: dict[str, str], browser: Any, cp: ChargePoint) -> None:
    from selenium.webdriver.common.by import By

    controls = "button, input, select, a[href], [role=img]"
    browser.get_log("browser")  # the messages of the tests before: gone
    browser.get(csms.api_url + "/")
    browser.execute_script("sessionStorage.clear()")
    browser.get(csms.api_url + "/#/stations")
    until(browser, lambda d: d.find_element(By.ID, "key").is_displayed(), "the key form")
    pages = {"the key form": unnamed(browser, controls)}
    sign_in(browser, csms.api_url, keys["operate"])
    for name, hash_, ready in (
            ("stations", "#/stations", f'a[href="#/stations/{cp.station_id}"]'),
            ("station", f"#/stations/{cp.station_id}", "#connection .badge"),
            ("transactions", "#/transactions", "form[role=search]"),
            ("pending stations", "#/pending", "tbody tr")):
        browser.get(f"{csms.api_url}/{hash_}")
        until(browser, lambda d: d.execute_script("return !!document.querySelector(arguments[0])", ready), name)  # noqa: B023
        pages[name] = unnamed(browser, controls)
        assert browser.execute_script("return document.querySelectorAll('main, header, nav[aria-label]').length") == 3
        headings = [h1.text for h1 in browser.find_elements(By.TAG_NAME, "h1") if h1.is_displayed()]
        assert len(headings) == 1 and headings[0], headings
    assert pages == {name: [] for name in pages}, "controls without an accessible name"
    assert browser.execute_script("return document.documentElement.lang") == "en"
    # No script error and no Content-Security-Policy violation on any page; the only failed requests
    # are the console's probes of endpoints this server does not have (yet): the event stream, the log.
    probes = ("/api/v1/events - ", f"/api/v1/stations/{cp.station_id}/log - ")
    assert [entry["message"] for entry in browser.get_log("browser") if entry["level"] == "SEVERE"
            and not (entry["source"] == "network" and any(probe in entry["message"] for probe in probes)
                     and "404" in entry["message"])] == []


def unnamed(driver: Any, css: str) -> list[str]:
    """The visible controls matching ``css`` whose computed accessible name (the browser's) is empty."""
    from selenium.webdriver.common.by import By

    return [element.get_attribute("outerHTML")[:120] for element in driver.find_elements(By.CSS_SELECTOR, css)
            if element.is_displayed() and not element.accessible_name.strip()]


def connector_row(driver: Any, connector: int) -> str:
    return str(driver.execute_script(
        "for (const row of document.querySelectorAll('#connectors-title + table tbody tr'))"
        "  if (row.querySelector('th').innerText.trim() === String(arguments[0])) return row.innerText;"
        "return '';", connector))


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
