"""The boot test and (with the NumPy wheel) one camera answer in Firefox ESR and WebKit."""

from __future__ import annotations

import importlib.util

import pytest
import engines
from e2e_support import BOOT_TIMEOUT_MS, needs_numpy

pytestmark = pytest.mark.filterwarnings("ignore:setting remote_server_addr:DeprecationWarning")

WAIT_BOOT_JS = f"""(async () => {{
    const deadline = Date.now() + {BOOT_TIMEOUT_MS};
    while (Date.now() < deadline) {{
        if (window.tinyVLM && window.tinyVLM.client) return {{ok: true, info: window.tinyVLM.client.info, progress: window.tinyVLM.progress}};
        const error = document.querySelector('[data-testid=error]');
        if (error && !error.hidden) return {{ok: false, error: error.textContent, progress: window.tinyVLM ? window.tinyVLM.progress : []}};
        await new Promise(r => setTimeout(r, 200));
    }}
    return {{ok: false, error: "timeout"}};
}})()"""

ANSWER_JS = """(async () => {
    const video = document.querySelector('[data-testid=preview]');
    const until = async (f, ms) => { const end = Date.now() + ms; while (!f()) { if (Date.now() > end) return false; await new Promise(r => setTimeout(r, 100)); } return true; };
    const camera = await until(() => video.videoWidth > 0, 20000);
    const start = document.querySelector('[data-testid=start]');
    await until(() => !start.disabled, 5000);
    start.click();
    await until(() => window.tinyVLM.answers >= 1 && !window.tinyVLM.running, 240000);
    const error = document.querySelector('[data-testid=error]');
    return {camera, videoWidth: video.videoWidth, answers: window.tinyVLM.answers,
            text: document.querySelector('[data-testid=answer]').textContent,
            error: error.hidden ? null : error.textContent, result: window.tinyVLM.lastResult};
})()"""


def open_engine(name):
    if name == "firefox":
        if not engines.FIREFOX:
            pytest.skip("Firefox ESR is not installed (apt-get install firefox-esr)")
        if importlib.util.find_spec("websockets") is None:
            pytest.skip("pip install websockets (the WebDriver BiDi client for Firefox)")
        return engines.Firefox()
    if not (engines.WEBKIT_DRIVER and engines.MINIBROWSER.exists()):
        pytest.skip("WebKitGTK is not installed (apt-get install webkit2gtk-driver)")
    if importlib.util.find_spec("selenium") is None:
        pytest.skip("pip install selenium (drives WebKitWebDriver)")
    if not engines.XVFB:
        pytest.skip("Xvfb is not installed (apt-get install xvfb): MiniBrowser has no headless mode")
    return engines.WebKit()


@pytest.fixture(scope="module", params=["firefox", "webkit"])
def engine(request, site):
    browser = open_engine(request.param)
    browser.name = request.param
    browser.open(site.url)
    browser.boot = browser.evaluate(WAIT_BOOT_JS, timeout_s=BOOT_TIMEOUT_MS / 1000 + 30)
    yield browser
    browser.close()


def test_boot(site, engine, latency):
    stages = {p["stage"] for p in engine.boot.get("progress", [])}
    assert {"pyodide", "wheel"} <= stages, engine.boot
    if not site.numpy_local:
        assert "NumPy" in engine.boot["error"]
        pytest.skip(site.numpy_reason)
    assert engine.boot["ok"], engine.boot
    assert engine.boot["info"]["pyodide"] == "314.0.4"
    latency[f"{engine.name}_boot_ms"] = engine.boot["info"]["timings"]["boot_ms"]
    latency[f"{engine.name}_version"] = engine.version


def test_one_answer(site, engine, latency):
    needs_numpy(site)
    result = engine.evaluate(ANSWER_JS, timeout_s=300)
    assert result["camera"], f"{engine.name}: the fake camera delivered no frame"
    assert result["error"] is None, result["error"]
    assert result["answers"] == 1 and result["text"].strip(), result
    stats = result["result"]["stats"]
    latency[f"{engine.name}_ttft_ms"] = stats["ttft_ms"]
    latency[f"{engine.name}_decode_ms_per_token"] = stats["decode_ms_per_token"]
    assert engine.errors == [], engine.errors
