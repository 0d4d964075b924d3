"""The WASM SIMD kernels: the default site (kernels on when wabt is installed) answers exactly like a
NumPy-only one, on a synthetic pattern and on rendered scenes of the model's objects."""

from __future__ import annotations

import shutil

import pytest
import scene
from e2e_support import build_site, needs_numpy, start_server

ANSWERS_JS = """async (scenes) => {
    const vlm = await window.tinyVLM.ready;
    const image = new ImageData(96, 96);
    for (let i = 0; i < image.data.length; i++) image.data[i] = (i * 37) % 251;
    const texts = [], stats = [];
    for (const prompt of ["Describe this image.", "Is there a dog?", "Describe this image.", "Is there a dog?"]) {
        const r = await vlm.infer(image, prompt, {maxTokens: 16});
        texts.push(r.text);
        stats.push(r.stats);
    }
    for (const {width, height, rgba} of scenes) {  // rendered scenes of the model's objects
        const frame = new ImageData(new Uint8ClampedArray(rgba), width, height);
        for (const prompt of ["Describe this image.", "How many apples are there?"]) {
            texts.push((await vlm.infer(frame, prompt, {maxTokens: 24})).text);
        }
    }
    return {texts, stats, backend: vlm.info.model.backend, kernels: vlm.info.kernels};
}"""


def rendered_scenes(labels) -> list[dict]:
    """Three small camera-like frames of 1-3 of the model's objects."""
    frames = []
    for n, (w, h) in zip((1, 2, 3), ((160, 120), (200, 200), (240, 180))):
        image = scene.render_scene(scene.pick_objects(labels, n), w, h, seed=n).convert("RGBA")
        frames.append({"width": w, "height": h, "rgba": list(image.tobytes())})
    return frames


def test_simd_kernels_match_numpy(site, open_app, tmp_path_factory, latency):
    needs_numpy(site)
    if shutil.which("wat2wasm") is None:
        pytest.skip("wabt's wat2wasm is not installed: the kernels cannot be assembled")
    out = tmp_path_factory.mktemp("numpy-site") / "dist"
    build_site(out, "--kernels", "off")
    server, url = start_server(out)
    try:
        numpy_only = open_app(url)
        assert numpy_only.wait_boot() == "ready"
        frames = rendered_scenes(site.labels)
        plain = numpy_only.page.evaluate(ANSWERS_JS, frames)
        with_kernels = open_app(site.url)
        simd = with_kernels.page.evaluate(ANSWERS_JS, frames)
    finally:
        server.shutdown()
    assert simd["backend"] == "wasm-simd" and simd["kernels"].startswith("kernels/tiny_vlm_gemm_")
    assert plain["backend"] != "wasm-simd"
    assert simd["texts"] == plain["texts"]
    assert len(simd["texts"]) == 4 + 2 * len(frames)
    assert with_kernels.errors == [] and numpy_only.errors == []
    for name, run in (("simd", simd), ("numpy", plain)):
        last = run["stats"][-1]  # warm
        latency[f"kernels_{name}_ttft_ms"] = last["ttft_ms"]
        latency[f"kernels_{name}_decode_ms_per_token"] = last["decode_ms_per_token"]
