"""The one-command recipe (tiny_vlm_train.recipe): which steps it skips, continues or runs,
that it matches the shipped model card, and a real run of a micro recipe through the CLIs."""

import json
import os
import re
from pathlib import Path

import pytest

from tiny_vlm_train import recipe
from tiny_vlm_train.recipe import NO_LIMIT, Step, display, resume_args, shipped_steps, status

REPO = Path(__file__).resolve().parent.parent


def write_log(out: Path, *runs: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "train_runs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in runs))


def test_training_stage_status_comes_from_its_run(tmp_path):
    step = Step("s", "train", ["--out", str(tmp_path / "a")], "train", tmp_path / "a")
    assert status(step) == "todo"
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "ckpt.pt").write_bytes(b"x")
    assert status(step) == "partial"
    write_log(tmp_path / "a", {"step": 10, "finished": False, "wall_s_this_run": 5.0})
    assert status(step) == "partial"
    write_log(tmp_path / "a", {"step": 10, "finished": False}, {"step": 20, "finished": True})
    assert status(step) == "done"


def test_other_steps_are_done_when_their_outputs_are_newer_than_their_inputs(tmp_path):
    src, dst = tmp_path / "in.pt", tmp_path / "out.bin"
    step = Step("export", "export", [], inputs=[src], outputs=[dst])
    dst.write_bytes(b"o")
    assert status(step) == "todo"  # its input does not exist yet
    src.write_bytes(b"i")
    os.utime(src, (1000, 1000))
    os.utime(dst, (2000, 2000))
    assert status(step) == "done"
    os.utime(src, (3000, 3000))  # the input changed after the output was made
    assert status(step) == "todo"


def test_a_stage_started_from_an_older_init_checkpoint_is_stale_and_stops_the_recipe(tmp_path):
    init, out = tmp_path / "a.pt", tmp_path / "b"
    write_log(out, {"step": 4, "finished": True})
    (out / "ckpt.pt").write_bytes(b"b")
    init.write_bytes(b"a")
    os.utime(init, (1000, 1000))
    os.utime(out / "ckpt.pt", (2000, 2000))
    step = Step("B", "train", ["--out", str(out), "--init", str(init)], "train", out)
    assert status(step) == "done"
    os.utime(init, (3000, 3000))  # stage A was trained again after B started from it
    assert status(step) == "stale"
    with pytest.raises(recipe.RecipeError, match=f"remove {out}"):
        recipe.run([step], log=lambda line: None)


def test_steps_without_outputs_run_each_time_and_pass_their_environment(tmp_path, monkeypatch):
    """The source install has no output file: it succeeds when its command does. A step's env
    reaches its process."""
    seen = []
    monkeypatch.setattr(recipe, "_run_child", lambda cmd, env, log: seen.append((cmd[2:], env.get("OPENBLAS_NUM_THREADS"))) or (0, False))
    lines = []
    recipe.run([Step("install sources", "assets", []), Step("e", "evaluate", ["m"], env={"OPENBLAS_NUM_THREADS": "1"})], log=lines.append)
    assert seen == [(["tiny_vlm_train.assets"], os.environ.get("OPENBLAS_NUM_THREADS")), (["tiny_vlm_train.evaluate", "m"], "1")]
    assert lines[2] == "[2/2] e: run: OPENBLAS_NUM_THREADS=1 python -m tiny_vlm_train.evaluate m"


def test_ctrl_c_waits_for_the_step_and_says_how_to_continue(tmp_path, monkeypatch):
    calls = []

    class Child:  # a step's process that is still saving its checkpoint when Ctrl-C arrives
        def __init__(self, cmd, cwd, env):
            calls.append(cmd)

        def wait(self):
            calls.append("wait")
            if calls.count("wait") == 1:
                raise KeyboardInterrupt
            return 130
    monkeypatch.setattr(recipe.subprocess, "Popen", Child)
    lines = []
    with pytest.raises(recipe.RecipeError, match="interrupted .* Run the recipe again to continue"):
        recipe.run([Step("e", "evaluate", ["m"])], log=lines.append)
    assert calls.count("wait") == 2  # it waited for the process after the Ctrl-C instead of killing it
    assert any("Ctrl-C: waiting" in line for line in lines)


def test_resume_drops_init_and_keeps_what_is_left_of_a_time_budget(tmp_path):
    out = tmp_path / "run"
    write_log(out, {"step": 5, "finished": False, "wall_s_this_run": 2500.0}, {"step": 9, "finished": False, "wall_s_this_run": 1400.0})
    auto = Step("s1", "train", ["--out", str(out), "--init", "x.pt", "--steps", "auto", "--time-budget", "6900"], "train", out)
    assert resume_args(auto) == ["--out", str(out), "--steps", "auto", "--time-budget", "3000", "--resume"]
    fixed = Step("s2", "train", ["--out", str(out), "--init", "x.pt", "--steps", "40", "--time-budget", NO_LIMIT], "train", out)
    assert resume_args(fixed) == ["--out", str(out), "--steps", "40", "--time-budget", NO_LIMIT, "--resume"]
    write_log(out, {"step": 5, "finished": False, "wall_s_this_run": 7000.0})
    assert resume_args(auto)[5] == "600"  # an over-run budget still gets a last stretch


def test_resume_counts_the_training_time_a_killed_run_left_in_its_checkpoint(tmp_path):
    """A run killed between checkpoints writes no train_runs.jsonl line; its checkpoint's
    train_wall_s still says how much of the budget is gone."""
    torch = pytest.importorskip("torch", reason="PyTorch is not installed: the training package is optional")
    out = tmp_path / "run"
    out.mkdir()
    torch.save({"step": 7, "train_wall_s": 4000.0}, out / "ckpt.pt")
    auto = Step("s1", "train", ["--out", str(out), "--steps", "auto", "--time-budget", "6900"], "train", out)
    assert status(auto) == "partial"
    assert resume_args(auto)[5] == "2900"


def test_shipped_recipe_matches_the_model_card():
    """Each fixed-step stage runs the step count the card's training table records, in the
    card's order, with the flags the card's commands give."""
    card = (REPO / "models" / "tiny-vlm-emoji" / "README.md").read_text()
    table = re.findall(r"^\| (\d+) \| `runs/(\w+)` \|.*?\| (\d+) of (\d+) \|", card, re.M)
    steps = [s for s in shipped_steps(Path("/r"), Path("/m")) if s.kind == "train"]
    assert [s.out.name for s in steps] == [run for _, run, _, _ in table]
    for s, (_, run, _, total) in zip(steps, table):
        n = s.args[s.args.index("--steps") + 1]
        assert n == ("auto" if run == "default" else total), run
        card_cmd = re.search(rf"^python -m tiny_vlm_train\.train --out \.\./runs/{run} (.*)$", card, re.M).group(1).split()
        for flag in ("--init", "--seed", "--lr", "--batch-size", "--qa-per-image", "--warmup", "--colour-jitter", "--distractors",
                     "--distractor-photos", "--extra-styles"):
            assert (flag in card_cmd) == (flag in s.args), (run, flag)
            if flag in card_cmd and flag != "--colour-jitter":
                want = card_cmd[card_cmd.index(flag) + 1]
                got = s.args[s.args.index(flag) + 1]
                assert Path(got).parts[-2:] == Path(want).parts[-2:] if flag == "--init" else got == want, (run, flag)
    names = [s.name for s in shipped_steps(Path("/r"), Path("/m"))]
    assert names[-23:] == ["soup", "stage 6", "stage 7", "stage 8", "stage 9", "stage 10", "soup 2", "stage 11", "stage 12", "soup 3",
                           "export 3", "unfold", "stage 13", "export 4", "unfold 2", "stage 14", "soup 4", "stage 15", "stage 16",
                           "soup 5", "export", "evaluate", "model card"]


def test_recipe_evaluates_and_reports_the_checkpoint_it_exports():
    """The exported checkpoint is the last stage's or soup's; the evaluation compares the runtime with that
    checkpoint, is written where the step says, and is the one the card reports."""
    steps = shipped_steps(Path("/r"), Path("/m"))
    by_name = {s.name: s for s in steps}
    export, evaluate, card = by_name["export"], by_name["evaluate"], by_name["model card"]
    ckpt = export.args[0]
    before = steps[:steps.index(export)]
    last = [s for s in before if s.module in ("soup", "train")][-1]  # the last weights the recipe makes
    assert (last.outputs if last.module == "soup" else [last.out / "ckpt.pt"]) == [Path(ckpt)]
    assert evaluate.args[evaluate.args.index("--parity") + 1] == ckpt
    written = evaluate.args[evaluate.args.index("--json") + 1]
    assert evaluate.outputs == [Path(written)] and Path(written).parent == Path(ckpt).parent
    assert card.args[card.args.index("--eval") + 1] == written and card.inputs == [Path(written)]


def test_recipe_card_lists_every_command_of_the_chain():
    """The card the recipe writes shows the soups, the intermediate export and the unfold
    between the training stages, in the recipe's order, not only the stages."""
    steps = shipped_steps(Path("/r"), Path("/m"))
    card = steps[-1].args
    listed = [card[i + 1] for i, a in enumerate(card) if a == "--train-command"]
    chain = [s for s in steps if s.name not in ("export", "evaluate", "model card")]
    assert listed == [display(s) for s in chain]
    assert {"soup", "export", "unfold"} <= {s.module for s in chain}


def test_shipped_metrics_are_the_model_card_s_evaluation():
    """metrics.json ships with the site beside the weights: its numbers are the ones the card
    reports for these weights, not an earlier model's."""
    model = REPO / "models" / "tiny-vlm-emoji"
    card = (model / "README.md").read_text()
    metrics = json.loads((model / "metrics.json").read_text())
    rows = {"describe object F1": "object_f1", "exact-caption rate": "exact_caption_rate",
            "count accuracy": "count_accuracy", "yes/no accuracy": "yes_no_accuracy"}
    for label, key in rows.items():
        value = re.search(rf"^\| \**{re.escape(label)}\**[^|]*\| \**([0-9.]+)\**", card, re.M).group(1)
        assert f"{metrics[key]:.3f}" == value, (label, metrics[key], value)
    assert f"{metrics['n_scenes']} freshly generated held-out scenes (seed {metrics['seed']})" in card
    parity = re.search(r"gives (\d+) answers identical", card).group(1)
    assert int(parity) == metrics["parity"]["identical"]


def test_micro_recipe_runs_resumes_and_skips(tmp_path):
    """Two training stages and an export through the real command-line tools: the second stage
    stops on its time budget after one step, the recipe continues it to its step count (its
    checkpoint counting the time trained across both invocations); a
    second run of the recipe does nothing; a newer checkpoint makes the export run again."""
    torch = pytest.importorskip("torch", reason="PyTorch is not installed: the training package is optional")
    from tiny_vlm_train.assets import missing_sources

    missing = missing_sources()
    if missing:
        pytest.skip(f"training assets not installed ({', '.join(missing)}): python -m tiny_vlm_train.assets")
    from tiny_vlm import FastVLM

    a, b, model = tmp_path / "a", tmp_path / "b", tmp_path / "model"
    micro = ["--config", "micro", "--image-size", "64", "--vocab-size", "320", "--batch-size", "2", "--warmup", "1", "--workers", "0"]
    steps = [
        Step("A", "train", ["--out", str(a), *micro, "--steps", "3", "--time-budget", NO_LIMIT], "train", a),
        Step("B", "train", ["--out", str(b), "--init", str(a / "ckpt.pt"), *micro, "--steps", "4", "--time-budget", "0"], "train", b),
        Step("export", "export", [str(b / "ckpt.pt"), str(model)], inputs=[b / "ckpt.pt"], outputs=[model / "model.safetensors"]),
    ]
    lines = []
    recipe.run(steps, log=lines.append)
    runs_b = [json.loads(l) for l in (b / "train_runs.jsonl").read_text().splitlines()]
    assert [r["finished"] for r in runs_b] == [False, True] and runs_b[-1]["step"] == 4, runs_b
    wall = torch.load(b / "ckpt.pt", weights_only=False)["train_wall_s"]
    assert sum(r["wall_s_this_run"] for r in runs_b) > wall > runs_b[0]["wall_s_this_run"] > 0
    assert sum("B: run" in l for l in lines) == 1
    assert [l.split("--time-budget ")[1] for l in lines if "B: continue" in l] == ["600 --resume"]  # at least 10 minutes left
    rt = FastVLM.load(model)
    assert len(rt.labels) >= 150

    lines.clear()
    before = (b / "train_runs.jsonl").read_text(), (model / "model.safetensors").stat().st_mtime_ns
    recipe.run(steps, log=lines.append)
    assert lines == [f"[{i}/3] {n}: done, skipped" for i, n in enumerate(("A", "B", "export"), 1)]
    assert ((b / "train_runs.jsonl").read_text(), (model / "model.safetensors").stat().st_mtime_ns) == before

    t = (b / "ckpt.pt").stat().st_mtime - 10  # the export is now older than the checkpoint
    os.utime(model / "model.safetensors", (t, t))
    lines.clear()
    recipe.run(steps, log=lines.append)
    assert lines[2].startswith("[3/3] export: run:") and lines[-1].startswith("[3/3] export: finished")


def test_shipped_evaluation_is_the_one_the_recipe_runs():
    """The card's evaluation command, the recipe's evaluate step and the shipped metrics name
    the same scenes (count and seed), and `evaluate` run without them renders those too."""
    from tiny_vlm_train.evaluate import EVAL_SCENES, EVAL_SEED

    model = REPO / "models" / "tiny-vlm-emoji"
    command = json.loads((model / "card.json").read_text())["eval_command"].split()
    step = next(s for s in shipped_steps(Path("/r"), Path("/m")) if s.name == "evaluate")
    metrics = json.loads((model / "metrics.json").read_text())
    for flag, default, key in (("--scenes", EVAL_SCENES, "n_scenes"), ("--seed", EVAL_SEED, "seed")):
        assert command[command.index(flag) + 1] == step.args[step.args.index(flag) + 1] == str(default) == str(metrics[key])
    assert command[command.index("--parity") + 1].startswith("../runs/soup2324/")
