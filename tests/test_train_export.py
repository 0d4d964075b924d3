"""Training model -> export -> NumPy runtime: smoke training on a micro config, and parity.

Needs PyTorch (a training-only dependency); skipped with the reason when it is missing.
Uses synthetic sprites/backgrounds, so no installed assets are needed.
"""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed: the training package is optional")
pytest.importorskip("tokenizers", reason="the tokenizers library is needed to train the tokenizer")

from tiny_vlm import FastVLM
from tiny_vlm.config import tensor_shapes
from tiny_vlm.weights import save_weights
from tiny_vlm_train.configs import micro_config
from tiny_vlm_train.data import PromptCoder, make_batch
from tiny_vlm_train.evaluate import torch_greedy
from tiny_vlm_train.export import export
from tiny_vlm_train.model import TrainVLM
from tiny_vlm_train.scenes import SceneConfig, SceneGenerator
from tiny_vlm_train.synthetic import synthetic_backgrounds, synthetic_labels, synthetic_sprites
from tiny_vlm_train.tokenizer_train import train_tokenizer
from tiny_vlm_train.train import class_token_ids, compute_loss, save_checkpoint
from tokenizers import Tokenizer


@pytest.fixture(scope="module")
def setup():
    labels = synthetic_labels()
    tok = train_tokenizer(labels, vocab_size=320)
    config = micro_config(vocab_size=320, image_size=64)
    gen = SceneGenerator(labels, "train", seed=0, config=SceneConfig(size=64), sprite_tables=[synthetic_sprites()],
                         backgrounds=synthetic_backgrounds())
    return labels, tok.to_str(), config, gen


def randomize_bn(model, seed=0):
    """Non-trivial BN statistics and layer scales, so folding is really tested."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.3)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.randn(m.num_features, generator=g) * 0.5 + 1)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.2)
        for n, p in model.named_parameters():
            if "layer_scale" in n:
                p.copy_(torch.rand(p.shape, generator=g) + 0.2)


def write_model(tmp_path, model, labels, tok_json, quant):
    d = tmp_path / quant
    d.mkdir()
    save_weights(d / "model.safetensors", model.inference_tensors(), model.config, quant=quant)
    (d / "tokenizer.json").write_text(tok_json)
    (d / "labels.json").write_text(json.dumps(labels))
    return FastVLM.load(d)


def test_export_names_and_shapes_match_the_contract(setup):
    labels, tok_json, config, _ = setup
    tensors = TrainVLM(config, len(labels)).inference_tensors()
    assert {k: v.shape for k, v in tensors.items()} == tensor_shapes(config)


def test_runtime_matches_torch_eval_mode(setup, tmp_path):
    labels, tok_json, config, gen = setup
    torch.manual_seed(0)
    model = TrainVLM(config, len(labels))
    randomize_bn(model)
    model.eval()
    rt = write_model(tmp_path, model, labels, tok_json, "f32")
    coder = PromptCoder(Tokenizer.from_str(tok_json), config.prompt_template)
    img, _ = gen.render(0)
    with torch.no_grad():
        tok, emb = model.encode(torch.from_numpy(img)[None])
    px = rt.processor(img)
    vis = rt.vision(px)
    np.testing.assert_allclose(vis, tok[0].numpy(), rtol=1e-4, atol=1e-4 * float(np.abs(vis).max()))
    np.testing.assert_allclose(rt.encode_image(px), emb[0].numpy(), rtol=1e-4, atol=1e-4)
    prompt = "How many red circles are there?"
    before, after = rt.prompt_ids(prompt)
    assert before == coder.before and after == coder.suffix(prompt)
    with torch.no_grad():
        logits = model.lm_logits(emb, torch.tensor(before), torch.tensor([after]))[0, -1].numpy()
    s = rt.session(img, prompt, max_tokens=1)
    s.prefill()
    np.testing.assert_allclose(np.asarray(s._logits).reshape(-1), logits, atol=1e-4)
    assert rt.generate(img, prompt, max_tokens=8) == torch_greedy(model, coder, img, prompt, max_tokens=8)


def test_smoke_training_export_load_generate(setup, tmp_path):
    labels, tok_json, config, gen = setup
    torch.manual_seed(0)
    model = TrainVLM(config, len(labels))
    coder = PromptCoder(Tokenizer.from_str(tok_json), config.prompt_template)
    before = torch.tensor(coder.before)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    batch = make_batch(gen, coder, labels, config, 0, 8, seed=0, qa_per_image=2)
    class_tokens = class_token_ids(coder.tok, labels)
    for step in range(12):  # overfit one batch: the loss must fall
        loss, parts = compute_loss(model, batch, before, "cpu", class_tokens)
        assert "align" in parts
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(parts["lm"])
    assert losses[-1] < losses[0]
    ckpt = tmp_path / "ckpt.pt"
    state = {"config": config.to_json(), "labels": labels, "tokenizer": tok_json, "total_steps": 12, "args": {"batch_size": 8}}
    save_checkpoint(ckpt, model, opt, 12, state)
    info = export(ckpt, tmp_path / "model", quant="int8", verbose=False)
    assert info["bytes"] > 0
    rt = FastVLM.load(tmp_path / "model")
    assert rt.labels == labels
    img, _ = gen.render(99)
    text = rt.generate(img, "Describe this image.", max_tokens=6)
    assert isinstance(text, str)
