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
STORED_JS = """async ([nFiles, cacheName, snapshotCache]) => {
    for (let i = 0; i < 600; i++) {
        const files = (await (await caches.open(cacheName)).keys()).length;
        const snapshots = (await (await caches.open(snapshotCache)).keys()).length;
        if (navigator.serviceWorker.controller && files >= nFiles + 1 && snapshots === 2) return {files, snapshots};
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


def wait_stored(app, site) -> None:
    stored = app.page.evaluate(STORED_JS, [len(site.manifest["files"]), CACHE, SNAPSHOT_CACHE])
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
    app.page.wait_for_timeout(1000)  # the background update check
    sent = server.take()
    assert sum(sent.values()) == 0, f"bytes sent on reload: {sent}"
    assert app.errors == []


def test_a_bad_snapshot_or_bytecode_pack_is_replaced(site, served, open_app):
    root, server = served
    app = open_app(server.url)
    boot(app)
    wait_stored(app, site)
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
    root, server = served
    app = open_app(server.url)
    boot(app)
    wait_stored(app, site)
    # publish a new version: one changed file, its manifest entry updated
    card = root / "model" / "README.md"
    card.write_text(card.read_text() + "\nNew version marker.\n")
    manifest = json.loads((root / "manifest.json").read_text())
    data = card.read_bytes()
    manifest["files"]["model/README.md"] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    (root / "manifest.json").write_text(json.dumps(manifest, indent=1))
    server.take()

    app.page.reload()  # still the stored version; the check after ready finds the new one
    boot(app)
    app.page.wait_for_function("window.tinyVLM.updateReady === true", timeout=30_000)
    assert "new version" in app.page.text_content("[data-testid=status]")
    sent = server.take()
    assert set(p for p, n in sent.items() if n) == {"/manifest.json", "/model/README.md"}, sent

    app.page.reload()
    boot(app)  # the model card is not checked by the worker, so the app boots as before
    text = app.page.evaluate("async () => (await fetch('model/README.md')).text()")
    assert text.endswith("New version marker.\n")
    assert app.errors == []
