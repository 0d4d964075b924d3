"""The runtime needs only NumPy + the standard library: run it with the heavy packages blocked."""

import json
import subprocess
import sys
from pathlib import Path

from tiny_vlm.testing import random_model

PY_DIR = Path(__file__).resolve().parent.parent / "py"
BLOCKED = ["torch", "PIL", "safetensors", "tokenizers", "transformers", "timm", "regex", "onnx", "onnxruntime", "torchvision"]

SCRIPT = """
import sys, json
for name in {blocked!r}:
    sys.modules[name] = None  # any import of these raises ImportError
sys.path.insert(0, {py!r})
import numpy as np
import tiny_vlm
from tiny_vlm import FastVLM
assert "PIL" not in [m for m in sys.modules if sys.modules[m] is not None]
model = FastVLM.load({model!r})
rgba = (np.arange(40 * 30 * 4) % 256).astype(np.uint8).tobytes()
s = model.session(rgba, "Describe this image.", width=40, height=30, max_tokens=6)
while not s.done:
    s.step()
loaded = sorted(m.split(".")[0] for m in sys.modules if sys.modules[m] is not None)
print(json.dumps({{"ids": s.token_ids, "reason": s.reason, "loaded": loaded}}))
"""


def test_runtime_without_heavy_packages(tmp_path):
    model = random_model(tmp_path / "m", quant="int8")
    code = SCRIPT.format(blocked=BLOCKED, py=str(PY_DIR), model=str(model))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert len(result["ids"]) == 6 and result["reason"] == "length"
    assert not set(BLOCKED) & set(result["loaded"])


def test_import_is_light():
    code = (f"import sys, time; sys.path.insert(0, {str(PY_DIR)!r}); t = time.perf_counter(); import tiny_vlm; "
            "print(time.perf_counter() - t, 'PIL' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    seconds, pil = out.stdout.split()
    assert pil == "False" and float(seconds) < 2.0
