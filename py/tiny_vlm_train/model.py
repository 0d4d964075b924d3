"""PyTorch training model that mirrors the tiny-vlm runtime (docs/ARCHITECTURE.md).

Training form: FastViT/MCi tower with reparameterizable branches and BatchNorm
(MobileOne stem, RepMixer, ConvFFN with BN, RepCPE, attention blocks with LayerNorm over
channels, patch embed 7x7 grouped stride 2 + 1x1), mlp2x_gelu projector, Qwen2-style LM.
`inference_tensors()` folds everything into the runtime's tensor names and shapes
(`tiny_vlm.config.tensor_shapes`). Aux heads (training only, never exported) supervise
the vision tokens directly.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from tiny_vlm.config import ModelConfig, tensor_shapes


# ----------------------------------------------------------------------------- folding helpers

def fold_conv_bn(conv_w: torch.Tensor, bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """conv (no bias) followed by BN -> (weight, bias)."""
    std = torch.sqrt(bn.running_var + bn.eps)
    t = (bn.weight / std).reshape(-1, 1, 1, 1)
    return conv_w * t, bn.bias - bn.running_mean * bn.weight / std


def pad_kernel(w: torch.Tensor, k: int) -> torch.Tensor:
    p = (k - w.shape[-1]) // 2
    return F.pad(w, [p, p, p, p])


def identity_kernel(channels: int, in_per_group: int, k: int, device=None) -> torch.Tensor:
    """Kernel [C, C_in/g, k, k] of the identity map for a grouped conv with C_in == C_out."""
    w = torch.zeros(channels, in_per_group, k, k, device=device)
    for c in range(channels):
        w[c, c % in_per_group, k // 2, k // 2] = 1.0
    return w


# ----------------------------------------------------------------------------- vision blocks

class ConvBN(nn.Sequential):
    def __init__(self, c_in, c_out, k, stride=1, groups=1):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, k, stride, k // 2, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def fold(self, k: int | None = None):
        w, b = fold_conv_bn(self.conv.weight, self.bn)
        return (pad_kernel(w, k) if k else w), b


class MobileOneBlock(nn.Module):
    """k x k conv+BN, optional 1x1 scale conv+BN, optional identity BN; summed; no act here."""

    def __init__(self, c_in, c_out, k, stride=1, groups=1, scale_branch=True, conv_branch=True):
        super().__init__()
        self.k, self.groups, self.c_out, self.in_pg = k, groups, c_out, c_in // groups
        self.conv = ConvBN(c_in, c_out, k, stride, groups) if conv_branch else None
        self.scale = ConvBN(c_in, c_out, 1, stride, groups) if (scale_branch and k > 1) else None
        self.identity = nn.BatchNorm2d(c_out) if (c_in == c_out and stride == 1) else None

    def forward(self, x):
        y = 0
        if self.conv is not None:
            y = self.conv(x)
        if self.scale is not None:
            y = y + self.scale(x)
        if self.identity is not None:
            y = y + self.identity(x)
        return y

    def fold(self):  # -> weight [C_out, C_in/g, k, k], bias [C_out]
        w = torch.zeros(self.c_out, self.in_pg, self.k, self.k)
        b = torch.zeros(self.c_out)
        if self.conv is not None:
            cw, cb = self.conv.fold(self.k); w, b = w + cw, b + cb
        if self.scale is not None:
            sw, sb = self.scale.fold(self.k); w, b = w + sw, b + sb
        if self.identity is not None:
            iw, ib = fold_conv_bn(identity_kernel(self.c_out, self.in_pg, self.k), self.identity)
            w, b = w + iw, b + ib
        return w, b


class LargeKernelConv(nn.Module):
    """7x7 grouped stride-2 conv + BN with a 3x3 conv + BN branch (patch embed)."""

    def __init__(self, c_in, c_out, stride, groups):
        super().__init__()
        self.large = ConvBN(c_in, c_out, 7, stride, groups)
        self.small = ConvBN(c_in, c_out, 3, stride, groups)

    def forward(self, x):
        return self.large(x) + self.small(x)

    def fold(self):
        lw, lb = self.large.fold(7)
        sw, sb = self.small.fold(7)
        return lw + sw, lb + sb


class PatchEmbed(nn.Module):
    def __init__(self, c_in, c_out, act: bool):
        super().__init__()
        self.lk = LargeKernelConv(c_in, c_out, 2, c_in)
        self.act = act
        self.pw = MobileOneBlock(c_out, c_out, 1)

    def forward(self, x):
        x = self.lk(x)
        if self.act:
            x = F.gelu(x)
        return F.gelu(self.pw(x))


class RepCPE(nn.Module):
    """x + dwconv7x7(x) + b."""

    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 7, 1, 3, groups=c, bias=True)

    def forward(self, x):
        return x + self.conv(x)

    def fold(self):
        c = self.conv.weight.shape[0]
        return self.conv.weight + identity_kernel(c, 1, 7), self.conv.bias


class RepMixer(nn.Module):
    """x + ls * (mixer(x) - norm(x)), mixer = dw3x3+BN, dw1x1+BN, identity BN; norm = identity BN."""

    def __init__(self, c, init_scale=0.1):
        super().__init__()
        self.norm = MobileOneBlock(c, c, 3, groups=c, scale_branch=False, conv_branch=False)
        self.mixer = MobileOneBlock(c, c, 3, groups=c)
        self.layer_scale = nn.Parameter(init_scale * torch.ones(c, 1, 1))

    def forward(self, x):
        return x + self.layer_scale * (self.mixer(x) - self.norm(x))

    def fold(self):
        c = self.layer_scale.shape[0]
        mw, mb = self.mixer.fold()
        nw, nb = self.norm.fold()
        ls = self.layer_scale.reshape(c, 1, 1, 1)
        w = identity_kernel(c, 1, 3) + ls * (mw - nw)
        b = self.layer_scale.reshape(c) * (mb - nb)
        return w, b


class ConvFFN(nn.Module):
    def __init__(self, c, hidden):
        super().__init__()
        self.conv = ConvBN(c, c, 7, 1, c)
        self.fc1 = nn.Conv2d(c, hidden, 1)
        self.fc2 = nn.Conv2d(hidden, c, 1)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(self.conv(x))))


class Attention(nn.Module):
    def __init__(self, c, head_dim):
        super().__init__()
        self.h, self.dh = c // head_dim, head_dim
        self.qkv = nn.Linear(c, 3 * c, bias=False)
        self.proj = nn.Linear(c, c)

    def forward(self, t):  # [B, N, C] -> [B, N, C]
        b, n, c = t.shape
        qkv = self.qkv(t).reshape(b, n, 3, self.h, self.dh).permute(2, 0, 3, 1, 4)  # [3, B, H, N, Dh]
        o = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])  # [B, H, N, Dh]
        return self.proj(o.transpose(1, 2).reshape(b, n, c))


class Block(nn.Module):
    def __init__(self, c, hidden, mixer: str, head_dim: int, eps: float, init_scale=0.1):
        super().__init__()
        self.mixer_kind = mixer
        if mixer == "repmixer":
            self.token_mixer = RepMixer(c, init_scale)
        else:
            self.norm = nn.LayerNorm(c, eps=eps)
            self.attn = Attention(c, head_dim)
            self.layer_scale_1 = nn.Parameter(init_scale * torch.ones(c))
        self.mlp = ConvFFN(c, hidden)
        self.layer_scale_2 = nn.Parameter(init_scale * torch.ones(c, 1, 1))

    def forward(self, x):  # [B, C, H, W]
        if self.mixer_kind == "repmixer":
            x = self.token_mixer(x)
        else:
            b, c, h, w = x.shape
            t = x.flatten(2).transpose(1, 2)  # [B, N, C]
            t = t + self.layer_scale_1 * self.attn(self.norm(t))
            x = t.transpose(1, 2).reshape(b, c, h, w)
        return x + self.layer_scale_2 * self.mlp(x)


class VisionTower(nn.Module):
    def __init__(self, v):
        super().__init__()
        self.cfg = v
        c0 = v.widths[0]
        self.stem = nn.ModuleList([MobileOneBlock(3, c0, 3, 2), MobileOneBlock(c0, c0, 3, 2, groups=c0), MobileOneBlock(c0, c0, 1)])
        self.stages = nn.ModuleList()
        c_prev = c0
        for s, depth in enumerate(v.depths):
            c = v.widths[s]
            st = nn.Module()
            st.downsample = PatchEmbed(c_prev, c, v.downsample_act) if v.downsamples[s] else None
            st.pos_emb = RepCPE(c) if v.pos_embs[s] else None
            st.blocks = nn.ModuleList([Block(c, v.hidden(s), v.mixers[s], v.head_dim, v.norm_eps) for _ in range(depth)])
            self.stages.append(st)
            c_prev = c
        if v.final_channels:
            raise NotImplementedError("final_conv is not used by the training model yet")

    def forward(self, x):  # [B, 3, S, S] normalised -> [B, N_img, D_vis]
        for i, m in enumerate(self.stem):
            x = F.gelu(m(x))
            if i == 0:  # channels_last is ~25% faster, but segfaults in backward of a 3-channel input conv on CPU
                x = x.contiguous(memory_format=torch.channels_last)
        for st in self.stages:
            if st.downsample is not None:
                x = st.downsample(x)
            if st.pos_emb is not None:
                x = st.pos_emb(x)
            for blk in st.blocks:
                x = blk(x)
        return x.flatten(2).transpose(1, 2)  # row-major tokens


# ----------------------------------------------------------------------------- language model

class RMSNorm(nn.Module):
    def __init__(self, d, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope_tables(n_pos: int, dh: int, theta: float):  # -> cos, sin [P, Dh]
    inv = theta ** (-torch.arange(0, dh, 2, dtype=torch.float64) / dh)
    ang = torch.arange(n_pos, dtype=torch.float64)[:, None] * inv[None]
    ang = torch.cat([ang, ang], -1)
    return ang.cos().float(), ang.sin().float()


def rotate_half(x):
    a, b = x.chunk(2, -1)
    return torch.cat([-b, a], -1)


class DecoderLayer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        d, h, hkv, dh = c.d_model, c.n_heads, c.n_kv_heads, c.head_dim
        self.input_layernorm = RMSNorm(d, c.rms_eps)
        self.q_proj = nn.Linear(d, h * dh)
        self.k_proj = nn.Linear(d, hkv * dh)
        self.v_proj = nn.Linear(d, hkv * dh)
        self.o_proj = nn.Linear(h * dh, d, bias=False)
        self.post_attention_layernorm = RMSNorm(d, c.rms_eps)
        self.gate_proj = nn.Linear(d, c.d_ffn, bias=False)
        self.up_proj = nn.Linear(d, c.d_ffn, bias=False)
        self.down_proj = nn.Linear(c.d_ffn, d, bias=False)

    def forward(self, x, cos, sin):  # [B, T, D]
        b, t, _ = x.shape
        q, k, v = self._qkv(x, cos, sin)
        o = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self._mlp(x + self.o_proj(o.transpose(1, 2).reshape(b, t, -1)))

    def _mlp(self, x):
        m = self.post_attention_layernorm(x)
        return x + self.down_proj(F.silu(self.gate_proj(m)) * self.up_proj(m))

    def _qkv(self, x, cos, sin):  # [B, T, D] -> q [B, H, T, Dh], k and v [B, H, T, Dh] (KV heads repeated)
        c = self.c
        b, t, _ = x.shape
        a = self.input_layernorm(x)
        q = self.q_proj(a).reshape(b, t, c.n_heads, c.head_dim).transpose(1, 2)
        k = self.k_proj(a).reshape(b, t, c.n_kv_heads, c.head_dim).transpose(1, 2)
        v = self.v_proj(a).reshape(b, t, c.n_kv_heads, c.head_dim).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        rep = c.n_heads // c.n_kv_heads
        return q, k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1)

    def forward_shared(self, xp, xs, cos, sin):
        """A shared prefix and k continuations of it: xp [B, P, D], xs [B*k, T, D] (continuation i
        of prefix b at row b*k + i) -> both updated. The same as forward() on each prefix +
        continuation sequence (the prefix attends only to itself), with the prefix's work done
        once instead of k times."""
        b, p = xp.shape[:2]
        bk, t = xs.shape[:2]
        k = bk // b  # TrainVLM.lm_hidden_after checks that the rows are k per prefix
        qp, kp, vp = self._qkv(xp, cos[:p], sin[:p])
        qs, ks, vs = self._qkv(xs, cos[p:p + t], sin[p:p + t])
        op = F.scaled_dot_product_attention(qp, kp, vp, is_causal=True)
        keys = torch.cat([kp.repeat_interleave(k, 0), ks], 2)  # [B*k, H, P+T, Dh]
        values = torch.cat([vp.repeat_interleave(k, 0), vs], 2)
        allowed = torch.ones(t, p + t, dtype=torch.bool, device=xs.device).tril(p)  # every prefix key, causal after it
        os_ = F.scaled_dot_product_attention(qs, keys, values, attn_mask=allowed)
        xp = self._mlp(xp + self.o_proj(op.transpose(1, 2).reshape(b, p, -1)))
        xs = self._mlp(xs + self.o_proj(os_.transpose(1, 2).reshape(bk, t, -1)))
        return xp, xs


class LM(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.embed_tokens = nn.Embedding(c.vocab_size, c.d_model)
        self.layers = nn.ModuleList([DecoderLayer(c) for _ in range(c.n_layers)])
        self.norm = RMSNorm(c.d_model, c.rms_eps)
        self.lm_head = None if c.tie_embeddings else nn.Linear(c.d_model, c.vocab_size, bias=False)
        cos, sin = rope_tables(c.max_seq_len, c.head_dim, c.rope_theta)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)
        nn.init.normal_(self.embed_tokens.weight, std=0.02)

    def hidden(self, h):  # [B, T, D] embeddings -> [B, T, D] final-normed states
        t = h.shape[1]
        cos, sin = self.cos[:t], self.sin[:t]
        for layer in self.layers:
            h = layer(h, cos, sin)
        return self.norm(h)

    def hidden_shared(self, prefix, cont):  # [B, P, D], [B*k, T, D] -> [B*k, T, D] final-normed states of the continuations
        p, t = prefix.shape[1], cont.shape[1]
        cos, sin = self.cos[:p + t], self.sin[:p + t]
        for layer in self.layers:
            prefix, cont = layer.forward_shared(prefix, cont, cos, sin)
        return self.norm(cont)

    def logits(self, h):  # [..., D] -> [..., V]
        w = self.embed_tokens.weight if self.lm_head is None else self.lm_head.weight
        return h @ w.T

    def forward(self, h):  # [B, T, D] embeddings -> [B, T, V]
        return self.logits(self.hidden(h))


# ----------------------------------------------------------------------------- whole model

class TrainVLM(nn.Module):
    """Vision tower + projector + LM, plus training-only heads on the vision tokens."""

    def __init__(self, config: ModelConfig, n_classes: int):
        super().__init__()
        self.config = config
        v = config.vision
        self.vision = VisionTower(v)
        self.projector = nn.Sequential(nn.Linear(v.d_out, config.lm.d_model), nn.GELU(), nn.Linear(config.lm.d_model, config.lm.d_model))
        self.lm = LM(config.lm)
        self.n_classes = n_classes
        d = v.d_out
        # aux heads (not exported): object centre per cell, object cover per cell, counts, position
        self.aux_center = nn.Linear(d, n_classes + 1)
        self.aux_cover = nn.Linear(d, n_classes + 1)
        self.aux_count = nn.Linear(d, n_classes * 4)
        self.aux_pos = nn.Linear(d, 2 * v.grid)
        self.register_buffer("mean", torch.tensor(v.image_mean).reshape(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(v.image_std).reshape(1, 3, 1, 1), persistent=False)

    def preprocess(self, images_u8):  # uint8 [B, S, S, 3] -> float [B, 3, S, S]
        x = images_u8.permute(0, 3, 1, 2).float() / 255.0
        # contiguous NCHW: channels_last input segfaults in conv backward with this torch build on CPU
        return ((x - self.mean) / self.std).contiguous()

    def encode(self, images_u8):  # -> tokens [B, N, D_vis], embeds [B, N, D]
        tok = self.vision(self.preprocess(images_u8))
        return tok, self.projector(tok)

    def lm_hidden(self, img_emb, before_ids, after_ids):
        """img_emb [B, N, D]; before_ids [T0] shared; after_ids [B, T1] (prompt + answer, padded) -> [B, T0+N+T1, D]."""
        b = img_emb.shape[0]
        e0 = self.lm.embed_tokens(before_ids)[None].expand(b, -1, -1)
        e1 = self.lm.embed_tokens(after_ids)
        return self.lm.hidden(torch.cat([e0, img_emb, e1], 1))

    def lm_hidden_after(self, img_emb, before_ids, after_ids):
        """img_emb [B, N, D]; before_ids [T0]; after_ids [B*k, T1], k questions per image (rows
        b*k .. b*k+k-1 about image b) -> [B*k, T1, D]: the states of the `after` positions, as
        lm_hidden on each image's prefix repeated k times gives them, but with the prefix (the
        template's start and the image tokens, most of each sequence) computed once per image."""
        b = img_emb.shape[0]
        k = after_ids.shape[0] // b
        if after_ids.shape[0] != b * k:
            raise ValueError(f"{after_ids.shape[0]} question rows for {b} images: expected k questions per image")
        if k == 1:  # nothing to share
            return self.lm_hidden(img_emb, before_ids, after_ids)[:, before_ids.shape[0] + img_emb.shape[1]:]
        e0 = self.lm.embed_tokens(before_ids)[None].expand(b, -1, -1)
        return self.lm.hidden_shared(torch.cat([e0, img_emb], 1), self.lm.embed_tokens(after_ids))

    def lm_logits(self, img_emb, before_ids, after_ids):  # -> [B, T, V]
        return self.lm.logits(self.lm_hidden(img_emb, before_ids, after_ids))

    # ------------------------------------------------------------------ export
    @torch.no_grad()
    def inference_tensors(self) -> dict[str, np.ndarray]:
        """Fold BN, branches and layer scales -> {name: float32 array} exactly as tensor_shapes(config)."""
        was = self.training
        self.eval()
        out: dict[str, torch.Tensor] = {}
        v = self.config.vision

        def put(name, w, b=None):
            out[f"{name}.weight"] = w
            if b is not None:
                out[f"{name}.bias"] = b

        def lin(w):  # [C_out, C_in, 1, 1] -> [C_out, C_in]
            return w.reshape(w.shape[0], w.shape[1])

        for i, m in enumerate(self.vision.stem):
            w, b = m.fold()
            put(f"vision.stem.{i}", lin(w) if i == 2 else w, b)
        for s, st in enumerate(self.vision.stages):
            p = f"vision.stages.{s}"
            if st.downsample is not None:
                put(f"{p}.downsample.0", *st.downsample.lk.fold())
                w, b = st.downsample.pw.fold()
                put(f"{p}.downsample.1", lin(w), b)
            if st.pos_emb is not None:
                put(f"{p}.pos_emb", *st.pos_emb.fold())
            for j, blk in enumerate(st.blocks):
                q = f"{p}.blocks.{j}"
                if blk.mixer_kind == "repmixer":
                    put(f"{q}.token_mixer", *blk.token_mixer.fold())
                else:
                    put(f"{q}.norm", blk.norm.weight, blk.norm.bias)
                    put(f"{q}.attn.qkv", blk.attn.qkv.weight)
                    ls1 = blk.layer_scale_1
                    put(f"{q}.attn.proj", blk.attn.proj.weight * ls1[:, None], blk.attn.proj.bias * ls1)
                put(f"{q}.mlp.conv", *blk.mlp.conv.fold())
                put(f"{q}.mlp.fc1", lin(blk.mlp.fc1.weight), blk.mlp.fc1.bias)
                ls2 = blk.layer_scale_2.reshape(-1)
                put(f"{q}.mlp.fc2", lin(blk.mlp.fc2.weight) * ls2[:, None], blk.mlp.fc2.bias * ls2)
        put("projector.0", self.projector[0].weight, self.projector[0].bias)
        put("projector.2", self.projector[2].weight, self.projector[2].bias)
        out["lm.embed_tokens.weight"] = self.lm.embed_tokens.weight
        for i, ly in enumerate(self.lm.layers):
            p = f"lm.layers.{i}"
            out[f"{p}.input_layernorm.weight"] = ly.input_layernorm.weight
            for n in ("q_proj", "k_proj", "v_proj"):
                put(f"{p}.self_attn.{n}", getattr(ly, n).weight, getattr(ly, n).bias)
            put(f"{p}.self_attn.o_proj", ly.o_proj.weight)
            out[f"{p}.post_attention_layernorm.weight"] = ly.post_attention_layernorm.weight
            for n in ("gate_proj", "up_proj", "down_proj"):
                put(f"{p}.mlp.{n}", getattr(ly, n).weight)
        out["lm.norm.weight"] = self.lm.norm.weight
        if self.lm.lm_head is not None:
            out["lm.lm_head.weight"] = self.lm.lm_head.weight
        self.train(was)
        arrays = {k: np.ascontiguousarray(t.detach().cpu().float().numpy()) for k, t in out.items()}
        expected = tensor_shapes(self.config)
        assert set(arrays) == set(expected), (set(arrays) ^ set(expected))
        for k, shape in expected.items():
            assert arrays[k].shape == tuple(shape), (k, arrays[k].shape, shape)
        return arrays
