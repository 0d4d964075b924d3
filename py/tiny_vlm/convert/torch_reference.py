"""Independent PyTorch implementations of the model, fed tiny-vlm weights.

timm's FastViT (inference mode), a torch mlp2x_gelu projector and transformers'
Qwen2ForCausalLM, built from a config and `{name: float32 array}` tensors (random_tensors,
or `load_weights(path).tensors`). Used by the parity tests (tests/test_generate.py) and
as the PyTorch / onnxruntime peers of `tiny_vlm.bench`. Needs torch, timm and
transformers; never imported by the runtime.

    tower = timm_fastvit(config.vision, tensors)          # forward_features: [1, 3, S, S] -> [1, C_f, g, g]
    encoder = ImageEncoder(tower, tensors)                # [1, 3, S, S] -> [N_img, D]
    lm = hf_qwen2(config.lm, tensors)                     # Qwen2ForCausalLM, eager attention
    step = DecoderStep(lm)                                # explicit KV tensors, for ONNX export
"""

from __future__ import annotations

from functools import partial

import numpy as np
import torch
import transformers
from timm.layers import LayerNorm2d
from timm.models import fastvit as timm_fastvit_module

from ..config import LMConfig, VisionConfig


def _torch(tensors: dict) -> dict:
    return {k: torch.from_numpy(np.array(a, dtype=np.float32)) for k, a in tensors.items()}


def timm_fastvit(config: VisionConfig, tensors: dict) -> torch.nn.Module:
    """timm FastVit in inference mode (one reparam conv per block) holding our `vision.*` weights."""
    v, t = config, _torch(tensors)
    fv = timm_fastvit_module
    norm = partial(LayerNorm2d, eps=v.norm_eps) if v.attn_norm == "layernorm" else torch.nn.BatchNorm2d
    tower = fv.FastVit(layers=v.depths, embed_dims=v.widths, mlp_ratios=v.mlp_ratios, downsamples=v.downsamples,
                       pos_embs=tuple(partial(fv.RepConditionalPosEnc, spatial_shape=(7, 7)) if p else None for p in v.pos_embs),
                       token_mixers=v.mixers, lkc_use_act=v.downsample_act, norm_layer=norm,
                       cls_ratio=(v.final_channels / v.widths[-1]) if v.final_channels else 2.0, inference_mode=True).eval()
    if not v.final_channels:
        tower.final_conv = torch.nn.Identity()
    for m in tower.modules():  # timm fixes head_dim at 32; use the config's
        if isinstance(m, fv.Attention):
            m.head_dim, m.num_heads, m.scale = v.head_dim, m.qkv.in_features // v.head_dim, v.head_dim ** -0.5
    state = tower.state_dict()
    new = {}
    for key in state:
        ours = ("vision." + key).replace(".reparam_conv", "").replace("downsample.proj.", "downsample.")
        ours = ours.replace("token_mixer.qkv", "attn.qkv").replace("token_mixer.proj", "attn.proj")
        ours = ours.replace("se.fc1", "se.reduce").replace("se.fc2", "se.expand").replace("mlp.conv.conv", "mlp.conv")
        field = key.rsplit(".", 1)[1]
        if key.endswith("gamma"):  # layer scales are folded into our weights
            new[key] = torch.ones_like(state[key])
        elif ".mlp.conv.bn." in key:  # identity BatchNorm carrying our conv bias
            bias = t[ours.replace("mlp.conv.bn.", "mlp.conv.").rsplit(".", 1)[0] + ".bias"]
            new[key] = {"weight": torch.ones_like(bias), "bias": bias, "running_mean": torch.zeros_like(bias),
                        "running_var": torch.full_like(bias, 1 - 1e-5)}.get(field, state[key])
        elif ".norm." in key and field in ("running_mean", "running_var", "num_batches_tracked"):  # affine norm as BN
            new[key] = {"running_mean": torch.zeros_like(state[key]),
                        "running_var": torch.full_like(state[key], 1 - 1e-5)}.get(field, state[key])
        elif ours in t:
            new[key] = t[ours].reshape(state[key].shape)
        elif key.startswith("head."):
            new[key] = state[key]
        else:
            raise KeyError(f"timm FastVit tensor {key} has no tiny-vlm counterpart {ours}")
    tower.load_state_dict(new)
    return tower


class ImageEncoder(torch.nn.Module):
    """timm tower + torch mlp2x_gelu projector: pixels [1, 3, S, S] -> embeddings [N_img, D]."""

    def __init__(self, tower: torch.nn.Module, tensors: dict) -> None:
        super().__init__()
        t = _torch(tensors)
        self.tower = tower
        self.fc0 = torch.nn.Linear(*t["projector.0.weight"].shape[::-1])
        self.fc2 = torch.nn.Linear(*t["projector.2.weight"].shape[::-1])
        with torch.no_grad():
            for fc, name in ((self.fc0, "projector.0"), (self.fc2, "projector.2")):
                fc.weight.copy_(t[f"{name}.weight"])
                fc.bias.copy_(t[f"{name}.bias"])
        self.gelu = torch.nn.GELU()

    def forward(self, pixels):  # [1, 3, S, S] -> [N_img, D]
        f = self.tower.forward_features(pixels)[0]  # [C_f, g, g]
        f = f.flatten(1).transpose(0, 1)  # [g*g, C_f], row-major like tiny-vlm
        return self.fc2(self.gelu(self.fc0(f)))


def hf_qwen2(config: LMConfig, tensors: dict):
    """transformers Qwen2ForCausalLM (eager attention, float32, eval) holding our `lm.*` weights."""
    lm = config
    hf = transformers.Qwen2ForCausalLM(transformers.Qwen2Config(
        vocab_size=lm.vocab_size, hidden_size=lm.d_model, intermediate_size=lm.d_ffn, num_hidden_layers=lm.n_layers,
        num_attention_heads=lm.n_heads, num_key_value_heads=lm.n_kv_heads, head_dim=lm.head_dim,
        max_position_embeddings=lm.max_seq_len, rope_parameters={"rope_type": "default", "rope_theta": lm.rope_theta},
        rms_norm_eps=lm.rms_eps, tie_word_embeddings=lm.tie_embeddings, attn_implementation="eager")).float().eval()
    state = {}
    for k, a in _torch(tensors).items():
        if k == "lm.lm_head.weight":
            state["lm_head.weight"] = a
        elif k.startswith("lm."):
            state["model." + k[3:]] = a
    missing, unexpected = hf.load_state_dict(state, strict=False)
    if unexpected or [k for k in missing if k != "lm_head.weight"]:
        raise KeyError(f"Qwen2 state mismatch: missing {missing}, unexpected {unexpected}")
    if lm.tie_embeddings:
        hf.lm_head.weight = hf.model.embed_tokens.weight
    return hf


class DecoderStep(torch.nn.Module):
    """One decoder call with the KV cache as plain tensors, for torch.onnx.export.

    forward(embeds [1, T, D], past_k [L, 1, Hkv, P, Dh], past_v) -> (logits of the last
    position [1, V], present_k [L, 1, Hkv, P+T, Dh], present_v). P = 0 is the prefill.
    """

    def __init__(self, hf) -> None:
        super().__init__()
        self.hf = hf

    def forward(self, embeds, past_k, past_v):
        n_layers = past_k.shape[0]
        cache = transformers.DynamicCache()
        for i in range(n_layers):
            cache.update(past_k[i], past_v[i], i)
        p, t = past_k.shape[3], embeds.shape[1]
        positions = torch.arange(t).unsqueeze(0) + p
        out = self.hf(inputs_embeds=embeds, cache=cache, position_ids=positions, use_cache=True,
                      logits_to_keep=1)
        cache = out.cache
        ks = torch.stack([cache.layers[i].keys for i in range(n_layers)])
        vs = torch.stack([cache.layers[i].values for i in range(n_layers)])
        return out.logits[:, -1], ks, vs
