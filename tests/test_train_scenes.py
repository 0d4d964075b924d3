"""Scene generator: deterministic from (seed, index), objects inside the image, limits respected."""

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PIL", reason="Pillow is needed by the scene generator")

from tiny_vlm_train.scenes import MAX_PER_CLASS, SceneConfig, SceneGenerator
from tiny_vlm_train.synthetic import synthetic_backgrounds, synthetic_labels, synthetic_sprites

REPO = Path(__file__).resolve().parents[1]


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
    from tiny_vlm_train.assets import missing_sources, npm_root

    missing = missing_sources()
    if missing:
        pytest.skip(f"training assets not installed ({', '.join(missing)}): python -m tiny_vlm_train.assets")
    from tiny_vlm_train.labels import build_labels

    labels = build_labels(npm_root())
    assert len(labels) >= 150
    for split in ("train", "heldout"):
        g1, g2 = SceneGenerator(labels, split, seed=7), SceneGenerator(labels, split, seed=7)
        assert np.array_equal(g1.render(11)[0], g2.render(11)[0])


def test_object_photos_name_one_installed_training_photo_each():
    """Each entry of OBJECT_PHOTOS (training photos that show a label class) matches exactly one
    installed training photo and no held-out one, and --drop-object-photos leaves out just those."""
    from tiny_vlm_train.assets import missing_sources
    from tiny_vlm_train.scenes import OBJECT_PHOTOS, background_files

    missing = missing_sources()
    if missing:
        pytest.skip(f"training assets not installed ({', '.join(missing)}): python -m tiny_vlm_train.assets")
    labels = json.loads((Path(__file__).resolve().parent.parent / "models" / "tiny-vlm-emoji" / "labels.json").read_text())
    names = {l["name"] for l in labels}
    train, kept = background_files("train"), background_files("train", drop_object_photos=True)
    for fragment, shown in OBJECT_PHOTOS.items():
        assert sum(fragment in f for f in train) == 1, fragment
        assert shown in names, shown
    assert not any(fragment in f for f in background_files("heldout") for fragment in OBJECT_PHOTOS)
    dropped = [f for f in train if f not in kept]
    assert len(dropped) == len(OBJECT_PHOTOS) and kept == [f for f in train if f not in dropped]
    assert any(f.endswith("skimage_chelsea.png") for f in dropped) and any("/Kite/" in f for f in dropped)


def test_style_jitter_only_in_the_training_split(monkeypatch):
    """Per-object style changes (mirror, saturation, outline, blur) apply to training scenes
    only: held-out scenes must stay comparable across model versions."""
    import tiny_vlm_train.scenes as S

    seen = []
    real = S._style_jitter
    monkeypatch.setattr(S, "_style_jitter", lambda sp, rng, colour=False: seen.append(1) or real(sp, rng, colour))
    labels = synthetic_labels()
    kw = dict(config=SceneConfig(size=64), sprite_tables=[synthetic_sprites()], backgrounds=synthetic_backgrounds())
    _, objs = SceneGenerator(labels, "heldout", seed=5, **kw).render(0)
    assert seen == []
    _, objs = SceneGenerator(labels, "train", seed=5, **kw).render(0)
    assert len(seen) == len(objs) >= 1


def test_style_jitter_mirrors_about_half_and_keeps_the_sprite():
    from PIL import Image

    from tiny_vlm_train.scenes import _style_jitter

    sprite = np.zeros((64, 64, 4), np.uint8)  # an "L" in the left half: its mirror is easy to tell
    sprite[8:56, 8:20] = sprite[44:56, 8:32] = (200, 40, 40, 255)
    rng = np.random.default_rng(0)
    mirrored = 0
    for _ in range(200):
        out = np.asarray(_style_jitter(Image.fromarray(sprite), rng))
        assert out.shape == sprite.shape and out.dtype == np.uint8
        a, a_flip = out[..., 3] > 128, out[..., 3][:, ::-1] > 128
        # the object's silhouette stays (an outline only grows it by a few pixels)
        near = (a == (sprite[..., 3] > 128)).mean(), (a_flip == (sprite[..., 3] > 128)).mean()
        assert max(near) > 0.8
        mirrored += near[1] > near[0]
    assert 70 <= mirrored <= 130


@pytest.mark.parametrize("colour", [True, False])
def test_style_jitter_colour_turns_stay_small_and_sometimes_grey(colour):
    """`--colour-jitter`: some objects lose their colour (a silver coin is a grey gold one), some
    turn hue a little, none so far that a yellow lemon reads as an orange; without it, neither."""
    import colorsys

    from PIL import Image

    from tiny_vlm_train.scenes import _style_jitter

    sprite = np.zeros((64, 64, 4), np.uint8)
    sprite[12:52, 12:52] = (230, 200, 40, 255)  # lemon yellow; the centre stays flat under blur and outline
    hue0 = colorsys.rgb_to_hsv(230 / 255, 200 / 255, 40 / 255)[0]
    rng = np.random.default_rng(1)
    grey = turned = 0
    for _ in range(400):
        r, g, b = np.asarray(_style_jitter(Image.fromarray(sprite), rng, colour))[28:36, 28:36, :3].reshape(-1, 3).mean(0) / 255
        if max(r, g, b) - min(r, g, b) < 0.02:
            grey += 1
            continue
        dh = abs(colorsys.rgb_to_hsv(r, g, b)[0] - hue0)
        dh = min(dh, 1 - dh) * 360
        assert dh <= 20, f"hue moved {dh:.1f} degrees"
        turned += dh > 4
    if colour:
        assert 12 <= grey <= 50  # expected 400 * 0.25 * 0.3 = 30
        assert 30 <= turned <= 110  # expected about 400 * 0.15 * (fraction of turns over 4 degrees) = 50
    else:
        assert grey == 0 and turned <= 3  # saturation changes keep the hue (up to rounding)


def test_iconify_name_spellings():
    """Iconify sets key icons by name: the label, its ICONIFY_NAMES, the Unicode name and the short
    names are tried hyphenated and run together; plain aliases resolve, transformed ones do not."""
    from tiny_vlm_train.sprites import iconify_name

    icons = {"icons": {"hot-dog": {}, "ewe": {}, "automobile": {}, "rabbitface": {}},
             "aliases": {"car": {"parent": "automobile"}, "mirrored-rabbit": {"parent": "rabbitface", "hFlip": True}}}
    assert iconify_name(icons, {"label": "hot dog", "name": "HOT DOG"}) == "hot-dog"
    assert iconify_name(icons, {"label": "sheep", "name": "SHEEP", "short_names": ["sheep"]}) == "ewe"
    assert iconify_name(icons, {"label": "car", "name": "AUTOMOBILE"}) == "automobile"
    assert iconify_name(icons, {"label": "rabbit", "name": "RABBIT FACE"}) == "rabbitface"
    assert iconify_name(icons, {"label": "mirrored rabbit", "name": ""}) is None
    assert iconify_name(icons, {"label": "dog", "name": "DOG", "short_names": ["dog2"]}) is None


def test_ink_on_paper_fills_what_the_outline_encloses():
    """A ring gets white paper inside and stays transparent outside; a C open to the outside
    encloses nothing; ink stays black and opaque."""
    from tiny_vlm_train.sprites import ink_on_paper

    yy, xx = np.mgrid[0:21, 0:21]
    r = np.hypot(yy - 10, xx - 10)
    ring = np.zeros((21, 21, 4), np.uint8)
    ring[(r >= 5) & (r <= 7), 3] = 255
    out = ink_on_paper(ring)
    inside, ink, outside = r < 4.5, (r >= 5) & (r <= 7), r > 7.5
    assert (out[inside] == [255, 255, 255, 255]).all()
    assert (out[ink] == [0, 0, 0, 255]).all()
    assert (out[outside][:, 3] == 0).all()
    c = ring.copy()
    c[8:13, 15:21, 3] = 0  # cut the ring open on the right
    out = ink_on_paper(c)
    assert (out[inside][:, 3] == 0).all()


def test_two_tone_paints_ink_and_paper_in_two_distinct_colours():
    from tiny_vlm_train.scenes import two_tone

    sp = np.zeros((8, 8, 4), np.uint8)
    sp[:4, :, 3] = 255  # top half ink (black), bottom-left paper (white), bottom-right transparent
    sp[4:, :4] = 255
    rng = np.random.default_rng(0)
    dark_on_light = 0
    for _ in range(200):
        out = two_tone(sp, rng)
        assert np.array_equal(out[..., 3], sp[..., 3])
        ink, paper = out[:4, :, :3].reshape(-1, 3), out[4:, :4, :3].reshape(-1, 3)
        assert (ink == ink[0]).all() and (paper == paper[0]).all()
        assert np.abs(ink[0].astype(int) - paper[0].astype(int)).mean() >= 79.5
        dark_on_light += int(ink[0].max() <= 90 and paper[0].min() >= 160)
    assert 70 <= dark_on_light <= 150  # half the draws, plus random pairs that happen to be such


def test_monochrome_styles_are_painted_per_object_and_only_they(monkeypatch):
    import tiny_vlm_train.scenes as S

    calls = []
    real = S.two_tone
    monkeypatch.setattr(S, "two_tone", lambda sp, rng: calls.append(1) or real(sp, rng))
    labels = synthetic_labels()
    kw = dict(config=SceneConfig(size=64), sprite_tables=[synthetic_sprites()], backgrounds=synthetic_backgrounds())
    _, objs = SceneGenerator(labels, "train", seed=5, styles=("noto",), **kw).render(0)
    assert calls == []
    _, objs = SceneGenerator(labels, "train", seed=5, styles=("fluentmono",), **kw).render(0)
    assert len(calls) == len(objs) >= 1


def test_extra_styles_are_checked_by_name():
    from tiny_vlm_train.sprites import EXTRA_STYLES, parse_extra_styles

    assert parse_extra_styles(" fluentmono, emojionemono ") == ("fluentmono", "emojionemono")
    assert parse_extra_styles("") == ()
    with pytest.raises(ValueError, match="apple"):  # the held-out style can never be trained on
        parse_extra_styles("fluentmono,apple")
    assert "apple" not in EXTRA_STYLES


def test_named_styles_must_match_the_tables():
    """Named styles decide which tables are painted two-tone: a count mismatch is an error,
    not a silent renaming."""
    kw = dict(config=SceneConfig(size=64), sprite_tables=[synthetic_sprites()], backgrounds=synthetic_backgrounds())
    with pytest.raises(ValueError, match="1 sprite tables for 2 styles"):
        SceneGenerator(synthetic_labels(), "train", styles=("noto", "fluentmono"), **kw)



def test_clipart_maps_name_real_classes_and_distinct_files():
    """TUX_STAMPS and CLIPART are hand-written: every key must be a class of the shipped labels,
    every list non-empty, no picture may stand for two classes, and the two maps are disjoint
    (a class's stamps come first, Open Clip Art only fills classes without one)."""
    from tiny_vlm_train.clipart import CLIPART, OPENCLIPART_DIR, STAMPS_DIR, TUX_STAMPS, clipart_path

    names = {l["name"] for l in json.loads((REPO / "models" / "tiny-vlm-emoji" / "labels.json").read_text())}
    for table in (TUX_STAMPS, CLIPART):
        assert set(table) <= names, sorted(set(table) - names)
        assert all(table.values())
    assert not set(TUX_STAMPS) & set(CLIPART)
    assert len(TUX_STAMPS) + len(CLIPART) >= 150
    files = [f for t in (TUX_STAMPS, CLIPART) for fs in t.values() for f in fs]
    assert len(files) == len(set(files))
    # variants wrap: a class with one picture gives it for every variant
    assert clipart_path("dog", 0) == clipart_path("dog", 1) == STAMPS_DIR / TUX_STAMPS["dog"][0]
    assert clipart_path("cat", 1) == STAMPS_DIR / TUX_STAMPS["cat"][1] != clipart_path("cat", 0)
    assert clipart_path("tulip", 0) == OPENCLIPART_DIR / CLIPART["tulip"][0]
    assert clipart_path("llama", 0) is None  # no picture: the table takes the kin style's row


def test_clipart_files_exist_and_crop_to_an_object():
    from tiny_vlm_train.clipart import CLIPART, OPENCLIPART_DIR, STAMPS_DIR, TUX_STAMPS, clipart_files
    from tiny_vlm_train.sprites import SPRITE, load_clipart, to_sprite

    absent = [d for d in (STAMPS_DIR, OPENCLIPART_DIR) if not d.is_dir()]
    if absent:
        pytest.skip(f"{', '.join(map(str, absent))} missing (Debian tuxpaint-stamps-default, openclipart-png; python -m tiny_vlm_train.assets installs them)")
    missing = [p for label in [*TUX_STAMPS, *CLIPART] for p in clipart_files(label) if not p.is_file()]
    assert missing == []
    for label in ("coin", "cat", "kite", "tulip"):  # photo PNGs, SVG drawings, an Open Clip Art PNG
        for path in clipart_files(label):
            sp = to_sprite(load_clipart(path))
            assert sp is not None and sp.shape == (SPRITE, SPRITE, 4)
            opaque = sp[..., 3] > 128
            assert 0.15 < opaque.mean() < 0.95, (label, path, opaque.mean())
            # fitted: the object (any alpha, as cropped) touches two opposite edges of the sprite
            ink = sp[..., 3] > 8
            assert ink[:, 0].any() and ink[:, -1].any() or ink[0].any() and ink[-1].any()


def test_missing_sources_leaves_the_extra_styles_out_unless_asked(monkeypatch):
    """The recipe and the tests check only the sources the shipped styles read; the extra
    styles' packages are reported only when asked for, and each one is in the install lists."""
    import tiny_vlm_train.assets as A

    assert set(A.EXTRA_STYLE_SOURCES) <= set(A.APT_PACKAGES) | set(A.NPM_PACKAGES)
    monkeypatch.setattr(A.shutil, "which", lambda _: None)  # "no dpkg": every Debian package counts as missing
    monkeypatch.setenv("TINY_VLM_ASSETS", "/nonexistent-tiny-vlm-assets")  # and every npm package
    core, everything = A.missing_sources(), A.missing_sources(extra_styles=True)
    assert set(everything) == set(A.APT_PACKAGES) | set(A.NPM_PACKAGES)
    assert set(core) == set(everything) - set(A.EXTRA_STYLE_SOURCES)
    assert "fonts-noto-color-emoji" in core and "emoji-datasource-apple@16.0.0" in core
    assert "openclipart-png" not in core and "@iconify-json/fxemoji@1.2.2" not in core


def test_random_conv_keeps_the_shape_and_scrambles_the_colours():
    """A sprite of two flat regions (left red, right blue) inside a transparent margin: after
    random_conv the alpha channel is the same, each region's interior (3 px or more from any
    edge, beyond a 5 x 5 kernel's reach) is still one flat colour, and the two regions still
    differ; over many draws the colours change."""
    from PIL import Image

    from tiny_vlm_train.scenes import random_conv

    a = np.zeros((40, 40, 4), np.uint8)
    a[5:35, 5:20] = (220, 30, 30, 255)
    a[5:35, 20:35] = (30, 30, 220, 255)
    rng = np.random.default_rng(0)
    changed = 0
    for _ in range(20):
        b = np.asarray(random_conv(Image.fromarray(a), rng)).astype(int)
        assert np.array_equal(b[..., 3], a[..., 3])
        left, right = b[8:32, 8:17, :3], b[8:32, 23:32, :3]
        assert np.ptp(left.reshape(-1, 3), 0).max() <= 1 and np.ptp(right.reshape(-1, 3), 0).max() <= 1
        assert np.abs(left[0, 0] - right[0, 0]).max() > 8
        changed += int(np.abs(left[0, 0] - (220, 30, 30)).max() > 30)
    assert changed >= 10
    empty = Image.fromarray(np.zeros((8, 8, 4), np.uint8))
    assert random_conv(empty, rng) is empty


def test_random_conv_changes_the_pixels_not_the_scene():
    """--random-conv redraws objects only: same seed and index, the same classes in about the
    same places (the layout comes first in a scene's stream) but other pixels. Boxes may move
    a few pixels (64 px scenes): the redraw's draws shift the stream that later picks each
    object's mirroring and the scene's slight perspective warp. The held-out split never gets it."""
    plain, rc = make(5), make(5, random_conv=1.0)
    for i in range(10):
        (ia, oa), (ib, ob) = plain.render(i), rc.render(i)
        assert np.array_equal(oa[:, 0], ob[:, 0])
        assert np.abs(oa[:, 1:3] - ob[:, 1:3]).max() <= 7 and np.abs(oa[:, 3:] - ob[:, 3:]).max() <= 4
        assert not np.array_equal(ia, ib)
    labels = synthetic_labels()
    held = [SceneGenerator(labels, "heldout", seed=5, config=SceneConfig(size=64, random_conv=p),
                           sprite_tables=[synthetic_sprites()], backgrounds=synthetic_backgrounds()) for p in (0.0, 1.0)]
    assert all(np.array_equal(held[0].render(i)[0], held[1].render(i)[0]) for i in range(4))


def test_partial_view_keeps_one_side_of_the_object_and_fills_the_square():
    """A 40 px sprite: a transparent margin round a 30 x 30 square of three bands, green (top
    6 rows), red, blue (bottom 6 rows). partial_view keeps the top (a head), bottom, left or
    right 50-80% of the object and scales that part up to fill the sprite: the result has the
    sprite's size and the kept part spans the square along its longer axis only. A part kept
    from the top has green and no blue, from the bottom the reverse, from a side all three.
    Over many draws each kind comes up, the top most often; an empty sprite comes back as it is."""
    from PIL import Image

    from tiny_vlm_train.scenes import partial_view

    a = np.zeros((40, 40, 4), np.uint8)
    a[5:11, 5:35] = (20, 230, 20, 255)
    a[11:29, 5:35] = (230, 20, 20, 255)
    a[29:35, 5:35] = (20, 20, 230, 255)
    rng = np.random.default_rng(0)
    kinds = {"top": 0, "bottom": 0, "side": 0}
    for _ in range(80):
        b = np.asarray(partial_view(Image.fromarray(a), rng)).astype(int)
        assert b.shape == (40, 40, 4)
        ys, xs = np.nonzero(b[..., 3] > 200)
        h, w = ys.max() - ys.min() + 1, xs.max() - xs.min() + 1
        assert max(h, w) >= 37 and min(h, w) < 0.85 * max(h, w)
        opaque = b[b[..., 3] > 200][:, :3]
        green = ((opaque[:, 1] > 150) & (opaque[:, 0] < 80) & (opaque[:, 2] < 80)).sum()
        blue = ((opaque[:, 2] > 150) & (opaque[:, 0] < 80) & (opaque[:, 1] < 80)).sum()
        if w > h:
            assert (green > 0) != (blue > 0)
            kinds["top" if green else "bottom"] += 1
        else:
            assert green > 0 and blue > 0
            kinds["side"] += 1
    assert min(kinds.values()) > 0 and kinds["top"] > kinds["bottom"]
    empty = Image.fromarray(np.zeros((8, 8, 4), np.uint8))
    assert partial_view(empty, rng) is empty


def test_partial_view_changes_training_scenes_only():
    """--partial-view changes the training scenes when on and leaves the held-out split alone
    (that it draws nothing when off: test_shares_off_draw_nothing)."""
    on = make(5, partial_view=1.0)
    assert any(not np.array_equal(make(5).render(i)[0], on.render(i)[0]) for i in range(4))
    labels = synthetic_labels()
    held = [SceneGenerator(labels, "heldout", seed=5, config=SceneConfig(size=64, partial_view=p),
                           sprite_tables=[synthetic_sprites()], backgrounds=synthetic_backgrounds()) for p in (0.0, 1.0)]
    assert all(np.array_equal(held[0].render(i)[0], held[1].render(i)[0]) for i in range(4))


def spy_on_uniform_draws(monkeypatch, answer: float) -> list:
    """Wrap every scene's random stream: each uniform draw is recorded (its size) in the list
    returned, and answered with `answer` without consuming anything, so a draw more or less
    shifts nothing else in the scene."""
    from tiny_vlm_train import scenes

    drawn = []

    class Spy:
        def __init__(self, rng):
            self.rng = rng

        def random(self, size=None):
            drawn.append(size)
            return answer if size is None else np.full(size, answer)

        def __getattr__(self, name):
            return getattr(self.rng, name)

    real = scenes.scene_rng
    monkeypatch.setattr(scenes, "scene_rng", lambda *a: Spy(real(*a)))
    return drawn


@pytest.mark.parametrize("option", ["random_conv", "partial_view"])
def test_shares_off_draw_nothing(monkeypatch, option):
    """Off (the default, 0), --random-conv and --partial-view take no draw from a scene's
    random stream, so every earlier run's scenes stay as they were; on, each takes one uniform
    draw per object (whether to redraw or cut it). The stream here answers every uniform draw with 0.5 without
    consuming anything, so a draw more or less shifts nothing else: at a share of 1e-12 the
    scene is the same as at 0 with exactly one more uniform draw per object."""
    uniform = spy_on_uniform_draws(monkeypatch, answer=0.5)
    for i in range(5):
        out = {}
        for p in (0.0, 1e-12, 1.0):
            uniform.clear()
            img, objs = make(5, **{option: p}).render(i)
            out[p] = (img, objs, len(uniform))
        assert np.array_equal(out[0.0][0], out[1e-12][0]) and np.array_equal(out[0.0][1], out[1e-12][1])
        assert out[1e-12][2] - out[0.0][2] == len(out[0.0][1])
        assert not np.array_equal(out[0.0][0], out[1.0][0])  # at 1 every object is redrawn or cut


def make_with_distractors(table_value: int, p: float = 1.0, split: str = "train", seed: int = 6, photos: float = 0.3):
    """Synthetic scenes (no camera augmentation; the photos, 60% of the backgrounds, black) whose one distractor emoji
    is a square of grey `table_value` (0: fully transparent, nothing painted); `photos`: the
    share of distractors cut from those black photos instead."""
    table = np.zeros((1, 64, 64, 4), np.uint8)
    if table_value:
        table[0, 16:48, 16:48] = (table_value, table_value, table_value, 255)
    return SceneGenerator(synthetic_labels(), split, seed=seed, config=SceneConfig(size=64, distractors=p, distractor_photos=photos, augment=False),
                          sprite_tables=[synthetic_sprites()], backgrounds=[np.zeros((96, 96, 3), np.uint8)],
                          distractor_tables=[table])


def greyish(img: np.ndarray) -> int:
    """Pixels near (128, 128, 128): the synthetic classes are all saturated colours."""
    x = img.astype(int)
    return int(((abs(x - 128) < 30).all(axis=2) & (x.max(axis=2) - x.min(axis=2) < 8)).sum())


def test_distractors_are_painted_but_never_named_nor_moved():
    """--distractors paints things that are no class into training scenes. Drawn with a grey
    square and with an invisible one, the same scene has the same objects at the same places
    (the records, which every target comes from): what a distractor looks like never moves an
    object; and the grey one shows. (That the records are those of the scene without
    distractors: test_distractors_only_in_the_training_split_and_off_draws_nothing.)"""
    grey, clear = make_with_distractors(128), make_with_distractors(0)
    shown = 0
    for i in range(24):
        (ig, og), (ic, oc) = grey.render(i), clear.render(i)
        assert np.array_equal(og, oc)
        shown += greyish(ig) - greyish(ic) > 10
    assert shown >= 6  # 14 of these 24 (an emoji in 70% of the tries; a place that overlaps an object is skipped)


def test_distractor_photos_share_chooses_between_photo_cuts_and_emoji():
    """--distractor-photos 1: every distractor is cut from a (here black) photo, so the grey
    emoji never shows; 0: every one is an emoji, so it shows in more scenes than at 0.3."""
    shown = {}
    for photos in (0.0, 0.3, 1.0):
        g, c = make_with_distractors(128, photos=photos), make_with_distractors(0, photos=photos)
        shown[photos] = sum(greyish(g.render(i)[0]) - greyish(c.render(i)[0]) > 10 for i in range(24))
    assert shown[1.0] == 0 and shown[0.0] > shown[0.3] > 0


def test_distractors_only_in_the_training_split_and_off_draws_nothing(monkeypatch):
    """The held-out split never gets distractors, whatever the option says; off (the default),
    the training scenes take no draw for them (earlier runs' scenes stay as they were); at a
    tiny share they take exactly one uniform draw per scene and draw nothing; at 1 the objects
    stay where they were and a distractor shows."""
    held = [make_with_distractors(128, p, "heldout") for p in (0.0, 1.0)]
    assert all(np.array_equal(held[0].render(i)[0], held[1].render(i)[0]) for i in range(4))
    assert held[1].distractors is None

    uniform = spy_on_uniform_draws(monkeypatch, answer=0.5)
    changed = 0
    for i in range(4):
        out = {}
        for p in (0.0, 1e-12, 1.0):
            uniform.clear()
            img, objs = make_with_distractors(128, p).render(i)
            out[p] = (img, objs, len(uniform))
        assert np.array_equal(out[0.0][0], out[1e-12][0]) and np.array_equal(out[0.0][1], out[1e-12][1])
        assert out[1e-12][2] - out[0.0][2] == 1
        assert np.array_equal(out[0.0][1], out[1.0][1])  # the objects stay; only the distractor is added
        changed += greyish(out[1.0][0]) > greyish(out[0.0][0])
    assert changed >= 1


def test_distractor_emoji_are_none_of_the_classes():
    """The distractor emoji (installed emoji metadata) hold no class's emoji and none of those
    that look like a class: animal faces, round shapes, a crowned prince, a bomb."""
    from tiny_vlm_train.assets import missing_sources, npm_root

    missing = missing_sources()
    if missing:
        pytest.skip(f"training assets not installed ({', '.join(missing)}): python -m tiny_vlm_train.assets")
    from tiny_vlm_train.labels import build_labels
    from tiny_vlm_train.sprites import DISTRACTOR_SUBCATEGORIES, distractor_entries

    labels = build_labels(npm_root())
    entries = distractor_entries(labels)
    cps = {e["unified"] for e in entries}
    assert not cps & {l["codepoints"] for l in labels}
    assert {"1F600", "1F44D", "2764-FE0F", "1F9D1"} <= cps  # grinning face, thumbs up, red heart, person
    # cat face, see-no-evil monkey, red circle, black large square, prince, princess, bomb, no entry, dog face
    assert not cps & {"1F63A", "1F648", "1F534", "2B1B", "1F934", "1F478", "1F4A3", "26D4", "1F436"}
    assert all(e["subcategory"] in DISTRACTOR_SUBCATEGORIES[e["category"]] for e in entries)
    assert 400 <= len(entries) <= 800
