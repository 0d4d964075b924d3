"""The training command line as someone reproducing the model meets it: bad arguments fail
at once, Ctrl-C keeps a checkpoint, --resume keeps the run's settings, and a finished run
is not trained further."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed: the training package is optional")

PY_DIR = Path(__file__).resolve().parent.parent / "py"
MICRO = ["--config", "micro", "--image-size", "64", "--vocab-size", "320", "--batch-size", "2", "--warmup", "1", "--workers", "0"]


@pytest.fixture(scope="module")
def assets():
    from tiny_vlm_train.assets import missing_sources

    missing = missing_sources()
    if missing:
        pytest.skip(f"training assets not installed ({', '.join(missing)}): python -m tiny_vlm_train.assets")


def train(*argv, **popen):
    env = {**os.environ, "PYTHONPATH": str(PY_DIR), "OPENBLAS_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "tiny_vlm_train.train", *argv], cwd=PY_DIR, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **popen)


def records(out):
    return [json.loads(line) for line in (out / "train_runs.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("args, message", [
    (("--steps", "5k"), "--steps: must be a positive integer or 'auto', got '5k'"),
    (("--random-conv", "1.5"), "--random-conv must be a share from 0 to 1, got 1.5"),
    (("--partial-view", "-0.1"), "--partial-view must be a share from 0 to 1, got -0.1"),
    (("--distractors", "2"), "--distractors must be a share from 0 to 1, got 2.0"),
    (("--distractor-photos", "0.5"), "--distractor-photos needs --distractors"),
])
def test_bad_arguments_fail_before_any_work(tmp_path, args, message):
    out = tmp_path / "run"
    proc = train("--out", str(out), *args)
    text, _ = proc.communicate(timeout=120)
    assert proc.returncode == 2 and message in text
    assert not out.exists()  # not even its labels were written


def test_an_asset_pack_that_cannot_serve_the_run_fails_before_any_work(tmp_path):
    """A missing pack, or one packed before distractors existed given --distractors, is refused
    at the command line, not later inside a data-loader worker."""
    import numpy as np

    old = tmp_path / "old.npz"
    np.savez(old, labels_key=np.frombuffer(b"[]", np.uint8), sprites_google=np.zeros((1, 2, 2, 4), np.uint8))
    for args, message in [(("--asset-pack", str(tmp_path / "none.npz")), "--asset-pack: no file"),
                          (("--asset-pack", str(old), "--distractors", "0.5"), "--distractors: " + str(old) + ": has no distractors for style(s)")]:
        out = tmp_path / "run"
        proc = train("--out", str(out), *args)
        text, _ = proc.communicate(timeout=120)
        assert proc.returncode == 2 and message in text, text
        assert "Traceback" not in text and not out.exists()
    from argparse import Namespace

    from tiny_vlm_train.train import asset_pack_error

    assert asset_pack_error(Namespace(asset_pack=str(old), distractors=0.0, extra_styles="")) is None  # it serves a run without them


def test_ctrl_c_saves_a_checkpoint_and_resume_keeps_the_settings(tmp_path, assets):
    out = tmp_path / "run"
    proc = train("--out", str(out), *MICRO, "--qa-per-image", "3", "--align", "0", "--random-conv", "0.3", "--partial-view", "0.2",
                 "--distractors", "0.4", "--distractor-photos", "0.6", "--drop-object-photos", "--steps", "100000", "--time-budget", "600")
    lines = []
    for line in proc.stdout:  # wait until it trains, then press Ctrl-C
        lines.append(line)
        if line.startswith("step 10/"):
            proc.send_signal(signal.SIGINT)
            break
    text = "".join(lines) + proc.communicate(timeout=300)[0]
    assert proc.returncode == 130, text
    assert "checkpoint saved" in text and "continue with --resume" in text and "Traceback" not in text
    ck = torch.load(out / "ckpt.pt", weights_only=False)
    assert ck["step"] >= 10 and [r["finished"] for r in records(out)] == [False]
    assert (ck["args"]["qa_per_image"], ck["args"]["align"], ck["args"]["random_conv"]) == (3, 0, 0.3)
    assert ck["args"]["drop_object_photos"] is True and ck["args"]["partial_view"] == 0.2 and ck["args"]["distractors"] == 0.4
    assert ck["args"]["distractor_photos"] == 0.6

    # --resume alone, with a budget that ends it after one more step: the run's own settings, not the defaults
    proc = train("--out", str(out), "--resume", "--time-budget", "0")
    text, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, text
    resumed = torch.load(out / "ckpt.pt", weights_only=False)
    assert resumed["step"] == ck["step"] + 1
    assert (resumed["args"]["qa_per_image"], resumed["args"]["align"], resumed["args"]["workers"]) == (3, 0, 0)
    assert resumed["args"]["random_conv"] == 0.3 and resumed["args"]["drop_object_photos"] is True
    assert resumed["args"]["partial_view"] == 0.2 and resumed["args"]["distractors"] == 0.4
    assert resumed["args"]["distractor_photos"] == 0.6


def test_resuming_a_finished_run_changes_nothing(tmp_path, assets):
    out = tmp_path / "run"
    proc = train("--out", str(out), *MICRO, "--steps", "3", "--time-budget", "600")
    text, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0 and records(out)[-1]["finished"], text
    before = (out / "ckpt.pt").read_bytes(), (out / "train_runs.jsonl").read_text()
    proc = train("--out", str(out), "--resume")
    text, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0 and "finished at step 3/3; nothing to resume" in text, text
    assert ((out / "ckpt.pt").read_bytes(), (out / "train_runs.jsonl").read_text()) == before
