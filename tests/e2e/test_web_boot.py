"""Boot caching: after one visit a reload reads nothing from the network and Pyodide starts
from a memory snapshot; a new version of the site is fetched in the background; a bad
snapshot is replaced. Each test serves its own copy of the site through a server that counts
the bytes it sends."""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest

from e2e_support import CountingServer, needs_numpy

CACHE = "tiny-vlm-v2"
SNAPSHOT_CACHE = "tiny-vlm-v2-pyodide-snapshot"

# Resolves once the service worker controls the page, holds every file of the manifest and
# the manifest itself, and the worker has stored its Pyodide snapshot and the bytecode.
STORED_JS = """async ([paths, cacheName, snapshotCache]) => {
    const urls = ["manifest.json", "./", ...paths].map((p) => new URL(p, location.href).href);
    for (let i = 0; i < 600; i++) {
        const cache = await caches.open(cacheName);
        let missing = 0;
        for (const url of urls) if (!(await cache.match(url))) missing++;
        const snapshots = (await (await caches.open(snapshotCache)).keys()).length;
        if (navigator.serviceWorker.controller && missing === 0 && snapshots === 2) return {snapshots};
        await new Promise(r => setTimeout(r, 100));
    }
    return null;
}"""

ANSWER_JS = """async () => {
    const image = new ImageData(96, 96);
    for (let i = 0; i < image.data.length; i += 4) image.data.set([40 + (i % 200), 120, 200 - (i % 150), 255], i);
    return (await window.tinyVLM.client.infer(image, "Describe this image.", {maxTokens: 12})).text;
}"""


@pytest.fixture()
def served(site, tmp_path):
    """A private copy of the site behind a byte-counting server."""
    needs_numpy(site)
    root = tmp_path / "site"
    shutil.copytree(site.path, root)
    server = CountingServer(root)
    yield root, server
    server.shutdown()


def boot(app) -> dict:
    assert app.wait_boot() == "ready"
    return app.page.evaluate("window.tinyVLM.client.info")


def first_visit(site, served, open_app):
    """Open the served copy once and wait until everything is stored -> (root, server, app)."""
    root, server = served
    app = open_app(server.url)
    boot(app)
    wait_stored(app, site)
    return root, server, app


def wait_for_request(server, path: str, timeout_s: float = 30.0) -> dict:
    """Poll the server's counts until `path` was requested; return (and keep) everything sent."""
    import time

    seen: dict = {}
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for key, n in server.take().items():
            seen[key] = seen.get(key, 0) + n
        if path in seen:
            return seen
        time.sleep(0.1)
    raise AssertionError(f"{path} was not requested within {timeout_s} s (sent: {seen})")


def wait_stored(app, site) -> None:
    stored = app.page.evaluate(STORED_JS, [sorted(site.manifest["files"]), CACHE, SNAPSHOT_CACHE])
    assert stored is not None, "the service worker / snapshot caches were not filled within 60 s"


def test_reload_reads_nothing_from_the_network_and_restores_the_snapshot(site, served, open_app):
    root, server = served
    app = open_app(server.url)
    first = boot(app)
    assert first["snapshot"] == "made" and first["bytecode"] == "none yet"
    answer_before = app.page.evaluate(ANSWER_JS)
    wait_stored(app, site)
    server.take()

    app.page.reload()
    second = boot(app)
    assert second["snapshot"] == "restored"
    assert int(second["bytecode"].split()[0]) > 50, second["bytecode"]  # NumPy's modules and tiny_vlm's
    assert second["timings"]["pyodide_ms"] < first["timings"]["pyodide_ms"]
    assert app.page.evaluate(ANSWER_JS) == answer_before  # NumPy, the kernels and the model work after a restore
    sent = wait_for_request(server, "/manifest.json")  # the update check after ready: a 304
    app.page.wait_for_function("window.tinyVLM.updateCheck === 'current'", timeout=30_000)  # the check is over
    for key, n in server.take().items():
        sent[key] = sent.get(key, 0) + n
    assert sum(sent.values()) == 0, f"bytes sent on reload: {sent}"
    assert app.errors == []


def test_a_bad_snapshot_or_bytecode_pack_is_replaced(site, served, open_app):
    root, server, app = first_visit(site, served, open_app)
    app.page.evaluate("""async (name) => {
        const cache = await caches.open(name);
        for (const key of await cache.keys()) await cache.put(key, new Response(new Uint8Array(4096)));
    }""", SNAPSHOT_CACHE)
    app.page.reload()
    info = boot(app)
    assert info["snapshot"].startswith("failed to restore ("), info["snapshot"]
    assert info["bytecode"].startswith("bad pack ("), info["bytecode"]
    assert app.page.evaluate(ANSWER_JS)
    wait_stored(app, site)
    app.page.reload()
    info = boot(app)  # the replacements work
    assert info["snapshot"] == "restored" and info["bytecode"].endswith(" modules"), info


def test_a_new_version_is_downloaded_in_the_background(site, served, open_app):
    root, server, app = first_visit(site, served, open_app)
    # publish a new version: one changed file, its manifest entry updated
    card = root / "model" / "README.md"
    card.write_text(card.read_text() + "\nNew version marker.\n")
    manifest = json.loads((root / "manifest.json").read_text())
    data = card.read_bytes()
    manifest["files"]["model/README.md"] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    (root / "manifest.json").write_text(json.dumps(manifest, indent=1))
    server.take()
    # a file an older version listed and this one does not (an old wheel): the update removes it
    app.page.evaluate("caches.open('tiny-vlm-v2').then(c => c.put('wheels/tiny_vlm-0.0.1-py3-none-any.whl', new Response('old')))")

    app.page.reload()  # still the stored version; the check after ready finds the new one
    boot(app)
    app.page.wait_for_function("window.tinyVLM.updateReady === true", timeout=30_000)
    stored = app.page.evaluate("caches.open('tiny-vlm-v2').then(c => c.keys()).then(ks => ks.map(k => k.url))")
    assert not any("tiny_vlm-0.0.1" in u for u in stored), stored
    assert any(u.endswith("/model/README.md") for u in stored) and any(u.endswith("/manifest.json") for u in stored)
    assert app.page.is_visible("[data-testid=update]")
    assert "new version" in app.page.text_content("[data-testid=update]")
    sent = server.take()
    assert set(p for p, n in sent.items() if n) == {"/manifest.json", "/model/README.md"}, sent

    app.page.reload()
    boot(app)  # the model card is not checked by the worker, so the app boots as before
    text = app.page.evaluate("async () => (await fetch('model/README.md')).text()")
    assert text.endswith("New version marker.\n")
    assert app.errors == []


def test_an_update_whose_files_do_not_match_its_manifest_is_not_used(site, served, open_app):
    """A half-finished deploy (the new manifest is up, a file is not): the stored version stays."""
    root, server, app = first_visit(site, served, open_app)
    card_before = (root / "model" / "README.md").read_text()
    manifest = json.loads((root / "manifest.json").read_text())
    manifest["files"]["model/README.md"] = {"bytes": 5, "sha256": hashlib.sha256(b"later").hexdigest()}
    (root / "manifest.json").write_text(json.dumps(manifest, indent=1))
    server.take()

    app.page.reload()
    boot(app)
    wait_for_request(server, "/model/README.md")  # the update fetched the file, found it wrong
    app.page.wait_for_function("window.tinyVLM.updateCheck === 'failed'", timeout=30_000)  # and gave up on it
    assert app.page.evaluate("window.tinyVLM.updateReady === true") is False
    assert app.page.evaluate("async () => (await fetch('model/README.md')).text()") == card_before
    stored = app.page.evaluate("""async (name) => {
        const r = await (await caches.open(name)).match(new URL("manifest.json", location.href).href);
        return (await r.json()).files["model/README.md"].bytes;
    }""", CACHE)
    assert stored == len(card_before.encode())
