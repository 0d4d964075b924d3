"""Qwen2-style decoder (docs/ARCHITECTURE.md): RMSNorm, RoPE, GQA with q/k/v bias, SwiGLU.

    lm = LanguageModel(config.lm, tensors, backend)
    cache = KVCache(config.lm)
    logits = lm.forward(lm.embed(ids), cache)   # prefill: appends to the cache, [V] for the last row
    logits = lm.forward(lm.embed([next_id]), cache)
"""

from __future__ import annotations

import numpy as np

from . import kernels as K
from .config import LMConfig
from .kv_cache import KVCache


class Layer:
    """One decoder layer's weights; q/k/v and gate/up are fused into one GEMM each and every
    GEMM weight goes through Backend.pack once, at load."""

    def __init__(self, tensors: dict[str, np.ndarray], prefix: str, backend: K.Backend) -> None:
        def t(name):
            return tensors[f"{prefix}.{name}"]
        self.input_norm = t("input_layernorm.weight")
        self.post_norm = t("post_attention_layernorm.weight")
        self.b_qkv = np.concatenate([t("self_attn.q_proj.bias"), t("self_attn.k_proj.bias"), t("self_attn.v_proj.bias")])
        w_qkv = np.concatenate([t("self_attn.q_proj.weight"), t("self_attn.k_proj.weight"), t("self_attn.v_proj.weight")])
        self.w_qkv = backend.pack(np.ascontiguousarray(w_qkv), self.b_qkv)  # [(H+2Hkv)*Dh, D]
        self.w_o = backend.pack(t("self_attn.o_proj.weight"))  # [D, H*Dh]
        w_gate_up = np.concatenate([t("mlp.gate_proj.weight"), t("mlp.up_proj.weight")])
        self.w_gate_up = backend.pack(np.ascontiguousarray(w_gate_up))  # [2F, D]
        self.w_down = backend.pack(t("mlp.down_proj.weight"))  # [D, F]


class LanguageModel:
    """The decoder's weights and forward pass; the KV cache is passed in (run state)."""

    def __init__(self, config: LMConfig, tensors: dict[str, np.ndarray], backend: K.Backend | None = None) -> None:
        self.config = config
        self.backend = backend or K.Backend()
        self.embed_tokens = tensors["lm.embed_tokens.weight"]  # [V, D]
        lm_head = self.embed_tokens if config.tie_embeddings else tensors["lm.lm_head.weight"]  # [V, D]
        self.lm_head = self.backend.pack(lm_head)
        self.norm = tensors["lm.norm.weight"]
        self.layers = [Layer(tensors, f"lm.layers.{i}", self.backend) for i in range(config.n_layers)]
        self.cos, sin = K.rope_tables(config.max_seq_len, config.head_dim, config.rope_theta)  # [P, Dh] each
        self.sin_signed = K.rope_signed_sin(sin)  # [P, Dh], for K.rope_swapped

    def embed(self, ids):  # [T] -> [T, D]
        ids = np.asarray(ids, dtype=np.int64)
        if ids.size and (ids.min() < 0 or ids.max() >= self.config.vocab_size):
            raise ValueError(f"token id out of range [0, {self.config.vocab_size}): {ids.min()}..{ids.max()}")
        return self.embed_tokens[ids]

    def forward(self, h, cache: KVCache, all_logits: bool = False):  # [T, D] -> [V] (or [T, V])
        """Run T new positions starting at cache.length; append their K/V; return logits."""
        cfg, be = self.config, self.backend
        t = h.shape[0]
        pos = cache.length
        if pos + t > cache.capacity:
            raise ValueError(f"sequence of {pos + t} positions exceeds the KV cache capacity {cache.capacity} (lm.max_seq_len)")
        n_h, n_q, n_kv, dh = cfg.n_heads, cfg.n_heads * cfg.head_dim, cfg.n_kv_heads * cfg.head_dim, cfg.head_dim
        cos, sin = self.cos[pos:pos + t, None], self.sin_signed[pos:pos + t, None]  # [T, 1, Dh]
        h = np.array(h, dtype=np.float32)  # residual stream, owned
        for i, ly in enumerate(self.layers):
            a = K.rms_norm(h, ly.input_norm, cfg.rms_eps)  # [T, D]
            qkv = be.linear(a, ly.w_qkv, ly.b_qkv)  # [T, (H+2Hkv)*Dh]
            qk = K.rope_swapped(qkv[:, :n_q + n_kv].reshape(t, n_h + cfg.n_kv_heads, dh), cos, sin)  # [T, H+Hkv, Dh]
            q = qk[:, :n_h].transpose(1, 0, 2)  # [H, T, Dh]
            cache.k[i, :, pos:pos + t] = qk[:, n_h:].transpose(1, 0, 2)  # [Hkv, T, Dh]
            cache.v[i, :, pos:pos + t] = qkv[:, n_q + n_kv:].reshape(t, cfg.n_kv_heads, dh).transpose(1, 0, 2)
            o = K.attention(q, cache.k[i, :, :pos + t], cache.v[i, :, :pos + t], pos, be)  # [H, T, Dh]
            o = o.transpose(1, 0, 2).reshape(t, n_q)  # [T, H*Dh]
            h += be.linear(o, ly.w_o)
            m = K.rms_norm(h, ly.post_norm, cfg.rms_eps)  # [T, D]
            gu = be.linear(m, ly.w_gate_up)  # [T, 2F]
            g = K.silu(gu[:, :cfg.d_ffn])
            g *= gu[:, cfg.d_ffn:]  # [T, F]
            h += be.linear(g, ly.w_down)
        cache.length = pos + t
        last = h if all_logits else h[-1:]
        logits = be.linear(K.rms_norm(last, self.norm, cfg.rms_eps), self.lm_head)  # [T or 1, V]
        return logits if all_logits else logits[0]
