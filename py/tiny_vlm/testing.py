"""Tiny random models for tests and for building the web app before a trained model exists.

    from tiny_vlm.testing import random_model
    path = random_model("/tmp/tiny")          # writes model.safetensors + tokenizer.json
    FastVLM.load(path).generate(rgba, width=64, height=64)   # gibberish, but runs
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np

from .config import LMConfig, ModelConfig, ProjectorConfig, VisionConfig, tensor_shapes
from .tokenizer import QWEN2_PATTERN, bytes_to_unicode, compile_pattern
from .weights import save_weights

SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
_CORPUS = ("Describe this image. What is in this image? What objects are visible? How many apples are there? "
           "Is there a dog? a dog, two apples and a car. a cat and three birds. yes no one two three four five "
           "the image shows a red car next to a green tree and the sky is blue")


def tiny_tokenizer_json(n_merges: int = 64) -> str:
    """A small byte-level BPE tokenizer.json: 256 byte tokens, BPE merges learned on a fixed text, 3 specials."""
    byte_chars = bytes_to_unicode()
    vocab = {byte_chars[b]: b for b in range(256)}
    split = compile_pattern(QWEN2_PATTERN, use_regex=False)
    words = Counter(tuple(byte_chars[b] for b in w.encode("utf-8")) for w in split.findall(_CORPUS))
    merges = []
    for _ in range(n_merges):  # plain BPE training: merge the most frequent adjacent pair
        pairs = Counter()
        for w, n in words.items():
            for pair in zip(w, w[1:]):
                pairs[pair] += n
        if not pairs:
            break
        best = max(pairs.items(), key=lambda kv: (kv[1], kv[0]))[0]
        merges.append(best)
        vocab[best[0] + best[1]] = len(vocab)
        merged = Counter()
        for w, n in words.items():
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and (w[i], w[i + 1]) == best:
                    out.append(w[i] + w[i + 1])
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            merged[tuple(out)] += n
        words = merged
    added = [{"id": len(vocab) + i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for i, t in enumerate(SPECIAL_TOKENS)]
    data = {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
        "normalizer": {"type": "NFC"},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": QWEN2_PATTERN}, "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}]},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": vocab, "merges": [[a, b] for a, b in merges]},
    }
    return json.dumps(data, ensure_ascii=False)


def tiny_config(vocab_size: int = 256 + 64 + len(SPECIAL_TOKENS), image_size: int = 64, max_seq_len: int = 128) -> ModelConfig:
    """Every feature of the architecture at toy size: repmixer + attention stages, pos. emb., final conv + SE."""
    vision = VisionConfig(image_size=image_size, depths=(1, 1, 1), widths=(8, 16, 32), mixers=("repmixer", "repmixer", "attention"),
                          mlp_ratios=(3.0, 3.0, 2.0), pos_embs=(False, False, True), downsamples=(False, True, True),
                          head_dim=16, final_channels=64, image_mean=(0.5, 0.5, 0.5), image_std=(0.25, 0.25, 0.25))
    lm = LMConfig(vocab_size=vocab_size, d_model=64, n_layers=2, n_heads=4, n_kv_heads=2, head_dim=16, d_ffn=128,
                  max_seq_len=max_seq_len)
    return ModelConfig(vision=vision, projector=ProjectorConfig(d_in=vision.d_out, d_out=lm.d_model), lm=lm, name="tiny-random")


def random_tensors(config: ModelConfig, seed: int = 0) -> dict[str, np.ndarray]:
    """Random float32 weights for every tensor of the config, scaled to keep activations O(1)."""
    rng = np.random.default_rng(seed)
    tensors = {}
    for name, shape in tensor_shapes(config).items():
        if len(shape) == 1:
            base = 1.0 if name.endswith("norm.weight") else 0.0
            tensors[name] = (base + 0.1 * rng.standard_normal(shape)).astype(np.float32)
        else:
            fan_in = int(np.prod(shape[1:]))
            tensors[name] = (rng.standard_normal(shape) / np.sqrt(fan_in)).astype(np.float32)
    return tensors


def random_model(directory, config: ModelConfig | None = None, seed: int = 0, quant: str = "f32") -> Path:
    """Write model.safetensors (tokenizer embedded too) and tokenizer.json into `directory`; return it."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    tok_json = tiny_tokenizer_json()
    config = config or tiny_config()
    save_weights(out / "model.safetensors", random_tensors(config, seed), config, quant=quant, tokenizer_json=tok_json,
                 metadata={"note": "random weights for tests; not a trained model"})
    (out / "tokenizer.json").write_text(tok_json, encoding="utf-8")
    return out
