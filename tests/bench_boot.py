"""Boot benchmark: page-open-to-ready of the web app, cold and on reload, stage by stage.

    python tests/bench_boot.py [--loads 5] [--site DIR] [--out bench-results/boot.json]

Builds the app (build.py, shipped model, SIMD kernels when wabt is installed, NumPy from the
local Pyodide wheel) unless --site names a built one, serves it with serve.py's handler and
opens it in Debian's Chromium (headless, through Playwright). Each of --loads rounds uses a
fresh browser context: a cold load (empty caches, no service worker), then a reload (HTTP
cache and the service worker's cache warm). Per load: ready time as the page sees it
(navigation start to `tinyVLM.ready`), the worker's own stage times (`ready.info.timings`),
and the bytes that came over the network (what the server sent, counted by the server: a
response from the service worker's cache or the HTTP cache counts 0). Medians are printed
as a table and everything is written as JSON. Skips with the reason when the Pyodide NumPy
wheel is missing (a benchmark never loads it from the CDN).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "py"))
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

import build  # noqa: E402
from bench_browser import CHROMIUM_ARGS, NUMPY_WHEEL, Skip  # noqa: E402
from e2e_support import CountingServer  # noqa: E402


def build_site(out: Path) -> Path:
    if not (Path(build.DEFAULT_PACKAGES_DIR) / NUMPY_WHEEL).is_file():
        raise Skip(f"the Pyodide NumPy wheel {Path(build.DEFAULT_PACKAGES_DIR) / NUMPY_WHEEL} is missing")
    if build.main(["--out", str(out)]) != 0:
        raise RuntimeError("build.py failed")
    return out


READY_JS = """async () => {
    const ready = await window.tinyVLM.ready;
    const nav = performance.getEntriesByType("navigation")[0];
    return {page_ready_ms: performance.now() - nav.startTime, info: ready.info};
}"""


def one_load(page, server: CountingServer, reload: bool) -> dict:
    server.take()
    t0 = time.perf_counter()
    if reload:
        page.reload()
    else:
        page.goto(server.url)
    r = page.evaluate(READY_JS)
    wall = (time.perf_counter() - t0) * 1000
    page.wait_for_timeout(2500)  # late requests (the service worker's checks) count too; the bytecode is stored 1 s after ready
    sent = server.take()
    return {"ready_ms": r["page_ready_ms"], "wall_ms": wall, "timings": r["info"]["timings"],
            "network_bytes": sum(sent.values()), "requests": len(sent), "paths": sent}


def measure(site: Path, loads: int, chromium: str) -> dict:
    from playwright.sync_api import sync_playwright

    server = CountingServer(site)
    rows = {"cold": [], "reload": []}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        version = browser.version
        for i in range(loads):
            context = browser.new_context()
            page = context.new_page()
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            rows["cold"].append(one_load(page, server, reload=False))
            rows["reload"].append(one_load(page, server, reload=True))
            context.close()
            if errors:
                raise RuntimeError(f"page errors: {errors}")
            print(f"load {i + 1}/{loads}: cold {rows['cold'][-1]['ready_ms']:.0f} ms "
                  f"({rows['cold'][-1]['network_bytes'] / 1e6:.1f} MB), reload {rows['reload'][-1]['ready_ms']:.0f} ms "
                  f"({rows['reload'][-1]['network_bytes'] / 1e6:.2f} MB)", file=sys.stderr)
        browser.close()
    server.shutdown()
    return {"chromium": version, "rows": rows}


def summarize(rows: dict) -> dict:
    out = {}
    for kind, loads in rows.items():
        stages = sorted({k for r in loads for k in r["timings"]})
        out[kind] = {"ready_ms": statistics.median(r["ready_ms"] for r in loads),
                     "network_mb": statistics.median(r["network_bytes"] for r in loads) / 1e6,
                     "requests": statistics.median(r["requests"] for r in loads),
                     **{s: statistics.median(r["timings"].get(s, 0) for r in loads) for s in stages}}
    return out


def table(summary: dict) -> str:
    keys = [k for k in summary["cold"] if k != "ready_ms"]
    lines = ["| | cold | reload |", "|---|---|---|", f"| page open to ready, ms | {summary['cold']['ready_ms']:.0f} | {summary['reload']['ready_ms']:.0f} |"]
    for k in keys:
        fmt = "{:.2f}" if k == "network_mb" else "{:.0f}"
        lines.append(f"| {k} | {fmt.format(summary['cold'][k])} | {fmt.format(summary['reload'].get(k, 0))} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--loads", type=int, default=5)
    ap.add_argument("--site", help="an already built site (default: build one into a temporary folder)")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--out", default=str(ROOT / "bench-results" / "boot.json"))
    args = ap.parse_args(argv)
    try:
        with tempfile.TemporaryDirectory(prefix="tiny-vlm-boot-") as tmp:
            site = Path(args.site) if args.site else build_site(Path(tmp) / "site")
            result = measure(site, args.loads, args.chromium)
    except Skip as why:
        print(f"skipped: {why}")
        return 0
    summary = summarize(result["rows"])
    report = {"date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "chromium": result["chromium"],
              "loads": args.loads, "summary": summary, "rows": result["rows"]}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1))
    print(table(summary))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
