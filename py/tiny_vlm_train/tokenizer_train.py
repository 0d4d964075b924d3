"""Train the byte-level BPE tokenizer on the prompt/answer corpus -> tokenizer.json.

Qwen2-style: split regex, then byte-level mapping without its own regex, ByteLevel
decoder; special tokens <|endoftext|>, <|im_start|>, <|im_end|>.
"""

from __future__ import annotations

import numpy as np
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

from .grammar import COUNT_TEMPLATES, DESCRIBE_PROMPTS, NUMBER_WORDS, PRESENCE_TEMPLATES, a_an_name, describe

SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
SPLIT_REGEX = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""


def corpus(labels: list[dict], n_descriptions: int = 20000, seed: int = 0):
    """Every prompt form for every class, number words, and sampled descriptions."""
    rng = np.random.default_rng(seed)
    for _ in range(100):  # the chat template words, so they merge
        yield "user\nassistant\n" + " ".join(NUMBER_WORDS) + " yes no nothing"
    yield from DESCRIBE_PROMPTS
    for l in labels:
        for t in COUNT_TEMPLATES:
            yield t.format(plural=l["plural"])
        for t in PRESENCE_TEMPLATES:
            yield a_an_name(t, l)
    for _ in range(n_descriptions):
        n = int(rng.integers(1, 5))
        objs = np.stack([rng.integers(len(labels), size=n), rng.uniform(0, 1, n)], 1)
        yield describe(objs, labels)


def train_tokenizer(labels: list[dict], vocab_size: int = 1024) -> Tokenizer:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(SPLIT_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus(labels), trainer=trainer)
    return tok
