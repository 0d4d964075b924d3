"""End to end on a tiny random model written by the real writer: golden ids, sessions, sampling, images."""

import numpy as np
import pytest

from tiny_vlm import FastVLM, ImageError, ImageProcessor, Sampler
from tiny_vlm.kv_cache import KVCache
from tiny_vlm.testing import random_model, random_tensors, tiny_config

PROMPT = "What is in this image?"
# Greedy ids of random_model(seed=0) on IMAGE with PROMPT. Checked against an independent
# path (timm FastViT + torch projector + transformers Qwen2) by test_golden_ids_independent.
GOLDEN = [151, 151, 179, 308, 312, 216, 121, 151, 179, 179, 179, 179, 179, 179, 266, 241]


def image():
    return np.random.default_rng(7).integers(0, 256, (48, 80, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return random_model(tmp_path_factory.mktemp("tiny"), seed=0)


@pytest.fixture(scope="module")
def model(model_dir):
    return FastVLM.load(model_dir)


def test_golden_greedy(model):
    s = model.session(image(), PROMPT, max_tokens=16)
    while not s.done:
        s.step()
    assert s.token_ids == GOLDEN and s.reason == "length"
    assert s.text == model.tokenizer.decode(GOLDEN)


def test_golden_ids_independent(model):
    """timm FastViT (inference mode) + torch MLP + transformers Qwen2, fed our weights."""
    torch = pytest.importorskip("torch", reason="independent reference path")
    transformers = pytest.importorskip("transformers", reason="independent reference path")
    timm_fastvit = pytest.importorskip("timm.models.fastvit", reason="independent reference path")
    from functools import partial

    from timm.layers import LayerNorm2d

    cfg = tiny_config()
    v, t = cfg.vision, {k: torch.from_numpy(a) for k, a in random_tensors(cfg, seed=0).items()}
    tower = timm_fastvit.FastVit(layers=v.depths, embed_dims=v.widths, mlp_ratios=v.mlp_ratios, downsamples=v.downsamples,
                                 pos_embs=tuple(partial(timm_fastvit.RepConditionalPosEnc, spatial_shape=(7, 7)) if p else None
                                                for p in v.pos_embs),
                                 token_mixers=v.mixers, lkc_use_act=True, norm_layer=partial(LayerNorm2d, eps=v.norm_eps),
                                 cls_ratio=v.final_channels / v.widths[-1], inference_mode=True).eval()
    for m in tower.modules():  # timm fixes head_dim at 32; the tiny config uses v.head_dim
        if isinstance(m, timm_fastvit.Attention):
            m.head_dim, m.num_heads, m.scale = v.head_dim, m.qkv.in_features // v.head_dim, v.head_dim ** -0.5
    state = tower.state_dict()
    new = {}
    for key in state:
        ours = ("vision." + key).replace(".reparam_conv", "").replace("downsample.proj.", "downsample.")
        ours = ours.replace("token_mixer.qkv", "attn.qkv").replace("token_mixer.proj", "attn.proj")
        ours = ours.replace("se.fc1", "se.reduce").replace("se.fc2", "se.expand").replace("mlp.conv.conv", "mlp.conv")
        if key.endswith("gamma"):
            new[key] = torch.ones_like(state[key])
        elif ".mlp.conv.bn." in key:  # identity BatchNorm carrying our conv bias
            bias = t[ours.replace("mlp.conv.bn.", "mlp.conv.").rsplit(".", 1)[0] + ".bias"]
            field = key.rsplit(".", 1)[1]
            new[key] = {"weight": torch.ones_like(bias), "bias": bias, "running_mean": torch.zeros_like(bias),
                        "running_var": torch.full_like(bias, 1 - 1e-5)}.get(field, state[key])
        elif ours in t:
            new[key] = t[ours].reshape(state[key].shape)
        elif key.startswith("head."):
            new[key] = state[key]
        else:
            raise KeyError(key)
    tower.load_state_dict(new)
    pixels = model.processor(image())
    with torch.no_grad():
        feats = tower.forward_features(torch.from_numpy(pixels).permute(2, 0, 1)[None])[0]  # [C_f, g, g]
        feats = feats.permute(1, 2, 0).reshape(-1, v.d_out)
        gelu = torch.nn.GELU()
        emb = gelu(feats @ t["projector.0.weight"].T + t["projector.0.bias"]) @ t["projector.2.weight"].T + t["projector.2.bias"]
    np.testing.assert_allclose(emb.numpy(), model.encode_image(pixels), rtol=1e-4, atol=1e-4 * float(emb.abs().max()))

    lm = cfg.lm
    hf = transformers.Qwen2ForCausalLM(transformers.Qwen2Config(
        vocab_size=lm.vocab_size, hidden_size=lm.d_model, intermediate_size=lm.d_ffn, num_hidden_layers=lm.n_layers,
        num_attention_heads=lm.n_heads, num_key_value_heads=lm.n_kv_heads, max_position_embeddings=lm.max_seq_len,
        rope_parameters={"rope_type": "default", "rope_theta": lm.rope_theta}, rms_norm_eps=lm.rms_eps,
        tie_word_embeddings=lm.tie_embeddings, attn_implementation="eager")).float().eval()
    hf.load_state_dict({("model." + k[3:]): a for k, a in t.items() if k.startswith("lm.")}, strict=False)
    hf.lm_head.weight = hf.model.embed_tokens.weight
    before, after = model.prompt_ids(PROMPT)
    embed = hf.model.embed_tokens.weight.detach()
    seq = torch.cat([embed[before], emb, embed[after]])[None]
    ids = []
    with torch.no_grad():
        for _ in range(len(GOLDEN)):
            nxt = int(hf(inputs_embeds=seq).logits[0, -1].argmax())
            ids.append(nxt)
            seq = torch.cat([seq, embed[[nxt]][None]], dim=1)
    assert ids == GOLDEN


def test_deterministic_and_seeded(model, model_dir):
    again = FastVLM.load(model_dir)
    assert again.generate(image(), PROMPT, max_tokens=8) == model.generate(image(), PROMPT, max_tokens=8)

    def sampled(seed):
        s = model.session(image(), PROMPT, max_tokens=12, temperature=1.0, top_p=0.9, top_k=50, seed=seed)
        while not s.done:
            s.step()
        return s.token_ids
    assert sampled(1) == sampled(1)
    assert sampled(1) != sampled(2)


def test_session_api(model):
    s = model.session(image(), PROMPT, max_tokens=5)
    assert not s.done and s.reason is None
    s.prefill()
    assert s.stats["encode_ms"] > 0 and s.n_prompt_tokens > model.config.vision.n_tokens
    deltas = []
    while not s.done:
        deltas.append(s.step())
    assert s.reason == "length" and len(s.token_ids) == 5 and "".join(deltas) == s.text
    assert s.step() == "" and s.stats["tokens"] == 5
    assert set(s.stats) >= {"preprocess_ms", "encode_ms", "prefill_ms", "ttft_ms", "decode_ms_per_token", "tokens"}
    assert "".join(model.stream(image(), PROMPT, max_tokens=5)) == s.text

    s = model.session(image(), PROMPT)
    s.step()
    s.stop()
    assert s.done and s.reason == "stopped" and s.step() == ""


def test_stop_strings_and_eos(model):
    full = model.generate(image(), PROMPT, max_tokens=16)
    stop = full[6:9]  # a stop string somewhere inside the greedy answer
    s = model.session(image(), PROMPT, max_tokens=16, stop=(stop,))
    out = ""
    while not s.done:
        out += s.step()
    assert s.reason == "stop" and out == s.text == full[:full.index(stop)]

    class ForceEos:  # a sampler that picks <|im_end|> on the third step
        def __init__(self):
            self.n = 0

        def __call__(self, logits):
            self.n += 1
            return model.tokenizer.token_to_id("<|im_end|>") if self.n == 3 else int(np.argmax(logits))
    s = model.session(image(), PROMPT, max_tokens=16)
    s.sampler = ForceEos()
    while not s.done:
        s.step()
    assert s.reason == "eos" and len(s.token_ids) == 2


def test_image_inputs_agree(model):
    rgb = image()
    rgba = np.concatenate([rgb, np.full(rgb.shape[:2] + (1,), 255, np.uint8)], axis=-1)
    proc = model.processor
    a = proc(rgb)
    np.testing.assert_array_equal(a, proc(rgba))
    np.testing.assert_array_equal(a, proc(rgba.tobytes(), width=80, height=48))
    pil = pytest.importorskip("PIL.Image", reason="PIL input path")
    np.testing.assert_array_equal(a, proc(pil.fromarray(rgb)))


def test_image_errors(model):
    proc = model.processor
    with pytest.raises(ImageError, match="RGBA byte length 10 != width 2 \\* height 2 \\* 4 = 16"):
        proc(bytes(10), width=2, height=2)
    with pytest.raises(ImageError, match="need width and height"):
        proc(bytes(16))
    with pytest.raises(ImageError, match="dtype float32 is not uint8"):
        proc(np.zeros((4, 4, 3), np.float32))
    with pytest.raises(ImageError, match=r"shape \(4, 4\) is not"):
        proc(np.zeros((4, 4), np.uint8))
    with pytest.raises(ImageError, match="got str"):
        proc("cat.png")


def test_resize_crop_and_normalize():
    cfg = tiny_config().vision  # S = 64, mean 0.5, std 0.25
    proc = ImageProcessor(cfg)
    flat = np.full((100, 300, 3), 128, np.uint8)
    np.testing.assert_allclose(proc(flat), (128 / 255 - 0.5) / 0.25, atol=1e-5)
    # integer factor: area resize is the block mean of the center crop
    img = np.random.default_rng(0).integers(0, 256, (128, 192, 3), dtype=np.uint8)
    crop = img[:, 32:160].astype(np.float64)
    block = crop.reshape(64, 2, 64, 2, 3).mean(axis=(1, 3))
    np.testing.assert_allclose(proc(img), (block / 255 - 0.5) / 0.25, atol=1e-4)
    up = proc(img[:32, :32])  # enlarge 2x: bilinear, output mean stays close to input mean
    assert up.shape == (64, 64, 3) and abs(up.mean() - ((img[:32, :32] / 255 - 0.5) / 0.25).mean()) < 0.05


def test_sampler():
    logits = np.array([0.0, 3.0, 1.0, 2.9], np.float32)
    assert Sampler()(logits) == 1
    assert all(Sampler(1.0, top_k=1, seed=s)(logits) == 1 for s in range(5))
    assert all(Sampler(1.0, top_p=0.01, seed=s)(logits) == 1 for s in range(5))
    picks = [Sampler(1.0, top_k=2, seed=s)(logits) for s in range(200)]
    assert set(picks) == {1, 3}
    with pytest.raises(ValueError, match="top_p"):
        Sampler(1.0, top_p=0)
    with pytest.raises(ValueError, match="temperature"):
        Sampler(-1)


def test_quantized_model_loads_and_runs(tmp_path):
    for scheme in ("int8", "int4", "bf16"):
        m = FastVLM.load(random_model(tmp_path / scheme, quant=scheme))
        assert m.quant["scheme"] == scheme
        s = m.session(image(), PROMPT, max_tokens=4)
        while not s.done:
            s.step()
        assert len(s.token_ids) == 4


def test_kv_cache_shape():
    c = KVCache(tiny_config().lm)
    assert c.k.shape == (2, 2, 128, 16) and c.capacity == 128 and c.nbytes() == 2 * 2 * 2 * 128 * 16 * 4
