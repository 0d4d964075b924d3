"""Emoji art per style, as fixed-size RGBA sprite tables aligned with the labels.

Styles (see assets.py for where each comes from):
  noto      Debian fonts-noto-color-emoji rendered by Pillow (size 109, embedded colour)
  google    emoji-datasource-google 64 px PNGs (Noto design, other rasteriser)
  twitter   emoji-datasource-twitter 64 px PNGs (Twemoji)
  facebook  emoji-datasource-facebook 64 px PNGs
  fluent3d  @lobehub/fluent-emoji-3d WebP (Microsoft Fluent 3-D)
  fluentflat   @lobehub/fluent-emoji-flat SVG (Fluent flat), rasterised by rsvg-convert
  fluentmodern @lobehub/fluent-emoji-modern SVG (Fluent colour gradients), rsvg-convert
  openmoji  openmoji colour SVG (outlined line art), rsvg-convert
  emojione  @iconify-json/emojione SVG (EmojiOne 2, glossy gradients), rsvg-convert  (extra)
  fxemoji   @iconify-json/fxemoji SVG (Firefox OS emoji, flat), rsvg-convert       (extra)
  notov1    @iconify-json/noto-v1 SVG (Noto's earlier designs), rsvg-convert       (extra)
  fluentmono   @iconify-json/fluent-emoji-high-contrast SVG (Fluent, one ink colour)  (extra, mono)
  emojionemono @iconify-json/emojione-monotone SVG (EmojiOne line art, one ink)     (extra, mono)
  clipart, clipart2  Debian tuxpaint-stamps-default and openclipart-png (photos and drawings
            of real objects; 158 of the 198 classes, see clipart.py)              (extra)
  apple     emoji-datasource-apple 64 px PNGs       <- HELD OUT: evaluation only

A table is uint8 [n_classes, SPRITE, SPRITE, 4]: each emoji cropped to its alpha box,
scaled so its longer side is SPRITE, centred. Cached as .npz in the asset dir.

The monochrome styles (MONO_STYLES) carry shape and no colour: their tables hold black ink
over white paper, the paper being what the outline encloses (what the SVG leaves
transparent inside the glyph), so that a scene can paint them in any two colours
(scenes.two_tone).
"""

from __future__ import annotations

import functools
import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .assets import NOTO_FONT, assets_dir, npm_root
from .clipart import OPENCLIPART_DIR, STAMPS_DIR, clipart_path

SPRITE = 64
TRAIN_STYLES = ("noto", "google", "twitter", "facebook", "fluent3d", "fluentflat", "fluentmodern", "openmoji")
HELDOUT_STYLES = ("apple",)
# Loadable (train --extra-styles), but not in the training recipe. A stage trained with the
# first three (and a squeeze jitter) on 2026-11-26 came out level with the shipped one on the
# held-out style (describe F1 +0.011, count -0.003, yes/no +0.004 pooled over 2,700 scenes);
# one trained with the two monochrome ones on 2026-11-27 came out worse than the same recipe
# without them (validation F1 0.720 vs 0.743), and so did one with the two clip-art ones
# (photographs and drawings of real objects; validation F1 0.726 vs 0.743). The model card has
# all three.
EXTRA_STYLES = ("emojione", "fxemoji", "notov1", "fluentmono", "emojionemono", "clipart", "clipart2")
MONO_STYLES = ("fluentmono", "emojionemono")
ALL_STYLES = TRAIN_STYLES + EXTRA_STYLES + HELDOUT_STYLES


def _render_noto(emoji: str) -> Image.Image | None:
    font = ImageFont.truetype(str(NOTO_FONT), 109)
    im = Image.new("RGBA", (160, 160), (0, 0, 0, 0))
    ImageDraw.Draw(im).text((8, 8), emoji, font=font, embedded_color=True)
    return im


def _datasource_path(style: str, entry: dict) -> Path:
    return npm_root() / f"emoji-datasource-{style}" / "img" / style / "64" / entry["image"]


# style -> (folder under node_modules, file extension, codepoints upper-case)
_FILE_STYLES = {"fluent3d": ("@lobehub/fluent-emoji-3d/assets", "webp", False),
                "fluentflat": ("@lobehub/fluent-emoji-flat/assets", "svg", False),
                "fluentmodern": ("@lobehub/fluent-emoji-modern/assets", "svg", False),
                "openmoji": ("openmoji/color/svg", "svg", True)}
SVG_PIXELS = 128  # rasterised side of the SVG styles (sprites are SPRITE px)
# Iconify icon sets: one JSON file of SVG bodies keyed by an icon name made from the emoji's
# name (no codepoint index), so the name is looked up in a few spellings.
_ICONIFY_STYLES = {"emojione": "@iconify-json/emojione", "fxemoji": "@iconify-json/fxemoji",
                   "notov1": "@iconify-json/noto-v1", "fluentmono": "@iconify-json/fluent-emoji-high-contrast",
                   "emojionemono": "@iconify-json/emojione-monotone"}
# The styles added later lack some of the classes (the iconify sets predate Unicode 10:
# 35, 69 and 35 of 198 missing); those rows come from a kin style. The two monochrome styles
# fill each other's gaps (fluentmono lacks 1 class, emojionemono 35).
FALLBACK = {"fluentflat": "fluent3d", "fluentmodern": "fluent3d", "openmoji": "twitter",
            "emojione": "google", "fxemoji": "facebook", "notov1": "noto", "clipart": "fluent3d", "clipart2": "google"}
_CLIPART_STYLES = {"clipart": 0, "clipart2": 1}  # style -> which of a class's pictures


def _file_path(style: str, entry: dict) -> Path | None:
    folder, ext, upper = _FILE_STYLES[style]
    base = npm_root() / folder
    for cand in (entry["unified"], entry["unified"].replace("-FE0F", ""), entry.get("non_qualified") or ""):
        cand = cand.upper() if upper else cand.lower()
        if cand and (base / f"{cand}.{ext}").exists():
            return base / f"{cand}.{ext}"
    return None


def _rasterise_svg(path: Path | None = None, text: str | None = None) -> Image.Image:
    """SVG file or text -> RGBA via rsvg-convert (Debian librsvg2-bin; installed by assets.py)."""
    if shutil.which("rsvg-convert") is None:
        raise RuntimeError("rsvg-convert not found: run python -m tiny_vlm_train.assets (it installs librsvg2-bin)")
    cmd = ["rsvg-convert", "-w", str(SVG_PIXELS), "-h", str(SVG_PIXELS), "--keep-aspect-ratio"]
    png = subprocess.run(cmd + ([str(path)] if path is not None else []), input=None if text is None else text.encode(),
                         check=True, capture_output=True).stdout
    return Image.open(io.BytesIO(png)).convert("RGBA")


@functools.lru_cache(maxsize=None)
def _iconify_set(style: str) -> dict:
    path = npm_root() / _ICONIFY_STYLES[style] / "icons.json"
    if not path.exists():
        raise FileNotFoundError(f"style {style}: {path} is missing; run python -m tiny_vlm_train.assets")
    return json.loads(path.read_text())


# Label -> the CLDR or older Unicode names the iconify sets use where the label's own name,
# the Unicode name and the short names all differ from it.
ICONIFY_NAMES = {"sheep": ["ewe"], "camel": ["dromedary camel"], "sneaker": ["running shoe", "athletic shoe"],
                 "boot": ["womans boot", "womans boots"], "laptop": ["laptop computer", "personal computer"],
                 "padlock": ["locked", "lock"], "gift": ["wrapped gift", "wrapped present"],
                 "backpack": ["school satchel"], "ping pong paddle": ["ping pong", "table tennis paddle and ball"],
                 "pool ball": ["pool 8 ball", "billiards"], "locomotive": ["steam locomotive"],
                 "light bulb": ["electric light bulb"]}


def iconify_name(icons: dict, entry: dict) -> str | None:
    """The icon of an iconify set for an emoji-datasource entry (with "label", our class name):
    the label, its ICONIFY_NAMES, the Unicode name or the short names, hyphenated ("hot-dog") or
    run together ("hotdog"); aliases without transforms resolve to their parent."""
    label = entry.get("label", "")
    names = [label, *ICONIFY_NAMES.get(label, []), entry.get("name") or "", *(entry.get("short_names") or [])]
    aliases = icons.get("aliases", {})
    for n in names:
        words = re.split(r"[\s_-]+", n.lower().strip())
        for cand in ("-".join(words), "".join(words)):
            if cand in icons["icons"]:
                return cand
            if cand in aliases and set(aliases[cand]) == {"parent"}:
                return aliases[cand]["parent"]
    return None


def _iconify_svg(style: str, entry: dict) -> str | None:
    icons = _iconify_set(style)
    name = iconify_name(icons, entry)
    if name is None:
        return None
    icon = icons["icons"][name]
    left, top = icon.get("left", icons.get("left", 0)), icon.get("top", icons.get("top", 0))
    w, h = icon.get("width", icons.get("width", 16)), icon.get("height", icons.get("height", 16))
    return (f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
            f'viewBox="{left} {top} {w} {h}" width="{w}" height="{h}">{icon["body"]}</svg>')


def load_raw(style: str, entry: dict) -> Image.Image | None:
    """The emoji as an RGBA image in one style, or None when that style lacks it."""
    if style == "noto":
        emoji = "".join(chr(int(c, 16)) for c in entry["unified"].split("-"))
        return _render_noto(emoji)
    if style in _CLIPART_STYLES:
        path = clipart_path(entry.get("label", ""), _CLIPART_STYLES[style])
        return None if path is None else load_clipart(path)
    if style in _ICONIFY_STYLES:
        svg = _iconify_svg(style, entry)
        return None if svg is None else _rasterise_svg(text=svg)
    if style in _FILE_STYLES:
        p = _file_path(style, entry)
        if p is not None and p.suffix == ".svg":
            return _rasterise_svg(p)
    else:
        p = _datasource_path(style, entry)
        if not entry.get(f"has_img_{style}", True):
            return None
    if p is None or not p.exists():
        return None
    return Image.open(p).convert("RGBA")


def load_clipart(path: Path) -> Image.Image:
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run python -m tiny_vlm_train.assets (it installs tuxpaint-stamps-default and openclipart-png)")
    return _rasterise_svg(path) if path.suffix == ".svg" else Image.open(path).convert("RGBA")


def to_sprite(im: Image.Image) -> np.ndarray | None:
    """Crop to the alpha box, fit the longer side to SPRITE, centre. -> [SPRITE, SPRITE, 4]"""
    a = np.asarray(im)[..., 3]
    ys, xs = np.nonzero(a > 8)
    if len(ys) < 16:
        return None
    im = im.crop((xs.min(), ys.min(), xs.max() + 1, ys.max() + 1))
    w, h = im.size
    s = SPRITE / max(w, h)
    nw, nh = max(1, round(w * s)), max(1, round(h * s))
    im = im.resize((nw, nh), Image.LANCZOS)
    out = Image.new("RGBA", (SPRITE, SPRITE), (0, 0, 0, 0))
    out.paste(im, ((SPRITE - nw) // 2, (SPRITE - nh) // 2))
    return np.asarray(out, dtype=np.uint8)


def parse_extra_styles(text: str) -> tuple[str, ...]:
    """'a,b' (the --extra-styles flag) -> ('a', 'b'), each one of EXTRA_STYLES."""
    styles = tuple(s.strip() for s in text.split(",") if s.strip())
    bad = [s for s in styles if s not in EXTRA_STYLES]
    if bad:
        raise ValueError(f"unknown extra style(s) {', '.join(bad)}; choose from {', '.join(EXTRA_STYLES)}")
    return styles


def ink_on_paper(sprite: np.ndarray) -> np.ndarray:
    """A one-colour glyph (RGBA, ink where alpha > 0) -> black ink on white paper: the pixels
    the outline encloses (not reachable from the border through transparent pixels) become
    opaque white; the outside stays transparent. -> uint8 [h, w, 4]"""
    a = sprite[..., 3]
    h, w = a.shape
    clear = np.ones((h + 2, w + 2), bool)  # a transparent frame, so the outside is connected
    clear[1:-1, 1:-1] = a < 128
    outside = np.zeros_like(clear)
    outside[0, 0] = True
    while True:  # flood fill through transparent pixels, 4-connected
        grown = outside.copy()
        grown[1:] |= outside[:-1]; grown[:-1] |= outside[1:]
        grown[:, 1:] |= outside[:, :-1]; grown[:, :-1] |= outside[:, 1:]
        grown &= clear
        if (grown == outside).all():
            break
        outside = grown
    inside = ~outside[1:-1, 1:-1]
    out = np.zeros_like(sprite)
    out[..., :3] = np.where(inside, 255 - a, 0)[..., None]
    out[..., 3] = np.where(inside, 255, a)
    return out


def sprite_table(style: str, labels: list[dict]) -> np.ndarray:
    """uint8 [n_classes, SPRITE, SPRITE, 4] for the labels, cached per style."""
    from .labels import emoji_metadata

    key = "_".join(l["codepoints"] for l in labels)
    import hashlib

    h = hashlib.sha1(key.encode()).hexdigest()[:10]
    cache = assets_dir() / "sprites" / f"{style}_{SPRITE}_{h}.npz"
    if cache.exists():
        return np.load(cache)["sprites"]
    folder = _FILE_STYLES[style][0] if style in _FILE_STYLES else _ICONIFY_STYLES.get(style)
    if folder is not None and not (npm_root() / folder).is_dir():
        raise FileNotFoundError(f"style {style}: {npm_root() / folder} is missing; run python -m tiny_vlm_train.assets")
    for d in (STAMPS_DIR, OPENCLIPART_DIR) if style in _CLIPART_STYLES else ():
        if not d.is_dir():
            raise FileNotFoundError(f"style {style}: {d} is missing; run python -m tiny_vlm_train.assets")
    by_cp = {e["unified"]: e for e in emoji_metadata(npm_root()).values()}
    table = np.zeros((len(labels), SPRITE, SPRITE, 4), np.uint8)
    missing = []
    for i, l in enumerate(labels):
        entry = {**by_cp[l["codepoints"]], "label": l["name"]}
        sources = [style] + ([o for o in MONO_STYLES if o != style] if style in MONO_STYLES else [])
        for source in sources:  # the monochrome styles fill each other's gaps
            im = load_raw(source, entry)
            sp = to_sprite(im) if im is not None else None
            if sp is not None:
                break
        if sp is not None and style in MONO_STYLES:
            sp = ink_on_paper(sp)
        if sp is None and style in FALLBACK:
            missing.append(i)
            continue
        if sp is None:
            raise ValueError(f"style {style}: no usable image for {l['name']} ({l['codepoints']})")
        table[i] = sp
    if missing:
        table[missing] = sprite_table(FALLBACK[style], labels)[missing]
        print(f"style {style}: {len(missing)} of {len(labels)} classes missing, taken from {FALLBACK[style]}: "
              + ", ".join(labels[i]["name"] for i in missing))
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(cache, sprites=table)
    return table


# Distractors (train --distractors): emoji that are none of the classes, drawn into training
# scenes and never named, so that the model learns that not every object-like thing in a frame
# is one of its classes. Held-out photos show flowers, a ladybird, a temple roof, and the model
# used to name them (a croissant, a police car, a saw). Only categories far from every class:
# faces (not the cat and monkey faces), hands, people standing still, hearts and such, signs and
# symbols (not the geometric shapes, which are balls, coins and fruit at a glance, nor the
# transport and warning signs, which hold a stop sign and traffic lights), and one flag in four;
# less a few that wear or look like a class (a crowned prince and princess, a round black bomb,
# the cinema sign's film camera).
DISTRACTOR_SUBCATEGORIES = {
    "Smileys & Emotion": {"emotion", "face-affection", "face-concerned", "face-costume", "face-glasses", "face-hand", "face-hat",
                          "face-negative", "face-neutral-skeptical", "face-sleepy", "face-smiling", "face-tongue", "face-unwell", "heart"},
    "People & Body": {"hand-fingers-closed", "hand-fingers-open", "hand-fingers-partial", "hand-single-finger", "hands",
                      "person", "person-gesture", "person-role", "family", "body-parts"},
    "Symbols": {"alphanum", "arrow", "av-symbol", "currency", "gender", "keycap", "math", "other-symbol", "punctuation", "religion", "zodiac"},
    "Flags": {"country-flag"},
}
DISTRACTOR_EXCLUDED = {"1F934", "1F478", "1F4A3", "1F3A6"}
DISTRACTOR_STYLES = TRAIN_STYLES  # an extra style's table is that of FALLBACK's kin style (or google's): colour emoji


def distractor_entries(labels: list[dict]) -> list[dict]:
    """emoji-datasource entries of DISTRACTOR_SUBCATEGORIES, none of them a label's emoji, in
    the metadata's sort order (flags thinned to every fourth)."""
    from .labels import emoji_metadata

    skip = {l["codepoints"] for l in labels} | DISTRACTOR_EXCLUDED
    entries = sorted({e["unified"]: e for e in emoji_metadata(npm_root()).values()}.values(), key=lambda e: e["sort_order"])
    out, flags = [], 0
    for e in entries:
        if e["subcategory"] not in DISTRACTOR_SUBCATEGORIES.get(e["category"], ()) or e["unified"] in skip:
            continue
        if e["category"] == "Flags":
            flags += 1
            if flags % 4:
                continue
        out.append(e)
    return out


def distractor_table(style: str, labels: list[dict]) -> np.ndarray:
    """uint8 [n, SPRITE, SPRITE, 4]: the distractor emoji this style has (rows differ per style), cached."""
    import hashlib

    if style not in DISTRACTOR_STYLES:
        style = FALLBACK.get(style, "google")
    entries = distractor_entries(labels)
    h = hashlib.sha1("_".join(e["unified"] for e in entries).encode()).hexdigest()[:10]
    cache = assets_dir() / "sprites" / f"distractors_{style}_{SPRITE}_{h}.npz"
    if cache.exists():
        return np.load(cache)["sprites"]
    rows = []
    for e in entries:
        im = load_raw(style, e)
        sp = to_sprite(im) if im is not None else None
        if sp is not None:
            rows.append(sp)
    if not rows:
        raise FileNotFoundError(f"style {style}: no distractor emoji found; run python -m tiny_vlm_train.assets")
    table = np.stack(rows)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(cache, sprites=table)
    print(f"style {style}: {len(table)} of {len(entries)} distractor emoji")
    return table
