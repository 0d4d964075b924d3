"""A phone-sized run: 375x812, touch, mobile user agent; also the README screenshot. And the
app installs to a phone's home screen (web app manifest, icons)."""

from __future__ import annotations

import json
import tempfile

import pytest
from e2e_support import ANSWER_TIMEOUT_MS, CHROMIUM, CHROMIUM_ARGS, MOBILE, copy_screenshot


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


def test_the_app_can_be_installed_to_the_home_screen(site, chromium):
    """Chromium's own installability check finds nothing missing (it needs a profile on disk: a
    private window is never installable), and the manifest's icons are the sizes it says."""
    from PIL import Image

    with tempfile.TemporaryDirectory() as profile:
        context = chromium.browser_type.launch_persistent_context(profile, executable_path=str(CHROMIUM), args=CHROMIUM_ARGS,
                                                                 headless=True, **MOBILE)
        try:
            page = context.new_page()
            page.goto(site.url)
            page.evaluate("navigator.serviceWorker.ready.then(() => true)")
            cdp = context.new_cdp_session(page)
            assert cdp.send("Page.getInstallabilityErrors")["installabilityErrors"] == []
            manifest = cdp.send("Page.getAppManifest")
            assert manifest["url"].endswith("/manifest.webmanifest") and manifest["errors"] == []
        finally:
            context.close()
    data = json.loads((site.path / "manifest.webmanifest").read_text())
    assert data["short_name"] == "tiny-vlm" and data["display"] == "standalone" and data["start_url"] == "./"
    for icon in data["icons"]:
        assert icon["src"] in site.manifest["files"], f"{icon['src']} is not in the site (nor in the offline copy)"
        if icon["type"] == "image/png":
            with Image.open(site.path / icon["src"]) as im:
                assert f"{im.width}x{im.height}" == icon["sizes"], icon
    assert any(icon["sizes"] == "512x512" and "maskable" in icon["purpose"] for icon in data["icons"])
