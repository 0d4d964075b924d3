"""Write models/<name>/README.md (the model card) from the exported files, the training
log and the evaluation JSON; the evaluation it reports is copied beside it as metrics.json
(shipped with the site), so the two always describe the same weights.

    python -m tiny_vlm_train.card models/tiny-vlm-emoji --run runs/default --run runs/gpu1 --eval runs/gpu1/eval.json
    python -m tiny_vlm_train.card models/tiny-vlm-emoji --again   # the same card from what the model folder keeps

Each `--run` is one training stage (a run directory with its train_runs.jsonl), in order;
`--train-command` gives each command of the chain, in order (the stages, and the soups,
exports and unfolds between them).

Everything else the card is made of (each stage's run records, the commands, the notes) is
kept beside it in card.json (not shipped with the site), so `--again` rewrites the card, after
a change to this module or a new evaluation (`--again --eval NEW.json`), without the run
directories, which live outside the repository and can be lost with a machine.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tiny_vlm import load_weights

from .grammar import COUNT_TEMPLATES, DESCRIBE_PROMPTS, PRESENCE_TEMPLATES
from .scenes import background_files
from .sprites import HELDOUT_STYLES, TRAIN_STYLES

CARD_RECORD = "card.json"  # beside the card: what it was written from (not shipped)

LICENCES = """| source | used for | licence |
|---|---|---|
| Debian `fonts-noto-color-emoji` (Noto Color Emoji font, rendered by Pillow) | training objects and distractors | SIL OFL 1.1 (font), Apache-2.0 (images) |
| npm `emoji-datasource-google` 16.0.0 (Noto images, 64 px) | training objects and distractors | Apache-2.0 |
| npm `emoji-datasource-twitter` 16.0.0 (Twemoji, 64 px) | training objects and distractors | CC-BY-4.0 (graphics), Twitter/X |
| npm `emoji-datasource-facebook` 16.0.0 (64 px) | training objects and distractors | © Facebook; no clear licence (per emoji-datasource) |
| npm `@lobehub/fluent-emoji-3d` 1.1.0 (Microsoft Fluent Emoji 3-D) | training objects and distractors | MIT |
| npm `@lobehub/fluent-emoji-flat` 1.1.0 and `@lobehub/fluent-emoji-modern` 1.0.0 (SVG, rasterised by Debian `librsvg2-bin`) | training objects (from stage 3) and distractors | MIT |
| npm `openmoji` 17.0.0 (colour SVG) | training objects (from stage 3) and distractors | CC-BY-SA-4.0 |
| npm `@iconify-json/emojione` 1.2.3, `@iconify-json/fxemoji` 1.2.2, `@iconify-json/noto-v1` 1.2.5 (EmojiOne 2, Firefox OS emoji, Noto's earlier designs; SVG, rasterised by Debian `librsvg2-bin`) | training objects in stage 16 (`train --extra-styles`) | CC-BY-4.0 (EmojiOne 2), Apache-2.0 (Firefox OS emoji, Noto v1) |
| npm `emoji-datasource-apple` 16.0.0 (64 px) | **evaluation only** (held-out style) | © Apple Inc., not licensed for commercial use; never redistributed |
| npm `emoji-datasource` 16.0.0 | emoji names and codepoints | MIT |
| Debian `tuxpaint-data` (photo templates) | training backgrounds | GPL-2+ |
| Debian `mate-backgrounds` abstract/ + desktop/ | training backgrounds | GPL-2+, CC-BY-SA-4.0 (Ubuntu-MATE set) |
| Debian `mate-backgrounds` nature/ | **evaluation only** (held-out backgrounds) | GPL-2+ |
| Debian `mypaint-data-extras` backgrounds | training backgrounds (textures) | CC0-1.0 |
| Debian `plasma-workspace-wallpapers` (one size per wallpaper) | training backgrounds (from stage 3) | GPL-2+ |
| Debian `gnome-backgrounds` (.webp only) | training backgrounds (from stage 3) | CC-BY-SA-3.0 / CC-BY-SA-2.0 / CC-BY-2.0 / GPL-2+ (per file, see its copyright file) |
| scikit-image sample images | training backgrounds | see scikit-image `data/README` (public domain / CC0 / CC-BY) |
| scikit-learn sample images (china, flower) | **evaluation only** (held-out backgrounds) | see scikit-learn `datasets/images/README.txt` |

No image from these sources is stored in this repository or in the weights; rendered
scenes are generated on the fly and discarded."""


def read_runs_log(run_dir) -> list[dict]:
    """A run directory's train_runs.jsonl (one record per finished train invocation); [] when absent."""
    log = Path(run_dir) / "train_runs.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()] if log.exists() else []


def _ci(m: dict, key: str) -> str:
    lo_hi = m.get("ci95", {}).get(key)
    return f"{lo_hi[0]:.3f} – {lo_hi[1]:.3f}" if lo_hi else ""


def _fmt(x, nd=3):
    return f"{x:.{nd}f}" if isinstance(x, float) else str(x)


def write_card(model_dir: Path, run_dirs: list, eval_json: Path | None, train_commands: list, export_command: str,
               eval_command: str, notes: Path | None = None) -> Path:
    """The card from run directories, an evaluation JSON and notes; what it used goes to card.json."""
    model_dir = Path(model_dir)
    record = {"runs": [{"run": Path(d).name, "path": str(d), "records": read_runs_log(d)} for d in run_dirs or ()
                       if (Path(d) / "train_runs.jsonl").exists()],
              "train_commands": list(train_commands), "export_command": export_command, "eval_command": eval_command,
              "eval_json": str(eval_json) if eval_json else None, "notes_path": str(notes) if notes else None,
              "notes": Path(notes).read_text() if notes and Path(notes).exists() else None}
    m = json.loads(Path(eval_json).read_text()) if eval_json and Path(eval_json).exists() else None
    (model_dir / CARD_RECORD).write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n")
    return _write(model_dir, record, m)


def rewrite_card(model_dir: Path, eval_json: Path | None = None, eval_command: str | None = None) -> Path:
    """The card again from the model folder's card.json and metrics.json (or a new evaluation,
    and the command that made it)."""
    model_dir = Path(model_dir)
    path = model_dir / CARD_RECORD
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: write the card once with --run/--eval (it keeps what it used there)")
    record = json.loads(path.read_text())
    if eval_json or eval_command:
        if eval_json:
            record["eval_json"] = str(eval_json)
        if eval_command:
            record["eval_command"] = eval_command
        path.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n")
    source = Path(eval_json) if eval_json else model_dir / "metrics.json"
    m = json.loads(source.read_text()) if source.exists() else None
    return _write(model_dir, record, m)


def card_command(model_dir: Path, record: dict) -> str:
    """The command that writes this card, with the paths it was written with (a recipe's runs
    are under runs/recipe/); cards from before the paths were kept assume runs/<name>."""
    shown = model_dir if not model_dir.is_absolute() else Path("..") / "models" / model_dir.name
    paths = [r.get("path") or f"../runs/{r['run']}" for r in record["runs"]]
    runs = " ".join(f"--run {p}" for p in paths)
    return (f"python -m tiny_vlm_train.card {shown} {runs}" + (f" --eval {record['eval_json']}" if record["eval_json"] else "")
            + (f" --notes {record['notes_path']}" if record["notes_path"] else ""))


def _write(model_dir: Path, record: dict, m: dict | None) -> Path:
    w = load_weights(str(model_dir / "model.safetensors"))
    c = w.config
    labels = json.loads((model_dir / "labels.json").read_text())
    size = (model_dir / "model.safetensors").stat().st_size
    stages = [(r["run"], r["records"]) for r in record["runs"]]  # (run name, its invocations)
    train_commands, export_command, eval_command = record["train_commands"], record["export_command"], record["eval_command"]
    eval_json, notes = record["eval_json"], record["notes_path"]
    v, lm = c.vision, c.lm
    lines = [f"# {c.name}", ""]
    lines += [f"A tiny FastVLM-architecture vision-language model trained from scratch by `py/tiny_vlm_train` on rendered "
              f"scenes of emoji objects over photos. It names the objects it sees left to right with counts, counts one "
              f"kind of object, and answers yes/no presence questions, for **{len(labels)} object classes**. It runs in the "
              f"pure-NumPy runtime (`tiny_vlm`), in CPython or in the browser through Pyodide.", ""]
    lines += ["```python", "from tiny_vlm import FastVLM", f"model = FastVLM.load(\"models/{model_dir.name}\")",
              "print(model.generate(image, \"Describe this image.\"))        # 'a dog, two apples and a car'",
              "print(model.generate(image, \"How many apples are there?\"))  # 'two'",
              "print(model.generate(image, \"Is there a dog?\"))             # 'yes'", "```", ""]
    lines += ["## Files", "", "| file | what | size |", "|---|---|---|",
              f"| `model.safetensors` | weights, `{w.quant.get('scheme')}` (per-row int8 for matrices, float32 for vectors/small tensors); its `about` metadata says what the model can see (the web app shows it) | {size / 1e6:.2f} MB |",
              f"| `tokenizer.json` | byte-level BPE, {len(json.loads((model_dir / 'tokenizer.json').read_text())['model']['vocab'])} tokens (3 special) | {(model_dir / 'tokenizer.json').stat().st_size / 1e3:.0f} kB |",
              f"| `labels.json` | the classes: name, plural, emoji, codepoints | {(model_dir / 'labels.json').stat().st_size / 1e3:.0f} kB |", ""]
    lines += ["## Architecture", "",
              f"- Parameters: **{w.n_params:,}** (inference form, after folding)",
              f"- Vision: FastViT/MCi hybrid, input {v.image_size}x{v.image_size}, stages depths {list(v.depths)}, widths {list(v.widths)}, "
              f"mixers {list(v.mixers)}, ConvFFN ratio {v.mlp_ratios[0]}, RepCPE before the attention stage; "
              f"output {v.grid}x{v.grid} = **{v.n_tokens} image tokens** of width {v.d_out}",
              f"- Projector: mlp2x_gelu {v.d_out} -> {lm.d_model} -> {lm.d_model}",
              f"- LM: Qwen2-style, {lm.n_layers} layers, d_model {lm.d_model}, {lm.n_heads} heads / {lm.n_kv_heads} KV heads of {lm.head_dim}, "
              f"SwiGLU {lm.d_ffn}, RoPE theta {lm.rope_theta:g}, tied embeddings, vocab {lm.vocab_size}, context {lm.max_seq_len}",
              f"- Prompt template: `{c.prompt_template!r}`", ""]
    lines += ["## Answer grammar", "",
              "| question | examples of prompts | answer |", "|---|---|---|",
              "| describe (also any prompt that is not a count or presence question) | " + "; ".join(f"\"{p}\"" for p in DESCRIBE_PROMPTS[:6]) +
              " | the classes ordered by the x position of their leftmost instance, each as `a`/`an` + name or number word + plural, "
              "joined by `, ` with ` and ` before the last: `a dog, two apples and an egg` |",
              "| count | " + "; ".join(f"\"{t.format(plural='apples')}\"" for t in COUNT_TEMPLATES) + " | a number word: `zero` (absent), `one`, `two`, `three` |",
              "| presence | " + "; ".join(f"\"{t.format(name='dog', plural='dogs')}\"" for t in PRESENCE_TEMPLATES) + " | `yes` or `no` |", "",
              "Scenes hold 1-4 objects, at most 3 of one class; counts above three never occur in training. Training mix: "
              "50% describe, 25% count, 25% presence; count and presence ask about an absent class half the time.", ""]
    lines += ["## Classes", "", " ".join(f"{l['emoji']} {l['name']}" + ("" if l["plural"] == l["name"] + "s" else f" ({l['plural']})") + ","
                                          for l in labels).rstrip(","), ""]
    lines += ["## Data", "",
              "Scenes are rendered on the fly at the input side of the stage (the table under Training): 1-4 emoji objects (random size 20-42% of the side, 60% for a single "
              "object; rotation within ±15°; limited overlap; centres of different classes at least 5% of the width apart so the "
              "left-to-right order is defined) over a crop of a background photo (60%), a gradient (20%) or a plain colour (20%), then "
              "camera-like augmentation: partial occlusion by a rectangle (10%), slight perspective warp (40%), brightness/contrast "
              "and per-channel colour cast, grayscale (8%), Gaussian blur (35%), Gaussian noise (50%), JPEG re-encoding at quality "
              "25-90 (40%). Each scene uses one emoji style (70%) or mixes styles per object (30%). In stages 14-16 half the scenes "
              "also try to place one or two distractors (about a quarter of all scenes hold one: a place that overlaps an object "
              "is dropped), drawn under the objects and never named: emoji that are none of the classes (faces, hands, people, "
              "hearts, signs and symbols, flags) in a training style, or, in stage 14 only, ovals cut from a training photo (30% of them; "
              "`train --distractors`, `--distractor-photos`).", "",
              f"- Training emoji styles: {', '.join(TRAIN_STYLES)}; stage 16 also draws emojione, fxemoji and notov1 (EmojiOne 2, "
              "Firefox OS emoji, Noto's earlier designs; `train --extra-styles`)",
              f"- **Held-out** emoji style (never used in training, evaluation only): {', '.join(HELDOUT_STYLES)}",
              f"- Training backgrounds: {len(background_files('train'))} photos/textures; **held-out** backgrounds: "
              f"{len(background_files('heldout'))} photos (MATE nature wallpapers, scikit-learn samples)", "",
              "Install the sources on a fresh machine with `python -m tiny_vlm_train.assets` (apt-get and npm; cache in "
              "`~/.cache/tiny-vlm/assets`, override with `TINY_VLM_ASSETS`); the scikit-image and scikit-learn sample photos "
              "come from those pip packages (both in `requirements-test.txt`).", "", "### Sources and licences", "", LICENCES, ""]
    lines += ["## Training", ""]
    if stages:
        lines += ["| stage | run | input | device | batch | steps | images this stage | wall time |", "|---|---|---|---|---|---|---|---|"]
        total_images = total_wall = 0
        for i, (run_name, runs) in enumerate(stages, 1):
            last = runs[-1]
            wall = sum(r["wall_s_this_run"] for r in runs)
            total_images += last["images_seen"]
            total_wall += wall
            side = last.get("image_size")
            invocations = sum(r.get("invocations", 1) for r in runs)  # a record rebuilt from an earlier card stands for several
            lines.append(f"| {i} | `runs/{run_name}` | {f'{side} px' if side else '?'} | {last.get('device', 'cpu')} | {last.get('batch_size', 32)} | {last['step']} of "
                         f"{last['total_steps']} | {last['images_seen']:,} | {wall / 60:.0f} min ({invocations} invocation(s)) |")
        lines += ["", f"In all **{total_images:,} images**, every one freshly rendered, in {total_wall / 60:.0f} min of training.", ""]
    lines += ["Stage 1 recipe: AdamW (betas 0.9/0.98, weight decay 0.05 on matrices), peak LR 2e-3, 300 warmup steps then cosine to 3% "
              "counted in steps (with `--steps auto` the step count is fitted to `--time-budget` and re-fitted as the pace of the "
              "machine changes), gradient clipping 1.0. Loss = answer-token cross-entropy + training-only heads on the vision "
              "tokens (not exported): per-cell class of the object centred in the cell (x0.5), per-cell class of the object covering "
              "the cell (x0.3), per-class count 0-3 from the pooled tokens (x0.02, summed over classes), per-cell row/column (x0.1), "
              "and an alignment loss (x0.1): the RMS-normalised projected embedding of a cell holding an object's centre, read through "
              "the tied LM head, must predict the first and the last token of the class name. "
              "Curriculum: scenes with at most 1, 2, 3, then 4 objects over the first 4/12/25% of training.", "",
              "Commands (run from `py/`; the first installs the sources):", "", "```sh", "python -m tiny_vlm_train.assets",
              *train_commands, export_command, eval_command,
              card_command(model_dir, record),
              "```", "",
              "`--resume` continues an interrupted run from `runs/default/ckpt.pt` (written every 5 minutes). A GPU is used when present.", ""]
    if record["notes"]:
        lines += [record["notes"].strip(), ""]
    lines += ["## Evaluation (NumPy runtime, held-out scenes)", ""]
    if m:
        lines += [f"{m['n_scenes']} freshly generated held-out scenes (seed {m['seed']}): only the held-out emoji style and held-out "
                  "backgrounds; one describe, one count and one presence question per scene, greedy decoding with the NumPy runtime "
                  "on the shipped int8 weights.", "",
                  "| metric | value | 95% interval | target |", "|---|---|---|---|",
                  f"| describe object precision | {_fmt(m['object_precision'])} | | |",
                  f"| describe object recall | {_fmt(m['object_recall'])} | | |",
                  f"| **describe object F1** (instances, counts included) | **{_fmt(m['object_f1'])}** | {_ci(m, 'object_f1')} | ≥ 0.95 |",
                  f"| describe class F1 (ignoring counts) | {_fmt(m['class_f1'])} | | |",
                  f"| exact-caption rate | {_fmt(m['exact_caption_rate'])} | {_ci(m, 'exact_caption_rate')} | |",
                  f"| **count accuracy** | **{_fmt(m['count_accuracy'])}** | {_ci(m, 'count_accuracy')} | ≥ 0.95 |",
                  f"| **yes/no accuracy** | **{_fmt(m['yes_no_accuracy'])}** | {_ci(m, 'yes_no_accuracy')} | ≥ 0.97 |", ""]
        if "count_accuracy_present" in m:
            kinds = m.get("by_background", {})
            lines += ["What the headline numbers mix (same scenes and answers):", "",
                      "| part | value |", "|---|---|",
                      f"| count accuracy when the asked class is in the scene ({m['count_present_questions']} of {m['n_scenes']} questions; "
                      f"the others ask about an absent class: \"zero\") | {_fmt(m['count_accuracy_present'])} |",
                      f"| yes/no accuracy on \"yes\" / on \"no\" (the \"no\" questions name a random absent class) | "
                      f"{_fmt(m['yes_accuracy'])} / {_fmt(m['no_accuracy'])} |",
                      *[f"| describe F1 / exact captions, {kind} backgrounds ({b['scenes']} scenes) | {_fmt(b['object_f1'])} / "
                        f"{_fmt(b['exact_caption_rate'])} |" for kind, b in kinds.items()],
                      *([f"| describe: classes named from nothing (neither shown nor standing in for a shown object), per scene: all / "
                         + " / ".join(kind for kind, b in kinds.items() if "extra_classes_per_scene" in b) + " | "
                         + " / ".join([_fmt(m["extra_classes_per_scene"])] + [_fmt(b["extra_classes_per_scene"]) for b in kinds.values()
                                                                             if "extra_classes_per_scene" in b]) + " |"]
                        if "extra_classes_per_scene" in m else []), "",
                      "Only the photo backgrounds are held-out ones; gradients and plain colours (40% of the scenes) are drawn as "
                      "in training.", ""]
        photos = len({b for b in m.get("per_scene", {}).get("background_id", []) if b.startswith("photo:")})
        if "ci95" in m and photos:
            narrow = m.get("ci95_scenes", {}).get("object_f1")
            lines += [f"The intervals come from a bootstrap that resamples the {photos} background photos whole (each with all "
                      "of its scenes) and the gradient and plain-colour scenes one by one: how far each number would move on "
                      "another draw of as many held-out scenes and photos, not how the model would do in another unseen style. "
                      + (f"Resampling scenes one by one, as if they were independent, gives a describe-F1 interval of "
                         f"{narrow[0]:.3f} – {narrow[1]:.3f}. " if narrow else "")
                      + "The scenes also share one held-out drawing per class, which no interval here accounts for.", ""]
        elif "ci95" in m:
            lines += [f"The intervals come from a bootstrap over the {m['n_scenes']} scenes: how far each number would move on "
                      "another draw of as many held-out scenes, not how the model would do in another unseen style. They treat "
                      "the scenes as independent, but the scenes share 14 background photos and one held-out drawing per class, "
                      "so they are somewhat too narrow.", ""]
        if "parity" in m:
            p = m["parity"]
            lines += [f"Runtime vs PyTorch: on {p['answers']} answers ({p['answers'] // 3} held-out scenes x 3 questions) the NumPy runtime "
                      f"with the {p['quant']} weights gives {p['identical']} answers identical to the float32 torch model's greedy answers "
                      f"({100 * p['identical_rate']:.1f}%).", ""]
        if "parity_f32" in m:
            p = m["parity_f32"]
            lines += [f"With a float32 export the runtime's answers are identical on {p['identical']}/{p['answers']}.", ""]
        lines += [f"Speed (CPython, {m['machine']}, shared machine): encoding a frame (vision + projector) "
                  f"{m['encode_ms_median']:.0f} ms median; frame + full describe answer {m['describe_frame_ms_median']:.0f} ms median "
                  f"({m['describe_frame_ms_p90']:.0f} ms p90).", ""]
    else:
        lines += ["Not evaluated yet.", ""]
    lines += ["## Limitations", "",
              "- The domain is emoji-like drawings of the listed objects on photos; real camera photos of real objects are out of domain.",
              "- At most 4 objects and at most 3 of one class were seen in training; larger counts are not expressible reliably.",
              "- Objects smaller than about a sixth of the image side, heavy occlusion and look-alike classes in an unseen style cause most errors.", ""]
    path = model_dir / "README.md"
    path.write_text("\n".join(lines))
    metrics = model_dir / "metrics.json"
    if m is not None:
        metrics.write_text(json.dumps(m, separators=(",", ":"), ensure_ascii=False) + "\n")  # compact: it ships with the site
    elif metrics.exists():
        metrics.unlink()  # an earlier model's numbers must not ship with these weights
    return path


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_dir")
    ap.add_argument("--again", action="store_true", help="rewrite the card from the model folder's card.json and metrics.json "
                    "(with --eval: that evaluation instead)")
    ap.add_argument("--run", action="append", default=[], help="a training stage's run directory (repeat, in order)")
    ap.add_argument("--eval", default=None)
    ap.add_argument("--notes", default=None, help="markdown appended to the training section (e.g. the history of the run)")
    ap.add_argument("--train-command", action="append", default=[], help="each command of the training chain: stages, soups, exports, unfolds (repeat, in order)")
    ap.add_argument("--export-command", default="python -m tiny_vlm_train.export ../runs/default/ckpt.pt ../models/tiny-vlm-emoji")
    ap.add_argument("--eval-command", default=None, help="the command that wrote --eval's JSON, as the card shows it (default: "
                    "OPENBLAS_NUM_THREADS=1 python -m tiny_vlm_train.evaluate ../models/tiny-vlm-emoji --parity "
                    "../runs/default/ckpt.pt --json ../runs/default/eval.json)")
    args = ap.parse_args(argv)
    if args.eval and not Path(args.eval).is_file():  # a typo must not drop the metrics from the card
        ap.error(f"--eval {args.eval}: no such file")
    if args.notes and not Path(args.notes).is_file():
        ap.error(f"--notes {args.notes}: no such file")
    missing = [d for d in args.run if not (Path(d) / "train_runs.jsonl").is_file()]
    if missing:
        ap.error(f"--run {missing[0]}: no train_runs.jsonl there (not a finished training run)")
    if args.again:
        if args.run or args.train_command or args.notes:
            ap.error("--again takes the runs, commands and notes from card.json; only --eval and --eval-command may change")
        try:
            print(rewrite_card(Path(args.model_dir), args.eval, args.eval_command))
        except FileNotFoundError as e:
            ap.error(str(e))
        return
    commands = args.train_command or ["python -m tiny_vlm_train.train --out ../runs/default --steps auto --time-budget 6900"]
    eval_command = args.eval_command or ("OPENBLAS_NUM_THREADS=1 python -m tiny_vlm_train.evaluate ../models/tiny-vlm-emoji "
                                         "--parity ../runs/default/ckpt.pt --json ../runs/default/eval.json")
    print(write_card(Path(args.model_dir), args.run, args.eval, commands, args.export_command, eval_command, args.notes))


if __name__ == "__main__":
    main()
