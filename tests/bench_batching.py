"""Serving benchmark: many requests for one model, one by one against tiny_vlm.batching.Batcher.

    python tests/bench_batching.py [--requests 16] [--max-batch 8] [--rounds 3] [--out bench-results/batching.json]

The shipped model answers "Describe this image." about --requests drawn scenes of three
objects each (tests/e2e/scene.py: Noto emoji at 640x480, the browser tests' camera scene).
Each round times the whole set answered with `model.generate` one after another, then
submitted at once to a Batcher. Both must give the same answers (checked each round). Medians
over the rounds are printed as a table and everything is written as JSON. One thread
(OPENBLAS_NUM_THREADS=1 is set here before NumPy loads), as the other benchmarks.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "py"))
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

import numpy as np  # noqa: E402

from tiny_vlm import FastVLM  # noqa: E402
from tiny_vlm.batching import Batcher  # noqa: E402

PROMPT = "Describe this image."


def scenes(labels, n: int):
    import scene

    if not scene.EMOJI_FONT.is_file():
        sys.exit(f"skipped: {scene.EMOJI_FONT} is missing (apt-get install fonts-noto-color-emoji)")
    rng = np.random.default_rng(1)
    return [scene.render_scene([labels[j] for j in rng.choice(len(labels), 3, replace=False)], 640, 480, seed=i) for i in range(n)]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=str(ROOT / "models" / "tiny-vlm-emoji"))
    ap.add_argument("--requests", type=int, default=16)
    ap.add_argument("--max-batch", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", default=str(ROOT / "bench-results" / "batching.json"))
    args = ap.parse_args(argv)
    model = FastVLM.load(args.model)
    frames = scenes(model.labels, args.requests)
    model.generate(frames[0], PROMPT)  # warm caches and lazily built tables
    rounds = []
    for r in range(args.rounds):
        t = time.perf_counter()
        alone = [model.generate(f, PROMPT) for f in frames]
        alone_ms = (time.perf_counter() - t) * 1000
        with Batcher(model, max_batch=args.max_batch) as batcher:
            t = time.perf_counter()
            together = [f.result() for f in [batcher.submit(f, PROMPT) for f in frames]]
            batched_ms = (time.perf_counter() - t) * 1000
            stats = dict(batcher.stats)
        if together != alone:
            sys.exit(f"round {r + 1}: the Batcher's answers differ from generate's: {together} vs {alone}")
        rounds.append({"one_by_one_ms": alone_ms, "batcher_ms": batched_ms, **stats})
        print(f"round {r + 1}/{args.rounds}: one by one {alone_ms:.0f} ms, Batcher {batched_ms:.0f} ms "
              f"({stats['decode_passes']} decoder passes for {stats['decoded_tokens']} tokens)")
    one = statistics.median(x["one_by_one_ms"] for x in rounds)
    bat = statistics.median(x["batcher_ms"] for x in rounds)
    report = {"date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "machine": platform.processor() or platform.machine(),
              "cpus": os.cpu_count(), "numpy": np.__version__, "model": args.model, "requests": args.requests,
              "max_batch": args.max_batch, "prompt": PROMPT, "answers": alone, "rounds": rounds,
              "median_one_by_one_ms": one, "median_batcher_ms": bat, "ratio_batcher_over_one_by_one": bat / one}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1))
    print(f"| {args.requests} requests, medians of {args.rounds} | ms | per request |\n|---|---|---|")
    print(f"| one by one (`generate`) | {one:.0f} | {one / args.requests:.1f} |")
    print(f"| `Batcher(max_batch={args.max_batch})` | {bat:.0f} | {bat / args.requests:.1f} |")
    print(f"| ratio Batcher / one by one | {bat / one:.2f} | |")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
