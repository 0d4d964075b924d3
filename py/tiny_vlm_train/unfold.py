"""Turn an exported tiny-vlm model back into a training checkpoint, so that it can be trained on.

    python -m tiny_vlm_train.unfold ../models/tiny-vlm-emoji ../runs/unfolded/ckpt.pt [--asset-pack PACK]
    python -m tiny_vlm_train.train --init ../runs/unfolded/ckpt.pt --out ../runs/more ...

A model directory holds folded weights only: export folds BatchNorm, the reparameterizable
branches and the layer scales, then quantizes to int8. Training needs the unfolded form, so
this inverts the fold where it can and picks a starting point where it cannot:

- every folded convolution goes into the k x k branch of its block; the other branches (the
  1x1 scale branch, the 3x3 branch of the patch embed, the identity BatchNorms) start switched
  off: BatchNorm scale and shift 0, so they add nothing until training turns them on;
- the BatchNorm behind a carrying convolution gets that convolution's output statistics over
  rendered training scenes as its running statistics, and the scale and shift that make the
  block compute exactly the folded convolution in eval mode, and nearly so in training mode,
  where BatchNorm normalises with the statistics of each batch;
- carrying convolutions are rescaled to the weight size of a fresh initialisation (BatchNorm
  makes the scale free), and layer scales are set so that the weights they multiply have that
  size too: the optimizer's steps then have the relative size they had in training;
- the training-only heads on the vision tokens are not exported; they are fitted here on the
  tower's tokens of the same scenes, with the tower frozen.

`inference_tensors()` of the result gives back the folded tensors (up to rounding); with an
int8 model these are the dequantized weights.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
try:
    import torch
except ImportError:  # a command line: one line, not a traceback
    sys.exit("tiny_vlm_train needs PyTorch, a training dependency only: pip install torch")

from tiny_vlm.config import ModelConfig

from .model import ConvBN, MobileOneBlock, RepMixer, TrainVLM, identity_kernel
from .train import aux_losses, aux_total, lr_at

CALIBRATION_SEED = 7_000_003  # training-split scenes no run draws batches from


def _fresh_rms(w: torch.Tensor) -> float:
    """RMS of PyTorch's default init for a conv/linear weight shaped like w (uniform, bound 1/sqrt(fan_in))."""
    return 1.0 / math.sqrt(3.0 * w[0].numel())


def _row_rms(w: torch.Tensor) -> torch.Tensor:
    return w.flatten(1).pow(2).mean(1).sqrt().clamp_min(1e-12)


def _switch_off(bn: torch.nn.BatchNorm2d) -> None:
    bn.weight.zero_(), bn.bias.zero_()
    bn.running_mean.zero_(), bn.running_var.fill_(1.0)


class _Carrier:
    """A ConvBN that carries a folded conv (w, b): its conv holds w * s (s per output channel)."""

    def __init__(self, convbn: ConvBN, w: torch.Tensor, b: torch.Tensor, layer_scale: torch.nn.Parameter | None = None):
        self.m, self.b, self.layer_scale = convbn, b, layer_scale
        self.s = _fresh_rms(w) / _row_rms(w)
        convbn.conv.weight.copy_(w * self.s.reshape(-1, 1, 1, 1))
        bn = convbn.bn
        # exact in eval mode before calibration: (s*y - 0) / 1 * (1/s) + b = y + b
        bn.running_mean.zero_(), bn.running_var.fill_(1.0 - bn.eps)
        bn.weight.copy_(1.0 / self.s), bn.bias.copy_(b)
        if layer_scale is not None:
            layer_scale.fill_(1.0)
        self.n, self.sum, self.sumsq = 0, 0.0, 0.0
        self.hook = convbn.conv.register_forward_hook(self._observe)

    def _observe(self, module, inputs, out):
        y = out.detach().double()
        self.n += y.shape[0] * y.shape[2] * y.shape[3]
        self.sum = self.sum + y.sum((0, 2, 3))
        self.sumsq = self.sumsq + y.pow(2).sum((0, 2, 3))

    def settle(self) -> None:
        """Running statistics from what was observed; scale and shift that keep the eval function."""
        self.hook.remove()
        bn, s = self.m.bn, self.s.double()
        mean = self.sum / self.n
        var = (self.sumsq / self.n - mean.pow(2)).clamp_min(0.0)
        g = torch.sqrt(var + bn.eps) / s  # (y_s - mean) / sqrt(var + eps) * g + mean / s + b = y + b
        shift = mean / s + self.b.double()
        bn.running_mean.copy_(mean.float()), bn.running_var.copy_(var.float())
        if self.layer_scale is None:
            bn.weight.copy_(g.float()), bn.bias.copy_(shift.float())
        else:  # RepMixer: x + ls * mixer(x); the layer scale takes the size, the BN scale is 1
            # g > 0: eps > 0 and s is finite; no clamp, which would break the equality above
            self.layer_scale.copy_(g.float().reshape(self.layer_scale.shape))
            bn.weight.fill_(1.0), bn.bias.copy_((shift / g).float())


def _load_block(block: MobileOneBlock, w: torch.Tensor, b: torch.Tensor, carriers: list) -> None:
    carriers.append(_Carrier(block.conv, w, b))
    if block.scale is not None:
        _switch_off(block.scale.bn)
    if block.identity is not None:
        _switch_off(block.identity)


def _scaled_linear(weight: torch.nn.Parameter, bias: torch.nn.Parameter | None, w: torch.Tensor, b: torch.Tensor | None,
                   layer_scale: torch.nn.Parameter) -> None:
    """weight * ls == w: ls per output row so that the weight has the size of a fresh init."""
    ls = _row_rms(w) / _fresh_rms(w)
    weight.copy_((w / ls[:, None]).reshape(weight.shape))
    if bias is not None:
        bias.copy_(b / ls)
    layer_scale.copy_(ls.reshape(layer_scale.shape))


@torch.no_grad()
def place(model: TrainVLM, tensors: dict[str, np.ndarray]) -> list[_Carrier]:
    """Put folded tensors into the training model (eval mode then computes the folded model);
    -> the carriers, still to be calibrated."""
    t = {k: torch.from_numpy(np.array(v, np.float32)) for k, v in tensors.items()}  # a writable copy
    carriers: list[_Carrier] = []
    vis = model.vision
    for i, m in enumerate(vis.stem):
        w = t[f"vision.stem.{i}.weight"]
        _load_block(m, w.reshape(m.conv.conv.weight.shape), t[f"vision.stem.{i}.bias"], carriers)
    for s, st in enumerate(vis.stages):
        p = f"vision.stages.{s}"
        if st.downsample is not None:
            lk = st.downsample.lk
            carriers.append(_Carrier(lk.large, t[f"{p}.downsample.0.weight"], t[f"{p}.downsample.0.bias"]))
            _switch_off(lk.small.bn)
            pw = st.downsample.pw
            _load_block(pw, t[f"{p}.downsample.1.weight"].reshape(pw.conv.conv.weight.shape), t[f"{p}.downsample.1.bias"], carriers)
        if st.pos_emb is not None:
            w = t[f"{p}.pos_emb.weight"]
            st.pos_emb.conv.weight.copy_(w - identity_kernel(w.shape[0], 1, w.shape[-1]))
            st.pos_emb.conv.bias.copy_(t[f"{p}.pos_emb.bias"])
        for j, blk in enumerate(st.blocks):
            q = f"{p}.blocks.{j}"
            if blk.mixer_kind == "repmixer":
                tm: RepMixer = blk.token_mixer
                w = t[f"{q}.token_mixer.weight"]
                _switch_off(tm.norm.identity)
                mixer = tm.mixer
                carriers.append(_Carrier(mixer.conv, w - identity_kernel(w.shape[0], 1, w.shape[-1]), t[f"{q}.token_mixer.bias"], tm.layer_scale))
                _switch_off(mixer.scale.bn), _switch_off(mixer.identity)
            else:
                blk.norm.weight.copy_(t[f"{q}.norm.weight"]), blk.norm.bias.copy_(t[f"{q}.norm.bias"])
                blk.attn.qkv.weight.copy_(t[f"{q}.attn.qkv.weight"])
                _scaled_linear(blk.attn.proj.weight, blk.attn.proj.bias, t[f"{q}.attn.proj.weight"], t[f"{q}.attn.proj.bias"], blk.layer_scale_1)
            carriers.append(_Carrier(blk.mlp.conv, t[f"{q}.mlp.conv.weight"], t[f"{q}.mlp.conv.bias"]))
            blk.mlp.fc1.weight.copy_(t[f"{q}.mlp.fc1.weight"].reshape(blk.mlp.fc1.weight.shape))
            blk.mlp.fc1.bias.copy_(t[f"{q}.mlp.fc1.bias"])
            fc2 = blk.mlp.fc2
            _scaled_linear(fc2.weight, fc2.bias, t[f"{q}.mlp.fc2.weight"], t[f"{q}.mlp.fc2.bias"], blk.layer_scale_2)
    for i in (0, 2):
        model.projector[i].weight.copy_(t[f"projector.{i}.weight"]), model.projector[i].bias.copy_(t[f"projector.{i}.bias"])
    lm = model.lm
    lm.embed_tokens.weight.copy_(t["lm.embed_tokens.weight"])
    for i, ly in enumerate(lm.layers):
        p = f"lm.layers.{i}"
        ly.input_layernorm.weight.copy_(t[f"{p}.input_layernorm.weight"])
        ly.post_attention_layernorm.weight.copy_(t[f"{p}.post_attention_layernorm.weight"])
        for n in ("q_proj", "k_proj", "v_proj"):
            getattr(ly, n).weight.copy_(t[f"{p}.self_attn.{n}.weight"]), getattr(ly, n).bias.copy_(t[f"{p}.self_attn.{n}.bias"])
        ly.o_proj.weight.copy_(t[f"{p}.self_attn.o_proj.weight"])
        for n in ("gate_proj", "up_proj", "down_proj"):
            getattr(ly, n).weight.copy_(t[f"{p}.mlp.{n}.weight"])
    lm.norm.weight.copy_(t["lm.norm.weight"])
    if lm.lm_head is not None:
        lm.lm_head.weight.copy_(t["lm.lm_head.weight"])
    return carriers


def unfold(tensors: dict[str, np.ndarray], config: ModelConfig, n_classes: int, batches: list[dict], head_steps: int = 300,
           log=print) -> TrainVLM:
    """The training model for folded `tensors`: placed, BatchNorm calibrated and aux heads fitted on
    `batches` (make_batch dicts of training scenes)."""
    torch.manual_seed(0)
    model = TrainVLM(config, n_classes)
    carriers = place(model, tensors)
    model.eval()
    with torch.no_grad():  # eval mode computes the folded model before settle() and after it: one pass serves both
        tokens = [model.encode(b["images"])[0] for b in batches]
        for c in carriers:
            c.settle()
    log(f"BatchNorm of {len(carriers)} convolutions calibrated on {sum(len(b['images']) for b in batches)} scenes")
    fit_aux_heads(model, tokens, batches, head_steps, log)
    return model


def fit_aux_heads(model: TrainVLM, tokens: list[torch.Tensor], batches: list[dict], steps: int, log=print) -> None:
    heads = [p for n, p in model.named_parameters() if n.startswith("aux_")]
    opt = torch.optim.AdamW(heads, lr=3e-3, weight_decay=0.0)
    first = last = None
    for step in range(steps):
        i = step % len(batches)
        for g in opt.param_groups:
            g["lr"] = lr_at(step, steps, 3e-3, warmup=0, floor=0.0)
        loss = aux_total(*aux_losses(model, tokens[i], batches[i], "cpu"))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        last = float(loss.detach())
        first = last if first is None else first
    if steps:
        log(f"training-only heads fitted: {steps} steps, aux loss {first:.3f} -> {last:.3f}")


def checkpoint(model: TrainVLM, labels: list[dict], tokenizer_json: str, training_images: int, unfolded: dict) -> dict:
    """A checkpoint that train --init, soup, export and evaluate take: step 0 of a run that saw no
    images itself, with the model's images carried as the images before it."""
    return {"model": model.state_dict(), "step": 0, "config": model.config.to_json(), "labels": labels, "tokenizer": tokenizer_json,
            "args": {"batch_size": 0}, "init_images": training_images, "unfolded": unfolded}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_dir", help="a tiny-vlm model directory (model.safetensors, tokenizer.json, labels.json)")
    ap.add_argument("out", help="the training checkpoint to write (for train --init)")
    ap.add_argument("--scenes", type=int, default=512, help="training scenes for BatchNorm statistics and the heads")
    ap.add_argument("--head-steps", type=int, default=300)
    ap.add_argument("--asset-pack", metavar="NPZ", help="training assets from one file (as train's --asset-pack)")
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    from tokenizers import Tokenizer

    from tiny_vlm.weights import load_weights

    from .data import PromptCoder, make_batch, train_generator
    from .scenes import SceneConfig

    t0 = time.time()
    d = Path(args.model_dir)
    w = load_weights(d / "model.safetensors")
    labels = json.loads((d / "labels.json").read_text())
    tok_json = (d / "tokenizer.json").read_text()
    config = w.config
    print(f"{d}: {config.name}, {w.n_params:,} params ({w.quant.get('scheme')}), {config.vision.image_size} px, {len(labels)} classes", flush=True)
    gen = train_generator(labels, CALIBRATION_SEED, SceneConfig(size=config.vision.image_size), args.asset_pack)
    coder = PromptCoder(Tokenizer.from_str(tok_json), config.prompt_template)
    bs = 32
    batches = [make_batch(gen, coder, labels, config, i, bs, CALIBRATION_SEED) for i in range(max(1, args.scenes // bs))]
    print(f"rendered {len(batches) * bs} training scenes ({time.time() - t0:.0f} s)", flush=True)
    model = unfold(w.tensors, config, len(labels), batches, args.head_steps, log=lambda m: print(m, flush=True))
    ck = checkpoint(model, labels, tok_json, int(w.metadata.get("training_images", 0)),
                    {"model_dir": str(d), "scenes": len(batches) * bs, "seed": CALIBRATION_SEED, "head_steps": args.head_steps})
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    torch.save(ck, tmp)
    os.replace(tmp, out)
    print(f"wrote {out} ({time.time() - t0:.0f} s): train with --init {out}", flush=True)


if __name__ == "__main__":
    main()
