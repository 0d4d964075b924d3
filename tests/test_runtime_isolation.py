"""The runtime needs only NumPy + the standard library: run it with the heavy packages blocked."""

import json
import subprocess
import sys
from pathlib import Path

from tiny_vlm.testing import random_model

PY_DIR = Path(__file__).resolve().parent.parent / "py"
BLOCKED = ["torch", "PIL", "safetensors", "tokenizers", "transformers", "timm", "regex", "onnx", "onnxruntime", "torchvision"]

# The runtime may try these and do without them (a faster regex engine for the tokenizer).
OPTIONAL = {"regex"}

SCRIPT = """
import sys, json
attempts = []


class Block:  # records every attempt to import a blocked package, and refuses it
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {blocked!r}:
            attempts.append(name)
            raise ImportError(f"blocked: {{name}}")
        return None


sys.meta_path.insert(0, Block())
sys.path.insert(0, {py!r})
import numpy as np
import tiny_vlm
from tiny_vlm import FastVLM
model = FastVLM.load({model!r})
rgba = (np.arange(40 * 30 * 4) % 256).astype(np.uint8).tobytes()
s = model.session(rgba, "Describe this image.", width=40, height=30, max_tokens=6)
while not s.done:
    s.step()
loaded = sorted(m.split(".")[0] for m in sys.modules if sys.modules[m] is not None)
print(json.dumps({{"ids": s.token_ids, "reason": s.reason, "loaded": loaded, "attempts": sorted(set(attempts))}}))
"""


def test_runtime_without_heavy_packages(tmp_path):
    model = random_model(tmp_path / "m", quant="int8")
    code = SCRIPT.format(blocked=BLOCKED, py=str(PY_DIR), model=str(model))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert len(result["ids"]) == 6 and result["reason"] == "length"
    assert set(result["attempts"]) <= OPTIONAL, result["attempts"]  # nothing else was even tried
    assert "numpy" in result["loaded"] and not set(BLOCKED) & set(result["loaded"])


def test_import_is_light():
    # `import tiny_vlm` alone (what the browser worker does first) loads NumPy and nothing heavy
    code = (f"import sys; sys.path.insert(0, {str(PY_DIR)!r}); import tiny_vlm; "
            "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    loaded = set(out.stdout.split())
    assert out.returncode == 0 and "tiny_vlm" in loaded and "numpy" in loaded, out.stderr
    assert not loaded & {"PIL", "torch", "scipy", "pandas", "regex", "tokenizers", "safetensors"}, loaded
