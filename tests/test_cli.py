"""Command line: caption (--json, --stream) and info."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tiny_vlm.cli import main
from tiny_vlm.testing import random_model

PY_DIR = Path(__file__).resolve().parent.parent / "py"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    img = d / "img.npy"
    np.save(img, np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8))
    return random_model(d / "model"), img


def test_caption_json(files, capsys):
    model, img = files
    assert main(["caption", str(img), "--model", str(model), "--max-tokens", "5", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["token_ids"]) == 5 and out["reason"] == "length" and out["stats"]["tokens"] == 5
    assert main(["caption", str(img), "--model", str(model), "--max-tokens", "5", "--stream"]) == 0
    assert capsys.readouterr().out == out["caption"] + "\n"


def test_info(files, capsys):
    model, _ = files
    assert main(["info", str(model), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["params"] == sum(out["params_by_part"].values()) and out["quant"]["scheme"] == "f32"
    assert out["tokenizer_size"] == 323 and out["bytes"] > 4 * out["params"]
    from tiny_vlm import FastVLM

    assert FastVLM.load(model).info()["about"] is None  # its weights do not say what it can see: the app says nothing


def test_errors(files, capsys, tmp_path):
    model, img = files
    assert main(["info", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["caption", str(img), "--model", str(tmp_path)]) == 2
    assert "found none" in capsys.readouterr().err


def test_module_entry_point_without_pillow(files, tmp_path):
    model, _ = files
    png = tmp_path / "x.png"
    png.write_bytes(b"\x89PNG")
    code = (f"import sys; sys.modules['PIL'] = None; sys.path.insert(0, {str(PY_DIR)!r}); sys.argv = ['tiny_vlm', 'caption', "
            f"{str(png)!r}, '--model', {str(model)!r}]; import runpy; runpy.run_module('tiny_vlm', run_name='__main__')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "needs Pillow" in out.stderr
