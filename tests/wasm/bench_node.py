"""GFLOP/s of the generated GEMM kernels in Node vs NumPy in this CPython (1 thread).

    OPENBLAS_NUM_THREADS=1 PYTHONPATH=py python tests/wasm/bench_node.py [--json OUT]

Node timings: best of 5 rounds after 20 warm-up calls (TurboFan), in the harness. NumPy:
best of 5 rounds of `matmul(x, W.T)` and `einsum('ik,jk->ij', x, W)` (einsum is the
formulation Pyodide's BLAS-less NumPy uses; its in-browser speed is in DESIGN.md §4).
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "py"))
from tiny_vlm.wasm import gen  # noqa: E402

HARNESS = Path(__file__).parent / "harness.mjs"
SHAPES = [  # (M, N, K): image-token linears, FFN, decode steps
    (49, 1024, 256), (196, 256, 256), (64, 64, 64), (4, 1024, 256),
    (1, 1024, 256), (1, 2048, 512), (3, 512, 512)]


def flops_per_s(fn, m, n, k, reps):
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        best = min(best, (time.perf_counter() - t0) / reps)
    return 2 * m * n * k / best / 1e9


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--json")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    wasm = gen.build_wasm(tmp)
    rows = {shape: {} for shape in SHAPES}
    for build, path in wasm.items():
        bench = []
        for m, n, k in SHAPES:
            reps = max(3, int(2e8 / (2 * m * n * k)))
            fns = ["gemm_packed", "gemm_dot"]
            bench += [{"fn": fn, "m": m, "n": n, "k": k, "bias": True, "reps": reps} for fn in fns]
        job = {"wasm": str(path), "results": str(tmp / f"{build}.json"), "cases": [], "bench": bench}
        (tmp / f"{build}_job.json").write_text(json.dumps(job))
        flags = ["--experimental-wasm-relaxed-simd"] if build == "relaxed" else []
        subprocess.run(["node", *flags, str(HARNESS), str(tmp / f"{build}_job.json")], check=True)
        for b in json.loads((tmp / f"{build}.json").read_text())["bench"]:
            rows[(b["m"], b["n"], b["k"])][f"{build} {b['fn'][5:]}"] = b["gflops"]
    rng = np.random.default_rng(0)
    for m, n, k in SHAPES:
        x = rng.standard_normal((m, k)).astype(np.float32)
        w = rng.standard_normal((n, k)).astype(np.float32)
        reps = max(3, int(2e8 / (2 * m * n * k)))
        rows[(m, n, k)]["numpy matmul"] = flops_per_s(lambda: np.matmul(x, w.T), m, n, k, reps)
        rows[(m, n, k)]["numpy einsum"] = flops_per_s(lambda: np.einsum("ik,jk->ij", x, w), m, n, k, reps)
    cols = list(next(iter(rows.values())))
    print("GFLOP/s   " + "".join(f"{c:>17}" for c in cols))
    for (m, n, k), row in rows.items():
        print(f"{m:>4}x{n:>4}x{k:>4}" + "".join(f"{row[c]:17.1f}" for c in cols))
    if args.json:
        Path(args.json).write_text(json.dumps([{"m": m, "n": n, "k": k, **row} for (m, n, k), row in rows.items()], indent=1))


if __name__ == "__main__":
    main()
