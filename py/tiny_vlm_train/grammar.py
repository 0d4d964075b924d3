"""Prompts and answers: the grammar the default model is trained on (and its model card documents).

describe  -> the classes ordered by the x of their leftmost instance, each with its count:
             "a dog", "two apples", "a dog and two apples", "a dog, two apples and an egg"
count     "How many apples are there?" -> "zero" / "one" / "two" / "three" / ...
presence  "Is there a dog?" / "Are there any apples?" -> "yes" / "no"
Any other prompt gets the description.
"""

from __future__ import annotations

import numpy as np

NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")

DESCRIBE_PROMPTS = (
    "Describe this image.",
    "What is in this image?",
    "What objects are visible?",
    "What do you see?",
    "What is in the picture?",
    "Describe the picture.",
    "List the objects in this image.",
    "What can you see in this image?",
    "What's in this photo?",
    "Describe what you see.",
)
COUNT_TEMPLATES = ("How many {plural} are there?", "How many {plural} do you see?", "Count the {plural}.", "How many {plural} are in the image?")
PRESENCE_TEMPLATES = ("Is there a {name}?", "Is there a {name} in the image?", "Do you see a {name}?", "Are there any {plural}?")


def article(name: str) -> str:
    return "an" if name[0] in "aeiou" else "a"


def phrase(label: dict, count: int) -> str:
    """'a dog', 'an egg', 'two dogs'."""
    if count == 1:
        return f"{article(label['name'])} {label['name']}"
    return f"{NUMBER_WORDS[count]} {label['plural']}"


def describe(objects: np.ndarray, labels: list[dict]) -> str:
    """objects [n, >=2] (cls, cx, ...) -> 'a dog, two apples and a car' (left to right)."""
    if len(objects) == 0:
        return "nothing"
    leftmost: dict[int, float] = {}
    counts: dict[int, int] = {}
    for row in objects:
        c, x = int(row[0]), float(row[1])
        leftmost[c] = min(x, leftmost.get(c, x))
        counts[c] = counts.get(c, 0) + 1
    order = sorted(leftmost, key=lambda c: leftmost[c])
    parts = [phrase(labels[c], counts[c]) for c in order]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def count_answer(objects: np.ndarray, cls: int) -> str:
    return NUMBER_WORDS[int(sum(int(r[0]) == cls for r in objects))]


def presence_answer(objects: np.ndarray, cls: int) -> str:
    return "yes" if any(int(r[0]) == cls for r in objects) else "no"


def a_an_name(template: str, label: dict) -> str:
    text = template.format(name=label["name"], plural=label["plural"])
    return text.replace(f" a {label['name']}", f" {article(label['name'])} {label['name']}")


def sample_qa(objects: np.ndarray, labels: list[dict], rng: np.random.Generator, kind: str | None = None) -> tuple[str, str, str]:
    """One (kind, prompt, answer) for a scene. Mix 50% describe, 25% count, 25% presence;
    count/presence ask about an absent class half the time."""
    if kind is None:
        u = rng.random()
        kind = "describe" if u < 0.5 else ("count" if u < 0.75 else "presence")
    if kind == "describe":
        return kind, DESCRIBE_PROMPTS[rng.integers(len(DESCRIBE_PROMPTS))], describe(objects, labels)
    present = sorted({int(r[0]) for r in objects})
    if present and rng.random() < 0.5:
        cls = present[rng.integers(len(present))]
    else:
        cls = int(rng.integers(len(labels)))
        while cls in present:
            cls = int(rng.integers(len(labels)))
    if kind == "count":
        t = COUNT_TEMPLATES[rng.integers(len(COUNT_TEMPLATES))]
        return kind, t.format(plural=labels[cls]["plural"]), count_answer(objects, cls)
    t = PRESENCE_TEMPLATES[rng.integers(len(PRESENCE_TEMPLATES))]
    return kind, a_an_name(t, labels[cls]), presence_answer(objects, cls)


def parse_description(text: str, labels: list[dict]) -> dict[str, int]:
    """Inverse of describe(): 'a dog, two apples and an egg' -> {'dog': 1, 'apple': 2, 'egg': 1}.
    Unknown phrases are kept under their text so they count as false positives."""
    by_word: dict[str, str] = {}
    for l in labels:
        by_word[l["name"]] = l["name"]
        by_word[l["plural"]] = l["name"]
    out: dict[str, int] = {}
    text = text.strip().rstrip(".")
    if not text or text == "nothing":
        return out
    pieces = [p.strip() for chunk in text.split(",") for p in chunk.split(" and ")]
    for p in pieces:
        if not p:
            continue
        word, _, rest = p.partition(" ")
        if word in ("a", "an"):
            n, noun = 1, rest
        elif word in NUMBER_WORDS:
            n, noun = NUMBER_WORDS.index(word), rest
        else:
            n, noun = 1, p
        name = by_word.get(noun, noun)
        out[name] = out.get(name, 0) + n
    return out
