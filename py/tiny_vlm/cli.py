"""Command line: `python -m tiny_vlm caption IMAGE` and `python -m tiny_vlm info PATH`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from .image import pil_to_rgb
from .model import FastVLM, ModelFileError, find_model_files
from .tokenizer import Tokenizer
from .weights import load_weights

REPO_MODELS = Path(__file__).resolve().parents[2] / "models"  # the repo checkout's shipped models


class CliError(Exception):
    """A user-facing error: printed without a traceback, exit status 2."""


def default_model() -> Path:
    """The one shipped model under <repo>/models, if this package runs from a checkout."""
    found = sorted(p for p in REPO_MODELS.glob("*") if p.is_dir() and any(p.glob("*.safetensors"))) if REPO_MODELS.is_dir() else []
    if len(found) != 1:
        where = f"{REPO_MODELS} has {[p.name for p in found]}" if found else f"no model found under {REPO_MODELS}"
        raise CliError(f"--model is required ({where})")
    return found[0]


def read_image(path: str):
    """An image file as uint8 [H, W, 3|4]: .npy directly, anything else through Pillow."""
    if path.endswith(".npy"):
        return np.load(path, allow_pickle=False)
    try:
        from PIL import Image
    except ImportError:
        raise CliError(f"decoding {path} needs Pillow (pip install 'tiny_vlm[image]'), or pass a .npy uint8 [H, W, 3] array") from None
    try:
        with Image.open(path) as im:
            return pil_to_rgb(im)
    except (OSError, ValueError) as err:
        raise CliError(f"cannot read image {path}: {err}") from None


def caption(args) -> int:
    model = FastVLM.load(args.model or default_model())
    image = read_image(args.image)
    s = model.session(image, args.prompt, max_tokens=args.max_tokens, temperature=args.temperature, top_k=args.top_k,
                      top_p=args.top_p, seed=args.seed)
    while not s.done:
        delta = s.step()
        if args.stream and not args.json and delta:
            print(delta, end="", flush=True)
    if args.json:
        print(json.dumps({"caption": s.text, "reason": s.reason, "token_ids": s.token_ids, "prompt": s.prompt,
                          "stats": {k: round(v, 3) if isinstance(v, float) else v for k, v in s.stats.items()}}))
    elif args.stream:
        print()
    else:
        print(s.text)
    return 0


def info(args) -> int:
    weights_path, tok_path, labels_path = find_model_files(args.path)
    w = load_weights(weights_path)
    tok = Tokenizer.from_file(tok_path) if tok_path else Tokenizer.from_json(w.tokenizer_json) if w.tokenizer_json else None
    c = w.config
    summary = {
        "file": str(weights_path), "bytes": weights_path.stat().st_size, "name": c.name, "params": w.n_params,
        "quant": w.quant, "tokenizer_size": tok.vocab_size if tok else None,
        "tokenizer_source": "tokenizer.json" if tok_path else "metadata" if w.tokenizer_json else None,
        "labels": str(labels_path) if labels_path else None,
        "vision": {"image_size": c.vision.image_size, "widths": list(c.vision.widths), "depths": list(c.vision.depths),
                   "mixers": list(c.vision.mixers), "image_tokens": c.vision.n_tokens, "d_out": c.vision.d_out},
        "lm": {"d_model": c.lm.d_model, "n_layers": c.lm.n_layers, "n_heads": c.lm.n_heads, "n_kv_heads": c.lm.n_kv_heads,
               "d_ffn": c.lm.d_ffn, "vocab_size": c.lm.vocab_size, "max_seq_len": c.lm.max_seq_len},
        "params_by_part": {part: sum(int(t.size) for n, t in w.tensors.items() if n.startswith(part + "."))
                           for part in ("vision", "projector", "lm")},
        "metadata": w.metadata,
    }
    if args.json:
        print(json.dumps(summary))
    else:
        for key, value in summary.items():
            print(f"{key:>16}: {value}")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tiny_vlm", description="tiny-vlm: caption images with a tiny FastVLM")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("caption", help="describe an image (or answer --prompt about it)")
    p.add_argument("image", help="image file (needs Pillow) or .npy uint8 [H, W, 3|4]")
    p.add_argument("--model", help="model directory or .safetensors file (default: the repo's models/<name>)")
    p.add_argument("--prompt", default=None, help="question; default: the model's default prompt")
    p.add_argument("--max-tokens", type=int, default=32)
    p.add_argument("--temperature", type=float, default=0.0)
    p.add_argument("--top-k", type=int, default=0)
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--stream", action="store_true", help="print tokens as they are generated")
    p.add_argument("--json", action="store_true", help="print one JSON object: caption, reason, stats")
    p.set_defaults(run=caption)
    p = sub.add_parser("info", help="summarize a model file or directory")
    p.add_argument("path")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=info)
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (CliError, ModelFileError, ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
