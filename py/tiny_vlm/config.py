"""Model configuration: frozen, validated dataclasses stored in the weights file.

The config stored in the weights file is the truth. `tensor_shapes(config)` lists every
tensor name and shape the runtime expects; the weights reader, the exporters and the
converters all check against it. docs/ARCHITECTURE.md gives the math for each name.

Dimension letters: S image side, C channels, K kernel size, D model width, H heads,
Hkv KV heads, Dh head width, F FFN width, V vocab, L layers, P max positions.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

MIXERS = ("repmixer", "attention")
ATTN_NORMS = ("layernorm", "affine")


class ConfigError(ValueError):
    """A config field has a bad value; the message names the field."""


def _check(cond: bool, field: str, message: str) -> None:
    if not cond:
        raise ConfigError(f"{field}: {message}")


_NUMBER_KINDS = {"int": (int,), "float": (int, float)}


def _check_types(config, prefix: str) -> None:
    """Integer fields hold ints and float fields numbers (JSON allows 3.0 or "3" anywhere),
    so that a bad file fails here, naming the field, not later inside range()."""
    for f in dataclasses.fields(config):
        kind = str(f.type)
        many = kind.startswith("tuple[") and kind.endswith(", ...]")
        base = kind[len("tuple["):-len(", ...]")] if many else kind
        if base not in _NUMBER_KINDS:
            continue
        value = getattr(config, f.name)
        for v in (value if many and isinstance(value, (tuple, list)) else (value,)):
            _check(isinstance(v, _NUMBER_KINDS[base]) and not isinstance(v, bool), f"{prefix}.{f.name}",
                   f"must be {'an int' if base == 'int' else 'a number'}{' per entry' if many else ''}, got {v!r}")


@dataclass(frozen=True)
class VisionConfig:
    """FastViT / MobileCLIP-MCi tower in inference form (reparameterized, BN folded)."""

    image_size: int  # S: input side in pixels (square)
    depths: tuple[int, ...]  # blocks per stage
    widths: tuple[int, ...]  # C per stage; stage 0 width is also the stem width
    mixers: tuple[str, ...]  # per stage: "repmixer" (conv) or "attention"
    mlp_ratios: tuple[float, ...]  # per stage: ConvFFN hidden = round(C * ratio)
    pos_embs: tuple[bool, ...]  # per stage: 7x7 depthwise conditional pos. encoding first
    downsamples: tuple[bool, ...]  # per stage: patch embed (7x7 s2 grouped + 1x1) first; stage 0 must be False
    head_dim: int = 32  # Dh of the attention stages
    downsample_act: bool = True  # GELU after the 7x7 large-kernel conv of a patch embed
    final_channels: int = 0  # C_f of the final 3x3 grouped conv + SE; 0 = no final conv
    se_ratio: float = 0.0625  # squeeze-excite reduction: rd = round(C_f * se_ratio)
    attn_norm: str = "layernorm"  # "layernorm" (over channels) or "affine" (folded BatchNorm)
    norm_eps: float = 1e-5
    image_mean: tuple[float, float, float] = (0.0, 0.0, 0.0)  # subtracted after /255
    image_std: tuple[float, float, float] = (1.0, 1.0, 1.0)  # divided after the mean

    def __post_init__(self) -> None:
        _check_types(self, "vision")
        n = len(self.depths)
        _check(n >= 1, "vision.depths", "needs at least one stage")
        for name in ("widths", "mixers", "mlp_ratios", "pos_embs", "downsamples"):
            _check(len(getattr(self, name)) == n, f"vision.{name}", f"needs {n} entries (one per stage), got {len(getattr(self, name))}")
        _check(self.image_size >= 16, "vision.image_size", f"must be >= 16, got {self.image_size}")
        _check(self.image_size % self.stride == 0, "vision.image_size", f"{self.image_size} is not a multiple of the total stride {self.stride}")
        _check(not self.downsamples[0], "vision.downsamples", "stage 0 follows the stem and cannot downsample")
        for s in range(n):
            _check(self.depths[s] >= 0, "vision.depths", f"stage {s}: negative depth {self.depths[s]}")
            _check(self.widths[s] > 0, "vision.widths", f"stage {s}: width must be positive, got {self.widths[s]}")
            _check(self.mixers[s] in MIXERS, "vision.mixers", f"stage {s}: {self.mixers[s]!r} is not one of {MIXERS}")
            _check(self.mlp_ratios[s] > 0, "vision.mlp_ratios", f"stage {s}: must be positive")
            if s > 0 and not self.downsamples[s]:
                _check(self.widths[s] == self.widths[s - 1], "vision.widths", f"stage {s} does not downsample, so its width must equal stage {s - 1}'s")
            if s > 0 and self.downsamples[s]:
                _check(self.widths[s] % self.widths[s - 1] == 0, "vision.widths", f"stage {s}: width {self.widths[s]} must be a multiple of {self.widths[s - 1]} (grouped patch-embed conv)")
            if self.mixers[s] == "attention":
                _check(self.widths[s] % self.head_dim == 0, "vision.head_dim", f"stage {s}: width {self.widths[s]} is not a multiple of head_dim {self.head_dim}")
        _check(self.attn_norm in ATTN_NORMS, "vision.attn_norm", f"{self.attn_norm!r} is not one of {ATTN_NORMS}")
        if self.final_channels:
            _check(self.final_channels % self.widths[-1] == 0, "vision.final_channels", f"{self.final_channels} must be a multiple of the last width {self.widths[-1]}")
        _check(len(self.image_mean) == 3 and len(self.image_std) == 3, "vision.image_mean", "mean and std need 3 values")
        _check(all(v > 0 for v in self.image_std), "vision.image_std", "must be positive")

    @property
    def stride(self) -> int:  # stem is /4, each patch embed /2
        return 4 * 2 ** sum(self.downsamples)

    @property
    def grid(self) -> int:  # side of the output feature map
        return self.image_size // self.stride

    @property
    def n_tokens(self) -> int:  # N_img
        return self.grid * self.grid

    @property
    def d_out(self) -> int:  # D_vis
        return self.final_channels or self.widths[-1]

    def hidden(self, stage: int) -> int:  # ConvFFN width of a stage
        return int(round(self.widths[stage] * self.mlp_ratios[stage]))

    @property
    def d_se(self) -> int:
        return max(1, int(round(self.final_channels * self.se_ratio)))


@dataclass(frozen=True)
class ProjectorConfig:
    """mlp2x_gelu: Linear(D_vis, D) -> exact GELU -> Linear(D, D)."""

    d_in: int  # D_vis
    d_out: int  # D
    kind: str = "mlp2x_gelu"

    def __post_init__(self) -> None:
        _check_types(self, "projector")
        _check(self.kind == "mlp2x_gelu", "projector.kind", f"only 'mlp2x_gelu' is supported, got {self.kind!r}")
        _check(self.d_in > 0 and self.d_out > 0, "projector.d_in", "sizes must be positive")


@dataclass(frozen=True)
class LMConfig:
    """Qwen2-style decoder: RMSNorm, RoPE, GQA with q/k/v bias, SwiGLU."""

    vocab_size: int  # V
    d_model: int  # D
    n_layers: int  # L
    n_heads: int  # H
    n_kv_heads: int  # Hkv
    head_dim: int  # Dh
    d_ffn: int  # F
    max_seq_len: int = 512  # P: KV cache capacity
    rope_theta: float = 1_000_000.0
    rms_eps: float = 1e-6
    tie_embeddings: bool = True

    def __post_init__(self) -> None:
        _check_types(self, "lm")
        for name in ("vocab_size", "d_model", "n_layers", "n_heads", "n_kv_heads", "head_dim", "d_ffn", "max_seq_len"):
            _check(getattr(self, name) > 0, f"lm.{name}", f"must be positive, got {getattr(self, name)}")
        _check(self.n_heads % self.n_kv_heads == 0, "lm.n_kv_heads", f"{self.n_kv_heads} does not divide n_heads {self.n_heads}")
        _check(self.head_dim % 2 == 0, "lm.head_dim", f"RoPE needs an even head_dim, got {self.head_dim}")
        _check(self.rope_theta > 0, "lm.rope_theta", "must be positive")


@dataclass(frozen=True)
class ModelConfig:
    """The whole model plus how prompts are assembled."""

    vision: VisionConfig
    projector: ProjectorConfig
    lm: LMConfig
    name: str = "tiny-vlm"
    # Chat template: "{prompt}" receives the user text, "<image>" the visual embeddings.
    prompt_template: str = "<|im_start|>user\n<image>\n{prompt}<|im_end|>\n<|im_start|>assistant\n"
    eos_tokens: tuple[str, ...] = ("<|im_end|>", "<|endoftext|>")  # special tokens that end an answer
    stop_strings: tuple[str, ...] = ()
    default_prompt: str = "Describe this image."

    def __post_init__(self) -> None:
        _check(self.projector.d_in == self.vision.d_out, "projector.d_in", f"{self.projector.d_in} != vision output width {self.vision.d_out}")
        _check(self.projector.d_out == self.lm.d_model, "projector.d_out", f"{self.projector.d_out} != lm.d_model {self.lm.d_model}")
        _check(self.prompt_template.count("<image>") == 1, "prompt_template", "must contain '<image>' exactly once")
        _check(self.prompt_template.count("{prompt}") == 1, "prompt_template", "must contain '{prompt}' exactly once")
        _check(self.vision.n_tokens < self.lm.max_seq_len, "lm.max_seq_len", f"{self.lm.max_seq_len} leaves no room after {self.vision.n_tokens} image tokens")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict) -> "ModelConfig":
        """Build and validate a config from plain JSON data; unknown keys are errors."""
        try:
            return cls(
                vision=VisionConfig(**_tuples(data["vision"])),
                projector=ProjectorConfig(**data["projector"]),
                lm=LMConfig(**data["lm"]),
                **_tuples({k: v for k, v in data.items() if k not in ("vision", "projector", "lm")}),
            )
        except KeyError as err:
            raise ConfigError(f"config is missing section {err}") from None
        except TypeError as err:
            raise ConfigError(f"config has a bad or unknown field: {err}") from None

    @classmethod
    def from_json(cls, text: str) -> "ModelConfig":
        return cls.from_dict(json.loads(text))


def _tuples(data: dict) -> dict:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}


def tensor_shapes(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Every tensor the runtime needs, name -> float shape (before quantization).

    1x1 convolutions are stored as linear weights [C_out, C_in]; k x k convolutions as
    [C_out, C_in / groups, K, K]. Layer scales, BatchNorms and reparameterizable
    branches are folded into these by the exporter.
    """
    v, p, lm = config.vision, config.projector, config.lm
    shapes: dict[str, tuple[int, ...]] = {}

    def conv(name: str, c_out: int, c_in_per_group: int, k: int) -> None:
        shapes[f"{name}.weight"] = (c_out, c_in_per_group, k, k)
        shapes[f"{name}.bias"] = (c_out,)

    def linear(name: str, d_out: int, d_in: int, bias: bool = True) -> None:
        shapes[f"{name}.weight"] = (d_out, d_in)
        if bias:
            shapes[f"{name}.bias"] = (d_out,)

    c0 = v.widths[0]
    conv("vision.stem.0", c0, 3, 3)  # 3x3 s2 full conv + GELU
    conv("vision.stem.1", c0, 1, 3)  # 3x3 s2 depthwise + GELU
    linear("vision.stem.2", c0, c0)  # 1x1 + GELU
    for s, depth in enumerate(v.depths):
        c, st = v.widths[s], f"vision.stages.{s}"
        if v.downsamples[s]:
            conv(f"{st}.downsample.0", c, 1, 7)  # 7x7 s2, groups = C_prev
            linear(f"{st}.downsample.1", c, c)  # 1x1 + GELU
        if v.pos_embs[s]:
            conv(f"{st}.pos_emb", c, 1, 7)  # x + dwconv7(x), identity folded in
        for b in range(depth):
            blk = f"{st}.blocks.{b}"
            if v.mixers[s] == "repmixer":
                conv(f"{blk}.token_mixer", c, 1, 3)  # x = dwconv3(x), identity folded in
            else:
                shapes[f"{blk}.norm.weight"] = (c,)
                shapes[f"{blk}.norm.bias"] = (c,)
                linear(f"{blk}.attn.qkv", 3 * c, c, bias=False)
                linear(f"{blk}.attn.proj", c, c)  # layer scale 1 folded in
            conv(f"{blk}.mlp.conv", c, 1, 7)  # 7x7 depthwise, BN folded, no act
            linear(f"{blk}.mlp.fc1", v.hidden(s), c)  # + GELU
            linear(f"{blk}.mlp.fc2", c, v.hidden(s))  # layer scale folded in
    if v.final_channels:
        conv("vision.final_conv", v.final_channels, 1, 3)  # 3x3 grouped (groups = C_last)
        linear("vision.final_conv.se.reduce", v.d_se, v.final_channels)  # + ReLU
        linear("vision.final_conv.se.expand", v.final_channels, v.d_se)  # + sigmoid; then GELU
    linear("projector.0", p.d_out, p.d_in)
    linear("projector.2", p.d_out, p.d_out)
    shapes["lm.embed_tokens.weight"] = (lm.vocab_size, lm.d_model)
    for i in range(lm.n_layers):
        ly = f"lm.layers.{i}"
        shapes[f"{ly}.input_layernorm.weight"] = (lm.d_model,)
        linear(f"{ly}.self_attn.q_proj", lm.n_heads * lm.head_dim, lm.d_model)
        linear(f"{ly}.self_attn.k_proj", lm.n_kv_heads * lm.head_dim, lm.d_model)
        linear(f"{ly}.self_attn.v_proj", lm.n_kv_heads * lm.head_dim, lm.d_model)
        linear(f"{ly}.self_attn.o_proj", lm.d_model, lm.n_heads * lm.head_dim, bias=False)
        shapes[f"{ly}.post_attention_layernorm.weight"] = (lm.d_model,)
        linear(f"{ly}.mlp.gate_proj", lm.d_ffn, lm.d_model, bias=False)
        linear(f"{ly}.mlp.up_proj", lm.d_ffn, lm.d_model, bias=False)
        linear(f"{ly}.mlp.down_proj", lm.d_model, lm.d_ffn, bias=False)
    shapes["lm.norm.weight"] = (lm.d_model,)
    if not lm.tie_embeddings:
        shapes["lm.lm_head.weight"] = (lm.vocab_size, lm.d_model)
    return shapes
