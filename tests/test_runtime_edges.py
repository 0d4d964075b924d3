"""Edges of the runtime a user reaches without trying: photos with an EXIF orientation,
16-bit images, stop strings, characters cut by max_tokens, bad prompts and options, logit
rows with no token, damaged weights files, and one model used from two threads."""

import json
import struct
import threading
from pathlib import Path

import numpy as np
import pytest

from tiny_vlm import FastVLM, ImageProcessor
from tiny_vlm.testing import random_model, tiny_config
from tiny_vlm.weights import WeightsError, load_weights

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "models" / "tiny-vlm-emoji"
PROMPT = "What is in this image?"


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return FastVLM.load(random_model(tmp_path_factory.mktemp("tiny"), seed=0))


def image():
    return np.random.default_rng(7).integers(0, 256, (48, 80, 3), dtype=np.uint8)


class Script:
    """A sampler that answers with fixed token ids, then the end token."""

    def __init__(self, ids, eos):
        self.ids, self.eos, self.n = list(ids), eos, 0

    def __call__(self, logits):
        self.n += 1
        return self.ids[self.n - 1] if self.n <= len(self.ids) else self.eos


def scripted(model, text, **options):
    s = model.session(image(), PROMPT, max_tokens=options.pop("max_tokens", 32), **options)
    s.sampler = Script(model.tokenizer.encode(text, allow_special=False), model.tokenizer.token_to_id("<|im_end|>"))
    streamed = ""
    while not s.done:
        streamed += s.step()
    return s, streamed


# ------------------------------------------------------------------ images


def test_exif_orientation_is_applied_like_a_browser():
    Image = pytest.importorskip("PIL.Image", reason="PIL input path")
    upright = np.random.default_rng(1).integers(0, 256, (40, 60, 3), dtype=np.uint8)
    stored = Image.fromarray(upright).transpose(Image.Transpose.ROTATE_90)  # what a phone held sideways writes
    stored.getexif()[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    proc = ImageProcessor(tiny_config().vision)
    np.testing.assert_array_equal(proc(stored), proc(upright))
    assert not np.array_equal(proc(Image.fromarray(np.asarray(stored))), proc(upright))  # without the tag: sideways


def test_16_bit_grayscale_is_scaled_not_clipped(tmp_path):
    Image = pytest.importorskip("PIL.Image", reason="PIL input path")
    gray = np.random.default_rng(2).integers(0, 256, (32, 32), dtype=np.uint8)
    Image.fromarray(gray.astype(np.uint16) * 257).save(tmp_path / "wide.png")  # the same picture at 16 bits
    with Image.open(tmp_path / "wide.png") as wide:
        assert wide.mode in ("I;16", "I")  # what Pillow makes of a 16-bit PNG
        proc = ImageProcessor(tiny_config().vision)
        np.testing.assert_array_equal(proc(wide), proc(np.repeat(gray[:, :, None], 3, axis=2)))


# ------------------------------------------------------------------ text


def test_stop_strings_cut_at_the_earliest_match_whatever_their_order(model):
    for stop in (("ENDX", "THE END"), ("THE END", "ENDX"), ("END", "THE END"), ("THE END", "END")):
        s, streamed = scripted(model, "a dog. THE END and more", stop=stop)
        assert (s.text, streamed, s.reason) == ("a dog. ", "a dog. ", "stop"), stop


def test_a_character_cut_by_max_tokens_is_dropped_not_replaced(model):
    ids = model.tokenizer.encode("a \U0001F34E", allow_special=False)  # the apple emoji: 4 UTF-8 bytes
    cut = next(k for k in range(1, len(ids)) if model.tokenizer.decode(ids[:k]).endswith("\ufffd"))
    s, streamed = scripted(model, "a \U0001F34E", max_tokens=cut)
    assert s.reason == "length" and s.text == streamed == "a "
    s, streamed = scripted(model, "a \U0001F34E")
    assert s.reason == "eos" and s.text == streamed == "a \U0001F34E"


def test_prompt_and_option_errors_come_before_any_work(model):
    with pytest.raises(ValueError, match="prompt is empty"):
        model.session(image(), "   ")
    with pytest.raises(ValueError, match="leaves no room to generate"):
        model.session(image(), "dog " * 200)  # at construction: no image was encoded for it
    with pytest.raises(ValueError, match="seed must be an int >= 0"):
        model.session(image(), PROMPT, temperature=1.0, seed=-1)
    assert model.generate(image(), PROMPT, max_tokens=4, stop=None) == model.generate(image(), PROMPT, max_tokens=4)


def test_a_failed_prefill_keeps_the_image_for_a_retry(model, monkeypatch):
    s = model.session(image(), PROMPT, max_tokens=3)
    calls = []

    def flaky(pixels):
        calls.append(1)
        if len(calls) == 1:
            raise MemoryError("out of memory (once)")
        return FastVLM.encode_image(model, pixels)
    monkeypatch.setattr(model, "encode_image", flaky)
    with pytest.raises(MemoryError):
        s.step()
    while not s.done:
        s.step()
    assert len(calls) == 2 and s.text == model.generate(image(), PROMPT, max_tokens=3)


def test_logit_rows_without_a_token_are_never_sampled(tmp_path):
    n_tokens = tiny_config().lm.vocab_size  # the test tokenizer's size
    m = FastVLM.load(random_model(tmp_path, config=tiny_config(vocab_size=n_tokens + 64)))
    assert m.invalid_ids is not None and m.invalid_ids[n_tokens:].all() and not m.invalid_ids[:n_tokens].any()
    for seed in range(12):  # near-uniform sampling: 64 of the rows have no token
        s = m.session(image(), PROMPT, max_tokens=12, temperature=100.0, seed=seed)
        while not s.done:
            s.step()
        assert all(i < n_tokens for i in s.token_ids)


# ------------------------------------------------------------------ weights files


def rewrite(path, edit):
    """Let `edit(header, data)` change a weights file's JSON header and/or tensor bytes."""
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header, data = json.loads(raw[8:8 + n]), bytearray(raw[8 + n:])
    edit(header, data)
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + bytes(data))


def test_nan_in_a_weights_file_is_an_error_naming_the_tensor(tmp_path):
    for quant, name in (("f32", "lm.norm.weight"), ("int8", "lm.embed_tokens.weight_scale")):
        path = random_model(tmp_path / quant, quant=quant) / "model.safetensors"

        def poison(header, data, name=name):
            begin = header[name]["data_offsets"][0]
            data[begin:begin + 4] = struct.pack("<f", float("nan"))
        rewrite(path, poison)
        with pytest.raises(WeightsError, match=f"tensor {name}: holds NaN"):
            load_weights(path)


@pytest.mark.parametrize("field, value", [("n_layers", 2.0), ("n_heads", "4"), ("max_seq_len", True)])
def test_a_config_number_of_the_wrong_type_is_a_weights_error(tmp_path, field, value):
    path = random_model(tmp_path) / "model.safetensors"

    def edit(header, data):
        config = json.loads(header["__metadata__"]["config"])
        config["lm"][field] = value
        header["__metadata__"]["config"] = json.dumps(config)
    rewrite(path, edit)
    with pytest.raises(WeightsError, match=f"lm.{field}: must be an int"):
        load_weights(path)


# ------------------------------------------------------------------ threads


def test_one_model_serves_two_threads_with_the_answers_of_one():
    if not (SHIPPED / "model.safetensors").is_file():
        pytest.skip(f"{SHIPPED} is not there (the shipped model)")
    m = FastVLM.load(SHIPPED)
    rng = np.random.default_rng(3)
    frames = [rng.integers(0, 256, (224, 224, 3), dtype=np.uint8) for _ in range(2)]
    expected = [m.generate(f, "Describe this image.") for f in frames]
    got = [[], []]

    def work(k):
        for _ in range(6):
            got[k].append(m.generate(frames[k], "Describe this image."))
    threads = [threading.Thread(target=work, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == [[expected[0]] * 6, [expected[1]] * 6]
