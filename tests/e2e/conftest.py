"""Browser end-to-end fixtures: one built site, one server, one Chromium for the whole run.

The site is built by build.py into a temporary folder (the model build.py picks: the single
trained model under models/, $TINY_VLM_E2E_MODEL, or a tiny random one) and served by
serve.py's handler on a free port. Chromium is Debian's (/usr/bin/chromium, or
$TINY_VLM_CHROMIUM), driven by Playwright for Python; its fake camera plays a .y4m made
from a rendered scene of known objects (the model's labels.json names them).

Tests that need NumPy inside Pyodide run when the official wheel is available locally
(see build.py) and are skipped with the reason otherwise.
"""

from __future__ import annotations

import json
import time

import pytest

import scene
from e2e_support import (
    CAMERA_SIZE, CHROMIUM, CHROMIUM_ARGS, RESULTS_DIR, App, Site, build, build_site, start_server,
)


@pytest.fixture(scope="session")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site") / "dist"
    build_site(out)
    manifest = json.loads((out / "manifest.json").read_text())
    labels_path = out / "model" / "labels.json"
    labels = json.loads(labels_path.read_text()) if labels_path.is_file() else None
    metrics_path = out / "model" / "metrics.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else None
    reason = "" if manifest["numpy"]["source"] == "local" else (
        f"NumPy for Pyodide ({manifest['numpy']['file']}) is not available locally: put it in "
        f"{build.DEFAULT_PACKAGES_DIR} or $TINY_VLM_PYODIDE_PACKAGES (tests never use the CDN)")
    server, url = start_server(out)
    yield Site(out, url, manifest, labels, reason, metrics)
    server.shutdown()


@pytest.fixture(scope="session")
def scene_files(tmp_path_factory, site):
    folder = tmp_path_factory.mktemp("scene")
    objects = scene.pick_objects(site.labels)
    image = scene.render_scene(objects, *CAMERA_SIZE)
    image.save(folder / "scene.png")
    scene.write_y4m(image, folder / "scene.y4m")
    return {"objects": objects, "png": folder / "scene.png", "y4m": folder / "scene.y4m"}


@pytest.fixture(scope="session")
def chromium(scene_files):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found: apt-get install chromium")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (never `playwright install`)")
    playwright = sync_api.sync_playwright().start()
    browser = playwright.chromium.launch(
        executable_path=str(CHROMIUM),
        args=CHROMIUM_ARGS + [f"--use-file-for-fake-video-capture={scene_files['y4m']}"],
    )
    yield browser
    browser.close()
    playwright.stop()


OPENED = []  # every App open_app made, in order


@pytest.fixture(scope="module", autouse=True)
def close_the_module_s_apps():
    """A test module's pages are closed when the module ends: a page left open keeps its worker,
    Pyodide and the model running, and slows every later test on a 2-core machine."""
    first = len(OPENED)
    yield
    for app in OPENED[first:]:
        close_quietly(app)


def close_quietly(app) -> None:
    try:
        app.context.close()
    except Exception:  # closed already (its module ended first)
        pass


@pytest.fixture(scope="session")
def open_app(chromium):
    """open_app(url, camera=True, init_script=None, **context_options) -> App, closed with its test module."""
    apps = OPENED

    def _open(url, camera=True, init_script=None, **options):
        context = chromium.new_context(permissions=["camera"] if camera else [], **options)
        if init_script:
            context.add_init_script(init_script)
        page = context.new_page()
        app = App(context, page)
        page.on("console", lambda m: m.type == "error" and app.errors.append(f"console: {m.text}"))
        page.on("pageerror", lambda e: app.errors.append(f"pageerror: {e}"))
        page.goto(url)
        apps.append(app)
        return app

    yield _open
    for app in apps:
        close_quietly(app)


@pytest.fixture(scope="session")
def latency():
    """Numbers the tests measure; written to bench-results/e2e-latency.json at the end."""
    record = {}
    yield record
    if record:
        RESULTS_DIR.mkdir(exist_ok=True)
        record["date"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        (RESULTS_DIR / "e2e-latency.json").write_text(json.dumps(record, indent=1) + "\n")
        print(f"\n[e2e] latency written to {RESULTS_DIR / 'e2e-latency.json'}: {json.dumps(record)}")
