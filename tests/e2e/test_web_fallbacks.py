"""No camera permission, image upload, no WASM SIMD, no local NumPy, no labels.json: a clear message, never a blank page."""

from __future__ import annotations

import shutil

import pytest
from e2e_support import ANSWER_TIMEOUT_MS, build_site, needs_numpy, start_server


@pytest.fixture(scope="module")
def denied(site, open_app):
    return open_app(site.url, camera=False)


def test_denied_camera_shows_message_and_upload(denied):
    message = denied.page.locator("[data-testid=camera-message]")
    message.wait_for(state="visible")
    assert "denied" in message.text_content().lower()
    assert "upload" in message.text_content().lower()
    assert denied.page.is_hidden("[data-testid=preview]")
    assert denied.page.is_enabled("[data-testid=upload]")
    assert denied.page.locator("label[for=upload]").is_visible()


def test_upload_path(site, denied, scene_files):
    page = denied.page
    page.set_input_files("[data-testid=upload]", str(scene_files["png"]))
    page.locator("[data-testid=still]").wait_for(state="visible")
    assert page.is_hidden("[data-testid=camera-message]")
    boot = denied.wait_boot()
    if not site.numpy_local:
        assert "NumPy" in boot, boot
        pytest.skip(site.numpy_reason)
    assert boot == "ready"
    page.click("[data-testid=start]")
    page.wait_for_function("window.tinyVLM.answers >= 1 && !window.tinyVLM.running", timeout=ANSWER_TIMEOUT_MS)
    assert page.text_content("[data-testid=answer]").strip()
    assert page.is_hidden("[data-testid=error]")
    assert denied.errors == []


def test_drop_an_image(site, denied, scene_files):
    page = denied.page
    data = scene_files["png"].read_bytes()
    page.evaluate("""async (bytes) => {
        const file = new File([new Uint8Array(bytes)], "scene.png", {type: "image/png"});
        const dt = new DataTransfer(); dt.items.add(file);
        const zone = document.querySelector('[data-testid=dropzone]');
        zone.dispatchEvent(new DragEvent("drop", {dataTransfer: dt, bubbles: true, cancelable: true}));
    }""", list(data))
    page.wait_for_function("document.querySelector('[data-testid=still]').width === 480")


def test_an_uploaded_image_turns_the_camera_off_until_use_camera(site, open_app, scene_files):
    app = open_app(site.url)
    page = app.page
    page.locator("[data-testid=preview]").wait_for(state="visible")
    page.set_input_files("[data-testid=upload]", str(scene_files["png"]))
    page.locator("[data-testid=still]").wait_for(state="visible")
    assert page.evaluate("document.querySelector('[data-testid=preview]').srcObject") is None  # camera (and its light) off
    assert page.is_hidden("[data-testid=preview]") and page.is_visible("[data-testid=use-camera]")
    assert page.input_value("[data-testid=upload]") == ""  # emptied: choosing the same file again fires `change`
    page.click("[data-testid=use-camera]")
    page.wait_for_function("document.querySelector('[data-testid=preview]').srcObject?.active === true")
    assert page.is_visible("[data-testid=preview]") and page.is_hidden("[data-testid=still]")
    assert page.is_hidden("[data-testid=use-camera]") and page.is_hidden("[data-testid=error]")
    assert app.errors == []


def test_no_wasm_simd_gives_a_clear_message(site, open_app):
    app = open_app(site.url, init_script="WebAssembly.validate = () => false;")
    error = app.page.locator("[data-testid=error]")
    error.wait_for(state="visible")
    assert "WebAssembly SIMD" in error.text_content()
    assert "cannot run" in app.page.text_content("[data-testid=status]")
    assert app.page.is_disabled("[data-testid=start]")
    assert app.page.is_hidden("[data-testid=upload]") and app.page.is_hidden("label[for=upload]")  # no dead controls
    assert app.errors == []


def test_numpy_from_cdn_unreachable_is_reported(tmp_path_factory, open_app):
    out = tmp_path_factory.mktemp("cdn-site") / "dist"
    build_site(out, "--numpy-from-cdn")
    server, url = start_server(out)
    try:
        app = open_app(url)
        app.context.route("https://cdn.jsdelivr.net/**", lambda route: route.abort())
        boot = app.wait_boot()
        assert "NumPy could not be loaded from https://cdn.jsdelivr.net/pyodide/v314.0.4/full/" in boot, boot
        assert app.page.text_content("[data-testid=status]") == "Could not load the model."
    finally:
        server.shutdown()


def test_offline_after_first_load(site, open_app):
    needs_numpy(site)
    app = open_app(site.url)
    assert app.wait_boot() == "ready"
    # the service worker controls the page and has stored every file of the manifest (each one
    # by name: a count could be reached with files still missing)
    missing = app.page.evaluate("""async (paths) => {
        const urls = ["manifest.json", "./", ...paths].map((p) => new URL(p, location.href).href);
        let missing = urls;
        for (let i = 0; i < 600; i++) {
            const cache = await caches.open("tiny-vlm-v2");
            missing = [];
            for (const url of urls) if (!(await cache.match(url))) missing.push(url);
            if (navigator.serviceWorker.controller && missing.length === 0) return [];
            await new Promise(r => setTimeout(r, 100));
        }
        return missing;
    }""", sorted(site.manifest["files"]))
    assert missing == [], f"not stored within 60 s: {missing}"
    app.context.set_offline(True)
    try:
        app.page.reload()
        assert app.wait_boot() == "ready"
        assert app.page.evaluate("window.tinyVLM.client.info.numpy.source") == "local"
    finally:
        app.context.set_offline(False)
    assert app.errors == []


def test_a_model_without_labels_json_shows_its_own_words_and_no_list(site, open_app, tmp_path_factory):
    """A model shipped without labels.json (the runtime does not need it): the app boots and
    answers, and "What can it see?" shows the weights' `about` text and no object list."""
    needs_numpy(site)
    from tiny_vlm.weights import load_weights

    about = load_weights(site.path / "model" / "model.safetensors").metadata.get("about")
    if not about:
        pytest.skip("the site's model has no `about` metadata: without labels.json its panel stays hidden")
    model = tmp_path_factory.mktemp("model") / "no-labels"
    shutil.copytree(site.path / "model", model, ignore=shutil.ignore_patterns("labels.json", "*.gz"))
    out = tmp_path_factory.mktemp("no-labels-site") / "dist"
    build_site(out, "--model", str(model))
    assert not (out / "model" / "labels.json").exists()
    server, url = start_server(out)
    try:
        app = open_app(url)
        assert app.wait_boot() == "ready"
        page = app.page
        page.wait_for_function("!document.querySelector('[data-testid=about-model]').hidden")
        assert page.text_content("#about-summary") == "What can it see?"  # no count without the list
        assert page.is_hidden("[data-testid=label-list]")
        page.click("#about-summary")
        assert page.is_visible("[data-testid=about-text]") and page.text_content("[data-testid=about-text]") == about
        page.click("[data-testid=start]")
        page.wait_for_function("window.tinyVLM.answers >= 1 && !window.tinyVLM.running", timeout=ANSWER_TIMEOUT_MS)
        assert page.text_content("[data-testid=answer]").strip()
        assert app.errors == []
    finally:
        server.shutdown()
