"""Training batches: scenes rendered on the fly (in a DataLoader worker), QA pairs,
token ids laid out like the runtime's prompt, and the dense vision targets.

Rendering costs ~1.7 ms per 128 px scene on one core (measured), so one worker keeps up
with the trainer and no pre-rendered store is needed; every sample is fresh.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from tokenizers import Tokenizer

from .grammar import sample_qa
from .scenes import MAX_PER_CLASS, SceneConfig, SceneGenerator


class PromptCoder:
    """Token ids exactly as tiny_vlm.FastVLM.prompt_ids builds them (template pieces and the
    user text encoded separately), plus the answer ids followed by <|im_end|>."""

    def __init__(self, tokenizer: Tokenizer, template: str):
        self.tok = tokenizer
        before, after = template.split("<image>")
        self.before = self.tok.encode(before).ids
        self.head, _, self.tail = after.partition("{prompt}")
        self.head_ids, self.tail_ids = self.tok.encode(self.head).ids, self.tok.encode(self.tail).ids
        self.im_end = self.tok.token_to_id("<|im_end|>")

    def suffix(self, prompt: str) -> list[int]:
        return self.head_ids + self.tok.encode(prompt, add_special_tokens=False).ids + self.tail_ids

    def answer(self, text: str) -> list[int]:
        return self.tok.encode(text, add_special_tokens=False).ids + [self.im_end]


def curriculum_max_objects(fraction: float) -> int:
    """One object first, then up to 2, 3 and 4 (fraction of training done -> max objects)."""
    return 1 if fraction < 0.04 else 2 if fraction < 0.12 else 3 if fraction < 0.25 else 4


def dense_targets(objects: np.ndarray, grid: int, size: int, n_classes: int):
    """-> center [G*G] (class of the object centred in each cell, else n_classes),
    cover [G*G] (class of the nearest object whose shrunken box covers the cell centre),
    count [n_classes] (0..3)."""
    cell = size / grid
    center = np.full(grid * grid, n_classes, np.int64)
    best = np.zeros(grid * grid)
    cover = np.full(grid * grid, n_classes, np.int64)
    cover_d = np.full(grid * grid, np.inf)
    count = np.zeros(n_classes, np.int64)
    cc = (np.arange(grid) + 0.5) * cell
    for c, cx, cy, w, h in objects:
        c = int(c)
        count[c] = min(MAX_PER_CLASS, count[c] + 1)
        i = int(np.clip(cy // cell, 0, grid - 1)) * grid + int(np.clip(cx // cell, 0, grid - 1))
        if w * h > best[i]:
            best[i], center[i] = w * h, c
        for r in range(grid):
            for q in range(grid):
                if abs(cc[q] - cx) <= 0.4 * w and abs(cc[r] - cy) <= 0.4 * h:
                    d = (cc[q] - cx) ** 2 + (cc[r] - cy) ** 2
                    if d < cover_d[r * grid + q]:
                        cover_d[r * grid + q], cover[r * grid + q] = d, c
    return center, cover, count


def train_generator(labels, seed: int, scene_config: SceneConfig, asset_pack: str | None = None,
                    extra_styles: tuple[str, ...] = (), drop_object_photos: bool = False) -> SceneGenerator:
    """The training split's generator: from the installed sources, or from one asset pack; the
    training styles plus `extra_styles` (of sprites.EXTRA_STYLES); drop_object_photos: without
    the photos of scenes.OBJECT_PHOTOS."""
    from .sprites import TRAIN_STYLES

    styles = TRAIN_STYLES + tuple(extra_styles)
    tables = backgrounds = distractors = None
    if asset_pack:
        from .assets import read_pack, read_pack_distractors

        tables, backgrounds = read_pack(asset_pack, labels, styles, drop_object_photos)
        if scene_config.distractors:
            distractors = read_pack_distractors(asset_pack, styles)
    elif drop_object_photos:
        from .scenes import load_backgrounds

        backgrounds = load_backgrounds("train", drop_object_photos=True)
    return SceneGenerator(labels, "train", seed=seed, config=scene_config, styles=styles, sprite_tables=tables, backgrounds=backgrounds,
                          distractor_tables=distractors)


class SceneBatches(torch.utils.data.IterableDataset):
    """Yields batch `step` for step in [start_step, total_steps): fully determined by (seed, step)."""

    def __init__(self, labels, tokenizer_json: str, config, batch_size: int, start_step: int, total_steps: int, seed: int = 0,
                 scene_config: SceneConfig | None = None, curriculum_steps: int | None = None, qa_per_image: int = 1,
                 asset_pack: str | None = None, extra_styles: tuple[str, ...] = (), drop_object_photos: bool = False):
        super().__init__()
        self.asset_pack, self.extra_styles, self.drop_object_photos = asset_pack, tuple(extra_styles), drop_object_photos
        self.qa_per_image = qa_per_image
        self.curriculum_steps = curriculum_steps or total_steps
        self.labels, self.tokenizer_json, self.config = labels, tokenizer_json, config
        self.batch_size, self.start_step, self.total_steps, self.seed = batch_size, start_step, total_steps, seed
        self.scene_config = scene_config or SceneConfig(size=config.vision.image_size)

    def __iter__(self):
        gen = train_generator(self.labels, self.seed, self.scene_config, self.asset_pack, self.extra_styles, self.drop_object_photos)
        coder = PromptCoder(Tokenizer.from_str(self.tokenizer_json), self.config.prompt_template)
        info = torch.utils.data.get_worker_info()  # with several workers, worker i renders steps i, i+n, ...; the
        wid, nw = (info.id, info.num_workers) if info else (0, 1)  # DataLoader takes them round-robin, in order
        for step in range(self.start_step + wid, self.total_steps, nw):
            gen.cfg = dataclasses.replace(self.scene_config, max_objects=curriculum_max_objects(step / max(1, self.curriculum_steps)))
            yield make_batch(gen, coder, self.labels, self.config, step, self.batch_size, self.seed, self.qa_per_image)


def make_batch(gen: SceneGenerator, coder: PromptCoder, labels, config, step: int, batch_size: int, seed: int, qa_per_image: int = 1) -> dict:
    """Render batch `step`. qa_per_image 1: one question per image, 50% describe / 25% count / 25% presence;
    k > 1: one describe and k - 1 count-or-presence questions per image (the LM computes each image's prefix,
    the template's start and the image tokens, once for its k questions: TrainVLM.lm_hidden_after, so a
    question costs only its own few tokens)."""
    v = config.vision
    rng = np.random.default_rng([seed, step, 3])
    images, centers, covers, counts, seqs = [], [], [], [], []
    for k in range(batch_size):
        img, objs = gen.render(step * batch_size + k)
        images.append(img)
        c, cv, n = dense_targets(objs, v.grid, v.image_size, len(labels))
        centers.append(c), covers.append(cv), counts.append(n)
        kinds = ("describe", *("count" if rng.random() < 0.5 else "presence" for _ in range(qa_per_image - 1))) if qa_per_image > 1 else (None,)
        for kind in kinds:
            _, prompt, answer = sample_qa(objs, labels, rng, kind)
            seqs.append((coder.suffix(prompt), coder.answer(answer)))
    t1 = max(len(s) + len(a) for s, a in seqs)
    after = np.zeros((len(seqs), t1), np.int64)
    targets = np.full((len(seqs), t1), -100, np.int64)
    for i, (s, a) in enumerate(seqs):
        ids = s + a
        after[i, :len(ids)] = ids
        targets[i, len(s) - 1:len(ids) - 1] = a  # position j predicts ids[j + 1]
    return {
        "images": torch.from_numpy(np.stack(images)),
        "center": torch.from_numpy(np.stack(centers)),
        "cover": torch.from_numpy(np.stack(covers)),
        "count": torch.from_numpy(np.stack(counts)),
        "after": torch.from_numpy(after),
        "targets": torch.from_numpy(targets),
        "step": step,
    }
