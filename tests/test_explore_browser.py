"""The explorer in a real browser: Debian's chromium and chromium-driver, driven
by Selenium (make test installs both where apt-get can). The page runs on a
model exported by export's own pipeline (random weights), so what the page
says Q reads is checked against the Encoder API on the very image the page
shows as its input, rather than against the digit a person meant."""

from __future__ import annotations

import io
import os
import shutil
import time
import urllib.request

import numpy as np
import pytest
from PIL import Image

from infogan.client import Encoder

pytest.importorskip("gradio")
webdriver = pytest.importorskip("selenium.webdriver")

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
if not (CHROMIUM and DRIVER):
    if os.environ.get("CI"):
        raise RuntimeError("CI needs chromium and chromium-driver for the browser test: apt-get install chromium chromium-driver")
    pytest.skip("chromium and chromium-driver are not installed (make test installs them with apt-get)",
                allow_module_level=True)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def browser():
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def css(driver, selector):
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, selector)


def wait(driver, condition, seconds: float = 30):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, seconds, poll_frequency=0.05).until(condition)


def fetch_png(url: str) -> np.ndarray:
    with urllib.request.urlopen(url, timeout=10) as r:
        return np.asarray(Image.open(io.BytesIO(r.read())).convert("L"))


def page_reading(driver) -> str:
    text = css(driver, "#codes-read").text
    return text.split("Q reads:", 1)[1].split("\n", 1)[0].strip()


def test_a_person_turns_a_code_draws_a_digit_and_uploads_one(explore_page, browser, explore_repo, tmp_path, data_dir):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    from infogan.client.images import read_idx_images

    enc = Encoder.from_repository(explore_repo)
    browser.get(explore_page)
    grid_src = lambda d: css(d, "#grid img").get_attribute("src")  # noqa: E731
    first = wait(browser, grid_src)
    before = fetch_png(first)
    assert before.shape == (8 * 30 + 2, 8 * 30 + 2)  # the 8x8 grid of the default batch

    # move code 0's slider with the keyboard, as a person would: the grid changes
    css(browser, "#code0 input[type=range]").send_keys(Keys.ARROW_RIGHT * 6)
    changed = wait(browser, lambda d: grid_src(d) != first and grid_src(d))
    assert css(browser, "#code0 input[type=number]").get_attribute("value") == "0.3"
    assert not np.array_equal(fetch_png(changed), before)
    assert css(browser, "#status").text == ""

    # draw a 7 on the canvas with the mouse and ask Q
    browser.find_element(By.XPATH, "//button[@role='tab' and contains(., 'Encode')]").click()
    canvas = wait(browser, lambda d: css(d, "#canvas canvas"))
    wait(browser, lambda d: css(d, "#canvas button[aria-label=Brush]")).click()
    stroke = ActionChains(browser).move_to_element_with_offset(canvas, -60, -100).click_and_hold()
    for _ in range(6):
        stroke.move_by_offset(20, 0)
    for _ in range(10):
        stroke.move_by_offset(-8, 20)
    stroke.release().perform()
    time.sleep(0.5)  # the canvas settles its layer before the read
    css(browser, "#read-drawing").click()
    wait(browser, lambda d: "Q reads" in css(d, "#codes-read").text)
    assert "280x280" in css(browser, "#codes-read").text or "cropped to the stroke" in css(browser, "#codes-read").text
    shown = fetch_png(css(browser, "#reconstruction img").get_attribute("src"))
    drawn = shown[2:30, 2:30].astype(np.float32)[None, None] / 255.0  # the page's input, as Q got it
    assert (drawn > 0.5).sum() > 30  # a stroke, not a blank
    expected = enc.encode(drawn)
    assert page_reading(browser) == str(expected.labels[0])
    top = css(browser, "#probabilities").text.splitlines()
    assert any(line.startswith(f"{expected.labels[0]} (category {expected.categories[0]})") for line in top)

    # upload an MNIST test digit as a PNG: the page reads what the API reads
    digit = read_idx_images(data_dir / "mnist" / "t10k-images-idx3-ubyte")[7]
    png = tmp_path / "digit.png"
    Image.fromarray(np.round(digit[0] * 255).astype(np.uint8)).save(png)
    reading_before = css(browser, "#codes-read").text
    css(browser, "#upload input[type=file]").send_keys(str(png))
    wait(browser, lambda d: css(d, "#codes-read").text != reading_before and "digit.png" in css(d, "#codes-read").text)
    assert page_reading(browser) == str(enc.encode(digit[None]).labels[0])

    browser.save_screenshot(str(tmp_path / "explorer.png"))
    assert (tmp_path / "explorer.png").stat().st_size > 10_000
