"""Test scenes for the browser tests: emoji objects rendered on a soft background, and the
.y4m file Chromium's fake camera plays (4:2:0, BT.601 limited range).

    objects = pick_objects(labels)              # labels.json entries, or None: dog + apple
    image = render_scene(objects, 640, 480)     # PIL RGB, objects left to right in the centre square
    write_y4m(image, "scene.y4m")
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

EMOJI_FONT = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")
EMOJI_FONT_SIZE = 109  # the only size of Noto Color Emoji's bitmap strikes
FALLBACK_OBJECTS = [
    {"name": "dog", "plural": "dogs", "emoji": "\U0001F436"},
    {"name": "apple", "plural": "apples", "emoji": "\U0001F34E"},
]
PREFERRED = ("dog", "apple", "car", "cat", "banana", "bicycle")


def pick_objects(labels: list[dict] | None, n: int = 2) -> list[dict]:
    """n distinct objects for the scene: common ones from the model's labels when it has them."""
    if not labels:
        return FALLBACK_OBJECTS[:n]
    by_name = {label["name"]: label for label in labels}
    chosen = [by_name[name] for name in PREFERRED if name in by_name][:n]
    for label in labels:
        if len(chosen) == n:
            break
        if label not in chosen:
            chosen.append(label)
    return chosen


def render_emoji(emoji: str, side: int) -> Image.Image:
    """One emoji as an RGBA image of side x side pixels."""
    if not EMOJI_FONT.is_file():
        raise FileNotFoundError(f"{EMOJI_FONT} is missing: apt-get install fonts-noto-color-emoji")
    font = ImageFont.truetype(str(EMOJI_FONT), EMOJI_FONT_SIZE)
    canvas = Image.new("RGBA", (160, 160), (0, 0, 0, 0))
    ImageDraw.Draw(canvas).text((8, 8), emoji, font=font, embedded_color=True)
    box = canvas.getbbox()
    if box is None:
        raise ValueError(f"the emoji font draws nothing for {emoji!r}")
    return canvas.crop(box).resize((side, side), Image.LANCZOS)


def render_scene(objects: list[dict], width: int = 640, height: int = 480, seed: int = 0) -> Image.Image:
    """Objects left to right inside the centred square (what the page crops), on a soft gradient."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    top, bottom = np.array([196, 214, 230], np.float32), np.array([222, 206, 178], np.float32)
    mix = (y / height)[..., None]
    background = top * (1 - mix) + bottom * mix + 6 * np.sin(x / 37.0)[..., None]
    background += rng.normal(0, 3, background.shape)  # a little sensor noise
    scene = Image.fromarray(np.clip(background, 0, 255).astype(np.uint8), "RGB")
    square = min(width, height)
    left = (width - square) // 2
    side = square * 9 // (10 * len(objects) + 10)  # 2 objects in 480 px: 144 px each
    gap = (square - side * len(objects)) // (len(objects) + 1)
    for i, obj in enumerate(objects):
        sprite = render_emoji(obj["emoji"], side)
        at = (left + gap + i * (side + gap), (height - side) // 2)
        scene.paste(sprite, at, sprite)
    return scene


def rgb_to_yuv420(image: Image.Image) -> bytes:
    """Planar I420 bytes, BT.601 limited range (Y 16-235, Cb/Cr 16-240), 2x2 averaged chroma."""
    rgb = np.asarray(image.convert("RGB"), dtype=np.float32)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = 16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255
    cb = 128 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255
    cr = 128 + (112.0 * r - 93.786 * g - 18.214 * b) / 255
    h, w = y.shape

    def sub(c):  # [H, W] -> [H/2, W/2]
        return c.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))

    planes = [y, sub(cb), sub(cr)]
    return b"".join(np.clip(np.round(p), 0, 255).astype(np.uint8).tobytes() for p in planes)


def write_y4m(image: Image.Image, path, n_frames: int = 1) -> Path:
    """A YUV4MPEG2 file Chromium's --use-file-for-fake-video-capture plays in a loop."""
    width, height = image.size
    if width % 2 or height % 2:
        raise ValueError(f"4:2:0 needs even sizes, got {width}x{height}")
    frame = rgb_to_yuv420(image)
    path = Path(path)
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{width} H{height} F30:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(n_frames):
            f.write(b"FRAME\n" + frame)
    return path
