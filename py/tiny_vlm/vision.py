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
        self.backend = be = backend or K.Backend()
        self.w = {name[len("vision."):]: t for name, t in tensors.items() if name.startswith("vision.")}
        self._fold_attention_norms()
        # Prepared once here, never per call: depthwise taps [K, K, C], GEMM weights through
        # Backend.pack (1x1 convs and linears [C_out, C_in]; the one full conv, stem.0, as
        # its im2col weight [C_out, K*K*C_in]).
        self.taps: dict[str, np.ndarray] = {}
        self.linears: dict[str, object] = {}
        for key, t in self.w.items():
            name = key[:-len(".weight")]
            if not key.endswith(".weight") or t.ndim == 1:
                continue
            if t.ndim == 2:
                self.linears[name] = be.pack(t, self.w.get(f"{name}.bias"))
            elif t.shape[1] == 1:  # every k x k conv but stem.0 is depthwise (config.tensor_shapes)
                self.taps[name] = K.depthwise_taps(t)
            else:
                self.linears[name] = be.pack(K.conv_gemm_weight(t), self.w[f"{name}.bias"])
        # Stride-1 depthwise convs run on taps and bias repeated along the row width they see.
        self.row_taps: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        grid = config.image_size // 4  # after the stem
        for s, depth in enumerate(config.depths):
            grid //= 2 if config.downsamples[s] else 1
            st = f"stages.{s}"
            names = [f"{st}.pos_emb"] if config.pos_embs[s] else []
            for b in range(depth):
                names.append(f"{st}.blocks.{b}.mlp.conv")
                if config.mixers[s] == "repmixer":
                    names.append(f"{st}.blocks.{b}.token_mixer")
            for name in names:
                self.row_taps[name] = self._row_form(name, grid)
        if config.final_channels:
            self.row_taps["final_conv"] = self._row_form("final_conv", grid)
        # Where the backend says so (Backend.stride2_as_rows: the SIMD one), a stride-2 depthwise
        # 3x3 (stem.1) runs as the stride-1 row form, every other output kept: 4x the taps but
        # on the row kernel. (7x7 ones, the downsamples, are faster strided everywhere.)
        self.row_taps_s2: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        if be.stride2_as_rows and self.taps.get("stem.1") is not None and self.taps["stem.1"].shape[0] <= 3:
            self.row_taps_s2["stem.1"] = self._row_form("stem.1", config.image_size // 2)

    def _fold_attention_norms(self) -> None:
        """Fold each attention block's norm affine (w, b) into the qkv weights that read it:
        (n(x) * w + b) @ W^T + c == n(x) @ (W * w)^T + (W @ b + c), so at run time a LayerNorm
        block only normalises and a folded-BatchNorm ("affine") block does nothing at all."""
        for key in [k for k in self.w if k.endswith(".norm.weight")]:
            blk = key[:-len(".norm.weight")]
            w_n, b_n = self.w.pop(key), self.w.pop(f"{blk}.norm.bias")
            wq = self.w[f"{blk}.attn.qkv.weight"]  # [3C, C]
            bq = self.w.get(f"{blk}.attn.qkv.bias")
            bias = wq.astype(np.float64) @ b_n.astype(np.float64) + (0.0 if bq is None else bq)
            self.w[f"{blk}.attn.qkv.bias"] = bias.astype(np.float32)
            self.w[f"{blk}.attn.qkv.weight"] = np.ascontiguousarray(wq * w_n, dtype=np.float32)

    def _row_form(self, name, width):  # -> taps [K, K, W*C], bias [W*C]
        return K.depthwise_row_taps(self.taps[name], width), np.tile(self.w[f"{name}.bias"], width)

    def _conv(self, x, name, stride=1):  # [H, W, C_in] -> [Ho, Wo, C_out]; depthwise or stem.0
        if stride == 1 and name in self.row_taps:
            return self.backend.depthwise_conv2d_rows(x, *self.row_taps[name])
        if stride == 2 and name in self.row_taps_s2:  # the input width is fixed: S/2 (checked in __call__)
            return np.ascontiguousarray(self.backend.depthwise_conv2d_rows(x, *self.row_taps_s2[name])[::2, ::2])
        if name in self.taps:
            return self.backend.depthwise_conv2d(x, self.taps[name], self.w[f"{name}.bias"], stride)
        k = self.w[f"{name}.weight"].shape[-1]
        return K.conv2d_gemm(x, self.linears[name], self.w[f"{name}.bias"], k, stride, self.backend)

    def _linear(self, t, name):  # [N, C_in] -> [N, C_out]
        return self.backend.linear(t, self.linears[name], self.w.get(f"{name}.bias"))

    def _pointwise(self, x, name):  # [H, W, C_in] -> [H, W, C_out], a 1x1 conv as a GEMM
        h, w, c = x.shape
        return self._linear(x.reshape(h * w, c), name).reshape(h, w, -1)

    def _attention(self, x, blk):  # [H, W, C] -> [H, W, C]
        h, w, c = x.shape
        cfg = self.config
        t = x.reshape(h * w, c)  # [N, C]
        # the norm's affine (LayerNorm's, or a folded BatchNorm's) is in the qkv weights
        a = K.layer_norm(t, None, None, cfg.norm_eps) if cfg.attn_norm == "layernorm" else t
        n_heads, dh = c // cfg.head_dim, cfg.head_dim
        qkv = self._linear(a, f"{blk}.attn.qkv")  # [N, 3C]
        qkv = qkv.reshape(h * w, 3, n_heads, dh).transpose(1, 2, 0, 3)  # [3, H, N, Dh] view
        o = np.empty((h * w, c), np.float32)  # [N, C]: the heads written side by side
        self.backend.attention(qkv[0], qkv[1], qkv[2], out=o.reshape(h * w, n_heads, dh).transpose(1, 0, 2))
        y = self._linear(o, f"{blk}.attn.proj")
        return (t + y).reshape(h, w, c)

    def _conv_ffn(self, x, blk):  # [H, W, C] -> [H, W, C]: x + fc2(GELU(fc1(dwconv7(x))))
        y = self._conv(x, f"{blk}.mlp.conv")
        y = self._pointwise(y, f"{blk}.mlp.fc1")  # [H, W, F]
        y = self.backend.gelu(y, out=y)
        y = self._pointwise(y, f"{blk}.mlp.fc2")  # [H, W, C]
        y += x
        return y

    def __call__(self, pixels):  # [S, S, 3] -> [N_img, D_vis]
        cfg = self.config
        if pixels.shape != (cfg.image_size, cfg.image_size, 3):
            raise ValueError(f"vision input shape {pixels.shape}, expected ({cfg.image_size}, {cfg.image_size}, 3)")
        x = np.ascontiguousarray(pixels, dtype=np.float32)
        x = self._conv(x, "stem.0", stride=2)  # [S/2, S/2, C0]
        x = self.backend.gelu(x, out=x)
        x = self._conv(x, "stem.1", stride=2)  # [S/4, S/4, C0]
        x = self.backend.gelu(x, out=x)
        x = self._pointwise(x, "stem.2")
        x = self.backend.gelu(x, out=x)
        for s, depth in enumerate(cfg.depths):
            st = f"stages.{s}"
            if cfg.downsamples[s]:
                x = self._conv(x, f"{st}.downsample.0", stride=2)  # [H/2, W/2, C]
                if cfg.downsample_act:
                    x = self.backend.gelu(x, out=x)
                x = self._pointwise(x, f"{st}.downsample.1")
                x = self.backend.gelu(x, out=x)
            if cfg.pos_embs[s]:
                x = self._conv(x, f"{st}.pos_emb")
            for b in range(depth):
                blk = f"{st}.blocks.{b}"
                if cfg.mixers[s] == "repmixer":
                    x = self._conv(x, f"{blk}.token_mixer")
                else:
                    x = self._attention(x, blk)
                x = self._conv_ffn(x, blk)
        if cfg.final_channels:
            y = self._conv(x, "final_conv")  # [g, g, C_f]
            m = y.reshape(-1, y.shape[-1]).mean(axis=0, keepdims=True)  # [1, C_f]
            m = K.relu(self._linear(m, "final_conv.se.reduce"))
            s = K.sigmoid(self._linear(m, "final_conv.se.expand"))
            y *= s[0]
            x = self.backend.gelu(y, out=y)
        return x.reshape(-1, x.shape[-1])  # [N_img, D_vis], row-major
