"""Decoder: parity with transformers' Qwen2, prefill of T == T steps, converter round trip."""

import numpy as np
import pytest

from tiny_vlm.config import LMConfig
from tiny_vlm.kv_cache import KVCache
from tiny_vlm.lm import LanguageModel

LM = LMConfig(vocab_size=97, d_model=64, n_layers=2, n_heads=4, n_kv_heads=2, head_dim=16, d_ffn=96, max_seq_len=64,
              rope_theta=1_000_000.0, rms_eps=1e-6, tie_embeddings=False)


def _random_lm_tensors(config, seed=0):
    rng = np.random.default_rng(seed)
    d, q, kv = config.d_model, config.n_heads * config.head_dim, config.n_kv_heads * config.head_dim
    t = {"lm.embed_tokens.weight": rng.standard_normal((config.vocab_size, d)), "lm.norm.weight": 1 + 0.1 * rng.standard_normal(d)}
    if not config.tie_embeddings:
        t["lm.lm_head.weight"] = rng.standard_normal((config.vocab_size, d)) / np.sqrt(d)
    for i in range(config.n_layers):
        p = f"lm.layers.{i}"
        for name, shape in [("self_attn.q_proj.weight", (q, d)), ("self_attn.k_proj.weight", (kv, d)),
                            ("self_attn.v_proj.weight", (kv, d)), ("self_attn.o_proj.weight", (d, q)),
                            ("mlp.gate_proj.weight", (config.d_ffn, d)), ("mlp.up_proj.weight", (config.d_ffn, d)),
                            ("mlp.down_proj.weight", (d, config.d_ffn))]:
            t[f"{p}.{name}"] = rng.standard_normal(shape) / np.sqrt(shape[1])
        for name, n in [("self_attn.q_proj.bias", q), ("self_attn.k_proj.bias", kv), ("self_attn.v_proj.bias", kv)]:
            t[f"{p}.{name}"] = 0.5 * rng.standard_normal(n)
        t[f"{p}.input_layernorm.weight"] = 1 + 0.1 * rng.standard_normal(d)
        t[f"{p}.post_attention_layernorm.weight"] = 1 + 0.1 * rng.standard_normal(d)
    return {k: np.asarray(v, dtype=np.float32) for k, v in t.items()}


def test_prefill_equals_steps():
    lm = LanguageModel(LM, _random_lm_tensors(LM))
    ids = np.random.default_rng(1).integers(0, LM.vocab_size, 12)
    full = lm.forward(lm.embed(ids), KVCache(LM), all_logits=True)  # [T, V]
    cache = KVCache(LM)
    steps = np.stack([lm.forward(lm.embed([i]), cache) for i in ids])
    np.testing.assert_allclose(steps, full, rtol=1e-5, atol=1e-5 * np.abs(full).max())
    # mixed: prefill 5 then 7 steps, and chunked prefill
    cache = KVCache(LM)
    part = [lm.forward(lm.embed(ids[:5]), cache, all_logits=True)] + [lm.forward(lm.embed(ids[5:9]), cache, all_logits=True)]
    part = np.concatenate(part + [lm.forward(lm.embed([i]), cache)[None] for i in ids[9:]])
    np.testing.assert_allclose(part, full, rtol=1e-5, atol=1e-5 * np.abs(full).max())
    assert cache.length == len(ids)


def test_decode_equals_forward():
    """decode(id) (the one-token fast path: folded norms, pinned rows) == forward(embed([id]))."""
    lm = LanguageModel(LM, _random_lm_tensors(LM, seed=3))
    ids = np.random.default_rng(4).integers(0, LM.vocab_size, 10)
    ref, fast = KVCache(LM), KVCache(LM)
    lm.forward(lm.embed(ids[:4]), ref)
    lm.forward(lm.embed(ids[:4]), fast)
    for i in ids[4:]:
        a, b = lm.forward(lm.embed([i]), ref), lm.decode(int(i), fast)
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-5 * np.abs(a).max())
    assert fast.length == ref.length == len(ids)
    np.testing.assert_allclose(fast.k, ref.k, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(fast.v, ref.v, rtol=1e-5, atol=1e-5)
    first = lm.decode(1, fast)
    lm.decode(2, fast)
    assert not np.shares_memory(first, lm.decode(3, fast))  # each step's logits are its own array
    with pytest.raises(ValueError, match="token id out of range"):
        lm.decode(LM.vocab_size, fast)


def test_cache_overflow_is_an_error():
    lm = LanguageModel(LM, _random_lm_tensors(LM))
    cache = KVCache(LM)
    lm.forward(lm.embed(np.zeros(LM.max_seq_len, dtype=int)), cache)
    with pytest.raises(ValueError, match="exceeds the KV cache capacity 64"):
        lm.forward(lm.embed([1]), cache)
    with pytest.raises(ValueError, match="exceeds the KV cache capacity 64"):
        lm.decode(1, cache)


@pytest.mark.parametrize("tie", [False, True])
def test_parity_with_transformers_qwen2(tie):
    torch = pytest.importorskip("torch", reason="transformers parity needs torch")
    transformers = pytest.importorskip("transformers", reason="transformers Qwen2 is the reference decoder")
    from tiny_vlm.convert.qwen2 import from_hf_qwen2, lm_config_from_hf

    torch.manual_seed(0)
    hf_cfg = transformers.Qwen2Config(vocab_size=97, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                                      rope_parameters={"rope_type": "default", "rope_theta": 1_000_000.0},
                                      rms_norm_eps=1e-6, tie_word_embeddings=tie, attn_implementation="eager")
    model = transformers.Qwen2ForCausalLM(hf_cfg).float().eval()
    with torch.no_grad():  # HF inits biases to 0 and norms to 1: make them matter
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.copy_(0.5 * torch.randn_like(p))
            elif "norm" in name:
                p.copy_(1 + 0.1 * torch.randn_like(p))
            else:
                p.copy_(torch.randn_like(p) / p.shape[-1] ** 0.5)
    config = lm_config_from_hf(hf_cfg.to_dict(), max_seq_len=64)
    assert config.tie_embeddings == tie and config.rope_theta == 1e6
    lm = LanguageModel(config, from_hf_qwen2(model.state_dict(), config))

    ids = np.random.default_rng(2).integers(0, 97, 20)
    with torch.no_grad():
        ref = model(torch.from_numpy(ids)[None]).logits[0].numpy()  # [T, V]
    tol = 1e-4 * np.abs(ref).max()
    np.testing.assert_allclose(lm.forward(lm.embed(ids), KVCache(config), all_logits=True), ref, rtol=1e-4, atol=tol)
    cache = KVCache(config)
    steps = np.stack([lm.forward(lm.embed([i]), cache) for i in ids])
    np.testing.assert_allclose(steps, ref, rtol=1e-4, atol=tol)
