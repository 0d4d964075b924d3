"""`python -m tiny_vlm.bench` runs end to end on a tiny random model and writes its JSON."""

import importlib.util
import json

import pytest

from tiny_vlm import bench
from tiny_vlm.testing import random_model


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return random_model(tmp_path_factory.mktemp("tiny"), seed=0)


def run(model_dir, tmp_path, engines):
    out = tmp_path / "r.json"
    argv = ["--model", str(model_dir), "--engines", engines, "--rounds", "1", "--repeats", "1", "--max-tokens", "3",
            "--out", str(out), "--work-dir", str(tmp_path / "work")]
    assert bench.main(argv) == 0
    return json.loads(out.read_text())


def test_bench_tiny_vlm(model_dir, tmp_path, capsys):
    r = run(model_dir, tmp_path, "tiny-vlm")
    s = r["summary"]["tiny-vlm"]
    assert s["tokens"] == 3 and len(s["ids"]) == 3
    assert all(s[m] > 0 for m in bench.METRICS) and s["peak_rss_mb"] > 0
    assert s["ttft_ms"] >= s["encode_ms"] and s["answer_ms"] >= s["ttft_ms"]
    assert r["engines"] == ["tiny-vlm"] and r["model"]["note"] == "given with --model"
    assert "| answer_ms" in capsys.readouterr().out


@pytest.mark.skipif(any(importlib.util.find_spec(p) is None for p in ("torch", "timm", "transformers", "onnx", "onnxruntime")),
                    reason="the peers need torch, timm, transformers, onnx and onnxruntime")
def test_bench_peers_agree(model_dir, tmp_path):
    r = run(model_dir, tmp_path, "tiny-vlm,torch,onnxruntime")
    assert r["engines"] == ["tiny-vlm", "torch", "onnxruntime"] and not r["skipped"]
    assert r["same_token_ids"], {e: r["summary"][e]["ids"] for e in r["engines"]}
    assert set(r["ratios_tiny_over_peer"]) == {"torch", "onnxruntime"}
    assert r["ratios_tiny_over_peer"]["onnxruntime"]["answer_ms"] > 0


def test_bench_rejects_unknown_engine(capsys):
    assert bench.main(["--engines", "tensorflow"]) == 2
    assert "unknown ['tensorflow']" in capsys.readouterr().err


def test_bench_profile(model_dir, capsys):
    assert bench.main(["--profile", "--model", str(model_dir)]) == 0
    out = capsys.readouterr().out
    assert "=== image encode" in out and "=== 20 decode steps" in out and "linear" in out
