"""The shipped model, in CPython, on scenes this test draws itself: Noto emoji (a training
style) on a soft background, as the browser tests' fake camera shows them. Every answer is
written out by hand from what the scene holds, in the grammar of the model card."""

import json
import sys
from pathlib import Path

import pytest

from tiny_vlm import FastVLM

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "models" / "tiny-vlm-emoji"
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
import scene  # noqa: E402

# objects left to right -> the description, then (question, answer) pairs
CASES = [
    (["dog", "apple"], "a dog and an apple",
     [("How many dogs are there?", "one"), ("Is there an apple?", "yes"), ("Is there a lion?", "no"),
      ("How many lions are there?", "zero")]),
    (["car", "banana", "cat"], "a car, a banana and a cat",
     [("How many bananas are there?", "one"), ("Do you see a cat?", "yes"), ("Is there a guitar?", "no")]),
    (["apple", "apple", "dog"], "two apples and a dog",
     [("How many apples are there?", "two"), ("Count the dogs.", "one"), ("Is there a dog?", "yes")]),
    (["banana", "banana", "banana"], "three bananas",
     [("How many bananas are there?", "three"), ("How many apples are there?", "zero"), ("Is there an apple?", "no")]),
    (["umbrella", "key", "teapot"], "an umbrella, a key and a teapot",
     [("Is there a teapot?", "yes"), ("How many keys are there?", "one")]),
    (["elephant"], "an elephant", [("What is in this image?", "an elephant"), ("Is there a mouse?", "no")]),
]


@pytest.fixture(scope="module")
def model():
    if not (SHIPPED / "model.safetensors").is_file():
        pytest.skip(f"{SHIPPED} has no model.safetensors")
    if not scene.EMOJI_FONT.is_file():
        pytest.skip(f"{scene.EMOJI_FONT} is missing (apt-get install fonts-noto-color-emoji; test.sh installs it)")
    return FastVLM.load(SHIPPED)


@pytest.mark.parametrize("names, description, questions", CASES, ids=["-".join(c[0]) for c in CASES])
def test_the_shipped_model_answers_what_the_scene_holds(model, names, description, questions):
    by_name = {label["name"]: label for label in model.labels}
    image = scene.render_scene([by_name[n] for n in names], 640, 480)  # a camera frame: the model sees its centre
    assert model.generate(image, "Describe this image.") == description
    assert [model.generate(image, q) for q, _ in questions] == [a for _, a in questions]


def test_the_shipped_model_says_what_it_can_see(model):
    about = model.info()["about"]  # the web app's "What can it see?" panel shows it
    assert f"Knows {len(model.labels)} kinds of object" in about
    assert "emoji" in about and "Real objects seen by a camera are outside" in about


def test_caption_cli_reads_a_phone_photo_upright_with_the_default_model(model, tmp_path, capsys):
    from PIL import Image

    from tiny_vlm.cli import main

    by_name = {label["name"]: label for label in model.labels}
    upright = scene.render_scene([by_name["dog"], by_name["apple"]], 640, 480)
    photo = upright.transpose(Image.Transpose.ROTATE_90)  # stored sideways, as a phone held upright writes it
    exif = photo.getexif()
    exif[0x0112] = 6  # Orientation: turn 90 degrees clockwise to show it
    photo.save(tmp_path / "photo.jpg", quality=95, exif=exif)
    answers = {}
    for prompt in ("Describe this image.", "Is there a dog?", "How many apples are there?"):
        assert main(["caption", str(tmp_path / "photo.jpg"), "--prompt", prompt, "--json"]) == 0  # no --model: the shipped one
        out = json.loads(capsys.readouterr().out)
        answers[out["prompt"]] = out["caption"]
    assert answers == {"Describe this image.": "a dog and an apple", "Is there a dog?": "yes", "How many apples are there?": "one"}
