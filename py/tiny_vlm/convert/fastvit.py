"""timm FastViT / MobileCLIP-MCi (`fastvit_mci*`) -> tiny-vlm `vision.*` tensors.

Input: the state_dict of a model after `timm.utils.reparameterize_model` (every MobileOne,
RepMixer, RepCPE and large-kernel block holds one `reparam_conv`). What timm leaves
unfolded is folded here: the ConvFFN depthwise conv's BatchNorm, the layer scales
(into attn.proj and mlp.fc2), a BatchNorm attention norm (into a per-channel affine).
1x1 convs become 2-D linear weights.
"""

from __future__ import annotations

import numpy as np

from ..config import VisionConfig
from ._util import ConvertError, take

OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def fastvit_mci3_config(image_size: int = 256, **overrides) -> VisionConfig:
    """timm `fastvit_mci3` (FastViT-HD, FastVLM's tower) as a VisionConfig; output stride 64."""
    args = dict(image_size=image_size, depths=(2, 12, 24, 4, 2), widths=(96, 192, 384, 768, 1536),
                mixers=("repmixer", "repmixer", "repmixer", "attention", "attention"), mlp_ratios=(4.0,) * 5,
                pos_embs=(False, False, False, True, True), downsamples=(False, True, True, True, True), head_dim=32,
                downsample_act=True, final_channels=3072, attn_norm="layernorm", norm_eps=1e-5)
    args.update(overrides)
    return VisionConfig(**args)


def _linear(w):  # [out, in, 1, 1] -> [out, in]
    return w.reshape(w.shape[0], -1)


def _fold_bn(state, prefix, eps):  # BatchNorm -> (scale [C], shift [C])
    gamma, beta = take(state, f"{prefix}.weight"), take(state, f"{prefix}.bias")
    mean, var = take(state, f"{prefix}.running_mean"), take(state, f"{prefix}.running_var")
    scale = gamma / np.sqrt(var.astype(np.float64) + eps)
    return scale.astype(np.float32), (beta - mean * scale).astype(np.float32)


def _reparam(state, src, dst, out, as_linear=False):
    key = f"{src}.reparam_conv.weight"
    if key not in state:
        raise ConvertError(f"{src} is not reparameterized (no {key}); run timm.utils.reparameterize_model(model) first")
    w = take(state, key)
    out[f"{dst}.weight"] = _linear(w) if as_linear else w
    out[f"{dst}.bias"] = take(state, f"{src}.reparam_conv.bias")


def from_timm_fastvit(state: dict, config: VisionConfig, bn_eps: float = 1e-5) -> dict:
    """Reparameterized timm FastViT state_dict -> {`vision.*`: float32 array}."""
    out: dict[str, np.ndarray] = {}
    _reparam(state, "stem.0", "vision.stem.0", out)
    _reparam(state, "stem.1", "vision.stem.1", out)
    _reparam(state, "stem.2", "vision.stem.2", out, as_linear=True)
    for s, depth in enumerate(config.depths):
        src, dst = f"stages.{s}", f"vision.stages.{s}"
        if config.downsamples[s]:
            _reparam(state, f"{src}.downsample.proj.0", f"{dst}.downsample.0", out)
            _reparam(state, f"{src}.downsample.proj.1", f"{dst}.downsample.1", out, as_linear=True)
        if config.pos_embs[s]:
            _reparam(state, f"{src}.pos_emb", f"{dst}.pos_emb", out)
        for b in range(depth):
            sb, db = f"{src}.blocks.{b}", f"{dst}.blocks.{b}"
            if config.mixers[s] == "repmixer":
                _reparam(state, f"{sb}.token_mixer", f"{db}.token_mixer", out)
                gamma2 = take(state, f"{sb}.layer_scale.gamma").reshape(-1) if f"{sb}.layer_scale.gamma" in state else None
            else:
                if f"{sb}.norm.running_mean" in state:  # BatchNorm2d norm -> per-channel affine
                    out[f"{db}.norm.weight"], out[f"{db}.norm.bias"] = _fold_bn(state, f"{sb}.norm", bn_eps)
                else:  # LayerNorm2d
                    out[f"{db}.norm.weight"], out[f"{db}.norm.bias"] = take(state, f"{sb}.norm.weight"), take(state, f"{sb}.norm.bias")
                out[f"{db}.attn.qkv.weight"] = take(state, f"{sb}.token_mixer.qkv.weight")
                if f"{sb}.token_mixer.qkv.bias" in state:
                    raise ConvertError(f"{sb}.token_mixer.qkv has a bias; the tiny-vlm attention has none")
                proj_w, proj_b = take(state, f"{sb}.token_mixer.proj.weight"), take(state, f"{sb}.token_mixer.proj.bias")
                if f"{sb}.layer_scale_1.gamma" in state:
                    gamma1 = take(state, f"{sb}.layer_scale_1.gamma").reshape(-1)  # [C]
                    proj_w, proj_b = proj_w * gamma1[:, None], proj_b * gamma1
                out[f"{db}.attn.proj.weight"], out[f"{db}.attn.proj.bias"] = proj_w, proj_b
                gamma2 = take(state, f"{sb}.layer_scale_2.gamma").reshape(-1) if f"{sb}.layer_scale_2.gamma" in state else None
            # ConvFFN: depthwise 7x7 conv + BatchNorm (not folded by timm) -> conv with bias
            conv_w = take(state, f"{sb}.mlp.conv.conv.weight")
            scale, shift = _fold_bn(state, f"{sb}.mlp.conv.bn", bn_eps)
            conv_b = shift + (scale * take(state, f"{sb}.mlp.conv.conv.bias") if f"{sb}.mlp.conv.conv.bias" in state else 0)
            out[f"{db}.mlp.conv.weight"] = conv_w * scale[:, None, None, None]
            out[f"{db}.mlp.conv.bias"] = np.asarray(conv_b, dtype=np.float32)
            out[f"{db}.mlp.fc1.weight"] = _linear(take(state, f"{sb}.mlp.fc1.weight"))
            out[f"{db}.mlp.fc1.bias"] = take(state, f"{sb}.mlp.fc1.bias")
            fc2_w, fc2_b = _linear(take(state, f"{sb}.mlp.fc2.weight")), take(state, f"{sb}.mlp.fc2.bias")
            if gamma2 is not None:
                fc2_w, fc2_b = fc2_w * gamma2[:, None], fc2_b * gamma2
            out[f"{db}.mlp.fc2.weight"], out[f"{db}.mlp.fc2.bias"] = fc2_w, fc2_b
    if config.final_channels:
        _reparam(state, "final_conv", "vision.final_conv", out)
        out["vision.final_conv.se.reduce.weight"] = _linear(take(state, "final_conv.se.fc1.weight"))
        out["vision.final_conv.se.reduce.bias"] = take(state, "final_conv.se.fc1.bias")
        out["vision.final_conv.se.expand.weight"] = _linear(take(state, "final_conv.se.fc2.weight"))
        out["vision.final_conv.se.expand.bias"] = take(state, "final_conv.se.fc2.bias")
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in out.items()}
