"""Vision tower parity with timm's FastViT / MCi (random init, reparameterized, eval)."""

from functools import partial

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="timm parity needs torch")
timm = pytest.importorskip("timm", reason="timm is the reference FastViT")

from timm.layers import LayerNorm2d  # noqa: E402
from timm.models.fastvit import FastVit, LayerScale2d, RepConditionalPosEnc  # noqa: E402

from tiny_vlm.config import VisionConfig  # noqa: E402
from tiny_vlm.convert.fastvit import fastvit_mci3_config, from_timm_fastvit  # noqa: E402
from tiny_vlm.vision import VisionTower  # noqa: E402


def _randomize_and_reparameterize(model, seed):
    """Non-trivial BatchNorm statistics and layer scales, so every fold is exercised."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=g))
                m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=g))
                m.weight.copy_(0.5 + torch.rand(m.weight.shape, generator=g))
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=g))
            elif isinstance(m, LayerScale2d):
                m.gamma.copy_(0.1 + 0.4 * torch.rand(m.gamma.shape, generator=g))
            elif isinstance(m, LayerNorm2d):
                m.weight.copy_(0.5 + torch.rand(m.weight.shape, generator=g))
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=g))
    model.eval()
    return timm.utils.reparameterize_model(model)


def _compare(model, config: VisionConfig, seed=0):
    state = {k: v for k, v in model.state_dict().items()}
    tower = VisionTower(config, from_timm_fastvit(state, config))
    x = np.random.default_rng(seed).standard_normal((config.image_size, config.image_size, 3)).astype(np.float32)
    with torch.no_grad():
        ref = model.forward_features(torch.from_numpy(x).permute(2, 0, 1)[None])  # [1, C_f, g, g]
    ref = ref[0].permute(1, 2, 0).reshape(-1, ref.shape[1]).numpy()  # [N_img, C_f], row-major
    out = tower(x)
    assert out.shape == ref.shape == (config.n_tokens, config.d_out)
    err = np.max(np.abs(out - ref))
    assert err <= 1e-4 * np.max(np.abs(ref)), (err, np.max(np.abs(ref)))


@pytest.mark.parametrize("attn_norm", ["layernorm", "affine"])
def test_small_fastvit_224(attn_norm):
    torch.manual_seed(0)
    norm_layer = partial(LayerNorm2d, eps=1e-5) if attn_norm == "layernorm" else torch.nn.BatchNorm2d
    model = FastVit(layers=(1, 2, 1, 2), embed_dims=(16, 32, 64, 128), mlp_ratios=(3, 3, 3, 2),
                    downsamples=(False, True, True, True),
                    pos_embs=(None, None, partial(RepConditionalPosEnc, spatial_shape=(7, 7)),
                              partial(RepConditionalPosEnc, spatial_shape=(7, 7))),
                    token_mixers=("repmixer", "repmixer", "attention", "attention"), lkc_use_act=True,
                    norm_layer=norm_layer, stem_use_scale_branch=False, num_classes=10)
    model = _randomize_and_reparameterize(model, seed=1)
    config = VisionConfig(image_size=224, depths=(1, 2, 1, 2), widths=(16, 32, 64, 128),
                          mixers=("repmixer", "repmixer", "attention", "attention"), mlp_ratios=(3.0, 3.0, 3.0, 2.0),
                          pos_embs=(False, False, True, True), downsamples=(False, True, True, True), head_dim=32,
                          final_channels=256, attn_norm=attn_norm)
    _compare(model, config)


def test_fastvit_mci3_256():
    torch.manual_seed(0)
    model = timm.create_model("fastvit_mci3", pretrained=False)
    model = _randomize_and_reparameterize(model, seed=2)
    _compare(model, fastvit_mci3_config(256))
