"""Run state of the decoder: a preallocated key/value cache (llama2.c RunState)."""

from __future__ import annotations

import numpy as np

from .config import LMConfig


class KVCache:
    """Keys and values of every layer, [L, Hkv, P, Dh] each; `length` positions are filled."""

    def __init__(self, config: LMConfig) -> None:
        shape = (config.n_layers, config.n_kv_heads, config.max_seq_len, config.head_dim)
        self.k = np.zeros(shape, dtype=np.float32)  # [L, Hkv, P, Dh]
        self.v = np.zeros(shape, dtype=np.float32)  # [L, Hkv, P, Dh]
        self.length = 0

    @property
    def capacity(self) -> int:
        return self.k.shape[2]

    def reset(self) -> None:
        self.length = 0

    def nbytes(self) -> int:
        return self.k.nbytes + self.v.nbytes
