"""Model configs: the shipped default and a micro one for CI smoke tests."""

from __future__ import annotations

from tiny_vlm.config import LMConfig, ModelConfig, ProjectorConfig, VisionConfig


def default_config(vocab_size: int = 1024, image_size: int = 128, name: str = "tiny-vlm-emoji") -> ModelConfig:
    """128 px, 8x8 = 64 image tokens, ~3M parameters (224 px: 14x14 = 196 tokens). The context
    holds the image tokens and 96 positions of text at any input side."""
    vision = VisionConfig(
        image_size=image_size,
        depths=(2, 2, 4),
        widths=(32, 96, 192),
        mixers=("repmixer", "repmixer", "attention"),
        mlp_ratios=(3.0, 3.0, 3.0),
        pos_embs=(False, False, True),
        downsamples=(False, True, True),
        head_dim=32,
        image_mean=(0.5, 0.5, 0.5),
        image_std=(0.25, 0.25, 0.25),
    )
    lm = LMConfig(vocab_size=vocab_size, d_model=192, n_layers=3, n_heads=6, n_kv_heads=2, head_dim=32, d_ffn=512,
                  max_seq_len=vision.n_tokens + 96)
    return ModelConfig(vision=vision, projector=ProjectorConfig(d_in=vision.d_out, d_out=lm.d_model), lm=lm, name=name)


def micro_config(vocab_size: int = 1024, image_size: int = 64) -> ModelConfig:
    """A few thousand parameters per part, for smoke tests."""
    vision = VisionConfig(
        image_size=image_size,
        depths=(1, 1, 1),
        widths=(8, 16, 32),
        mixers=("repmixer", "repmixer", "attention"),
        mlp_ratios=(2.0, 2.0, 2.0),
        pos_embs=(False, True, True),
        downsamples=(False, True, True),
        head_dim=16,
        image_mean=(0.5, 0.5, 0.5),
        image_std=(0.25, 0.25, 0.25),
    )
    lm = LMConfig(vocab_size=vocab_size, d_model=32, n_layers=1, n_heads=2, n_kv_heads=1, head_dim=16, d_ffn=64,
                  max_seq_len=vision.n_tokens + 80)
    return ModelConfig(vision=vision, projector=ProjectorConfig(d_in=vision.d_out, d_out=lm.d_model), lm=lm, name="tiny-vlm-micro")


CONFIGS = {"default": default_config, "micro": micro_config}
