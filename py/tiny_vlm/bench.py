"""CPython benchmark: tiny-vlm vs PyTorch eager vs onnxruntime, same weights, one thread.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m tiny_vlm.bench [--model PATH]
        [--engines tiny-vlm,torch,onnxruntime] [--rounds 3] [--repeats 5] [--out bench-results/cpython.json]

Each engine runs in its own child process (so peak RSS is its own, and the thread
variables are set before NumPy or torch is imported), `rounds` times, interleaved with the
other engines; each child warms up once and times `repeats` full answers. Medians are over
all timed answers. Ratios are tiny-vlm / peer (< 1: tiny-vlm is faster).

Engines (the peers are optional: skipped with the reason when a package is missing):
- tiny-vlm: `FastVLM.load(...).session(...)`, the NumPy backend (BLAS matmul).
- torch: timm FastViT (inference mode) + torch projector + transformers Qwen2ForCausalLM
  (eager attention, DynamicCache), fed the same weights (tiny_vlm.convert.torch_reference);
  torch.set_num_threads(1), inference_mode.
- onnxruntime: the same torch modules exported with torch.onnx.export (TorchScript
  exporter): one graph for vision tower + projector, one decoder graph whose KV cache is
  explicit input/output tensors ([L, 1, Hkv, P, Dh]; the same graph does the prefill with
  P = 0 and every step with T = 1); intra- and inter-op threads 1, all graph optimisations.
All three share tiny-vlm's image preprocessing (NumPy), tokenizer and prompt assembly, so
the preprocess column is the same code everywhere; the token embedding lookup is a NumPy /
torch gather. Every engine decodes greedily until eos or --max-tokens; the parent checks
that all engines produced the same token ids.

Measured per answer: preprocess, vision encode (tower + projector), prefill (prompt through
the decoder, first logits), TTFT (frame to first token id), ms/token (mean decode step),
full answer (frame to final text); per child: load time and peak RSS.

Model: --model PATH, else the one shipped model under <repo>/models, else a random-weights
model of the training package's default config (tiny_vlm_train.configs.default_config;
tiny_vlm.testing.tiny_config when that package is not importable), marked in the output.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ENGINES = ("tiny-vlm", "torch", "onnxruntime")
METRICS = ("preprocess_ms", "encode_ms", "prefill_ms", "ttft_ms", "decode_ms_per_token", "answer_ms")
THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")
DEFAULT_PROMPT = "Describe this image."
PEER_PACKAGES = {"torch": ("torch", "timm", "transformers"), "onnxruntime": ("onnxruntime", "torch", "timm", "transformers", "onnx")}


class BenchError(Exception):
    """A benchmark setup problem (bad option, failed child); printed without a traceback."""


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000.0


def bench_image(size: int = 224):  # -> uint8 [size, size, 3]
    """A deterministic camera-like frame: smooth gradients, a few discs and noise (seed 0)."""
    import numpy as np

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    img = np.stack([0.6 * xx + 0.2, 0.5 * yy + 0.3, 0.4 * (1 - xx) + 0.3], axis=-1)  # [S, S, 3]
    for _ in range(4):
        cy, cx, r = rng.uniform(0.2, 0.8, 2).tolist() + [rng.uniform(0.08, 0.2)]
        img[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = rng.uniform(0, 1, 3)
    img += rng.normal(0, 0.03, img.shape)
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


# ---------------------------------------------------------------- engines (child side)

def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def run_tiny_vlm(model_path, image, prompt, max_tokens, repeats):
    """Time `repeats` answers of FastVLM sessions; returns (samples, token ids, text, load_ms)."""
    from .model import FastVLM

    t0 = time.perf_counter()
    model = FastVLM.load(model_path)
    load_ms = _ms(t0)

    def answer():
        t = time.perf_counter()
        s = model.session(image, prompt, max_tokens=max_tokens)
        while not s.done:
            s.step()
        st = dict(s.stats)
        return {**{k: st[k] for k in METRICS[:-1]}, "answer_ms": _ms(t), "tokens": len(s.token_ids)}, s.token_ids, s.text

    answer()  # warm-up
    samples = [answer() for _ in range(repeats)]
    return [s[0] for s in samples], samples[-1][1], samples[-1][2], load_ms


class _Shared:
    """What every peer takes from tiny-vlm: weights, config, tokenizer, preprocessing, prompt ids."""

    def __init__(self, model_path, prompt):
        from .image import ImageProcessor
        from .model import find_model_files, prompt_ids
        from .tokenizer import Tokenizer
        from .weights import load_weights

        weights_path, tok_path, _ = find_model_files(model_path)
        w = load_weights(weights_path)
        self.config = w.config
        self.tensors = w.tensors
        self.tokenizer = Tokenizer.from_file(tok_path) if tok_path else Tokenizer.from_json(w.tokenizer_json)
        self.processor = ImageProcessor(self.config.vision)
        self.before, self.after = prompt_ids(self.tokenizer, self.config.prompt_template, prompt)
        self.eos = {i for i in (self.tokenizer.token_to_id(t) for t in self.config.eos_tokens) if i is not None}


def _greedy_loop(shared, image, max_tokens, encode, prefill, step):
    """One answer through engine callbacks: encode(pixels) -> emb, prefill(emb) -> logits, step(id) -> logits."""
    import numpy as np

    t_start = time.perf_counter()
    pixels = shared.processor(image)  # [S, S, 3]
    preprocess_ms = _ms(t_start)
    t = time.perf_counter()
    emb = encode(pixels)
    encode_ms = _ms(t)
    t = time.perf_counter()
    logits = prefill(emb)
    prefill_ms = _ms(t)
    ids, decode_ms, n_steps = [], 0.0, 0
    ttft_ms = None
    while True:
        nxt = int(np.argmax(logits))
        if ttft_ms is None:
            ttft_ms = _ms(t_start)
        if nxt in shared.eos:
            break
        ids.append(nxt)
        if len(ids) >= max_tokens:
            break
        t = time.perf_counter()
        logits = step(nxt)
        decode_ms += _ms(t)
        n_steps += 1
    text = shared.tokenizer.decode(ids)
    return ({"preprocess_ms": preprocess_ms, "encode_ms": encode_ms, "prefill_ms": prefill_ms, "ttft_ms": ttft_ms,
             "decode_ms_per_token": decode_ms / max(n_steps, 1), "answer_ms": _ms(t_start), "tokens": len(ids)}, ids, text)


def run_torch(model_path, image, prompt, max_tokens, repeats):
    import torch
    import transformers

    from .convert.torch_reference import ImageEncoder, hf_qwen2, timm_fastvit

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    sh = _Shared(model_path, prompt)
    encoder = ImageEncoder(timm_fastvit(sh.config.vision, sh.tensors), sh.tensors).eval()
    hf = hf_qwen2(sh.config.lm, sh.tensors)
    sh.tensors = None
    embed = hf.model.embed_tokens.weight.detach()
    load_ms = _ms(t0)
    state = {}

    def encode(pixels):
        return encoder(torch.from_numpy(pixels).permute(2, 0, 1)[None])  # [N_img, D]

    def prefill(emb):
        seq = torch.cat([embed[sh.before], emb, embed[sh.after]])[None]  # [1, T, D]
        out = hf(inputs_embeds=seq, cache=transformers.DynamicCache(), use_cache=True, logits_to_keep=1)
        state["cache"] = out.cache
        return out.logits[0, -1].numpy()

    def step(token):
        out = hf(inputs_embeds=embed[[token]][None], cache=state["cache"], use_cache=True, logits_to_keep=1)
        state["cache"] = out.cache
        return out.logits[0, -1].numpy()

    with torch.inference_mode():
        _greedy_loop(sh, image, max_tokens, encode, prefill, step)  # warm-up
        samples = [_greedy_loop(sh, image, max_tokens, encode, prefill, step) for _ in range(repeats)]
    return [s[0] for s in samples], samples[-1][1], samples[-1][2], load_ms


def export_onnx(model_path, out_dir) -> tuple[Path, Path]:
    """Export the torch peer to out_dir/{encoder,decoder}.onnx (TorchScript exporter, opset 17)."""
    import warnings

    import torch

    from .convert.torch_reference import DecoderStep, ImageEncoder, hf_qwen2, timm_fastvit
    from .model import find_model_files
    from .weights import load_weights

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    w = load_weights(find_model_files(model_path)[0])
    cfg = w.config
    enc = ImageEncoder(timm_fastvit(cfg.vision, w.tensors), w.tensors).eval()
    dec = DecoderStep(hf_qwen2(cfg.lm, w.tensors)).eval()
    s, lm = cfg.vision.image_size, cfg.lm
    kv = torch.zeros(lm.n_layers, 1, lm.n_kv_heads, 3, lm.head_dim)
    paths = out_dir / "encoder.onnx", out_dir / "decoder.onnx"
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(enc, (torch.zeros(1, 3, s, s),), str(paths[0]), dynamo=False, opset_version=17,
                          input_names=["pixels"], output_names=["embeds"])
        torch.onnx.export(dec, (torch.zeros(1, 2, lm.d_model), kv, kv.clone()), str(paths[1]), dynamo=False, opset_version=17,
                          input_names=["embeds", "past_k", "past_v"], output_names=["logits", "present_k", "present_v"],
                          dynamic_axes={"embeds": {1: "T"}, "past_k": {3: "P"}, "past_v": {3: "P"},
                                        "present_k": {3: "P_T"}, "present_v": {3: "P_T"}})
    return paths


def run_onnxruntime(model_path, image, prompt, max_tokens, repeats, onnx_dir):
    import numpy as np
    import onnxruntime as ort

    t0 = time.perf_counter()
    sh = _Shared(model_path, prompt)
    embed = np.ascontiguousarray(sh.tensors["lm.embed_tokens.weight"])  # [V, D]
    sh.tensors = None
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    enc = ort.InferenceSession(str(Path(onnx_dir) / "encoder.onnx"), so, providers=["CPUExecutionProvider"])
    dec = ort.InferenceSession(str(Path(onnx_dir) / "decoder.onnx"), so, providers=["CPUExecutionProvider"])
    lm = sh.config.lm
    empty = np.zeros((lm.n_layers, 1, lm.n_kv_heads, 0, lm.head_dim), np.float32)
    load_ms = _ms(t0)
    state = {}

    def encode(pixels):
        return enc.run(None, {"pixels": np.ascontiguousarray(pixels.transpose(2, 0, 1))[None]})[0]  # [N_img, D]

    def run(seq, k, v):
        logits, state["k"], state["v"] = dec.run(None, {"embeds": seq, "past_k": k, "past_v": v})
        return logits[0]

    def prefill(emb):
        return run(np.concatenate([embed[sh.before], emb, embed[sh.after]])[None], empty, empty)

    def step(token):
        return run(embed[[token]][None], state["k"], state["v"])

    _greedy_loop(sh, image, max_tokens, encode, prefill, step)  # warm-up
    samples = [_greedy_loop(sh, image, max_tokens, encode, prefill, step) for _ in range(repeats)]
    return [s[0] for s in samples], samples[-1][1], samples[-1][2], load_ms


def _versions() -> dict:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in ("numpy", "torch", "timm", "transformers", "onnx", "onnxruntime"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out


def _blas_info() -> list:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return [{"note": "threadpoolctl not installed"}]
    return [{k: i.get(k) for k in ("internal_api", "version", "architecture", "num_threads", "threading_layer")} for i in threadpool_info()]


def child_main(args) -> None:
    """Run one engine and write its samples as JSON to args.child_out."""
    import numpy as np

    image = np.load(args.image_npy)
    common = (args.model, image, args.prompt, args.max_tokens, args.repeats)
    if args.child == "tiny-vlm":
        samples, ids, text, load_ms = run_tiny_vlm(*common)
    elif args.child == "torch":
        samples, ids, text, load_ms = run_torch(*common)
    else:
        samples, ids, text, load_ms = run_onnxruntime(*common, args.onnx_dir)
    result = {"engine": args.child, "samples": samples, "ids": [int(i) for i in ids], "text": text, "load_ms": load_ms,
              "peak_rss_mb": _peak_rss_mb(), "blas": _blas_info()}
    Path(args.child_out).write_text(json.dumps(result), encoding="utf-8")


def profile_tiny_vlm(model_path, image, prompt, top: int = 15) -> str:
    """cProfile of one image encode, one prefill and 20 decode steps (after a warm-up).

    cProfile sees Python functions and builtins, not ufunc calls, so the counts are kernel
    and wrapper calls (Backend.linear, kernels.*, einsum, reductions), per image / per token.
    """
    import cProfile
    import io
    import pstats

    from .kv_cache import KVCache
    from .model import FastVLM

    model = FastVLM.load(model_path)
    pixels = model.processor(image)
    embeds = model.prompt_embeddings(model.encode_image(pixels), prompt)
    out = io.StringIO()
    cache = KVCache(model.config.lm)
    model.lm.forward(embeds, cache)
    n0 = cache.length

    def steps():
        cache.length = n0
        for _ in range(20):
            model.lm.decode(1, cache)

    for label, fn, per in (("image encode", lambda: model.encode_image(pixels), "image"),
                           ("prefill", lambda: model.lm.forward(embeds, KVCache(model.config.lm)), "prompt"),
                           ("20 decode steps", steps, "20 tokens")):
        fn()
        prof = cProfile.Profile()
        prof.enable()
        fn()
        prof.disable()
        stats = pstats.Stats(prof, stream=out)
        out.write(f"=== {label}: {stats.total_calls} profiled calls per {per}\n")
        stats.sort_stats("tottime").print_stats(top)
    return out.getvalue()


# ---------------------------------------------------------------- parent

def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _missing(engine: str) -> str | None:
    import importlib.util

    for pkg in PEER_PACKAGES.get(engine, ()):
        if importlib.util.find_spec(pkg) is None:
            return f"{pkg} is not installed"
    return None


def resolve_model(model: str | None, work_dir: Path) -> tuple[Path, str]:
    """(model path, note): --model, the shipped model, or a random model of a realistic config."""
    if model:
        return Path(model), "given with --model"
    from .cli import CliError, default_model

    try:
        return default_model(), "the shipped model under models/"
    except CliError as err:
        reason = str(err)
    from .testing import random_model, tiny_config

    vocab = tiny_config().lm.vocab_size  # the ids random_model's tokenizer can decode
    try:
        from tiny_vlm_train.configs import default_config
        config, which = default_config(vocab_size=vocab), f"tiny_vlm_train.configs.default_config(vocab_size={vocab})"
    except ImportError:
        config, which = tiny_config(), "tiny_vlm.testing.tiny_config() (tiny_vlm_train not importable)"
    path = work_dir / "random-model"
    random_model(path, config=config, seed=0, quant="f32")
    return path, f"RANDOM WEIGHTS, config {which} ({reason}); speed is representative, answers are gibberish"


def _child_env() -> dict:
    env = dict(os.environ)
    for var in THREAD_VARS:
        env[var] = "1"
    py = str(Path(__file__).resolve().parents[1])  # the directory holding tiny_vlm (and tiny_vlm_train in a checkout)
    env["PYTHONPATH"] = py + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def _median(values):
    values = sorted(values)
    n = len(values)
    return values[n // 2] if n % 2 else 0.5 * (values[n // 2 - 1] + values[n // 2])


def format_table(summary: dict, engines: list[str]) -> str:
    peers = [e for e in engines if e != "tiny-vlm"]
    head = ["metric"] + engines + [f"tiny-vlm / {p}" for p in peers]
    rows = []
    for m in METRICS + ("load_ms", "peak_rss_mb"):
        vals = [summary[e].get(m) for e in engines]
        cells = [m] + [f"{v:.2f}" if v is not None else "-" for v in vals]
        base = summary["tiny-vlm"].get(m) if "tiny-vlm" in summary else None
        for p in peers:
            v = summary[p].get(m)
            cells.append(f"{base / v:.2f}" if base is not None and v else "-")
        rows.append(cells)
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
    line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
    return "\n".join([line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|"] + [line(r) for r in rows])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tiny_vlm.bench", description=__doc__.split("\n")[0])
    ap.add_argument("--model", help="model directory or weights file (default: the shipped model, else random weights)")
    ap.add_argument("--engines", default=",".join(ENGINES), help=f"comma-separated subset of {','.join(ENGINES)}")
    ap.add_argument("--rounds", type=int, default=3, help="child processes per engine, interleaved")
    ap.add_argument("--repeats", type=int, default=5, help="timed answers per child (after one warm-up)")
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--prompt", default=DEFAULT_PROMPT)
    ap.add_argument("--image", help="image file (.npy uint8 or anything Pillow reads); default: a synthetic 224x224 frame")
    ap.add_argument("--out", default="bench-results/cpython.json")
    ap.add_argument("--work-dir", help="where the ONNX export and a random model go (default: a temporary directory)")
    ap.add_argument("--profile", action="store_true", help="print a cProfile of tiny-vlm (encode, prefill, decode) and exit")
    ap.add_argument("--child", choices=ENGINES, help=argparse.SUPPRESS)
    ap.add_argument("--child-out", help=argparse.SUPPRESS)
    ap.add_argument("--image-npy", help=argparse.SUPPRESS)
    ap.add_argument("--onnx-dir", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child_main(args)
        return 0
    if args.profile:
        with tempfile.TemporaryDirectory(prefix="tiny-vlm-bench-") as tmp:
            model_path, note = resolve_model(args.model, Path(args.work_dir or tmp))
            print(f"model: {model_path} ({note})")
            print(profile_tiny_vlm(model_path, bench_image(), args.prompt))
        return 0
    try:
        return _parent(args)
    except BenchError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def _parent(args) -> int:
    import numpy as np

    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    bad = [e for e in engines if e not in ENGINES]
    if bad or not engines:
        raise BenchError(f"--engines: unknown {bad}, choose from {ENGINES}")
    if args.rounds < 1 or args.repeats < 1:
        raise BenchError("--rounds and --repeats must be >= 1")
    skipped = {}
    for e in list(engines):
        why = _missing(e)
        if why:
            skipped[e] = why
            engines.remove(e)
    if not engines:
        raise BenchError("no engine left to run: " + "; ".join(f"{e}: {why}" for e, why in skipped.items()))
    with tempfile.TemporaryDirectory(prefix="tiny-vlm-bench-") as tmp:
        work = Path(args.work_dir) if args.work_dir else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        model_path, model_note = resolve_model(args.model, work)
        if args.image:
            from .cli import CliError, read_image

            try:
                image = read_image(args.image)
            except CliError as err:
                raise BenchError(str(err)) from None
        else:
            image = bench_image()
        image_npy = work / "image.npy"
        np.save(image_npy, image)
        env = _child_env()
        onnx_dir = work / "onnx"
        if "onnxruntime" in engines:
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", f"from tiny_vlm.bench import export_onnx; export_onnx({str(model_path)!r}, {str(onnx_dir)!r})"],
                           env=env, check=True)
            print(f"onnx export: {_ms(t0) / 1000:.1f} s -> {onnx_dir}", file=sys.stderr)
        results = {e: [] for e in engines}
        for r in range(args.rounds):
            for e in engines:
                out = work / f"{e}-{r}.json"
                cmd = [sys.executable, "-m", "tiny_vlm.bench", "--child", e, "--child-out", str(out), "--model", str(model_path),
                       "--image-npy", str(image_npy), "--onnx-dir", str(onnx_dir), "--prompt", args.prompt,
                       "--max-tokens", str(args.max_tokens), "--repeats", str(args.repeats)]
                proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
                if proc.returncode != 0:
                    raise BenchError(f"engine {e} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
                results[e].append(json.loads(out.read_text(encoding="utf-8")))
                print(f"round {r + 1}/{args.rounds} {e}: answer {_median([s['answer_ms'] for s in results[e][-1]['samples']]):.2f} ms",
                      file=sys.stderr)
    summary = {}
    for e, runs in results.items():
        samples = [s for run in runs for s in run["samples"]]
        summary[e] = {m: _median([s[m] for s in samples]) for m in METRICS}
        summary[e]["min"] = {m: min(s[m] for s in samples) for m in METRICS}
        summary[e]["tokens"] = samples[-1]["tokens"]
        summary[e]["load_ms"] = _median([run["load_ms"] for run in runs])
        summary[e]["peak_rss_mb"] = max(run["peak_rss_mb"] for run in runs)
        summary[e]["ids"] = runs[-1]["ids"]
        summary[e]["text"] = runs[-1]["text"]
    ids = {e: summary[e]["ids"] for e in engines}
    same_ids = len({tuple(v) for v in ids.values()}) <= 1
    ratios = {}
    if "tiny-vlm" in summary:
        for p in engines:
            if p != "tiny-vlm":
                ratios[p] = {m: summary["tiny-vlm"][m] / summary[p][m] for m in METRICS + ("peak_rss_mb",) if summary[p][m]}
    report = {
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpu": _cpu_model(), "logical_cpus": os.cpu_count(), "platform": platform.platform()},
        "versions": _versions(),
        "env": {v: os.environ.get(v) for v in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")},
        "blas": results["tiny-vlm"][0]["blas"] if "tiny-vlm" in results else None,
        "model": {"path": str(model_path), "note": model_note},
        "image": args.image or "synthetic 224x224 (tiny_vlm.bench.bench_image)",
        "prompt": args.prompt, "max_tokens": args.max_tokens, "rounds": args.rounds, "repeats": args.repeats,
        "engines": engines, "skipped": skipped, "same_token_ids": same_ids,
        "summary": summary, "ratios_tiny_over_peer": ratios,
        "raw": {e: [run["samples"] for run in runs] for e, runs in results.items()},
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1), encoding="utf-8")
    print(f"model: {model_path} ({model_note})")
    print(f"cpu: {report['machine']['cpu']} ({os.cpu_count()} logical), one thread per engine; "
          f"OPENBLAS_CORETYPE={report['env']['OPENBLAS_CORETYPE']}; BLAS: {report['blas']}")
    print(f"prompt {args.prompt!r}, {summary[engines[0]]['tokens']} tokens; medians of {args.rounds}x{args.repeats} answers (ms, MB)")
    for e, why in skipped.items():
        print(f"skipped {e}: {why}")
    print(format_table(summary, engines))
    if not same_ids:
        print("WARNING: engines produced different token ids: " + json.dumps(ids))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
