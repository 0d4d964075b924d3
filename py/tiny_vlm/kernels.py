"""Pure NumPy kernels: small functions, shape signature on the def line.

Activations are float32. Image activations are channels-last [H, W, C]; linear weights
are [out, in]; conv weights are [C_out, C_in / groups, K, K].

The GEMM formulation is chosen in one place, `Backend` (DESIGN.md §4). Everything that
multiplies by a weight matrix goes through `Backend.linear`; batched attention products
go through `Backend.bmm`.
"""

from __future__ import annotations

import sys

import numpy as np
from numpy.lib.stride_tricks import as_strided

# Measured with Pyodide 314 / NumPy 2.4.3 in Chromium (DESIGN.md §4): without BLAS,
# einsum's sum-of-products loop beats matmul 5-10x on every shape tried
# ([49,256]@[256,1024]: matmul 38-51 ms, einsum 3.8 ms); natively BLAS matmul wins.
DEFAULT_GEMM = "einsum" if sys.platform == "emscripten" else "matmul"
GEMMS = ("matmul", "einsum")


class Backend:
    """The one dispatch point for matrix products.

    `gemm` is "matmul" (BLAS, CPython) or "einsum" (Pyodide). A WASM SIMD GEMM plugs in by
    subclassing and overriding `linear` (and optionally `bmm`); the model holds one
    Backend and passes every weight product through it.
    """

    def __init__(self, gemm: str | None = None) -> None:
        gemm = DEFAULT_GEMM if gemm is None else gemm
        if gemm not in GEMMS:
            raise ValueError(f"Backend gemm {gemm!r} is not one of {GEMMS}")
        self.gemm = gemm

    @property
    def name(self) -> str:
        return f"numpy-{self.gemm}"

    def linear(self, x, w, b=None, out=None):  # [T, in], [out, in], [out] -> [T, out]
        if self.gemm == "matmul":
            y = np.matmul(x, w.T, out=out)
        else:
            y = np.einsum("ik,jk->ij", x, w, out=out)
        if b is not None:
            y += b
        return y

    def bmm(self, a, b):  # [B, M, K], [B, K, N] -> [B, M, N]
        if self.gemm == "matmul":
            return np.matmul(a, b)
        return np.einsum("bmk,bkn->bmn", a, b)

    def __repr__(self) -> str:
        return f"Backend({self.gemm!r})"


def linear(x, w, b=None):  # [T, in], [out, in], [out] -> [T, out]
    """Reference linear with the platform's default formulation (see Backend)."""
    return Backend().linear(x, w, b)


# ---------------------------------------------------------------- activations

_SQRT1_2 = np.float32(0.7071067811865476)
# Abramowitz & Stegun 7.1.26: erf(z) = 1 - t*(a1 + t*(a2 + ...)) * exp(-z^2), t = 1/(1+p*z),
# z >= 0; max abs error 1.5e-7 in float64. Evaluated in float32 the cancellation in 1 - poly*exp
# near z = 0 adds up to ~5e-7, which GELU multiplies by x/2: GELU stays within ~3e-7 (tested).
_ERF_P = np.float32(0.3275911)
_ERF_A = tuple(np.float32(a) for a in (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429))


def erf(x):  # [...] -> [...]
    """erf(x) by A&S 7.1.26 (NumPy has no erf); |error| <= 1.5e-7 (float64), 6e-7 (float32)."""
    z = np.abs(x)
    t = 1.0 / (1.0 + _ERF_P * z)
    a1, a2, a3, a4, a5 = _ERF_A
    poly = t * (a1 + t * (a2 + t * (a3 + t * (a4 + t * a5))))
    y = 1.0 - poly * np.exp(-z * z)
    return np.copysign(y, x)


def gelu(x):  # [...] -> [...]
    """Exact (erf) GELU: 0.5 * x * (1 + erf(x / sqrt(2)))."""
    e = erf(x * _SQRT1_2)
    e += 1.0
    e *= x
    e *= 0.5
    return e


def silu(x):  # [...] -> [...]
    return x / (1.0 + np.exp(-x))


def sigmoid(x):  # [...] -> [...]
    return 1.0 / (1.0 + np.exp(-x))


def relu(x):  # [...] -> [...]
    return np.maximum(x, 0.0)


def softmax(x, axis=-1):  # [..., N] -> [..., N]
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    e /= np.sum(e, axis=axis, keepdims=True)
    return e


# ---------------------------------------------------------------- norms

def layer_norm(x, w, b, eps):  # [..., C], [C], [C] -> [..., C]
    mean = np.mean(x, axis=-1, keepdims=True)  # [..., 1]
    xc = x - mean
    var = np.mean(xc * xc, axis=-1, keepdims=True)  # [..., 1]
    xc *= 1.0 / np.sqrt(var + eps)
    xc *= w
    xc += b
    return xc


def rms_norm(x, w, eps):  # [T, D], [D] -> [T, D]
    ms = np.mean(x * x, axis=-1, keepdims=True)  # [T, 1]
    y = x * (1.0 / np.sqrt(ms + eps))
    y *= w
    return y


# ---------------------------------------------------------------- convolutions

def _pad_hw(x, p):  # [H, W, C] -> [H + 2p, W + 2p, C]
    if p == 0:
        return x
    return np.pad(x, ((p, p), (p, p), (0, 0)))


def _out_size(n, k, stride):
    return (n + 2 * (k // 2) - k) // stride + 1


def depthwise_conv2d(x, w, b, stride=1):  # [H, W, C], [C*m, 1, K, K], [C*m] -> [Ho, Wo, C*m]
    """Grouped conv with one input channel per group (groups = C), padding K // 2.

    Output channel o reads input channel o // m. Shifted multiply-adds over the K*K taps:
    2 NumPy calls per tap, no im2col buffer (measured faster than sliding-window einsum).
    """
    h, wd, c = x.shape
    c_out, _, k, _ = w.shape
    if c_out != c:
        x = np.repeat(x, c_out // c, axis=-1)  # [H, W, C*m]
    xp = _pad_hw(x, k // 2)  # [H+2p, W+2p, C*m]
    ho, wo = _out_size(h, k, stride), _out_size(wd, k, stride)
    taps = np.ascontiguousarray(w[:, 0].transpose(1, 2, 0))  # [K, K, C*m]
    out = np.empty((ho, wo, c_out), dtype=np.float32)
    out[...] = b
    tmp = np.empty_like(out)
    for i in range(k):
        for j in range(k):
            np.multiply(xp[i:i + stride * ho:stride, j:j + stride * wo:stride], taps[i, j], out=tmp)
            out += tmp
    return out


def im2col(x, k, stride):  # [H, W, C] -> [Ho*Wo, K*K*C]
    h, wd, c = x.shape
    xp = np.ascontiguousarray(_pad_hw(x, k // 2))
    ho, wo = _out_size(h, k, stride), _out_size(wd, k, stride)
    s0, s1, s2 = xp.strides
    win = as_strided(xp, (ho, wo, k, k, c), (s0 * stride, s1 * stride, s0, s1, s2))  # view
    return win.reshape(ho * wo, k * k * c)  # copy


def conv2d(x, w, b, stride=1, groups=1, backend=None):  # [H, W, C_in], [C_out, C_in/g, K, K], [C_out] -> [Ho, Wo, C_out]
    """2-D convolution, channels-last, padding K // 2; groups=C_in goes depthwise."""
    backend = backend or Backend()
    h, wd, c_in = x.shape
    c_out, c_per_group, k, _ = w.shape
    assert c_in == c_per_group * groups and c_out % groups == 0, (x.shape, w.shape, groups)
    if c_per_group == 1 and groups == c_in:
        return depthwise_conv2d(x, w, b, stride)
    ho, wo = _out_size(h, k, stride), _out_size(wd, k, stride)
    if k == 1 and stride == 1 and groups == 1:
        return backend.linear(x.reshape(h * wd, c_in), w.reshape(c_out, c_in), b).reshape(h, wd, c_out)
    c_out_g = c_out // groups
    outs = []
    for g in range(groups):  # groups > 1 with several channels per group: rare, loop is fine
        xg = x[:, :, g * c_per_group:(g + 1) * c_per_group]
        cols = im2col(xg, k, stride)  # [Ho*Wo, K*K*Cg]
        wg = w[g * c_out_g:(g + 1) * c_out_g].transpose(0, 2, 3, 1).reshape(c_out_g, -1)  # [Cg_out, K*K*Cg]
        outs.append(backend.linear(cols, np.ascontiguousarray(wg)))
    y = outs[0] if groups == 1 else np.concatenate(outs, axis=-1)  # [Ho*Wo, C_out]
    y += b
    return y.reshape(ho, wo, c_out)


# ---------------------------------------------------------------- attention

def rope_tables(n_pos, head_dim, theta):  # -> cos [P, Dh], sin [P, Dh]
    """RoPE tables in the rotate-half (HF/NeoX) layout: inv_freq[i] = theta^(-2i/Dh)."""
    inv_freq = 1.0 / theta ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)  # [Dh/2]
    freqs = np.outer(np.arange(n_pos, dtype=np.float64), inv_freq)  # [P, Dh/2]
    emb = np.concatenate([freqs, freqs], axis=-1)  # [P, Dh]
    return np.cos(emb).astype(np.float32), np.sin(emb).astype(np.float32)


def rope(x, cos, sin):  # [H, T, Dh], [T, Dh], [T, Dh] -> [H, T, Dh]
    half = x.shape[-1] // 2
    rot = np.concatenate([-x[..., half:], x[..., :half]], axis=-1)  # rotate_half
    rot *= sin
    y = x * cos
    y += rot
    return y


def attention(q, k, v, causal_from=None, backend=None):  # [H, T, Dh], [Hkv, P, Dh], [Hkv, P, Dh] -> [H, T, Dh]
    """Scaled dot-product attention with GQA (head h reads KV head h // (H / Hkv)).

    causal_from: absolute position of q's first row, so row t sees keys 0 .. causal_from + t;
    None means no mask (all keys visible).
    """
    backend = backend or Backend()
    n_heads, t, dh = q.shape
    n_kv, p, _ = k.shape
    group = n_heads // n_kv
    qg = q.reshape(n_kv, group * t, dh) * np.float32(1.0 / np.sqrt(dh))  # [Hkv, G*T, Dh]
    scores = backend.bmm(qg, k.transpose(0, 2, 1))  # [Hkv, G*T, P]
    if causal_from is not None and t > 1:  # one new row sees the whole (sliced) cache
        rows = np.arange(causal_from, causal_from + t)[:, None]  # [T, 1]
        mask = np.where(np.arange(p)[None, :] > rows, np.float32(-np.inf), np.float32(0))  # [T, P]
        scores = scores.reshape(n_kv, group, t, p)
        scores += mask
        scores = scores.reshape(n_kv, group * t, p)
    probs = softmax(scores)  # [Hkv, G*T, P]
    out = backend.bmm(probs, v)  # [Hkv, G*T, Dh]
    return out.reshape(n_heads, t, dh)
