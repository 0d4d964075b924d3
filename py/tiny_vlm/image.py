"""Frame -> model input: center square crop, resize to S, /255, (x - mean) / std.

    proc = ImageProcessor(config.vision)
    x = proc(rgba_bytes, width=640, height=480)   # float32 [S, S, 3]
    x = proc(np.asarray(pil_image))               # [H, W, 3|4] uint8

Resizing is separable and done in NumPy (Pillow is never needed): area averaging when
shrinking (exact box filter: a few weighted taps per output pixel), bilinear with half-pixel
centres when enlarging. In the browser the model's SimdBackend does crop, resize and
normalisation of RGBA frames in one WASM call on the same taps (`resize_taps`).
"""

from __future__ import annotations

import functools

import numpy as np

from .config import VisionConfig


class ImageError(ValueError):
    """The image has a bad type, shape, dtype, size or byte length; the message says which."""


@functools.lru_cache(maxsize=16)
def _area_taps(n_in: int, n_out: int):  # -> index intp [K, n_out], weight float32 [K, n_out]
    """Box-filter taps for shrinking n_in -> n_out: output o averages the input interval
    [o * r, (o + 1) * r), r = n_in / n_out, each input pixel weighted by its overlap / r.
    K = ceil(r) + 1 taps cover any interval; unused taps get weight 0 (and index 0). Float32
    gathers instead of float64 cumulative sums: 2-3x less memory traffic."""
    r = n_in / n_out
    k_taps = int(np.ceil(r)) + 1
    index = np.zeros((k_taps, n_out), np.intp)
    weight = np.zeros((k_taps, n_out), np.float32)
    for o in range(n_out):
        a, b = o * r, (o + 1) * r
        first = int(np.floor(a))
        for k in range(k_taps):
            i = first + k
            overlap = min(b, i + 1) - max(a, i)
            if i < n_in and overlap > 0:
                index[k, o], weight[k, o] = i, overlap / r
    return index, weight


def _resize_axis(x, n_out, axis):  # [..., n_in, ...] float32 -> [..., n_out, ...]
    n_in = x.shape[axis]
    if n_in == n_out:
        return x
    x = np.moveaxis(x, axis, 0)  # [n_in, ...]
    if n_out < n_in:  # area: mean of the input interval [o, o+1) * n_in / n_out, fractional pixels weighted
        index, weight = _area_taps(n_in, n_out)  # [K, n_out] each: a few input pixels per output pixel
        shape = (n_out,) + (1,) * (x.ndim - 1)
        y = x[index[0]] * weight[0].reshape(shape)
        for k in range(1, len(index)):
            y += x[index[k]] * weight[k].reshape(shape)
    else:  # bilinear, half-pixel centres
        src = np.clip((np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5, 0, n_in - 1)
        lo = np.floor(src).astype(np.int64)
        hi = np.minimum(lo + 1, n_in - 1)
        frac = (src - lo).reshape((-1,) + (1,) * (x.ndim - 1))
        y = x[lo] * (1 - frac) + x[hi] * frac
    return np.moveaxis(y.astype(np.float32), 0, axis)


@functools.lru_cache(maxsize=16)
def resize_taps(n_in: int, n_out: int):  # -> index int32 [n_out, K], weight float32 [n_out, K]
    """The taps of _resize_axis for one axis as one table: output o = sum_k weight[o, k] *
    input[index[o, k]] (area taps when shrinking, the two bilinear taps when enlarging, one
    tap of weight 1 for the same size). For kernels that resize in one call (SimdBackend)."""
    if n_out < n_in:
        index, weight = _area_taps(n_in, n_out)
        return np.ascontiguousarray(index.T, dtype=np.int32), np.ascontiguousarray(weight.T)
    if n_out == n_in:
        return np.arange(n_in, dtype=np.int32)[:, None].copy(), np.ones((n_in, 1), np.float32)
    src = np.clip((np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5, 0, n_in - 1)
    lo = np.floor(src).astype(np.int32)
    frac = src - lo
    index = np.stack([lo, np.minimum(lo + 1, n_in - 1)], axis=1).astype(np.int32)
    weight = np.stack([1 - frac, frac], axis=1).astype(np.float32)
    return index, weight


def resize_normalize(crop, size: int, mean, inv_std):  # uint8 [side, side, 3|4] -> float32 [size, size, 3]
    """The NumPy path: separable resize of the square crop to size x size, then
    (x / 255 - mean) * inv_std per channel."""
    x = crop[:, :, :3].astype(np.float32)  # [side, side, 3]
    x = _resize_axis(_resize_axis(x, size, 0), size, 1)  # [S, S, 3]
    x *= np.float32(1.0 / 255.0)
    x -= mean
    x *= inv_std
    return np.ascontiguousarray(x)


_WIDE_GRAY_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")


def pil_to_rgb(im):  # PIL image -> uint8 [H, W, 3]
    """A PIL image as the camera saw it: upright (a photo's EXIF orientation applied, as
    browsers do) and 8-bit RGB. 16-bit and 32-bit grayscale are scaled down, not clipped
    (Pillow's convert("RGB") would turn nearly every pixel of a 16-bit image white)."""
    if im.getexif().get(0x0112, 1) != 1:  # 274, Orientation
        from PIL import ImageOps  # PIL is there: `im` is a PIL image

        im = ImageOps.exif_transpose(im)
    if im.mode in _WIDE_GRAY_MODES:
        gray = np.asarray(im, dtype=np.float64)
        top = 1.0 if im.mode == "F" and gray.max(initial=0.0) <= 1.0 else (255.0 if gray.max(initial=0.0) <= 255 else 65535.0)
        gray = np.clip(np.rint(gray * (255.0 / top)), 0, 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    return np.asarray(im.convert("RGB"))


def to_pixel_array(image, width: int | None = None, height: int | None = None):  # -> uint8 [H, W, 3|4]
    """Accept a PIL image, an ndarray [H, W, 3|4] uint8, or raw RGBA bytes with width and
    height; the channels are kept (RGBA stays 4-channel, for kernels that read whole pixels)."""
    if isinstance(image, (bytes, bytearray, memoryview)):
        if width is None or height is None:
            raise ImageError("raw RGBA bytes need width and height")
        if not (isinstance(width, int) and isinstance(height, int)) or width <= 0 or height <= 0:
            raise ImageError(f"width and height must be positive integers, got {width!r} x {height!r}")
        n = memoryview(image).nbytes
        if n != width * height * 4:
            raise ImageError(f"RGBA byte length {n} != width {width} * height {height} * 4 = {width * height * 4}")
        return np.frombuffer(image, dtype=np.uint8).reshape(height, width, 4)
    if type(image).__module__.startswith("PIL."):  # a PIL image, without importing PIL ourselves
        image = pil_to_rgb(image)
    if not isinstance(image, np.ndarray):
        raise ImageError(f"image must be a PIL image, an ndarray [H, W, 3|4] uint8 or RGBA bytes; got {type(image).__name__}")
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ImageError(f"image array shape {image.shape} is not [H, W, 3] or [H, W, 4]")
    if image.dtype != np.uint8:
        raise ImageError(f"image array dtype {image.dtype} is not uint8")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ImageError(f"image is empty: {image.shape}")
    return image


def to_rgb_array(image, width: int | None = None, height: int | None = None):  # -> uint8 [H, W, 3]
    """to_pixel_array without the alpha channel."""
    return to_pixel_array(image, width, height)[:, :, :3]


class ImageProcessor:
    """Turns any accepted image into the vision tower's float32 [S, S, 3] input.

    backend: the model's kernels.Backend; its resize_normalize does the work (NumPy's
    resize_normalize above, or a WASM kernel in the browser). None: NumPy."""

    def __init__(self, config: VisionConfig, backend=None) -> None:
        self.size = config.image_size
        self.mean = np.asarray(config.image_mean, dtype=np.float32)
        self.inv_std = 1.0 / np.asarray(config.image_std, dtype=np.float32)
        self.backend = backend

    def __call__(self, image, width: int | None = None, height: int | None = None):  # -> [S, S, 3]
        pixels = to_pixel_array(image, width, height)  # [H, W, 3|4] uint8
        h, w, _ = pixels.shape
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        crop = pixels[top:top + side, left:left + side]  # a view: [side, side, 3|4]
        if self.backend is None:
            return resize_normalize(crop, self.size, self.mean, self.inv_std)
        return self.backend.resize_normalize(crop, self.size, self.mean, self.inv_std)
