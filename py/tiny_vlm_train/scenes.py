"""Scene generator: emoji objects composited on photos or plain/gradient backgrounds.

Deterministic from (seed, index): `SceneGenerator(...).render(index)` always gives the
same image and object list. Split "train" uses the training emoji styles and background
photos; split "heldout" uses only held-out styles (apple) and held-out photos (MATE
nature wallpapers, scikit-learn samples) and is what the evaluation renders, with its
own seeds.

Object record: (class_id, cx, cy, w, h) in pixels of the final image (after the slight
perspective warp), cx/cy the centre of the sprite's box.
"""

from __future__ import annotations

import glob
import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from .assets import assets_dir
from .sprites import HELDOUT_STYLES, MONO_STYLES, TRAIN_STYLES, distractor_table, sprite_table

MAX_OBJECTS = 4
MAX_PER_CLASS = 3


# Training photos that show an object of a label class, which training then teaches as
# background (path fragment -> the class shown). `train --drop-object-photos` leaves them out.
OBJECT_PHOTOS = {"samples/skimage_cat.png": "cat", "samples/skimage_chelsea.png": "cat",
                 "samples/skimage_coffee.png": "cup of coffee", "samples/skimage_rocket.png": "rocket",
                 "samples/skimage_astronaut.png": "rocket", "samples/skimage_camera.png": "camera",
                 "tuxpaint/templates/sheep.jpg": "sheep", "tuxpaint/templates/jellyfish.jpg": "jellyfish",
                 "wallpapers/Kite/": "kite", "wallpapers/SafeLanding/": "rocket"}


def is_object_photo(path: str) -> bool:
    return any(fragment in str(path) for fragment in OBJECT_PHOTOS)


def background_files(split: str, drop_object_photos: bool = False) -> list[str]:
    """Photo backgrounds of a split; the held-out set is never used in training.
    drop_object_photos: leave out the training photos of OBJECT_PHOTOS."""
    samples = assets_dir() / "samples"
    if split == "heldout":
        return sorted(glob.glob("/usr/share/backgrounds/mate/nature/*")) + sorted(glob.glob(str(samples / "sklearn_*")))
    files = sorted(glob.glob("/usr/share/tuxpaint/templates/*.jpg"))
    files += sorted(f for f in glob.glob("/usr/share/backgrounds/mate/abstract/*") + glob.glob("/usr/share/backgrounds/mate/desktop/*") if "_3840" not in f and "_5640" not in f)
    files += sorted(glob.glob("/usr/share/mypaint/backgrounds/*/*.png") + glob.glob("/usr/share/mypaint/backgrounds/*/*.jpg"))
    files += sorted(glob.glob(str(samples / "skimage_*")))
    for d in sorted(glob.glob("/usr/share/wallpapers/*/contents/images")):  # KDE Plasma: one size per wallpaper
        sizes = glob.glob(f"{d}/1280x800.*") or sorted(glob.glob(f"{d}/*"))[:1]
        files += sizes[:1]
    files += sorted(glob.glob("/usr/share/backgrounds/gnome/*.webp"))
    return [f for f in files if not is_object_photo(f)] if drop_object_photos else files


def load_backgrounds(split: str, side: int = 320, drop_object_photos: bool = False) -> list[np.ndarray]:
    """Photos as uint8 [h, w, 3] with the shorter side scaled to `side`."""
    out = []
    for f in background_files(split, drop_object_photos):
        im = Image.open(f).convert("RGB")
        s = side / min(im.size)
        im = im.resize((max(side, round(im.size[0] * s)), max(side, round(im.size[1] * s))), Image.BILINEAR)
        out.append(np.asarray(im, dtype=np.uint8))
    if not out:
        raise FileNotFoundError(f"no background photos for split {split!r}: run python -m tiny_vlm_train.assets")
    return out


@dataclass(frozen=True)
class SceneConfig:
    size: int = 128  # S: output side
    min_objects: int = 1
    max_objects: int = MAX_OBJECTS
    min_scale: float = 0.2  # object longer side / S
    max_scale: float = 0.42
    max_scale_single: float = 0.6
    max_rotation: float = 15.0  # degrees
    max_iou: float = 0.12
    min_dx: float = 0.05  # centres of different classes differ by this much in x (/S): the order is well defined
    p_photo: float = 0.6
    p_gradient: float = 0.2
    p_gray: float = 0.08
    p_occlude: float = 0.1
    augment: bool = True
    colour_jitter: bool = False  # per-object grey and small hue turns (stage 5, `--colour-jitter`)
    random_conv: float = 0.0  # share of objects redrawn through a random convolution (`--random-conv`)
    partial_view: float = 0.0  # share of objects shown in part: cut to their top, bottom, left or right (`--partial-view`)
    distractors: float = 0.0  # share of training scenes that try to place one or two things that are no class, never named (`--distractors`)
    distractor_photos: float = 0.0  # share of those things that are ovals cut from a photo, not emoji (`--distractor-photos`)


class SceneGenerator:
    """Renders scenes for one split. Arrays are loaded once; render() is pure given (seed, index)."""

    def __init__(self, labels: list[dict], split: str = "train", seed: int = 0, config: SceneConfig = SceneConfig(), styles=None,
                 sprite_tables: list[np.ndarray] | None = None, backgrounds: list[np.ndarray] | None = None,
                 distractor_tables: list[np.ndarray] | None = None):
        """sprite_tables / backgrounds / distractor_tables (one per style, any number of rows)
        replace the installed assets (tests use synthetic ones)."""
        if split not in ("train", "heldout"):
            raise ValueError(f"split must be 'train' or 'heldout', got {split!r}")
        self.labels, self.split, self.seed, self.cfg = labels, split, seed, config
        self.n_classes = len(labels)
        self.styles = tuple(styles or (TRAIN_STYLES if split == "train" else HELDOUT_STYLES))
        self.sprites = sprite_tables if sprite_tables is not None else [sprite_table(s, labels) for s in self.styles]  # each [n_classes, 64, 64, 4]
        if len(self.sprites) != len(self.styles):
            if styles:
                raise ValueError(f"{len(self.sprites)} sprite tables for {len(self.styles)} styles ({', '.join(self.styles)})")
            self.styles = tuple(f"table{i}" for i in range(len(self.sprites)))  # unnamed tables (the tests' synthetic ones)
        self.mono = [s in MONO_STYLES for s in self.styles]  # ink-on-paper tables: painted per object (two_tone)
        self.backgrounds = backgrounds if backgrounds is not None else load_backgrounds(split)
        self.distractors = None
        if config.distractors and split == "train":
            self.distractors = distractor_tables if distractor_tables is not None else [distractor_table(s, labels) for s in self.styles]
            if len(self.distractors) != len(self.sprites):
                raise ValueError(f"{len(self.distractors)} distractor tables for {len(self.sprites)} styles ({', '.join(self.styles)})")
            empty = [s for s, t in zip(self.styles, self.distractors) if not len(t)]
            if empty:
                raise ValueError(f"no distractor emoji for style(s) {', '.join(empty)}")

    # -- pieces ---------------------------------------------------------------
    def _background(self, rng: np.random.Generator) -> np.ndarray:  # -> float32 [S, S, 3] in 0..255
        S = self.cfg.size
        u = rng.random()
        if u < self.cfg.p_photo:
            bg = self.backgrounds[rng.integers(len(self.backgrounds))]
            h, w = bg.shape[:2]
            crop = int(rng.uniform(0.35, 1.0) * min(h, w))
            y, x = rng.integers(0, h - crop + 1), rng.integers(0, w - crop + 1)
            im = Image.fromarray(bg[y:y + crop, x:x + crop]).resize((S, S), Image.BILINEAR)
            out = np.asarray(im, dtype=np.float32)
            if rng.random() < 0.5:
                out = out[:, ::-1]
            return out
        c0 = rng.uniform(0, 255, 3).astype(np.float32)
        if u < self.cfg.p_photo + self.cfg.p_gradient:
            c1 = rng.uniform(0, 255, 3).astype(np.float32)
            ang = rng.uniform(0, 2 * math.pi)
            yy, xx = np.mgrid[0:S, 0:S].astype(np.float32) / S
            t = np.clip((xx - 0.5) * math.cos(ang) + (yy - 0.5) * math.sin(ang) + 0.5, 0, 1)[..., None]
            return c0 * (1 - t) + c1 * t
        out = np.empty((S, S, 3), np.float32)
        out[:] = c0
        return out

    def _layout(self, rng: np.random.Generator) -> list[tuple[int, float, float, float, float]]:
        """Pick classes, counts and non-overlapping boxes: [(cls, cx, cy, side, angle)]."""
        cfg, S = self.cfg, self.cfg.size
        n = int(rng.integers(cfg.min_objects, cfg.max_objects + 1))
        n_cls = int(rng.integers(-(-n // MAX_PER_CLASS), n + 1))
        classes = rng.choice(self.n_classes, size=n_cls, replace=False)
        counts = np.ones(n_cls, int)
        for _ in range(n - n_cls):  # spread the remaining instances, at most 3 per class
            free = np.nonzero(counts < MAX_PER_CLASS)[0]
            counts[free[rng.integers(len(free))]] += 1
        hi = cfg.max_scale_single if n == 1 else cfg.max_scale
        objs: list[tuple[int, float, float, float, float]] = []
        for c, k in zip(classes, counts):
            for _ in range(k):
                for _try in range(60):
                    side = rng.uniform(cfg.min_scale, hi) * S
                    cx, cy = rng.uniform(side / 2, S - side / 2, 2)
                    if all(_iou((cx, cy, side), (o[1], o[2], o[3])) <= cfg.max_iou and (o[0] == c or abs(cx - o[1]) >= cfg.min_dx * S) for o in objs):
                        objs.append((int(c), float(cx), float(cy), float(side), float(rng.uniform(-cfg.max_rotation, cfg.max_rotation))))
                        break
        return objs

    def render(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Scene `index` -> (uint8 [S, S, 3], float32 [n, 5] objects (cls, cx, cy, w, h))."""
        rng = scene_rng(self.seed, index, self.split)
        cfg, S = self.cfg, self.cfg.size
        img = self._background(rng)
        objs = self._layout(rng)
        table = int(rng.integers(len(self.sprites))) if rng.random() < 0.7 else None  # one style per scene, sometimes mixed
        if self.distractors is not None and rng.random() < cfg.distractors:  # no draw at all when off
            self._distract(img, objs, table, rng)
        records = []
        for c, cx, cy, side, ang in objs:
            tab = table if table is not None else int(rng.integers(len(self.sprites)))
            sp = Image.fromarray(two_tone(self.sprites[tab][c], rng) if self.mono[tab] else self.sprites[tab][c])
            if cfg.augment and self.split == "train":  # training split only: held-out scenes stay as they were
                sp = _style_jitter(sp, rng, self.cfg.colour_jitter)
                if cfg.random_conv and rng.random() < cfg.random_conv:  # no draw at all when off: older runs' streams stay
                    sp = random_conv(sp, rng)
                if cfg.partial_view and rng.random() < cfg.partial_view:  # likewise no draw when off
                    sp = partial_view(sp, rng)
            px = max(4, int(round(side)))
            if sp.size != (px, px):
                sp = sp.resize((px, px), Image.BILINEAR)
            sp = sp.rotate(ang, resample=Image.BILINEAR, expand=True)
            a = np.asarray(sp, dtype=np.float32)
            if cfg.augment and rng.random() < 0.3:  # per-object colour jitter
                a[..., :3] = np.clip(a[..., :3] * rng.uniform(0.75, 1.25) + rng.uniform(-20, 20, 3), 0, 255)
            ys, xs = np.nonzero(a[..., 3] > 20)
            bw, bh = (xs.max() - xs.min() + 1, ys.max() - ys.min() + 1) if len(xs) else (px, px)
            bcx = (xs.min() + xs.max() + 1) / 2 if len(xs) else a.shape[1] / 2
            bcy = (ys.min() + ys.max() + 1) / 2 if len(ys) else a.shape[0] / 2
            x0, y0 = int(round(cx - bcx)), int(round(cy - bcy))
            _paste(img, a, x0, y0)
            records.append((c, x0 + bcx, y0 + bcy, bw, bh))
        rec = np.array(records, np.float32).reshape(-1, 5)
        if cfg.augment:
            img, rec = self._camera(img, rec, rng)
        return np.clip(img + 0.5, 0, 255).astype(np.uint8), rec

    def _distract(self, img: np.ndarray, objs, table: int | None, rng: np.random.Generator) -> None:
        """Paint one or two things that are none of the classes into img (float32 [S, S, 3], in
        place), under the objects and overlapping each by at most max_iou (one try each: a place
        that overlaps more is dropped, so about half of the scenes that try get one): an emoji of sprites.distractor_entries or (a share
        distractor_photos of them) an oval cut from a training photo. They get no targets, so every head learns them as background."""
        cfg, S = self.cfg, self.cfg.size
        for _ in range(1 if rng.random() < 0.7 else 2):
            side = rng.uniform(cfg.min_scale, cfg.max_scale) * S
            cx, cy = rng.uniform(side / 2, S - side / 2, 2)
            if any(_iou((cx, cy, side), (o[1], o[2], o[3])) > cfg.max_iou for o in objs):
                continue
            px = max(4, int(round(side)))
            if rng.random() < 1.0 - cfg.distractor_photos:
                tab = self.distractors[table if table is not None else int(rng.integers(len(self.distractors)))]
                sp = _style_jitter(Image.fromarray(tab[rng.integers(len(tab))]), rng)
                ang = rng.uniform(-cfg.max_rotation, cfg.max_rotation)  # upright like the objects: no shortcut
            else:
                bg = self.backgrounds[rng.integers(len(self.backgrounds))]
                h, w = bg.shape[:2]
                crop = max(1, int(rng.uniform(0.1, 0.5) * min(h, w)))
                y, x = rng.integers(0, h - crop + 1), rng.integers(0, w - crop + 1)
                rgb = np.asarray(Image.fromarray(bg[y:y + crop, x:x + crop]).resize((px, px), Image.BILINEAR))
                yy, xx = (np.mgrid[0:px, 0:px] + 0.5) / px * 2 - 1
                r = np.sqrt(xx ** 2 + (yy / rng.uniform(0.5, 1.0)) ** 2)  # an oval, feathered at its rim
                alpha = np.clip((1 - r) * 8, 0, 1) * 255
                sp = Image.fromarray(np.dstack([rgb, alpha.astype(np.uint8)]))
                ang = rng.uniform(-180, 180)
            sp = sp.resize((px, px), Image.BILINEAR).rotate(ang, resample=Image.BILINEAR, expand=True)
            a = np.asarray(sp, dtype=np.float32)
            _paste(img, a, int(round(cx - a.shape[1] / 2)), int(round(cy - a.shape[0] / 2)))

    def _camera(self, img: np.ndarray, rec: np.ndarray, rng: np.random.Generator):
        S = self.cfg.size
        if rng.random() < self.cfg.p_occlude and len(rec):  # cover part of one object
            c, cx, cy, w, h = rec[rng.integers(len(rec))]
            ow, oh = w * rng.uniform(0.2, 0.45), h * rng.uniform(0.3, 0.7)
            side = rng.integers(4)
            x0 = cx - w / 2 if side == 0 else (cx + w / 2 - ow if side == 1 else cx - ow / 2)
            y0 = cy - h / 2 if side == 2 else (cy + h / 2 - oh if side == 3 else cy - oh / 2)
            xa, ya = int(max(0, x0)), int(max(0, y0))
            img[ya:int(min(S, y0 + oh)), xa:int(min(S, x0 + ow))] = rng.uniform(0, 255, 3)
        if rng.random() < 0.4:  # slight perspective
            src = np.array([[0, 0], [S, 0], [S, S], [0, S]], np.float64)
            dst = src + rng.uniform(-0.06, 0.06, (4, 2)) * S
            coeffs = _homography(dst, src)  # PIL maps output -> input
            im = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).transform((S, S), Image.PERSPECTIVE, tuple(coeffs), Image.BILINEAR)
            fill = np.asarray(im, np.float32)
            img = fill
            if len(rec):
                fwd = _homography(src, dst)
                rec = rec.copy()
                rec[:, 1], rec[:, 2] = _apply_h(fwd, rec[:, 1], rec[:, 2])
        # photometric: contrast, brightness, colour cast, gamma
        mean = img.mean()
        img = (img - mean) * rng.uniform(0.6, 1.4) + mean + rng.uniform(-40, 40)
        img = img * rng.uniform(0.8, 1.2, 3).astype(np.float32)
        if rng.random() < self.cfg.p_gray:
            img = np.repeat(img @ np.array([[0.299], [0.587], [0.114]], np.float32), 3, axis=2)
        img = np.clip(img, 0, 255)
        u = rng.random()
        if u < 0.35:
            im = Image.fromarray(img.astype(np.uint8)).filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.3)))
            img = np.asarray(im, np.float32)
        if rng.random() < 0.5:
            img = img + rng.normal(0, rng.uniform(1, 10), img.shape).astype(np.float32)
        if rng.random() < 0.4:
            buf = io.BytesIO()
            Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=int(rng.integers(25, 90)))
            img = np.asarray(Image.open(buf).convert("RGB"), np.float32)
        return img, rec


def scene_rng(seed: int, index: int, split: str) -> np.random.Generator:
    """Scene `index`'s own random stream; the two splits' streams differ."""
    return np.random.default_rng([seed, int(index), 7 if split == "train" else 11])


def background_kind(seed: int, index: int, split: str, cfg: SceneConfig = SceneConfig()) -> str:
    """What SceneGenerator.render(index) puts behind the objects: "photo", "gradient" or
    "plain" (the first draw of the scene's stream, as _background makes it)."""
    u = scene_rng(seed, index, split).random()
    return "photo" if u < cfg.p_photo else ("gradient" if u < cfg.p_photo + cfg.p_gradient else "plain")


def background_photo(seed: int, index: int, split: str, n_photos: int, cfg: SceneConfig = SceneConfig()) -> int | None:
    """Which of the split's n_photos background photos render(index) crops (the stream's
    second draw, as _background makes it), or None for a gradient or plain colour."""
    rng = scene_rng(seed, index, split)
    if rng.random() >= cfg.p_photo:
        return None
    return int(rng.integers(n_photos))


def two_tone(sprite: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Paint an ink-on-paper sprite (sprites.ink_on_paper) in two colours: half the time dark
    ink on light paper, otherwise any two colours at least 80 apart (mean over RGB).
    uint8 [h, w, 4] -> uint8 [h, w, 4]"""
    if rng.random() < 0.5:
        ink, paper = rng.uniform(0, 90, 3), rng.uniform(160, 255, 3)
    else:
        while True:
            ink, paper = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
            if np.abs(ink - paper).mean() >= 80:
                break
    t = sprite[..., :1].astype(np.float32) / 255.0  # 0 = ink, 1 = paper
    out = sprite.copy()
    out[..., :3] = np.clip(ink * (1 - t) + paper * t + 0.5, 0, 255).astype(np.uint8)
    return out


def _style_jitter(sp: Image.Image, rng: np.random.Generator, colour: bool = False) -> Image.Image:
    """Per-object changes of drawing style (64 px RGBA sprite), so that recognition leans on
    shape more than on one artist's conventions: mirror (artists face animals either way),
    saturation, a dark outline (line-art styles), soft or sharpened rendering. With `colour`
    also: saturation down to grey (artists draw a coin gold or silver) and a small hue turn."""
    if rng.random() < 0.5:
        sp = sp.transpose(Image.FLIP_LEFT_RIGHT)
    u = rng.random(5 if colour else 4)
    if colour and u[4] < 0.15:  # hue turn of at most ~17 degrees: small enough that a lemon stays yellow
        h, s, v = sp.convert("RGB").convert("HSV").split()
        turn = int(rng.integers(-12, 13))
        h = h.point(lambda x: (x + turn) % 256)
        alpha = sp.getchannel("A")
        sp = Image.merge("HSV", (h, s, v)).convert("RGB")
        sp.putalpha(alpha)
    if u[0] < 0.25:
        a = np.asarray(sp, np.float32).copy()
        gray = a[..., :3] @ np.array([0.299, 0.587, 0.114], np.float32)
        factor = 0.0 if colour and rng.random() < 0.3 else rng.uniform(0.4, 1.6)
        a[..., :3] = np.clip(gray[..., None] + (a[..., :3] - gray[..., None]) * factor, 0, 255)
        sp = Image.fromarray(a.astype(np.uint8))
    if u[1] < 0.12:
        alpha = sp.getchannel("A")
        grown = alpha.filter(ImageFilter.MaxFilter(int(rng.choice([3, 5]))))
        ink = Image.new("RGBA", sp.size, tuple(int(v) for v in rng.integers(0, 60, 3)) + (255,))
        ink.putalpha(grown)
        sp = Image.alpha_composite(ink, sp)
    if u[2] < 0.15:
        sp = sp.filter(ImageFilter.GaussianBlur(rng.uniform(0.4, 1.2)))
    elif u[3] < 0.15:
        sp = sp.filter(ImageFilter.UnsharpMask(radius=2, percent=int(rng.integers(80, 200))))
    return sp


def random_conv(sp: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Redraw an RGBA sprite through a random convolution, blended with the original (RandConv,
    Xu et al., ICLR 2021): a k x k kernel (k 1, 3 or 5) mixing the three colour channels, with
    weights drawn from N(0, 1 / (3 k^2)), keeps the outline and the inner edges (the shape)
    and scrambles colours and local texture (the artist's style). Each output channel is
    stretched to 0..255 over the opaque pixels, then mixed with the original by a random
    share. The alpha channel is kept."""
    a = np.asarray(sp.convert("RGBA"), np.float32)
    rgb, alpha = a[..., :3] / 255.0, a[..., 3]
    k = int(rng.choice([1, 3, 5]))
    w = rng.normal(0.0, 1.0 / math.sqrt(3 * k * k), (k, k, 3, 3)).astype(np.float32)  # [dy, dx, in, out]
    r = k // 2
    padded = np.pad(rgb, ((r, r), (r, r), (0, 0)), mode="edge")
    h, wd = rgb.shape[:2]
    out = np.zeros_like(rgb)
    for dy in range(k):
        for dx in range(k):
            out += padded[dy:dy + h, dx:dx + wd] @ w[dy, dx]
    opaque = alpha > 127
    if not opaque.any():
        return sp
    lo, hi = out[opaque].min(0), out[opaque].max(0)  # [3]
    out = (out - lo) / np.maximum(hi - lo, 1e-6)
    share = rng.uniform(0.0, 1.0)
    mixed = np.clip(255.0 * (share * rgb + (1.0 - share) * out), 0, 255)
    return Image.fromarray(np.dstack([mixed, alpha]).astype(np.uint8), "RGBA")


def partial_view(sp: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Show an RGBA sprite in part, as a camera frame or another artist may: keep its top
    (half the time: a head, a cup's rim), bottom, left or right 50-80% along that axis, feather
    the cut over two pixels, and scale the kept part back up to fill the sprite's square (the
    object keeps its size in the scene). A sprite with no opaque pixel is returned as it is.
    Not in the recipe: a CPU stage with a fifth of the objects cut (`train --partial-view 0.2`)
    came out worse or level on the held-out style (the model card's history)."""
    a = np.asarray(sp.convert("RGBA"), np.float32).copy()
    ys, xs = np.nonzero(a[..., 3] > 20)
    if not len(xs):
        return sp
    x0, x1, y0, y1 = int(xs.min()), int(xs.max()) + 1, int(ys.min()), int(ys.max()) + 1
    side = int(rng.choice(4, p=[0.5, 0.1, 0.2, 0.2]))  # 0 top, 1 bottom, 2 left, 3 right
    keep = rng.uniform(0.5, 0.8)
    if side < 2:
        cut = int(round(keep * (y1 - y0)))
        y0, y1 = (y0, y0 + cut) if side == 0 else (y1 - cut, y1)
    else:
        cut = int(round(keep * (x1 - x0)))
        x0, x1 = (x0, x0 + cut) if side == 2 else (x1 - cut, x1)
    part = a[y0:y1, x0:x1]
    ramp = np.minimum(1.0, (np.arange(part.shape[0 if side < 2 else 1]) + 0.5) / 2.0)  # 0.25, 0.75, 1, ... from the cut
    ramp = ramp[::-1] if side in (0, 2) else ramp  # the cut is at the far end of a top or left part
    part[..., 3] *= ramp[:, None] if side < 2 else ramp[None, :]
    h, w = part.shape[:2]
    n = max(h, w)
    square = np.zeros((n, n, 4), np.float32)
    oy, ox = (n - h) // 2, (n - w) // 2
    square[oy:oy + h, ox:ox + w] = part
    return Image.fromarray(square.astype(np.uint8), "RGBA").resize(sp.size, Image.BILINEAR)


def _iou(a, b) -> float:
    (ax, ay, asz), (bx, by, bsz) = a, b
    ix = max(0.0, min(ax + asz / 2, bx + bsz / 2) - max(ax - asz / 2, bx - bsz / 2))
    iy = max(0.0, min(ay + asz / 2, by + bsz / 2) - max(ay - asz / 2, by - bsz / 2))
    inter = ix * iy
    return inter / (asz * asz + bsz * bsz - inter)


def _paste(img: np.ndarray, rgba: np.ndarray, x0: int, y0: int) -> None:
    """Alpha-composite float RGBA [h, w, 4] onto float img [S, S, 3] at (x0, y0), clipped."""
    S = img.shape[0]
    h, w = rgba.shape[:2]
    xa, ya, xb, yb = max(0, x0), max(0, y0), min(S, x0 + w), min(S, y0 + h)
    if xa >= xb or ya >= yb:
        return
    part = rgba[ya - y0:yb - y0, xa - x0:xb - x0]
    alpha = part[..., 3:] / 255.0
    img[ya:yb, xa:xb] = img[ya:yb, xa:xb] * (1 - alpha) + part[..., :3] * alpha


def _homography(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """8 coefficients h with dst = H(src) (PIL PERSPECTIVE order)."""
    A, b = [], []
    for (x, y), (u, v) in zip(src, dst):
        A.append([x, y, 1, 0, 0, 0, -u * x, -u * y]); b.append(u)
        A.append([0, 0, 0, x, y, 1, -v * x, -v * y]); b.append(v)
    return np.linalg.solve(np.array(A), np.array(b))


def _apply_h(h: np.ndarray, x: np.ndarray, y: np.ndarray):
    d = h[6] * x + h[7] * y + 1
    return (h[0] * x + h[1] * y + h[2]) / d, (h[3] * x + h[4] * y + h[5]) / d
