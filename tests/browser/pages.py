"""A headless Chromium driven by selenium, with bounded waits that say what they waited for and what the
page showed instead, and screenshots under `tests/browser/screenshots/` (kept by CI as artifacts)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from selenium.common.exceptions import (
    ElementClickInterceptedException,
    NoSuchElementException,
    StaleElementReferenceException,
)
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement

SCREENSHOTS = Path(__file__).parent / "screenshots"
WAIT_S = 60
POLL_S = 0.5
T = TypeVar("T")
_TRANSIENT = (NoSuchElementException, StaleElementReferenceException, ElementClickInterceptedException)
"""What a page being re-rendered raises for a moment: polled again, not failed."""


def button_xpath(label: str, *, prefix: bool = False) -> str:
    """A button whose visible text is `label` (or starts with it)."""
    test = f"starts-with(normalize-space(), '{label}')" if prefix else f"normalize-space()='{label}'"
    return f"//button[{test}] | //*[@role='button'][{test}]"


class Browser:
    """One Chromium window (`driver`) and the folder its screenshots go to."""

    def __init__(self, driver: WebDriver, screenshots: Path = SCREENSHOTS) -> None:
        self.driver = driver
        self.screenshots = screenshots
        screenshots.mkdir(parents=True, exist_ok=True)

    def open(self, url: str) -> None:
        self.driver.get(url)

    def text(self) -> str:
        """What the page shows, as text."""
        try:
            return self.driver.find_element("tag name", "body").text
        except _TRANSIENT:
            return ""

    def shot(self, name: str) -> Path:
        """The window as `<screenshots>/<name>.png`."""
        path = self.screenshots / f"{name}.png"
        self.driver.save_screenshot(str(path))
        return path

    def wait(self, condition: Callable[[], T], what: str, timeout_s: float = WAIT_S) -> T:
        """The first truthy value of `condition()`, polled for at most `timeout_s`; else an AssertionError
        naming `what` and quoting the page (a screenshot `timeout-<what>` is saved)."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                value = condition()
            except _TRANSIENT:
                value = None
            if value:
                return value
            if time.monotonic() > deadline:
                slug = re.sub(r"[^a-z0-9]+", "-", what.lower()).strip("-")[:60]
                self.shot(f"timeout-{slug}")
                raise AssertionError(f"waited {timeout_s:.0f} s for {what} at {self.driver.current_url}; "
                                     f"the page shows:\n{self.text()[:2000]}")
            time.sleep(POLL_S)

    def visible(self, xpath: str) -> list[WebElement]:
        """The displayed elements matching `xpath`."""
        return [element for element in self.driver.find_elements("xpath", xpath) if element.is_displayed()]

    def find(self, xpath: str, what: str, timeout_s: float = WAIT_S) -> WebElement:
        """The first displayed element matching `xpath`, waited for."""
        return self.wait(lambda: next(iter(self.visible(xpath)), None), what, timeout_s)

    def click(self, xpath: str, what: str, timeout_s: float = WAIT_S) -> None:
        """Click the first displayed and enabled element matching `xpath`, waiting until one can be."""

        def clicked() -> bool:
            for element in self.visible(xpath):
                if element.is_enabled():
                    element.click()
                    return True
            return False

        self.wait(clicked, f"a clickable {what}", timeout_s)

    def wait_for_text(self, pattern: str, what: str, timeout_s: float = WAIT_S) -> re.Match:
        """The first match of the regular expression `pattern` in the page's text, waited for."""
        return self.wait(lambda: re.search(pattern, self.text()), what, timeout_s)

    def table(self, element: WebElement) -> list[list[str]]:
        """The text of each cell of the HTML table `element`, row by row (header row first)."""
        return self.driver.execute_script(
            "return [...arguments[0].rows].map(row => [...row.cells].map(cell => cell.innerText.trim()));",
            element)

    def dismiss(self, xpath: str) -> None:
        """Click every displayed element matching `xpath` (a dialog's or panel's close button), if any."""
        for element in self.visible(xpath):
            element.click()
