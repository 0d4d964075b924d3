"""mlp2x_gelu projector: image tokens [N_img, D_vis] -> LM embeddings [N_img, D]."""

from __future__ import annotations

import numpy as np

from . import kernels as K
from .config import ProjectorConfig


class Projector:
    def __init__(self, config: ProjectorConfig, tensors: dict[str, np.ndarray], backend: K.Backend | None = None) -> None:
        self.config = config
        self.backend = be = backend or K.Backend()
        self.b0, self.b2 = tensors["projector.0.bias"], tensors["projector.2.bias"]
        self.w0 = be.pack(tensors["projector.0.weight"], self.b0)  # [D, D_vis]
        self.w2 = be.pack(tensors["projector.2.weight"], self.b2)  # [D, D]

    def __call__(self, t):  # [N_img, D_vis] -> [N_img, D]
        h = self.backend.linear(t, self.w0, self.b0)  # [N_img, D]
        h = self.backend.gelu(h, out=h)
        return self.backend.linear(h, self.w2, self.b2)
