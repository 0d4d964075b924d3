"""Unfolding an exported model back into a training model (tiny_vlm_train.unfold).

Needs PyTorch; synthetic sprites and backgrounds, so no installed assets are needed.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed: the training package is optional")
pytest.importorskip("tokenizers", reason="the tokenizers library is needed to train the tokenizer")

from tiny_vlm_train.configs import micro_config
from tiny_vlm_train.data import PromptCoder, make_batch
from tiny_vlm_train.model import TrainVLM
from tiny_vlm_train.scenes import SceneConfig, SceneGenerator
from tiny_vlm_train.synthetic import synthetic_backgrounds, synthetic_labels, synthetic_sprites
from tiny_vlm_train.tokenizer_train import train_tokenizer
from tiny_vlm_train.train import aux_losses, aux_total, compute_loss
from tiny_vlm_train.unfold import unfold
from tokenizers import Tokenizer


@pytest.fixture(scope="module")
def trained():
    """A micro model after some real training steps (BatchNorm statistics, layer scales and all
    branches moved away from their initial values), its folded tensors, and scenes."""
    labels = synthetic_labels()
    tok_json = train_tokenizer(labels, vocab_size=320).to_str()
    config = micro_config(vocab_size=320, image_size=64)
    gen = SceneGenerator(labels, "train", seed=0, config=SceneConfig(size=64), sprite_tables=[synthetic_sprites()],
                         backgrounds=synthetic_backgrounds())
    coder = PromptCoder(Tokenizer.from_str(tok_json), config.prompt_template)
    before = torch.tensor(coder.before)
    torch.manual_seed(0)
    model = TrainVLM(config, len(labels))
    opt = torch.optim.AdamW(model.parameters(), lr=5e-3)
    model.train()
    for step in range(30):
        loss, _ = compute_loss(model, make_batch(gen, coder, labels, config, step, 16, 0), before, "cpu")
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    calib = [make_batch(gen, coder, labels, config, 1000 + i, 16, 0) for i in range(6)]
    held = make_batch(gen, coder, labels, config, 2000, 16, 0)
    return model, model.inference_tensors(), config, labels, calib, held, before


def test_unfolded_model_folds_back_to_the_same_tensors(trained):
    model, tensors, config, labels, calib, _, _ = trained
    back = unfold(tensors, config, len(labels), calib, head_steps=0, log=lambda m: None).inference_tensors()
    assert back.keys() == tensors.keys()
    for name, t in tensors.items():
        scale = float(np.abs(t).max()) + 1e-6
        assert np.abs(back[name] - t).max() <= 1e-4 * scale, name


def test_unfolded_model_computes_the_same_in_eval_and_in_training_mode(trained):
    model, tensors, config, labels, calib, held, _ = trained
    un = unfold(tensors, config, len(labels), calib, head_steps=0, log=lambda m: None)
    every = torch.cat([b["images"] for b in calib])
    with torch.no_grad():
        want, _ = model.encode(held["images"])
        want_every, _ = model.encode(every)
        un.eval()
        got_eval, _ = un.encode(held["images"])
        un.train()  # BatchNorm normalises with the batch's own statistics, as in training
        got_every, _ = un.encode(every)
        got_held, _ = un.encode(held["images"])
        model.train()
        orig_held, _ = model.encode(held["images"])
    assert torch.allclose(got_eval, want, rtol=1e-4, atol=1e-4 * float(want.abs().max()))
    # on the calibration scenes as one batch, the batch statistics are the calibrated ones: the same function
    assert float((got_every - want_every).norm() / want_every.norm()) < 1e-3
    # on another batch, no farther from the folded model than the trained model itself is in training mode
    gap = float((got_held - want).norm() / want.norm())
    assert gap < float((orig_held - want).norm() / want.norm()), gap


def test_training_heads_are_fitted_on_the_tokens(trained):
    _, tensors, config, labels, calib, held, _ = trained
    fresh = unfold(tensors, config, len(labels), calib, head_steps=0, log=lambda m: None)
    fitted = unfold(tensors, config, len(labels), calib, head_steps=120, log=lambda m: None)
    with torch.no_grad():
        losses = []
        for m in (fresh, fitted):
            m.eval()
            tok, _ = m.encode(held["images"])
            losses.append(float(aux_total(*aux_losses(m, tok, held, "cpu"))))
    assert losses[1] < 0.85 * losses[0], losses


def test_export_unfold_export_gives_back_the_weights_file(trained, tmp_path):
    """models/ dir -> unfold -> checkpoint -> export: the runtime loads the same tensors and the
    image count carries over."""
    from tiny_vlm import FastVLM
    from tiny_vlm.weights import load_weights, save_weights
    from tiny_vlm_train.export import export
    from tiny_vlm_train.unfold import checkpoint
    import json

    model, tensors, config, labels, calib, _, _ = trained
    tok_json = train_tokenizer(labels, vocab_size=320).to_str()
    first = tmp_path / "first"
    first.mkdir()
    save_weights(first / "model.safetensors", tensors, config, quant="int8", metadata={"training_images": "1234"})
    (first / "tokenizer.json").write_text(tok_json)
    (first / "labels.json").write_text(json.dumps(labels))
    w = load_weights(first / "model.safetensors")
    un = unfold(w.tensors, config, len(labels), calib, head_steps=5, log=lambda m: None)
    ck = tmp_path / "unfolded.pt"
    torch.save(checkpoint(un, labels, tok_json, int(w.metadata["training_images"]), {"model_dir": str(first)}), ck)
    export(ck, tmp_path / "second", verbose=False)
    again = load_weights(tmp_path / "second" / "model.safetensors")
    assert again.metadata["training_images"] == "1234"
    for name, t in w.tensors.items():
        step = float(np.abs(t).max()) / 127 + 1e-9  # one int8 step of the largest row at most
        assert np.abs(again.tensors[name] - t).max() <= step, name
    a, b = FastVLM.load(first), FastVLM.load(tmp_path / "second")
    for i in range(4):
        image = calib[0]["images"][i].numpy()
        assert b.generate(image, "Describe this image.") == a.generate(image, "Describe this image.")
    assert json.loads((tmp_path / "second" / "labels.json").read_text()) == labels
