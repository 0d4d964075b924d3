"""GFLOP/s of the generated GEMM kernels in headless Chromium (no Pyodide; module only).

    PYTHONPATH=py python tests/wasm/bench_chromium.py [--chromium /usr/bin/chromium]

Same shapes and method as bench_node.py (best of 5 rounds after 30 warm-up calls), one
page, its own WebAssembly.Memory; needs the playwright Python package and a Chromium.
"""

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "py"))
from playwright.sync_api import sync_playwright  # noqa: E402

from tiny_vlm.wasm import gen  # noqa: E402

SHAPES = [(49,1024,256),(196,256,256),(64,64,64),(4,1024,256),(1,1024,256),(1,2048,512),(3,512,512)]
JS = """async ([bytes, shapes]) => {
  const mod = new Uint8Array(bytes);
  if (!WebAssembly.validate(mod)) return 'invalid';
  const memory = new WebAssembly.Memory({initial: 1});
  const {instance} = await WebAssembly.instantiate(mod, {env: {memory}});
  const e = instance.exports; const out = [];
  for (const [m, n, k] of shapes) {
    const row = {shape: `${m}x${n}x${k}`};
    for (const fn of ['gemm_packed', 'gemm_dot']) {
      const floats = m*k + 8*Math.ceil(n/8)*k + n + m*n;
      const need = 1024 + 4*floats; if (memory.buffer.byteLength < need) memory.grow(Math.ceil((need - memory.buffer.byteLength)/65536));
      const f = new Float32Array(memory.buffer); for (let i = 256; i < 256 + floats; i++) f[i] = Math.random() - 0.5;
      const A = 1024, W = A + 4*m*k, B = W + 4*8*Math.ceil(n/8)*k, C = B + 4*n;
      const reps = Math.max(3, Math.floor(2e8/(2*m*n*k)));
      for (let i = 0; i < 30; i++) e[fn](A, W, B, C, m, n, k);
      let best = Infinity;
      for (let r = 0; r < 5; r++) { const t0 = performance.now(); for (let i = 0; i < reps; i++) e[fn](A, W, B, C, m, n, k); best = Math.min(best, (performance.now() - t0)/1e3/reps); }
      row[fn] = 2*m*n*k/best/1e9;
    }
    out.push(row);
  }
  return out;
}"""


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    files = gen.build_wasm(tempfile.mkdtemp())
    with sync_playwright() as p:
        br = p.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
        page = br.new_page()
        page.goto("about:blank")
        print(f"Chromium {br.version}, GFLOP/s")
        for build, path in files.items():
            rows = page.evaluate(JS, [list(path.read_bytes()), SHAPES])
            if isinstance(rows, str):  # "invalid": this Chromium lacks the build's features
                print(build, rows)
                continue
            for r in rows:
                print(f"{build:8} {r['shape']:>12}  packed {r['gemm_packed']:5.1f}  dot {r['gemm_dot']:5.1f}")
        br.close()


if __name__ == "__main__":
    main()
