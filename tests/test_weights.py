"""Weights file: round trips per scheme, safetensors compatibility, corrupt files, quantization bounds."""

import json
import struct

import numpy as np
import pytest

from tiny_vlm import quant as Q
from tiny_vlm.config import tensor_shapes
from tiny_vlm.kv_cache import KVCache
from tiny_vlm.lm import LanguageModel
from tiny_vlm.testing import random_tensors, tiny_config, tiny_tokenizer_json
from tiny_vlm.weights import WeightsError, load_weights, save_weights

CONFIG = tiny_config()
TENSORS = random_tensors(CONFIG, seed=3)


@pytest.fixture(scope="module")
def f32_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("w") / "model.safetensors"
    save_weights(path, TENSORS, CONFIG, quant="f32", tokenizer_json=tiny_tokenizer_json(), metadata={"note": "x"})
    return path


@pytest.mark.parametrize("scheme,bound", [("f32", 0.0), ("f16", 1e-3), ("bf16", 8e-3), ("int8", 1e-2), ("int4", 0.2)])
def test_round_trip(tmp_path, scheme, bound):
    path = tmp_path / "m.safetensors"
    rows = save_weights(path, TENSORS, CONFIG, quant=scheme, tokenizer_json="{}", metadata={"k": "v"})
    assert {r.name for r in rows} == set(TENSORS)
    assert max(r.rel_err for r in rows) <= bound
    assert Q.format_report(rows).count("\n") == len(rows) - 1
    w = load_weights(path)
    assert w.config == CONFIG and w.quant["scheme"] == scheme and w.tokenizer_json == "{}" and w.metadata == {"k": "v"}
    for name, ref in TENSORS.items():
        got = w.tensors[name]
        assert got.dtype == np.float32 and got.shape == ref.shape and got.flags.c_contiguous
        err = np.linalg.norm(got - ref) / max(np.linalg.norm(ref), 1e-12)
        assert err <= bound + 1e-7, (name, err)
        if got.ndim == 1:  # norms and biases are never quantized
            assert scheme in ("f16", "bf16") or np.array_equal(got, ref)
    assert load_weights(path.read_bytes()).config == CONFIG  # from bytes too


def test_int4_falls_back_to_int8_when_groups_do_not_fit(tmp_path):
    rows = save_weights(tmp_path / "m.safetensors", TENSORS, CONFIG, quant="int4", group_size=32)
    by_name = {r.name: r.stored_as for r in rows}
    shapes = tensor_shapes(CONFIG)
    for name, kind in by_name.items():
        n_in = int(np.prod(shapes[name][1:])) if len(shapes[name]) > 1 else 0
        if kind in ("int4", "int8"):
            assert (kind == "int4") == (n_in % 32 == 0), name
    assert "int8" in by_name.values() and "int4" in by_name.values()


def test_safetensors_reads_our_files(tmp_path):
    st = pytest.importorskip("safetensors.numpy", reason="the safetensors library is the format reference")
    for scheme in ("f32", "f16", "int8", "int4"):
        path = tmp_path / f"{scheme}.safetensors"
        save_weights(path, TENSORS, CONFIG, quant=scheme)
        loaded = st.load_file(str(path))
        assert "lm.embed_tokens.weight" in loaded
        if scheme == "f32":
            for name, ref in TENSORS.items():
                np.testing.assert_array_equal(loaded[name], ref)


def test_quantized_model_stays_close(tmp_path):
    """Random tiny decoder: int8 logits cosine >= 0.999 and greedy ids agree; int4 cosine >= 0.85 (random Gaussian weights are int4's worst case)."""
    ids = np.random.default_rng(5).integers(0, CONFIG.lm.vocab_size, 24)

    def run(tensors):
        lm = LanguageModel(CONFIG.lm, tensors)
        return lm.forward(lm.embed(ids), KVCache(CONFIG.lm), all_logits=True)  # [T, V]

    ref = run(TENSORS)
    for scheme, min_cos, min_agree in (("int8", 0.999, 0.95), ("int4", 0.85, 0.5)):
        path = tmp_path / f"{scheme}.safetensors"
        save_weights(path, TENSORS, CONFIG, quant=scheme)
        got = run(load_weights(path).tensors)
        cos = np.sum(got * ref, -1) / (np.linalg.norm(got, axis=-1) * np.linalg.norm(ref, axis=-1))
        assert cos.min() >= min_cos, (scheme, cos.min())
        assert np.mean(got.argmax(-1) == ref.argmax(-1)) >= min_agree, scheme


# ------------------------------------------------------------------ corrupt files

def _parts(path):
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8:8 + n]), data[8 + n:]


def _write(path, header, buffer):
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + buffer)


def _edit(f32_file, tmp_path, edit):
    header, buffer = _parts(f32_file)
    buffer = edit(header, buffer) or buffer
    out = tmp_path / "bad.safetensors"
    _write(out, header, buffer)
    return out


def _first(header, skip=()):
    return next(k for k, v in sorted(header.items(), key=lambda kv: kv[1].get("data_offsets", [0])[0] if kv[0] != "__metadata__" else -1)
                if k != "__metadata__" and k not in skip)


def _overlap(h, b):
    names = sorted((k for k in h if k != "__metadata__"), key=lambda k: h[k]["data_offsets"][0])
    a, c = names[0], names[1]
    h[c]["data_offsets"] = [h[c]["data_offsets"][0] - 4, h[c]["data_offsets"][1] - 4]
    h[a]["data_offsets"] = h[a]["data_offsets"]


def _set(key, field, value):
    def edit(h, b):
        h[key][field] = value
    return edit


def _meta(field, value):
    def edit(h, b):
        h["__metadata__"][field] = value
    return edit


def _pop(key):
    def edit(h, b):
        span = h.pop(key)["data_offsets"]
        for v in h.values():  # close the hole so only the name check fails
            if "data_offsets" in v and v["data_offsets"][0] >= span[1]:
                v["data_offsets"] = [o - (span[1] - span[0]) for o in v["data_offsets"]]
        return b[:span[0]] + b[span[1]:]
    return edit


def _extra(h, b):
    h["vision.bogus.weight"] = {"dtype": "F32", "shape": [2], "data_offsets": [len(b), len(b) + 8]}
    return b + bytes(8)


BAD_CONFIG = json.dumps({**json.loads(CONFIG.to_json()), "lm": {**json.loads(CONFIG.to_json())["lm"], "d_model": 48}})
MIS_CONFIG = json.dumps({**json.loads(CONFIG.to_json()), "lm": {**json.loads(CONFIG.to_json())["lm"], "n_layers": 3}})

CASES = {
    "overlapping offsets": (_overlap, "overlap|needs .* bytes"),
    "out-of-range offsets": (_set("lm.norm.weight", "data_offsets", [0, 1 << 40]), "lm.norm.weight: data_offsets .* out of range"),
    "unknown dtype": (_set("lm.norm.weight", "dtype", "F64X"), "lm.norm.weight: unknown or unsupported dtype 'F64X'"),
    "shape/size mismatch": (_set("lm.norm.weight", "shape", [65]), r"lm.norm.weight: shape \[65\] x F32 needs 260 bytes"),
    "wrong shape, right size": (_set("lm.norm.weight", "shape", [8, 8]), r"lm.norm.weight: shape \[8, 8\], expected \[64\]"),
    "missing tensor": (_pop("lm.norm.weight"), "lm.norm.weight: missing"),
    "extra tensor": (_extra, "vision.bogus.weight: not part of this config"),
    "invalid config": (_meta("config", "{not json"), "metadata config is invalid"),
    "config fails validation": (_meta("config", BAD_CONFIG), "metadata config is invalid: projector.d_out"),
    "config mismatch": (_meta("config", MIS_CONFIG), "lm.layers.2.* missing"),
    "not our format": (_meta("format", "other"), "metadata format is 'other'"),
    "bad quant": (_meta("quant", "int3"), "metadata quant 'int3'"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_corrupt_header(f32_file, tmp_path, case):
    edit, message = CASES[case]
    with pytest.raises(WeightsError, match=message):
        load_weights(_edit(f32_file, tmp_path, edit))


def test_corrupt_bytes(f32_file, tmp_path):
    data = f32_file.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(data[:-4])
    with pytest.raises(WeightsError, match="4 bytes|out of range"):
        load_weights(bad)  # truncated buffer
    bad.write_bytes(data[:5])
    with pytest.raises(WeightsError, match="too short"):
        load_weights(bad)
    bad.write_bytes(struct.pack("<Q", 1 << 60) + data[8:])
    with pytest.raises(WeightsError, match="header length 1152921504606846976 exceeds the file size"):
        load_weights(bad)  # oversized header length: refused before reading it
    bad.write_bytes(data[:8] + b"x" + data[9:])
    with pytest.raises(WeightsError, match="not valid JSON"):
        load_weights(bad)
    bad.write_bytes(data + bytes(8))
    with pytest.raises(WeightsError, match="8 bytes after the last tensor"):
        load_weights(bad)  # trailing data
    assert n % 8 == 0


def test_hole_in_buffer(f32_file, tmp_path):
    def hole(h, b):
        name = sorted((k for k in h if k != "__metadata__"), key=lambda k: h[k]["data_offsets"][0])[-1]
        h[name]["data_offsets"] = [o + 4 for o in h[name]["data_offsets"]]
        return b + bytes(4)
    with pytest.raises(WeightsError, match="hole of 4 bytes"):
        load_weights(_edit(f32_file, tmp_path, hole))


def test_writer_checks_names_and_shapes(tmp_path):
    bad = dict(TENSORS)
    bad.pop("lm.norm.weight")
    with pytest.raises(WeightsError, match="lm.norm.weight: missing"):
        save_weights(tmp_path / "x", bad, CONFIG)
    bad = {**TENSORS, "lm.norm.weight": np.zeros(3, np.float32)}
    with pytest.raises(WeightsError, match=r"lm.norm.weight: shape \[3\], expected \[64\]"):
        save_weights(tmp_path / "x", bad, CONFIG)
    with pytest.raises(WeightsError, match="quant 'int2'"):
        save_weights(tmp_path / "x", TENSORS, CONFIG, quant="int2")
    with pytest.raises(WeightsError, match="reserved"):
        save_weights(tmp_path / "x", TENSORS, CONFIG, metadata={"config": "x"})
