"""Scene generator: deterministic from (seed, index), objects inside the image, limits respected."""

import numpy as np
import pytest

pytest.importorskip("PIL", reason="Pillow is needed by the scene generator")

from tiny_vlm_train.scenes import MAX_PER_CLASS, SceneConfig, SceneGenerator
from tiny_vlm_train.synthetic import synthetic_backgrounds, synthetic_labels, synthetic_sprites


def make(seed=0, **cfg):
    labels = synthetic_labels()
    return SceneGenerator(labels, "train", seed=seed, config=SceneConfig(size=64, **cfg),
                          sprite_tables=[synthetic_sprites()], backgrounds=synthetic_backgrounds())


def test_same_seed_same_scene_other_seed_other_scene():
    a, b, c = make(3), make(3), make(4)
    for i in range(5):
        ia, oa = a.render(i)
        ib, ob = b.render(i)
        assert ia.dtype == np.uint8 and ia.shape == (64, 64, 3)
        assert np.array_equal(ia, ib) and np.array_equal(oa, ob)
    assert not np.array_equal(a.render(0)[0], c.render(0)[0])
    assert np.array_equal(a.render(2)[0], make(3).render(2)[0])  # index-addressable, order-free


def test_object_limits():
    g = make(1)
    for i in range(60):
        _, o = g.render(i)
        assert 1 <= len(o) <= 4
        cls, n = np.unique(o[:, 0], return_counts=True)
        assert n.max() <= MAX_PER_CLASS
        assert (o[:, 1] > -8).all() and (o[:, 1] < 72).all()


def test_curriculum_single_object():
    g = make(2, max_objects=1)
    assert all(len(g.render(i)[1]) == 1 for i in range(20))


def test_installed_assets_deterministic():
    from tiny_vlm_train.assets import npm_root

    if not (npm_root() / "emoji-datasource").exists():
        pytest.skip("emoji assets not installed (python -m tiny_vlm_train.assets)")
    from tiny_vlm_train.labels import build_labels

    labels = build_labels(npm_root())
    assert len(labels) >= 150
    for split in ("train", "heldout"):
        g1, g2 = SceneGenerator(labels, split, seed=7), SceneGenerator(labels, split, seed=7)
        assert np.array_equal(g1.render(11)[0], g2.render(11)[0])
