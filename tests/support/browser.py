"""A real headless Chromium for the web console's tests, driven by selenium (tests/e2e/test_console*.py).

Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them);
nothing is downloaded (no Selenium Manager: both paths are given). Each
browser gets a fresh profile in a temporary folder.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# Without the background-networking flags Chromium keeps trying to reach Google's services,
# and this machine's closed network refuses those connections.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1280,1400")
WAIT = 20.0  # seconds: a few polling rounds of the page (2 s) and a browser start on a busy machine


def missing() -> str | None:
    """Why there is no browser to test with, or None."""
    if os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK):
        return None
    return "needs Debian's chromium and chromium-driver (.ci/run installs them)"


@contextmanager
def chromium(folder: Path) -> Iterator[Any]:
    """A selenium driver of a headless Chromium whose profile and driver log live in ``folder``."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={folder / 'profile'}"):
        options.add_argument(flag)
    service = Service(executable_path=CHROMEDRIVER, log_output=str(folder / "chromedriver.log"))
    driver = webdriver.Chrome(service=service, options=options)
    try:
        yield driver
    finally:
        driver.quit()


def until(driver: Any, condition: Any, message: str, timeout: float = WAIT) -> Any:
    """Wait (at most ``timeout`` seconds) until ``condition(driver)`` is true; its value."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.1,
                         ignored_exceptions=(StaleElementReferenceException,)).until(condition, message)


def text_of(driver: Any, css: str) -> str:
    """The text of the first element matching ``css`` ('' when there is none), read in one step."""
    return str(driver.execute_script("const e = document.querySelector(arguments[0]); return e ? e.innerText : '';", css))


def sign_in(driver: Any, base_url: str, key: str) -> None:
    """Open the console with an empty session, enter ``key`` in its form, wait for the signed-in page."""
    from selenium.webdriver.common.by import By

    driver.get(base_url + "/")
    driver.execute_script("sessionStorage.clear()")
    driver.get(base_url + "/#/stations")
    driver.refresh()  # a hash change alone keeps the page (and its event stream) of the key before
    field = until(driver, lambda d: d.find_element(By.ID, "key").is_displayed() and d.find_element(By.ID, "key"),
                  "the key form")
    field.send_keys(key)
    driver.find_element(By.XPATH, "//button[normalize-space()='Use this key']").click()
    until(driver, lambda d: d.find_element(By.ID, "nav").is_displayed(), "the console after the key")


def row_of(driver: Any, station_id: str) -> str:
    """The text of the stations list's row of ``station_id`` ('' when it is not listed)."""
    return str(driver.execute_script(
        "const a = document.querySelector(arguments[0]); return a ? a.closest('tr').innerText : '';",
        f'a[href="#/stations/{station_id}"]'))
