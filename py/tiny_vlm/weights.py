"""The weights file: safetensors-compatible, checked against the config on load.

Layout (DESIGN.md §3): 8-byte little-endian header length N, N bytes of JSON padded
with spaces to a multiple of 8, then the tensor buffer (C order, little-endian, no
holes). `__metadata__` holds format=tiny_vlm, format_version, config (JSON), quant (JSON:
scheme and parameters, see quant.py), and optionally tokenizer (tokenizer.json text).

    rows = save_weights("model.safetensors", tensors, config, quant="int8")
    w = load_weights("model.safetensors")   # w.tensors: name -> float32, dequantized
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass, field

import numpy as np

from . import quant as Q
from .config import ConfigError, ModelConfig, tensor_shapes

FORMAT = "tiny_vlm"
FORMAT_VERSION = "1"
RESERVED_METADATA = ("format", "format_version", "config", "quant", "tokenizer")
MAX_HEADER_BYTES = 64 << 20  # a header bigger than this is corrupt, whatever the file says

# safetensors dtype name -> little-endian NumPy dtype
DTYPES = {
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "BF16": np.dtype("<u2"),  # raw bits, widened by quant.from_bf16_bits
    "I8": np.dtype("i1"),
    "U8": np.dtype("u1"),
}


class WeightsError(ValueError):
    """The weights file (or the tensors given to the writer) is wrong; the message says where."""


@dataclass
class Weights:
    """A loaded weights file: every tensor float32, contiguous, shaped as tensor_shapes(config)."""

    config: ModelConfig
    tensors: dict[str, np.ndarray]
    quant: dict
    tokenizer_json: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def n_params(self) -> int:
        return sum(int(t.size) for t in self.tensors.values())


# ---------------------------------------------------------------- writer

def save_weights(path, tensors: dict, config: ModelConfig, quant: str = "int8", tokenizer_json: str | None = None,
                 metadata: dict | None = None, group_size: int = Q.DEFAULT_GROUP,
                 min_elements: int = Q.DEFAULT_MIN_ELEMENTS) -> list[Q.QuantReport]:
    """Write `tensors` (float arrays named as tensor_shapes(config)) and return the error report.

    quant: f32 | f16 | bf16 | int8 | int4 (see quant.py). Returns one QuantReport per
    tensor; print it with quant.format_report(rows).
    """
    if quant not in Q.SCHEMES:
        raise WeightsError(f"quant {quant!r} is not one of {Q.SCHEMES}")
    expected = tensor_shapes(config)
    missing = sorted(set(expected) - set(tensors))
    extra = sorted(set(tensors) - set(expected))
    if missing:
        raise WeightsError(f"tensor {missing[0]}: missing (expected shape {list(expected[missing[0]])}); {len(missing)} missing in all")
    if extra:
        raise WeightsError(f"tensor {extra[0]}: not part of this config; {len(extra)} unexpected in all")
    metadata = dict(metadata or {})
    for key in metadata:
        if key in RESERVED_METADATA or key == "quant":
            raise WeightsError(f"metadata key {key!r} is reserved")
        if not isinstance(metadata[key], str):
            raise WeightsError(f"metadata {key!r}: values must be strings, got {type(metadata[key]).__name__}")

    stored: dict[str, tuple[str, np.ndarray]] = {}  # name -> (dtype name, array)
    rows: list[Q.QuantReport] = []
    for name in expected:
        w = np.asarray(tensors[name])
        if tuple(w.shape) != expected[name]:
            raise WeightsError(f"tensor {name}: shape {list(w.shape)}, expected {list(expected[name])}")
        if not np.issubdtype(w.dtype, np.floating):
            raise WeightsError(f"tensor {name}: dtype {w.dtype} is not floating point")
        w32 = np.ascontiguousarray(w, dtype=np.float32)
        if not np.all(np.isfinite(w32)):
            raise WeightsError(f"tensor {name}: contains NaN or infinity")
        quantize = Q.is_quantized_scheme(quant) and Q.should_quantize(name, w32.shape, min_elements)
        if quantize and quant == "int4" and Q.int4_fits(w32.shape, group_size):
            packed, scale = Q.quantize_int4(w32, group_size)
            stored[name] = ("U8", packed)
            stored[name + "_scale"] = ("F32", scale)
            rows.append(Q.error_row(name, "int4", w32, Q.dequantize_int4(packed, scale, w32.shape)))
        elif quantize:  # int8, or int4's fallback for rows that do not split into groups
            q, scale = Q.quantize_int8(w32)
            stored[name] = ("I8", q)
            stored[name + "_scale"] = ("F32", scale)
            rows.append(Q.error_row(name, "int8", w32, Q.dequantize_int8(q, scale)))
        elif quant == "f16":
            h = w32.astype("<f2")
            stored[name] = ("F16", h)
            rows.append(Q.error_row(name, "f16", w32, h.astype(np.float32)))
        elif quant == "bf16":
            bits = Q.to_bf16_bits(w32)
            stored[name] = ("BF16", bits)
            rows.append(Q.error_row(name, "bf16", w32, Q.from_bf16_bits(bits)))
        else:  # f32, and the small/1-D tensors of the int schemes
            stored[name] = ("F32", w32)
            rows.append(Q.error_row(name, "f32", w32, w32))

    quant_info = {"scheme": quant}
    if Q.is_quantized_scheme(quant):
        quant_info["min_elements"] = min_elements
        quant_info["int8"] = "per output row: I8 weight, F32 weight_scale [out]"
        if quant == "int4":
            quant_info["group_size"] = group_size
            quant_info["int4"] = (f"groups of {group_size} inputs: U8 weight [out, in/2] low nibble first, value = nibble - 8; "
                                  f"F32 weight_scale [out, in/{group_size}]; rows with in % {group_size} != 0 use int8")
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "config": config.to_json(),
            "quant": json.dumps(quant_info, sort_keys=True)}
    if tokenizer_json is not None:
        meta["tokenizer"] = tokenizer_json
    meta.update(metadata)

    # Widest dtypes first keeps every tensor aligned to its item size in the buffer.
    order = sorted(stored, key=lambda n: (-DTYPES[stored[n][0]].itemsize, n))
    header: dict = {"__metadata__": meta}
    offset = 0
    for name in order:
        dtype, arr = stored[name]
        n_bytes = arr.size * DTYPES[dtype].itemsize
        header[name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [offset, offset + n_bytes]}
        offset += n_bytes
    header_bytes = json.dumps(header, separators=(",", ":"), ensure_ascii=True).encode("utf-8")
    header_bytes += b" " * (-len(header_bytes) % 8)
    tmp = f"{os.fspath(path)}.tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(header_bytes)))
        f.write(header_bytes)
        for name in order:
            dtype, arr = stored[name]
            f.write(np.ascontiguousarray(arr, dtype=DTYPES[dtype]).tobytes())
    os.replace(tmp, path)
    return rows


# ---------------------------------------------------------------- reader

def load_weights(source) -> Weights:
    """Read and check a weights file (path, or the file's bytes); tensors come back float32."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = memoryview(source).cast("B")
        label = "<bytes>"
        header_len, header = _read_header(data[:8], len(data), lambda n: bytes(data[8:8 + n]), label)
    else:
        label = os.fspath(source)
        size = os.path.getsize(label)
        with open(label, "rb") as f:
            header_len, header = _read_header(f.read(8), size, f.read, label)
            f.seek(0)
            data = memoryview(f.read()).cast("B")  # the only full read; tensors are views into it
    return _parse(data, 8 + header_len, header, label)


def _read_header(first8, file_size, read, label):
    if file_size < 8 or len(first8) < 8:
        raise WeightsError(f"{label}: file too short ({file_size} bytes) for the 8-byte header length")
    (n,) = struct.unpack("<Q", bytes(first8))
    if n > file_size - 8:
        raise WeightsError(f"{label}: header length {n} exceeds the file size {file_size} (truncated or corrupt)")
    if n > MAX_HEADER_BYTES:
        raise WeightsError(f"{label}: header length {n} is larger than the {MAX_HEADER_BYTES}-byte limit")
    raw = read(n)
    try:
        header = json.loads(bytes(raw).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise WeightsError(f"{label}: header is not valid JSON: {err}") from None
    if not isinstance(header, dict):
        raise WeightsError(f"{label}: header is a JSON {type(header).__name__}, expected an object")
    return n, header


def _parse(data, start, header, label) -> Weights:
    meta = header.pop("__metadata__", None)
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise WeightsError(f"{label}: __metadata__ missing or not a string -> string map")
    if meta.get("format") != FORMAT:
        raise WeightsError(f"{label}: metadata format is {meta.get('format')!r}, expected {FORMAT!r}")
    if meta.get("format_version") != FORMAT_VERSION:
        raise WeightsError(f"{label}: format_version {meta.get('format_version')!r} is not supported (expected {FORMAT_VERSION!r})")
    try:
        config = ModelConfig.from_json(meta["config"])
    except KeyError:
        raise WeightsError(f"{label}: metadata has no config") from None
    except (ConfigError, json.JSONDecodeError, TypeError, AttributeError) as err:
        raise WeightsError(f"{label}: metadata config is invalid: {err}") from None
    try:
        quant_info = json.loads(meta.get("quant", "{}"))
        scheme = quant_info["scheme"]
    except (json.JSONDecodeError, KeyError, TypeError):
        raise WeightsError(f"{label}: metadata quant {meta.get('quant')!r} is not a JSON object with a scheme") from None
    if scheme not in Q.SCHEMES:
        raise WeightsError(f"{label}: quant scheme {scheme!r} is not one of {Q.SCHEMES}")

    # 1. every entry: dtype, shape, offsets consistent with each other and the buffer
    buffer_len = len(data) - start
    raw: dict[str, np.ndarray] = {}
    spans = []
    for name, entry in header.items():
        if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
            raise WeightsError(f"tensor {name}: header entry must have exactly dtype, shape, data_offsets; got {entry!r}")
        dtype = entry["dtype"]
        if dtype not in DTYPES:
            raise WeightsError(f"tensor {name}: unknown or unsupported dtype {dtype!r} (supported: {sorted(DTYPES)})")
        shape, offsets = entry["shape"], entry["data_offsets"]
        if not (isinstance(shape, list) and all(isinstance(d, int) and d >= 0 for d in shape)):
            raise WeightsError(f"tensor {name}: bad shape {shape!r}")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)):
            raise WeightsError(f"tensor {name}: bad data_offsets {offsets!r}")
        begin, end = offsets
        if not 0 <= begin <= end <= buffer_len:
            raise WeightsError(f"tensor {name}: data_offsets {offsets} out of range of the {buffer_len}-byte buffer")
        n_bytes = int(np.prod(shape, dtype=np.int64)) * DTYPES[dtype].itemsize
        if end - begin != n_bytes:
            raise WeightsError(f"tensor {name}: shape {shape} x {dtype} needs {n_bytes} bytes, data_offsets give {end - begin}")
        spans.append((begin, end, name))
    spans.sort()
    cursor, prev = 0, None
    for begin, end, name in spans:
        if begin < cursor:
            raise WeightsError(f"tensor {name}: data_offsets [{begin}, {end}] overlap tensor {prev}")
        if begin > cursor:
            raise WeightsError(f"tensor {name}: hole of {begin - cursor} bytes before it in the buffer")
        cursor, prev = end, name
    if cursor != buffer_len:
        raise WeightsError(f"{label}: {buffer_len - cursor} bytes after the last tensor (buffer has holes or trailing data)")
    for begin, end, name in spans:
        entry = header[name]
        arr = np.frombuffer(data, dtype=DTYPES[entry["dtype"]], count=(end - begin) // DTYPES[entry["dtype"]].itemsize,
                            offset=start + begin)
        raw[name] = arr.reshape(entry["shape"])

    # 2. names and shapes against the config; dequantize/widen to float32
    expected = tensor_shapes(config)
    scale_names = {n + "_scale" for n in expected}
    extra = sorted(n for n in raw if n not in expected and not (n in scale_names and n[:-len("_scale")] in raw))
    if extra:
        raise WeightsError(f"tensor {extra[0]}: not part of this config ({len(extra)} unexpected in all)")
    tensors: dict[str, np.ndarray] = {}
    for name, shape in expected.items():
        if name not in raw:
            raise WeightsError(f"tensor {name}: missing (expected shape {list(shape)})")
        tensors[name] = _restore(name, raw, header[name]["dtype"], shape)
    tokenizer_json = meta.get("tokenizer")
    extra_meta = {k: v for k, v in meta.items() if k not in RESERVED_METADATA}
    return Weights(config, tensors, quant_info, tokenizer_json, extra_meta)


def _restore(name, raw, dtype, shape):  # stored tensor(s) -> float32 [shape]
    out = _restore_values(name, raw, dtype, shape)
    if dtype not in ("I8", "U8") and not np.isfinite(out).all():  # (int8: its scales were checked)
        raise WeightsError(f"tensor {name}: holds NaN or infinite values (a damaged file?)")
    return out


def _restore_values(name, raw, dtype, shape):
    arr = raw[name]
    scale = raw.get(name + "_scale")
    if scale is not None and not np.isfinite(scale).all():
        raise WeightsError(f"tensor {name}_scale: holds NaN or infinite values (a damaged file?)")
    if dtype in ("I8", "U8"):
        if scale is None:
            raise WeightsError(f"tensor {name}: {dtype} weight without {name}_scale")
        if scale.dtype != DTYPES["F32"]:
            raise WeightsError(f"tensor {name}_scale: dtype must be F32")
    elif scale is not None:
        raise WeightsError(f"tensor {name}_scale: scale given for a {dtype} (unquantized) tensor")
    n_out, n_in = shape[0], int(np.prod(shape[1:]))
    if dtype == "I8":
        if tuple(arr.shape) != shape:
            raise WeightsError(f"tensor {name}: shape {list(arr.shape)}, expected {list(shape)}")
        if tuple(scale.shape) != (n_out,):
            raise WeightsError(f"tensor {name}_scale: shape {list(scale.shape)}, expected [{n_out}] (int8 per row)")
        return Q.dequantize_int8(arr, scale)
    if dtype == "U8":
        if len(shape) < 2 or tuple(arr.shape) != (n_out, n_in // 2) or n_in % 2:
            raise WeightsError(f"tensor {name}: int4 shape {list(arr.shape)}, expected [{n_out}, {n_in // 2}] for {list(shape)}")
        if scale.ndim != 2 or scale.shape[0] != n_out or scale.shape[1] == 0 or n_in % scale.shape[1] or (n_in // scale.shape[1]) % 2:
            raise WeightsError(f"tensor {name}_scale: shape {list(scale.shape)} does not split {n_in} inputs into even groups")
        return Q.dequantize_int4(arr, scale, shape)
    if tuple(arr.shape) != shape:
        raise WeightsError(f"tensor {name}: shape {list(arr.shape)}, expected {list(shape)}")
    if dtype == "F32":
        return arr if arr.flags.c_contiguous and arr.flags.aligned else np.ascontiguousarray(arr)
    if dtype == "F16":
        return arr.astype(np.float32)
    return Q.from_bf16_bits(arr)  # BF16
