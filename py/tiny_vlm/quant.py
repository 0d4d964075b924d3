"""Weight quantization shared by the writer and the reader.

Schemes (the weights file's `quant` metadata names one):
  f32, f16, bf16  every tensor stored in that float type (widened to float32 on load)
  int8            symmetric per output row: `<name>.weight` I8 (same shape as the float
                  weight) and `<name>.weight_scale` F32 [out]; w = q * scale[row]
  int4            symmetric, groups of `group_size` (default 32) consecutive inputs of a
                  row (the weight flattened to [out, in]): `<name>.weight` U8 [out, in/2],
                  two values per byte, low nibble = even column, value = nibble - 8 in
                  [-7, 7]; `<name>.weight_scale` F32 [out, in/group]; w = value * scale.
                  A weight whose `in` is not a multiple of the group falls back to int8.
Only weights with ndim >= 2 and at least `min_elements` values are quantized (linear,
embedding and conv kernels); norms, biases and small tensors stay float32.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SCHEMES = ("f32", "f16", "bf16", "int8", "int4")
DEFAULT_GROUP = 32
DEFAULT_MIN_ELEMENTS = 1024


def is_quantized_scheme(scheme: str) -> bool:
    return scheme in ("int8", "int4")


def should_quantize(name: str, shape: tuple[int, ...], min_elements: int = DEFAULT_MIN_ELEMENTS) -> bool:
    return name.endswith(".weight") and len(shape) >= 2 and int(np.prod(shape)) >= min_elements


def quantize_int8(w):  # [out, ...] float -> int8 [out, ...], float32 [out]
    rows = w.reshape(w.shape[0], -1).astype(np.float32)  # [out, in]
    max_abs = np.max(np.abs(rows), axis=1)  # [out]
    scale = np.where(max_abs > 0, max_abs / 127.0, 1.0).astype(np.float32)
    q = np.clip(np.rint(rows / scale[:, None]), -127, 127).astype(np.int8)
    return q.reshape(w.shape), scale


def dequantize_int8(q, scale):  # int8 [out, ...], [out] -> float32 [out, ...]
    rows = q.reshape(q.shape[0], -1).astype(np.float32)
    rows *= scale[:, None]
    return rows.reshape(q.shape)


def int4_fits(shape: tuple[int, ...], group: int = DEFAULT_GROUP) -> bool:
    n_in = int(np.prod(shape[1:]))
    return group % 2 == 0 and n_in % group == 0


def quantize_int4(w, group=DEFAULT_GROUP):  # [out, ...] -> uint8 [out, in/2], float32 [out, in/group]
    rows = w.reshape(w.shape[0], -1).astype(np.float32)  # [out, in]
    n_out, n_in = rows.shape
    assert int4_fits(w.shape, group), (w.shape, group)
    groups = rows.reshape(n_out, n_in // group, group)  # [out, G, group]
    max_abs = np.max(np.abs(groups), axis=2)  # [out, G]
    scale = np.where(max_abs > 0, max_abs / 7.0, 1.0).astype(np.float32)
    q = np.clip(np.rint(groups / scale[:, :, None]), -7, 7).astype(np.int16) + 8  # [out, G, group] in 1..15
    q = q.reshape(n_out, n_in // 2, 2).astype(np.uint8)  # [out, in/2, 2]
    packed = q[:, :, 0] | (q[:, :, 1] << 4)  # [out, in/2]
    return np.ascontiguousarray(packed, dtype=np.uint8), scale


def dequantize_int4(packed, scale, shape):  # uint8 [out, in/2], [out, G] -> float32 shape
    n_out, half = packed.shape
    n_groups = scale.shape[1]
    values = np.empty((n_out, half, 2), dtype=np.float32)  # [out, in/2, 2]
    values[:, :, 0] = packed & 0x0F
    values[:, :, 1] = packed >> 4
    values -= 8.0
    values = values.reshape(n_out, n_groups, -1)  # [out, G, group]
    values *= scale[:, :, None]
    return values.reshape(shape)


@dataclass(frozen=True)
class QuantReport:
    """One row of the export report (llama2.c export.py style)."""

    name: str
    stored_as: str  # f32, f16, bf16, int8, int4
    shape: tuple[int, ...]
    max_abs_err: float  # max |w - dequant(quant(w))|
    rel_err: float  # ||w - w'|| / ||w|| (L2)

    def __str__(self) -> str:
        return f"{self.name:<48} {self.stored_as:>5} {str(list(self.shape)):>18}  max_abs_err {self.max_abs_err:.3e}  rel_err {self.rel_err:.3e}"


def format_report(rows: list[QuantReport]) -> str:
    """The report as printable lines, worst relative error last."""
    return "\n".join(str(r) for r in sorted(rows, key=lambda r: r.rel_err))


def error_row(name: str, stored_as: str, w, w_restored) -> QuantReport:
    diff = (w_restored.astype(np.float64) - w.astype(np.float64)).ravel()
    norm = float(np.linalg.norm(w.astype(np.float64).ravel()))
    max_abs = float(np.max(np.abs(diff))) if diff.size else 0.0
    rel = float(np.linalg.norm(diff)) / norm if norm > 0 else 0.0
    return QuantReport(name, stored_as, tuple(w.shape), max_abs, rel)


def to_bf16_bits(w):  # float -> uint16 (round to nearest even)
    bits = np.ascontiguousarray(w, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    return rounded.astype(np.uint16)


def from_bf16_bits(bits):  # uint16 -> float32
    return (bits.astype(np.uint32) << 16).view(np.float32)
