"""tiny_vlm.bridge in CPython: the calls worker.js makes, with bytes standing in for JS arrays."""

import json

import numpy as np
import pytest

from tiny_vlm import bridge
from tiny_vlm.testing import random_model


class FakeJsArray:
    """The two members of Pyodide's JsProxy of a Uint8Array that the bridge uses."""

    def __init__(self, data: bytes):
        self.data = data
        self.byteLength = len(data)
        self.copies = 0

    def assign_to(self, target):
        target.reshape(-1)[:] = np.frombuffer(self.data, np.uint8)
        self.copies += 1


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return bridge.load_model(str(random_model(tmp_path_factory.mktemp("bridge"))))


def rgba(w, h, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 4), dtype=np.uint8).tobytes()


def run(model, pixels, w, h, params='{"max_tokens": 6}'):
    s = bridge.start(model, pixels, w, h, "Describe this image.", params)
    bridge.prefill(s)
    deltas = []
    while not bridge.is_done(s):
        deltas.append(bridge.step(s))
    return "".join(deltas), bridge.finish_reason(s), json.loads(bridge.stats_json(s))


def test_generation_matches_the_runtime(model):
    text, reason, stats = run(model, rgba(40, 30), 40, 30)
    assert reason == "length" and stats["tokens"] == 6
    for key in bridge.STAT_KEYS:
        assert key in stats
    assert text == model.generate(rgba(40, 30), "Describe this image.", max_tokens=6, width=40, height=30)


def test_js_array_is_copied_once_and_gives_the_same_answer(model):
    js = FakeJsArray(rgba(40, 30))
    assert run(model, js, 40, 30)[0] == run(model, rgba(40, 30), 40, 30)[0]
    assert js.copies == 1
    pixels = bridge.image_from_js(FakeJsArray(rgba(4, 2)), 4, 2)
    assert pixels.shape == (2, 4, 4) and pixels.dtype == np.uint8


def test_stop_is_reported_as_stopped(model):
    s = bridge.start(model, rgba(8, 8), 8, 8, "Describe this image.", '{"max_tokens": 20}')
    bridge.prefill(s)
    bridge.step(s)
    bridge.stop(s)
    assert bridge.is_done(s) and bridge.finish_reason(s) == "stopped"


def test_model_info_is_json_with_the_crop_side(model):
    info = json.loads(bridge.model_info(model))
    assert info["image_size"] == model.config.vision.image_size and info["name"]


@pytest.mark.parametrize("pixels, w, h, message", [
    (b"\0" * 10, 2, 2, "rgba has 10 bytes, expected 2*2*4 = 16"),
    (FakeJsArray(b"\0" * 10), 2, 2, "rgba has 10 bytes"),
    (b"", 0, 2, "image size must be positive"),
])
def test_bad_images_are_named(model, pixels, w, h, message):
    with pytest.raises(bridge.BridgeError, match=message.replace("*", r"\*")):
        bridge.start(model, pixels, w, h, "Describe this image.", "{}")


@pytest.mark.parametrize("params, message", [
    ("not json", "params is not JSON"),
    ("[1]", "must be a JSON object"),
    ('{"max_tokens": 0}', "max_tokens must be >= 1"),
    ('{"max_tokens": 1.5}', "max_tokens must be an integer"),
    ('{"temperature": "hot"}', "temperature must be a finite number"),
    ('{"beams": 4}', "unknown keys"),
])
def test_bad_params_are_named(params, message):
    with pytest.raises(bridge.BridgeError, match=message):
        bridge.parse_params(params)


def test_empty_prompt_is_refused(model):
    with pytest.raises(bridge.BridgeError, match="prompt must be a non-empty string"):
        bridge.start(model, rgba(2, 2), 2, 2, "  ", "{}")


def test_compiled_modules_pack_unchecked_hash_bytecode_of_imported_modules(tmp_path, monkeypatch):
    """The pack's header lists .pyc paths next to the imported sources, with sizes that add up
    to the payload; each file is unchecked-hash bytecode (flags 0b01) that Python can load."""
    import importlib.util
    import marshal
    import struct as st

    src = tmp_path / "pkgdir" / "packed_demo.py"
    src.parent.mkdir()
    src.write_text("VALUE = 6 * 7\n")
    monkeypatch.syspath_prepend(str(src.parent))
    import packed_demo  # noqa: F401

    pack = bridge.compiled_modules(marker="pkgdir")
    (n,) = st.unpack_from("<I", pack)
    header = json.loads(pack[4:4 + n])
    assert [p for p, _ in header] == [importlib.util.cache_from_source(str(src))]
    body = pack[4 + n:]
    assert len(body) == sum(size for _, size in header)
    pyc = body
    assert pyc[:4] == importlib.util.MAGIC_NUMBER
    assert st.unpack_from("<I", pyc, 4)[0] == 0b01  # hash-based, not checked against the source
    namespace = {}
    exec(marshal.loads(pyc[16:]), namespace)
    assert namespace["VALUE"] == 42


def test_kernels_that_fail_their_self_check_are_not_used(tmp_path):
    """The worker hands load_model the WASM exports; a module that computes wrongly (a bad
    build, a browser quirk) is caught by the self-check and the NumPy kernels answer."""
    from types import SimpleNamespace

    from tiny_vlm.wasm import emulate
    from tiny_vlm.wasm.backend import SimdBackend

    path = str(random_model(tmp_path))
    packed, dot = emulate.emulated_exports()
    kernels = dict(gemm_packed=packed, gemm_dot=dot, gelu=emulate.emulated_gelu(), softmax_rows=emulate.emulated_softmax_rows(),
                   dw_rows=emulate.emulated_dw_rows())
    good = bridge.load_model(path, SimpleNamespace(**kernels))
    assert isinstance(good.backend, SimdBackend)

    def dot_without_bias(a, w, bias, c, m, n, k):
        dot(a, w, 0, c, m, n, k)
    with pytest.warns(UserWarning, match="failed their self-check"):
        fallback = bridge.load_model(path, SimpleNamespace(**dict(kernels, gemm_dot=dot_without_bias)))
    assert not isinstance(fallback.backend, SimdBackend)
    w, h = 40, 30
    assert run(fallback, rgba(w, h), w, h)[:2] == run(bridge.load_model(path), rgba(w, h), w, h)[:2]  # NumPy's answer
