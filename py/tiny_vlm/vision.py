"""FastViT / MobileCLIP-MCi vision tower in inference form (docs/ARCHITECTURE.md).

    tower = VisionTower(config.vision, tensors, backend)
    tokens = tower(pixels)   # [S, S, 3] float32 -> [N_img, D_vis]
"""

from __future__ import annotations

import numpy as np

from . import kernels as K
from .config import VisionConfig


class VisionTower:
    """Holds the vision tensors (float32, contiguous) and runs the tower on one image."""

    def __init__(self, config: VisionConfig, tensors: dict[str, np.ndarray], backend: K.Backend | None = None) -> None:
        self.config = config
        self.backend = backend or K.Backend()
        self.w = {name[len("vision."):]: t for name, t in tensors.items() if name.startswith("vision.")}

    def _conv(self, x, name, stride=1, groups=1):  # [H, W, C_in] -> [Ho, Wo, C_out]
        return K.conv2d(x, self.w[f"{name}.weight"], self.w[f"{name}.bias"], stride, groups, self.backend)

    def _pointwise(self, x, name):  # [H, W, C_in] -> [H, W, C_out], a 1x1 conv as a GEMM
        h, w, c = x.shape
        y = self.backend.linear(x.reshape(h * w, c), self.w[f"{name}.weight"], self.w.get(f"{name}.bias"))
        return y.reshape(h, w, -1)

    def _attention(self, x, blk):  # [H, W, C] -> [H, W, C]
        h, w, c = x.shape
        cfg = self.config
        t = x.reshape(h * w, c)  # [N, C]
        if cfg.attn_norm == "layernorm":
            a = K.layer_norm(t, self.w[f"{blk}.norm.weight"], self.w[f"{blk}.norm.bias"], cfg.norm_eps)
        else:  # folded BatchNorm: per-channel affine
            a = t * self.w[f"{blk}.norm.weight"] + self.w[f"{blk}.norm.bias"]
        n_heads, dh = c // cfg.head_dim, cfg.head_dim
        qkv = self.backend.linear(a, self.w[f"{blk}.attn.qkv.weight"])  # [N, 3C]
        qkv = qkv.reshape(h * w, 3, n_heads, dh).transpose(1, 2, 0, 3)  # [3, H, N, Dh]
        o = K.attention(qkv[0], qkv[1], qkv[2], None, self.backend)  # [H, N, Dh]
        o = o.transpose(1, 0, 2).reshape(h * w, c)  # [N, C]
        y = self.backend.linear(o, self.w[f"{blk}.attn.proj.weight"], self.w[f"{blk}.attn.proj.bias"])
        return (t + y).reshape(h, w, c)

    def _conv_ffn(self, x, blk):  # [H, W, C] -> [H, W, C]: x + fc2(GELU(fc1(dwconv7(x))))
        y = self._conv(x, f"{blk}.mlp.conv", groups=x.shape[-1])
        y = K.gelu(self._pointwise(y, f"{blk}.mlp.fc1"))  # [H, W, F]
        y = self._pointwise(y, f"{blk}.mlp.fc2")  # [H, W, C]
        y += x
        return y

    def __call__(self, pixels):  # [S, S, 3] -> [N_img, D_vis]
        cfg = self.config
        if pixels.shape != (cfg.image_size, cfg.image_size, 3):
            raise ValueError(f"vision input shape {pixels.shape}, expected ({cfg.image_size}, {cfg.image_size}, 3)")
        x = np.ascontiguousarray(pixels, dtype=np.float32)
        x = K.gelu(self._conv(x, "stem.0", stride=2))  # [S/2, S/2, C0]
        x = K.gelu(self._conv(x, "stem.1", stride=2, groups=x.shape[-1]))  # [S/4, S/4, C0]
        x = K.gelu(self._pointwise(x, "stem.2"))
        for s, depth in enumerate(cfg.depths):
            st = f"stages.{s}"
            if cfg.downsamples[s]:
                x = self._conv(x, f"{st}.downsample.0", stride=2, groups=x.shape[-1])  # [H/2, W/2, C]
                if cfg.downsample_act:
                    x = K.gelu(x)
                x = K.gelu(self._pointwise(x, f"{st}.downsample.1"))
            if cfg.pos_embs[s]:
                x = self._conv(x, f"{st}.pos_emb", groups=x.shape[-1])
            for b in range(depth):
                blk = f"{st}.blocks.{b}"
                if cfg.mixers[s] == "repmixer":
                    x = self._conv(x, f"{blk}.token_mixer", groups=x.shape[-1])
                else:
                    x = self._attention(x, blk)
                x = self._conv_ffn(x, blk)
        if cfg.final_channels:
            y = self._conv(x, "final_conv", groups=x.shape[-1])  # [g, g, C_f]
            m = y.reshape(-1, y.shape[-1]).mean(axis=0, keepdims=True)  # [1, C_f]
            m = K.relu(self.backend.linear(m, self.w["final_conv.se.reduce.weight"], self.w["final_conv.se.reduce.bias"]))
            s = K.sigmoid(self.backend.linear(m, self.w["final_conv.se.expand.weight"], self.w["final_conv.se.expand.bias"]))
            x = K.gelu(y * s[0])
        return x.reshape(-1, x.shape[-1])  # [N_img, D_vis], row-major
