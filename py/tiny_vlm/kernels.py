"""Pure NumPy kernels: small functions, shape signature on the def line.

Activations are float32. Image activations are channels-last [H, W, C]; linear weights
are [out, in]; conv weights are [C_out, C_in / groups, K, K].

The GEMM formulation is chosen in one place, `Backend` (DESIGN.md §4). Everything that
multiplies by a weight matrix goes through `Backend.linear`; attention goes through
`Backend.attention` (here: batched products through `Backend.bmm` and a softmax); GELU,
SwiGLU, depthwise convs and the image resize go through `Backend` too, so that the WASM
SIMD backend can run them (the functions here are the NumPy versions every backend falls
back to).
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


class PackedLinear:
    """A linear weight as Backend.pack prepares it for BLAS: W^T [in, out], C-contiguous.

    Measured natively (OpenBLAS, one thread): x @ W^T from this layout is 1.2-1.4x faster
    than from the stored [out, in] layout on the tower's and decoder's shapes
    ([64, 192] @ [192, 576]: 67 vs 91 us); the whole image encode 6.1 -> 5.75 ms.
    """

    __slots__ = ("wt",)

    def __init__(self, w) -> None:  # w: [out, in]
        self.wt = np.ascontiguousarray(w.T, dtype=np.float32)  # [in, out]


class Backend:
    """The one dispatch point for matrix products.

    `gemm` is "matmul" (BLAS, CPython) or "einsum" (Pyodide). The WASM SIMD kernels plug in
    by subclassing (wasm.backend.SimdBackend) and overriding `pack` and `linear`, and
    optionally `bmm`, `attention`, `rope`, `rms_norm`, `gelu`, `swiglu`, `softmax`,
    `depthwise_conv2d_rows`, `depthwise_conv2d`, `resize_normalize` and `stride2_as_rows`.
    The model holds one Backend, prepares every weight with `pack` once at load and passes
    every weight product through `linear` with what `pack` returned.
    """

    def __init__(self, gemm: str | None = None) -> None:
        gemm = DEFAULT_GEMM if gemm is None else gemm
        if gemm not in GEMMS:
            raise ValueError(f"Backend gemm {gemm!r} is not one of {GEMMS}")
        self.gemm = gemm

    @property
    def name(self) -> str:
        return f"numpy-{self.gemm}"

    @property
    def stride2_as_rows(self) -> bool:
        """Whether a 3x3 stride-2 depthwise conv (the stem's) should run as the stride-1 row
        kernel with every other output kept (4x the taps). Not in NumPy: in CPython the
        strided einsum is never slower (192 px stem: 0.40 against 0.44 ms, and 1.4 ms when
        glibc hands the row form's 1.2 MB output fresh pages); a SIMD backend's row kernel wins."""
        return False

    def pack(self, w, b=None):  # [out, in], [out] -> the weight as `linear` takes it
        """Prepare a C-contiguous float32 weight once, at load: a PackedLinear (W^T) for BLAS
        matmul; w itself for einsum, whose 'ik,jk->ij' loop reads the stored layout best."""
        return PackedLinear(w) if self.gemm == "matmul" else w

    def linear(self, x, w, b=None, out=None):  # [T, in], [out, in] | PackedLinear, [out] -> [T, out]
        if type(w) is PackedLinear:
            y = np.matmul(x, w.wt, out=out)
        elif self.gemm == "matmul":
            y = np.matmul(x, w.T, out=out)
        else:
            y = np.einsum("ik,jk->ij", x, w, out=out)
        if b is not None:
            y += b
        return y

    def resize_normalize(self, crop, size: int, mean, inv_std):  # uint8 [side, side, 3|4] -> [size, size, 3]
        """The image processor's square crop resized to size x size and normalised per channel
        ((x / 255 - mean) * inv_std; a SIMD backend has a kernel for RGBA crops)."""
        from .image import resize_normalize

        return resize_normalize(crop, size, mean, inv_std)

    def swiglu(self, gu, out=None):  # [M, 2F] -> [M, F]
        """silu(gu[:, :F]) * gu[:, F:], the decoder's gate (a SIMD backend has a kernel)."""
        f = gu.shape[1] // 2
        g = silu(gu[:, :f], out=out)
        g *= gu[:, f:]
        return g

    def pin(self, buf):  # [M, N] -> the same array
        """A long-lived buffer that `linear` will see again as x or out (a backend that passes
        addresses to its kernels looks it up once, here); nothing to do for NumPy."""
        return buf

    def gelu(self, x, out=None):  # [...] -> [...]
        """GELU in the erf form (kernels.gelu); a backend with a faster elementwise kernel overrides it."""
        return gelu(x, out)

    def depthwise_conv2d_rows(self, x, row_taps, row_bias):  # [H, W, C], [K, K, W*C*m], [W*C*m] -> [H, W, C*m]
        """Stride-1 depthwise conv (kernels.depthwise_conv2d_rows); a SIMD backend overrides it."""
        return depthwise_conv2d_rows(x, row_taps, row_bias)

    def depthwise_conv2d(self, x, taps, b, stride=1):  # [H, W, C], [K, K, C*m], [C*m] -> [Ho, Wo, C*m]
        """Depthwise conv at any stride (kernels.depthwise_conv2d); a SIMD backend has a stride-2 kernel."""
        return depthwise_conv2d(x, taps, b, stride)

    def softmax(self, x):  # [..., N] -> [..., N]
        """Softmax over the last axis (kernels.softmax); a SIMD backend overrides it."""
        return softmax(x)

    def attention(self, q, k, v, causal_from=None, scale="default", out=None):  # [H, T, Dh], [Hkv, P, Dh] x 2 -> [H, T, Dh]
        """kernels.attention (bmm, softmax, bmm), its result written into out (a [H, T, Dh] view,
        e.g. of the [T, H*Dh] rows the output projection reads) when given; a SIMD backend
        has one kernel for all heads that reads strided views in place."""
        o = attention(q, k, v, causal_from, self, scale)
        if out is None:
            return o
        out[...] = o
        return out

    def rope(self, x, cos, sin_signed, out=None):  # [T, H, Dh], [T, Dh], [T, Dh] -> [T, H, Dh]
        """kernels.rope_swapped of T rows of H heads (tables for the rows' positions), into out
        (any [T, H, Dh] view, e.g. of the KV cache) when given; a SIMD backend has a kernel."""
        y = rope_swapped(x, cos[:, None], sin_signed[:, None])
        if out is None:
            return y
        out[...] = y
        return out

    def rms_norm(self, x, eps):  # [T, D] -> [T, D]
        """kernels.rms_norm without weight (folded into the next GEMM); a SIMD backend has a kernel."""
        return rms_norm(x, None, eps)

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

# NumPy has no erf. GELU(x) = x Phi(x), and Phi(x) = (1 + tanh(g(x))) / 2 = 1 / (1 + exp(-2 g(x)))
# with g = atanh(erf(x / sqrt 2)), an odd function that grows like x^2 / 4 for large x: here
# g(x) ~ x P(x^2), P of degree 4 fitted to minimise the largest GELU error relative to
# max(1, |x|) (weighted least squares on atanh(erf(x / sqrt 2)) / x over 0 < x < 5, the
# weights iterated until the weighted error was level). Evaluated in float32 either form's
# error is at most 1.4e-6 * max(1, |x|) (A&S 7.1.26, the form before: 1.6e-7; the WASM
# kernel: 1.5e-6). P's leading coefficient is positive, so g grows without bound and GELU
# goes to x and to 0. Which transcendental is cheap depends on the platform:
# - natively NumPy's float32 tanh is vectorised (0.15 ns/element here, exp 0.27): the tanh
#   form, 14 passes, 1.8x faster than the erfc form it replaced (21 passes and exp; [30720]:
#   45 vs 80 us);
# - in Pyodide both are scalar libm calls and tanh costs 2.7x exp: the exp form, 13 passes
#   with a clamp of x at -6 (GELU(-6) = -6e-9; exp(-2 g) would overflow further out),
#   1.4x faster than the erfc form (378 vs 521 us in Node), the tanh form 674 us.
# Large inputs go in blocks of GELU_BLOCK elements: glibc serves temporaries over ~128 KiB
# with fresh pages (mmap, or a heap top it trims on free), and the page faults cost more
# than the arithmetic: [32, 32, 96] in one piece 794 us, in 30720-element blocks 146 us.
GELU_BLOCK = 30720  # elements: 120 KiB float32 temporaries
_GELU_P = (0.7978566288948059, 0.036413248628377914, -9.725899872137234e-05, -3.5197594115743414e-05,
           1.3515319778889534e-06)  # P(s) = sum c_k s^k, float32 values
# in h = x / 2: x P(x^2) = h P_h(h^2), P_h's c_k times 2^(2k+1) (exact: powers of two)
_GELU_PH = tuple(np.float32(c * 2.0 ** (2 * k + 1)) for k, c in enumerate(_GELU_P))
_GELU_PE = tuple(np.float32(-2.0 * c) for c in _GELU_P)  # -2 g(x) = x (-2 P)(x^2)
_GELU_LO = np.float32(-6.0)
_HALF = np.float32(0.5)


def gelu(x, out=None):  # [...] -> [...]
    """GELU, 0.5 * x * (1 + erf(x / sqrt(2))), within 1.4e-6 * max(1, |x|); out may be x."""
    if x.size <= GELU_BLOCK or not x.flags.c_contiguous or not (out is None or out.flags.c_contiguous):
        return _gelu(x, out)
    out = np.empty_like(x) if out is None else out
    xf, of = x.reshape(-1), out.reshape(-1)  # views (of: out must be contiguous too)
    for i in range(0, xf.size, GELU_BLOCK):
        _gelu(xf[i:i + GELU_BLOCK], of[i:i + GELU_BLOCK])
    return out


def _x_poly_x2(x, c):  # [...], (c0, .., c4) -> x (c0 + c1 x^2 + ... + c4 x^8), a new array
    s = np.square(x)
    g = s * c[4]
    for k in (3, 2, 1):  # Horner in x^2
        g += c[k]
        g *= s
    g += c[0]
    g *= x
    return g


def _gelu_tanh(x, out=None):  # [...] -> [...]
    h = np.multiply(x, _HALF)  # x / 2
    g = _x_poly_x2(h, _GELU_PH)  # g(x) = h P_h(h^2) = x P(x^2)
    np.tanh(g, out=g)
    g *= h
    return np.add(g, h, out=out)  # x/2 + x/2 tanh(g(x)); out may be x


def _gelu_exp(x, out=None):  # [...] -> [...]
    xc = np.maximum(x, _GELU_LO)
    u = _x_poly_x2(xc, _GELU_PE)  # -2 g(x)
    np.exp(u, out=u)  # underflows to 0 for large x, no overflow with x >= -6
    u += 1.0
    return np.divide(xc, u, out=out)  # x / (1 + exp(-2 g(x))); out may be x


_gelu = _gelu_exp if sys.platform == "emscripten" else _gelu_tanh


def silu(x, out=None):  # [...] -> [...] (into out when given)
    e = np.negative(x, out=out)
    np.exp(e, out=e)
    e += 1.0
    np.divide(x, e, out=e)
    return e


def sigmoid(x):  # [...] -> [...]
    return 1.0 / (1.0 + np.exp(-x))


def relu(x):  # [...] -> [...]
    return np.maximum(x, 0.0)


def softmax(x, axis=-1, out=None):  # [..., N] -> [..., N] (into out when given; out may be x)
    # ufunc.reduce directly: np.max / np.sum add Python wrapper layers per call
    e = np.subtract(x, np.maximum.reduce(x, axis=axis, keepdims=True), out=out)
    np.exp(e, out=e)
    e /= np.add.reduce(e, axis=axis, keepdims=True)
    return e


# ---------------------------------------------------------------- norms

def layer_norm(x, w, b, eps):  # [..., C], [C] or None, [C] or None -> [..., C]
    """LayerNorm over the last axis; w and b None: the affine is folded into the next weights.
    Sums by einsum (one call each, no [..., C] temporary for the squares)."""
    inv_c = 1.0 / x.shape[-1]
    xc = x - (np.einsum("...c->...", x) * inv_c)[..., None]
    var = np.einsum("...c,...c->...", xc, xc) * inv_c  # [...]
    xc *= (1.0 / np.sqrt(var + eps))[..., None]
    if w is not None:
        xc *= w
    if b is not None:
        xc += b
    return xc


def rms_norm(x, w, eps):  # [T, D], [D] or None -> [T, D]
    r = np.einsum("td,td->t", x, x)  # sum of squares [T]: one call, no [T, D] temporary, no np.mean wrapper
    r *= 1.0 / x.shape[-1]
    r += eps
    np.sqrt(r, out=r)
    np.divide(1.0, r, out=r)  # 1 / rms [T]
    y = x * r[:, None]
    if w is not None:  # None: the weight was folded into the next GEMM (lm.Layer)
        y *= w
    return y


# ---------------------------------------------------------------- convolutions

def _pad_hw(x, p):  # [H, W, C] -> [H + 2p, W + 2p, C]
    if p == 0:
        return x
    h, w, c = x.shape
    xp = np.zeros((h + 2 * p, w + 2 * p, c), dtype=np.float32)  # two calls; np.pad costs ~10x in Python
    xp[p:p + h, p:p + w] = x
    return xp


def _out_size(n, k, stride):
    return (n + 2 * (k // 2) - k) // stride + 1


def depthwise_taps(w):  # [C*m, 1, K, K] -> [K, K, C*m]
    """The depthwise conv weight channels-last, as `depthwise_conv2d` reads it (prepared once at load)."""
    return np.ascontiguousarray(w[:, 0].transpose(1, 2, 0), dtype=np.float32)


def conv_gemm_weight(w):  # [C_out, C_in, K, K] -> [C_out, K*K*C_in]
    """A groups=1 conv weight in the row order of `im2col`, for Backend.pack (prepared once at load)."""
    return np.ascontiguousarray(w.transpose(0, 2, 3, 1).reshape(w.shape[0], -1), dtype=np.float32)


def depthwise_row_taps(taps, width):  # [K, J, C] -> [K, J, W*C]
    """Taps repeated along a row of `width` pixels, for `depthwise_conv2d_rows` (prepared once at load)."""
    k, j, c = taps.shape
    return np.ascontiguousarray(np.broadcast_to(taps[:, :, None, :], (k, j, width, c)).reshape(k, j, width * c))


def _pad_depthwise(x, k, c_out):  # [H, W, C] -> [H+2p, W+2p, C*m], out channel o reads in channel o // m
    h, wd, c = x.shape
    p = k // 2
    xp = np.zeros((h + 2 * p, wd + 2 * p, c_out), dtype=np.float32)
    if c_out == c:
        xp[p:p + h, p:p + wd] = x
    else:
        xp[p:p + h, p:p + wd].reshape(h, wd, c, c_out // c)[...] = x[:, :, :, None]
    return xp


def depthwise_conv2d(x, taps, b, stride=1):  # [H, W, C], [K, K, C*m], [C*m] -> [Ho, Wo, C*m]
    """Grouped conv with one input channel per group (groups = C), padding K // 2.

    Output channel o reads input channel o // m. One einsum over a strided window view (no
    im2col copy): natively 1.2-2.5x faster than 2 NumPy calls per tap on the tower's shapes
    (7x7 on [8, 8, 192]: 93 vs 238 us), and one call instead of 2*K*K in Pyodide.
    Stride 1 is faster still with `depthwise_conv2d_rows`.
    """
    h, wd, _ = x.shape
    k, _, c_out = taps.shape
    xp = _pad_depthwise(x, k, c_out)  # [H+2p, W+2p, C*m]
    ho, wo = _out_size(h, k, stride), _out_size(wd, k, stride)
    s0, s1, s2 = xp.strides
    win = as_strided(xp, (ho, wo, k, k, c_out), (s0 * stride, s1 * stride, s0, s1, s2), writeable=False)  # view
    out = np.einsum("hwijc,ijc->hwc", win, taps)  # [Ho, Wo, C*m]
    out += b
    return out


def depthwise_conv2d_rows(x, row_taps, row_bias):  # [H, W, C], [K, K, W*C*m], [W*C*m] -> [H, W, C*m]
    """Stride-1 depthwise conv with each image row flattened to W*C values: tap (i, j) reads
    the padded row h+i from offset j*C, so einsum's inner loop runs over W*C contiguous values
    instead of C. Natively 1.2-3x faster than `depthwise_conv2d` (7x7 on [32, 32, 32]: 196
    vs 517 us; 3x3 on [32, 32, 32]: 50 vs 154 us), in Pyodide 1.1-2x. row_taps and row_bias:
    `depthwise_row_taps(taps, W)` and the bias repeated W times (prepared once at load).
    """
    h, wd, _ = x.shape
    k, _, n = row_taps.shape
    c_out = n // wd
    xp = _pad_depthwise(x, k, c_out)  # [H+2p, W+2p, C*m]
    s0 = xp.strides[0]
    win = as_strided(xp, (h, k, k, n), (s0, s0, c_out * xp.itemsize, xp.itemsize), writeable=False)  # view
    out = np.einsum("hijn,ijn->hn", win, row_taps)  # [H, W*C*m]
    out += row_bias
    return out.reshape(h, wd, c_out)


def im2col(x, k, stride):  # [H, W, C] -> [Ho*Wo, K*K*C]
    h, wd, c = x.shape
    xp = _pad_hw(x, k // 2)
    ho, wo = _out_size(h, k, stride), _out_size(wd, k, stride)
    s0, s1, s2 = xp.strides
    win = as_strided(xp, (ho, wo, k, k, c), (s0 * stride, s1 * stride, s0, s1, s2), writeable=False)  # view
    return win.reshape(ho * wo, k * k * c)  # copy, C-contiguous


def conv2d_gemm(x, w_gemm, b, k, stride, backend):  # [H, W, C_in], [C_out, K*K*C_in] (packed), [C_out] -> [Ho, Wo, C_out]
    """groups=1 conv as im2col + one Backend.linear; w_gemm from `conv_gemm_weight`, packed with b."""
    h, wd, _ = x.shape
    ho, wo = _out_size(h, k, stride), _out_size(wd, k, stride)
    return backend.linear(im2col(x, k, stride), w_gemm, b).reshape(ho, wo, -1)


def conv2d(x, w, b, stride=1, groups=1, backend=None):  # [H, W, C_in], [C_out, C_in/g, K, K], [C_out] -> [Ho, Wo, C_out]
    """2-D convolution, channels-last, padding K // 2; groups=C_in goes depthwise.

    Reference entry taking the stored weight layout; the model prepares its weights once
    at load (`depthwise_taps`, `conv_gemm_weight` + Backend.pack) and calls the kernels.
    """
    backend = backend or Backend()
    h, wd, c_in = x.shape
    c_out, c_per_group, k, _ = w.shape
    assert c_in == c_per_group * groups and c_out % groups == 0, (x.shape, w.shape, groups)
    if c_per_group == 1 and groups == c_in and stride == 1:
        return depthwise_conv2d_rows(x, depthwise_row_taps(depthwise_taps(w), wd), np.tile(b, wd))
    if c_per_group == 1 and groups == c_in:
        return depthwise_conv2d(x, depthwise_taps(w), b, stride)
    if groups == 1:
        return conv2d_gemm(x, conv_gemm_weight(w), b, k, stride, backend)
    ho, wo = _out_size(h, k, stride), _out_size(wd, k, stride)
    c_out_g = c_out // groups
    outs = []
    for g in range(groups):  # groups > 1 with several channels per group: rare, loop is fine
        xg = np.ascontiguousarray(x[:, :, g * c_per_group:(g + 1) * c_per_group])
        outs.append(conv2d_gemm(xg, conv_gemm_weight(w[g * c_out_g:(g + 1) * c_out_g]), None, k, stride, backend))
    y = np.concatenate(outs, axis=-1)  # [Ho, Wo, C_out]
    y += b
    return y.reshape(ho, wo, c_out)


# ---------------------------------------------------------------- attention

def rope_tables(n_pos, head_dim, theta):  # -> cos [P, Dh], sin [P, Dh]
    """RoPE tables in the rotate-half (HF/NeoX) layout: inv_freq[i] = theta^(-2i/Dh)."""
    inv_freq = 1.0 / theta ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)  # [Dh/2]
    freqs = np.outer(np.arange(n_pos, dtype=np.float64), inv_freq)  # [P, Dh/2]
    emb = np.concatenate([freqs, freqs], axis=-1)  # [P, Dh]
    return np.cos(emb).astype(np.float32), np.sin(emb).astype(np.float32)


def rope_signed_sin(sin):  # [P, Dh] -> [P, Dh]
    """sin with its first half negated, so that rotate_half(x) * sin == swap_halves(x) * this."""
    half = sin.shape[-1] // 2
    return np.concatenate([-sin[..., :half], sin[..., half:]], axis=-1)


def rope_swapped(x, cos, sin_signed):  # [..., Dh], cos and sin_signed broadcastable -> [..., Dh]
    """rope(x) as 4 NumPy calls: x * cos + swap_halves(x) * sin_signed (rope_signed_sin).

    The decoder rotates q and k of a step together with it (one call sequence instead of
    two calls of 5), which counts in Pyodide where each call costs microseconds.
    """
    half = x.shape[-1] // 2
    rot = np.concatenate([x[..., half:], x[..., :half]], axis=-1)  # swap halves
    rot *= sin_signed
    y = x * cos
    y += rot
    return y


# Natively, attention over several rows is 1.2-1.3x faster per call with the scores transposed,
# keys down the rows [Hkv, P, G*T]: the softmax's max and sum run across rows (elementwise
# ufunc loops over G*T contiguous floats) instead of one reduction per 64-84-float row (a
# vision block's [6, 64, 64]: 69 -> 53 us; a prefill layer's: 101 -> 82 us). In Pyodide's
# einsum the transposed products cost more than that saves (1.9 -> 2.5 ms per prefill layer).
ATTENTION_KEYS_DOWN = sys.platform != "emscripten"


def attention(q, k, v, causal_from=None, backend=None, scale="default"):  # [H, T, Dh], [Hkv, P, Dh], [Hkv, P, Dh] -> [H, T, Dh]
    """Scaled dot-product attention with GQA (head h reads KV head h // (H / Hkv)).

    causal_from: absolute position of q's first row, so row t sees keys 0 .. causal_from + t;
    None means no mask (all keys visible). scale: "default" multiplies q by 1/sqrt(Dh); None
    when q comes scaled already (the decoder folds it into its q weights).
    """
    backend = backend or Backend()
    n_heads, t, dh = q.shape
    n_kv, p, _ = k.shape
    group = n_heads // n_kv
    qg = q.reshape(n_kv, group * t, dh)  # [Hkv, G*T, Dh]
    if scale is not None:
        qg = qg * np.float32(1.0 / np.sqrt(dh))
    if t == 1 or not ATTENTION_KEYS_DOWN:  # rows of P scores [Hkv, G*T, P], one softmax call (a SIMD backend's kernel)
        scores = backend.bmm(qg, k.transpose(0, 2, 1))
        if causal_from is not None and t > 1:  # one new row sees the whole (sliced) cache
            rows = np.arange(causal_from, causal_from + t)[:, None]  # [T, 1]
            mask = np.where(np.arange(p)[None, :] > rows, np.float32(-np.inf), np.float32(0))  # [T, P]
            scores = scores.reshape(n_kv, group, t, p)
            scores += mask
            scores = scores.reshape(n_kv, group * t, p)
        return backend.bmm(backend.softmax(scores), v).reshape(n_heads, t, dh)  # [Hkv, G*T, Dh] -> [H, T, Dh]
    st = backend.bmm(k, qg.transpose(0, 2, 1))  # [Hkv, P, G*T]
    if causal_from is not None:
        keys, rows = np.arange(p)[:, None], np.arange(causal_from, causal_from + t)[None, :]
        mask = np.where(keys > rows, np.float32(-np.inf), np.float32(0))  # [P, T]
        st = st.reshape(n_kv, p, group, t)
        st += mask[:, None, :]
        st = st.reshape(n_kv, p, group * t)
    softmax(st, axis=1, out=st)
    return backend.bmm(st.transpose(0, 2, 1), v).reshape(n_heads, t, dh)  # [Hkv, G*T, Dh] -> [H, T, Dh]
