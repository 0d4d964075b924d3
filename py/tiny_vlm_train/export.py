"""Export a training checkpoint to a tiny-vlm model directory.

    python -m tiny_vlm_train.export runs/default/ckpt.pt models/tiny-vlm-emoji [--quant int8]

Folds BatchNorm, reparameterizable branches, identities and layer scales
(TrainVLM.inference_tensors), writes model.safetensors through tiny_vlm.weights.save_weights
(int8 per-row by default), tokenizer.json and labels.json, and prints the per-tensor
quantization error. The weights' `about` metadata tells the people who use the model what it
can see (FastVLM.info()["about"]; the web app shows it). The model card (README.md) is
written by tiny_vlm_train.card.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tiny_vlm import quant as Q
from tiny_vlm.weights import save_weights

from .train import load_trained


CARD_FILES = ("README.md", "metrics.json")
# What every model this package trains knows, for the people who use it (scenes.py renders its world).
ABOUT = ("Knows {n} kinds of object, learnt from emoji-style drawings: one to four at a time, on photos, gradients "
         "or plain colours. Real objects seen by a camera are outside what it learnt, so expect wrong answers there. "
         "Point it at emoji on another screen or on paper, or upload an emoji picture.")


def export(ckpt: Path, out_dir: Path, quant: str = "int8", verbose: bool = True) -> dict:
    model, ck = load_trained(Path(ckpt))
    tensors = model.inference_tensors()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    # The card and metrics of earlier weights must not sit beside these. card.json stays: it
    # holds the runs and commands, and `card DIR --again --eval NEW.json` rewrites the card.
    stale = [name for name in CARD_FILES if (out_dir / name).exists()]
    for name in stale:
        (out_dir / name).unlink()
    if stale and verbose:
        print(f"removed {', '.join(stale)} of the earlier weights in {out_dir}: evaluate, then write the card again "
              f"(python -m tiny_vlm_train.card {out_dir} --again --eval EVAL.json, or with all its arguments)")
    meta = {"training_step": str(ck["step"]), "training_images": str(ck.get("init_images", 0) + ck["step"] * ck["args"]["batch_size"]),
            "classes": str(len(ck["labels"])), "about": ABOUT.format(n=len(ck["labels"]))}
    rows = save_weights(out_dir / "model.safetensors", tensors, model.config, quant=quant, metadata=meta)
    (out_dir / "tokenizer.json").write_text(ck["tokenizer"])
    (out_dir / "labels.json").write_text(json.dumps(ck["labels"], ensure_ascii=False, indent=1) + "\n")
    if verbose:
        print(Q.format_report(rows) if hasattr(Q, "format_report") else rows)
    size = (out_dir / "model.safetensors").stat().st_size
    n_params = sum(int(t.size) for t in tensors.values())
    print(f"wrote {out_dir}/model.safetensors ({size / 1e6:.2f} MB, {n_params:,} params, {quant})")
    return {"bytes": size, "params": n_params, "quant": quant, "step": ck["step"]}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("ckpt")
    ap.add_argument("out_dir")
    ap.add_argument("--quant", default="int8", choices=Q.SCHEMES)
    args = ap.parse_args(argv)
    if not Path(args.ckpt).is_file():
        sys.exit(f"export: no checkpoint at {args.ckpt}")
    export(Path(args.ckpt), Path(args.out_dir), args.quant)


if __name__ == "__main__":
    main()
