"""Hugging Face Qwen2ForCausalLM -> tiny-vlm `lm.*` tensors and LMConfig."""

from __future__ import annotations

from ..config import LMConfig
from ._util import ConvertError, take

_LAYER_KEYS = ("input_layernorm.weight", "post_attention_layernorm.weight",
               "self_attn.q_proj.weight", "self_attn.q_proj.bias", "self_attn.k_proj.weight", "self_attn.k_proj.bias",
               "self_attn.v_proj.weight", "self_attn.v_proj.bias", "self_attn.o_proj.weight",
               "mlp.gate_proj.weight", "mlp.up_proj.weight", "mlp.down_proj.weight")


def lm_config_from_hf(hf: dict, max_seq_len: int = 512) -> LMConfig:
    """LMConfig from a Qwen2 config.json dict (rope_theta or rope_parameters.rope_theta)."""
    rope = (hf.get("rope_parameters") or {}).get("rope_theta", hf.get("rope_theta", 1_000_000.0))
    heads = hf["num_attention_heads"]
    return LMConfig(vocab_size=hf["vocab_size"], d_model=hf["hidden_size"], n_layers=hf["num_hidden_layers"], n_heads=heads,
                    n_kv_heads=hf.get("num_key_value_heads") or heads, head_dim=hf.get("head_dim") or hf["hidden_size"] // heads,
                    d_ffn=hf["intermediate_size"], max_seq_len=max_seq_len, rope_theta=float(rope),
                    rms_eps=hf.get("rms_norm_eps", 1e-6), tie_embeddings=bool(hf.get("tie_word_embeddings", False)))


def from_hf_qwen2(state: dict, config: LMConfig) -> dict:
    """Map `model.*` / `lm_head.weight` to `lm.*`; drops lm_head when embeddings are tied."""
    out = {"lm.embed_tokens.weight": take(state, "model.embed_tokens.weight"),
           "lm.norm.weight": take(state, "model.norm.weight")}
    for i in range(config.n_layers):
        for key in _LAYER_KEYS:
            out[f"lm.layers.{i}.{key}"] = take(state, f"model.layers.{i}.{key}")
    if not config.tie_embeddings:
        out["lm.lm_head.weight"] = take(state, "lm_head.weight")
    extra_layers = [k for k in state if k.startswith(f"model.layers.{config.n_layers}.")]
    if extra_layers:
        raise ConvertError(f"checkpoint has more layers than n_layers={config.n_layers}: {extra_layers[0]}")
    return out
