"""Answer grammar of the default model (tiny_vlm_train.grammar): pure Python, no torch."""

import numpy as np
import pytest

from tiny_vlm_train.grammar import (NUMBER_WORDS, count_answer, describe, parse_description, presence_answer,
                                    sample_qa)

LABELS = [{"name": "dog", "plural": "dogs"}, {"name": "apple", "plural": "apples"}, {"name": "egg", "plural": "eggs"},
          {"name": "sheep", "plural": "sheep"}, {"name": "ear of corn", "plural": "ears of corn"}]


def objs(*rows):  # (class, x) pairs -> [n, 5]
    return np.array([[c, x, 10, 5, 5] for c, x in rows], np.float32).reshape(-1, 5)


def test_describe_orders_by_leftmost_instance_with_counts_and_articles():
    o = objs((1, 50), (0, 10), (1, 90), (2, 70))
    assert describe(o, LABELS) == "a dog, two apples and an egg"
    assert describe(objs((3, 5), (3, 40), (3, 60)), LABELS) == "three sheep"
    assert describe(objs((4, 30), (0, 20)), LABELS) == "a dog and an ear of corn"
    assert describe(objs((2, 1)), LABELS) == "an egg"
    assert describe(objs(), LABELS) == "nothing"


@pytest.mark.parametrize("rows", [[(1, 50), (0, 10), (1, 90), (2, 70)], [(4, 3), (4, 9)], [(3, 1), (0, 2), (1, 3), (2, 4)]])
def test_parse_inverts_describe(rows):
    o = objs(*rows)
    want = {}
    for c, _ in rows:
        want[LABELS[c]["name"]] = want.get(LABELS[c]["name"], 0) + 1
    assert parse_description(describe(o, LABELS), LABELS) == want


def test_count_and_presence_answers():
    o = objs((1, 50), (1, 90))
    assert count_answer(o, 1) == "two" and count_answer(o, 0) == "zero"
    assert presence_answer(o, 1) == "yes" and presence_answer(o, 2) == "no"
    assert NUMBER_WORDS[3] == "three"


def test_sample_mix_and_negatives():
    rng = np.random.default_rng(0)
    o = objs((1, 50), (0, 10))
    kinds = [sample_qa(o, LABELS, rng) for _ in range(4000)]
    frac = {k: sum(q[0] == k for q in kinds) / len(kinds) for k in ("describe", "count", "presence")}
    assert abs(frac["describe"] - 0.5) < 0.04 and abs(frac["count"] - 0.25) < 0.04
    pres = [q[2] for q in kinds if q[0] == "presence"]
    assert 0.35 < pres.count("no") / len(pres) < 0.65  # negatives about half the time
    assert any(q[1] == "Is there an egg?" for q in kinds)  # article follows the noun
