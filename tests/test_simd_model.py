"""The whole model on SimdBackend (NumPy stand-ins of the WASM exports) equals the NumPy backend.

SimdBackend checks every argument (C-contiguous float32 x, bias, out of the right shapes)
and the stand-ins go through the same addresses and packed panels as the browser, so this
finds call sites that would corrupt memory or fall back to per-call weight lookups.
"""

import numpy as np
import pytest

from tiny_vlm import Backend, FastVLM
from tiny_vlm.kv_cache import KVCache
from tiny_vlm.testing import random_model
from tiny_vlm.wasm.backend import KernelArgumentError, PackedWeight, SimdBackend
from tiny_vlm.wasm.emulate import (emulated_attend, emulated_dw_rows, emulated_dw_s2, emulated_exports, emulated_gelu,
                                   emulated_resize_rgba, emulated_rms_rows, emulated_rope, emulated_softmax_rows,
                                   emulated_swiglu)

PROMPT = "What is in this image?"


class RecordingSimd(SimdBackend):
    """SimdBackend on the emulated exports that notes weights nobody packed at load
    (attention products, which bmm sends through linear with activations, excepted)."""

    def __init__(self):
        self.calls = []
        super().__init__(*emulated_exports(self.calls), gelu=emulated_gelu(self.calls),
                         softmax_rows=emulated_softmax_rows(self.calls), dw_rows=emulated_dw_rows(self.calls),
                         swiglu=emulated_swiglu(self.calls), dw_s2=emulated_dw_s2(self.calls),
                         resize_rgba=emulated_resize_rgba(self.calls), attend=emulated_attend(self.calls),
                         rope=emulated_rope(self.calls), rms_rows=emulated_rms_rows(self.calls))
        self.unpacked = []
        self.bmm_kernel_calls = 0
        self._in_bmm = False

    def bmm(self, a, b):
        self._in_bmm = True
        try:
            return super().bmm(a, b)
        finally:
            self._in_bmm = False

    def linear(self, x, w, b=None, out=None):
        if self._in_bmm:
            self.bmm_kernel_calls += 1
        elif type(w) is not PackedWeight and id(w) not in self._packed:
            self.unpacked.append(w.shape)
        return super().linear(x, w, b, out)


@pytest.fixture(scope="module", params=["matmul", "einsum"])
def models(tmp_path_factory, request):
    """NumPy reference and SIMD model; "einsum" is the NumPy formulation SimdBackend inherits in Pyodide."""
    path = random_model(tmp_path_factory.mktemp("tiny"), seed=0)
    simd = RecordingSimd()
    simd.gemm = request.param
    return FastVLM.load(path, backend=Backend()), FastVLM.load(path, backend=simd)


def test_backend_pack():
    rng = np.random.default_rng(0)
    x, w, b = (rng.standard_normal(s).astype(np.float32) for s in ((4, 3), (5, 3), (5,)))
    assert Backend("einsum").pack(w, b) is w  # einsum reads the stored [out, in] layout
    for gemm in ("matmul", "einsum"):
        be = Backend(gemm)
        np.testing.assert_allclose(be.linear(x, be.pack(w, b), b), x @ w.T + b, rtol=1e-5, atol=1e-5)


def test_pinned_rows_fast_path_checks_shapes():
    """linear on pinned x/out rows skips the address lookups but still refuses a wrong shape."""
    be = RecordingSimd()
    rng = np.random.default_rng(1)
    w, b = rng.standard_normal((5, 3)).astype(np.float32), rng.standard_normal(5).astype(np.float32)
    pw = be.pack(w, b)
    x, out = be.pin(rng.standard_normal((1, 3)).astype(np.float32)), be.pin(np.zeros((1, 5), np.float32))
    assert be.linear(x, pw, b, out=out) is out
    np.testing.assert_allclose(out, x @ w.T + b, rtol=1e-5, atol=1e-6)
    wrong = be.pin(np.zeros((1, 4), np.float32))
    with pytest.raises(KernelArgumentError, match="do not fit"):
        be.linear(x, pw, b, out=wrong)
    with pytest.raises(KernelArgumentError, match="float32"):
        be.pin(np.zeros((1, 3)))


def test_simd_model_matches_numpy(models):
    ref, simd = models
    be = simd.backend
    # the stem's stride-2 3x3: the SIMD row kernel on every other output, NumPy strided;
    # the two formulations must agree (the encodings below)
    assert "stem.1" in simd.vision.row_taps_s2 and ref.vision.row_taps_s2 == {}
    rgba = np.random.default_rng(7).integers(0, 256, (48, 80, 4), dtype=np.uint8)  # the browser's frames are RGBA
    rgb = rgba[:, :, :3].copy()
    pixels = ref.processor(rgb)
    np.testing.assert_allclose(simd.processor(rgba), pixels, rtol=1e-5, atol=1e-5)
    e_ref, e_simd = ref.encode_image(pixels), simd.encode_image(pixels)
    np.testing.assert_allclose(e_simd, e_ref, rtol=1e-4, atol=1e-4 * float(np.abs(e_ref).max()))

    logits = []
    for m in (ref, simd):
        cache = KVCache(m.config.lm)
        logits.append(m.lm.forward(m.prompt_embeddings(e_ref, PROMPT), cache))
    np.testing.assert_allclose(logits[1], logits[0], rtol=1e-4, atol=1e-4 * float(np.abs(logits[0]).max()))

    ids = []
    for m in (ref, simd):
        s = m.session(rgba, PROMPT, max_tokens=16)
        while not s.done:
            s.step()
        ids.append(s.token_ids)
    assert ids[0] == ids[1] and len(ids[0]) == 16
    assert be.unpacked == [], "linear weights not packed at load"
    kinds = {c[0] for c in be.calls}
    # image/prefill rows on panels, decode steps on dot, every attention (image, prefill, decode) on attend
    assert kinds == {"gemm_packed", "gemm_dot", "gelu", "dw_rows", "swiglu", "dw_s2", "resize_rgba", "attend", "rope", "rms_rows"}
    attends = [c for c in be.calls if c[0] == "attend"]
    cfg = simd.config
    n_vision = sum(d for d, mixer in zip(cfg.vision.depths, cfg.vision.mixers) if mixer == "attention")
    assert sum(c[6] == -1 for c in attends) == 2 * n_vision  # the image, encoded twice above (no mask)
    assert sum(c[1] > 1 and c[6] == 0 for c in attends) == 2 * cfg.lm.n_layers  # two prefills, causal from 0
    assert be.bmm_kernel_calls == 0
    assert not any(c[0] == "gemm_dot" and c[1] >= be.min_rows_packed for c in be.calls)  # gemm_dot: decode steps only
