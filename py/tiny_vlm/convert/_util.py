from __future__ import annotations

import numpy as np


class ConvertError(ValueError):
    """A source checkpoint lacks a tensor or has one of the wrong shape; the message names it."""


def to_numpy(value):  # torch tensor or array -> float32 ndarray
    if type(value).__module__.startswith("torch"):
        value = value.detach().cpu().float().numpy()
    return np.ascontiguousarray(value, dtype=np.float32)


def take(state: dict, key: str):
    if key not in state:
        raise ConvertError(f"source checkpoint has no tensor {key!r}")
    return to_numpy(state[key])
