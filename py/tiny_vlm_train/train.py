"""Train the default model.

    python -m tiny_vlm_train.train --out runs/default --steps auto --time-budget 4800
    python -m tiny_vlm_train.train --out runs/default --resume      # continue after an interruption
    python -m tiny_vlm_train.train --out runs/gpu --init runs/default/ckpt.pt --asset-pack train_pack.npz \
        --batch-size 256 --workers 14 --qa-per-image 4 --time-budget 420   # continue on a GPU box

AdamW, linear warmup + cosine decay counted in steps, checkpoints every few minutes
(runs/<name>/ckpt.pt, atomic) and on Ctrl-C, a progress line with losses, images/s and ETA.
With `--steps auto` the step count is set from a short timing run so that the schedule ends
inside `--time-budget` seconds, and re-fitted as the machine's pace changes. `--time-budget`
is always the time of this invocation: to resume an auto run within its original budget,
pass what is left of it (the recipe does). `--resume` takes every setting of the run from its
checkpoint unless given again. Uses a GPU when one is present.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # a command line: one line, not a traceback
    sys.exit("tiny_vlm_train needs PyTorch, a training dependency only: pip install torch")

from .assets import check_pack_distractors, npm_root
from .configs import CONFIGS
from .data import PromptCoder, SceneBatches, make_batch, train_generator
from .labels import build_labels
from .model import TrainVLM
from .scenes import SceneConfig
from .sprites import TRAIN_STYLES, parse_extra_styles
from .tokenizer_train import train_tokenizer

from tiny_vlm.config import ModelConfig


def lr_at(step: int, total: int, peak: float, warmup: int, floor: float = 0.03) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    t = min(1.0, (step - warmup) / max(1, total - warmup))
    return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t)))


def class_token_ids(tokenizer, labels) -> torch.Tensor:
    """[n_classes, 2]: first and last token id of ' ' + name (how names appear inside answers)."""
    ids = [tokenizer.encode(" " + l["name"], add_special_tokens=False).ids for l in labels]
    return torch.tensor([[i[0], i[-1]] for i in ids])


def aux_losses(model: TrainVLM, tok: torch.Tensor, batch: dict, device) -> tuple[torch.Tensor, ...]:
    """The training-only heads on the vision tokens tok [B, N, D_vis]: object centre and cover per
    cell, per-class counts, the cell's row and column. -> (center, cover, count, pos) losses."""
    n_cls = model.n_classes
    weight = torch.ones(n_cls + 1, device=device)
    weight[n_cls] = 0.25  # background cells are the majority
    center = F.cross_entropy(model.aux_center(tok).flatten(0, 1), batch["center"].to(device).flatten(), weight=weight)
    cover = F.cross_entropy(model.aux_cover(tok).flatten(0, 1), batch["cover"].to(device).flatten(), weight=weight)
    b = tok.shape[0]
    count = F.cross_entropy(model.aux_count(tok.mean(1)).reshape(b * n_cls, 4), batch["count"].to(device).flatten(), reduction="sum") / b
    g = model.config.vision.grid
    pos_logits = model.aux_pos(tok)  # [B, N, 2G]
    idx = torch.arange(g * g, device=device)
    pos = F.cross_entropy(pos_logits[..., :g].flatten(0, 1), (idx % g).repeat(b)) + F.cross_entropy(pos_logits[..., g:].flatten(0, 1), (idx // g).repeat(b))
    return center, cover, count, pos


def aux_total(center, cover, count, pos):
    return 0.5 * center + 0.3 * cover + 0.02 * count + 0.1 * pos


def compute_loss(model: TrainVLM, batch: dict, before_ids: torch.Tensor, device, class_tokens: torch.Tensor | None = None) -> tuple[torch.Tensor, dict]:
    """LM loss on answer tokens + dense/global losses on the vision tokens.

    class_tokens [n_classes, 2] adds the alignment loss: the projected embedding of a cell that holds an
    object's centre, read through the tied LM head, must predict the first and the last token of the class
    name, so the LM can copy names from image positions and match question words against them."""
    images = batch["images"].to(device)
    tok, emb = model.encode(images)  # [B, N, D_vis], [B, N, D]
    after, targets = batch["after"].to(device), batch["targets"].to(device)
    hid = model.lm_hidden_after(emb, before_ids, after)  # [B*k, T1, D]: k questions per image, its prefix computed once
    mask = targets != -100
    lm_loss = F.cross_entropy(model.lm.logits(hid[mask]), targets[mask])
    n_cls = model.n_classes
    center, cover, count, pos = aux_losses(model, tok, batch, device)
    loss = lm_loss + aux_total(center, cover, count, pos)
    # detached tensors, not floats: .item() would wait for the GPU every step; the caller reads them when it prints
    parts = {"lm": lm_loss.detach(), "center": center.detach(), "cover": cover.detach(), "count": count.detach(), "pos": pos.detach()}
    if class_tokens is not None:
        cen = batch["center"].to(device)  # [B, N]
        mask = cen < n_cls
        if mask.any():
            e = emb[mask]  # [M, D]; RMS-normalised so the logits stay on the scale of the LM's own
            logits = model.lm.logits(e * torch.rsqrt(e.pow(2).mean(-1, keepdim=True) + 1e-6))  # [M, V]
            tgt = class_tokens.to(device)[cen[mask]]  # [M, 2]
            align = F.cross_entropy(logits, tgt[:, 0]) + F.cross_entropy(logits, tgt[:, 1])
            loss = loss + 0.1 * align
            parts["align"] = align.detach()
    return loss, parts


def save_checkpoint(path: Path, model, opt, step: int, state: dict, weights_path: Path | None = None) -> None:
    """ckpt.pt (weights + optimizer, for --resume); weights_path also gets the weights alone (a third of the
    size; enough for export, evaluate and --init)."""
    tmp = path.with_suffix(".tmp")
    torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step, **state}, tmp)
    os.replace(tmp, path)
    if weights_path is not None:
        tmp = weights_path.with_suffix(".tmp")
        torch.save({"model": {k: v.cpu() for k, v in model.state_dict().items()}, "step": step, **state}, tmp)
        os.replace(tmp, weights_path)


def resized_config(config: ModelConfig, image_size: int) -> ModelConfig:
    """The config at another input side: the convolutional tower and its conditional position
    encoding take any size, so the weights carry over; the context grows by the added image
    tokens, keeping the room the text had."""
    import dataclasses

    vision = dataclasses.replace(config.vision, image_size=image_size)
    room = config.lm.max_seq_len - config.vision.n_tokens
    lm = dataclasses.replace(config.lm, max_seq_len=vision.n_tokens + room)
    return dataclasses.replace(config, vision=vision, lm=lm)


def load_init_weights(model: TrainVLM, weights: dict) -> list[str]:
    """Load `--init` weights; at a resized input the training-only row/column head has another
    grid, so tensors whose shape changed stay freshly initialised. -> the names not loaded."""
    own = model.state_dict()
    skipped = [k for k, v in weights.items() if k in own and own[k].shape != v.shape]
    model.load_state_dict({k: v for k, v in weights.items() if k not in skipped}, strict=not skipped)
    return skipped


def load_trained(ckpt_path: Path, device="cpu") -> tuple[TrainVLM, dict]:
    """Model (eval mode) and checkpoint dict (config JSON, labels, tokenizer JSON, ...)."""
    ck = torch.load(ckpt_path, map_location=device, weights_only=False)
    config = ModelConfig.from_json(ck["config"])
    model = TrainVLM(config, len(ck["labels"])).to(device)
    model.load_state_dict(ck["model"])
    model.eval()
    return model, ck


def steps_arg(value: str) -> str:
    if value == "auto" or (value.isdigit() and int(value) > 0):
        return value
    raise argparse.ArgumentTypeError(f"must be a positive integer or 'auto', got {value!r}")


# Settings a resumed run takes from its checkpoint when they are not given again (None = not given).
RESUMED = {"qa_per_image": 1, "align": 1, "workers": 1, "asset_pack": None}


def asset_pack_error(args) -> str | None:
    """What is wrong with --asset-pack for this run, if anything: checked before training
    rather than in a loader worker, whose error would come late and buried in its traceback."""
    if not args.asset_pack:
        return None
    if not Path(args.asset_pack).is_file():
        return f"--asset-pack: no file {args.asset_pack} (make one with python -m tiny_vlm_train.assets --pack)"
    if args.distractors:
        try:
            check_pack_distractors(Path(args.asset_pack), TRAIN_STYLES + parse_extra_styles(args.extra_styles or ""))
        except ValueError as e:
            return f"--distractors: {e}"
    return None


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="runs/default")
    ap.add_argument("--config", default="default", choices=sorted(CONFIGS))
    ap.add_argument("--image-size", type=int, default=None, help="input side in pixels (with --init: fine-tune the weights at this size)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--weight-decay", type=float, default=0.05)
    ap.add_argument("--warmup", type=int, default=300)
    ap.add_argument("--steps", default="auto", type=steps_arg, help="total optimizer steps, or 'auto' (fit --time-budget)")
    ap.add_argument("--time-budget", type=float, default=4800.0, help="seconds for this invocation; training stops (with a checkpoint) when it runs out")
    ap.add_argument("--ckpt-every", type=float, default=300.0, help="seconds between checkpoints")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=None, help="data-loader processes rendering scenes (default 1)")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = all cores)")
    ap.add_argument("--vocab-size", type=int, default=1024)
    ap.add_argument("--qa-per-image", type=int, default=None, choices=range(1, 9), metavar="1..8",
                    help="questions per rendered image (k > 1: one describe + k-1 count/presence; default 1)")
    ap.add_argument("--curriculum-steps", type=int, default=None, help="steps the object-count curriculum is spread over (default: the total)")
    ap.add_argument("--colour-jitter", action="store_true",
                    help="per-object grey and small hue turns in the style jitter (stage 5, one of the shipped soup's ingredients)")
    ap.add_argument("--random-conv", type=float, default=None, metavar="P",
                    help="redraw this share of the objects (0-1) through a random convolution (scenes.random_conv): "
                         "colours and texture scrambled, shape kept (default 0: off)")
    ap.add_argument("--partial-view", type=float, default=None, metavar="P",
                    help="show this share of the objects (0-1) in part, cut to their top, bottom, left or right "
                         "(scenes.partial_view; default 0: off)")
    ap.add_argument("--distractors", type=float, default=None, metavar="P",
                    help="in this share of the scenes (0-1), try to draw one or two things that are no class (other emoji: "
                         "faces, hands, signs, flags; or an oval cut from a photo), never named; a try that would overlap an "
                         "object is dropped, so about half of those scenes get one (default 0: off)")
    ap.add_argument("--distractor-photos", type=float, default=None, metavar="SHARE",
                    help="of those things, this share (0-1) are ovals cut from a training photo, the rest emoji (default 0: "
                         "emoji only; stage 14 used 0.3, and the ovals cost it the round classes such as the egg)")
    ap.add_argument("--drop-object-photos", action="store_true",
                    help="leave out the training photos that show a label class's object (scenes.OBJECT_PHOTOS: cats, a cup of coffee, rockets, ...)")
    ap.add_argument("--extra-styles", default="", metavar="A,B",
                    help="also draw objects in these styles of sprites.EXTRA_STYLES, e.g. fluentmono,emojionemono (one-colour glyphs, painted in two random colours)")
    ap.add_argument("--align", type=int, default=None, choices=(0, 1), help="image-embedding / class-name-token alignment loss (default 1)")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--init", metavar="CKPT", help="start from these weights (labels, tokenizer and config too) with a fresh optimizer and schedule")
    ap.add_argument("--asset-pack", metavar="NPZ", help="training assets from one file (python -m tiny_vlm_train.assets --pack) instead of the installed sources")
    ap.add_argument("--weights-out", metavar="PT", help="at each checkpoint also write the weights alone here")
    args = ap.parse_args(argv)
    if args.resume and args.init:
        ap.error("--resume and --init exclude each other")
    try:
        parse_extra_styles(args.extra_styles)
    except ValueError as err:
        ap.error(str(err))
    if args.random_conv is not None and not 0.0 <= args.random_conv <= 1.0:
        ap.error(f"--random-conv must be a share from 0 to 1, got {args.random_conv}")
    if args.partial_view is not None and not 0.0 <= args.partial_view <= 1.0:
        ap.error(f"--partial-view must be a share from 0 to 1, got {args.partial_view}")
    if args.distractors is not None and not 0.0 <= args.distractors <= 1.0:
        ap.error(f"--distractors must be a share from 0 to 1, got {args.distractors}")
    if args.distractor_photos is not None and not 0.0 <= args.distractor_photos <= 1.0:
        ap.error(f"--distractor-photos must be a share from 0 to 1, got {args.distractor_photos}")
    if args.distractor_photos is not None and not args.distractors and not args.resume:
        ap.error("--distractor-photos needs --distractors (the share of scenes that get distractors)")
    if not args.resume:
        pack_error = asset_pack_error(args)
        if pack_error:
            ap.error(pack_error)

    t_start = time.time()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / "ckpt.pt"
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    if args.resume:
        if not ckpt_path.exists():
            sys.exit(f"--resume: no checkpoint at {ckpt_path}")
        ck = torch.load(ckpt_path, map_location=device, weights_only=False)
        labels, tok_json, total_steps = ck["labels"], ck["tokenizer"], ck["total_steps"]
        config = ModelConfig.from_json(ck["config"])
        args_saved = ck["args"]
        for k in ("batch_size", "lr", "weight_decay", "warmup", "seed", "steps"):
            setattr(args, k, args_saved[k])
        args.colour_jitter = args.colour_jitter or args_saved.get("colour_jitter", False)
        args.extra_styles = args.extra_styles or args_saved.get("extra_styles", "")
        if args.random_conv is None:
            args.random_conv = args_saved.get("random_conv", 0.0)
        if args.partial_view is None:
            args.partial_view = args_saved.get("partial_view", 0.0)
        if args.distractors is None:
            args.distractors = args_saved.get("distractors", 0.0)
        if args.distractor_photos is None:  # runs from before it was saved (stage 14) had 0.3, then the default
            args.distractor_photos = args_saved.get("distractor_photos", 0.3)
        args.drop_object_photos = args.drop_object_photos or args_saved.get("drop_object_photos", False)
        for k in RESUMED:
            if getattr(args, k) is None:
                setattr(args, k, args_saved.get(k))
        if args.asset_pack and not Path(args.asset_pack).is_file():
            sys.exit(f"--resume: the run's asset pack {args.asset_pack} is not there; give --asset-pack again (or the path of a copy)")
        pack_error = asset_pack_error(args)
        if pack_error:
            sys.exit(f"--resume: {pack_error}")
    elif args.init:
        init = torch.load(args.init, map_location="cpu", weights_only=False)
        labels, tok_json, config = init["labels"], init["tokenizer"], ModelConfig.from_json(init["config"])
        total_steps, ck = None, None
        print(f"init from {args.init} (step {init['step']} of its run)", flush=True)
        if args.image_size and args.image_size != config.vision.image_size:
            config = resized_config(config, args.image_size)
            print(f"input resized to {args.image_size} px: {config.vision.n_tokens} image tokens, context {config.lm.max_seq_len}", flush=True)
    else:
        labels = build_labels(npm_root())
        tok_json = train_tokenizer(labels, args.vocab_size).to_str()
        cfg_fn = CONFIGS[args.config]
        config = cfg_fn(vocab_size=args.vocab_size, **({"image_size": args.image_size} if args.image_size else {}))
        total_steps = None
        ck = None
    for k, default in RESUMED.items():
        if getattr(args, k) is None:
            setattr(args, k, default)
    if args.distractor_photos is None:
        args.distractor_photos = 0.0  # saved resolved, so that a resume keeps it
    extra_styles = parse_extra_styles(args.extra_styles)
    scene_config = SceneConfig(size=config.vision.image_size, colour_jitter=args.colour_jitter, random_conv=args.random_conv or 0.0,
                               partial_view=args.partial_view or 0.0, distractors=args.distractors or 0.0,
                               distractor_photos=args.distractor_photos)
    (out / "labels.json").write_text(json.dumps(labels, ensure_ascii=False, indent=1))
    (out / "tokenizer.json").write_text(tok_json)

    model = TrainVLM(config, len(labels)).to(device)
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}], lr=args.lr, betas=(0.9, 0.98))
    start_step = 0
    init_images = ck.get("init_images", 0) if ck is not None else 0  # images seen by the runs this one started from
    wall_before = ck.get("train_wall_s", 0.0) if ck is not None else 0.0  # seconds this run trained before, up to its checkpoint
    if ck is not None:
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        start_step = ck["step"]
        if start_step >= total_steps:
            print(f"{ckpt_path}: this run finished at step {start_step}/{total_steps}; nothing to resume", flush=True)
            return
        print(f"resumed from {ckpt_path} at step {start_step}/{total_steps}", flush=True)
    elif args.init:
        skipped = load_init_weights(model, init["model"])
        if skipped:
            print("not loaded (shape changed): " + ", ".join(skipped), flush=True)
        init_images = init.get("init_images", 0) + init["step"] * init["args"]["batch_size"]
        del init

    from tokenizers import Tokenizer

    coder = PromptCoder(Tokenizer.from_str(tok_json), config.prompt_template)
    before_ids = torch.tensor(coder.before, device=device)
    class_tokens = class_token_ids(coder.tok, labels) if args.align else None
    n_params = sum(p.numel() for n, p in model.named_parameters() if not n.startswith("aux_"))
    print(f"model {config.name}: {n_params:,} params (exported), {len(labels)} classes, {config.vision.n_tokens} image tokens, device {device}", flush=True)

    if total_steps is None:
        if args.steps != "auto":
            total_steps = int(args.steps)
        else:  # time a few steps on a throwaway copy, then fit the schedule into the budget
            gen = train_generator(labels, args.seed + 1, scene_config, args.asset_pack,
                                  extra_styles, args.drop_object_photos)
            probe = copy.deepcopy(model)
            popt = torch.optim.AdamW(probe.parameters(), lr=1e-4)
            batches = [make_batch(gen, coder, labels, config, i, args.batch_size, args.seed, args.qa_per_image) for i in range(3)]
            times = []
            for i in range(8):
                t = time.time()
                loss, _ = compute_loss(probe, batches[i % 3], before_ids, device, class_tokens)
                loss.backward(); popt.step(); popt.zero_grad(set_to_none=True)
                if device.type == "cuda":
                    torch.cuda.synchronize()
                times.append(time.time() - t)
            sec = float(np.median(times[2:])) * 1.06  # checkpoints, logging, data hand-off
            left = args.time_budget - (time.time() - t_start)
            total_steps = max(args.warmup + 10, int(left / sec))
            del probe, popt
            print(f"timing: {sec:.3f} s/step -> {total_steps} steps in {left:.0f} s", flush=True)

    curriculum_steps = args.curriculum_steps or (ck.get("curriculum_steps", total_steps) if ck is not None else total_steps)
    refit = (ck["args"]["steps"] if ck is not None else args.steps) == "auto"  # fit the schedule to --time-budget
    state = {"config": config.to_json(), "labels": labels, "tokenizer": tok_json, "total_steps": total_steps,
             "curriculum_steps": curriculum_steps, "args": vars(args), "init_images": init_images}
    data = SceneBatches(labels, tok_json, config, args.batch_size, start_step, 10 * total_steps, seed=args.seed, curriculum_steps=curriculum_steps,
                        qa_per_image=args.qa_per_image, asset_pack=args.asset_pack, extra_styles=extra_styles,
                        drop_object_photos=args.drop_object_photos,
                        scene_config=scene_config)
    loader = torch.utils.data.DataLoader(data, batch_size=None, num_workers=args.workers, prefetch_factor=4 if args.workers else None,
                                         persistent_workers=False, pin_memory=device.type == "cuda")
    weights_path = Path(args.weights_out) if args.weights_out else None
    model.train()
    t_last_ckpt = time.time()
    t0, n_img, ema = None, 0, {}
    step = start_step
    interrupted = []  # Ctrl-C: the step under way finishes, then a checkpoint; a second Ctrl-C stops at once
    main_pid = os.getpid()

    def on_ctrl_c(signum, frame):
        if os.getpid() != main_pid:  # a data-loader process (it inherited this handler): the main process decides
            return
        if interrupted:
            raise KeyboardInterrupt
        interrupted.append(True)
        print("\nCtrl-C: stopping after this step with a checkpoint (Ctrl-C again to stop at once, without one)", flush=True)
    in_main_thread = threading.current_thread() is threading.main_thread()  # (signals can only be caught there)
    previous_handler = signal.signal(signal.SIGINT, on_ctrl_c) if in_main_thread else None
    try:
        for batch in loader:
            if t0 is None:  # rates and ETA from the first batch on: not the loader's start-up
                t0 = time.time()
            step = batch["step"]
            for g in opt.param_groups:
                g["lr"] = lr_at(step, total_steps, args.lr, args.warmup)
            loss, parts = compute_loss(model, batch, before_ids, device, class_tokens)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            n_img += batch["images"].shape[0]
            for k, v in parts.items():
                ema[k] = v if k not in ema else 0.95 * ema[k] + 0.05 * v
            step += 1
            if refit and step == start_step + 20:
                t_fit, step_fit = time.time(), step
            if refit and step >= start_step + 80 and step - step_fit >= (60 if step < start_step + 200 else 200):
                # The machine is shared and its pace changes: re-fit the step count to the time left, so that the
                # cosine still ends inside the budget (the schedule stays counted in steps).
                sec = (time.time() - t_fit) / (step - step_fit) * 1.02
                new_total = max(step + 1, step + int((args.time_budget - (time.time() - t_start)) / sec))
                if new_total != total_steps:
                    print(f"re-fit: {sec:.3f} s/step -> {new_total} steps (was {total_steps})", flush=True)
                total_steps = state["total_steps"] = new_total
                t_fit, step_fit = time.time(), step
            if step % 10 == 0 or step == total_steps:
                dt = max(time.time() - t0, 1e-6)
                ips = n_img / dt
                eta = (total_steps - step) * args.batch_size / max(ips, 1e-6)
                msg = " ".join(f"{k} {float(v):.3f}" for k, v in ema.items())
                print(f"step {step}/{total_steps} {100 * step / total_steps:5.1f}% | {msg} | lr {opt.param_groups[0]['lr']:.2e} | {ips:.1f} img/s | images {step * args.batch_size} | ETA {eta / 60:.1f} min", flush=True)
            if time.time() - t_last_ckpt > args.ckpt_every:
                state["train_wall_s"] = wall_before + time.time() - t_start
                save_checkpoint(ckpt_path, model, opt, step, state, weights_path)
                t_last_ckpt = time.time()
            if time.time() - t_start > args.time_budget and step < total_steps:
                print(f"time budget of {args.time_budget:.0f} s used up at step {step}; checkpoint saved, continue with --resume", flush=True)
                break
            if step >= total_steps or interrupted:
                break
    finally:
        if in_main_thread:
            signal.signal(signal.SIGINT, previous_handler)
    state["train_wall_s"] = wall_before + time.time() - t_start
    save_checkpoint(ckpt_path, model, opt, step, state, weights_path)
    wall = time.time() - t_start
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    log = {"step": step, "total_steps": total_steps, "images_seen": step * args.batch_size, "wall_s_this_run": wall, "finished": step >= total_steps,
           "batch_size": args.batch_size, "image_size": model.config.vision.image_size, "device": where,
           "init_images": init_images}
    with open(out / "train_runs.jsonl", "a") as f:
        f.write(json.dumps(log) + "\n")
    print(f"done: {log}", flush=True)
    if interrupted:
        print(f"interrupted at step {step}: checkpoint saved in {ckpt_path}; continue with --resume", flush=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
