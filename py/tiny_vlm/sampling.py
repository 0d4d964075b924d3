"""The sampler: logits -> token id; greedy at temperature 0, else temperature/top-k/top-p."""

from __future__ import annotations

import numpy as np


class Sampler:
    """Seeded sampling (llama2.c Sampler). Same seed and logits -> same ids."""

    def __init__(self, temperature: float = 0.0, top_k: int = 0, top_p: float = 1.0, seed: int = 0) -> None:
        if not temperature >= 0:
            raise ValueError(f"temperature must be >= 0, got {temperature!r}")
        if not (isinstance(top_k, int) and top_k >= 0):
            raise ValueError(f"top_k must be an int >= 0 (0 = off), got {top_k!r}")
        if not 0 < top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {top_p!r}")
        if not (isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0):
            raise ValueError(f"seed must be an int >= 0, got {seed!r}")
        self.temperature, self.top_k, self.top_p = float(temperature), top_k, float(top_p)
        self.rng = np.random.default_rng(seed)

    def __call__(self, logits) -> int:  # [V] -> id
        if self.temperature == 0.0:
            return int(np.argmax(logits))
        z = np.asarray(logits, dtype=np.float64) / self.temperature  # [V]
        ids = np.arange(z.shape[0])
        if 0 < self.top_k < z.shape[0]:
            ids = np.argpartition(-z, self.top_k - 1)[:self.top_k]  # [k], unordered
        order = ids[np.argsort(-z[ids], kind="stable")]  # candidates, most likely first
        p = np.exp(z[order] - z[order[0]])
        p /= p.sum()
        if self.top_p < 1.0:
            keep = int(np.searchsorted(np.cumsum(p), self.top_p)) + 1  # smallest prefix with mass >= top_p
            order, p = order[:keep], p[:keep] / p[:keep].sum()
        r = self.rng.random()
        i = min(int(np.searchsorted(np.cumsum(p), r, side="right")), len(order) - 1)
        return int(order[i])
