"""build.py and serve.py without a browser: the manifest, NumPy checks, MIME types, escapes."""

import hashlib
import json
import os
import shutil
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import build  # noqa: E402
import serve  # noqa: E402

pytestmark = pytest.mark.skipif(not (ROOT / "node_modules" / "pyodide").is_dir(), reason="run `npm ci` first (Pyodide)")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("web") / "dist"
    assert build.main(["--out", str(out), "--random-model", "--numpy-from-cdn"]) == 0
    return out


def test_manifest_lists_every_file_with_size_and_sha256(site):
    manifest = json.loads((site / "manifest.json").read_text())
    on_disk = {p.relative_to(site).as_posix() for p in site.rglob("*") if p.is_file() and p.suffix != ".gz"} - {"manifest.json"}
    assert set(manifest["files"]) == on_disk
    for rel, entry in manifest["files"].items():
        data = (site / rel).read_bytes()
        assert entry == {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    assert manifest["wheel"].endswith("-py3-none-any.whl") and manifest["wheel"] in manifest["files"]
    assert set(manifest["pyodide"]["core"]) <= set(manifest["files"])
    assert manifest["model"]["files"] == ["model/model.safetensors", "model/tokenizer.json"]
    assert manifest["numpy"]["source"] == "cdn" and manifest["numpy"]["url"].startswith("https://cdn.jsdelivr.net/pyodide/v314.0.4/full/")
    assert {"index.html", "main.js", "worker.js", "protocol.js", "client.js", "style.css", "sw.js"} <= on_disk


def test_numpy_wheel_with_a_wrong_sha256_is_refused(tmp_path):
    lock = json.loads((ROOT / "node_modules" / "pyodide" / "pyodide-lock.json").read_text())
    (tmp_path / lock["packages"]["numpy"]["file_name"]).write_bytes(b"not numpy")
    with pytest.raises(build.BuildError, match="does not match pyodide-lock.json"):
        build.find_numpy_wheel(str(tmp_path), lock)


def test_pure_wheel_matches_the_package(tmp_path):
    import zipfile

    wheel = build.write_pure_wheel(tmp_path)
    names = zipfile.ZipFile(wheel).namelist()
    assert "tiny_vlm/bridge.py" in names and "tiny_vlm/__init__.py" in names
    assert not any(n.startswith("tiny_vlm_train") for n in names)


def test_refuses_to_wipe_a_folder_that_is_not_a_build(tmp_path):
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(build.BuildError, match="refusing to overwrite"):
        build.check_out(tmp_path)
    assert build.main(["--out", str(tmp_path), "--random-model", "--numpy-from-cdn", "--kernels", "off"]) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["precious.txt"]


def test_a_failed_build_leaves_the_previous_site_as_it_was(site, tmp_path, monkeypatch, capsys):
    previous = tmp_path / "dist"
    shutil.copytree(site, previous)
    before = sorted(p.relative_to(previous).as_posix() for p in previous.rglob("*"))

    def disk_full(*_args):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(build, "precompress", disk_full)  # fails after every file was copied
    assert build.main(["--out", str(previous), "--random-model", "--numpy-from-cdn", "--kernels", "off"]) == 1
    assert "No space left on device" in capsys.readouterr().err
    assert sorted(p.relative_to(previous).as_posix() for p in previous.rglob("*")) == before
    assert (previous / "manifest.json").read_bytes() == (site / "manifest.json").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dist"]  # no staging folder left behind


def test_serve_rebuilds_when_the_build_options_differ(site):
    # the fixture's site was built with --random-model --numpy-from-cdn: not what serve.py
    # builds for the default model, however new its files are
    assert "other options" in serve.needs_build(site, None)
    assert "missing" in serve.needs_build(site.parent / "nothing-here", None)
    same = build.parse_args(["--random-model", "--numpy-from-cdn"])
    assert json.loads((site / "manifest.json").read_text())["build_options"] == build.options_key(same)
    assert build.options_key(same) != build.options_key(build.parse_args(["--random-model"]))
    assert build.options_key(build.parse_args([])) != build.options_key(build.parse_args(["--kernels", "off"]))


def test_serve_rebuilds_a_site_older_than_its_sources_and_only_then(site, tmp_path):
    copy = tmp_path / "dist"
    shutil.copytree(site, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["build_options"] = build.options_key(build.parse_args([]))  # as if built as serve.py builds
    (copy / "manifest.json").write_text(json.dumps(manifest))  # written now: newer than every source
    assert serve.needs_build(copy, None) is None
    os.utime(copy / "manifest.json", (0, 0))  # built in 1970: every source is newer
    assert "older than its sources" in serve.needs_build(copy, None)


@pytest.fixture(scope="module")
def url(site, tmp_path_factory):
    served = tmp_path_factory.mktemp("served") / "site"
    shutil.copytree(site, served)
    (served.parent / "secret.txt").write_text("outside the site")
    (served / "link-out").symlink_to(served.parent)
    server = serve.make_server(served, "127.0.0.1", 0, quiet=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def get(url):
    try:
        with urllib.request.urlopen(url) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, b""


@pytest.mark.parametrize("path, mime", [
    ("/pyodide/pyodide.asm.wasm", "application/wasm"),
    ("/pyodide/pyodide.mjs", "text/javascript"),
    ("/worker.js", "text/javascript"),
    ("/manifest.json", "application/json"),
    ("/manifest.webmanifest", "application/manifest+json"),
    ("/icon-192.png", "image/png"),
    ("/icon.svg", "image/svg+xml"),
    ("/", "text/html"),
])
def test_mime_types_and_headers(url, path, mime):
    status, headers, _ = get(url + path)
    assert status == 200 and headers["Content-Type"].startswith(mime)
    assert headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert headers["Cross-Origin-Embedder-Policy"] == "require-corp"
    assert headers["Cache-Control"] == "no-cache"


def test_gzip_twins_decompress_to_their_files(site):
    """build.py writes NAME.gz beside the files that compress by at least 10% (the Pyodide
    core's .wasm and .mjs among them), never for a wheel or zip, and nothing else ends in .gz."""
    import gzip

    twins = sorted(p for p in site.rglob("*.gz"))
    names = {p.relative_to(site).as_posix() for p in twins}
    assert {"pyodide/pyodide.asm.wasm.gz", "pyodide/pyodide.asm.mjs.gz"} <= names
    for twin in twins:
        original = twin.with_suffix("")
        assert original.suffix in build.GZIP_SUFFIXES
        assert gzip.decompress(twin.read_bytes()) == original.read_bytes()
        assert twin.stat().st_size <= 0.9 * original.stat().st_size


def get_encoded(url, accept):
    req = urllib.request.Request(url, headers={"Accept-Encoding": accept} if accept is not None else {})
    with urllib.request.urlopen(req) as r:
        return r.headers, r.read()


@pytest.mark.parametrize("accept, encoded", [("gzip, deflate, br", True), ("br;q=1.0, gzip;q=0.5", True), ("gzip;q=0", False),
                                             ("identity", False), (None, False)])
def test_serve_sends_the_gzip_twin_to_clients_that_accept_it(url, site, accept, encoded):
    import gzip

    headers, body = get_encoded(f"{url}/pyodide/pyodide.asm.wasm", accept)
    original = (site / "pyodide" / "pyodide.asm.wasm").read_bytes()
    assert headers["Content-Type"] == "application/wasm" and "Accept-Encoding" in headers["Vary"]
    assert headers["Cross-Origin-Embedder-Policy"] == "require-corp"
    assert (headers.get("Content-Encoding") == "gzip") is encoded
    assert (gzip.decompress(body) if encoded else body) == original
    assert int(headers["Content-Length"]) == len(body) < (len(original) if encoded else len(original) + 1)


def test_serve_revalidates_gzip_twins(url):
    headers, _ = get_encoded(f"{url}/pyodide/pyodide.asm.mjs", "gzip")
    req = urllib.request.Request(f"{url}/pyodide/pyodide.asm.mjs",
                                 headers={"Accept-Encoding": "gzip", "If-Modified-Since": headers["Last-Modified"]})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req)
    assert err.value.code == 304


def test_wheel_mime_type(url, site):
    manifest = json.loads((site / "manifest.json").read_text())
    status, headers, _ = get(f"{url}/{manifest['wheel']}")
    assert status == 200 and headers["Content-Type"] == "application/zip"


@pytest.mark.parametrize("path", ["/../secret.txt", "/%2e%2e/secret.txt", "/link-out/secret.txt", "/pyodide/", "/link-out/"])
def test_nothing_outside_the_site_and_no_listings(url, path):
    status, _, body = get(url + path)
    assert status == 404 and b"outside the site" not in body
