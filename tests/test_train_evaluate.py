"""The evaluation command's metrics, computed by hand on small cases."""

import pytest

from tiny_vlm_train.evaluate import describe_scores, weakest_classes
from tiny_vlm_train.synthetic import synthetic_labels


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
