"""NumPy stand-ins for the module's exports, for CPython tests of SimdBackend.

They follow the exports' contract exactly (byte addresses + sizes, bias address 0 = none,
the packed panel layout) but read and write process memory through ctypes, so a model
run on `SimdBackend(*emulated_exports())` in CPython exercises the same addresses,
checks, packing and dispatch as the browser. A wrong address crashes here too.
"""

from __future__ import annotations

import ctypes

import numpy as np

from .backend import PANEL


def _view(addr, shape):  # byte address -> float32 array of `shape` over that memory
    size = int(np.prod(shape))
    if size == 0:
        return np.zeros(shape, np.float32)
    return np.ctypeslib.as_array((ctypes.c_float * size).from_address(addr)).reshape(shape)


def emulated_exports(calls=None):
    """(gemm_packed, gemm_dot) computing in NumPy; calls (a list) records (name, m, n, k)."""

    def finish(a, w, bias, c, m, n, k):  # w: [N, K] view
        out = _view(c, (m, n))
        out[...] = _view(a, (m, k)) @ w.T
        if bias:
            out += _view(bias, (n,))

    def gemm_packed(a, wp, bias, c, m, n, k):
        if calls is not None:
            calls.append(("gemm_packed", m, n, k))
        n_panels = -(-n // PANEL)
        panels = _view(wp, (n_panels, k, PANEL))  # [N8/8, K, 8]
        finish(a, panels.transpose(0, 2, 1).reshape(n_panels * PANEL, k)[:n], bias, c, m, n, k)

    def gemm_dot(a, w, bias, c, m, n, k):
        if calls is not None:
            calls.append(("gemm_dot", m, n, k))
        finish(a, _view(w, (n, k)), bias, c, m, n, k)

    return gemm_packed, gemm_dot


def emulated_gelu(calls=None):
    """A stand-in for the module's gelu(x, y, n) export (GELU of the first n // 4 * 4 floats)."""
    from ..kernels import gelu as numpy_gelu

    def gelu(x, y, n):
        if calls is not None:
            calls.append(("gelu", n))
        n4 = n - n % 4
        if n4:
            numpy_gelu(_view(x, (n4,)), out=_view(y, (n4,)))

    return gelu


def emulated_swiglu(calls=None):
    """A stand-in for the module's swiglu(gu, y, rows, f) export."""
    from ..kernels import silu

    def swiglu(gu, y, rows, f):
        if calls is not None:
            calls.append(("swiglu", rows, f))
        x = _view(gu, (rows, 2 * f))
        _view(y, (rows, f))[...] = silu(x[:, :f]) * x[:, f:]

    return swiglu


def emulated_dw_s2(calls=None):
    """A stand-in for the module's dw_s2(xp, taps, bias, out, Ho, Wo, K, Wp, C) export."""

    def dw_s2(xp, taps, bias, out, ho, wo, k, wp, c):
        if calls is not None:
            calls.append(("dw_s2", ho, wo, k, c))
        x = _view(xp, (2 * ho + k - 2, wp, c))  # the rows the kernel reads
        t = _view(taps, (k, k, c))
        y = _view(out, (ho, wo, c))
        y[...] = _view(bias, (c,))
        for i in range(k):
            for j in range(k):
                y += x[i:i + 2 * ho:2, j:j + 2 * wo:2] * t[i, j]

    return dw_s2


def emulated_resize_rgba(calls=None):
    """A stand-in for the module's resize_rgba(src, stride, side, idx, wt, k, tmp, dst, s, sb) export."""
    from numpy.lib.stride_tricks import as_strided

    def resize_rgba(src, stride, side, idx, wt, k, tmp, dst, s, sb):
        if calls is not None:
            calls.append(("resize_rgba", side, s, k))
        raw = np.ctypeslib.as_array((ctypes.c_uint8 * (stride * (side - 1) + 4 * side)).from_address(src))
        x = as_strided(raw, (side, side, 4), (stride, 4, 1)).astype(np.float32)  # [side, side, 4]
        index = np.ctypeslib.as_array((ctypes.c_int32 * (s * k)).from_address(idx)).reshape(s, k)
        weight = _view(wt, (s, k))
        t = _view(tmp, (s, side, 4))
        t[...] = sum(weight[:, j, None, None] * x[index[:, j]] for j in range(k))  # columns: [s, side, 4]
        y = sum(weight[None, :, j, None] * t[:, index[:, j]] for j in range(k))  # rows: [s, s, 4]
        p = _view(sb, (8,))
        _view(dst, (s, s, 3))[...] = y[..., :3] * p[:3] + p[4:7]

    return resize_rgba


def emulated_dw_rows(calls=None):
    """A stand-in for the module's dw_rows(xp, taps, bias, out, H, K, N, Lp, C) export."""
    from numpy.lib.stride_tricks import as_strided

    def dw_rows(xp, taps, bias, out, h, k, n, lp, c):
        if calls is not None:
            calls.append(("dw_rows", h, k, n))
        x = _view(xp, ((h + k - 1) * lp,))
        s = x.itemsize
        win = as_strided(x, (h, k, k, n), (lp * s, lp * s, c * s, s), writeable=False)
        _view(out, (h, n))[...] = np.einsum("hijn,ijn->hn", win, _view(taps, (k, k, n))) + _view(bias, (n,))

    return dw_rows


def emulated_softmax_rows(calls=None):
    """A stand-in for the module's softmax_rows(x, y, rows, n) export."""
    from ..kernels import softmax

    def softmax_rows(x, y, rows, n):
        if calls is not None:
            calls.append(("softmax_rows", rows, n))
        _view(y, (rows, n))[...] = softmax(_view(x, (rows, n)))

    return softmax_rows


def emulated_attend(calls=None):
    """A stand-in for the module's attend(q, k, v, out, s, T, P, H, G, Dh, ldq, hsq, ldkv, hskv,
    ldo, hso, causal, scale) export (strides in floats; see wasm/gen.py _attend)."""
    from numpy.lib.stride_tricks import as_strided

    def strided(addr, a, b, d, sa, sb):  # float32 [a, b, d] view with float strides (sa, sb, 1)
        flat = _view(addr, ((a - 1) * sa + (b - 1) * sb + d,))
        return as_strided(flat, (a, b, d), (4 * sa, 4 * sb, 4))

    def attend(q, k, v, out, s, t, p, h, g, dh, ldq, hsq, ldkv, hskv, ldo, hso, causal, scale):
        if calls is not None:
            calls.append(("attend", t, p, h, g, dh, causal))
        qv, ov = strided(q, h, t, dh, hsq, ldq), strided(out, h, t, dh, hso, ldo)
        kv, vv = strided(k, h // g, p, dh, hskv, ldkv), strided(v, h // g, p, dh, hskv, ldkv)
        _view(s, (t * -(-p // 4) * 4,))[...] = np.nan  # the scratch rows are the kernel's to overwrite
        for hh in range(h):
            scores = qv[hh] @ kv[hh // g].T * np.float32(scale)  # [T, P]
            if causal >= 0:
                scores[np.arange(p)[None, :] > causal + np.arange(t)[:, None]] = -np.inf
            e = np.exp(scores - scores.max(axis=1, keepdims=True))
            ov[hh] = (e / e.sum(axis=1, keepdims=True)) @ vv[hh // g]

    return attend


def emulated_rope(calls=None):
    """A stand-in for the module's rope(x, ldx, cs, sn, out, ldo, hso, T, H, Dh) export."""
    from numpy.lib.stride_tricks import as_strided

    from ..kernels import rope_swapped

    def rope(x, ldx, cs, sn, out, ldo, hso, t, h, dh):
        if calls is not None:
            calls.append(("rope", t, h, dh))
        xv = as_strided(_view(x, ((t - 1) * ldx + h * dh,)), (t, h, dh), (4 * ldx, 4 * dh, 4))
        ov = as_strided(_view(out, ((t - 1) * ldo + (h - 1) * hso + dh,)), (t, h, dh), (4 * ldo, 4 * hso, 4))
        ov[...] = rope_swapped(xv.copy(), _view(cs, (t, 1, dh)), _view(sn, (t, 1, dh)))

    return rope


def emulated_rms_rows(calls=None):
    """A stand-in for the module's rms_rows(x, y, rows, n, eps) export."""
    from ..kernels import rms_norm

    def rms_rows(x, y, rows, n, eps):
        if calls is not None:
            calls.append(("rms_rows", rows, n))
        _view(y, (rows, n))[...] = rms_norm(_view(x, (rows, n)), None, eps)

    return rms_rows
