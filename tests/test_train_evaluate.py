"""The evaluation command's metrics, computed by hand on small cases."""

import json
from pathlib import Path

import pytest

from tiny_vlm_train.evaluate import describe_scores, recall_by_class, weakest_classes
from tiny_vlm_train.synthetic import synthetic_labels

MODEL_DIR = Path(__file__).resolve().parents[1] / "models" / "tiny-vlm-emoji"


def test_describe_scores_by_hand():
    labels = synthetic_labels()
    pairs = [
        # 1 red circle found of 2, 2 blue squares said for 1: instances tp 2, fp 1, fn 1; classes both right
        ("a red circle and two blue squares", "two red circles and a blue square"),
        # exact; instances tp 2 (green triangle, yellow ring)
        ("a green triangle and a yellow ring", "a green triangle and a yellow ring"),
        # a wrong class: fp 1 (purple cross), fn 1 (orange bar); classes: one false, one missed
        ("a purple cross", "an orange bar"),
    ]
    s = describe_scores(pairs, labels)
    assert s["object_precision"] == pytest.approx(4 / 6)  # tp 4, fp 2
    assert s["object_recall"] == pytest.approx(4 / 6)  # tp 4, fn 2
    assert s["object_f1"] == pytest.approx(4 / 6)
    assert s["class_precision"] == pytest.approx(4 / 5) and s["class_recall"] == pytest.approx(4 / 5)
    assert s["exact_caption_rate"] == pytest.approx(1 / 3)


def test_extra_classes_by_hand():
    """Classes named from nothing: said, not shown, and not standing in for a shown class."""
    from tiny_vlm_train.evaluate import extra_classes

    labels = synthetic_labels()
    assert extra_classes("a red circle and a blue square", "a red circle and a blue square", labels) == 0
    assert extra_classes("two red circles", "a red circle", labels) == 0  # a count, not a class
    assert extra_classes("a purple cross", "an orange bar", labels) == 0  # a swap
    assert extra_classes("a red circle, a purple cross and a blue square", "a red circle and a blue square", labels) == 1
    assert extra_classes("a purple cross and a green triangle", "an orange bar", labels) == 1  # one swap, one from nothing
    assert extra_classes("a purple cross and a green triangle", "", labels) == 2
    assert extra_classes("", "a red circle", labels) == 0  # missed, not named


def test_describe_scores_empty_prediction():
    s = describe_scores([("", "a red circle")], synthetic_labels())
    assert s["object_precision"] == 0 and s["object_recall"] == 0 and s["object_f1"] == 0


def test_weakest_classes_by_hand():
    labels = synthetic_labels()
    pairs = [("a red circle", "a red circle"),
             ("a purple cross", "a red circle"),  # circle missed, cross said instead
             ("two red circles", "two red circles and a blue square"),  # square missed, nothing extra
             ("a blue square", "a blue square"),
             ("a purple cross", "a blue square")]  # square missed again, cross said instead
    rows = weakest_classes(pairs, labels, n=5, min_count=2)
    assert [(r["class"], r["instances"]) for r in rows] == [("blue square", 3), ("red circle", 4)]
    assert rows[0]["recall"] == pytest.approx(1 / 3) and rows[1]["recall"] == pytest.approx(3 / 4)
    assert rows[0]["said_instead"] == ["purple cross"] and rows[1]["said_instead"] == ["purple cross"]
    assert weakest_classes(pairs, labels, min_count=5) == []
    assert recall_by_class(pairs, labels) == {"blue square": [1, 3], "red circle": [3, 4]}  # every class, found of seen


def test_compare_names_the_classes_that_moved(tmp_path, capsys):
    from tiny_vlm_train.evaluate import class_changes, main

    ps = _per_scene([1], [0], [0], [1], [1], [1])
    a, b = _eval_json(ps, seed=1), _eval_json(ps, seed=1)
    assert class_changes(a, b) == []  # JSONs written before recall_by_class: nothing to say
    a["recall_by_class"] = {"cat": [1, 10], "dog": [5, 8], "kite": [3, 3], "cup of coffee": [2, 6]}
    b["recall_by_class"] = {"cat": [6, 10], "dog": [4, 8], "kite": [3, 3], "cup of coffee": [0, 6]}
    rows = class_changes(a, b)
    assert [(r["class"], r["a"], r["b"], r["instances"]) for r in rows] == [("cat", 1, 6, 10), ("cup of coffee", 2, 0, 6), ("dog", 5, 4, 8)]
    fa, fb = tmp_path / "a.json", tmp_path / "b.json"
    fa.write_text(json.dumps(a))
    fb.write_text(json.dumps(b))
    main(["--compare", str(fa), str(fb)])
    assert "moved most (instances found, a -> b): cat 1 -> 6 of 10, cup of coffee 2 -> 0 of 6, dog 5 -> 4 of 8" in capsys.readouterr().out


def _per_scene(tp, fp, fn, exact, count_ok, yes_no_ok):
    return {"tp": tp, "fp": fp, "fn": fn, "exact": exact, "count_ok": count_ok, "yes_no_ok": yes_no_ok}


def test_intervals_collapse_when_every_scene_is_alike():
    from tiny_vlm_train.evaluate import intervals

    n = 40  # each scene: 2 objects found, 1 said wrongly, none missed -> F1 2*2 / (2*2 + 1) = 0.8
    ci = intervals(_per_scene([2] * n, [1] * n, [0] * n, [0] * n, [1] * n, [1] * n))
    assert ci["object_f1"] == pytest.approx([0.8, 0.8])
    assert ci["exact_caption_rate"] == [0.0, 0.0] and ci["count_accuracy"] == [1.0, 1.0]


def test_interval_width_follows_the_number_of_scenes():
    """Half the answers right: the 95% interval of a rate over n scenes is about
    +-1.96 * sqrt(0.25 / n) (normal approximation), so 16x the scenes gives a 4x narrower one."""
    from tiny_vlm_train.evaluate import intervals

    widths = {}
    for n in (100, 1600):
        half = [i % 2 for i in range(n)]
        ci = intervals(_per_scene([1] * n, [0] * n, [0] * n, half, half, half))
        lo, hi = ci["count_accuracy"]
        assert lo < 0.5 < hi
        widths[n] = hi - lo
        assert widths[n] == pytest.approx(2 * 1.96 * (0.25 / n) ** 0.5, rel=0.2)
    assert widths[100] / widths[1600] == pytest.approx(4, rel=0.25)


def test_photos_resampled_whole_widen_the_interval():
    """Four photos of 25 scenes each; every count answer is right on two photos and wrong on
    the other two. Resampling scenes one by one, the interval of a rate of 0.5 over 100 scenes
    is about 0.5 +- 0.1; resampling the photos whole (4 draws of a photo, each all right or all
    wrong) it is 0.0 .. 1.0, since all four draws land on the wrong photos with probability
    1/16 > 2.5% and on the right ones likewise."""
    from tiny_vlm_train.evaluate import intervals

    n = 100
    photo = [f"photo:p{i // 25}.jpg" for i in range(n)]
    right = [int(i // 25 < 2) for i in range(n)]
    ps = _per_scene([1] * n, [0] * n, [0] * n, right, right, right)
    ps["background_id"] = photo
    lo, hi = intervals(ps)["count_accuracy"]
    assert (lo, hi) == (0.0, 1.0)
    lo, hi = intervals(ps, by="scenes")["count_accuracy"]
    assert 0.38 < lo < 0.44 and 0.56 < hi < 0.62
    with pytest.raises(ValueError, match="by must be"):
        intervals(ps, by="backgrounds")


def test_resample_weights_keep_photos_whole_and_the_rest_one_by_one():
    """Every resample draws as many photos as there are and as many other scenes as there are;
    the scenes of one photo always come (or not) together."""
    from tiny_vlm_train.evaluate import _resample_weights

    ids = ["photo:a", "plain", "photo:b", "photo:a", "gradient", "photo:c", "photo:b", "plain"]
    w, how = _resample_weights({"tp": [0] * len(ids), "background_id": ids}, samples=500, seed=3)
    assert how == "backgrounds" and w.shape == (500, len(ids))
    assert (w[:, 0] == w[:, 3]).all() and (w[:, 2] == w[:, 6]).all()
    assert (w[:, [0, 2, 5]].sum(1) == 3).all()  # three photos drawn, each counted once per photo
    assert (w[:, [1, 4, 7]].sum(1) == 3).all()
    assert (w[:, 0] != w[:, 2]).any() and (w[:, 1] != w[:, 7]).any()  # not all in lockstep
    w, how = _resample_weights({"tp": [0] * 5}, samples=10, seed=3)
    assert how == "scenes" and (w.sum(1) == 5).all()


def _eval_json(per_scene, seed=900_003):
    return {"seed": seed, "n_scenes": len(per_scene["tp"]), "per_scene": per_scene}


def test_compare_is_paired():
    """b answers the count question right on 30 more scenes of 100 and is equal elsewhere: the
    paired interval of the difference is about 0.3 +- 1.96 * sqrt(0.3 * 0.7 / 100) = 0.21 .. 0.39
    (unpaired resampling would give about 0.17 .. 0.43); an identical run differs by exactly 0."""
    from tiny_vlm_train.evaluate import compare

    n = 100
    base = dict(tp=[1] * n, fp=[0] * n, fn=[1] * n, exact=[0] * n, yes_no_ok=[1] * n)
    a = _eval_json(_per_scene(count_ok=[int(i < 50) for i in range(n)], **base))
    b = _eval_json(_per_scene(count_ok=[int(i < 80) for i in range(n)], **base))
    c = compare(a, b)
    assert c["count_accuracy"]["a"] == pytest.approx(0.5) and c["count_accuracy"]["b"] == pytest.approx(0.8)
    assert c["count_accuracy"]["difference"] == pytest.approx(0.3)
    lo, hi = c["count_accuracy"]["ci95"]
    assert 0.19 < lo < 0.23 and 0.37 < hi < 0.41 and c["count_accuracy"]["b_ahead"] == 1.0
    assert c["object_f1"]["difference"] == 0 and c["object_f1"]["ci95"] == [0.0, 0.0]
    same = compare(a, a)
    assert all(r["difference"] == 0 and r["ci95"] == [0.0, 0.0] and r["b_ahead"] == 0 for r in same.values())


def test_compare_resamples_photos_whole_and_paired():
    """Two photos of 50 scenes each; b answers right on all of photo p0's scenes where a
    answered right on none, and alike elsewhere, so b - a is +0.5 on count accuracy. Drawing
    the two photos with replacement, both draws land on p1 with probability 1/4 (difference
    0), on p0 with 1/4 (difference 1), and on one of each with 1/2 (0.5): the interval is
    0 .. 1. Scenes resampled one by one would give about 0.5 +- 0.1. Other photos behind the
    same seed are not the same scenes."""
    from tiny_vlm_train.evaluate import compare

    n = 100
    photo = [f"photo:p{i // 50}.jpg" for i in range(n)]
    base = dict(tp=[1] * n, fp=[0] * n, fn=[0] * n, exact=[1] * n, yes_no_ok=[1] * n)
    a = _eval_json(dict(_per_scene(count_ok=[0] * n, **base), background_id=photo))
    b = _eval_json(dict(_per_scene(count_ok=[int(i < 50) for i in range(n)], **base), background_id=photo))
    c = compare(a, b)["count_accuracy"]
    assert c["difference"] == pytest.approx(0.5) and c["ci95"] == [0.0, 1.0] and c["resampling"] == "backgrounds"
    assert 0.70 < c["b_ahead"] < 0.80  # 3/4 of the resamples hold p0 at least once
    other = _eval_json(dict(b["per_scene"], background_id=photo[::-1]))
    with pytest.raises(ValueError, match="other background photos"):
        compare(a, other)
    a.pop("per_scene").pop("background_id")  # an older JSON: scenes one by one
    a["per_scene"] = _per_scene(count_ok=[0] * n, **base)
    c = compare(a, b)["count_accuracy"]
    assert c["resampling"] == "scenes" and 0.38 < c["ci95"][0] < 0.45 and 0.55 < c["ci95"][1] < 0.62


def test_compare_refuses_other_scenes(tmp_path, capsys):
    from tiny_vlm_train.evaluate import compare, main

    ps = _per_scene([1], [0], [0], [1], [1], [1])
    with pytest.raises(ValueError, match="not the same scenes"):
        compare(_eval_json(ps, seed=1), _eval_json(ps, seed=2))
    with pytest.raises(ValueError, match="per-scene"):
        compare({"seed": 1, "n_scenes": 1}, _eval_json(ps, seed=1))
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(_eval_json(ps, seed=1)))
    b.write_text(json.dumps(_eval_json(ps, seed=2)))
    with pytest.raises(SystemExit):
        main(["--compare", str(a), str(b)])
    assert "not the same scenes" in capsys.readouterr().err
    b.write_text(json.dumps(_eval_json(_per_scene([1], [0], [0], [0], [1], [1]), seed=1)))
    main(["--compare", str(a), str(b)])
    out = capsys.readouterr().out
    assert "| exact_caption_rate | 1.000 | 0.000 | -1.000 |" in out


def test_progress_line_rate_limited_and_final():
    import io

    from tiny_vlm_train.evaluate import Progress

    out = io.StringIO()
    bar = Progress(3, "scenes", every=1e9, stream=out)
    for i in (1, 2, 3):
        bar.update(i)
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("scenes 3/3 100.0%") and "done in" in lines[0]


def test_evaluate_the_shipped_model_keeps_per_scene_counts():
    """The evaluation command on the shipped model (NumPy runtime), a few held-out scenes: the
    per-scene counts it keeps add up to its metrics, and the intervals hold the point values."""
    from tiny_vlm_train.assets import missing_sources

    missing = missing_sources()
    if missing:
        pytest.skip(f"training assets not installed ({', '.join(missing)}): python -m tiny_vlm_train.assets")
    from tiny_vlm_train.evaluate import evaluate

    m = evaluate(MODEL_DIR, n_scenes=6, progress=False)
    ps = m["per_scene"]
    assert all(len(v) == 6 for v in ps.values())
    tp, fp, fn = sum(ps["tp"]), sum(ps["fp"]), sum(ps["fn"])
    assert all(0 <= e <= f for e, f in zip(ps["extra"], ps["fp"]))  # a class named from nothing is a false positive
    assert tp > 0 and m["object_precision"] == pytest.approx(tp / (tp + fp)) and m["object_recall"] == pytest.approx(tp / (tp + fn))
    assert m["count_accuracy"] == pytest.approx(sum(ps["count_ok"]) / 6)
    by_class = m["recall_by_class"].values()  # per class: found of seen, the same instances as the scene counts
    assert sum(f for f, _ in by_class) == tp and sum(k for _, k in by_class) == tp + fn
    for k in ("object_f1", "exact_caption_rate", "count_accuracy", "yes_no_accuracy"):
        for ci in ("ci95", "ci95_scenes"):
            lo, hi = m[ci][k]
            assert lo <= m[k] <= hi
    for i, b in enumerate(ps["background_id"]):  # the photo's file name, or the kind of background
        assert b == ps["background"][i] if ps["background"][i] != "photo" else b.startswith("photo:") and len(b) > 6


def test_split_metrics_by_hand():
    """What the headline numbers mix: count questions about a present class, "yes" and "no"
    questions, and each kind of background, counted by hand on four scenes."""
    from tiny_vlm_train.evaluate import split_metrics

    per_scene = {"tp": [2, 1, 0, 3], "fp": [0, 1, 1, 0], "fn": [0, 1, 2, 0], "exact": [1, 0, 0, 1],
                 "count_ok": [1, 0, 1, 1], "count_ref": ["zero", "one", "two", "zero"],
                 "yes_no_ok": [1, 1, 0, 1], "presence_ref": ["yes", "no", "yes", "no"],
                 "background": ["photo", "plain", "photo", "gradient"]}
    m = split_metrics(per_scene)
    assert (m["count_accuracy_present"], m["count_present_questions"]) == (0.5, 2)  # "one" wrong, "two" right
    assert (m["yes_accuracy"], m["no_accuracy"]) == (0.5, 1.0)
    # photos: tp 2, fp 1, fn 2 -> F1 = 4 / (4 + 1 + 2); one exact caption of two
    assert m["by_background"]["photo"] == {"scenes": 2, "object_f1": pytest.approx(4 / 7), "exact_caption_rate": 0.5}
    assert m["by_background"]["plain"] == {"scenes": 1, "object_f1": pytest.approx(2 / 4), "exact_caption_rate": 0.0}
    assert m["by_background"]["gradient"] == {"scenes": 1, "object_f1": 1.0, "exact_caption_rate": 1.0}
    per_scene["extra"] = [0, 1, 2, 0]  # classes named from nothing
    m = split_metrics(per_scene)
    assert m["extra_classes_per_scene"] == 0.75
    assert [m["by_background"][k]["extra_classes_per_scene"] for k in ("photo", "plain", "gradient")] == [1.0, 1.0, 0.0]


def test_background_kind_is_what_the_scene_shows():
    """background_kind(seed, i, split) names what render(i) drew: a photo (here one flat magenta
    picture), a gradient or a plain colour; about 60/20/20 of the scenes."""
    import numpy as np

    from tiny_vlm_train.scenes import SceneConfig, SceneGenerator, background_kind
    from tiny_vlm_train.synthetic import synthetic_sprites

    magenta = np.zeros((96, 96, 3), np.uint8)
    magenta[...] = (255, 0, 255)
    gen = SceneGenerator(synthetic_labels(), "heldout", seed=5, config=SceneConfig(size=64, augment=False),
                         sprite_tables=[synthetic_sprites()], backgrounds=[magenta])
    kinds = []
    for i in range(60):
        img, _ = gen.render(i)
        corners = img[[0, 0, -1, -1], [0, -1, 0, -1]]  # [4, 3]: objects keep off some of them
        photo = (np.abs(corners.astype(int) - (255, 0, 255)).sum(1) <= 2).sum() >= 3
        flat = np.ptp(corners.astype(int), axis=0).max() <= 2
        kind = background_kind(5, i, "heldout")
        kinds.append(kind)
        assert photo == (kind == "photo"), (i, kind, corners)
        if kind == "gradient":
            assert not flat, (i, corners)
    assert 25 <= kinds.count("photo") <= 47 and kinds.count("gradient") >= 4 and kinds.count("plain") >= 4


def test_background_photo_is_the_photo_the_scene_crops():
    """background_photo(seed, i, split, n) names which of n photos render(i) cropped: here three
    flat photos of far-apart colours, told apart by the corners the objects leave free."""
    import numpy as np

    from tiny_vlm_train.scenes import SceneConfig, SceneGenerator, background_photo
    from tiny_vlm_train.synthetic import synthetic_sprites

    colours = [(255, 0, 255), (0, 255, 255), (255, 255, 0)]
    photos = [np.broadcast_to(np.array(c, np.uint8), (96, 96, 3)).copy() for c in colours]
    gen = SceneGenerator(synthetic_labels(), "heldout", seed=8, config=SceneConfig(size=64, augment=False),
                         sprite_tables=[synthetic_sprites()], backgrounds=photos)
    seen = set()
    for i in range(60):
        k = background_photo(8, i, "heldout", len(photos))
        if k is None:
            continue
        img, _ = gen.render(i)
        corners = img[[0, 0, -1, -1], [0, -1, 0, -1]].astype(int)  # [4, 3]
        matches = [(np.abs(corners - c).sum(1) <= 2).sum() for c in colours]
        assert matches[k] >= 3 and max(m for j, m in enumerate(matches) if j != k) == 0, (i, k, corners)
        seen.add(k)
    assert seen == {0, 1, 2}
