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
    # the last token is the byte 0xF1, the lead of a 4-byte character that max_tokens cut off:
    # the text drops it (decode() of all ids would show U+FFFD for it)
    assert model.tokenizer.token_bytes(GOLDEN[-1]) == b"\xf1"
    assert s.text == model.tokenizer.decode(GOLDEN[:-1]) and model.tokenizer.decode(GOLDEN).endswith("\ufffd")


def test_golden_ids_independent(model):
    """timm FastViT (inference mode) + torch MLP + transformers Qwen2, fed our weights."""
    torch = pytest.importorskip("torch", reason="independent reference path")
    pytest.importorskip("transformers", reason="independent reference path")
    pytest.importorskip("timm", reason="independent reference path")
    from tiny_vlm.convert.torch_reference import ImageEncoder, hf_qwen2, timm_fastvit

    cfg = tiny_config()
    tensors = random_tensors(cfg, seed=0)
    encoder = ImageEncoder(timm_fastvit(cfg.vision, tensors), tensors).eval()
    pixels = model.processor(image())
    with torch.no_grad():
        emb = encoder(torch.from_numpy(pixels).permute(2, 0, 1)[None])  # [N_img, D]
    np.testing.assert_allclose(emb.numpy(), model.encode_image(pixels), rtol=1e-4, atol=1e-4 * float(emb.abs().max()))

    hf = hf_qwen2(cfg.lm, tensors)
    before, after = model.prompt_ids(PROMPT)
    embed = hf.model.embed_tokens.weight.detach()
    seq = torch.cat([embed[before], emb, embed[after]])[None]
    ids = []
    with torch.no_grad():
        for _ in range(len(GOLDEN)):  # no KV cache: the whole sequence every step
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
    # a token is returned before the decoder pass that feeds it back; the last one never is
    assert s.cache.length == s.n_prompt_tokens + 4
    assert set(s.stats) >= {"preprocess_ms", "encode_ms", "prefill_ms", "ttft_ms", "decode_ms_per_token", "tokens"}
    assert "".join(model.stream(image(), PROMPT, max_tokens=5)) == s.text

    s = model.session(image(), PROMPT, max_tokens=5)
    s.step()
    assert s.cache.length == s.n_prompt_tokens and len(s.token_ids) == 1
    s.step()
    assert s.cache.length == s.n_prompt_tokens + 1 and len(s.token_ids) == 2

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


def test_enlarging_is_bilinear_with_half_pixel_centres_as_in_torch():
    torch = pytest.importorskip("torch", reason="independent reference for the bilinear path")
    cfg = tiny_config().vision  # S = 64, mean 0.5, std 0.25
    small = np.random.default_rng(5).integers(0, 256, (20, 20, 3), dtype=np.uint8)  # a small upload: 20 -> 64
    ref = torch.nn.functional.interpolate(torch.from_numpy(small.astype(np.float64)).permute(2, 0, 1)[None], size=(64, 64),
                                          mode="bilinear", align_corners=False, antialias=False)[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(ImageProcessor(cfg)(small), (ref / 255 - 0.5) / 0.25, atol=1e-4)


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
    def first_logits(m):
        s = m.session(image(), PROMPT, max_tokens=4)
        s.prefill()
        return np.asarray(s._logits, np.float64).ravel()
    exact = first_logits(FastVLM.load(random_model(tmp_path / "f32", quant="f32")))
    # the same random weights, stored smaller: the logits stay close to float32's, closer the more bits
    for scheme, min_corr in (("bf16", 0.9999), ("int8", 0.999), ("int4", 0.9)):
        m = FastVLM.load(random_model(tmp_path / scheme, quant=scheme))
        assert m.quant["scheme"] == scheme
        assert np.corrcoef(exact, first_logits(m))[0, 1] > min_corr, scheme
        s = m.session(image(), PROMPT, max_tokens=4)
        while not s.done:
            s.step()
        assert len(s.token_ids) == 4


def test_kv_cache_shape():
    c = KVCache(tiny_config().lm)
    assert c.k.shape == (2, 2, 128, 16) and c.capacity == 128 and c.nbytes() == 2 * 2 * 2 * 128 * 16 * 4


def test_area_resize_at_a_fractional_factor_is_the_exact_box_mean():
    """224 -> 128 (factor 1.75): every output pixel is the mean of its input interval, partial
    pixels weighted by their overlap; the reference integrates each interval in float64."""
    from tiny_vlm.image import _resize_axis

    rng = np.random.default_rng(3)
    x = rng.random((224, 5)).astype(np.float32)
    got = _resize_axis(x, 128, 0)
    r = 224 / 128
    want = np.zeros((128, 5))
    for o in range(128):
        a, b = o * r, (o + 1) * r
        for i in range(int(a), min(224, int(np.ceil(b)))):
            want[o] += x[i] * (min(b, i + 1) - max(a, i))
        want[o] /= r
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    ones = _resize_axis(np.ones((1000, 2), np.float32), 3, 0)  # weights of every output sum to 1
    np.testing.assert_allclose(ones, 1.0, atol=1e-5)
