"""Many requests, one model (CPython serving): a Batcher runs every request's decode steps
together, one decoder pass for all of them.

    with Batcher(model, max_batch=8) as batcher:
        futures = [batcher.submit(frame, "Describe this image.") for frame in frames]
        texts = [f.result() for f in futures]
        for delta in batcher.stream(frame, "Is there a dog?"):
            print(delta, end="")

One worker thread does all the work, so a model may be shared with nothing else while a
Batcher uses it (FastVLM's lock makes other use safe, but it then waits its turn). A new
request is prefilled alone (the image tower takes one image) as soon as a place is free
(`max_batch` answers at a time); then each step decodes one token for every running answer
with `LanguageModel.decode_batch`, which reads each weight matrix once for all of them.
Answers are those of `model.generate` with the same options (greedy ones equal up to float
rounding of the batched GEMMs); each request keeps its own sampler, stop strings and limits.
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future

from .generate import Session

_CLOSE = object()


class _Request:
    def __init__(self, image, prompt, options, on_delta=None):
        self.image, self.prompt, self.options, self.on_delta = image, prompt, options, on_delta
        self.future: Future = Future()
        self.session: Session | None = None


class Batcher:
    """Runs requests for one model in one background thread, decoding them together."""

    def __init__(self, model, max_batch: int = 8) -> None:
        if not (isinstance(max_batch, int) and max_batch >= 1):
            raise ValueError(f"max_batch must be an int >= 1, got {max_batch!r}")
        self.model, self.max_batch = model, max_batch
        self._inbox: queue.Queue = queue.Queue()
        self._closed = False
        self.stats = {"requests": 0, "decode_passes": 0, "decoded_tokens": 0}
        self._thread = threading.Thread(target=self._run, name="tiny-vlm-batcher", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------ public

    def submit(self, image, prompt: str | None = None, on_delta=None, **options) -> Future:
        """Queue one request; -> a Future of its whole answer (str). options: as FastVLM.generate
        (max_tokens, temperature, top_k, top_p, seed, width, height, stop). on_delta(text) is
        called from the batcher's thread with each piece of text as it is decoded. A bad
        request's Future holds its error (ValueError, ImageError)."""
        if self._closed:
            raise RuntimeError("this Batcher is closed")
        request = _Request(image, prompt, options, on_delta)
        self._inbox.put(request)
        return request.future

    def stream(self, image, prompt: str | None = None, **options):
        """Yield the answer's text deltas as they are decoded (blocking the caller's thread)."""
        deltas: queue.Queue = queue.Queue()
        future = self.submit(image, prompt, on_delta=deltas.put, **options)
        future.add_done_callback(lambda _: deltas.put(_CLOSE))
        while (delta := deltas.get()) is not _CLOSE:
            yield delta
        future.result()  # raises the request's error, if any

    def close(self) -> None:
        """Finish the requests already submitted, then stop the thread."""
        if not self._closed:
            self._closed = True
            self._inbox.put(_CLOSE)
            self._thread.join()

    def __enter__(self) -> "Batcher":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------ the worker thread

    def _run(self) -> None:
        running: list[_Request] = []
        closing = False
        while running or not closing:
            # take new requests while there is room: wait for one only when nothing runs
            while len(running) < self.max_batch and not closing:
                try:
                    request = self._inbox.get(block=not running)
                except queue.Empty:
                    break
                if request is _CLOSE:
                    closing = True
                    break
                if self._start(request):
                    running.append(request)
            if running:
                self._decode(running)
                running = [r for r in running if not r.future.done()]

    def _start(self, request: _Request) -> bool:
        """Prefill the request and emit its first token; -> whether it is still running."""
        if not request.future.set_running_or_notify_cancel():
            return False
        self.stats["requests"] += 1
        try:
            request.session = self.model.session(request.image, request.prompt, **request.options)
            request.image = None
            self._step(request)  # prefill, then the first token from its logits
        except Exception as err:  # a bad request fails alone
            request.future.set_exception(err)
            return False
        return not request.future.done()

    def _decode(self, running: list[_Request]) -> None:
        """One decoder pass for every running answer, then each samples its next token."""
        waiting = [r for r in running if r.session.pending_token is not None]
        if waiting:
            t0 = time.perf_counter()
            try:
                with self.model.lock:
                    logits = self.model.lm.decode_batch([r.session.pending_token for r in waiting], [r.session.cache for r in waiting])
            except Exception as err:  # nothing can go on for these answers
                for r in waiting:
                    r.future.set_exception(err)
                return
            share = (time.perf_counter() - t0) * 1000.0 / len(waiting)
            self.stats["decode_passes"] += 1
            self.stats["decoded_tokens"] += len(waiting)
            for r, row in zip(waiting, logits):
                r.session.feed(row.copy(), share)  # step() samples from these logits
        for r in running:
            if not r.future.done():
                try:
                    self._step(r)
                except Exception as err:
                    r.future.set_exception(err)

    @staticmethod
    def _step(request: _Request) -> None:
        s = request.session
        delta = s.step()
        if delta and request.on_delta is not None:
            request.on_delta(delta)
        if s.done:
            request.future.set_result(s.text)
