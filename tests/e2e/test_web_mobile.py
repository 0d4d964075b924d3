"""A phone-sized run: 375x812, touch, mobile user agent; also the README screenshot."""

from __future__ import annotations

import pytest
from e2e_support import ANSWER_TIMEOUT_MS, MOBILE, copy_screenshot


@pytest.fixture(scope="module")
def phone(site, open_app):
    return open_app(site.url, **MOBILE)


def test_layout_fits_375px_with_touch_sized_controls(phone):
    page = phone.page
    page.locator("[data-testid=preview]").wait_for(state="visible")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    for testid in ("start", "stop", "prompt", "preset-describe", "continuous"):
        box = page.locator(f"[data-testid={testid}]").bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= 375, (testid, box)
        if testid != "continuous":
            assert box["height"] >= 44, (testid, box)
    label = page.locator("label[for=upload]").bounding_box()
    assert label["height"] >= 44


def test_mobile_answer_and_screenshot(site, phone, tmp_path):
    page = phone.page
    boot = phone.wait_boot()
    if not site.numpy_local:
        assert "NumPy" in boot
        pytest.skip(site.numpy_reason)
    assert boot == "ready"
    page.tap("[data-testid=preset-describe]")
    page.tap("[data-testid=start]")
    page.wait_for_function("window.tinyVLM.answers >= 1 && !window.tinyVLM.running", timeout=ANSWER_TIMEOUT_MS)
    assert page.text_content("[data-testid=answer]").strip()
    assert phone.errors == []
    shot = tmp_path / "screenshot-mobile.png"
    page.evaluate("document.querySelector('[data-testid=prompt]').blur()")
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(shot))  # the phone viewport, as a person sees it
    copy_screenshot(shot, "screenshot-mobile.png")
