"""WASM SIMD GEMM kernels (tiny_vlm/wasm): generated, assembled, run in Node vs NumPy.

The Node part needs `wat2wasm` (Debian wabt) and `node`; without them it skips with the
reason. Each build runs in one node process with the whole batch of cases (JSON + binary
files in tmp_path). The SimdBackend part runs in CPython on NumPy stand-ins of the exports.
"""

import functools
import itertools
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tiny_vlm.wasm import gen
from tiny_vlm.wasm.backend import (KernelArgumentError, KernelSelfCheckError, PackedWeight, SimdBackend,
                                   pack_panels)
from tiny_vlm.wasm.emulate import emulated_exports

HARNESS = Path(__file__).parent / "wasm" / "harness.mjs"
SIZES = (1, 3, 5, 7, 64)
RELAXED_FLAG = "--experimental-wasm-relaxed-simd"  # Node 20 validates relaxed SIMD only with it
FNS = ("gemm_packed", "gemm_dot")


def node_flags(build):
    return [RELAXED_FLAG] if build == "relaxed" else []


@functools.lru_cache(maxsize=None)
def relaxed_unsupported(wasm: str) -> str | None:
    """Why this node cannot run the relaxed-SIMD build at all (None: it can). A kernel run that
    fails while node compiles the module is a failure, not a skip."""
    code = f"new WebAssembly.Module(require('fs').readFileSync({json.dumps(wasm)}))"
    probe = subprocess.run(["node", RELAXED_FLAG, "-e", code], capture_output=True, text=True)
    return None if probe.returncode == 0 else f"node cannot compile the relaxed-SIMD build: {probe.stderr.strip()[-200:]}"


@pytest.fixture(scope="module")
def wasm_files(tmp_path_factory):
    if shutil.which("wat2wasm") is None:
        pytest.skip("wat2wasm not on PATH (Debian package wabt)")
    if shutil.which("node") is None:
        pytest.skip("node not on PATH")
    return gen.build_wasm(tmp_path_factory.mktemp("wasm"))


def make_cases():
    """(fn, m, n, k, with_bias) over odd shapes, K % 4 != 0 and K = 0, both kernels."""
    shapes = list(itertools.product(SIZES, SIZES, SIZES))
    shapes += [(m, n, 0) for m in (1, 3, 7, 64) for n in (1, 5, 8, 13)]
    shapes += [(13, 17, 9), (6, 16, 4), (12, 24, 130), (2, 9, 257)]  # exact tiles, longer K
    return [(fn, m, n, k, bias) for fn in FNS for (m, n, k) in shapes for bias in (True, False)]


def run_harness(wasm, build, tmp_path, cases):
    """Run `cases` in one node process; returns (report, [(case, A, W, b, C or None)])."""
    rng = np.random.default_rng(0)
    chunks, specs, data, offset = [], [], [], 0

    def put(arr):
        nonlocal offset
        flat = np.ascontiguousarray(arr, np.float32).ravel()
        chunks.append(flat)
        offset += flat.size
        return [offset - flat.size, flat.size]

    for i, (fn, m, n, k, with_bias) in enumerate(cases):
        a = rng.standard_normal((m, k)).astype(np.float32)
        w = rng.standard_normal((n, k)).astype(np.float32)
        b = rng.standard_normal(n).astype(np.float32) if with_bias else None
        specs.append({"fn": fn, "m": m, "n": n, "k": k, "a": put(a),
                      "w": put(pack_panels(w) if fn == "gemm_packed" else w),
                      "bias": put(b) if with_bias else None,
                      "last": ("a", "w", "bias" if with_bias else "a")[i % 3]})
        data.append((a, w, b))
    np.concatenate(chunks or [np.zeros(0, np.float32)]).tofile(tmp_path / f"{build}_in.bin")
    job = {"wasm": str(wasm), "inputs": str(tmp_path / f"{build}_in.bin"),
           "outputs": str(tmp_path / f"{build}_out.bin"), "results": str(tmp_path / f"{build}.json"),
           "cases": specs}
    (tmp_path / f"{build}_job.json").write_text(json.dumps(job))
    proc = subprocess.run(["node", *node_flags(build), str(HARNESS), str(tmp_path / f"{build}_job.json")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / f"{build}.json").read_text())
    out = np.fromfile(tmp_path / f"{build}_out.bin", np.float32)
    results = []
    for case, (a, w, b), res in zip(cases, data, report["cases"]):
        c = None
        if res["ok"]:
            start, length = res["out"]
            c = out[start:start + length].reshape(case[1], case[2])
        results.append((case, res, a, w, b, c))
    return report, results


@pytest.fixture(scope="module", params=gen.BUILDS)
def build_run(request, wasm_files, tmp_path_factory):
    build = request.param
    if build == "relaxed":
        probe = subprocess.run(["node", RELAXED_FLAG, "-e", "0"], capture_output=True)
        if probe.returncode != 0:
            pytest.skip(f"node does not accept {RELAXED_FLAG}")
    tmp = tmp_path_factory.mktemp(build)
    return build, run_harness(wasm_files[build], build, tmp, make_cases())


def test_module_shape(build_run):
    """Validates; imports only env.memory; exports exactly the eleven kernels."""
    _, (report, _) = build_run
    assert report["valid"]
    assert report["imports"] == [{"module": "env", "name": "memory", "kind": "memory"}]
    assert sorted((e["name"], e["kind"]) for e in report["exports"]) == [
        ("attend", "function"), ("dw_rows", "function"), ("dw_s2", "function"), ("gelu", "function"), ("gemm_dot", "function"),
        ("gemm_packed", "function"), ("resize_rgba", "function"), ("rms_rows", "function"), ("rope", "function"),
        ("softmax_rows", "function"), ("swiglu", "function")]
    assert report["memory_pages"] > len(report["cases"])  # every case ran in memory grown after instantiation


def test_no_globals_data_or_start(wasm_files):
    """Binary sections: no global (6), start (8) or data (11) section; code and exports only."""
    for path in wasm_files.values():
        raw = path.read_bytes()
        assert raw[:8] == b"\0asm\x01\0\0\0"
        ids, at = [], 8
        while at < len(raw):
            ids.append(raw[at])
            size, shift, at = 0, 0, at + 1
            while True:  # LEB128 section size
                byte = raw[at]
                size |= (byte & 0x7F) << shift
                shift, at = shift + 7, at + 1
                if byte < 0x80:
                    break
            at += size
        assert set(ids) <= {1, 2, 3, 7, 10}, ids  # type, import, function, export, code


def test_kernels_match_numpy(build_run):
    """Every case: no trap, guards untouched, C == A @ W^T + b within float32 rounding."""
    build, (_, results) = build_run
    failures = []
    for (fn, m, n, k, with_bias), res, a, w, b, c in results:
        name = f"{build} {fn} M={m} N={n} K={k} bias={with_bias}"
        if not res["ok"]:
            failures.append(f"{name}: {res['error']}")
            continue
        if not res["guards_ok"]:
            failures.append(f"{name}: wrote outside C")
        ref = a.astype(np.float64) @ w.T.astype(np.float64) + (0 if b is None else b)
        scale = np.abs(a).astype(np.float64) @ np.abs(w).T + (0 if b is None else np.abs(b))
        bound = 4 * (k + 2) * np.finfo(np.float32).eps * scale + 1e-30
        if k == 0:  # exact: C = bias or 0
            ok = np.array_equal(c, np.zeros((m, n), np.float32) if b is None else np.broadcast_to(b, (m, n)))
        else:
            ok = bool(np.all(np.abs(c - ref) <= bound))
        if not ok:
            failures.append(f"{name}: max err {np.nanmax(np.abs(c - ref))}")
    assert not failures, "\n".join(failures[:20])


@pytest.mark.parametrize("packed_rows,dot_rows,unroll", [(6, 3, 4), (3, 1, 2)])
def test_other_tile_shapes(wasm_files, tmp_path, packed_rows, dot_rows, unroll):
    """The generator's tile parameters stay correct away from the defaults (plain build)."""
    wat = tmp_path / "variant.wat"
    wat.write_text(gen.generate_wat(False, packed_rows, dot_rows, unroll))
    subprocess.run(["wat2wasm", str(wat), "-o", str(tmp_path / "variant.wasm")], check=True)
    shapes = [(m, n, k) for m in (1, 5, 7, 13) for n in (3, 8, 17) for k in (0, 3, 5, 9)]
    cases = [(fn, m, n, k, bias) for fn in FNS for (m, n, k) in shapes for bias in (True, False)]
    _, results = run_harness(tmp_path / "variant.wasm", "simd128", tmp_path, cases)
    for (fn, m, n, k, _), res, a, w, b, c in results:
        assert res["ok"] and res["guards_ok"], (fn, m, n, k, res)
        ref = a @ w.T + (0 if b is None else b)
        np.testing.assert_allclose(c, ref, rtol=1e-4, atol=1e-4, err_msg=f"{fn} M={m} N={n} K={k}")


# ---------------------------------------------------------------- SimdBackend in CPython

def test_pack_panels_layout():
    w = np.arange(13 * 3, dtype=np.float32).reshape(13, 3)  # [N=13, K=3]
    p = pack_panels(w)  # [2, 3, 8]
    assert p.shape == (2, 3, 8) and p.flags.c_contiguous
    assert p[1, 2, 4] == w[12, 2] and np.all(p[1, :, 5:] == 0)
    np.testing.assert_array_equal(p.transpose(0, 2, 1).reshape(16, 3)[:13], w)


def test_backend_matches_numpy_on_emulated_exports():
    calls = []
    backend = SimdBackend(*emulated_exports(calls))
    rng = np.random.default_rng(1)
    w = rng.standard_normal((13, 7)).astype(np.float32)
    b = rng.standard_normal(13).astype(np.float32)
    pw = backend.pack(w, b)
    for m in (1, 3, 4, 9):
        x = rng.standard_normal((m, 7)).astype(np.float32)
        ref = x @ w.T + b
        np.testing.assert_allclose(backend.linear(x, pw, b), ref, rtol=1e-5, atol=1e-5)
        out = np.full((m, 13), np.nan, np.float32)
        assert backend.linear(x, w, b, out=out) is out  # raw weight found by identity
        np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(backend.linear(x, w.copy()), x @ w.T, rtol=1e-5, atol=1e-5)  # unprepared
    assert [c[0] for c in calls] == ["gemm_dot"] * 6 + ["gemm_packed", "gemm_packed", "gemm_dot"] * 2


def test_backend_rejects_bad_arguments():
    """Every check raises KernelArgumentError before any export is called."""
    def trap(*args):
        raise AssertionError(f"kernel called with {args}")

    backend = SimdBackend(trap, trap)
    w = np.ones((5, 4), np.float32)
    pw = backend.pack(w)
    x = np.ones((3, 4), np.float32)
    read_only = np.empty((3, 5), np.float32)
    read_only.flags.writeable = False
    bad_calls = {
        "x float64": lambda: backend.linear(x.astype(np.float64), pw),
        "x big-endian": lambda: backend.linear(x.astype(">f4"), pw),
        "x non-contiguous": lambda: backend.linear(np.ones((4, 3), np.float32).T, pw),
        "x wrong K": lambda: backend.linear(np.ones((3, 5), np.float32), pw),
        "x 1-D": lambda: backend.linear(np.ones(4, np.float32), pw),
        "x list": lambda: backend.linear([[1.0] * 4], pw),
        "bias wrong N": lambda: backend.linear(x, pw, np.ones(4, np.float32)),
        "bias float64": lambda: backend.linear(x, pw, np.ones(5)),
        "out wrong shape": lambda: backend.linear(x, pw, out=np.empty((3, 4), np.float32)),
        "out non-contiguous": lambda: backend.linear(x, pw, out=np.empty((5, 3), np.float32).T),
        "out read-only": lambda: backend.linear(x, pw, out=read_only),
        "out float64": lambda: backend.linear(x, pw, out=np.empty((3, 5))),
        "raw weight non-contiguous": lambda: backend.linear(x, np.ones((4, 5), np.float32).T),
        "raw weight float16": lambda: backend.linear(x, np.ones((5, 4), np.float16)),
        "pack non-contiguous": lambda: backend.pack(np.ones((4, 5), np.float32).T),
        "pack bias shape": lambda: backend.pack(w, np.ones((1, 5), np.float32)),
        "pack 3-D": lambda: PackedWeight(np.ones((2, 2, 2), np.float32)),
    }
    for what, call in bad_calls.items():
        with pytest.raises(KernelArgumentError):
            call()
            pytest.fail(f"no error for {what}")


def test_self_check():
    SimdBackend(*emulated_exports()).self_check()
    packed, dot = emulated_exports()

    def dot_without_bias(a, w, bias, c, m, n, k):
        dot(a, w, 0, c, m, n, k)

    with pytest.raises(KernelSelfCheckError, match="max error"):
        SimdBackend(packed, dot_without_bias).self_check()


def test_build_is_deterministic(wasm_files, tmp_path):
    again = gen.build_wasm(tmp_path)
    for build, path in wasm_files.items():
        assert again[build].read_bytes() == path.read_bytes(), build


GELU_JS = Path(__file__).parent / "wasm" / "gelu.mjs"


@pytest.mark.parametrize("build", gen.BUILDS)
@pytest.mark.parametrize("n", [1, 4, 7, 1030])
def test_gelu_kernel_matches_reference(wasm_files, tmp_path, build, n):
    """gelu(x, y, n): GELU within the rational erf's error (1.5e-6); tail (n % 4) and guards untouched; in place."""
    import math

    x = np.linspace(-12, 12, n, dtype=np.float32) if n > 4 else np.array([-3.1, 0.0, 0.7, -0.0, 5.0, -6.0, 1e-8][:n], np.float32)
    (tmp_path / "in.f32").write_bytes(x.tobytes())
    run = subprocess.run(["node", *node_flags(build), str(GELU_JS), str(wasm_files[build]), str(tmp_path / "in.f32"),
                          str(tmp_path / "out.json")], capture_output=True, text=True)
    if build == "relaxed" and run.returncode != 0 and (why := relaxed_unsupported(str(wasm_files[build]))):
        pytest.skip(why)
    assert run.returncode == 0, run.stderr
    got = json.loads((tmp_path / "out.json").read_text())
    n4 = n - n % 4
    ref = np.array([0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in x[:n4].astype(np.float64)])
    for key in ("out", "inplace"):
        out = np.array(got[key], np.float64)
        assert out.shape == (n4,)
        assert np.all(np.abs(out - ref) <= 1.5e-6 * np.maximum(1, np.abs(ref))), (key, np.max(np.abs(out - ref)))
    assert got["guards_ok"]


def test_backend_gelu_on_emulated_export():
    from tiny_vlm import kernels as K
    from tiny_vlm.wasm.emulate import emulated_gelu

    calls = []
    backend = SimdBackend(*emulated_exports(), gelu=emulated_gelu(calls))
    x = np.random.default_rng(0).standard_normal((5, 7)).astype(np.float32)  # 35 = 32 on the kernel + a tail of 3
    np.testing.assert_array_equal(backend.gelu(x), K.gelu(x))
    y = x.copy()
    assert backend.gelu(y, out=y) is y and calls == [("gelu", 35), ("gelu", 35)]
    with pytest.raises(KernelArgumentError, match="not C-contiguous"):
        backend.gelu(x.T)


SWIGLU_JS = Path(__file__).parent / "wasm" / "swiglu.mjs"


@pytest.mark.parametrize("build", gen.BUILDS)
@pytest.mark.parametrize("rows, f", [(1, 4), (3, 8), (84, 512), (0, 4)])
def test_swiglu_kernel_matches_reference(wasm_files, tmp_path, build, rows, f):
    """swiglu(gu, y, rows, f): silu(gate) * up in float64 within exp error; large |x| of both signs
    (no overflow: exp(-|x|)); guards around y untouched; rows = 0 writes nothing."""
    rng = np.random.default_rng(rows + f)
    gu = (rng.standard_normal((rows, 2 * f)) * 4).astype(np.float32)
    if gu.size:
        gu.flat[:6] = [-100.0, 100.0, -0.0, 1e-8, -88.0, 87.0][:gu.size]
    (tmp_path / "in.f32").write_bytes(gu.tobytes())
    run = subprocess.run(["node", *node_flags(build), str(SWIGLU_JS), str(wasm_files[build]), str(tmp_path / "in.f32"),
                          str(rows), str(f), str(tmp_path / "out.json")], capture_output=True, text=True)
    if build == "relaxed" and run.returncode != 0 and (why := relaxed_unsupported(str(wasm_files[build]))):
        pytest.skip(why)
    assert run.returncode == 0, run.stderr
    got = json.loads((tmp_path / "out.json").read_text())
    g, u = gu[:, :f].astype(np.float64), gu[:, f:].astype(np.float64)
    ref = (g / (1 + np.exp(-g)) * u).reshape(-1)
    out = np.array(got["out"], np.float64)
    assert out.shape == ref.shape and np.all(np.isfinite(out))
    assert np.all(np.abs(out - ref) <= 1e-6 * np.maximum(1, np.abs(ref))), np.max(np.abs(out - ref))
    assert got["guards_ok"]


def test_backend_swiglu_on_emulated_export():
    from tiny_vlm import Backend
    from tiny_vlm.wasm.emulate import emulated_swiglu

    calls = []
    backend = SimdBackend(*emulated_exports(), swiglu=emulated_swiglu(calls))
    gu = np.random.default_rng(0).standard_normal((3, 16)).astype(np.float32)
    np.testing.assert_allclose(backend.swiglu(gu), Backend().swiglu(gu), rtol=1e-6, atol=1e-7)
    out = backend.pin(np.zeros((3, 8), np.float32))
    assert backend.swiglu(gu, out=out) is out and calls == [("swiglu", 3, 8), ("swiglu", 3, 8)]
    odd = gu[:, :14].copy()  # F = 7: not a multiple of 4, NumPy's
    np.testing.assert_allclose(backend.swiglu(odd), Backend().swiglu(odd), rtol=1e-6)
    assert len(calls) == 2
    with pytest.raises(KernelArgumentError, match="not C-contiguous"):
        backend.swiglu(np.asfortranarray(gu))


def run_guarded_case(script, wasm, build, tmp_path, case: dict, data: bytes):
    """Run a tests/wasm/*.mjs kernel script (case.json, the input bytes -> out.f32 whose last
    float is 1 when its guard zones survived); returns the outputs, the guard checked."""
    (tmp_path / "case.json").write_text(json.dumps(case))
    (tmp_path / "in.bin").write_bytes(data)
    run = subprocess.run(["node", *node_flags(build), str(script), str(wasm), str(tmp_path / "case.json"),
                          str(tmp_path / "in.bin"), str(tmp_path / "out.f32")], capture_output=True, text=True)
    if build == "relaxed" and run.returncode != 0 and (why := relaxed_unsupported(str(wasm))):
        pytest.skip(why)
    assert run.returncode == 0, run.stderr
    out = np.frombuffer((tmp_path / "out.f32").read_bytes(), np.float32)
    assert out[-1] == 1, "wrote outside the output"
    return out[:-1]


DW_JS = Path(__file__).parent / "wasm" / "dw_rows.mjs"


@pytest.mark.parametrize("build", gen.BUILDS)
@pytest.mark.parametrize("h,w,c,k", [(1, 1, 4, 1), (3, 5, 4, 3), (5, 3, 8, 7), (4, 4, 12, 3), (2, 6, 20, 5)])
def test_dw_rows_kernel_matches_numpy(wasm_files, tmp_path, build, h, w, c, k):
    """dw_rows == kernels.depthwise_conv2d_rows on odd shapes (16-float blocks and 4-float tails); guards kept."""
    from tiny_vlm import kernels as K

    rng = np.random.default_rng(h * 100 + w * 10 + c + k)
    x, taps, b = (rng.standard_normal(s).astype(np.float32) for s in ((h, w, c), (k, k, c), (c,)))
    row_taps, row_bias = K.depthwise_row_taps(taps, w), np.tile(b, w)
    ref = K.depthwise_conv2d_rows(x, row_taps, row_bias)
    xp = K._pad_depthwise(x, k, c)
    n, lp = w * c, xp.shape[1] * c
    out = run_guarded_case(DW_JS, wasm_files[build], build, tmp_path, {"h": h, "k": k, "n": n, "lp": lp, "c": c},
                           np.concatenate([xp.ravel(), row_taps.ravel(), row_bias]).tobytes())
    np.testing.assert_allclose(out.reshape(h, w, c), ref, rtol=1e-5, atol=1e-5)


def test_backend_depthwise_on_emulated_export():
    from tiny_vlm import kernels as K
    from tiny_vlm.wasm.emulate import emulated_dw_rows

    calls = []
    backend = SimdBackend(*emulated_exports(), dw_rows=emulated_dw_rows(calls))
    rng = np.random.default_rng(1)
    x, taps, b = rng.standard_normal((6, 5, 8)).astype(np.float32), rng.standard_normal((3, 3, 16)).astype(np.float32), np.ones(16, np.float32)
    rt, rb = K.depthwise_row_taps(taps, 5), np.tile(b, 5)  # channel multiplier 2
    np.testing.assert_allclose(backend.depthwise_conv2d_rows(x, rt, rb), K.depthwise_conv2d_rows(x, rt, rb), rtol=1e-6, atol=1e-6)
    assert calls == [("dw_rows", 6, 3, 80)]
    with pytest.raises(KernelArgumentError, match="does not fit"):
        backend.depthwise_conv2d_rows(x[:, :4], rt, rb)  # taps made for W = 5


DW_S2_JS = Path(__file__).parent / "wasm" / "dw_s2.mjs"


@pytest.mark.parametrize("build", gen.BUILDS)
@pytest.mark.parametrize("h,w,c,k", [(1, 1, 4, 1), (5, 4, 4, 3), (8, 8, 20, 7), (7, 9, 32, 7), (6, 5, 96, 3)])
def test_dw_s2_kernel_matches_reference(wasm_files, tmp_path, build, h, w, c, k):
    """dw_s2 == a float64 stride-2 depthwise conv written out tap by tap (odd sizes, 16-float blocks
    and 4-float tails); the padded input ends the memory (no over-read), guards around out kept."""
    from tiny_vlm import kernels as K

    rng = np.random.default_rng(h * 1000 + w * 100 + c + k)
    x, taps, b = (rng.standard_normal(s).astype(np.float32) for s in ((h, w, c), (k, k, c), (c,)))
    p = k // 2
    xp = K._pad_depthwise(x, k, c)  # [h + 2p, w + 2p, c]
    ho, wo = (h + 2 * p - k) // 2 + 1, (w + 2 * p - k) // 2 + 1
    ref = np.tile(b.astype(np.float64), (ho, wo, 1))
    for r in range(ho):
        for q in range(wo):
            for i in range(k):
                for j in range(k):
                    y, xx = 2 * r + i - p, 2 * q + j - p
                    if 0 <= y < h and 0 <= xx < w:
                        ref[r, q] += x[y, xx].astype(np.float64) * taps[i, j]
    out = run_guarded_case(DW_S2_JS, wasm_files[build], build, tmp_path,
                           {"hp": xp.shape[0], "wp": xp.shape[1], "ho": ho, "wo": wo, "k": k, "c": c},
                           np.concatenate([xp.ravel(), taps.ravel(), b]).tobytes())
    np.testing.assert_allclose(out.reshape(ho, wo, c), ref, rtol=1e-5, atol=1e-5)


def test_backend_dw_s2_on_emulated_export():
    """Stride-2 depthwise on the kernel (channel multiplier 2 included) == kernels.depthwise_conv2d;
    stride 1 and C % 4 != 0 stay on NumPy."""
    from tiny_vlm import kernels as K
    from tiny_vlm.wasm.emulate import emulated_dw_s2

    calls = []
    backend = SimdBackend(*emulated_exports(), dw_s2=emulated_dw_s2(calls))
    rng = np.random.default_rng(2)
    x, taps, b = rng.standard_normal((9, 7, 8)).astype(np.float32), rng.standard_normal((7, 7, 16)).astype(np.float32), rng.standard_normal(16).astype(np.float32)
    np.testing.assert_allclose(backend.depthwise_conv2d(x, taps, b, 2), K.depthwise_conv2d(x, taps, b, 2), rtol=1e-5, atol=1e-5)
    assert calls == [("dw_s2", 5, 4, 7, 16)]
    backend.depthwise_conv2d(x, taps, b, 1)
    odd = rng.standard_normal((3, 3, 6)).astype(np.float32)
    np.testing.assert_allclose(backend.depthwise_conv2d(x[:, :, :6], odd, b[:6], 2), K.depthwise_conv2d(x[:, :, :6], odd, b[:6], 2))
    assert len(calls) == 1
    with pytest.raises(KernelArgumentError, match="bias"):
        backend.depthwise_conv2d(x, taps, b[:8], 2)


ATTEND_JS = Path(__file__).parent / "wasm" / "attend.mjs"


def _attention_reference(q, k, v, causal, scale):  # float64, [H, T, Dh], [Hkv, P, Dh] x 2 -> [H, T, Dh]
    n_heads, t, _ = q.shape
    group = n_heads // k.shape[0]
    out = np.zeros(q.shape)
    for h in range(n_heads):
        kh, vh = k[h // group].astype(np.float64), v[h // group].astype(np.float64)
        for i in range(t):
            n = k.shape[1] if causal < 0 else min(k.shape[1], causal + i + 1)
            s = kh[:n] @ q[h, i].astype(np.float64) * scale
            e = np.exp(s - s.max())
            out[h, i] = e @ vh[:n] / e.sum()
    return out


def _strided(buf, offset, shape, strides):  # float32 view [A, B, Dh] with float strides (A, B, 1)
    return np.lib.stride_tricks.as_strided(buf[offset:], shape, tuple(4 * s for s in strides), writeable=False)


# (t, p, h, g, dh, layout, causal): "rows" = heads side by side in each row (the vision qkv
# rows), "heads" = head-major key/value rows (the decoder's KV cache, rows past p unused)
ATTEND_CASES = [(1, 1, 1, 1, 4, "rows", -1), (7, 7, 3, 1, 8, "rows", -1), (5, 13, 6, 3, 8, "heads", 8),
                (1, 5, 4, 2, 12, "heads", 4), (6, 6, 2, 1, 4, "heads", 0), (64, 64, 6, 1, 32, "rows", -1),
                (3, 10, 2, 2, 16, "rows", -1), (9, 9, 2, 1, 20, "rows", 0), (2, 3, 1, 1, 4, "heads", 1)]


@pytest.mark.parametrize("build", gen.BUILDS)
@pytest.mark.parametrize("t,p,h,g,dh,layout,causal", ATTEND_CASES)
def test_attend_kernel_matches_reference(wasm_files, tmp_path, build, t, p, h, g, dh, layout, causal):
    """attend == float64 attention head by head (GQA groups, causal rows, P % 4 tails, padded
    row strides); v ends the memory (no over-read); out's padding, the guards around out and
    around the scratch row keep their sentinel."""
    rng = np.random.default_rng(t * 1000 + p * 10 + h)
    n_kv = h // g
    if layout == "rows":
        ldq, hsq, ldkv, hskv = h * dh + 4, dh, n_kv * dh + 8, dh
        nq, nkv = t * ldq, p * ldkv
    else:
        cap = p + 3
        ldq, hsq, ldkv, hskv = (h + n_kv) * dh, dh, dh, cap * dh
        nq, nkv = t * ldq, n_kv * hskv
    ldo, hso, no = h * dh + 4, dh, t * (h * dh + 4)
    qb, kb, vb = ((rng.standard_normal(n) * 2).astype(np.float32) for n in (nq, nkv, nkv))
    q = _strided(qb, 0, (h, t, dh), (hsq, ldq, 1))
    k, v = (_strided(b, 0, (n_kv, p, dh), (hskv, ldkv, 1)) for b in (kb, vb))
    scale = float(np.float32(1 / np.sqrt(dh)))
    case = dict(t=t, p=p, h=h, g=g, dh=dh, ldq=ldq, hsq=hsq, ldkv=ldkv, hskv=hskv, ldo=ldo, hso=hso,
                causal=causal, scale=scale, nq=nq, nkv=nkv, no=no)
    out = run_guarded_case(ATTEND_JS, wasm_files[build], build, tmp_path, case, np.concatenate([qb, kb, vb]).tobytes())
    got = _strided(out, 0, (h, t, dh), (hso, ldo, 1))
    np.testing.assert_allclose(got, _attention_reference(q, k, v, causal, scale), rtol=2e-5, atol=2e-6)
    written = np.zeros(no, bool)
    idx = (np.arange(h)[:, None, None] * hso + np.arange(t)[None, :, None] * ldo + np.arange(dh)[None, None, :]).ravel()
    written[idx] = True
    assert np.all(out[~written].view(np.uint32) == 0x7FC0DEAD), "wrote into out's padding"


def test_backend_attention_on_emulated_export():
    """Backend.attention on the kernel == kernels.attention for the models' views (the vision
    tower's qkv rows; the decoder's GQA heads over a sliced KV cache, causal), written into a
    strided out; Dh % 4 != 0 stays on NumPy; an out that overlaps the inputs is refused."""
    from tiny_vlm import kernels as K
    from tiny_vlm.wasm.emulate import emulated_attend

    calls = []
    backend = SimdBackend(*emulated_exports(), attend=emulated_attend(calls))
    rng = np.random.default_rng(5)
    qkv = rng.standard_normal((9, 3 * 4 * 8)).astype(np.float32).reshape(9, 3, 4, 8).transpose(1, 2, 0, 3)  # [3, H, N, Dh]
    o = np.full((9, 32), np.nan, np.float32)
    got = backend.attention(qkv[0], qkv[1], qkv[2], out=o.reshape(9, 4, 8).transpose(1, 0, 2))
    assert np.shares_memory(got, o) and not np.isnan(o).any()
    np.testing.assert_allclose(o.reshape(9, 4, 8).transpose(1, 0, 2), K.attention(qkv[0], qkv[1], qkv[2]), rtol=1e-5, atol=1e-6)
    assert calls[-1] == ("attend", 9, 9, 4, 1, 8, -1)

    cache_k, cache_v = (rng.standard_normal((2, 16, 8)).astype(np.float32) for _ in range(2))  # [Hkv, capacity, Dh]
    q = rng.standard_normal((3, 6 * 8)).astype(np.float32).reshape(3, 6, 8).transpose(1, 0, 2)  # [H, T, Dh] view
    got = backend.attention(q, cache_k[:, :7], cache_v[:, :7], 4, scale=None)
    np.testing.assert_allclose(got, K.attention(q, cache_k[:, :7], cache_v[:, :7], 4, scale=None), rtol=1e-5, atol=1e-6)
    assert calls[-1] == ("attend", 3, 7, 6, 3, 8, 4)

    n = len(calls)
    odd = rng.standard_normal((2, 5, 6)).astype(np.float32)  # Dh = 6
    np.testing.assert_allclose(backend.attention(odd, odd, odd), K.attention(odd, odd, odd), rtol=1e-5, atol=1e-6)
    assert len(calls) == n
    with pytest.raises(KernelArgumentError, match="apart from q, k and v"):
        backend.attention(qkv[0], qkv[1], qkv[2], out=qkv[2])
    with pytest.raises(KernelArgumentError, match="causal_from"):
        backend.attention(q, cache_k[:, :7], cache_v[:, :7], -2)


ROPE_JS = Path(__file__).parent / "wasm" / "rope.mjs"


@pytest.mark.parametrize("build", gen.BUILDS)
@pytest.mark.parametrize("t,h,dh,layout", [(1, 1, 8, "rows"), (3, 8, 32, "rows"), (5, 2, 16, "cache"), (2, 3, 24, "cache")])
def test_rope_kernel_matches_reference(wasm_files, tmp_path, build, t, h, dh, layout):
    """rope == float64 rotary embedding written out half by half, from heads side by side in
    padded rows into a [T, H, Dh] buffer or a KV-cache-like [H, P, Dh] layout; x ends the
    memory (no over-read); out's uncovered positions and its guards keep their sentinel."""
    rng = np.random.default_rng(t * 100 + h * 10 + dh)
    ldx = h * dh + 8  # the heads of a row side by side, then (here) other heads' floats
    x = rng.standard_normal(t * ldx).astype(np.float32)
    ang = rng.uniform(0, 6.3, (t, dh // 2))
    cos = np.cos(np.concatenate([ang, ang], 1)).astype(np.float32)
    sin = np.sin(np.concatenate([ang, ang], 1))
    sin_signed = np.concatenate([-sin[:, :dh // 2], sin[:, dh // 2:]], 1).astype(np.float32)
    if layout == "rows":
        ldo, hso, no = h * dh, dh, t * h * dh
    else:
        cap = t + 2
        ldo, hso, no = dh, cap * dh, h * cap * dh
    case = dict(fn="rope", t=t, h=h, dh=dh, ldx=ldx, ldo=ldo, hso=hso, nx=x.size, no=no)
    out = run_guarded_case(ROPE_JS, wasm_files[build], build, tmp_path, case, np.concatenate([x, cos.ravel(), sin_signed.ravel()]).tobytes())
    xs = _strided(x, 0, (t, h, dh), (ldx, dh, 1)).astype(np.float64)
    half = dh // 2
    c64, s64 = cos.astype(np.float64)[:, None], np.sin(np.concatenate([ang, ang], 1))[:, None]
    ref = np.concatenate([xs[..., :half] * c64[..., :half] - xs[..., half:] * s64[..., :half],
                          xs[..., half:] * c64[..., half:] + xs[..., :half] * s64[..., half:]], -1)
    np.testing.assert_allclose(_strided(out, 0, (t, h, dh), (ldo, hso, 1)), ref, rtol=1e-5, atol=1e-6)
    idx = (np.arange(t)[:, None, None] * ldo + np.arange(h)[None, :, None] * hso + np.arange(dh)[None, None, :]).ravel()
    covered = np.zeros(no, bool)
    covered[idx] = True
    assert np.all(out[~covered].view(np.uint32) == 0x7FC0DEAD), "wrote outside the strided out"


@pytest.mark.parametrize("build", gen.BUILDS)
@pytest.mark.parametrize("rows,n", [(1, 4), (3, 192), (84, 20)])
def test_rms_rows_kernel_matches_reference(wasm_files, tmp_path, build, rows, n):
    """rms_rows == x / sqrt(mean(x^2) + eps) per row in float64; guards kept."""
    x = (np.random.default_rng(rows + n).standard_normal((rows, n)) * 3).astype(np.float32)
    out = run_guarded_case(ROPE_JS, wasm_files[build], build, tmp_path, dict(fn="rms_rows", rows=rows, n=n, eps=1e-6), x.tobytes())
    x64 = x.astype(np.float64)
    ref = x64 / np.sqrt((x64 * x64).mean(1, keepdims=True) + 1e-6)
    np.testing.assert_allclose(out.reshape(rows, n), ref, rtol=2e-6, atol=1e-6)


def test_backend_rope_and_rms_norm_on_emulated_exports():
    """Backend.rope on the kernel == kernels.rope_swapped from a qkv-like view into a KV-cache
    view and in place; Backend.rms_norm == kernels.rms_norm; odd sizes stay on NumPy."""
    from tiny_vlm import kernels as K
    from tiny_vlm.wasm.emulate import emulated_rms_rows, emulated_rope

    calls = []
    backend = SimdBackend(*emulated_exports(), rope=emulated_rope(calls), rms_rows=emulated_rms_rows(calls))
    rng = np.random.default_rng(9)
    cos_t, sin_t = K.rope_tables(16, 8, 10000.0)
    sin_signed = K.rope_signed_sin(sin_t)
    heads = rng.standard_normal((5, 4 * 8)).astype(np.float32).reshape(5, 4, 8)  # [T, q+k+v heads, Dh]
    cache = np.zeros((2, 16, 8), np.float32)  # [Hkv, P, Dh]
    ref = K.rope_swapped(heads[:, 1:3], cos_t[3:8, None], sin_signed[3:8, None])
    got = backend.rope(heads[:, 1:3], cos_t[3:8], sin_signed[3:8], out=cache[:, 3:8].transpose(1, 0, 2))
    np.testing.assert_allclose(cache[:, 3:8].transpose(1, 0, 2), ref, rtol=1e-6, atol=1e-6)
    assert np.shares_memory(got, cache) and not cache[:, :3].any() and not cache[:, 8:].any()
    assert calls[-1] == ("rope", 5, 2, 8)
    x = rng.standard_normal((3, 2, 8)).astype(np.float32)
    want = K.rope_swapped(x, cos_t[:3, None], sin_signed[:3, None])
    assert backend.rope(x, cos_t[:3], sin_signed[:3], out=x) is x
    np.testing.assert_allclose(x, want, rtol=1e-6, atol=1e-6)
    h = rng.standard_normal((4, 12)).astype(np.float32)
    np.testing.assert_allclose(backend.rms_norm(h, 1e-6), K.rms_norm(h, None, 1e-6), rtol=1e-6)
    assert calls[-1] == ("rms_rows", 4, 12)
    n = len(calls)
    backend.rms_norm(h[:, :10].copy(), 1e-6)  # D % 4 != 0
    odd_cos, odd_sin = K.rope_tables(4, 6, 10000.0)
    backend.rope(rng.standard_normal((2, 1, 6)).astype(np.float32), odd_cos[:2], K.rope_signed_sin(odd_sin)[:2])  # Dh % 8 != 0
    assert len(calls) == n
    with pytest.raises(KernelArgumentError, match="rope: out"):
        backend.rope(heads[:, 1:3], cos_t[3:8], sin_signed[3:8], out=heads[:, 0:2])


SOFTMAX_JS = Path(__file__).parent / "wasm" / "softmax.mjs"


@pytest.mark.parametrize("build", gen.BUILDS)
@pytest.mark.parametrize("rows,n", [(1, 1), (3, 4), (2, 7), (5, 13), (4, 92)])
def test_softmax_rows_kernel_matches_numpy(wasm_files, tmp_path, build, rows, n):
    """softmax_rows == float64 softmax per row (incl. -inf causal-mask entries); guards kept; in place."""
    rng = np.random.default_rng(rows * 100 + n)
    x = (rng.standard_normal((rows, n)) * 4).astype(np.float32)
    if n > 1:
        x[0, -1] = -np.inf  # a masked key
    (tmp_path / "in.f32").write_bytes(x.tobytes())
    run = subprocess.run(["node", *node_flags(build), str(SOFTMAX_JS), str(wasm_files[build]), str(rows), str(n),
                          str(tmp_path / "in.f32"), str(tmp_path / "out.json")], capture_output=True, text=True)
    if build == "relaxed" and run.returncode != 0 and (why := relaxed_unsupported(str(wasm_files[build]))):
        pytest.skip(why)
    assert run.returncode == 0, run.stderr
    got = json.loads((tmp_path / "out.json").read_text())
    x64 = x.astype(np.float64)
    e = np.exp(x64 - x64.max(axis=1, keepdims=True))
    ref = e / e.sum(axis=1, keepdims=True)
    for key in ("out", "inplace"):
        np.testing.assert_allclose(np.array(got[key]).reshape(rows, n), ref, rtol=2e-6, atol=1e-7, err_msg=key)
    assert got["guards_ok"]


RESIZE_JS = Path(__file__).parent / "wasm" / "resize_rgba.mjs"
MEAN, INV_STD = np.array([0.5, 0.4, 0.3], np.float32), np.array([4.0, 2.0, 5.0], np.float32)


def _resize_sb():
    sb = np.zeros(8, np.float32)
    sb[:3], sb[4:7] = INV_STD / np.float32(255), -MEAN * INV_STD
    return sb


@pytest.mark.parametrize("build", gen.BUILDS)
@pytest.mark.parametrize("h,w,s", [(224, 300, 128), (64, 64, 32), (16, 16, 16), (10, 12, 16), (41, 37, 13), (3, 1, 5)])
def test_resize_rgba_kernel_matches_numpy(wasm_files, tmp_path, build, h, w, s):
    """resize_rgba on the centre crop of an h x w RGBA frame == image.resize_normalize (NumPy):
    shrinking (area taps), same size, enlarging (bilinear); the frame ends the memory (no
    over-read), guards around dst kept. The 2x case is also checked against 2x2 block means."""
    from tiny_vlm.image import resize_normalize, resize_taps

    rng = np.random.default_rng(h * 1000 + w + s)
    frame = rng.integers(0, 256, (h, w, 4), dtype=np.uint8)
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    idx, wt = resize_taps(side, s)
    k = idx.shape[1]
    out = run_guarded_case(RESIZE_JS, wasm_files[build], build, tmp_path,
                           {"h": h, "w": w, "top": top, "left": left, "side": side, "s": s, "k": k},
                           frame.tobytes() + idx.tobytes() + wt.tobytes() + _resize_sb().tobytes())
    got = out.reshape(s, s, 3)
    crop = frame[top:top + side, left:left + side]
    np.testing.assert_allclose(got, resize_normalize(crop, s, MEAN, INV_STD), rtol=1e-5, atol=2e-5)
    if side == 2 * s:
        block = crop[:, :, :3].astype(np.float64).reshape(s, 2, s, 2, 3).mean(axis=(1, 3))
        np.testing.assert_allclose(got, (block / 255 - MEAN) * INV_STD, rtol=1e-5, atol=2e-5)


def test_backend_resize_on_emulated_export():
    """ImageProcessor on a SimdBackend: RGBA frames (bytes or arrays, any crop) go through the
    kernel in one call and match NumPy's; RGB arrays and odd strides stay on NumPy."""
    from types import SimpleNamespace

    from tiny_vlm import ImageProcessor
    from tiny_vlm.wasm.emulate import emulated_resize_rgba

    calls = []
    backend = SimdBackend(*emulated_exports(), resize_rgba=emulated_resize_rgba(calls))
    cfg = SimpleNamespace(image_size=16, image_mean=(0.5, 0.4, 0.3), image_std=(0.25, 0.5, 0.2))  # what the processor reads
    fast, slow = ImageProcessor(cfg, backend), ImageProcessor(cfg)
    rng = np.random.default_rng(1)
    frame = rng.integers(0, 256, (30, 44, 4), dtype=np.uint8)
    for image, size in ((frame, {}), (frame.tobytes(), {"width": 44, "height": 30}), (frame[:9, :7], {})):
        np.testing.assert_allclose(fast(image, **size), slow(image, **size), rtol=1e-5, atol=2e-5)
    assert calls == [("resize_rgba", 30, 16, 3), ("resize_rgba", 30, 16, 3), ("resize_rgba", 7, 16, 2)]
    np.testing.assert_allclose(fast(frame[:, :, :3].copy()), slow(frame[:, :, :3].copy()), rtol=1e-6)
    np.testing.assert_allclose(fast(frame[:, ::2]), slow(frame[:, ::2]), rtol=1e-6)  # pixels 8 bytes apart
    assert len(calls) == 3
