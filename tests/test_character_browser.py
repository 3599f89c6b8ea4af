"""The built-in viewer in a real browser: headless Chromium (Debian) driven by selenium.

The page is opened from the server, tools are called over MCP, and the rendered SVG is read
back: the expression shows on the face, the mouth moves with the speech timeline and closes
after it. `chromium()` is shared with bench/character.py.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import call, http_server, http_session, server_env

# ALPHAAVATAR_TEST_CHROMIUM / ALPHAAVATAR_TEST_CHROMEDRIVER point the lookup elsewhere (or at nothing).
CHROMIUM = os.environ.get("ALPHAAVATAR_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = os.environ.get("ALPHAAVATAR_TEST_CHROMEDRIVER") or shutil.which("chromedriver") or "/usr/bin/chromedriver"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--window-size=520,560"]

needs_chromium = pytest.mark.skipif(not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
                                    reason=f"no Chromium at {CHROMIUM} or no driver at {CHROMEDRIVER}: install chromium "
                                           "and chromium-driver (`make test` does, as root or with sudo)")


@contextlib.contextmanager
def chromium(*extra_flags: str) -> Iterator[Any]:
    """A headless Chromium with a fresh profile; never downloads a browser or a driver."""
    from selenium import webdriver

    with tempfile.TemporaryDirectory() as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # driver.get_log("browser") reads it
        for flag in [*FLAGS, *extra_flags, f"--user-data-dir={profile}"]:
            options.add_argument(flag)
        driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=CHROMEDRIVER))
        try:
            yield driver
        finally:
            driver.quit()


def svg_state(driver: Any) -> dict[str, Any]:
    return driver.execute_script("""
        const s = document.getElementById('avatar');
        return {...s.dataset, mouth_d: document.getElementById('mouth').getAttribute('d'),
                blush: getComputedStyle(document.getElementById('blush-l')).opacity,
                pupil: document.querySelector('#eye-l .pupil').getAttribute('transform')};""")


def wait_page(driver: Any, predicate: Any, within: float = 10.0) -> dict[str, Any]:
    deadline = time.time() + within
    while True:
        state = svg_state(driver)
        if predicate(state):
            return state
        if time.time() > deadline:
            raise TimeoutError(f"the page never reached the expected state; last: {state}")
        time.sleep(0.03)


@needs_chromium
async def test_viewer_renders_expressions_and_speech(tmp_path: Path) -> None:
    with http_server(["serve", "character", "--transport", "http"], server_env(tmp_path)) as base, chromium() as driver:
        driver.get(f"{base}/")
        neutral = wait_page(driver, lambda s: s["connected"] == "true")
        assert neutral["emotion"] == "neutral"
        async with http_session(f"{base}/mcp") as session:
            res = await call(session, "character_express", {"emotion": "happy", "intensity": 1.0, "fade_in_ms": 50})
            happy = wait_page(driver, lambda s: s["emotion"] == "happy" and float(s["blush"]) > 0.5)
            assert int(happy["seq"]) == res.data["seq"]
            assert happy["mouth_d"] != neutral["mouth_d"]  # the smile is drawn
            await call(session, "character_gaze", {"x": 1.0, "y": 0.0})
            wait_page(driver, lambda s: s["pupil"].startswith("translate(9"))  # pupils follow the gaze

            res = await call(session, "character_speak", {"text": "Hello! I am speaking for a little while now."})
            utterance = res.data["utterance_id"]
            wait_page(driver, lambda s: s["utterance"] == utterance and s["state"] == "speaking")
            seen = []
            end = time.time() + res.data["duration_ms"] / 1000
            while time.time() < end:
                seen.append(float(svg_state(driver)["mouth"]))
                time.sleep(0.03)
            assert max(seen) > 0.5 and min(seen) < max(seen)  # the mouth opens and moves
            wait_page(driver, lambda s: s["state"] == "idle" and float(s["mouth"]) == 0.0, within=5)
            log = driver.execute_script("return window.__alphaavatar.log")
            assert {e["kind"] for e in log} >= {"expression", "gaze", "speech", "state"}
