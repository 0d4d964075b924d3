"""The WASM SIMD kernels: the default site (kernels on when wabt is installed) answers exactly like a NumPy-only one."""

from __future__ import annotations

import shutil

import pytest
from e2e_support import build_site, needs_numpy, start_server

ANSWERS_JS = """async () => {
    const vlm = await window.tinyVLM.ready;
    const image = new ImageData(96, 96);
    for (let i = 0; i < image.data.length; i++) image.data[i] = (i * 37) % 251;
    const texts = [], stats = [];
    for (const prompt of ["Describe this image.", "Is there a dog?", "Describe this image.", "Is there a dog?"]) {
        const r = await vlm.infer(image, prompt, {maxTokens: 16});
        texts.push(r.text);
        stats.push(r.stats);
    }
    return {texts, stats, backend: vlm.info.model.backend, kernels: vlm.info.kernels};
}"""


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
        plain = numpy_only.page.evaluate(ANSWERS_JS)
        with_kernels = open_app(site.url)
        simd = with_kernels.page.evaluate(ANSWERS_JS)
    finally:
        server.shutdown()
    assert simd["backend"] == "wasm-simd" and simd["kernels"].startswith("kernels/tiny_vlm_gemm_")
    assert plain["backend"] != "wasm-simd"
    assert simd["texts"] == plain["texts"]
    assert with_kernels.errors == [] and numpy_only.errors == []
    for name, run in (("simd", simd), ("numpy", plain)):
        last = run["stats"][-1]  # warm
        latency[f"kernels_{name}_ttft_ms"] = last["ttft_ms"]
        latency[f"kernels_{name}_decode_ms_per_token"] = last["decode_ms_per_token"]
