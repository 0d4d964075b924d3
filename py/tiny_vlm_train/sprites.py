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
  apple     emoji-datasource-apple 64 px PNGs       <- HELD OUT: evaluation only

A table is uint8 [n_classes, SPRITE, SPRITE, 4]: each emoji cropped to its alpha box,
scaled so its longer side is SPRITE, centred. Cached as .npz in the asset dir.
"""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .assets import NOTO_FONT, assets_dir, npm_root

SPRITE = 64
TRAIN_STYLES = ("noto", "google", "twitter", "facebook", "fluent3d", "fluentflat", "fluentmodern", "openmoji")
HELDOUT_STYLES = ("apple",)
ALL_STYLES = TRAIN_STYLES + HELDOUT_STYLES


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
# The styles added later lack a few of the classes; those rows come from a kin style.
FALLBACK = {"fluentflat": "fluent3d", "fluentmodern": "fluent3d", "openmoji": "twitter"}


def _file_path(style: str, entry: dict) -> Path | None:
    folder, ext, upper = _FILE_STYLES[style]
    base = npm_root() / folder
    for cand in (entry["unified"], entry["unified"].replace("-FE0F", ""), entry.get("non_qualified") or ""):
        cand = cand.upper() if upper else cand.lower()
        if cand and (base / f"{cand}.{ext}").exists():
            return base / f"{cand}.{ext}"
    return None


def _rasterise_svg(path: Path) -> Image.Image:
    """SVG -> RGBA via rsvg-convert (Debian librsvg2-bin; installed by assets.py)."""
    if shutil.which("rsvg-convert") is None:
        raise RuntimeError("rsvg-convert not found: run python -m tiny_vlm_train.assets (it installs librsvg2-bin)")
    png = subprocess.run(["rsvg-convert", "-w", str(SVG_PIXELS), "-h", str(SVG_PIXELS), "--keep-aspect-ratio", str(path)],
                         check=True, capture_output=True).stdout
    return Image.open(io.BytesIO(png)).convert("RGBA")


def load_raw(style: str, entry: dict) -> Image.Image | None:
    """The emoji as an RGBA image in one style, or None when that style lacks it."""
    if style == "noto":
        emoji = "".join(chr(int(c, 16)) for c in entry["unified"].split("-"))
        return _render_noto(emoji)
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


def has_all_styles(entry: dict) -> bool:
    return all(load_raw(s, entry) is not None for s in ALL_STYLES if s != "noto")


def sprite_table(style: str, labels: list[dict]) -> np.ndarray:
    """uint8 [n_classes, SPRITE, SPRITE, 4] for the labels, cached per style."""
    from .labels import emoji_metadata

    key = "_".join(l["codepoints"] for l in labels)
    import hashlib

    h = hashlib.sha1(key.encode()).hexdigest()[:10]
    cache = assets_dir() / "sprites" / f"{style}_{SPRITE}_{h}.npz"
    if cache.exists():
        return np.load(cache)["sprites"]
    if style in _FILE_STYLES and not (npm_root() / _FILE_STYLES[style][0]).is_dir():
        raise FileNotFoundError(f"style {style}: {npm_root() / _FILE_STYLES[style][0]} is missing; run python -m tiny_vlm_train.assets")
    by_cp = {e["unified"]: e for e in emoji_metadata(npm_root()).values()}
    table = np.zeros((len(labels), SPRITE, SPRITE, 4), np.uint8)
    missing = []
    for i, l in enumerate(labels):
        im = load_raw(style, by_cp[l["codepoints"]])
        sp = to_sprite(im) if im is not None else None
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
