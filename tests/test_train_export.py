"""Training model -> export -> NumPy runtime: smoke training on a micro config, and parity.

Needs PyTorch (a training-only dependency); skipped with the reason when it is missing.
Uses synthetic sprites/backgrounds, so no installed assets are needed.
"""

import json
from pathlib import Path

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
    about = rt.info()["about"]  # what the app tells its users the model can see
    assert about.startswith(f"Knows {len(labels)} kinds of object") and "emoji" in about
    img, _ = gen.render(99)
    text = rt.generate(img, "Describe this image.", max_tokens=6)
    assert isinstance(text, str) and len(text) > 0
    # the float32 export of the same checkpoint answers exactly as the torch model does
    export(ckpt, tmp_path / "model32", quant="f32", verbose=False)
    rt32 = FastVLM.load(tmp_path / "model32")
    model.eval()
    for prompt in ("Describe this image.", "Is there a cat?"):
        assert rt32.generate(img, prompt, max_tokens=6) == torch_greedy(model, coder, img, prompt, max_tokens=6)


@pytest.mark.parametrize("k", [2, 4])
def test_questions_about_one_image_share_its_prefix(setup, k):
    """k questions per image: the LM computes the template's start and the image tokens once per
    image (lm_hidden_after). The answer states and every gradient must be those of the plain
    forward over each whole sequence, prefix repeated k times."""
    labels, tok_json, config, gen = setup
    torch.manual_seed(0)
    model = TrainVLM(config, len(labels)).double()
    b, t1 = 3, 7
    emb = torch.randn(b, config.vision.n_tokens, config.lm.d_model, dtype=torch.float64, requires_grad=True)
    before = torch.tensor([1, 2, 3])
    after = torch.randint(0, config.lm.vocab_size, (b * k, t1))
    after[1, 4:] = 0  # a shorter question, padded at its end
    shared = model.lm_hidden_after(emb, before, after)
    whole = model.lm_hidden(emb.repeat_interleave(k, 0), before, after)[:, len(before) + config.vision.n_tokens:]
    assert shared.shape == whole.shape == (b * k, t1, config.lm.d_model)
    torch.testing.assert_close(shared, whole, rtol=0, atol=1e-12)
    weights = torch.randn_like(whole)
    params = [emb] + list(model.lm.parameters())
    g_shared = torch.autograd.grad((shared * weights).sum(), params)
    g_whole = torch.autograd.grad((whole * weights).sum(), params)
    for a, c in zip(g_shared, g_whole):
        torch.testing.assert_close(a, c, rtol=0, atol=1e-10)
    with pytest.raises(ValueError, match="questions per image"):
        model.lm_hidden_after(emb, before, after[:-1])  # a row short: no image may read another's prefix


def test_several_questions_per_image_start_with_a_description(setup):
    labels, tok_json, config, gen = setup
    coder = PromptCoder(Tokenizer.from_str(tok_json), config.prompt_template)
    batch = make_batch(gen, coder, labels, config, 3, 5, seed=0, qa_per_image=4)
    assert batch["images"].shape[0] == 5 and batch["after"].shape[0] == 20
    from tiny_vlm_train.grammar import DESCRIBE_PROMPTS

    describe_suffixes = [coder.suffix(p) for p in DESCRIBE_PROMPTS]
    for i in range(20):  # rows 4k are the describe question of image k, the other three are count/presence
        row = batch["after"][i].tolist()
        is_describe = any(row[:len(s)] == s for s in describe_suffixes)
        assert is_describe == (i % 4 == 0), i


def test_workers_split_steps_and_keep_their_order(setup, tmp_path, monkeypatch):
    """Rendering from an asset pack in two DataLoader workers: disjoint steps, yielded in step order, the
    same batches as one process renders."""
    from tiny_vlm_train import assets, scenes, sprites
    from tiny_vlm_train.data import SceneBatches

    labels, tok_json, config, _ = setup
    monkeypatch.setattr(sprites, "sprite_table", lambda style, labels: synthetic_sprites())
    monkeypatch.setattr(sprites, "distractor_table", lambda style, labels: synthetic_sprites()[:2])
    monkeypatch.setattr(scenes, "load_backgrounds", lambda split: synthetic_backgrounds())
    assets.write_pack(tmp_path / "pack.npz", labels)
    kw = dict(scene_config=SceneConfig(size=64), qa_per_image=2, asset_pack=str(tmp_path / "pack.npz"))
    serial = list(SceneBatches(labels, tok_json, config, 2, 4, 10, **kw))
    loader = torch.utils.data.DataLoader(SceneBatches(labels, tok_json, config, 2, 4, 10, **kw), batch_size=None, num_workers=2)
    parallel = list(loader)
    assert [b["step"] for b in serial] == list(range(4, 10))
    assert [int(b["step"]) for b in parallel] == list(range(4, 10))
    for a, b in zip(serial, parallel):
        assert torch.equal(a["images"], b["images"]) and torch.equal(a["after"], b["after"])
    assert not torch.equal(serial[0]["images"], serial[1]["images"])


def test_asset_pack_round_trip(tmp_path, monkeypatch):
    """--pack writes sprites and distractors per training style and the background photos; read_pack
    gives them back in style order and refuses a pack made for other labels; a pack without
    distractors (made before them) refuses --distractors instead of training without them."""
    from tiny_vlm_train import assets, scenes, sprites

    labels = synthetic_labels()
    tables = {s: np.full((len(labels), 4, 4, 4), i, np.uint8) for i, s in enumerate(sprites.TRAIN_STYLES)}
    bgs = [np.full((5, 7, 3), 9, np.uint8), np.full((6, 6, 3), 3, np.uint8)]
    monkeypatch.setattr(sprites, "sprite_table", lambda style, labels: tables[style])
    distractors = {s: np.full((3 + i, 4, 4, 4), 50 + i, np.uint8) for i, s in enumerate(sprites.TRAIN_STYLES)}
    monkeypatch.setattr(sprites, "distractor_table", lambda style, labels: distractors.get(style, distractors["google"]))
    monkeypatch.setattr(scenes, "load_backgrounds", lambda split: bgs)
    assets.write_pack(tmp_path / "pack.npz", labels)
    got_tables, got_bgs = assets.read_pack(tmp_path / "pack.npz", labels)
    got = assets.read_pack_distractors(tmp_path / "pack.npz", sprites.TRAIN_STYLES[::-1])
    assert [(len(t), int(t[0, 0, 0, 0])) for t in got] == [(3 + i, 50 + i) for i in range(len(sprites.TRAIN_STYLES))][::-1]
    with np.load(tmp_path / "pack.npz") as z:
        old = {k: z[k] for k in z.files if not k.startswith("distractors_")}
    np.savez(tmp_path / "old.npz", **old)
    with pytest.raises(ValueError, match="no distractors for style.*rebuild it with --pack"):
        assets.read_pack_distractors(tmp_path / "old.npz", sprites.TRAIN_STYLES)
    assert [int(t[0, 0, 0, 0]) for t in got_tables] == list(range(len(sprites.TRAIN_STYLES)))
    assert len(got_bgs) == 2 and all(np.array_equal(a, b) for a, b in zip(got_bgs, bgs))
    with pytest.raises(ValueError, match="other labels"):
        assets.read_pack(tmp_path / "pack.npz", labels[1:])
    with pytest.raises(ValueError, match="fluentmono"):  # asked for a style the pack lacks
        assets.read_pack(tmp_path / "pack.npz", labels, sprites.TRAIN_STYLES + ("fluentmono",))
    tables["fluentmono"] = np.full((len(labels), 4, 4, 4), 99, np.uint8)
    assets.write_pack(tmp_path / "pack2.npz", labels, ("fluentmono",))
    got_tables, _ = assets.read_pack(tmp_path / "pack2.npz", labels, sprites.TRAIN_STYLES + ("fluentmono",))
    assert int(got_tables[-1][0, 0, 0, 0]) == 99


def test_asset_pack_leaves_out_the_object_photos_by_name(tmp_path, monkeypatch):
    """The pack names its backgrounds, so --drop-object-photos works from a pack too; a pack
    without names (made before) refuses instead of keeping them silently."""
    from tiny_vlm_train import assets, scenes, sprites

    labels = synthetic_labels()
    monkeypatch.setattr(sprites, "sprite_table", lambda style, labels: np.zeros((len(labels), 4, 4, 4), np.uint8))
    monkeypatch.setattr(sprites, "distractor_table", lambda style, labels: np.zeros((2, 4, 4, 4), np.uint8))
    bgs = [np.full((5, 5, 3), i, np.uint8) for i in range(3)]
    files = ["/a/tuxpaint/templates/cliff.jpg", "/b/samples/skimage_chelsea.png", "/c/wallpapers/Autumn/contents/images/1.jpg"]
    monkeypatch.setattr(scenes, "load_backgrounds", lambda split: bgs)
    monkeypatch.setattr(scenes, "background_files", lambda split: files)
    assets.write_pack(tmp_path / "pack.npz", labels)
    _, all_bgs = assets.read_pack(tmp_path / "pack.npz", labels)
    _, kept = assets.read_pack(tmp_path / "pack.npz", labels, drop_object_photos=True)
    assert [int(b[0, 0, 0]) for b in all_bgs] == [0, 1, 2]
    assert [int(b[0, 0, 0]) for b in kept] == [0, 2]  # the cat photo is left out
    with np.load(tmp_path / "pack.npz") as z:
        old = {k: z[k] for k in z.files if k != "background_names"}
    np.savez(tmp_path / "old.npz", **old)
    assert len(assets.read_pack(tmp_path / "old.npz", labels)[1]) == 3
    with pytest.raises(ValueError, match="does not name its backgrounds"):
        assets.read_pack(tmp_path / "old.npz", labels, drop_object_photos=True)


def test_train_refuses_an_unknown_extra_style(capsys):
    from tiny_vlm_train import train

    with pytest.raises(SystemExit):
        train.main(["--extra-styles", "fluentmono,apple", "--out", "/nonexistent/never-made"])
    assert "unknown extra style(s) apple" in capsys.readouterr().err


def test_weights_only_checkpoint_exports_and_counts_earlier_images(setup, tmp_path):
    labels, tok_json, config, _ = setup
    model = TrainVLM(config, len(labels))
    opt = torch.optim.AdamW(model.parameters())
    sum(p.sum() for p in model.parameters()).backward()
    opt.step()  # so the optimizer holds its two moments per weight
    state = {"config": config.to_json(), "labels": labels, "tokenizer": tok_json, "total_steps": 5, "args": {"batch_size": 4},
             "init_images": 1000}
    save_checkpoint(tmp_path / "ckpt.pt", model, opt, 5, state, tmp_path / "weights.pt")
    light = torch.load(tmp_path / "weights.pt", weights_only=False)
    assert "opt" not in light and light["step"] == 5
    assert (tmp_path / "weights.pt").stat().st_size < (tmp_path / "ckpt.pt").stat().st_size / 2
    export(tmp_path / "weights.pt", tmp_path / "m", quant="f32", verbose=False)
    from tiny_vlm.weights import load_weights

    meta = load_weights(tmp_path / "m" / "model.safetensors").metadata
    assert meta["training_images"] == str(1000 + 5 * 4)


def test_soup_averages_weights_and_counts_images_once(setup, tmp_path):
    from tiny_vlm.weights import load_weights
    from tiny_vlm_train.soup import SoupError, make_soup

    labels, tok_json, config, _ = setup
    paths, models = [], []
    # a parent run (1000 images before it, 5 steps of 4) and two runs started from it (3 and 2 steps of 4)
    for i, (steps, init) in enumerate([(5, 1000), (3, 1020), (2, 1020)]):
        torch.manual_seed(i)
        model = TrainVLM(config, len(labels))
        randomize_bn(model, seed=i)
        state = {"config": config.to_json(), "labels": labels, "tokenizer": tok_json, "total_steps": steps,
                 "args": {"batch_size": 4}, "init_images": init}
        paths.append(tmp_path / f"run{i}.pt")
        save_checkpoint(paths[-1], model, torch.optim.AdamW(model.parameters()), steps, state)
        models.append(model.state_dict())
    soup = make_soup(paths)
    name = next(k for k, v in models[0].items() if v.is_floating_point() and v.ndim == 2)
    torch.testing.assert_close(soup["model"][name], (models[0][name] + models[1][name] + models[2][name]) / 3)
    bn = next(k for k in models[0] if k.endswith("running_var"))
    torch.testing.assert_close(soup["model"][bn], (models[0][bn] + models[1][bn] + models[2][bn]) / 3)
    torch.save(soup, tmp_path / "soup.pt")
    export(tmp_path / "soup.pt", tmp_path / "m", quant="f32", verbose=False)
    # 1000 before the parent + its 20 + the two children's own 12 and 8
    assert load_weights(tmp_path / "m" / "model.safetensors").metadata["training_images"] == str(1040)
    other = dict(torch.load(paths[2], weights_only=False), labels=labels[:-1])
    torch.save(other, tmp_path / "other.pt")
    with pytest.raises(SoupError, match="labels"):
        make_soup([paths[0], tmp_path / "other.pt"])


def test_soup_batchnorm_recalibration_tracks_the_averaged_weights(setup, tmp_path):
    """--recalibrate-bn: each BatchNorm's running mean becomes the mean of what reaches it with the
    soup's weights over the batches (checked on the first one with a forward hook)."""
    from tiny_vlm_train.soup import make_soup, recalibrate_bn

    labels, tok_json, config, gen = setup
    paths = []
    for i in range(2):
        torch.manual_seed(i)
        model = TrainVLM(config, len(labels))
        randomize_bn(model, seed=i)
        state = {"config": config.to_json(), "labels": labels, "tokenizer": tok_json, "total_steps": 1, "args": {"batch_size": 4}}
        paths.append(tmp_path / f"run{i}.pt")
        save_checkpoint(paths[-1], model, torch.optim.AdamW(model.parameters()), 1, state)
    soup = make_soup(paths)
    averaged = {k: v.clone() for k, v in soup["model"].items()}
    recalibrate_bn(soup, batches=3, batch_size=4, gen=gen)
    model = TrainVLM(config, len(labels))
    model.load_state_dict(averaged)
    model.eval()
    first = next(m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    name = next(n for n, m in model.named_modules() if m is first)
    seen = []
    first.register_forward_hook(lambda mod, inp, out: seen.append(inp[0].mean(dim=(0, 2, 3))))
    with torch.no_grad():
        for b in range(3):  # the same scenes; eval mode changes nothing before the first BatchNorm
            model.encode(torch.from_numpy(np.stack([gen.render(b * 4 + i)[0] for i in range(4)])))
    torch.testing.assert_close(soup["model"][f"{name}.running_mean"], torch.stack(seen).mean(0), rtol=1e-4, atol=1e-5)
    assert not torch.allclose(soup["model"][f"{name}.running_mean"], averaged[f"{name}.running_mean"])
    assert int(soup["model"][f"{name}.num_batches_tracked"]) == 3


@pytest.mark.parametrize("side", [128, 160, 192, 224])
def test_the_default_config_from_scratch_at_any_input_side(side):
    """`train --config default --image-size S` starts a model with room for its image tokens and
    96 positions of text; at 224 px that is the shipped model's shape exactly."""
    from tiny_vlm.weights import load_weights
    from tiny_vlm_train.configs import default_config

    config = default_config(image_size=side)
    assert config.lm.max_seq_len == config.vision.n_tokens + 96
    shipped = Path(__file__).resolve().parent.parent / "models" / "tiny-vlm-emoji" / "model.safetensors"
    if side == 224 and shipped.is_file():
        assert config.to_json() == load_weights(shipped).config.to_json()


def test_init_at_a_larger_input_keeps_the_weights_and_runs_in_the_runtime(setup, tmp_path):
    """train --init CKPT --image-size S: the tower is convolutional with a conditional position
    encoding, so every exported weight carries over; the grid and the context grow, and only
    the training-only row/column head (its size is the grid) starts afresh."""
    from tiny_vlm_train.train import load_init_weights, resized_config

    labels, tok_json, config, _ = setup
    torch.manual_seed(11)  # the weights do not depend on which tests ran before
    small = TrainVLM(config, len(labels))
    randomize_bn(small)
    big_config = resized_config(config, 96)
    assert (config.vision.image_size, big_config.vision.image_size) == (64, 96)
    assert (config.vision.n_tokens, big_config.vision.n_tokens) == (16, 36)
    assert big_config.lm.max_seq_len - big_config.vision.n_tokens == config.lm.max_seq_len - config.vision.n_tokens
    assert big_config.lm.d_model == config.lm.d_model and big_config.vision.widths == config.vision.widths
    big = TrainVLM(big_config, len(labels))
    assert load_init_weights(big, small.state_dict()) == ["aux_pos.weight", "aux_pos.bias"]
    small_t, big_t = small.eval().inference_tensors(), big.eval().inference_tensors()
    assert small_t.keys() == big_t.keys()
    assert all(np.array_equal(small_t[k], big_t[k]) for k in small_t)
    # the runtime builds the larger model and answers as torch does on a 96 px scene
    m = write_model(tmp_path, big, labels, tok_json, "f32")
    assert m.config.vision.image_size == 96
    img, _ = SceneGenerator(labels, "heldout", seed=3, config=SceneConfig(size=96), sprite_tables=[synthetic_sprites()],
                            backgrounds=synthetic_backgrounds()).render(0)
    assert m.encode_image(img).shape == (36, big_config.lm.d_model)
    coder = PromptCoder(Tokenizer.from_str(tok_json), big_config.prompt_template)
    for prompt in ("Describe this image.", "Is there a cat?"):
        assert m.generate(img, prompt, max_tokens=12) == torch_greedy(big, coder, img, prompt, max_tokens=12)


def test_model_card_gives_each_stage_its_own_input_side(tmp_path, setup):
    """A model fine-tuned at a larger input lists every stage at the side it trained at (from
    train_runs.jsonl), not the final model's side for all of them."""
    from tiny_vlm_train.card import write_card

    labels, tok_json, config, _ = setup
    write_model(tmp_path, TrainVLM(config, len(labels)).eval(), labels, tok_json, "int8")
    model_dir = tmp_path / "int8"
    runs = []
    for name, side, images in (("small", 48, 640), ("large", 64, 320)):
        d = tmp_path / name
        d.mkdir()
        record = {"step": images // 32, "total_steps": images // 32, "images_seen": images, "wall_s_this_run": 60.0,
                  "finished": True, "batch_size": 32, "image_size": side, "device": "cpu (2 threads)"}
        (d / "train_runs.jsonl").write_text(json.dumps(record) + "\n")
        runs.append(d)
    old = tmp_path / "old"  # a record from before image_size was logged
    old.mkdir()
    (old / "train_runs.jsonl").write_text(json.dumps({"step": 1, "total_steps": 1, "images_seen": 32, "wall_s_this_run": 1.0}) + "\n")
    card = write_card(model_dir, [*runs, old], None, ["train A", "train B", "train C"], "export", "evaluate").read_text()
    assert "| 1 | `runs/small` | 48 px |" in card
    assert "| 2 | `runs/large` | 64 px |" in card
    assert "| 3 | `runs/old` | ? |" in card
    assert "input 64x64" in card  # the architecture is the exported model's
    assert "In all **992 images**" in card


def test_model_card_again_without_the_run_directories(tmp_path, setup):
    """The model folder keeps what its card was written from (card.json): with the run
    directories and notes gone, `card --again` writes the same card; `--again --eval` puts a
    new evaluation in; a folder without card.json says what to do."""
    import shutil

    from tiny_vlm_train.card import main, write_card

    labels, tok_json, config, _ = setup
    write_model(tmp_path, TrainVLM(config, len(labels)).eval(), labels, tok_json, "int8")
    model_dir = tmp_path / "int8"
    run = tmp_path / "runs" / "gpu9"
    run.mkdir(parents=True)
    (run / "train_runs.jsonl").write_text(json.dumps({"step": 10, "total_steps": 10, "images_seen": 2560, "wall_s_this_run": 120.0,
                                                      "batch_size": 256, "image_size": 64, "device": "GPU X"}) + "\n")
    notes = tmp_path / "runs" / "history.md"
    notes.write_text("### History\n\nStage 9 ran on GPU X.\n")
    evaluation = {"object_precision": 0.5, "object_recall": 0.5, "object_f1": 0.5, "class_precision": 0.5, "class_recall": 0.5,
                  "class_f1": 0.5, "exact_caption_rate": 0.25, "count_accuracy": 0.75, "yes_no_accuracy": 0.875, "n_scenes": 8,
                  "seed": 7, "describe_frame_ms_median": 30.0, "describe_frame_ms_p90": 31.0, "encode_ms_median": 20.0, "machine": "test"}
    (run / "eval.json").write_text(json.dumps(evaluation))
    first = write_card(model_dir, [run], run / "eval.json", ["train --out ../runs/gpu9"], "export", "evaluate", notes).read_text()
    assert "| 1 | `runs/gpu9` | 64 px | GPU X | 256 |" in first and "Stage 9 ran on GPU X." in first
    assert f"python -m tiny_vlm_train.card ../models/int8 --run {run} --eval {run / 'eval.json'} --notes {notes}" in first  # its own paths
    shutil.rmtree(tmp_path / "runs")
    (model_dir / "README.md").unlink()
    main([str(model_dir), "--again"])
    assert (model_dir / "README.md").read_text() == first
    better = dict(evaluation, count_accuracy=0.875)
    (tmp_path / "new.json").write_text(json.dumps(better))
    main([str(model_dir), "--again", "--eval", str(tmp_path / "new.json")])
    card = (model_dir / "README.md").read_text()
    assert "| **count accuracy** | **0.875** |" in card and "Stage 9 ran on GPU X." in card
    assert json.loads((model_dir / "metrics.json").read_text()) == better
    assert "\nevaluate\n" in card  # the command that wrote the evaluation, as first given
    main([str(model_dir), "--again", "--eval", str(tmp_path / "new.json"), "--eval-command", "evaluate --seed 11"])
    card = (model_dir / "README.md").read_text()
    assert "\nevaluate --seed 11\n" in card and "\nevaluate\n" not in card
    assert json.loads((model_dir / "card.json").read_text())["eval_command"] == "evaluate --seed 11"
    with pytest.raises(SystemExit):  # a mistyped evaluation leaves the card and its metrics as they were
        main([str(model_dir), "--again", "--eval", str(tmp_path / "nwe.json")])
    assert (model_dir / "README.md").read_text() == card and json.loads((model_dir / "metrics.json").read_text()) == better
    (model_dir / "card.json").unlink()
    with pytest.raises(SystemExit):
        main([str(model_dir), "--again"])


def test_model_card_writes_the_evaluation_it_reports_as_metrics_json(tmp_path, setup):
    """The card copies its evaluation beside the weights as metrics.json (shipped with the
    site); a card written without an evaluation removes an earlier model's metrics.json."""
    from tiny_vlm_train.card import write_card

    labels, tok_json, config, _ = setup
    write_model(tmp_path, TrainVLM(config, len(labels)).eval(), labels, tok_json, "int8")
    model_dir = tmp_path / "int8"
    evaluation = {"object_precision": 0.5, "object_recall": 0.25, "object_f1": 1 / 3, "class_precision": 0.5,
                  "class_recall": 0.25, "class_f1": 1 / 3, "exact_caption_rate": 0.125, "count_accuracy": 0.75,
                  "yes_no_accuracy": 0.875, "n_scenes": 8, "seed": 7, "describe_frame_ms_median": 30.0,
                  "describe_frame_ms_p90": 31.0, "encode_ms_median": 20.0, "machine": "test",
                  "ci95": {"object_f1": [0.25, 0.4], "count_accuracy": [0.5, 1.0]}}
    (tmp_path / "eval.json").write_text(json.dumps(evaluation))
    card = write_card(model_dir, [], tmp_path / "eval.json", [], "export", "evaluate").read_text()
    assert "| **count accuracy** | **0.750** | 0.500 – 1.000 | ≥ 0.95 |" in card
    assert "| **describe object F1** (instances, counts included) | **0.333** | 0.250 – 0.400 | ≥ 0.95 |" in card
    assert "| **yes/no accuracy** | **0.875** |  | ≥ 0.97 |" in card  # no interval recorded for it
    assert json.loads((model_dir / "metrics.json").read_text()) == evaluation
    write_card(model_dir, [], None, [], "export", "evaluate")
    assert not (model_dir / "metrics.json").exists()
