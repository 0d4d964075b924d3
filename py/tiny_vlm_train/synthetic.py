"""Synthetic stand-ins for the installed assets: flat-colour shape sprites and noise
backgrounds. Tests use them so they run on a machine without the emoji/photo assets."""

from __future__ import annotations

import numpy as np

from .sprites import SPRITE

SHAPES = (("red circle", "red circles"), ("blue square", "blue squares"), ("green triangle", "green triangles"),
          ("yellow ring", "yellow rings"), ("orange bar", "orange bars"), ("purple cross", "purple crosses"))
COLOURS = ((220, 30, 30), (30, 60, 220), (30, 180, 60), (230, 210, 20), (240, 130, 20), (140, 40, 180))


def synthetic_labels(n: int = 6) -> list[dict]:
    return [{"name": a, "plural": b, "emoji": "", "codepoints": f"{i:04X}"} for i, (a, b) in enumerate(SHAPES[:n])]


def synthetic_sprites(n: int = 6) -> np.ndarray:  # -> uint8 [n, SPRITE, SPRITE, 4]
    yy, xx = np.mgrid[0:SPRITE, 0:SPRITE] / (SPRITE - 1) * 2 - 1  # [-1, 1]
    r = np.sqrt(xx * xx + yy * yy)
    masks = (r < 0.9, (abs(xx) < 0.8) & (abs(yy) < 0.8), (yy > -0.8) & (abs(xx) < (yy + 0.8) / 2),
             (r < 0.9) & (r > 0.55), (abs(xx) < 0.9) & (abs(yy) < 0.3), (abs(xx) < 0.25) | (abs(yy) < 0.25))
    out = np.zeros((n, SPRITE, SPRITE, 4), np.uint8)
    for i in range(n):
        out[i, ..., :3] = COLOURS[i]
        out[i, ..., 3] = 255 * masks[i]
    return out


def synthetic_backgrounds(n: int = 3, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 255, (96, 96, 3), dtype=np.uint8) for _ in range(n)]
