"""Worker-side glue between web/worker.js and the runtime (the only Pyodide-specific module).

worker.js drives decoding itself, one call per step, so that it can yield to its event
loop between tokens and honour `stop`. Everything returned to JS is a str, bool, or one
session object per request (a PyProxy the worker destroys when the request ends):

    model = load_model("/model")                      # once, after the files are written
    info = json.loads(model_info(model))
    s = start(model, rgba, width, height, prompt, '{"max_tokens": 32}')
    prefill(s)
    while not is_done(s):
        text = step(s)                                # the worker posts it as a `token`
    finish_reason(s), json.loads(stats_json(s))     # "eos" | "length" | "stopped"
    pack = compiled_modules()                         # after boot, for the worker's cache

Nothing here imports `js` or `pyodide`: a JS typed array arrives as a JsProxy and is read
through its buffer protocol method `assign_to`, so the module also runs (and is tested)
in CPython with `bytes`.
"""

from __future__ import annotations

import importlib.util
import json
import math
import py_compile
import struct
import sys
import warnings

import numpy as np

from tiny_vlm import FastVLM

# Accepted keys of the `params` JSON, with their defaults (names as in FastVLM.session).
PARAM_DEFAULTS = {"max_tokens": 32, "temperature": 0.0, "top_k": 0, "top_p": 1.0, "seed": 0}
STAT_KEYS = ("preprocess_ms", "encode_ms", "prefill_ms", "ttft_ms", "decode_ms_per_token", "tokens")


class BridgeError(ValueError):
    """A value sent by the worker is malformed; the message names it."""


def load_model(model_dir: str, gemm_exports=None) -> FastVLM:
    """Load the model the worker wrote into the in-memory file system.

    gemm_exports: the exports of the WASM SIMD GEMM module (tiny_vlm/wasm/gen.py), which
    worker.js instantiated on Pyodide's own memory, or None for the NumPy kernels.
    """
    if gemm_exports is None:
        return FastVLM.load(model_dir)
    from tiny_vlm.wasm.backend import KernelSelfCheckError, SimdBackend

    e = gemm_exports
    backend = SimdBackend(e.gemm_packed, e.gemm_dot, gelu=e.gelu, softmax_rows=e.softmax_rows, dw_rows=e.dw_rows,
                          swiglu=getattr(e, "swiglu", None), dw_s2=getattr(e, "dw_s2", None),
                          resize_rgba=getattr(e, "resize_rgba", None), attend=getattr(e, "attend", None),
                          rope=getattr(e, "rope", None), rms_rows=getattr(e, "rms_rows", None))  # getattr: None for a module from before the kernel
    try:
        backend.self_check()  # a few small GEMMs against NumPy (milliseconds): a bad build must not give wrong answers
    except KernelSelfCheckError as err:
        warnings.warn(f"the WASM kernels failed their self-check ({err}): using the NumPy kernels", stacklevel=2)
        return FastVLM.load(model_dir)
    return FastVLM.load(model_dir, backend=backend)


def model_info(model: FastVLM) -> str:
    """JSON facts for the page (`ready.info.model`): name, image_size (the crop side), backend..."""
    return json.dumps(model.info(), default=str)


def image_from_js(rgba, width: int, height: int) -> np.ndarray:  # -> [Hi, Wi, 4] uint8
    """RGBA pixels from a JS Uint8Array (JsProxy) or bytes, copied at most once."""
    if not (isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0):
        raise BridgeError(f"image size must be positive integers, got width={width!r} height={height!r}")
    n_bytes = width * height * 4
    if isinstance(rgba, (bytes, bytearray, memoryview)):
        if len(rgba) != n_bytes:
            raise BridgeError(f"rgba has {len(rgba)} bytes, expected {width}*{height}*4 = {n_bytes}")
        return np.frombuffer(rgba, dtype=np.uint8).reshape(height, width, 4)  # no copy
    if rgba.byteLength != n_bytes:
        raise BridgeError(f"rgba has {rgba.byteLength} bytes, expected {width}*{height}*4 = {n_bytes}")
    pixels = np.empty((height, width, 4), dtype=np.uint8)
    rgba.assign_to(pixels)  # the one copy: JS memory straight into the array
    return pixels


def parse_params(params_json: str) -> dict:
    """Sampling parameters from the worker's JSON; unknown keys and bad values raise."""
    try:
        given = json.loads(params_json)
    except json.JSONDecodeError as err:
        raise BridgeError(f"params is not JSON: {err}") from None
    if not isinstance(given, dict):
        raise BridgeError(f"params must be a JSON object, got {params_json!r}")
    unknown = sorted(set(given) - set(PARAM_DEFAULTS))
    if unknown:
        raise BridgeError(f"params: unknown keys {unknown}; accepted: {sorted(PARAM_DEFAULTS)}")
    params = {**PARAM_DEFAULTS, **{k: v for k, v in given.items() if v is not None}}
    for key in ("max_tokens", "top_k", "seed"):
        if not isinstance(params[key], int) or isinstance(params[key], bool):
            raise BridgeError(f"params.{key} must be an integer, got {params[key]!r}")
    for key in ("temperature", "top_p"):
        value = params[key]
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            raise BridgeError(f"params.{key} must be a finite number, got {value!r}")
        params[key] = float(value)
    if params["seed"] < 0:
        raise BridgeError(f"params.seed must be >= 0, got {params['seed']}")
    if params["max_tokens"] < 1:
        raise BridgeError(f"params.max_tokens must be >= 1, got {params['max_tokens']}")
    return params


def start(model: FastVLM, rgba, width: int, height: int, prompt: str, params_json: str):
    """A new generation session for one frame and prompt (not prefilled yet)."""
    if not isinstance(prompt, str) or not prompt.strip():
        raise BridgeError(f"prompt must be a non-empty string, got {prompt!r}")
    pixels = image_from_js(rgba, width, height)  # [Hi, Wi, 4]
    return model.session(pixels, prompt, **parse_params(params_json))


def prefill(session) -> None:
    """Encode the image and run the prompt through the LM (the time to first token)."""
    session.prefill()


def step(session) -> str:
    """Decode one token; returns its text delta ("" while a UTF-8 sequence is incomplete)."""
    return session.step()


def is_done(session) -> bool:
    return bool(session.done)


def stop(session) -> None:
    session.stop()


def finish_reason(session) -> str:
    """Why the session ended, in protocol terms: "eos", "length" or "stopped".

    A stop string ends the answer as naturally as the end-of-sequence token, so the
    runtime's "stop" is reported as "eos"; its "stopped" (Session.stop()) passes through.
    """
    reason = session.reason
    if reason not in ("eos", "length", "stop", "stopped"):
        raise BridgeError(f"runtime returned an unknown finish reason {reason!r}")
    return "eos" if reason == "stop" else reason


def stats_json(session) -> str:
    """The session's timing stats as JSON (at least STAT_KEYS)."""
    stats = session.stats
    missing = [k for k in STAT_KEYS if k not in stats]
    if missing:
        raise BridgeError(f"runtime stats lack {missing}")
    return json.dumps({k: _plain(v) for k, v in stats.items()})


def _plain(value):
    if isinstance(value, (np.floating, float)):
        return round(float(value), 3)
    if isinstance(value, (np.integer, int)):
        return int(value)
    return value


def compiled_modules(marker: str = "site-packages") -> bytes:
    """Bytecode of the imported modules whose files lie under `marker` (NumPy and tiny_vlm),
    as unchecked-hash .pyc files packed into one blob: u32 little-endian header length, a JSON
    header [[pyc path, size], ...], then the files' bytes in that order.

    Pyodide never writes bytecode (sys.dont_write_bytecode) and its file system is rebuilt on
    every boot, so every boot compiled NumPy's 80-odd modules from source again. The worker
    stores this pack (keyed by the sha256 of the wheels and of Pyodide) and writes the files
    back before the next import. Unchecked-hash: the sources are unpacked anew on each boot,
    so their mtimes never match; the cache key stands for the source instead."""
    entries, blobs = [], []
    for module in list(sys.modules.values()):
        source = getattr(module, "__file__", None)
        if not source or not source.endswith(".py") or marker not in source:
            continue
        target = importlib.util.cache_from_source(source)
        try:
            py_compile.compile(source, cfile=target, doraise=True, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
            with open(target, "rb") as f:
                data = f.read()
        except (py_compile.PyCompileError, OSError):
            continue
        entries.append([target, len(data)])
        blobs.append(data)
    header = json.dumps(entries).encode()
    return struct.pack("<I", len(header)) + header + b"".join(blobs)
