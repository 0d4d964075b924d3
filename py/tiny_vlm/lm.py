"""Qwen2-style decoder (docs/ARCHITECTURE.md): RMSNorm, RoPE, GQA with q/k/v bias, SwiGLU.

    lm = LanguageModel(config.lm, tensors, backend)
    cache = KVCache(config.lm)
    logits = lm.forward(lm.embed(ids), cache)   # prefill: appends to the cache, [V] for the last row
    logits = lm.decode(next_id, cache)               # one token: the same, cheaper
"""

from __future__ import annotations

import math

import numpy as np

from . import kernels as K
from .config import LMConfig
from .kv_cache import KVCache


class Layer:
    """One decoder layer's weights, prepared once at load: q/k/v and gate/up fused into one
    GEMM each; each RMSNorm's weight folded into the columns of the GEMM it feeds, and the
    attention scale 1/sqrt(Dh) into the q rows (rms_norm(x) * w @ W^T == rms_norm(x) @ (W * w)^T,
    and RoPE is linear), which saves three NumPy calls per layer and step; every GEMM weight
    goes through Backend.pack."""

    def __init__(self, tensors: dict[str, np.ndarray], prefix: str, backend: K.Backend, n_q: int, head_dim: int) -> None:
        def t(name):
            return tensors[f"{prefix}.{name}"]
        q_scale = np.float32(1.0 / np.sqrt(head_dim))
        self.b_qkv = np.concatenate([t("self_attn.q_proj.bias") * q_scale, t("self_attn.k_proj.bias"), t("self_attn.v_proj.bias")])
        w_qkv = np.concatenate([t("self_attn.q_proj.weight") * q_scale, t("self_attn.k_proj.weight"), t("self_attn.v_proj.weight")])
        assert w_qkv.shape[0] - 2 * t("self_attn.k_proj.weight").shape[0] == n_q, w_qkv.shape
        self.w_qkv = backend.pack(_fold(w_qkv, t("input_layernorm.weight")), self.b_qkv)  # [(H+2Hkv)*Dh, D]
        self.w_o = backend.pack(t("self_attn.o_proj.weight"))  # [D, H*Dh]
        w_gate_up = np.concatenate([t("mlp.gate_proj.weight"), t("mlp.up_proj.weight")])
        self.w_gate_up = backend.pack(_fold(w_gate_up, t("post_attention_layernorm.weight")))  # [2F, D]
        self.w_down = backend.pack(t("mlp.down_proj.weight"))  # [D, F]


def _inv_rms(h, inv_d, eps) -> float:  # [1, D] -> 1 / rms(h[0]), a Python float
    return 1.0 / math.sqrt(float(np.dot(h[0], h[0])) * inv_d + eps)


def _fold(w, norm_weight):  # [out, in], [in] -> [out, in]: the norm's per-channel weight in the GEMM
    return np.ascontiguousarray(w * norm_weight[None, :], dtype=np.float32)


class _DecodeBuffers:
    """Preallocated [1, n] rows for one-token steps: each GEMM writes into its own buffer and
    reads the previous one's, so a backend that caches array addresses (SimdBackend) looks
    none up during a step."""

    def __init__(self, config: LMConfig, backend: K.Backend) -> None:
        c = config

        def row(n):
            return backend.pin(np.zeros((1, n), np.float32))
        self.h = np.zeros((1, c.d_model), np.float32)  # residual stream
        self.a = row(c.d_model)  # normalised input of a GEMM
        self.qkv = row((c.n_heads + 2 * c.n_kv_heads) * c.head_dim)
        self.o = row(c.n_heads * c.head_dim)  # attention output
        self.d = row(c.d_model)  # o_proj / down_proj output
        self.gu = row(2 * c.d_ffn)
        self.g = row(c.d_ffn)
        self.logits = row(c.vocab_size)


class LanguageModel:
    """The decoder's weights and forward pass; the KV cache is passed in (run state)."""

    def __init__(self, config: LMConfig, tensors: dict[str, np.ndarray], backend: K.Backend | None = None) -> None:
        self.config = config
        self.backend = backend or K.Backend()
        self.embed_tokens = tensors["lm.embed_tokens.weight"]  # [V, D]
        lm_head = self.embed_tokens if config.tie_embeddings else tensors["lm.lm_head.weight"]  # [V, D]
        self.lm_head = self.backend.pack(_fold(lm_head, tensors["lm.norm.weight"]))  # final norm folded in
        n_q = config.n_heads * config.head_dim
        self.layers = [Layer(tensors, f"lm.layers.{i}", self.backend, n_q, config.head_dim) for i in range(config.n_layers)]
        self.cos, sin = K.rope_tables(config.max_seq_len, config.head_dim, config.rope_theta)  # [P, Dh] each
        self.sin_signed = K.rope_signed_sin(sin)  # [P, Dh], for K.rope_swapped
        self._buffers = _DecodeBuffers(config, self.backend)

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
        n_kv_h = cfg.n_kv_heads
        cos, sin = self.cos[pos:pos + t], self.sin_signed[pos:pos + t]  # [T, Dh] each
        h = np.array(h, dtype=np.float32)  # residual stream, owned
        q = np.empty((t, n_h, dh), np.float32)  # rotated q rows (every layer's)
        for i, ly in enumerate(self.layers):
            a = be.rms_norm(h, cfg.rms_eps)  # [T, D] (the norm weight is in w_qkv)
            qkv = be.linear(a, ly.w_qkv, ly.b_qkv)  # [T, (H+2Hkv)*Dh], q already scaled by 1/sqrt(Dh)
            heads = qkv.reshape(t, n_h + 2 * n_kv_h, dh)  # q, k, v heads side by side in each row
            be.rope(heads[:, :n_h], cos, sin, out=q)
            be.rope(heads[:, n_h:n_h + n_kv_h], cos, sin, out=cache.k[i, :, pos:pos + t].transpose(1, 0, 2))  # into the cache
            cache.v[i, :, pos:pos + t] = heads[:, n_h + n_kv_h:].transpose(1, 0, 2)  # [Hkv, T, Dh]
            o = np.empty((t, n_q), np.float32)  # [T, H*Dh]: the heads written side by side
            be.attention(q.transpose(1, 0, 2), cache.k[i, :, :pos + t], cache.v[i, :, :pos + t], pos, scale=None,
                         out=o.reshape(t, n_h, dh).transpose(1, 0, 2))
            h += be.linear(o, ly.w_o)
            self._mlp(h, ly)
        cache.length = pos + t
        last = h if all_logits else h[-1:]
        logits = be.linear(be.rms_norm(last, cfg.rms_eps), self.lm_head)  # [T or 1, V]
        return logits if all_logits else logits[0]

    def _mlp(self, h, ly: Layer) -> None:  # h [T, D] += SwiGLU MLP of rms_norm(h) (its weight is in w_gate_up)
        be = self.backend
        g = be.swiglu(be.linear(be.rms_norm(h, self.config.rms_eps), ly.w_gate_up))  # [T, 2F] -> silu(gate) * up [T, F]
        h += be.linear(g, ly.w_down)

    def decode_batch(self, token_ids, caches):  # [B] ids, B caches -> [B, V]
        """One step for B sequences at once, each with its own cache and position: the GEMMs of
        all B rows run as one (the weights are read once per step, not B times); attention runs
        per sequence over its own cache. Row b equals decode(token_ids[b], caches[b]) up to
        float rounding. For batching.Batcher."""
        cfg, be = self.config, self.backend
        ids = np.asarray(token_ids, dtype=np.int64)
        if ids.ndim != 1 or len(ids) != len(caches) or len(ids) == 0:
            raise ValueError(f"decode_batch needs one token id per cache, got {ids.shape} ids for {len(caches)} caches")
        if ids.min() < 0 or ids.max() >= cfg.vocab_size:
            raise ValueError(f"token id out of range [0, {cfg.vocab_size}): {ids.min()}..{ids.max()}")
        pos = np.array([c.length for c in caches], dtype=np.int64)
        if np.any(pos + 1 > np.array([c.capacity for c in caches])):
            raise ValueError(f"a sequence exceeds its KV cache capacity (lm.max_seq_len {cfg.max_seq_len})")
        b = len(ids)
        n_h, n_kv_h, dh = cfg.n_heads, cfg.n_kv_heads, cfg.head_dim
        n_q = n_h * dh
        cos, sin = self.cos[pos], self.sin_signed[pos]  # [B, Dh]: each row at its own position
        h = self.embed_tokens[ids].astype(np.float32)  # [B, D] residual stream, owned
        q = np.empty((b, n_h, dh), np.float32)
        k_new = np.empty((b, n_kv_h, dh), np.float32)
        for i, ly in enumerate(self.layers):
            a = be.rms_norm(h, cfg.rms_eps)
            qkv = be.linear(a, ly.w_qkv, ly.b_qkv)  # [B, (H+2Hkv)*Dh]
            heads = qkv.reshape(b, n_h + 2 * n_kv_h, dh)
            be.rope(heads[:, :n_h], cos, sin, out=q)
            be.rope(heads[:, n_h:n_h + n_kv_h], cos, sin, out=k_new)
            o = np.empty((b, n_q), np.float32)
            for r, cache in enumerate(caches):
                p = int(pos[r])
                cache.k[i, :, p] = k_new[r]
                cache.v[i, :, p] = heads[r, n_h + n_kv_h:]
                be.attention(q[r][:, None], cache.k[i, :, :p + 1], cache.v[i, :, :p + 1], p, scale=None,
                             out=o[r].reshape(n_h, 1, dh))
            h += be.linear(o, ly.w_o)
            self._mlp(h, ly)
        for cache in caches:
            cache.length += 1
        return be.linear(be.rms_norm(h, cfg.rms_eps), self.lm_head)  # [B, V]

    def decode(self, token_id: int, cache: KVCache):  # -> [V]
        """One step for one token: `forward(embed([token_id]), cache)` with fewer, cheaper
        NumPy calls (preallocated rows, scalar norms, no transposes); in Pyodide a step is
        bound by calls, not arithmetic. Returns a new logits array."""
        cfg, be, buf = self.config, self.backend, self._buffers
        if not 0 <= token_id < cfg.vocab_size:
            raise ValueError(f"token id out of range [0, {cfg.vocab_size}): {token_id}")
        pos = cache.length
        if pos + 1 > cache.capacity:
            raise ValueError(f"sequence of {pos + 1} positions exceeds the KV cache capacity {cache.capacity} (lm.max_seq_len)")
        n_h, n_kv_h, dh = cfg.n_heads, cfg.n_kv_heads, cfg.head_dim
        n_q, n_kv = n_h * dh, n_kv_h * dh
        cos, sin = self.cos[pos], self.sin_signed[pos]  # [Dh]
        h, a, d, g = buf.h, buf.a, buf.d, buf.g
        h[0] = self.embed_tokens[token_id]
        inv_d, eps = 1.0 / cfg.d_model, cfg.rms_eps
        for i, ly in enumerate(self.layers):
            np.multiply(h, _inv_rms(h, inv_d, eps), out=a)  # rms_norm(h)
            qkv = be.linear(a, ly.w_qkv, ly.b_qkv, out=buf.qkv)[0]  # [(H+2Hkv)*Dh]
            # NumPy here: for one row its 4 calls (~7 us in Node) beat the kernel's checked call (~20 us)
            qk = K.rope_swapped(qkv[:n_q + n_kv].reshape(n_h + n_kv_h, dh), cos, sin)  # [H+Hkv, Dh]
            k_all, v_all = cache.k[i, :, :pos + 1], cache.v[i, :, :pos + 1]  # [Hkv, P, Dh] views
            k_all[:, pos] = qk[n_h:]
            v_all[:, pos] = qkv[n_q + n_kv:].reshape(n_kv_h, dh)
            be.attention(qk[:n_h, None], k_all, v_all, pos, scale=None, out=buf.o.reshape(n_h, 1, dh))  # [H, 1, Dh]
            h += be.linear(buf.o, ly.w_o, out=d)
            np.multiply(h, _inv_rms(h, inv_d, eps), out=a)
            be.swiglu(be.linear(a, ly.w_gate_up, out=buf.gu), out=g)  # silu(gate) * up
            h += be.linear(g, ly.w_down, out=d)
        cache.length = pos + 1
        np.multiply(h, _inv_rms(h, inv_d, eps), out=a)
        return be.linear(a, self.lm_head, out=buf.logits)[0].copy()
