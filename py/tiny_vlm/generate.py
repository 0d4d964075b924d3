"""Step-by-step generation: a Session owns one request's KV cache, sampler and decoder.

    s = model.session(rgba, "Describe this image.", width=w, height=h, max_tokens=32)
    s.prefill()                 # optional: the first step() calls it
    while not s.done:
        print(s.step(), end="")  # text delta; '' while a UTF-8 character is incomplete
    s.reason, s.stats
"""

from __future__ import annotations

import time

import numpy as np

from .kv_cache import KVCache
from .sampling import Sampler
from .tokenizer import IncrementalDecoder

REASONS = ("eos", "length", "stop", "stopped")


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000.0


class Session:
    """One generation request, driven by prefill() then step() until done."""

    def __init__(self, model, image, prompt: str | None = None, *, max_tokens: int = 32, temperature: float = 0.0,
                 top_k: int = 0, top_p: float = 1.0, seed: int = 0, width: int | None = None, height: int | None = None,
                 stop=()) -> None:
        if not (isinstance(max_tokens, int) and max_tokens >= 1):
            raise ValueError(f"max_tokens must be an int >= 1, got {max_tokens!r}")
        if stop is None:
            stop = ()
        elif isinstance(stop, str):
            stop = (stop,)
        self.model = model
        self.image, self.width, self.height = image, width, height
        self.prompt = model.config.default_prompt if prompt is None else prompt
        if not isinstance(self.prompt, str):
            raise ValueError(f"prompt must be a str, got {type(self.prompt).__name__}")
        if not self.prompt.strip():
            raise ValueError("prompt is empty (pass None for the model's default prompt)")
        # Checked before any work, so that a prompt that cannot fit never costs an image encoding.
        self._prompt_ids = before, after = model.prompt_ids(self.prompt)  # kept for prefill
        positions = len(before) + model.config.vision.n_tokens + len(after)
        if positions >= model.config.lm.max_seq_len:
            raise ValueError(f"prompt of {positions} positions leaves no room to generate (lm.max_seq_len "
                             f"{model.config.lm.max_seq_len}); shorten it")
        self.max_tokens = max_tokens
        self.stop_strings = tuple(s for s in (*stop, *model.config.stop_strings) if s)
        self.sampler = Sampler(temperature, top_k, top_p, seed)
        self.cache = KVCache(model.config.lm)
        self.decoder = IncrementalDecoder(model.tokenizer, skip_special=True)
        self.token_ids: list[int] = []
        self.text = ""  # text so far (never past a stop string)
        self.done = False
        self.reason: str | None = None
        self.n_prompt_tokens = 0
        self.stats: dict = {"preprocess_ms": 0.0, "encode_ms": 0.0, "prefill_ms": 0.0, "ttft_ms": 0.0,
                            "decode_ms_per_token": 0.0, "tokens": 0}
        self._logits = None
        self._pending: int | None = None  # the last token, not yet fed to the decoder
        self._emitted = 0  # characters of self.text already returned by step()
        self._decode_ms = 0.0
        self._n_decoded = 0

    def prefill(self) -> None:
        """Preprocess the image, encode it, and run the prompt through the decoder."""
        if self._logits is not None or self.done:
            return
        m = self.model
        t0 = time.perf_counter()
        pixels = m.processor(self.image, self.width, self.height)  # [S, S, 3]
        self.stats["preprocess_ms"] = _ms(t0)
        with m.lock:  # the model's scratch buffers serve one pass at a time (threads)
            t1 = time.perf_counter()
            image_embeds = m.encode_image(pixels)  # [N_img, D]
            self.stats["encode_ms"] = _ms(t1)
            t2 = time.perf_counter()
            embeds = m.prompt_embeddings(image_embeds, self.prompt, self._prompt_ids)  # [T, D]
            self.n_prompt_tokens = embeds.shape[0]
            self._logits = m.lm.forward(embeds, self.cache)  # [V]
            self.stats["prefill_ms"] = _ms(t2)
        self.image = None  # the frame is not needed any more

    def step(self) -> str:
        """Sample one token and return the new text ('' allowed).

        The decoder pass that feeds a token back runs at the start of the next step(), not
        before this one returns: the caller sees each token one decoder pass sooner, and no
        pass is spent on a token that ends the answer (max_tokens)."""
        if self.done:
            return ""
        if self._logits is None:
            self.prefill()
        t_step = time.perf_counter()
        if self._pending is not None:  # feed back the token the previous step returned
            with self.model.lock:
                logits = self.model.lm.decode(self._pending, self.cache)
            self.feed(logits, _ms(t_step))
        logits = self._logits
        if self.model.invalid_ids is not None:  # logits of ids the tokenizer has no token for
            logits = np.where(self.model.invalid_ids, -np.inf, logits)
        token = self.sampler(logits)
        if self.stats["ttft_ms"] == 0.0:  # work up to the first token, not time spent waiting between calls
            st = self.stats
            st["ttft_ms"] = st["preprocess_ms"] + st["encode_ms"] + st["prefill_ms"] + _ms(t_step)
        if token in self.model.eos_ids:
            return self._finish("eos")
        self.token_ids.append(token)
        self.stats["tokens"] = len(self.token_ids)
        self.text += self.decoder.push(token)
        at = self._stop_at(self.text)
        if at >= 0:
            self.text = self.text[:at]
            return self._finish("stop", flush=False)
        if len(self.token_ids) >= self.max_tokens or self.cache.length >= self.cache.capacity:
            return self._finish("length")
        self._pending = token
        return self._emit(hold=True)

    @property
    def pending_token(self) -> int | None:
        """The token the last step() returned, not yet fed back through the decoder (None
        before the first step and after the last)."""
        return self._pending

    def feed(self, logits, decode_ms: float = 0.0) -> None:
        """Take the decoder pass of pending_token: logits [V] of this session's next position,
        whose K/V the pass appended to this session's cache (step() makes the pass itself;
        batching.Batcher makes one for many sessions). The next step() samples from them."""
        if self._pending is None:
            raise ValueError("feed: no token is pending")
        self._logits, self._pending = logits, None
        self._decode_ms += decode_ms
        self._n_decoded += 1
        self.stats["decode_ms_per_token"] = self._decode_ms / self._n_decoded

    def stop(self) -> None:
        """End the session now (reason 'stopped'); later step() calls return ''."""
        if not self.done:
            self.done, self.reason = True, "stopped"

    def _stop_at(self, text: str) -> int:
        """Where the earliest stop string in `text` begins (-1: none), whatever their order."""
        hits = [at for at in (text.find(s) for s in self.stop_strings) if at >= 0]
        return min(hits, default=-1)

    def _finish(self, reason: str, flush: bool = True) -> str:
        if flush:  # a character cut off by max_tokens or stop() is dropped, not shown as U+FFFD
            self.text += self.decoder.flush(drop_incomplete=reason != "eos")
            at = self._stop_at(self.text)  # the flushed tail may complete a stop string
            if at >= 0:
                self.text, reason = self.text[:at], "stop"
        self.done, self.reason = True, reason
        return self._emit(hold=False)

    def _emit(self, hold: bool) -> str:
        end = len(self.text)
        if hold:  # keep back the longest tail that could still grow into a stop string
            longest = 0
            for s in self.stop_strings:
                for n in range(min(len(s) - 1, len(self.text) - self._emitted), longest, -1):
                    if self.text.endswith(s[:n]):
                        longest = n
                        break
            end = len(self.text) - longest
        delta = self.text[self._emitted:end]
        self._emitted = end
        return delta
