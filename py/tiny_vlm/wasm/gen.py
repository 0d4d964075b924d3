"""Generate the WAT text of the float32 WASM SIMD GEMM module (and assemble it with wabt).

    python -m tiny_vlm.wasm.gen OUTDIR [--wat2wasm PATH]

writes `tiny_vlm_gemm_relaxed.wat` (FMA via `f32x4.relaxed_madd`) and
`tiny_vlm_gemm_simd128.wat` (plain SIMD128 mul + add) and, when wat2wasm is found, the
matching `.wasm` files. Both modules export the same eleven functions, every argument an i32
(byte addresses into the imported memory, then sizes) but attend's scale and rms_rows' eps (f32):

    gemm_packed(a, wp, bias, c, M, N, K)   C[M, N] = A[M, K] @ W[N, K]^T (+ bias[N])
                                           W given packed: wp = pack(W) [ceil(N/8), K, 8]
    gemm_dot(a, w, bias, c, M, N, K)       same product, W in the Linear layout [N, K]
    gelu(x, y, n)                          y = GELU(x) (erf as a fitted rational function) on n // 4 * 4 floats
    swiglu(gu, y, rows, f)                 y = silu(gu[:, :f]) * gu[:, f:] (f % 4 == 0)
    softmax_rows(x, y, rows, n)            y[r] = softmax(x[r]) for rows of n floats
    dw_rows(xp, taps, bias, out, H, K, N, Lp, C)
                                           stride-1 depthwise conv on flattened rows (see _dw_rows)
    dw_s2(xp, taps, bias, out, Ho, Wo, K, Wp, C)
                                           stride-2 depthwise conv, channels last (see _dw_s2)
    resize_rgba(src, stride, side, idx, wt, k, tmp, dst, S, sb)
                                           uint8 RGBA crop -> normalised float32 [S, S, 3] (see _resize_rgba)
    attend(q, k, v, out, s, T, P, H, G, Dh, ldq, hsq, ldkv, hskv, ldo, hso, causal, scale)
                                           attention of all heads on strided views (see _attend)
    rope(x, ldx, cs, sn, out, ldo, hso, T, H, Dh)
                                           the decoder's rotary embedding, strided out (see _rope)
    rms_rows(x, y, rows, n, eps)           y[r] = x[r] / rms(x[r])

The last nine exist because Pyodide's NumPy has no SIMD and a scalar libm (and attention
per head cost a Python call per product plus copies: 0.32 ms per vision block): measured in
Chromium, GELU of [32, 32, 96] took 1.05-1.45 ms in NumPy (then 21 passes, exp alone 0.35 ms),
a decode step's softmax ~50 us (5 calls), the decoder's SiLU gate of a prefill ~1 ms (Node),
the default tower's stride-1 depthwise convs ~5 ms in einsum, its two stride-2 7x7 ones
~1.8 ms, and a 224 -> 128 frame's
resize and normalisation 2.2-2.6 ms in NumPy.

bias == 0 means "no bias" (address 0 is the null pointer in Emscripten; no array lives
there). K == 0 gives C = bias (or 0). The kernels read only A[M, K], W (packed or not)
and bias[N], write only C[M, N], and keep every intermediate in locals: no shadow stack,
no globals, no data segment, no start function; the only import is `env.memory`, so the
module works on Pyodide's own memory and keeps working after that memory grows.

Tile shapes. V8 on x64 gives WASM code the 16 xmm registers, and TurboFan schedules all
loads of a loop body first (measured: the disassembly of an unrolled 6x8 tile showed every
broadcast hoisted and ~40 spill moves per iteration). So the rule is: accumulators + every
vector loaded in one loop iteration <= 16, and no k-unrolling that multiplies the loads.
Measured in Node 20 (V8 11.3) on this AMD EPYC (Zen 4), GFLOP/s at [49,256]x[256,1024]:
packed 6x8 unrolled x4 41, 6x8 x1 31, 5x8 x1 28, 4x8 x2 33, 4x8 x1 58-62 (chosen);
dot 3x4 31, 1x4 37, 2x4 57-60 (chosen). The 128-bit FMA peak here is ~60.
- gemm_packed, 4x8 register tile: 4 rows of A x one 8-wide panel of packed W. Per k it
  loads 2 vectors of W (the panel row, contiguous thanks to packing) and 4 broadcast
  scalars of A, and does 8 FMAs into 8 accumulators: 8 + 2 + 4 = 14 registers (the
  plain build's mul temporaries fit in the other 2). The W panel (K * 32 bytes) stays in
  L1/L2 while all row tiles of A stream past it. Row tails (M % 4) get their own 1..3-row
  tiles; the last panel of a width N % 8 is zero-padded by pack() and stored lane by lane.
- gemm_dot, 2x4 tile for small M (decode steps: M = 1 is a matrix-vector product and no
  packing pays off): 2 rows of A x 4 rows of W, each step loads 4 consecutive k of each
  and does 8 FMAs into 8 vector accumulators (8 + 2 + 4 = 14 registers), then one 4x4
  transpose-add reduces the 4 partial sums of each accumulator and stores 4 adjacent C
  values at once. N % 4 columns use a 2x1 tile, M % 2 rows a 1x4/1x1 tile, K % 4 steps
  load single floats into lane 0 (v128.load32_zero) so no lane ever reads past a row.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

PACKED_ROWS = 4   # MR of gemm_packed: 4x8 tile, 14 xmm registers (see module docstring)
PACKED_UNROLL = 1  # k steps per gemm_packed loop iteration (see module docstring)
PANEL = 8         # NR of gemm_packed: two f32x4 vectors; pack() pads N to a multiple of 8
DOT_ROWS = 2      # rows of A per gemm_dot tile
DOT_COLS = 4      # rows of W per gemm_dot tile (one 4x4 transpose-add per tile)
BUILDS = ("relaxed", "simd128")  # file stems: tiny_vlm_gemm_<build>.wat / .wasm


def _shuffle(lanes):  # 4 f32 lanes picked from (x, y): 0-3 from x, 4-7 from y -> 16 byte lanes
    return "i8x16.shuffle " + " ".join(str(4 * lane + byte) for lane in lanes for byte in range(4))


def _lanes(op: str, v: str) -> str:
    """f32 expression (op (op v0 v1) (op v2 v3)) of the lanes of v128 local v: f32.add sums them, f32.max takes their max."""
    lane = [f"(f32x4.extract_lane {i} (local.get {v}))" for i in range(4)]
    return f"({op} ({op} {lane[0]} {lane[1]}) ({op} {lane[2]} {lane[3]}))"


def _transpose_add(s: list[str], x: str, t: str) -> list[str]:
    """Stack code that leaves [sum of s[0]'s lanes, ..., sum of s[3]'s lanes] (four v128 locals)
    as one vector: a 4x4 transpose-add through the scratch locals x and t."""
    return [f"local.get {s[0]}", f"local.get {s[1]}", _shuffle([0, 4, 1, 5]),
            f"local.get {s[0]}", f"local.get {s[1]}", _shuffle([2, 6, 3, 7]), "f32x4.add",
            f"local.set {x}",  # [s0_0+s0_2, s1_0+s1_2, s0_1+s0_3, s1_1+s1_3]
            f"local.get {s[2]}", f"local.get {s[3]}", _shuffle([0, 4, 1, 5]),
            f"local.get {s[2]}", f"local.get {s[3]}", _shuffle([2, 6, 3, 7]), "f32x4.add",
            f"local.set {t}",
            f"local.get {x}", f"local.get {t}", _shuffle([0, 1, 4, 5]),
            f"local.get {x}", f"local.get {t}", _shuffle([2, 3, 6, 7]), "f32x4.add"]


class _Wat:
    """A line buffer with the two builds' multiply-accumulate."""

    def __init__(self, relaxed: bool) -> None:
        self.relaxed = relaxed
        self.lines: list[str] = []

    def __call__(self, *lines: str) -> None:
        self.lines.extend(lines)

    def madd(self, acc: str, x: str, y: str) -> None:  # acc += x * y, lanewise
        if self.relaxed:  # one fused instruction (vfmadd231ps on x64 with FMA)
            self(f"local.get {x}", f"local.get {y}", f"local.get {acc}", "f32x4.relaxed_madd",
                 f"local.set {acc}")
        else:
            self(f"local.get {acc}", f"local.get {x}", f"local.get {y}", "f32x4.mul", "f32x4.add",
                 f"local.set {acc}")

    def text(self) -> str:
        return "\n".join(self.lines)


def _helpers() -> str:
    """Lane-wise partial loads/stores for the N tails (bias and C are never over-read/written)."""
    load = ["(func $load_part (param $p i32) (param $n i32) (result v128)  ;; lanes < n of f32[p], rest 0",
            "  (local $v v128)"]
    for lane in range(3):
        load += [f"  (if (i32.gt_u (local.get $n) (i32.const {lane})) (then",
                 f"    (local.set $v (f32x4.replace_lane {lane} (local.get $v) (f32.load offset={4 * lane} (local.get $p))))))"]
    load += ["  (if (i32.gt_u (local.get $n) (i32.const 3)) (then",
             "    (local.set $v (v128.load (local.get $p)))))",
             "  (local.get $v))"]
    store = ["(func $store_part (param $p i32) (param $v v128) (param $n i32)  ;; f32[p + lane] = v[lane] for lane < min(n, 4)"]
    for lane in range(4):
        store += [f"  (if (i32.gt_u (local.get $n) (i32.const {lane})) (then",
                  f"    (f32.store offset={4 * lane} (local.get $p) (f32x4.extract_lane {lane} (local.get $v)))))"]
    store[-1] += ")"
    return "\n".join(load + store)


# ------------------------------------------------------------------ gemm_packed

def _packed_tile(w: _Wat, mr: int, unroll: int) -> None:
    """One mr x 8 tile at rows i.., panel j0: accumulate over K, add bias, store C."""
    w(f";; ---- {mr}x8 tile", "local.get $a", "local.get $i", "local.get $lda", "i32.mul", "i32.add",
      "local.set $a0")
    for r in range(1, mr):
        w(f"local.get $a{r - 1}", "local.get $lda", "i32.add", f"local.set $a{r}")
    for r in range(mr):
        w(f"local.get $b0", f"local.set $c{r}_0", f"local.get $b1", f"local.set $c{r}_1")
    w("local.get $wpan", "local.set $wk", "i32.const 0", "local.set $kk")

    def step(u: int) -> None:  # one k: 2 panel vectors x mr broadcast scalars
        w(f"local.get $wk", f"v128.load offset={32 * u}", "local.set $w0",
          f"local.get $wk", f"v128.load offset={32 * u + 16}", "local.set $w1")
        for r in range(mr):
            w(f"local.get $a{r}", "local.get $kk", "i32.add", f"v128.load32_splat offset={4 * u}",
              "local.set $x")
            w.madd(f"$c{r}_0", "$x", "$w0")
            w.madd(f"$c{r}_1", "$x", "$w1")

    if unroll > 1:  # k in steps of `unroll` while kk < kendu, then single steps while kk < kend
        w("(block $ku_done", "local.get $kk", "local.get $kendu", "i32.ge_u", "br_if $ku_done", "(loop $ku")
        for u in range(unroll):
            step(u)
        w("local.get $wk", f"i32.const {32 * unroll}", "i32.add", "local.set $wk",
          "local.get $kk", f"i32.const {4 * unroll}", "i32.add", "local.tee $kk",
          "local.get $kendu", "i32.lt_u", "br_if $ku", "))")
    w("(block $k1_done", "local.get $kk", "local.get $kend", "i32.ge_u", "br_if $k1_done", "(loop $k1")
    step(0)
    w("local.get $wk", "i32.const 32", "i32.add", "local.set $wk",
      "local.get $kk", "i32.const 4", "i32.add", "local.tee $kk",
      "local.get $kend", "i32.lt_u", "br_if $k1", "))")

    # store: C row pointer of row i (+ j0); full panel = 2 vector stores, tail = lanes
    w("local.get $c", "local.get $i", "local.get $ldc", "i32.mul", "i32.add",
      "local.get $j0", "i32.const 2", "i32.shl", "i32.add", "local.set $cp")
    for r in range(mr):
        if r:
            w("local.get $cp", "local.get $ldc", "i32.add", "local.set $cp")
        w("local.get $nr", "i32.const 8", "i32.eq", "(if (then",
          "local.get $cp", f"local.get $c{r}_0", "v128.store",
          "local.get $cp", f"local.get $c{r}_1", "v128.store offset=16",
          ") (else",
          "local.get $cp", f"local.get $c{r}_0", "local.get $nr", "call $store_part",
          "local.get $cp", "i32.const 16", "i32.add", f"local.get $c{r}_1",
          "local.get $nr", "i32.const 4", "i32.sub", "i32.const 0", "local.get $nr", "i32.const 4",
          "i32.gt_u", "select", "call $store_part", "))")
    w("local.get $i", f"i32.const {mr}", "i32.add", "local.set $i")


def _gemm_packed(relaxed: bool, mr_max: int, unroll: int) -> str:
    w = _Wat(relaxed)
    w(f'(func $gemm_packed (export "gemm_packed")',
      "  (param $a i32) (param $wp i32) (param $bias i32) (param $c i32)",
      "  (param $m i32) (param $n i32) (param $k i32)",
      "  (local $lda i32) (local $ldc i32) (local $kend i32) (local $kendu i32)",
      "  (local $j0 i32) (local $nr i32) (local $wpan i32) (local $i i32) (local $mr i32)",
      "  (local $wk i32) (local $kk i32) (local $cp i32)",
      "  " + " ".join(f"(local $a{r} i32)" for r in range(mr_max)),
      "  (local $b0 v128) (local $b1 v128) (local $w0 v128) (local $w1 v128) (local $x v128)",
      "  " + " ".join(f"(local $c{r}_0 v128) (local $c{r}_1 v128)" for r in range(mr_max)))
    w("local.get $k", "i32.const 2", "i32.shl", "local.tee $lda", "local.set $kend",
      "local.get $k", f"i32.const {-unroll}", "i32.and", "i32.const 2", "i32.shl", "local.set $kendu",
      "local.get $n", "i32.const 2", "i32.shl", "local.set $ldc",
      "local.get $wp", "local.set $wpan")
    w("(block $panels_done", "(loop $panels",
      "local.get $j0", "local.get $n", "i32.ge_u", "br_if $panels_done",
      # nr = min(8, n - j0)
      "local.get $n", "local.get $j0", "i32.sub", "local.tee $nr", "i32.const 8",
      "local.get $nr", "i32.const 8", "i32.lt_u", "select", "local.set $nr")
    # bias vectors of this panel (zero without bias; lane loads on the tail panel)
    w("v128.const i32x4 0 0 0 0", "local.tee $b0", "local.set $b1",
      "local.get $bias", "(if (then",
      "local.get $bias", "local.get $j0", "i32.const 2", "i32.shl", "i32.add", "local.set $cp",
      "local.get $nr", "i32.const 8", "i32.eq", "(if (then",
      "local.get $cp", "v128.load", "local.set $b0",
      "local.get $cp", "v128.load offset=16", "local.set $b1",
      ") (else",
      "local.get $cp", "local.get $nr", "call $load_part", "local.set $b0",
      "local.get $cp", "i32.const 16", "i32.add",
      "local.get $nr", "i32.const 4", "i32.sub", "i32.const 0", "local.get $nr", "i32.const 4",
      "i32.gt_u", "select", "call $load_part", "local.set $b1", "))", "))")
    # row tiles: full mr_max-row tiles, then one tail tile of m % mr_max rows
    w("i32.const 0", "local.set $i",
      "(block $rows_done", "(loop $rows",
      "local.get $m", "local.get $i", "i32.sub", "local.tee $mr", f"i32.const {mr_max}",
      "i32.ge_u", "(if (then")
    _packed_tile(w, mr_max, unroll)
    w("br $rows", "))")
    for mr in range(mr_max - 1, 0, -1):
        w("local.get $mr", f"i32.const {mr}", "i32.eq", "(if (then")
        _packed_tile(w, mr, unroll)
        w("br $rows_done", "))")
    w("))")  # rows_done: mr == 0
    w("local.get $j0", "i32.const 8", "i32.add", "local.set $j0",
      "local.get $wpan", "local.get $kend", "i32.const 3", "i32.shl", "i32.add", "local.set $wpan",
      "br $panels", "))", ")")
    return w.text()


# ------------------------------------------------------------------ gemm_dot

def _dot_tile(w: _Wat, mr: int, nr: int) -> None:
    """mr rows of A x nr rows of W at (i, j): dot products over K, + bias, store C."""
    w(f";; ---- dot {mr}x{nr} tile", "local.get $a", "local.get $i", "local.get $lda", "i32.mul",
      "i32.add", "local.set $a0")
    for r in range(1, mr):
        w(f"local.get $a{r - 1}", "local.get $lda", "i32.add", f"local.set $a{r}")
    w("local.get $w", "local.get $j", "local.get $lda", "i32.mul", "i32.add", "local.set $p0")
    for q in range(1, nr):
        w(f"local.get $p{q - 1}", "local.get $lda", "i32.add", f"local.set $p{q}")
    for r in range(mr):
        for q in range(nr):
            w("v128.const i32x4 0 0 0 0", f"local.set $s{r}_{q}")
    w("i32.const 0", "local.set $kk")

    def step(load: str) -> None:  # 4 consecutive k (v128.load) or one k in lane 0 (load32_zero)
        for r in range(mr):
            w(f"local.get $a{r}", "local.get $kk", "i32.add", load, f"local.set $x{r}")
        for q in range(nr):
            w(f"local.get $p{q}", "local.get $kk", "i32.add", load, "local.set $y")
            for r in range(mr):
                w.madd(f"$s{r}_{q}", f"$x{r}", "$y")

    w("(block $k4_done", "local.get $kk", "local.get $kend4", "i32.ge_u", "br_if $k4_done", "(loop $k4")
    step("v128.load")
    w("local.get $kk", "i32.const 16", "i32.add", "local.tee $kk",
      "local.get $kend4", "i32.lt_u", "br_if $k4", "))")
    w("(block $k1_done", "local.get $kk", "local.get $kend", "i32.ge_u", "br_if $k1_done", "(loop $k1")
    step("v128.load32_zero")
    w("local.get $kk", "i32.const 4", "i32.add", "local.tee $kk",
      "local.get $kend", "i32.lt_u", "br_if $k1", "))")

    w("local.get $c", "local.get $i", "local.get $ldc", "i32.mul", "i32.add",
      "local.get $j", "i32.const 2", "i32.shl", "i32.add", "local.set $cp")
    if nr == 4:  # bias[j:j+4] as one vector (or 0)
        w("v128.const i32x4 0 0 0 0", "local.set $y",
          "local.get $bias", "(if (then", "local.get $bias", "local.get $j", "i32.const 2", "i32.shl",
          "i32.add", "v128.load", "local.set $y", "))")
    else:  # bias[j] (or 0)
        w("f32.const 0", "local.set $f",
          "local.get $bias", "(if (then", "local.get $bias", "local.get $j", "i32.const 2", "i32.shl",
          "i32.add", "f32.load", "local.set $f", "))")
    for r in range(mr):
        if r:
            w("local.get $cp", "local.get $ldc", "i32.add", "local.set $cp")
        if nr == 4:
            w("local.get $cp", *_transpose_add([f"$s{r}_{q}" for q in range(4)], "$x0", "$t"),  # [sum s_0, .., sum s_3]
              "local.get $y", "f32x4.add", "v128.store")
        else:
            w("local.get $cp", f"local.get $s{r}_0",
              f"local.get $s{r}_0", f"local.get $s{r}_0", _shuffle([2, 3, 2, 3]),
              "f32x4.add", "local.tee $t", "f32x4.extract_lane 0", "local.get $t",
              "f32x4.extract_lane 1", "f32.add", "local.get $f", "f32.add", "f32.store")
    w("local.get $j", f"i32.const {nr}", "i32.add", "local.set $j")


def _gemm_dot(relaxed: bool, dot_rows: int) -> str:
    w = _Wat(relaxed)
    w(f'(func $gemm_dot (export "gemm_dot")',
      "  (param $a i32) (param $w i32) (param $bias i32) (param $c i32)",
      "  (param $m i32) (param $n i32) (param $k i32)",
      "  (local $lda i32) (local $ldc i32) (local $kend i32) (local $kend4 i32)",
      "  (local $i i32) (local $j i32) (local $kk i32) (local $cp i32) (local $f f32)",
      "  " + " ".join(f"(local $a{r} i32)" for r in range(dot_rows)),
      "  " + " ".join(f"(local $p{q} i32)" for q in range(DOT_COLS)),
      "  " + " ".join(f"(local $x{r} v128)" for r in range(dot_rows)) + " (local $y v128) (local $t v128)",
      "  " + " ".join(f"(local $s{r}_{q} v128)" for r in range(dot_rows) for q in range(DOT_COLS)))
    w("local.get $k", "i32.const 2", "i32.shl", "local.tee $lda", "local.set $kend",
      "local.get $k", "i32.const -4", "i32.and", "i32.const 2", "i32.shl", "local.set $kend4",
      "local.get $n", "i32.const 2", "i32.shl", "local.set $ldc")
    w("i32.const 0", "local.set $i", "(block $rows_done", "(loop $rows")
    for mr in range(dot_rows, 0, -1):
        cond = "i32.ge_u" if mr == dot_rows else "i32.eq"
        w("local.get $m", "local.get $i", "i32.sub", f"i32.const {mr}", cond, "(if (then",
          "i32.const 0", "local.set $j",
          f"(block $cols{mr}_done", f"(loop $cols{mr}",  # full 4-column tiles
          "local.get $j", f"i32.const {DOT_COLS}", "i32.add", "local.get $n", "i32.gt_u",
          f"br_if $cols{mr}_done")
        _dot_tile(w, mr, DOT_COLS)
        w(f"br $cols{mr}", "))",
          f"(block $tail{mr}_done", f"(loop $tail{mr}",  # single columns
          "local.get $j", "local.get $n", "i32.ge_u", f"br_if $tail{mr}_done")
        _dot_tile(w, mr, 1)
        w(f"br $tail{mr}", "))",
          "local.get $i", f"i32.const {mr}", "i32.add", "local.set $i", "br $rows", "))")
    w("))", ")")  # falls out of $rows when m - i == 0
    return w.text()


# ------------------------------------------------------------------ gelu

# exp(s) for s <= 0 (Cephes expf): s = k ln2 + r with k = nearest(s / ln2), ln2 split in two
# so r is exact; exp(r) ~ 1 + r + r^2 P(r), |r| <= ln2 / 2, relative error ~1 ulp; 2^k built in
# the exponent bits. s is clamped to -87 (exp(-87) ~ 1.6e-38, still a normal float).
_EXP_P = (1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1)
_LN2_HI, _LN2_LO, _LOG2E = 0.693359375, -2.12194440e-4, 1.44269504088896341
# erf(z) ~ z P(z^2) / Q(z^2) on [-_ERF_CLAMP, _ERF_CLAMP], P and Q of degree 5 (coefficients from
# s^0 up; Q's first is 1). Fitted on this project's machine to scipy's erf on 22,000 points of
# [0, 3.925] by least squares on the linear form z P(s) - erf(z) Q(s) = 0, reweighted by 1 / Q
# over 20 rounds; rounded to float32. Max error in float64 2.6e-8, in float32 arithmetic 4e-7
# (the Horner sums' rounding). P's first is 2 / sqrt(pi), erf's slope at 0.
_ERF_P = (1.1283791065216064, 0.19099673628807068, 0.052834223955869675, 0.0037950414698570967,
          0.00028623847174458206, 2.053176331173745e-06)
_ERF_Q = (1.0, 0.5025985240936279, 0.11436083167791367, 0.01502469927072525, 0.00117114360909909,
          3.819812263827771e-05)
_ERF_CLAMP = 3.924999952316284  # erf(3.925) = 1 - 3.4e-8: 1 in float32
_SQRT_HALF = 0.7071067811865476


def _const(value: float) -> str:
    return f"(v128.const f32x4 {value!r} {value!r} {value!r} {value!r})"


def _exp(w: _Wat, s: str, e: str, k: str, r: str, indent: str) -> None:
    """e = exp(s) lanewise for s in [-87, 0] (Cephes expf); k and r are scratch v128 locals."""
    w(f"{indent}(local.set {k} (f32x4.nearest (f32x4.mul (local.get {s}) {_const(_LOG2E)})))",
      f"{indent}(local.set {r} (f32x4.sub (f32x4.sub (local.get {s}) (f32x4.mul (local.get {k}) {_const(_LN2_HI)}))"
      f" (f32x4.mul (local.get {k}) {_const(_LN2_LO)})))",
      f"{indent}(local.set {e} {_const(_EXP_P[0])})")
    for c in _EXP_P[1:]:
        w(f"{indent}(local.set {e} (f32x4.add (f32x4.mul (local.get {e}) (local.get {r})) {_const(c)}))")
    w(f"{indent}(local.set {e} (f32x4.add (f32x4.add (f32x4.mul (local.get {e}) (f32x4.mul (local.get {r}) (local.get {r})))"
      f" (local.get {r})) {_const(1.0)}))",
      f"{indent}(local.set {e} (f32x4.mul (local.get {e}) (i32x4.shl (i32x4.add (i32x4.trunc_sat_f32x4_s (local.get {k}))"
      " (i32x4.splat (i32.const 127))) (i32.const 23))))")


def _gelu(relaxed: bool) -> str:
    """gelu(x, y, n): y[i] = GELU(x[i]) for i < n - n % 4 (4 lanes at a time; the caller does the tail).

    GELU(x) = h + h erf(z) with h = x / 2, z = x / sqrt 2 clamped to +-_ERF_CLAMP (erf is 1 to
    float32 there), erf(z) = z P(z^2) / Q(z^2): 10 multiply-adds (fused in the relaxed build)
    and one division, against ~20 operations and a division more for the A&S erfc with its
    exp (kernels.gelu). Two vectors per iteration, so that their Horner chains overlap. Within
    1.5e-6 of float64 (1e-6 relative above 1; tested): the erf error, at most 4.3e-7, times
    |x| / 2, which matters only where GELU(x) is below ~1e-6 anyway (x < -5).

    Every lane is independent, so x == y (in place) is fine. Reads x[0:n4], writes y[0:n4].
    """
    w = _Wat(relaxed)

    def body(u: int, indent: str) -> None:  # vector u of this iteration: x[u * 16 bytes on]
        v, z, sq, p, q = (f"${name}{u}" for name in ("v", "z", "s", "p", "q"))
        w(f"{indent}(local.set {v} (v128.load offset={16 * u} (local.get $x)))",
          f"{indent}(local.set {z} (f32x4.min (f32x4.max (f32x4.mul (local.get {v}) {_const(_SQRT_HALF)}) {_const(-_ERF_CLAMP)})"
          f" {_const(_ERF_CLAMP)}))",
          f"{indent}(local.set {sq} (f32x4.mul (local.get {z}) (local.get {z})))")
        for acc, coefs in ((p, _ERF_P[::-1]), (q, _ERF_Q[::-1])):  # Horner: (((c0 s + c1) s + c2) ...)
            w(f"{indent}(local.set {acc} {_const(coefs[0])})")
            for c in coefs[1:]:
                w(f"{indent}(local.set $c {_const(c)})")
                w.madd("$c", acc, sq)
                w(f"{indent}(local.set {acc} (local.get $c))")
        w(f"{indent}(local.set {v} (f32x4.mul (local.get {v}) {_const(0.5)}))",
          f"{indent}(v128.store offset={16 * u} (local.get $y) (f32x4.add (local.get {v}) (f32x4.mul (local.get {v})"
          f" (f32x4.div (f32x4.mul (local.get {z}) (local.get {p})) (local.get {q})))))")

    w('(func $gelu (export "gelu") (param $x i32) (param $y i32) (param $n i32)',
      "  (local $end i32) (local $end2 i32) (local $c v128)",
      "  " + " ".join(f"(local ${name}{u} v128)" for u in range(2) for name in ("v", "z", "s", "p", "q")),
      "  (local.set $end (i32.add (local.get $x) (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2))))",
      "  (local.set $end2 (i32.add (local.get $x) (i32.shl (i32.and (local.get $n) (i32.const -8)) (i32.const 2))))",
      "  (block $done2 (loop $next2",
      "    (br_if $done2 (i32.ge_u (local.get $x) (local.get $end2)))")
    body(0, "    ")
    body(1, "    ")
    w("    (local.set $x (i32.add (local.get $x) (i32.const 32)))",
      "    (local.set $y (i32.add (local.get $y) (i32.const 32)))",
      "    (br $next2)))",
      "  (if (i32.lt_u (local.get $x) (local.get $end)) (then  ;; one vector left")
    body(0, "    ")
    w("  ))", ")")
    return w.text()


# ------------------------------------------------------------------ swiglu

def _swiglu(relaxed: bool) -> str:
    """swiglu(gu, y, rows, f): y[r, j] = silu(gu[r, j]) * gu[r, f + j] for j < f, f % 4 == 0.

    gu is [rows, 2f] (the decoder's fused gate|up GEMM output), y is [rows, f]. silu(x) =
    x * sigmoid(x), sigmoid from e = exp(-|x|) (never overflows): 1 / (1 + e) for x >= 0,
    e / (1 + e) below. Reads gu, writes y; one pass instead of NumPy's five (two with exp).
    """
    w = _Wat(relaxed)
    w('(func $swiglu (export "swiglu") (param $gu i32) (param $y i32) (param $rows i32) (param $f i32)',
      "  (local $g i32) (local $u i32) (local $end i32) (local $v v128) (local $s v128) (local $k v128)",
      "  (local $r v128) (local $e v128)",
      "  (block $rows_done (loop $next_row",
      "    (br_if $rows_done (i32.eqz (local.get $rows)))",
      "    (local.set $g (local.get $gu))",
      "    (local.set $u (i32.add (local.get $gu) (i32.shl (local.get $f) (i32.const 2))))",
      "    (local.set $end (local.get $u))",
      "    (block $done (loop $next",
      "      (br_if $done (i32.ge_u (local.get $g) (local.get $end)))",
      "      (local.set $v (v128.load (local.get $g)))",
      f"      (local.set $s (f32x4.max (f32x4.neg (f32x4.abs (local.get $v))) {_const(-87.0)}))",
      )
    _exp(w, "$s", "$e", "$k", "$r", "      ")  # exp(-|x|)
    w(f"      (local.set $s (f32x4.div (v128.bitselect {_const(1.0)} (local.get $e) (f32x4.ge (local.get $v) {_const(0.0)}))"
      f" (f32x4.add {_const(1.0)} (local.get $e))))",  # sigmoid(x)
      "      (v128.store (local.get $y) (f32x4.mul (f32x4.mul (local.get $v) (local.get $s)) (v128.load (local.get $u))))",
      "      (local.set $g (i32.add (local.get $g) (i32.const 16)))",
      "      (local.set $u (i32.add (local.get $u) (i32.const 16)))",
      "      (local.set $y (i32.add (local.get $y) (i32.const 16)))",
      "      (br $next)))",
      "    (local.set $gu (i32.add (local.get $gu) (i32.shl (local.get $f) (i32.const 3))))",
      "    (local.set $rows (i32.sub (local.get $rows) (i32.const 1)))",
      "    (br $next_row)))",
      ")")
    return w.text()


# ------------------------------------------------------------------ softmax

def _softmax_rows(relaxed: bool) -> str:
    """softmax_rows(x, y, rows, n): y[r] = softmax(x[r]) over rows of n floats (x == y allowed).

    Three passes per row: max, e = exp(max(x - max, -87)) stored in y with its sum, y *= 1/sum.
    The n % 4 tail goes through $load_part/$store_part with its missing lanes masked out
    (-inf for the max, 0 for the sum). A -inf score (causal mask) gives exp(-87) ~ 1.6e-38.
    """
    w = _Wat(relaxed)
    ninf = "(v128.const f32x4 -inf -inf -inf -inf)"
    w('(func $softmax_rows (export "softmax_rows") (param $x i32) (param $y i32) (param $rows i32) (param $n i32)',
      "  (local $row i32) (local $p i32) (local $xr i32) (local $yr i32) (local $end4 i32) (local $rem i32) (local $tot f32)",
      "  (local $m v128) (local $v v128) (local $s v128) (local $e v128) (local $k v128) (local $r v128) (local $sum v128)"
      " (local $mask v128) (local $inv v128)",
      "  (local.set $end4 (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2)))",
      "  (local.set $rem (i32.and (local.get $n) (i32.const 3)))",
      "  (local.set $mask (i32x4.lt_s (v128.const i32x4 0 1 2 3) (i32x4.splat (local.get $rem))))  ;; tail lanes",
      "  (local.set $row (i32.const 0))",
      "  (block $rows_done (loop $row_next",
      "    (br_if $rows_done (i32.ge_u (local.get $row) (local.get $rows)))",
      "    (local.set $xr (i32.add (local.get $x) (i32.shl (i32.mul (local.get $row) (local.get $n)) (i32.const 2))))",
      "    (local.set $yr (i32.add (local.get $y) (i32.shl (i32.mul (local.get $row) (local.get $n)) (i32.const 2))))",
      f"    (local.set $m {ninf})",
      "    (local.set $p (i32.const 0))",
      "    (block $max_done (loop $max_next",
      "      (br_if $max_done (i32.ge_u (local.get $p) (local.get $end4)))",
      "      (local.set $m (f32x4.max (local.get $m) (v128.load (i32.add (local.get $xr) (local.get $p)))))",
      "      (local.set $p (i32.add (local.get $p) (i32.const 16)))",
      "      (br $max_next)))",
      "    (if (local.get $rem) (then",
      "      (local.set $m (f32x4.max (local.get $m) (v128.bitselect (call $load_part (i32.add (local.get $xr) (local.get $p))"
      f" (local.get $rem)) {ninf} (local.get $mask))))))",
      f"    (local.set $m (f32x4.splat {_lanes('f32.max', '$m')}))",
      "    (local.set $sum (v128.const f32x4 0 0 0 0))",
      "    (local.set $p (i32.const 0))",
      "    (block $exp_done (loop $exp_next",
      "      (br_if $exp_done (i32.ge_u (local.get $p) (local.get $end4)))",
      f"      (local.set $s (f32x4.max (f32x4.sub (v128.load (i32.add (local.get $xr) (local.get $p))) (local.get $m)) {_const(-87.0)}))")
    _exp(w, "$s", "$e", "$k", "$r", "      ")
    w("      (v128.store (i32.add (local.get $yr) (local.get $p)) (local.get $e))",
      "      (local.set $sum (f32x4.add (local.get $sum) (local.get $e)))",
      "      (local.set $p (i32.add (local.get $p) (i32.const 16)))",
      "      (br $exp_next)))",
      "    (if (local.get $rem) (then",
      "      (local.set $s (f32x4.max (f32x4.sub (call $load_part (i32.add (local.get $xr) (local.get $p)) (local.get $rem))"
      f" (local.get $m)) {_const(-87.0)}))")
    _exp(w, "$s", "$e", "$k", "$r", "      ")
    w("      (local.set $e (v128.and (local.get $e) (local.get $mask)))",
      "      (call $store_part (i32.add (local.get $yr) (local.get $p)) (local.get $e) (local.get $rem))",
      "      (local.set $sum (f32x4.add (local.get $sum) (local.get $e)))))",
      f"    (local.set $tot {_lanes('f32.add', '$sum')})",
      "    (local.set $inv (f32x4.splat (f32.div (f32.const 1) (local.get $tot))))",
      "    (local.set $p (i32.const 0))",
      "    (block $div_done (loop $div_next",
      "      (br_if $div_done (i32.ge_u (local.get $p) (local.get $end4)))",
      "      (v128.store (i32.add (local.get $yr) (local.get $p)) (f32x4.mul (v128.load (i32.add (local.get $yr) (local.get $p))) (local.get $inv)))",
      "      (local.set $p (i32.add (local.get $p) (i32.const 16)))",
      "      (br $div_next)))",
      "    (if (local.get $rem) (then",
      "      (call $store_part (i32.add (local.get $yr) (local.get $p)) (f32x4.mul (call $load_part (i32.add (local.get $yr) (local.get $p))"
      " (local.get $rem)) (local.get $inv)) (local.get $rem))))",
      "    (local.set $row (i32.add (local.get $row) (i32.const 1)))",
      "    (br $row_next)))",
      ")")
    return w.text()


# ------------------------------------------------------------------ depthwise conv (stride 1)

def _dw_block(w: _Wat, vecs: int, rows: int = 1) -> None:
    """out[row + r, nb/4 : nb/4 + 4 vecs] = bias + sum_ij xp[row + r + i, j C + n] taps[i, j, n]
    for r < rows (nb in bytes; rows 2: accumulators $a for the first row, $b for the second,
    each tap vector loaded once for both)."""
    accs = ["$a", "$b"][:rows]
    for acc in accs:
        for v in range(vecs):
            w(f"(local.set {acc}{v} (v128.load offset={16 * v} (i32.add (local.get $bias) (local.get $nb))))")
    w("(local.set $i (i32.const 0))",
      "(block $i_done (loop $i_next",
      "  (br_if $i_done (i32.ge_u (local.get $i) (local.get $k)))",
      "  (local.set $xa (i32.add (i32.add (local.get $xrow) (local.get $nb)) (i32.mul (local.get $i) (local.get $lpb))))",
      "  (local.set $ta (i32.add (i32.add (local.get $taps) (local.get $nb)) (i32.mul (i32.mul (local.get $i) (local.get $k)) (local.get $nbytes))))",
      "  (local.set $j (i32.const 0))",
      "  (block $j_done (loop $j_next",
      "    (br_if $j_done (i32.ge_u (local.get $j) (local.get $k)))")
    for v in range(vecs):
        w(f"    (local.set $t{v} (v128.load offset={16 * v} (local.get $ta)))")
    for r, acc in enumerate(accs):
        for v in range(vecs):
            at = "(local.get $xa)" if r == 0 else "(i32.add (local.get $xa) (local.get $lpb))"
            w(f"    (local.set $x{v} (v128.load offset={16 * v} {at}))")
        for v in range(vecs):
            w.madd(f"{acc}{v}", f"$x{v}", f"$t{v}")
    w("    (local.set $xa (i32.add (local.get $xa) (local.get $cb)))",
      "    (local.set $ta (i32.add (local.get $ta) (local.get $nbytes)))",
      "    (local.set $j (i32.add (local.get $j) (i32.const 1)))",
      "    (br $j_next)))",
      "  (local.set $i (i32.add (local.get $i) (i32.const 1)))",
      "  (br $i_next)))")
    for r, acc in enumerate(accs):
        at = "(i32.add (local.get $orow) (local.get $nb))" if r == 0 else "(i32.add (i32.add (local.get $orow) (local.get $nbytes)) (local.get $nb))"
        for v in range(vecs):
            w(f"(v128.store offset={16 * v} {at} (local.get {acc}{v}))")


_DW_LOCALS = ("  (local $i i32) (local $j i32) (local $nb i32) (local $xa i32) (local $ta i32) (local $xrow i32) (local $orow i32)",
              "  (local $nbytes i32) (local $lpb i32) (local $cb i32) (local $end4 i32) (local $end1 i32)",
              "  " + " ".join(f"(local $a{v} v128) (local $x{v} v128) (local $t{v} v128)" for v in range(4)),
              "  (local $b0 v128) (local $b1 v128) (local $end2 i32)")


def _dw_row_pair(w: _Wat) -> None:
    """Two output rows (at $orow and the next) from input rows $xrow..: 2-vector blocks up to
    $end2, then single vectors up to $end1. Each tap vector serves both rows: 1.5 loads per
    FMA instead of 2 (4 + 2 + 2 registers: no spills)."""
    w("(local.set $nb (i32.const 0))",
      "(block $p2_done (loop $p2_next",
      "  (br_if $p2_done (i32.ge_u (local.get $nb) (local.get $end2)))")
    _dw_block(w, 2, rows=2)
    w("  (local.set $nb (i32.add (local.get $nb) (i32.const 32)))",
      "  (br $p2_next)))",
      "(block $p1_done (loop $p1_next",
      "  (br_if $p1_done (i32.ge_u (local.get $nb) (local.get $end1)))")
    _dw_block(w, 1, rows=2)
    w("  (local.set $nb (i32.add (local.get $nb) (i32.const 16)))",
      "  (br $p1_next)))")


def _dw_row(w: _Wat) -> None:
    """One output row of nbytes at $orow from input row $xrow: 4-vector blocks up to $end4,
    then single vectors up to $end1 (the locals of _DW_LOCALS set by the caller)."""
    w("(local.set $nb (i32.const 0))",
      "(block $b4_done (loop $b4_next",
      "  (br_if $b4_done (i32.ge_u (local.get $nb) (local.get $end4)))")
    _dw_block(w, 4)
    w("  (local.set $nb (i32.add (local.get $nb) (i32.const 64)))",
      "  (br $b4_next)))",
      "(block $b1_done (loop $b1_next",
      "  (br_if $b1_done (i32.ge_u (local.get $nb) (local.get $end1)))")
    _dw_block(w, 1)
    w("  (local.set $nb (i32.add (local.get $nb) (i32.const 16)))",
      "  (br $b1_next)))")


def _dw_rows(relaxed: bool) -> str:
    """dw_rows(xp, taps, bias, out, H, K, N, Lp, C): stride-1 depthwise conv on flattened rows.

    xp: the zero-padded input, H + K - 1 rows of Lp floats ([H+2p, W+2p, C] row-major);
    taps [K, K, N] and bias [N] repeated along the row (N = W * C, a multiple of 4);
    out [H, N]: out[r, n] = bias[n] + sum_ij xp[(r + i) Lp + j C + n] taps[i, j, n].
    Rows in pairs, each tap vector loaded once for both (2-vector tiles: 4 accumulators + 2
    taps + 2 inputs, then single vectors); an odd last row in 4-vector tiles (4 accumulators +
    4 + 4 loads = 12 registers). The pairs took the tower's 14 convs 1.75 -> 1.55 ms in Node.
    """
    w = _Wat(relaxed)
    w('(func $dw_rows (export "dw_rows") (param $xp i32) (param $taps i32) (param $bias i32) (param $out i32)',
      "  (param $h i32) (param $k i32) (param $n i32) (param $lp i32) (param $c i32) (local $row i32)", *_DW_LOCALS)
    w("(local.set $nbytes (i32.shl (local.get $n) (i32.const 2)))",
      "(local.set $lpb (i32.shl (local.get $lp) (i32.const 2)))",
      "(local.set $cb (i32.shl (local.get $c) (i32.const 2)))",
      "(local.set $end4 (i32.and (local.get $nbytes) (i32.const -64)))",
      "(local.set $end1 (i32.and (local.get $nbytes) (i32.const -16)))",
      "(local.set $end2 (i32.and (local.get $nbytes) (i32.const -32)))",
      "(local.set $row (i32.const 0))",
      "(block $pairs_done (loop $pair_next",  # rows in pairs
      "  (br_if $pairs_done (i32.gt_u (i32.add (local.get $row) (i32.const 2)) (local.get $h)))",
      "  (local.set $xrow (i32.add (local.get $xp) (i32.mul (local.get $row) (local.get $lpb))))",
      "  (local.set $orow (i32.add (local.get $out) (i32.mul (local.get $row) (local.get $nbytes))))")
    _dw_row_pair(w)
    w("  (local.set $row (i32.add (local.get $row) (i32.const 2)))",
      "  (br $pair_next)))",
      "(if (i32.lt_u (local.get $row) (local.get $h)) (then",  # the last row of an odd H
      "  (local.set $xrow (i32.add (local.get $xp) (i32.mul (local.get $row) (local.get $lpb))))",
      "  (local.set $orow (i32.add (local.get $out) (i32.mul (local.get $row) (local.get $nbytes))))")
    _dw_row(w)
    w("))", ")")
    return w.text()


def _dw_s2(relaxed: bool) -> str:
    """dw_s2(xp, taps, bias, out, Ho, Wo, K, Wp, C): stride-2 depthwise conv, channels last.

    xp: the zero-padded input [Hp, Wp, C]; taps [K, K, C]; bias [C]; out [Ho, Wo, C]:
    out[r, q, c] = bias[c] + sum_ij xp[2r + i, 2q + j, c] taps[i, j, c] (C % 4 == 0). Each
    output pixel is one "row" of C values for _dw_block: input rows Wp * C floats apart, taps
    rows K * C apart, the next tap C floats on.
    """
    w = _Wat(relaxed)
    w('(func $dw_s2 (export "dw_s2") (param $xp i32) (param $taps i32) (param $bias i32) (param $out i32)',
      "  (param $ho i32) (param $wo i32) (param $k i32) (param $wp i32) (param $c i32) (local $r i32) (local $q i32)", *_DW_LOCALS)
    w("(local.set $nbytes (i32.shl (local.get $c) (i32.const 2)))",
      "(local.set $cb (local.get $nbytes))",
      "(local.set $lpb (i32.mul (local.get $wp) (local.get $nbytes)))",
      "(local.set $end4 (i32.and (local.get $nbytes) (i32.const -64)))",
      "(local.set $end1 (i32.and (local.get $nbytes) (i32.const -16)))",
      "(local.set $orow (local.get $out))",
      "(local.set $r (i32.const 0))",
      "(block $rows_done (loop $row_next",
      "  (br_if $rows_done (i32.ge_u (local.get $r) (local.get $ho)))",
      "  (local.set $q (i32.const 0))",
      "  (block $cols_done (loop $col_next",
      "    (br_if $cols_done (i32.ge_u (local.get $q) (local.get $wo)))",
      "    (local.set $xrow (i32.add (local.get $xp) (i32.add (i32.mul (i32.shl (local.get $r) (i32.const 1)) (local.get $lpb))",
      "                                                       (i32.mul (i32.shl (local.get $q) (i32.const 1)) (local.get $cb)))))")
    _dw_row(w)
    w("    (local.set $orow (i32.add (local.get $orow) (local.get $nbytes)))",
      "    (local.set $q (i32.add (local.get $q) (i32.const 1)))",
      "    (br $col_next)))",
      "  (local.set $r (i32.add (local.get $r) (i32.const 1)))",
      "  (br $row_next)))",
      ")")
    return w.text()


# ------------------------------------------------------------------ attention

ATTEND_ROWS = 4  # rows of the P @ V tile (x 8 value columns: 8 accumulators, like gemm_packed)


def _visible(w: _Wat, target: str, rows: str) -> None:
    """target = keys seen by the first `rows` rows from $i: P, or min(P, causal + i + rows) when causal >= 0."""
    w(f"(local.set {target} (local.get $p))",
      "(if (i32.ge_s (local.get $causal) (i32.const 0)) (then",
      f"  (local.set $off (i32.add (i32.add (local.get $causal) (local.get $i)) {rows}))",
      f"  (local.set {target} (select (local.get $off) (local.get $p) (i32.lt_u (local.get $off) (local.get $p))))))")


def _attend_scores(w: _Wat, mr: int) -> None:
    """S rows i..i+mr-1 = scale * q_i . k_j for j < the keys these rows see, a 2x4 (or 1x4) tile:
    per 4 floats of Dh, mr query loads and 4 key loads feed 4 mr FMAs. A group of four past the
    last key repeats that key's row (its scores are masked by the softmax)."""
    _visible(w, "$n", f"(i32.const {mr})")
    w("(local.set $last (i32.mul (i32.sub (local.get $n) (i32.const 1)) (local.get $ldkv)))",
      "(local.set $q0 (i32.add (local.get $qh) (i32.mul (local.get $i) (local.get $ldq))))",
      "(local.set $q1 (i32.add (local.get $q0) (local.get $ldq)))",
      "(local.set $r0 (i32.add (local.get $s) (i32.mul (local.get $i) (local.get $lds))))",
      "(local.set $r1 (i32.add (local.get $r0) (local.get $lds)))",
      "(local.set $j (i32.const 0))",
      "(block $sc_done (loop $sc_next",
      "  (br_if $sc_done (i32.ge_u (local.get $j) (local.get $n)))")
    for q in range(4):
        row = "(local.get $j)" if q == 0 else f"(i32.add (local.get $j) (i32.const {q}))"
        w(f"  (local.set $p{q} (i32.add (local.get $kh) (select (local.tee $off (i32.mul {row} (local.get $ldkv))) (local.get $last)"
          " (i32.lt_u (local.get $off) (local.get $last)))))")
        for r in range(mr):
            w(f"  (local.set $c{r}{q} (v128.const i32x4 0 0 0 0))")
    w("  (local.set $d (i32.const 0))",
      "  (block $d_done (loop $d_next",
      "    (br_if $d_done (i32.ge_u (local.get $d) (local.get $dhb)))")
    for r in range(mr):
        w(f"    (local.set $x{r} (v128.load (i32.add (local.get $q{r}) (local.get $d))))")
    for q in range(4):
        w(f"    (local.set $y (v128.load (i32.add (local.get $p{q}) (local.get $d))))")
        for r in range(mr):
            w.madd(f"$c{r}{q}", f"$x{r}", "$y")
    w("    (local.set $d (i32.add (local.get $d) (i32.const 16)))",
      "    (br $d_next)))")
    for r in range(mr):  # transpose-add: [q . k_j, q . k_j+1, q . k_j+2, q . k_j+3] * scale
        w(f"  local.get $r{r}", "  local.get $j", "  i32.const 2", "  i32.shl", "  i32.add",
          *_transpose_add([f"$c{r}{q}" for q in range(4)], "$x0", "$y"),
          "  local.get $scl", "  f32x4.mul", "  v128.store")
    w("  (local.set $j (i32.add (local.get $j) (i32.const 4)))",
      "  (br $sc_next)))",
      f"(local.set $i (i32.add (local.get $i) (i32.const {mr})))")


def _attend_softmax(w: _Wat) -> None:
    """Row i of S -> probabilities: softmax over the n keys it sees (exp as softmax_rows, the last
    partial vector masked), then zeros up to the row's end, which the P @ V tiles read."""
    ninf = "(v128.const f32x4 -inf -inf -inf -inf)"
    _visible(w, "$n", "(i32.const 1)")
    w("(local.set $r0 (i32.add (local.get $s) (i32.mul (local.get $i) (local.get $lds))))",
      "(local.set $end4 (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2)))",
      "(local.set $rem (i32.and (local.get $n) (i32.const 3)))",
      "(local.set $mask (i32x4.lt_s (v128.const i32x4 0 1 2 3) (i32x4.splat (local.get $rem))))",
      f"(local.set $m {ninf})",
      "(local.set $d (i32.const 0))",
      "(block $max_done (loop $max_next",
      "  (br_if $max_done (i32.ge_u (local.get $d) (local.get $end4)))",
      "  (local.set $m (f32x4.max (local.get $m) (v128.load (i32.add (local.get $r0) (local.get $d)))))",
      "  (local.set $d (i32.add (local.get $d) (i32.const 16)))",
      "  (br $max_next)))",
      "(if (local.get $rem) (then",
      f"  (local.set $m (f32x4.max (local.get $m) (v128.bitselect (v128.load (i32.add (local.get $r0) (local.get $end4))) {ninf}"
      " (local.get $mask))))))",
      f"(local.set $m (f32x4.splat {_lanes('f32.max', '$m')}))",
      "(local.set $sum (v128.const f32x4 0 0 0 0))",
      "(local.set $d (i32.const 0))",
      "(block $exp_done (loop $exp_next",
      "  (br_if $exp_done (i32.ge_u (local.get $d) (local.get $end4)))",
      f"  (local.set $x0 (f32x4.max (f32x4.sub (v128.load (i32.add (local.get $r0) (local.get $d))) (local.get $m)) {_const(-87.0)}))")
    _exp(w, "$x0", "$e", "$kx", "$y", "  ")
    w("  (v128.store (i32.add (local.get $r0) (local.get $d)) (local.get $e))",
      "  (local.set $sum (f32x4.add (local.get $sum) (local.get $e)))",
      "  (local.set $d (i32.add (local.get $d) (i32.const 16)))",
      "  (br $exp_next)))",
      "(if (local.get $rem) (then",
      f"  (local.set $x0 (f32x4.max (f32x4.sub (v128.load (i32.add (local.get $r0) (local.get $end4))) (local.get $m)) {_const(-87.0)}))")
    _exp(w, "$x0", "$e", "$kx", "$y", "  ")
    w("  (local.set $e (v128.and (local.get $e) (local.get $mask)))",
      "  (v128.store (i32.add (local.get $r0) (local.get $end4)) (local.get $e))",
      "  (local.set $sum (f32x4.add (local.get $sum) (local.get $e)))",
      "  (local.set $end4 (i32.add (local.get $end4) (i32.const 16)))))",
      f"(local.set $inv (f32x4.splat (f32.div (f32.const 1) {_lanes('f32.add', '$sum')})))",
      "(local.set $d (i32.const 0))",
      "(block $div_done (loop $div_next",
      "  (br_if $div_done (i32.ge_u (local.get $d) (local.get $end4)))",
      "  (v128.store (i32.add (local.get $r0) (local.get $d)) (f32x4.mul (v128.load (i32.add (local.get $r0) (local.get $d))) (local.get $inv)))",
      "  (local.set $d (i32.add (local.get $d) (i32.const 16)))",
      "  (br $div_next)))",
      "(block $zero_done (loop $zero_next",
      "  (br_if $zero_done (i32.ge_u (local.get $d) (local.get $lds)))",
      "  (v128.store (i32.add (local.get $r0) (local.get $d)) (v128.const i32x4 0 0 0 0))",
      "  (local.set $d (i32.add (local.get $d) (i32.const 16)))",
      "  (br $zero_next)))",
      "(local.set $i (i32.add (local.get $i) (i32.const 1)))")


def _attend_pv(w: _Wat, mr: int) -> None:
    """Output rows i..i+mr-1 = S rows @ V, gemm_packed's tile: per key j, mr broadcast
    probabilities x one value row's 8 (then a last 4) columns; keys past what the rows see
    have probability 0, so the loop stops at the last row's count."""
    _visible(w, "$n", f"(i32.const {mr})")
    for r in range(mr):
        w(f"(local.set $r{r} (i32.add (local.get $s) (i32.mul (i32.add (local.get $i) (i32.const {r})) (local.get $lds))))",
          f"(local.set $q{r} (i32.add (local.get $oh) (i32.mul (i32.add (local.get $i) (i32.const {r})) (local.get $ldo))))")
    w("(local.set $d (i32.const 0))")
    for cols in (8, 4):
        vecs = cols // 4
        label = f"pv{mr}_{cols}"
        if cols == 8:
            w(f"(block ${label}_done (loop ${label}_next",
              f"  (br_if ${label}_done (i32.gt_u (i32.add (local.get $d) (i32.const 32)) (local.get $dhb)))")
        else:
            w(f"(if (i32.lt_u (local.get $d) (local.get $dhb)) (then")
        for r in range(mr):
            for c in range(vecs):
                w(f"  (local.set $c{r}{c} (v128.const i32x4 0 0 0 0))")
        w("  (local.set $p0 (i32.add (local.get $vh) (local.get $d)))",
          "  (local.set $off (i32.const 0))",
          "  (local.set $last (i32.shl (local.get $n) (i32.const 2)))",
          f"  (block ${label}_j_done (loop ${label}_j_next",
          f"    (br_if ${label}_j_done (i32.ge_u (local.get $off) (local.get $last)))")
        for c in range(vecs):
            w(f"    (local.set $x{c} (v128.load offset={16 * c} (local.get $p0)))")
        for r in range(mr):
            w(f"    (local.set $y (f32x4.splat (f32.load (i32.add (local.get $r{r}) (local.get $off)))))")
            for c in range(vecs):
                w.madd(f"$c{r}{c}", "$y", f"$x{c}")
        w("    (local.set $p0 (i32.add (local.get $p0) (local.get $ldkv)))",
          "    (local.set $off (i32.add (local.get $off) (i32.const 4)))",
          f"    (br ${label}_j_next)))")
        for r in range(mr):
            for c in range(vecs):
                w(f"  (v128.store offset={16 * c} (i32.add (local.get $q{r}) (local.get $d)) (local.get $c{r}{c}))")
        w(f"  (local.set $d (i32.add (local.get $d) (i32.const {4 * cols})))")
        w(f"  (br ${label}_next)))" if cols == 8 else "))")
    w(f"(local.set $i (i32.add (local.get $i) (i32.const {mr})))")


def _attend(relaxed: bool) -> str:
    """attend(q, k, v, out, s, T, P, H, G, Dh, ldq, hsq, ldkv, hskv, ldo, hso, causal, scale):
    scaled dot-product attention of H query heads over P keys, all heads in one call.

    Strides are in floats, so the views the models hold work in place: query row i of head h
    starts at q + (h hsq + i ldq) floats, key/value row j of KV head h // G at k/v + (h // G)
    hskv + j ldkv (k and v share their layout), the output row at out + h hso + i ldo; each row
    is Dh contiguous floats (Dh % 4 == 0). causal < 0: every row sees all P keys; otherwise row
    i sees keys j <= causal + i. s is scratch for one head's scores, T rows of ceil(P / 4) * 4
    floats.

    Per head, three passes, each a register tile like the GEMMs': S = scale Q K^T in 2x4 tiles
    (dot products over Dh, one 4x4 transpose-add per row); each row of S softmaxed in place
    over the keys it sees and zero-filled past them; O = S V in 4x8 tiles (gemm_packed's: 4
    broadcast probabilities x 2 vectors of a value row). Nothing past the last visible key
    row is read. out must not overlap q, k or v.
    """
    w = _Wat(relaxed)
    tiles = [f"(local $c{r}{q} v128)" for r in range(ATTEND_ROWS) for q in range(4)]
    w('(func $attend (export "attend")',
      "  (param $q i32) (param $k i32) (param $v i32) (param $out i32) (param $s i32)",
      "  (param $t i32) (param $p i32) (param $h i32) (param $g i32) (param $dh i32)",
      "  (param $ldq i32) (param $hsq i32) (param $ldkv i32) (param $hskv i32) (param $ldo i32) (param $hso i32)",
      "  (param $causal i32) (param $scale f32)",
      "  (local $hh i32) (local $i i32) (local $j i32) (local $d i32) (local $n i32) (local $last i32) (local $off i32)",
      "  (local $dhb i32) (local $lds i32) (local $qh i32) (local $kh i32) (local $vh i32) (local $oh i32) (local $end4 i32) (local $rem i32)",
      "  " + " ".join(f"(local $p{q} i32)" for q in range(4)) + " " + " ".join(f"(local $q{r} i32) (local $r{r} i32)" for r in range(ATTEND_ROWS)),
      "  (local $x0 v128) (local $x1 v128) (local $y v128) (local $m v128) (local $e v128) (local $kx v128) (local $sum v128)"
      " (local $mask v128) (local $scl v128) (local $inv v128)",
      "  " + " ".join(tiles),
      "  (local.set $dhb (i32.shl (local.get $dh) (i32.const 2)))",
      "  (local.set $lds (i32.shl (i32.and (i32.add (local.get $p) (i32.const 3)) (i32.const -4)) (i32.const 2)))",
      "  (local.set $ldq (i32.shl (local.get $ldq) (i32.const 2)))",
      "  (local.set $hsq (i32.shl (local.get $hsq) (i32.const 2)))",
      "  (local.set $ldkv (i32.shl (local.get $ldkv) (i32.const 2)))",
      "  (local.set $hskv (i32.shl (local.get $hskv) (i32.const 2)))",
      "  (local.set $ldo (i32.shl (local.get $ldo) (i32.const 2)))",
      "  (local.set $hso (i32.shl (local.get $hso) (i32.const 2)))",
      "  (local.set $hh (i32.const 0))",
      "  (block $heads_done (loop $head_next",
      "  (br_if $heads_done (i32.ge_u (local.get $hh) (local.get $h)))",
      "  (local.set $qh (i32.add (local.get $q) (i32.mul (local.get $hh) (local.get $hsq))))",
      "  (local.set $oh (i32.add (local.get $out) (i32.mul (local.get $hh) (local.get $hso))))",
      "  (local.set $kh (i32.add (local.get $k) (i32.mul (i32.div_u (local.get $hh) (local.get $g)) (local.get $hskv))))",
      "  (local.set $vh (i32.add (local.get $v) (i32.mul (i32.div_u (local.get $hh) (local.get $g)) (local.get $hskv))))",
      "  (local.set $scl (f32x4.splat (local.get $scale)))",
      "  (local.set $i (i32.const 0))",
      "  (block $a_done (loop $a_next",
      "  (br_if $a_done (i32.ge_u (local.get $i) (local.get $t)))",
      "  (if (i32.ge_u (i32.sub (local.get $t) (local.get $i)) (i32.const 2)) (then")
    _attend_scores(w, 2)
    w("  ) (else")
    _attend_scores(w, 1)
    w("  ))", "  (br $a_next)))",
      "  (local.set $i (i32.const 0))",
      "  (block $b_done (loop $b_next",
      "  (br_if $b_done (i32.ge_u (local.get $i) (local.get $t)))")
    _attend_softmax(w)
    w("  (br $b_next)))",
      "  (local.set $i (i32.const 0))",
      "  (block $c_done (loop $c_next")
    for mr in range(ATTEND_ROWS, 0, -1):
        cond = "i32.ge_u" if mr == ATTEND_ROWS else "i32.eq"
        w(f"  (if ({cond} (i32.sub (local.get $t) (local.get $i)) (i32.const {mr})) (then")
        _attend_pv(w, mr)
        w("  (br $c_next)))")
    w("  ))",  # t - i == 0
      "  (local.set $hh (i32.add (local.get $hh) (i32.const 1)))",
      "  (br $head_next)))",
      ")")
    return w.text()


# ------------------------------------------------------------------ decoder: RoPE and RMS norm

def _rope(relaxed: bool) -> str:
    """rope(x, ldx, cs, sn, out, ldo, hso, T, H, Dh): rotary embedding of H heads in T rows.

    Head h of row t: Dh floats at x + t ldx + h Dh (floats; the heads side by side, as the qkv
    GEMM writes them); cs and sn: [T, Dh] rows of cos and signed sin (kernels.rope_signed_sin);
    out row t of head h at out + h hso + t ldo, so k can go straight into the KV cache
    ([Hkv, P, Dh]) and q into [T, H, Dh]. y[:half] = x[:half] cos + x[half:] sn[:half],
    y[half:] = x[half:] cos + x[:half] sn[half:] (kernels.rope_swapped), Dh % 8 == 0. Both
    halves of a vector's lanes are loaded before either is stored, so out == x works.
    """
    w = _Wat(relaxed)
    w('(func $rope (export "rope") (param $x i32) (param $ldx i32) (param $cs i32) (param $sn i32) (param $out i32)',
      "  (param $ldo i32) (param $hso i32) (param $t i32) (param $h i32) (param $dh i32)",
      "  (local $r i32) (local $hh i32) (local $d i32) (local $half i32) (local $xp i32) (local $op i32) (local $cr i32) (local $sr i32)",
      "  (local $a v128) (local $b v128) (local $y v128) (local $c v128)",
      "  (local.set $half (i32.shl (local.get $dh) (i32.const 1)))  ;; Dh / 2 floats, in bytes",
      "  (local.set $r (i32.const 0))",
      "  (block $rows_done (loop $row_next",
      "  (br_if $rows_done (i32.ge_u (local.get $r) (local.get $t)))",
      "  (local.set $cr (i32.add (local.get $cs) (i32.shl (i32.mul (local.get $r) (local.get $dh)) (i32.const 2))))",
      "  (local.set $sr (i32.add (local.get $sn) (i32.shl (i32.mul (local.get $r) (local.get $dh)) (i32.const 2))))",
      "  (local.set $hh (i32.const 0))",
      "  (block $heads_done (loop $head_next",
      "    (br_if $heads_done (i32.ge_u (local.get $hh) (local.get $h)))",
      "    (local.set $xp (i32.add (local.get $x) (i32.shl (i32.add (i32.mul (local.get $r) (local.get $ldx))"
      " (i32.mul (local.get $hh) (local.get $dh))) (i32.const 2))))",
      "    (local.set $op (i32.add (local.get $out) (i32.shl (i32.add (i32.mul (local.get $r) (local.get $ldo))"
      " (i32.mul (local.get $hh) (local.get $hso))) (i32.const 2))))",
      "    (local.set $d (i32.const 0))",
      "    (block $d_done (loop $d_next",
      "      (br_if $d_done (i32.ge_u (local.get $d) (local.get $half)))",
      "      (local.set $a (v128.load (i32.add (local.get $xp) (local.get $d))))",
      "      (local.set $b (v128.load (i32.add (i32.add (local.get $xp) (local.get $half)) (local.get $d))))")
    for first, second, offset in (("$a", "$b", ""), ("$b", "$a", " (local.get $half)")):
        at = f"(i32.add (local.get $d){offset})" if offset else "(local.get $d)"
        w(f"      (local.set $y (f32x4.mul (local.get {first}) (v128.load (i32.add (local.get $cr) {at}))))",
          f"      (local.set $c (v128.load (i32.add (local.get $sr) {at})))")
        w.madd("$y", second, "$c")
        w(f"      (v128.store (i32.add (local.get $op) {at}) (local.get $y))")
    w("      (local.set $d (i32.add (local.get $d) (i32.const 16)))",
      "      (br $d_next)))",
      "    (local.set $hh (i32.add (local.get $hh) (i32.const 1)))",
      "    (br $head_next)))",
      "  (local.set $r (i32.add (local.get $r) (i32.const 1)))",
      "  (br $row_next)))",
      ")")
    return w.text()


def _rms_rows(relaxed: bool) -> str:
    """rms_rows(x, y, rows, n, eps): y[r] = x[r] / sqrt(mean(x[r]^2) + eps) over rows of n floats
    (n % 4 == 0; x == y allowed): the decoder's RMSNorm, its weight folded into the next GEMM."""
    w = _Wat(relaxed)
    w('(func $rms_rows (export "rms_rows") (param $x i32) (param $y i32) (param $rows i32) (param $n i32) (param $eps f32)',
      "  (local $p i32) (local $nb i32) (local $v v128) (local $sum v128) (local $inv v128)",
      "  (local.set $nb (i32.shl (local.get $n) (i32.const 2)))",
      "  (block $rows_done (loop $row_next",
      "    (br_if $rows_done (i32.eqz (local.get $rows)))",
      "    (local.set $sum (v128.const f32x4 0 0 0 0))",
      "    (local.set $p (i32.const 0))",
      "    (block $sum_done (loop $sum_next",
      "      (br_if $sum_done (i32.ge_u (local.get $p) (local.get $nb)))",
      "      (local.set $v (v128.load (i32.add (local.get $x) (local.get $p))))")
    w.madd("$sum", "$v", "$v")
    w("      (local.set $p (i32.add (local.get $p) (i32.const 16)))",
      "      (br $sum_next)))",
      f"    (local.set $inv (f32x4.splat (f32.div (f32.const 1) (f32.sqrt (f32.add (f32.div {_lanes('f32.add', '$sum')}"
      " (f32.convert_i32_u (local.get $n))) (local.get $eps))))))",
      "    (local.set $p (i32.const 0))",
      "    (block $mul_done (loop $mul_next",
      "      (br_if $mul_done (i32.ge_u (local.get $p) (local.get $nb)))",
      "      (v128.store (i32.add (local.get $y) (local.get $p)) (f32x4.mul (v128.load (i32.add (local.get $x) (local.get $p))) (local.get $inv)))",
      "      (local.set $p (i32.add (local.get $p) (i32.const 16)))",
      "      (br $mul_next)))",
      "    (local.set $x (i32.add (local.get $x) (local.get $nb)))",
      "    (local.set $y (i32.add (local.get $y) (local.get $nb)))",
      "    (local.set $rows (i32.sub (local.get $rows) (i32.const 1)))",
      "    (br $row_next)))",
      ")")
    return w.text()


# ------------------------------------------------------------------ image resize

def _resize_rgba(relaxed: bool) -> str:
    """resize_rgba(src, stride, side, idx, wt, k, tmp, dst, s, sb): crop + resize + normalise.

    src: byte address of the crop's top-left pixel in uint8 RGBA rows of `stride` bytes;
    the crop is side x side pixels. idx (int32) and wt (float32) are [s, k]: output o of an
    axis is sum_t wt[o, t] * input[idx[o, t]] (area taps when shrinking, bilinear when
    enlarging; unused taps have weight 0 and a valid index). Both axes use the same taps.
    tmp: float32 scratch [s, side, 4]; dst: float32 [s, s, 3]; sb: float32 [8], the
    per-channel scale (lanes 0-2) and bias (lanes 4-6): dst = resized * scale + bias.
    Pass 1 resizes columns into tmp (one f32x4 per RGBA pixel, bytes widened to floats),
    pass 2 rows into dst, three lanes stored per pixel (no write past dst's end).
    """
    w = _Wat(relaxed)
    w('(func $resize_rgba (export "resize_rgba") (param $src i32) (param $stride i32) (param $side i32) (param $idx i32)',
      "  (param $wt i32) (param $k i32) (param $tmp i32) (param $dst i32) (param $s i32) (param $sb i32)",
      "  (local $o i32) (local $x i32) (local $t i32) (local $ti i32) (local $row i32) (local $p i32) (local $kb i32)",
      "  (local $acc v128) (local $v v128) (local $wv v128) (local $scale v128) (local $bias v128)",
      "(local.set $scale (v128.load (local.get $sb)))",
      "(local.set $bias (v128.load offset=16 (local.get $sb)))",
      "(local.set $kb (i32.shl (local.get $k) (i32.const 2)))",
      ";; pass 1: tmp[o, x] = sum_t wt[o, t] * src[idx[o, t], x] (all four channels)",
      "(local.set $o (i32.const 0))",
      "(block $p1_done (loop $p1_next",
      "  (br_if $p1_done (i32.ge_u (local.get $o) (local.get $s)))",
      "  (local.set $x (i32.const 0))",
      "  (block $x_done (loop $x_next",
      "    (br_if $x_done (i32.ge_u (local.get $x) (local.get $side)))",
      "    (local.set $acc (v128.const i32x4 0 0 0 0))",
      "    (local.set $t (i32.const 0))",
      "    (local.set $ti (i32.add (local.get $idx) (i32.mul (local.get $o) (local.get $kb))))",
      "    (block $t_done (loop $t_next",
      "      (br_if $t_done (i32.ge_u (local.get $t) (local.get $kb)))",
      "      (local.set $p (i32.add (i32.add (local.get $src) (i32.mul (i32.load (i32.add (local.get $ti) (local.get $t))) (local.get $stride)))",
      "                             (i32.shl (local.get $x) (i32.const 2))))",
      "      (local.set $v (f32x4.convert_i32x4_u (i32x4.extend_low_i16x8_u (i16x8.extend_low_i8x16_u (v128.load32_zero (local.get $p))))))",
      "      (local.set $wv (v128.load32_splat (i32.add (i32.add (local.get $wt) (i32.sub (local.get $ti) (local.get $idx))) (local.get $t))))",
      )
    w.madd("$acc", "$v", "$wv")
    w("      (local.set $t (i32.add (local.get $t) (i32.const 4)))",
      "      (br $t_next)))",
      "    (v128.store (i32.add (local.get $tmp) (i32.shl (i32.add (i32.mul (local.get $o) (local.get $side)) (local.get $x)) (i32.const 4)))",
      "                (local.get $acc))",
      "    (local.set $x (i32.add (local.get $x) (i32.const 1)))",
      "    (br $x_next)))",
      "  (local.set $o (i32.add (local.get $o) (i32.const 1)))",
      "  (br $p1_next)))",
      ";; pass 2: dst[r, o] = (sum_t wt[o, t] * tmp[r, idx[o, t]]) * scale + bias, channels 0-2",
      "(local.set $row (i32.const 0))",
      "(block $p2_done (loop $p2_next",
      "  (br_if $p2_done (i32.ge_u (local.get $row) (local.get $s)))",
      "  (local.set $o (i32.const 0))",
      "  (block $o_done (loop $o_next",
      "    (br_if $o_done (i32.ge_u (local.get $o) (local.get $s)))",
      "    (local.set $acc (v128.const i32x4 0 0 0 0))",
      "    (local.set $t (i32.const 0))",
      "    (local.set $ti (i32.add (local.get $idx) (i32.mul (local.get $o) (local.get $kb))))",
      "    (block $t2_done (loop $t2_next",
      "      (br_if $t2_done (i32.ge_u (local.get $t) (local.get $kb)))",
      "      (local.set $v (v128.load (i32.add (local.get $tmp) (i32.shl (i32.add (i32.mul (local.get $row) (local.get $side))",
      "                                                                   (i32.load (i32.add (local.get $ti) (local.get $t)))) (i32.const 4)))))",
      "      (local.set $wv (v128.load32_splat (i32.add (i32.add (local.get $wt) (i32.sub (local.get $ti) (local.get $idx))) (local.get $t))))",
      )
    w.madd("$acc", "$v", "$wv")
    w("      (local.set $t (i32.add (local.get $t) (i32.const 4)))",
      "      (br $t2_next)))",
      "    (local.set $acc (f32x4.add (f32x4.mul (local.get $acc) (local.get $scale)) (local.get $bias)))",
      "    (local.set $p (i32.add (local.get $dst) (i32.mul (i32.add (i32.mul (local.get $row) (local.get $s)) (local.get $o)) (i32.const 12))))",
      "    (f32.store (local.get $p) (f32x4.extract_lane 0 (local.get $acc)))",
      "    (f32.store offset=4 (local.get $p) (f32x4.extract_lane 1 (local.get $acc)))",
      "    (f32.store offset=8 (local.get $p) (f32x4.extract_lane 2 (local.get $acc)))",
      "    (local.set $o (i32.add (local.get $o) (i32.const 1)))",
      "    (br $o_next)))",
      "  (local.set $row (i32.add (local.get $row) (i32.const 1)))",
      "  (br $p2_next)))",
      ")")
    return w.text()


# ------------------------------------------------------------------ module and build

def generate_wat(relaxed: bool, packed_rows: int = PACKED_ROWS, dot_rows: int = DOT_ROWS,
                 packed_unroll: int = PACKED_UNROLL) -> str:
    """WAT text of the GEMM module; relaxed=True uses f32x4.relaxed_madd (FMA)."""
    build = "relaxed-SIMD FMA" if relaxed else "plain SIMD128"
    return "\n".join([
        f";; tiny-vlm float32 GEMM kernels ({build}); generated by tiny_vlm/wasm/gen.py, do not edit.",
        "(module",
        '(import "env" "memory" (memory 0))',
        _helpers(), _gemm_packed(relaxed, packed_rows, packed_unroll), _gemm_dot(relaxed, dot_rows), _gelu(relaxed), _swiglu(relaxed), _softmax_rows(relaxed),
        _dw_rows(relaxed), _dw_s2(relaxed), _resize_rgba(relaxed), _attend(relaxed),
        _rope(relaxed), _rms_rows(relaxed),
        ")", ""])


def write_wat(outdir) -> dict[str, Path]:
    """Write tiny_vlm_gemm_{relaxed,simd128}.wat into outdir; returns {build: path}."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for build in BUILDS:
        path = outdir / f"tiny_vlm_gemm_{build}.wat"
        path.write_text(generate_wat(relaxed=build == "relaxed"))
        paths[build] = path
    return paths


def build_wasm(outdir, wat2wasm: str = "wat2wasm") -> dict[str, Path]:
    """Generate and assemble both builds into outdir; returns {build: path of the .wasm}.

    Raises FileNotFoundError when wat2wasm is missing, CalledProcessError when it fails.
    Output bytes depend only on this generator and the wabt version (no debug names).
    """
    exe = shutil.which(wat2wasm)
    if exe is None:
        raise FileNotFoundError(f"wat2wasm not found: {wat2wasm!r} (Debian package wabt)")
    paths = {}
    for build, wat in write_wat(outdir).items():
        wasm = wat.with_suffix(".wasm")
        flags = ["--enable-relaxed-simd"] if build == "relaxed" else []
        subprocess.run([exe, *flags, str(wat), "-o", str(wasm)], check=True)
        paths[build] = wasm
    return paths


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tiny_vlm.wasm.gen", description=__doc__.splitlines()[0])
    parser.add_argument("outdir")
    parser.add_argument("--wat2wasm", help="path of wabt's wat2wasm (default: on PATH, else .wat only)")
    args = parser.parse_args(argv)
    if args.wat2wasm is not None and shutil.which(args.wat2wasm) is None:
        parser.error(f"--wat2wasm {args.wat2wasm}: not found")
    args.wat2wasm = args.wat2wasm or "wat2wasm"
    if shutil.which(args.wat2wasm) is None:
        for path in write_wat(args.outdir).values():
            print(path)
        print(f"wat2wasm not found ({args.wat2wasm!r}): wrote the .wat files only", file=sys.stderr)
        return 0
    for path in build_wasm(args.outdir, args.wat2wasm).values():
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
