"""Byte-level BPE from a Hugging Face tokenizer.json (GPT-2 / Qwen2 style).

    tok = Tokenizer.from_file("tokenizer.json")
    ids = tok.encode("<|im_start|>user\\nhello")   # special tokens map to their ids
    tok.decode(ids)

Pre-tokenization uses the `regex` module when it is importable and the standard `re`
module otherwise; \\p{L}, \\p{N} and \\s are then spelled out as explicit character classes
built from `unicodedata` (the first time non-ASCII text arrives: see ReSplit), so both
paths split text the same way.
"""

from __future__ import annotations

import codecs
import functools
import json
import re
import unicodedata

QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                 r"|\s*[\r\n]+|\s+(?!\S)|\s+")
GPT2_PATTERN = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
NORMALIZERS = ("NFC", "NFD", "NFKC", "NFKD")
# Unicode White_Space (what `regex` means by \s); `re` would also match \x1c-\x1f.
WHITESPACE = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_LAST_ASSIGNED = 0x40000  # above this only tags, variation selectors and private use: no L/N


class TokenizerError(ValueError):
    """The tokenizer.json is unusable, or an input cannot be tokenized; the message says which."""


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible map from the 256 byte values to printable characters."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def _class_ranges(categories: str) -> str:
    """Regex character-class body (no brackets) for code points whose category starts with one of `categories`."""
    parts, start, prev = [], None, None
    for cp in range(_LAST_ASSIGNED):
        inside = unicodedata.category(chr(cp))[0] in categories
        if inside and start is None:
            start = cp
        if not inside and start is not None:
            parts.append((start, prev))
            start = None
        prev = cp
    if start is not None:
        parts.append((start, prev))

    def esc(cp):
        return f"\\U{cp:08x}"
    return "".join(esc(a) if a == b else f"{esc(a)}-{esc(b)}" for a, b in parts)


def translate_pattern(pattern: str, letters: str, numbers: str) -> str:
    """Rewrite \\p{L}, \\p{N}, \\s, \\S for the standard `re` module (class bodies given)."""
    classes = {"\\p{L}": letters, "\\p{N}": numbers, "\\s": WHITESPACE}
    out, i, in_class = [], 0, False
    while i < len(pattern):
        hit = next((k for k in classes if pattern.startswith(k, i)), None)
        if hit:
            out.append(classes[hit] if in_class else f"[{classes[hit]}]")
            i += len(hit)
        elif pattern.startswith("\\S", i):
            if in_class:
                raise TokenizerError(r"pre-tokenizer pattern uses \S inside a character class; not supported without `regex`")
            out.append(f"[^{WHITESPACE}]")
            i += 2
        elif pattern.startswith("\\p", i) or pattern.startswith("\\P", i):
            raise TokenizerError(f"pre-tokenizer pattern uses {pattern[i:i + 6]!r}; only \\p{{L}} and \\p{{N}} are supported without `regex`")
        elif pattern[i] == "\\":
            out.append(pattern[i:i + 2])
            i += 2
        else:
            if pattern[i] == "[" and not in_class:
                in_class = True
            elif pattern[i] == "]" and in_class:
                in_class = False
            out.append(pattern[i])
            i += 1
    return "".join(out)


@functools.lru_cache(maxsize=4)
def _unicode_re(pattern: str) -> re.Pattern:
    return re.compile(translate_pattern(pattern, _class_ranges("L"), _class_ranges("N")))


class ReSplit:
    """A pre-tokenizer pattern on the standard `re` module: `findall(text)` as a compiled pattern.

    Its \\p{L} and \\p{N} classes list every code point of those categories, and finding them
    takes a pass over 262,144 code points: 0.3-0.5 s in Pyodide, most of a model load. Cut to
    ASCII (A-Za-z, 0-9) the classes give the same splits of ASCII text, since each class test
    on an ASCII character answers the same; so ASCII text (prompts, answers) uses that form,
    and the Unicode form is built the first time other text arrives (once per process).
    """

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self.ascii = re.compile(translate_pattern(pattern, "A-Za-z", "0-9"))

    def findall(self, text: str) -> list[str]:
        return (self.ascii if text.isascii() else _unicode_re(self.pattern)).findall(text)


def compile_pattern(pattern: str, use_regex: bool | None = None):
    """Compile a pre-tokenizer pattern with `regex` if available (or asked), else with `re`
    (a ReSplit); either way the result has `findall(text)`."""
    if use_regex is not False:
        try:
            import regex
            return regex.compile(pattern)
        except ImportError:
            if use_regex:
                raise
    return ReSplit(pattern)


class Tokenizer:
    """Byte-level BPE: vocab, merges, added (special) tokens, a split regex and a normalizer."""

    def __init__(self, vocab: dict[str, int], merges: list[tuple[str, str]], added_tokens: dict[str, int],
                 pattern: str = QWEN2_PATTERN, normalizer: str | None = None, ignore_merges: bool = False,
                 use_regex: bool | None = None) -> None:
        self.vocab = dict(vocab)
        self.merges = {pair: rank for rank, pair in enumerate(merges)}
        self.added_tokens = dict(added_tokens)
        self.normalizer = normalizer
        self.ignore_merges = ignore_merges
        self.id_to_token = {i: t for t, i in self.vocab.items()}
        self.id_to_token.update({i: t for t, i in self.added_tokens.items()})
        self.byte_encoder = bytes_to_unicode()
        self.byte_decoder = {c: b for b, c in self.byte_encoder.items()}
        self.split = compile_pattern(pattern, use_regex)
        self.special_split = (re.compile("(" + "|".join(re.escape(t) for t in sorted(self.added_tokens, key=len, reverse=True)) + ")")
                              if self.added_tokens else None)
        self._cache: dict[str, list[int]] = {}
        for b, ch in self.byte_encoder.items():
            if ch not in self.vocab:
                raise TokenizerError(f"vocab lacks the byte token {ch!r} (byte {b}); not a byte-level BPE")

    # ------------------------------------------------------------ loading

    @classmethod
    def from_file(cls, path, use_regex: bool | None = None) -> "Tokenizer":
        with open(path, encoding="utf-8") as f:
            return cls.from_json(f.read(), use_regex=use_regex)

    @classmethod
    def from_json(cls, text: str, use_regex: bool | None = None) -> "Tokenizer":
        """Build from tokenizer.json text (model.type BPE, ByteLevel pre-tokenizer and decoder)."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise TokenizerError(f"tokenizer.json is not valid JSON: {err}") from None
        model = data.get("model") or {}
        if model.get("type", "BPE") != "BPE":
            raise TokenizerError(f"tokenizer model type {model.get('type')!r} is not BPE")
        if model.get("byte_fallback"):
            raise TokenizerError("byte_fallback BPE (sentencepiece style) is not supported; need byte-level BPE")
        vocab = model.get("vocab")
        if not isinstance(vocab, dict):
            raise TokenizerError("tokenizer.json has no model.vocab object")
        merges = []
        for m in model.get("merges") or []:
            pair = tuple(m.split(" ")) if isinstance(m, str) else tuple(m)
            if len(pair) != 2:
                raise TokenizerError(f"merge {m!r} is not a pair")
            merges.append(pair)
        added = {t["content"]: int(t["id"]) for t in data.get("added_tokens") or []}
        return cls(vocab, merges, added, _pattern(data.get("pre_tokenizer")), _normalizer(data.get("normalizer")),
                   bool(model.get("ignore_merges", False)), use_regex)

    # ------------------------------------------------------------ queries

    @property
    def vocab_size(self) -> int:
        return max(self.id_to_token) + 1

    def token_to_id(self, token: str) -> int | None:
        if token in self.added_tokens:
            return self.added_tokens[token]
        return self.vocab.get(token)

    def id_to_piece(self, token_id: int) -> str | None:
        return self.id_to_token.get(token_id)

    # ------------------------------------------------------------ encode

    def encode(self, text: str, allow_special: bool = True) -> list[int]:
        """Text -> token ids. With allow_special, added tokens in the text map to their ids."""
        if not isinstance(text, str):
            raise TokenizerError(f"encode needs a str, got {type(text).__name__}")
        if not allow_special or self.special_split is None:
            return self._encode_ordinary(text)
        ids: list[int] = []
        for i, part in enumerate(self.special_split.split(text)):
            if i % 2:
                ids.append(self.added_tokens[part])
            elif part:
                ids.extend(self._encode_ordinary(part))
        return ids

    def _encode_ordinary(self, text: str) -> list[int]:
        if self.normalizer:
            text = unicodedata.normalize(self.normalizer, text)
        ids: list[int] = []
        for word in self.split.findall(text):
            cached = self._cache.get(word)
            if cached is None:
                cached = self._bpe("".join(self.byte_encoder[b] for b in word.encode("utf-8")))
                if len(self._cache) < 50_000:
                    self._cache[word] = cached
            ids.extend(cached)
        return ids

    def _bpe(self, word: str) -> list[int]:
        if self.ignore_merges and word in self.vocab:
            return [self.vocab[word]]
        parts = list(word)
        while len(parts) > 1:
            ranks = [self.merges.get(pair, -1) for pair in zip(parts, parts[1:])]
            best = min((r for r in ranks if r >= 0), default=-1)
            if best < 0:
                break
            first, second = next(p for p, r in zip(zip(parts, parts[1:]), ranks) if r == best)
            merged, i = [], 0
            while i < len(parts):
                if i + 1 < len(parts) and parts[i] == first and parts[i + 1] == second:
                    merged.append(first + second)
                    i += 2
                else:
                    merged.append(parts[i])
                    i += 1
            parts = merged
        try:
            return [self.vocab[p] for p in parts]
        except KeyError as err:
            raise TokenizerError(f"BPE produced {err.args[0]!r}, which is not in the vocab") from None

    # ------------------------------------------------------------ decode

    def token_bytes(self, token_id: int) -> bytes:
        """The bytes a token stands for (special tokens: their UTF-8 text)."""
        token = self.id_to_token.get(token_id)
        if token is None:
            raise TokenizerError(f"token id {token_id} is not in the vocab (size {self.vocab_size})")
        if token in self.added_tokens:
            return token.encode("utf-8")
        try:
            return bytes(self.byte_decoder[c] for c in token)
        except KeyError:
            return token.encode("utf-8")  # a vocab entry outside the byte alphabet: take it literally

    def decode(self, ids, skip_special: bool = False) -> str:
        """Token ids -> text; invalid UTF-8 becomes U+FFFD."""
        parts = [self.token_bytes(int(i)) for i in ids if not (skip_special and self.id_to_token.get(int(i)) in self.added_tokens)]
        return b"".join(parts).decode("utf-8", errors="replace")


class IncrementalDecoder:
    """Token-by-token decoding that only ever returns complete UTF-8 characters.

        dec = IncrementalDecoder(tok)
        text = "".join(dec.push(i) for i in ids) + dec.flush()   # == tok.decode(ids)
    """

    def __init__(self, tokenizer: Tokenizer, skip_special: bool = False) -> None:
        self.tokenizer = tokenizer
        self.skip_special = skip_special
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def push(self, token_id: int) -> str:
        if self.skip_special and self.tokenizer.id_to_token.get(int(token_id)) in self.tokenizer.added_tokens:
            return ""
        return self._utf8.decode(self.tokenizer.token_bytes(int(token_id)))

    def flush(self, drop_incomplete: bool = False) -> str:
        """The end of the text. A character whose bytes were cut off (an answer stopped at
        max_tokens) becomes U+FFFD, or nothing with drop_incomplete."""
        if drop_incomplete:
            self._utf8.reset()
            return ""
        return self._utf8.decode(b"", final=True)


def _pattern(pre: dict | None) -> str:
    """The split regex of a ByteLevel pre-tokenizer config (alone or in a Sequence)."""
    if not pre:
        raise TokenizerError("tokenizer.json has no pre_tokenizer; byte-level BPE needs one")
    steps = pre.get("pretokenizers", []) if pre.get("type") == "Sequence" else [pre]
    pattern = None
    for step in steps:
        kind = step.get("type")
        if kind == "Split":
            pat = step.get("pattern") or {}
            if "Regex" in pat:
                pattern = pat["Regex"]
            elif "String" in pat:
                pattern = re.escape(pat["String"])
            if step.get("behavior", "Isolated") != "Isolated" or step.get("invert"):
                raise TokenizerError(f"Split pre-tokenizer behavior {step.get('behavior')!r}/invert is not supported (need Isolated)")
        elif kind == "ByteLevel":
            if step.get("add_prefix_space"):
                raise TokenizerError("ByteLevel add_prefix_space=true is not supported")
            if step.get("use_regex", True):
                if pattern is not None:
                    raise TokenizerError("two split regexes (Split and ByteLevel use_regex) are not supported")
                pattern = GPT2_PATTERN
        else:
            raise TokenizerError(f"pre-tokenizer {kind!r} is not supported")
    if pattern is None:
        raise TokenizerError("pre_tokenizer has no split regex")
    return pattern


def _normalizer(norm: dict | None) -> str | None:
    if not norm:
        return None
    steps = norm.get("normalizers", []) if norm.get("type") == "Sequence" else [norm]
    kinds = [s.get("type") for s in steps]
    if not kinds:
        return None
    if len(kinds) > 1 or kinds[0] not in NORMALIZERS:
        raise TokenizerError(f"normalizer {kinds} is not supported (one of {NORMALIZERS} or none)")
    return kinds[0]
