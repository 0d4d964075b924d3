"""Kernels against naive float64 references."""

import math

import numpy as np
import pytest

from tiny_vlm import kernels as K

RNG = np.random.default_rng(0)


def rand(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def naive_conv(x, w, b, stride, groups):  # [H, W, Ci], [Co, Ci/g, K, K] -> [Ho, Wo, Co], float64 loops
    h, wd, ci = x.shape
    co, cpg, k, _ = w.shape
    p = k // 2
    xp = np.pad(x.astype(np.float64), ((p, p), (p, p), (0, 0)))
    ho, wo = (h + 2 * p - k) // stride + 1, (wd + 2 * p - k) // stride + 1
    out = np.zeros((ho, wo, co))
    cog = co // groups
    for o in range(co):
        g = o // cog
        for i in range(ho):
            for j in range(wo):
                patch = xp[i * stride:i * stride + k, j * stride:j * stride + k, g * cpg:(g + 1) * cpg]  # [K, K, cpg]
                out[i, j, o] = np.sum(patch * w[o].transpose(1, 2, 0)) + b[o]
    return out


@pytest.mark.parametrize("gemm", K.GEMMS)
def test_linear_backends(gemm):
    x, w, b = rand(5, 7), rand(3, 7), rand(3)
    be = K.Backend(gemm)
    np.testing.assert_allclose(be.linear(x, w, b), x.astype(np.float64) @ w.T + b, rtol=1e-5, atol=1e-5)
    out = np.empty((5, 3), np.float32)
    assert be.linear(x, w, None, out=out) is out
    a, c = rand(2, 3, 4), rand(2, 4, 5)
    np.testing.assert_allclose(be.bmm(a, c), a @ c, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="'blas'"):
        K.Backend("blas")


@pytest.mark.parametrize("ci,co,k,stride,groups", [
    (3, 8, 3, 2, 1),     # stem.0: full conv, stride 2
    (8, 8, 3, 2, 8),     # stem.1: depthwise, stride 2
    (8, 8, 7, 1, 8),     # pos_emb / ConvFFN: depthwise 7x7
    (8, 16, 7, 2, 8),    # patch embed: grouped, channel multiplier 2, stride 2
    (8, 16, 3, 1, 8),    # final conv: grouped, multiplier 2
    (4, 6, 3, 1, 2),     # grouped with 2 channels per group
    (5, 7, 1, 1, 1),     # 1x1
])
@pytest.mark.parametrize("size", [9, 10])
def test_conv2d(ci, co, k, stride, groups, size):
    x, w, b = rand(size, size + 1, ci), rand(co, ci // groups, k, k), rand(co)
    ref = naive_conv(x, w, b, stride, groups)
    out = K.conv2d(x, w, b, stride, groups)
    assert out.shape == ref.shape and out.dtype == np.float32
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("form", ["_gelu_tanh", "_gelu_exp"])  # native form, Pyodide form (kernels.py)
def test_gelu_accuracy(form, monkeypatch):
    monkeypatch.setattr(K, "_gelu", getattr(K, form))
    x = np.linspace(-10, 10, 200001).astype(np.float32)
    ref_gelu = np.array([0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in x.astype(np.float64)])
    gelu = K.gelu(x)  # in blocks
    assert gelu.dtype == np.float32
    # x P(x^2) ~ atanh(erf(x / sqrt 2)), P fitted (kernels.py): within 1.4e-6 max(1, |x|) in float32
    err = np.abs(gelu - ref_gelu) / np.maximum(1, np.abs(x))
    assert err.max() < 1.5e-6
    # far out GELU is x or 0
    far = np.array([-3e38, -1e4, -30, -8, 8, 30, 1e4, 3e38], np.float32)
    with np.errstate(over="ignore"):
        got = K.gelu(far)
    np.testing.assert_allclose(got, np.where(far > 0, far, 0), rtol=1e-7, atol=1e-12)
    assert np.isnan(K.gelu(np.array([np.nan], np.float32)))[0]


def test_activations_and_norms():
    x = rand(4, 6) * 3
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(K.silu(x), x64 / (1 + np.exp(-x64)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(K.sigmoid(x), 1 / (1 + np.exp(-x64)), rtol=1e-5, atol=1e-6)
    e = np.exp(x64 - x64.max(-1, keepdims=True))
    np.testing.assert_allclose(K.softmax(x), e / e.sum(-1, keepdims=True), rtol=1e-5, atol=1e-7)
    w, b = rand(6), rand(6)
    mu, var = x64.mean(-1, keepdims=True), x64.var(-1, keepdims=True)
    np.testing.assert_allclose(K.layer_norm(x, w, b, 1e-5), (x64 - mu) / np.sqrt(var + 1e-5) * w + b, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(K.rms_norm(x, w, 1e-6), x64 / np.sqrt((x64 ** 2).mean(-1, keepdims=True) + 1e-6) * w,
                               rtol=1e-4, atol=1e-5)


def test_rope_matches_pairwise_rotation():
    dh, t, theta = 8, 5, 10000.0
    cos, sin = K.rope_tables(16, dh, theta)
    x = rand(3, t, dh)
    out = K.rope_swapped(x, cos[4:4 + t], K.rope_signed_sin(sin)[4:4 + t])
    ref = np.empty_like(x, dtype=np.float64)
    for pos in range(t):
        for i in range(dh // 2):
            ang = (4 + pos) * theta ** (-2 * i / dh)
            a, b = x[:, pos, i], x[:, pos, i + dh // 2]
            ref[:, pos, i] = a * math.cos(ang) - b * math.sin(ang)
            ref[:, pos, i + dh // 2] = b * math.cos(ang) + a * math.sin(ang)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("keys_down", [True, False])  # the native and the Pyodide score layout
@pytest.mark.parametrize("gemm", K.GEMMS)
def test_attention_causal_gqa(gemm, keys_down, monkeypatch):
    monkeypatch.setattr(K, "ATTENTION_KEYS_DOWN", keys_down)
    h, hkv, t, p0, dh = 4, 2, 3, 5, 8
    q, k, v = rand(h, t, dh), rand(hkv, p0 + t, dh), rand(hkv, p0 + t, dh)
    out = K.attention(q, k, v, p0, K.Backend(gemm))
    for head in range(h):
        kv = head // (h // hkv)
        for row in range(t):
            s = k[kv, :p0 + row + 1].astype(np.float64) @ q[head, row] / math.sqrt(dh)
            pr = np.exp(s - s.max())
            pr /= pr.sum()
            np.testing.assert_allclose(out[head, row], pr @ v[kv, :p0 + row + 1], rtol=1e-5, atol=1e-5)
    full = K.attention(q, k, v, None)  # no mask: every row sees every key
    s = np.einsum("htd,hpd->htp", q.astype(np.float64), np.repeat(k, 2, axis=0)) / math.sqrt(dh)
    pr = np.exp(s - s.max(-1, keepdims=True))
    pr /= pr.sum(-1, keepdims=True)
    np.testing.assert_allclose(full, pr @ np.repeat(v, 2, axis=0), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("c,m,k", [(8, 1, 7), (8, 2, 3)])
def test_depthwise_forms_agree(c, m, k):
    x, w, b = rand(9, 11, c), rand(c * m, 1, k, k), rand(c * m)
    taps = K.depthwise_taps(w)
    ref = naive_conv(x, w, b, 1, c)
    np.testing.assert_allclose(K.depthwise_conv2d(x, taps, b, 1), ref, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(K.depthwise_conv2d_rows(x, K.depthwise_row_taps(taps, 11), np.tile(b, 11)), ref, rtol=1e-4, atol=1e-4)


def test_blocked_gelu():
    y = np.concatenate([rand(K.GELU_BLOCK * 2 + 5) * 4, np.array([-0.0, 0.0], np.float32)])  # several blocks, a ragged tail
    ref = K._gelu(y.copy())
    out = y.copy()
    assert K.gelu(out, out=out) is out
    np.testing.assert_array_equal(out, ref)
