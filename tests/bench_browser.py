"""Browser benchmark: tiny-vlm (SIMD kernels, NumPy only) vs onnxruntime-web, one Chromium.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python tests/bench_browser.py \\
        [--model PATH] [--ort-web DIR] [--rounds 10] [--max-tokens 32] [--out bench-results/browser.json]

In one headless Chromium (Debian's /usr/bin/chromium through Playwright; never a
downloaded browser), three pages of one local server (serve.py's handler, so COOP/COEP):
- tiny-vlm-simd:  the web app built by build.py --kernels (SimdBackend on the WASM GEMM);
- tiny-vlm-numpy: the web app built without kernels (NumPy einsum backend);
- onnxruntime-web: tests/bench_browser/ort_bench.mjs on the ONNX export of the CPython
  bench (tiny_vlm.bench.export_onnx), WASM SIMD backend, numThreads = 1.
Memory: performance.measureUserAgentSpecificMemory() per page (its JS heaps and WASM
memories, the worker's included) after the rounds, and again after --soak more answers.
Boot-to-ready is timed once per engine in a fresh context (page.goto until ready), then
again after page.reload() (browser caches and any service worker warm), with the bytes
transferred each time (both sites carry build.py's gzip twins, so large text and .wasm
files travel compressed for every engine). Then `warmup`
untimed answers each, and `rounds` rounds of one answer per engine, interleaved; medians.
The tiny-vlm pages are driven through the app's own client (window.tinyVLM.ready ->
client.infer); their stage times and ttft_ms come from the worker (Python clocks, like the
ORT page's own clocks), answer_ms and ttft_page_ms (infer() to the first onToken: adds the
page -> worker message with the frame, the session start and the first decode step) from
the page. All engines see the same frame (--image, default the synthetic 224x224
tiny_vlm.bench.bench_image).

onnxruntime-web comes from npm: --ort-web names a folder with node_modules/onnxruntime-web
(for instance a scratch folder where `npm install onnxruntime-web` ran). Skips with the
reason when the Pyodide NumPy wheel is missing (build.py would fall back to the CDN, which
a benchmark never uses), when wat2wasm is missing (no SIMD build) or when
onnxruntime-web is not found.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "py"))

import build  # noqa: E402
import serve  # noqa: E402

from tiny_vlm import bench  # noqa: E402

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
NUMPY_WHEEL = "numpy-2.4.3-cp314-cp314-pyemscripten_2026_0_wasm32.whl"
ENGINES = ("tiny-vlm-simd", "tiny-vlm-numpy", "onnxruntime-web", "onnxruntime-web-threads")
ORT_THREADS = max(2, os.cpu_count() or 2)  # the threaded peer: one WASM thread per core (the page is cross-origin isolated)
METRICS = ("preprocess_ms", "encode_ms", "prefill_ms", "ttft_ms", "decode_ms_per_token", "answer_ms", "ttft_page_ms")
EXTRA = ("boot_to_ready_ms", "reload_to_ready_ms", "first_load_mb", "reload_mb", "first_answer_ms", "memory_mb",
         "memory_after_soak_mb")
BOOT_TIMEOUT_MS = 240_000

TINY_ANSWER_JS = """async ([rgba, w, h, prompt, maxTokens]) => {
    const vlm = await window.tinyVLM.ready;
    const image = new ImageData(new Uint8ClampedArray(rgba), w, h);
    let first = 0;
    const t0 = performance.now();
    const r = await vlm.infer(image, prompt, {maxTokens, onToken: () => { if (!first) first = performance.now() - t0; }});
    return {answer_ms: performance.now() - t0, first_token_page_ms: first, stats: r.stats, text: r.text, reason: r.reason};
}"""
# Needs cross-origin isolation (serve.py sends COOP/COEP); resolves after the next GC (~20 s).
MEMORY_JS = """async () => {
    if (!self.crossOriginIsolated || !performance.measureUserAgentSpecificMemory) return null;
    const m = await Promise.race([performance.measureUserAgentSpecificMemory(),
                                  new Promise((resolve) => setTimeout(() => resolve(null), 45000))]);
    if (!m) return null;  // no GC within 45 s: not measured
    const worker = m.breakdown.filter((b) => b.attribution.some((a) => a.scope === "DedicatedWorkerGlobalScope"))
                              .reduce((s, b) => s + b.bytes, 0);
    return {total_mb: m.bytes / 2 ** 20, worker_mb: worker / 2 ** 20};
}"""
ORT_ANSWER_JS = """async ([rgba, w, h, maxTokens]) => {
    await window.ortBench.ready;
    return await window.ortBench.answer(new Uint8Array(rgba), w, h, maxTokens);
}"""


class Skip(Exception):
    """The benchmark cannot run here; the message says why."""


def find_ort_web(given: str | None) -> Path:
    for base in ([Path(given)] if given else []) + [ROOT, Path(tempfile.gettempdir()) / "bench" / "ortweb"]:
        dist = base / "node_modules" / "onnxruntime-web" / "dist"
        if (dist / "ort.wasm.min.mjs").is_file():
            return dist
    raise Skip("onnxruntime-web not found: run `npm install onnxruntime-web` in a scratch folder and pass --ort-web FOLDER")


def build_sites(root: Path, model: Path, work: Path, ort_dist: Path) -> dict:
    """root/{simd,numpy,ort}: the two app builds and the onnxruntime-web page."""
    wheel_dir = Path(build.DEFAULT_PACKAGES_DIR)
    if not (wheel_dir / NUMPY_WHEEL).is_file():
        raise Skip(f"the Pyodide NumPy wheel {wheel_dir / NUMPY_WHEEL} is missing (a benchmark never loads it from the CDN)")
    if shutil.which("wat2wasm") is None:
        raise Skip("wabt's wat2wasm is not installed: no SIMD kernel build")
    for name, extra in (("simd", ["--kernels", "on"]), ("numpy", ["--kernels", "off"])):
        if build.main(["--out", str(root / name), "--model", str(model), *extra]) != 0:
            raise RuntimeError(f"build.py failed for the {name} site")
        manifest = json.loads((root / name / "manifest.json").read_text())
        if manifest["numpy"]["source"] != "local":
            raise Skip(f"build.py did not copy NumPy in ({manifest['numpy']})")
    ort_site = root / "ort"
    (ort_site / "ort").mkdir(parents=True)
    for f in ort_dist.iterdir():
        if f.name.startswith(("ort.wasm.min.mjs", "ort-wasm-simd-threaded")) and not f.name.endswith(".map"):
            shutil.copy(f, ort_site / "ort" / f.name)
    shutil.copy(ROOT / "tests" / "bench_browser" / "ort_bench.mjs", ort_site / "ort_bench.mjs")
    (ort_site / "index.html").write_text('<!doctype html><meta charset="utf-8"><title>ort bench</title>'
                                         '<script type="module" src="ort_bench.mjs"></script>\n')
    encoder, decoder = bench.export_onnx(model, work / "onnx")
    shutil.copy(encoder, ort_site / "encoder.onnx")
    shutil.copy(decoder, ort_site / "decoder.onnx")
    shared = bench._Shared(model, bench.DEFAULT_PROMPT)
    cfg = shared.config
    shared.tensors["lm.embed_tokens.weight"].astype("<f4").tofile(ort_site / "embed.bin")
    meta = {"image_size": cfg.vision.image_size, "image_mean": list(cfg.vision.image_mean), "image_std": list(cfg.vision.image_std),
            "d_model": cfg.lm.d_model, "n_layers": cfg.lm.n_layers, "n_kv_heads": cfg.lm.n_kv_heads, "head_dim": cfg.lm.head_dim,
            "before": shared.before, "after": shared.after, "eos": sorted(shared.eos)}
    (ort_site / "meta.json").write_text(json.dumps(meta))
    # The same gzip twins as build.py writes for the app: both pages are served compressed.
    build.precompress(ort_site, [p.relative_to(ort_site).as_posix() for p in ort_site.rglob("*") if p.is_file()])
    return {"tiny-vlm-simd": "simd/", "tiny-vlm-numpy": "numpy/", "onnxruntime-web": "ort/",
            "onnxruntime-web-threads": f"ort/?threads={ORT_THREADS}"}


def _wait_ready(page, engine: str):
    if engine.startswith("onnxruntime-web"):
        return page.evaluate("async () => await window.ortBench.ready", None)
    return page.evaluate("async () => { const v = await window.tinyVLM.ready; return v.info; }", None)


def open_engine(browser, url: str, engine: str):
    """A fresh context and page, loaded twice (cold, then a reload with the browser's caches
    and any service worker warm); returns (page, boot dict, info of the second load)."""
    context = browser.new_context()
    page = context.new_page()
    errors, transferred = [], [0]

    def finished(request):  # bytes over the wire: headers + body as received (0 when served from a cache)
        sizes = request.sizes()
        transferred[0] += sizes["responseBodySize"] + sizes["responseHeadersSize"]

    page.on("pageerror", lambda e: errors.append(str(e)))
    context.on("requestfinished", finished)
    boot = {}
    for load in ("cold", "warm"):
        transferred[0] = 0
        t0 = time.perf_counter()
        if load == "cold":
            page.goto(url)
        else:
            page.reload()
        info = _wait_ready(page, engine)
        boot[f"{load}_ms"] = (time.perf_counter() - t0) * 1000
        page.wait_for_timeout(2500)  # late responses still count; the worker stores its bytecode 1 s after ready
        boot[f"{load}_transferred_mb"] = transferred[0] / 2 ** 20
    if errors:
        raise RuntimeError(f"{engine}: {errors}")
    return page, boot, info


def page_memory(page) -> dict | None:
    """performance.measureUserAgentSpecificMemory of a page and its worker, in MiB (None: unavailable)."""
    page.bring_to_front()
    return page.evaluate(MEMORY_JS)


def one_answer(page, engine: str, rgba: list, w: int, h: int, max_tokens: int) -> dict:
    # The answering page in front: Chromium deprioritises background pages' main threads, and
    # on a busy 2-core machine their worker messages (tokens) then arrive only at the end.
    page.bring_to_front()
    if engine.startswith("onnxruntime-web"):
        r = page.evaluate(ORT_ANSWER_JS, [rgba, w, h, max_tokens])
        return {**r, "ttft_page_ms": r["ttft_ms"]}  # the page is the engine's thread
    r = page.evaluate(TINY_ANSWER_JS, [rgba, w, h, bench.DEFAULT_PROMPT, max_tokens])
    s = r["stats"]
    return {**{m: s[m] for m in METRICS[:5]}, "answer_ms": r["answer_ms"], "tokens": s["tokens"],
            "ttft_page_ms": r["first_token_page_ms"], "worker_ttft_ms": s.get("worker_ttft_ms"),
            "worker_wall_ms": s.get("wall_ms"), "text": r["text"]}


def run(args) -> dict:
    ort_dist = find_ort_web(args.ort_web)
    if args.work_dir:
        work = Path(args.work_dir)
        work.mkdir(parents=True, exist_ok=True)
        return measure(args, ort_dist, work)
    with tempfile.TemporaryDirectory(prefix="tiny-vlm-browser-bench-") as tmp:
        return measure(args, ort_dist, Path(tmp))


def measure(args, ort_dist: Path, work: Path) -> dict:
    from playwright.sync_api import sync_playwright

    model, model_note = bench.resolve_model(args.model, work)
    root = work / "site"
    if root.exists():
        shutil.rmtree(root)
    paths = build_sites(root, model, work, ort_dist)
    if args.image:
        from tiny_vlm.cli import read_image

        image = read_image(args.image)[:, :, :3]
    else:
        image = bench.bench_image()
    h, w, _ = image.shape
    rgba = __import__("numpy").concatenate([image, __import__("numpy").full((h, w, 1), 255, "uint8")], axis=-1).ravel().tolist()
    server = serve.make_server(root, "127.0.0.1", 0, quiet=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}/"
    results = {e: {"samples": []} for e in ENGINES}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
            version = browser.version
            pages = {}
            for e in ENGINES:  # boot one after the other, so boots do not compete for the CPU
                page, boot, info = open_engine(browser, base + paths[e], e)
                pages[e] = page
                results[e].update(boot=boot, info=info)
                print(f"{e}: ready in {boot['cold_ms']:.0f} ms cold ({boot['cold_transferred_mb']:.1f} MB), "
                      f"{boot['warm_ms']:.0f} ms on reload ({boot['warm_transferred_mb']:.1f} MB)", file=sys.stderr)
            for _ in range(args.warmup):  # V8 tiers hot WASM functions up while they run
                for e in ENGINES:
                    results[e].setdefault("warmup", []).append(one_answer(pages[e], e, rgba, w, h, args.max_tokens))
            for r in range(args.rounds):
                for e in ENGINES:
                    results[e]["samples"].append(one_answer(pages[e], e, rgba, w, h, args.max_tokens))
                print(f"round {r + 1}/{args.rounds}: " + ", ".join(
                    f"{e} {results[e]['samples'][-1]['answer_ms']:.1f} ms" for e in ENGINES), file=sys.stderr)
            if args.memory:  # page memory (JS heaps + WASM memories), after the rounds and after --soak more answers
                for e in ENGINES:
                    results[e]["memory"] = [page_memory(pages[e])]
                    if args.soak:
                        for _ in range(args.soak):
                            one_answer(pages[e], e, rgba, w, h, args.max_tokens)
                        results[e]["memory"].append(page_memory(pages[e]))
                    print(f"{e}: memory {results[e]['memory']}", file=sys.stderr)
            browser.close()
    finally:
        server.shutdown()
    summary = {}
    for e in ENGINES:
        s = results[e]["samples"]
        summary[e] = {m: bench._median([x[m] for x in s]) for m in METRICS}
        boot = results[e]["boot"]
        summary[e]["boot_to_ready_ms"] = boot["cold_ms"]
        summary[e]["reload_to_ready_ms"] = boot["warm_ms"]
        summary[e]["first_load_mb"] = boot["cold_transferred_mb"]
        summary[e]["reload_mb"] = boot["warm_transferred_mb"]
        summary[e]["first_answer_ms"] = results[e]["warmup"][0]["answer_ms"] if results[e].get("warmup") else None
        memory = [m for m in results[e].get("memory", []) if m]
        summary[e]["memory_mb"] = memory[0]["total_mb"] if memory else None
        summary[e]["memory_after_soak_mb"] = memory[1]["total_mb"] if len(memory) > 1 else None
        summary[e]["tokens"] = s[-1]["tokens"]
        summary[e]["threads"] = (results[e].get("info") or {}).get("threads")
    ratios = {f"{t} / {peer}": {m: summary[t][m] / summary[peer][m]
                                for m in METRICS + EXTRA
                                if summary[peer][m] and summary[t][m] is not None}
              for t, peer in (("tiny-vlm-simd", "onnxruntime-web"), ("tiny-vlm-numpy", "onnxruntime-web"),
                              ("tiny-vlm-simd", "onnxruntime-web-threads"))}
    return {"date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "chromium": version,
            "machine": {"cpu": bench._cpu_model(), "logical_cpus": __import__("os").cpu_count()},
            "onnxruntime_web": json.loads((ort_dist.parent / "package.json").read_text())["version"],
            "model": {"path": str(model), "note": model_note}, "image": args.image or "synthetic 224x224 (tiny_vlm.bench.bench_image)",
            "rounds": args.rounds, "warmup": args.warmup, "max_tokens": args.max_tokens,
            "summary": summary, "ratios": ratios, "engines": {e: {k: v for k, v in results[e].items()} for e in ENGINES}}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model")
    ap.add_argument("--image", help="image file (.npy uint8 or anything Pillow reads); default: the synthetic 224x224 frame")
    ap.add_argument("--ort-web", help="folder holding node_modules/onnxruntime-web")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3, help="untimed answers per engine first")
    ap.add_argument("--no-memory", dest="memory", action="store_false",
                    help="skip measureUserAgentSpecificMemory (~20 s per engine)")
    ap.add_argument("--soak", type=int, default=0, help="after the rounds, this many more answers per engine, then memory again")
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--out", default=str(ROOT / "bench-results" / "browser.json"))
    ap.add_argument("--work-dir")
    args = ap.parse_args(argv)
    try:
        report = run(args)
    except Skip as why:
        print(f"SKIPPED: {why}")
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"skipped": str(why)}))
        return 0
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    s = report["summary"]
    print(f"Chromium {report['chromium']}, onnxruntime-web {report['onnxruntime_web']} (threaded peer: "
          f"{s['onnxruntime-web-threads'].get('threads')} threads), model {report['model']['note']}")
    head = ["metric", *ENGINES, "simd / ort", "numpy / ort", f"simd / ort {ORT_THREADS} threads"]
    rows = [head]
    for m in METRICS + EXTRA:
        if s["onnxruntime-web"].get(m) is None:
            continue
        rows.append([m] + [f"{s[e][m]:.1f}" if s[e][m] is not None else "-" for e in ENGINES] + [
            f"{report['ratios'][key].get(m, float('nan')):.2f}" for key in report["ratios"]])
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    for i, r in enumerate(rows):
        print("| " + " | ".join(c.ljust(wd) for c, wd in zip(r, widths)) + " |")
        if i == 0:
            print("|" + "|".join("-" * (wd + 2) for wd in widths) + "|")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
