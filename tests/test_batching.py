"""tiny_vlm.batching: many requests decoded together give each the answer it gets alone."""

import copy
import json

import numpy as np
import pytest

from tiny_vlm import FastVLM
from tiny_vlm.batching import Batcher
from tiny_vlm.testing import random_model

PROMPTS = ["Describe this image.", "What is in this image?", "Is there a dog?", "How many apples are there?"]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return FastVLM.load(random_model(tmp_path_factory.mktemp("batching"), seed=3))


def frames(n, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (40 + 4 * i, 56, 3), dtype=np.uint8) for i in range(n)]


def test_decode_batch_rows_are_single_decodes(model):
    sessions = [model.session(f, p) for f, p in zip(frames(3), PROMPTS)]
    for s in sessions:
        s.prefill()
    for _ in range(3):  # and the second cache two positions further on
        sessions[1].step()
    alone = [copy.deepcopy(s.cache) for s in sessions]
    tokens = [7, 100, 250]
    assert len({s.cache.length for s in sessions}) == 3  # three positions (prompts of other lengths, steps)
    rows = model.lm.decode_batch(tokens, [s.cache for s in sessions])
    for token, cache, row, s in zip(tokens, alone, rows, sessions):
        np.testing.assert_allclose(row, model.lm.decode(token, cache), rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(s.cache.k[:, :, :cache.length], cache.k[:, :, :cache.length], atol=1e-5)  # the same K/V written
        np.testing.assert_allclose(s.cache.v[:, :, :cache.length], cache.v[:, :, :cache.length], atol=1e-5)
        assert s.cache.length == cache.length
    with pytest.raises(ValueError, match="no token is pending"):  # nothing was sampled yet: nothing to feed back
        model.session(frames(1)[0], PROMPTS[0]).feed(rows[0])


def test_answers_equal_generate_alone_and_are_decoded_together(model):
    requests = [(f, PROMPTS[i % 4], {"max_tokens": 3 + i % 5}) for i, f in enumerate(frames(10))]
    requests[4][2]["stop"] = ("a",)
    alone = [model.generate(f, p, **o) for f, p, o in requests]
    with Batcher(model, max_batch=3) as batcher:  # more requests than places: they queue
        futures = [batcher.submit(f, p, **o) for f, p, o in requests]
        together = [f.result(timeout=120) for f in futures]
        stats = dict(batcher.stats)
    assert together == alone
    assert stats["requests"] == 10 and stats["decode_passes"] < stats["decoded_tokens"]  # several answers per pass


def test_stream_and_on_delta_give_the_text_piece_by_piece(model):
    frame = frames(1, seed=5)[0]
    expected = model.generate(frame, PROMPTS[0], max_tokens=8)
    with Batcher(model) as batcher:
        pieces = list(batcher.stream(frame, PROMPTS[0], max_tokens=8))
        seen = []
        text = batcher.submit(frame, PROMPTS[0], on_delta=seen.append, max_tokens=8).result(timeout=60)
    assert "".join(pieces) == expected == text == "".join(seen) and len(pieces) > 1


def test_a_bad_request_fails_alone_and_close_finishes_the_rest(model):
    batcher = Batcher(model, max_batch=2)
    good = [batcher.submit(f, PROMPTS[0], max_tokens=4) for f in frames(3)]
    bad = batcher.submit(frames(1)[0], "   ")
    wrong = batcher.submit(np.zeros((4, 4), np.uint8), PROMPTS[0])
    batcher.close()  # returns when every submitted request is done
    assert all(f.done() for f in good + [bad, wrong])
    assert [f.result() for f in good] == [model.generate(f, PROMPTS[0], max_tokens=4) for f in frames(3)]
    with pytest.raises(ValueError, match="prompt is empty"):
        bad.result()
    with pytest.raises(ValueError, match="is not"):  # ImageError
        wrong.result()
    with pytest.raises(RuntimeError, match="closed"):
        batcher.submit(frames(1)[0], PROMPTS[0])
    with pytest.raises(ValueError, match="max_batch"):
        Batcher(model, max_batch=0)


def test_serving_benchmark_writes_its_table_and_json(tmp_path, capsys):
    import importlib.util
    from pathlib import Path

    root = Path(__file__).resolve().parent
    spec = importlib.util.spec_from_file_location("bench_batching", root / "bench_batching.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    import scene

    if not scene.EMOJI_FONT.is_file():
        pytest.skip(f"{scene.EMOJI_FONT} is missing (apt-get install fonts-noto-color-emoji)")
    out = tmp_path / "batching.json"
    assert bench.main(["--requests", "3", "--max-batch", "2", "--rounds", "1", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["requests"] == 3 and len(report["answers"]) == 3 and len(report["rounds"]) == 1
    assert report["ratio_batcher_over_one_by_one"] == report["median_batcher_ms"] / report["median_one_by_one_ms"]
    assert "| ratio Batcher / one by one |" in capsys.readouterr().out
