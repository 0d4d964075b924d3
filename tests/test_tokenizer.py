"""Tokenizer: parity with HF `tokenizers`, round trips, incremental UTF-8, regex vs re."""

import json
import sys
import unicodedata

import numpy as np
import pytest

from tiny_vlm.testing import tiny_tokenizer_json
from tiny_vlm.tokenizer import QWEN2_PATTERN, IncrementalDecoder, Tokenizer, TokenizerError, compile_pattern

CORPUS = [
    "Hello, world! How's it going? I'll say we've done it.",
    "Describe this image.\nWhat objects are visible?\r\n\n  Two   spaces\tand tabs  ",
    "Crème brûlée, naïve café, Ångström, São Paulo, Łódź.",
    "e\u0301 combining: a\u0308o\u0302u\u0323\u0307 and Zalgo z\u0336\u0335a\u0337",
    "東京は日本の首都です。你好，世界！한국어 텍스트.",
    "emoji 🐶🍎🍎🚗 family 👨‍👩‍👧‍👦 flag 🇫🇷 skin 👍🏽 heart ❤️",
    "numbers 12345 3.14159 1,000,000 ٣٤٥ ⅷ ½",
    "code: def f(x): return x**2  # ok\n\n\n",
    "   leading spaces and trailing   ",
    "MiXeD CaSe DON'T You'RE THEY'LL",
    "",
    "\n",
    "a",
]

TRAIN_TEXT = CORPUS * 3 + ["The quick brown fox jumps over the lazy dog. " * 5, "🍎 apple 🍌 banana 🐱 cat 東京 日本"]


@pytest.fixture(scope="module")
def hf_pair(tmp_path_factory):
    tokenizers = pytest.importorskip("tokenizers", reason="HF tokenizers is the reference for parity")
    from tokenizers import Regex, decoders, models, normalizers, pre_tokenizers, trainers

    tok = tokenizers.Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=600, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(TRAIN_TEXT, trainer)
    path = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    tok.save(str(path))
    return tok, path


def test_matches_hf_tokenizers(hf_pair):
    ref, path = hf_pair
    ours = Tokenizer.from_file(path)
    assert ours.vocab_size == ref.get_vocab_size()
    for text in CORPUS + ["<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"]:
        expected = ref.encode(text).ids
        assert ours.encode(text) == expected, text
        assert ours.decode(expected) == ref.decode(expected, skip_special_tokens=False), text


def test_merges_as_strings_and_lists(hf_pair):
    _, path = hf_pair
    data = json.loads(path.read_text(encoding="utf-8"))
    as_lists = [m.split(" ") if isinstance(m, str) else m for m in data["model"]["merges"]]
    as_strings = [" ".join(m) for m in as_lists]
    data["model"]["merges"] = as_lists
    a = Tokenizer.from_json(json.dumps(data))
    data["model"]["merges"] = as_strings
    b = Tokenizer.from_json(json.dumps(data))
    for text in CORPUS:
        assert a.encode(text) == b.encode(text)


@pytest.mark.parametrize("use_regex", [True, False])
def test_round_trip_and_incremental(hf_pair, use_regex):
    if use_regex:
        pytest.importorskip("regex", reason="the regex module path")
    tok = Tokenizer.from_file(hf_pair[1], use_regex=use_regex)
    for text in CORPUS:
        ids = tok.encode(text)
        text = unicodedata.normalize("NFC", text)  # the tokenizer normalizes to NFC
        assert tok.decode(ids) == text
        dec = IncrementalDecoder(tok)
        pieces = [dec.push(i) for i in ids] + [dec.flush()]
        assert "".join(pieces) == text
        for p in pieces:
            assert "\ufffd" not in p  # never a broken character
            p.encode("utf-8")


def test_regex_and_re_split_identically():
    pytest.importorskip("regex", reason="compares the regex module with the re fallback")
    with_regex = compile_pattern(QWEN2_PATTERN, use_regex=True)
    with_re = compile_pattern(QWEN2_PATTERN, use_regex=False)
    for text in CORPUS + ["\x1c\x1d odd separators \u00a0nbsp\u3000ideographic"]:
        assert with_regex.findall(text) == with_re.findall(text), text


def test_re_split_ascii_form_splits_like_the_unicode_form(monkeypatch):
    """The `re` fallback builds its Unicode classes only for non-ASCII text; on ASCII text its
    ASCII classes split exactly as the Unicode ones (random ASCII, contractions, digits, runs
    of whitespace and punctuation)."""
    from tiny_vlm import tokenizer as T

    T._unicode_re.cache_clear()
    built = []
    real = T._class_ranges
    monkeypatch.setattr(T, "_class_ranges", lambda cats: built.append(cats) or real(cats))
    split = compile_pattern(QWEN2_PATTERN, use_regex=False)
    assert split.findall("Describe this image. How many apples (3)?") == [
        "Describe", " this", " image", ".", " How", " many", " apples", " (", "3", ")?"]
    assert built == []  # nothing Unicode-wide built for ASCII text
    full = T._unicode_re(QWEN2_PATTERN)
    assert sorted(built) == ["L", "N"]
    rng = np.random.default_rng(0)
    alphabet = list("aZ09 '\t\n\r.,!?-_") + ["'s", "'LL", "'re", "  ", "\r\n", "12345"]
    texts = ["".join(rng.choice(alphabet, size=int(rng.integers(1, 40)))) for _ in range(400)]
    texts += ["".join(chr(c) for c in rng.integers(0, 128, 60)) for _ in range(200)]
    for text in texts:
        assert split.findall(text) == full.findall(text), repr(text)
    assert split.findall("caf\u00e9 \u00bd") == ["caf\u00e9", " ", "\u00bd"]  # non-ASCII: Unicode classes (\u00bd is No, a number)
    T._unicode_re.cache_clear()


def test_without_regex_module(monkeypatch):
    monkeypatch.setitem(sys.modules, "regex", None)  # import regex -> ImportError
    tok = Tokenizer.from_json(tiny_tokenizer_json())
    ref = Tokenizer.from_json(tiny_tokenizer_json(), use_regex=False)
    for text in CORPUS:
        assert tok.encode(text) == ref.encode(text)
        assert tok.decode(tok.encode(text)) == unicodedata.normalize("NFC", text)


def test_special_tokens_and_api():
    tok = Tokenizer.from_json(tiny_tokenizer_json())
    im_start = tok.token_to_id("<|im_start|>")
    assert im_start is not None and tok.token_to_id("no such token") is None
    assert tok.encode("<|im_start|>hi")[0] == im_start
    assert im_start not in tok.encode("<|im_start|>hi", allow_special=False)
    assert tok.decode(tok.encode("<|im_start|>x<|im_end|>"), skip_special=True) == "x"
    with pytest.raises(TokenizerError, match="not valid JSON"):
        Tokenizer.from_json("{nope")
    with pytest.raises(TokenizerError, match="token id 99999"):
        tok.decode([99999])


def test_incremental_decoder_splits_multibyte():
    tok = Tokenizer.from_json(tiny_tokenizer_json())
    text = "🐶é東"
    ids = tok.encode(text)
    assert len(ids) == len(text.encode("utf-8"))  # tiny vocab has no merges for these: one id per byte
    dec = IncrementalDecoder(tok)
    out = [dec.push(i) for i in ids]
    assert out[:3] == ["", "", ""] and out[3] == "🐶"
    assert "".join(out) + dec.flush() == text


def test_tiny_tokenizer_json_is_valid_for_hf():
    tokenizers = pytest.importorskip("tokenizers", reason="HF tokenizers is the reference")
    text = tiny_tokenizer_json()
    ref, ours = tokenizers.Tokenizer.from_str(text), Tokenizer.from_json(text)
    for s in CORPUS + ["<|im_start|>user\nDescribe this image.<|im_end|>\n"]:
        assert ours.encode(s) == ref.encode(s).ids, s
