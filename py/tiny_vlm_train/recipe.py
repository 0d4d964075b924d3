"""The shipped model's whole recipe as one command, resumable:

    python -m tiny_vlm_train.recipe                 # from py/; runs every step not yet done
    python -m tiny_vlm_train.recipe --plan          # what each step runs, what is done, what is left

It runs the commands the model card lists, in order: install the sources, five training
stages, the soup of stages 3-5, a sixth stage that fine-tunes the soup at 160 px, a seventh
that fine-tunes the sixth at 192 px, an eighth, a ninth and a tenth that continue it, the
soup of stages 9 and 10, two large-batch stages that fine-tune that soup at 224 px, their
soup; that soup exported and unfolded back into a training checkpoint (the way the shipped
weights went on after the earlier checkpoints were lost) and one more large-batch stage from
it; that stage exported and unfolded the same way, a CPU stage from it with distractors
(things that are no class) in half the scenes, and the average of the two; two more CPU
stages from that average (the second with three extra emoji styles), and the average of
the four with stage 14's average counted twice; export, evaluation, model card (and its
metrics.json). Outputs go
under `--runs` (default: runs/recipe/ in the repository, git-ignored, apart from the shipped
model's own runs) and `--model` (default: RUNS/model, so the shipped models/tiny-vlm-emoji is
only replaced when asked for).

Interrupt it at any time and run it again: a training stage whose run says it finished
(its train_runs.jsonl) is skipped, one with a checkpoint continues with `--resume`, and a
step after training runs again only when its output is missing or older than its input. A
stage whose starting checkpoint (`--init`) changed after it ran is not retrained silently:
the recipe stops and says which run directory to remove.

Compute. The stages after the first run a fixed number of steps (the counts the shipped runs
reached), so the schedule does not depend on the machine's pace; stage 1 fits its schedule
into a time budget (`--steps auto`). Recorded for the shipped weights: stage 1 121 min on
this project's 2-core CPU machine; stage 2 8 min on one NVIDIA H200 with 14 render workers
(1.4M images: on 2 CPU cores, at the ~30 images/s of four questions per image, about 13
hours); stages 3-5 80-93 min each, stage 6 50 min, stage 7 77 min, stage 8 39 min, stage 9
93 min and stage 10 52 min on the 2 cores; stages 11 and 12 8 and 4 min on the H200 again
(891,392 images at 224 px: on 2 CPU cores about 18 hours); stage 13 8 min on one NVIDIA H100
(525,056 images: about 11 hours on 2 CPU cores); stages 14, 15 and 16 61, 68 and 54 min on the
2 cores. So a 2-core CPU machine needs roughly 57 hours, and one with a GPU for stages 2, 11, 12
and 13 about 15. A GPU is used when present.
The paces of stages 1-13 predate the trainer's shared image prefix (one language-model pass over the image
tokens for all of an image's questions): since then a CPU step at 224 px takes 1/1.54 of the
time with four questions per image and 1/1.17 with two (model card), so less than the above.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .card import read_runs_log

REPO = Path(__file__).resolve().parents[2]
PY_DIR = REPO / "py"
NO_LIMIT = "1e9"  # --time-budget of a fixed-step stage: it runs until its steps are done


class RecipeError(RuntimeError):
    pass


@dataclass
class Step:
    """One command of the recipe. kind "train": `out` is the run directory; its status comes
    from the run's own files. kind "run": done when every output exists and is newer than
    every input."""

    name: str
    module: str
    args: list[str]
    kind: str = "run"
    out: Path | None = None
    inputs: list[Path] = field(default_factory=list)
    outputs: list[Path] = field(default_factory=list)  # none: the step runs whenever the recipe does
    env: dict[str, str] = field(default_factory=dict)


def _render_workers() -> int:
    """Render workers for the large-batch stage: every core but two (14 on the 16-core GPU box)."""
    return max(1, min(14, (os.cpu_count() or 2) - 2))


def shipped_steps(runs: Path, model: Path) -> list[Step]:
    """The recipe of models/tiny-vlm-emoji (its model card has the history behind each stage)."""
    def r(*parts: str) -> str:
        return str(runs.joinpath(*parts))

    def cpu_stage(warmup: str = "100") -> list[str]:
        return ["--batch-size", "32", "--workers", "1", "--qa-per-image", "2", "--curriculum-steps", "1", "--warmup", warmup,
                "--ckpt-every", "300", "--time-budget", NO_LIMIT]

    def gpu_stage() -> list[str]:  # four questions per image: rendering, not the model, sets the pace
        return ["--batch-size", "256", "--workers", str(_render_workers()), "--qa-per-image", "4", "--curriculum-steps", "1",
                "--time-budget", NO_LIMIT, "--ckpt-every", "300"]

    def late_cpu_stage(lr: str, distractor_photos: str = "0") -> list[str]:  # stages 14-16: distractors in half the scenes
        return ["--batch-size", "32", "--workers", "1", "--qa-per-image", "4", "--curriculum-steps", "1", "--warmup", "20",
                "--lr", lr, "--steps", "1502", "--distractors", "0.5", "--distractor-photos", distractor_photos,
                "--time-budget", NO_LIMIT, "--ckpt-every", "300"]

    steps = [
        Step("stage 1", "train", ["--out", r("default"), "--steps", "auto", "--time-budget", "6900"], "train", runs / "default"),
        Step("stage 2", "train", ["--out", r("gpu1"), "--init", r("default", "ckpt.pt"), "--warmup", "150", "--lr", "2e-3",
                                  "--steps", "5476", *gpu_stage(), "--weights-out", r("gpu1", "weights.pt")], "train", runs / "gpu1"),
        Step("stage 3", "train", ["--out", r("cpu4"), "--init", r("gpu1", "weights.pt"), "--seed", "4", "--lr", "6e-4",
                                  "--steps", "6631", *cpu_stage()], "train", runs / "cpu4"),
        Step("stage 4", "train", ["--out", r("cpu6"), "--init", r("cpu4", "ckpt.pt"), "--seed", "6", "--lr", "5e-4",
                                  "--steps", "6015", "--colour-jitter", *cpu_stage()], "train", runs / "cpu6"),
        Step("stage 5", "train", ["--out", r("cpu7"), "--init", r("cpu4", "ckpt.pt"), "--seed", "7", "--lr", "5e-4",
                                  "--steps", "6177", *cpu_stage()], "train", runs / "cpu7"),
        Step("soup", "soup", [r("soup", "ckpt.pt"), r("cpu4", "ckpt.pt"), r("cpu6", "ckpt.pt"), r("cpu7", "ckpt.pt")],
             inputs=[runs / d / "ckpt.pt" for d in ("cpu4", "cpu6", "cpu7")], outputs=[runs / "soup" / "ckpt.pt"]),
        Step("stage 6", "train", ["--out", r("cpu11"), "--init", r("soup", "ckpt.pt"), "--image-size", "160", "--seed", "11",
                                  "--lr", "5e-4", "--steps", "2393", *cpu_stage()], "train", runs / "cpu11"),
        Step("stage 7", "train", ["--out", r("cpu12"), "--init", r("cpu11", "ckpt.pt"), "--image-size", "192", "--seed", "12",
                                  "--lr", "5e-4", "--steps", "2900", *cpu_stage()], "train", runs / "cpu12"),
        Step("stage 8", "train", ["--out", r("cpu13"), "--init", r("cpu12", "ckpt.pt"), "--seed", "13", "--lr", "3e-4",
                                  "--steps", "1450", *cpu_stage("50")], "train", runs / "cpu13"),
        Step("stage 9", "train", ["--out", r("cpu14"), "--init", r("cpu13", "ckpt.pt"), "--seed", "14", "--lr", "3e-4",
                                  "--steps", "3600", *cpu_stage("50")], "train", runs / "cpu14"),
        Step("stage 10", "train", ["--out", r("cpu15"), "--init", r("cpu14", "ckpt.pt"), "--seed", "15", "--lr", "3e-4",
                                   "--steps", "1600", *cpu_stage("50")], "train", runs / "cpu15"),
        Step("soup 2", "soup", [r("soup910", "ckpt.pt"), r("cpu14", "ckpt.pt"), r("cpu15", "ckpt.pt")],
             inputs=[runs / d / "ckpt.pt" for d in ("cpu14", "cpu15")], outputs=[runs / "soup910" / "ckpt.pt"]),
        Step("stage 11", "train", ["--out", r("gpu3"), "--init", r("soup910", "ckpt.pt"), "--image-size", "224", "--seed", "16",
                                   "--lr", "1e-3", "--warmup", "150", "--steps", "2382", *gpu_stage(), "--weights-out", r("gpu3", "weights.pt")],
             "train", runs / "gpu3"),
        Step("stage 12", "train", ["--out", r("gpu4"), "--init", r("soup910", "ckpt.pt"), "--image-size", "224", "--seed", "17",
                                   "--lr", "1e-3", "--warmup", "100", "--steps", "1116", *gpu_stage(), "--weights-out", r("gpu4", "weights.pt")],
             "train", runs / "gpu4"),
        Step("soup 3", "soup", [r("soupg34", "ckpt.pt"), r("gpu3", "ckpt.pt"), r("gpu4", "ckpt.pt")],
             inputs=[runs / d / "ckpt.pt" for d in ("gpu3", "gpu4")], outputs=[runs / "soupg34" / "ckpt.pt"]),
        # The checkpoints of stages 1-12 were lost with the machine that held them; training went on from the exported
        # int8 model, unfolded back into a training checkpoint (tiny_vlm_train.unfold). The recipe takes the same path.
        Step("export 3", "export", [r("soupg34", "ckpt.pt"), r("soupg34", "model")],
             inputs=[runs / "soupg34" / "ckpt.pt"], outputs=[runs / "soupg34" / "model" / "model.safetensors"]),
        Step("unfold", "unfold", [r("soupg34", "model"), r("unfolded", "ckpt.pt")],
             inputs=[runs / "soupg34" / "model" / "model.safetensors"], outputs=[runs / "unfolded" / "ckpt.pt"]),
        Step("stage 13", "train", ["--out", r("gpu5"), "--init", r("unfolded", "ckpt.pt"), "--seed", "19", "--lr", "1e-3",
                                   "--warmup", "150", "--steps", "2051", *gpu_stage(), "--weights-out", r("gpu5", "weights.pt")],
             "train", runs / "gpu5"),
        # Stage 13's weights were shipped until stage 14; that stage started from them unfolded (as exported, int8).
        Step("export 4", "export", [r("gpu5", "ckpt.pt"), r("gpu5", "model")],
             inputs=[runs / "gpu5" / "ckpt.pt"], outputs=[runs / "gpu5" / "model" / "model.safetensors"]),
        Step("unfold 2", "unfold", [r("gpu5", "model"), r("unfolded2", "ckpt.pt")],
             inputs=[runs / "gpu5" / "model" / "model.safetensors"], outputs=[runs / "unfolded2" / "ckpt.pt"]),
        Step("stage 14", "train", ["--out", r("cpu21"), "--init", r("unfolded2", "ckpt.pt"), "--seed", "23",
                                   *late_cpu_stage("1e-4", distractor_photos="0.3")], "train", runs / "cpu21"),
        Step("soup 4", "soup", [r("soup21", "ckpt.pt"), r("unfolded2", "ckpt.pt"), r("cpu21", "ckpt.pt")],
             inputs=[runs / "unfolded2" / "ckpt.pt", runs / "cpu21" / "ckpt.pt"], outputs=[runs / "soup21" / "ckpt.pt"]),
        # Stage 14's average was shipped until stage 15; stages 15 and 16 both start from it (no unfolding), and the
        # shipped weights average it, counted twice, with the two.
        Step("stage 15", "train", ["--out", r("cpu23"), "--init", r("soup21", "ckpt.pt"), "--seed", "24", *late_cpu_stage("1.5e-4")],
             "train", runs / "cpu23"),
        Step("stage 16", "train", ["--out", r("cpu24"), "--init", r("soup21", "ckpt.pt"), "--seed", "25", *late_cpu_stage("1e-4"),
                                   "--extra-styles", "emojione,fxemoji,notov1"], "train", runs / "cpu24"),
        Step("soup 5", "soup", [r("soup2324", "ckpt.pt"), r("soup21", "ckpt.pt"), r("soup21", "ckpt.pt"), r("cpu23", "ckpt.pt"),
                                r("cpu24", "ckpt.pt")],
             inputs=[runs / d / "ckpt.pt" for d in ("soup21", "cpu23", "cpu24")], outputs=[runs / "soup2324" / "ckpt.pt"]),
        Step("export", "export", [r("soup2324", "ckpt.pt"), str(model)],
             inputs=[runs / "soup2324" / "ckpt.pt"], outputs=[model / "model.safetensors"]),
        Step("evaluate", "evaluate", [str(model), "--scenes", "1000", "--seed", "900005", "--parity", r("soup2324", "ckpt.pt"),
                                      "--json", r("soup2324", "eval-seed900005.json")],  # named for its scenes: an older eval.json is not it
             inputs=[model / "model.safetensors"], outputs=[runs / "soup2324" / "eval-seed900005.json"], env={"OPENBLAS_NUM_THREADS": "1"}),
    ]
    stages = [s for s in steps if s.kind == "train"]
    evaluation = steps[-1].outputs[0]
    card = ([str(model), *[a for s in stages for a in ("--run", str(s.out))], "--eval", str(evaluation)]
            + [a for s in steps[:-2] for a in ("--train-command", display(s))]  # stages, soups, export 3, unfold: the whole chain
            + ["--export-command", display(steps[-2]), "--eval-command", display(steps[-1])])
    return steps + [Step("model card", "card", card, inputs=[evaluation], outputs=[model / "README.md", model / "metrics.json"])]


def display(step: Step, args: list[str] | None = None) -> str:
    """A step's command as the model card shows it: run from py/, paths inside the repository
    relative."""
    def rel(a: str) -> str:
        p = Path(a)
        return os.path.relpath(p, PY_DIR) if p.is_absolute() and p.is_relative_to(REPO) else a
    env = [f"{k}={v}" for k, v in step.env.items()]
    return " ".join(env + [shlex.join(["python", "-m", f"tiny_vlm_train.{step.module}", *map(rel, step.args if args is None else args)])])


def _init_of(step: Step) -> Path | None:
    return Path(step.args[step.args.index("--init") + 1]) if "--init" in step.args else None


def status(step: Step) -> str:
    """'done', 'partial' (a training run to resume), 'todo', or 'stale' (a training run that
    started from an older version of its --init checkpoint)."""
    if step.kind == "train":
        init, ckpt = _init_of(step), step.out / "ckpt.pt"
        if init is not None and init.exists() and ckpt.exists() and init.stat().st_mtime > ckpt.stat().st_mtime:
            return "stale"
        log = read_runs_log(step.out)
        if log and log[-1].get("finished"):
            return "done"
        return "partial" if ckpt.exists() else "todo"
    if step.outputs and all(p.exists() for p in step.outputs + step.inputs):
        newest_input = max((p.stat().st_mtime for p in step.inputs), default=0.0)
        if min(p.stat().st_mtime for p in step.outputs) >= newest_input:
            return "done"
    return "todo"


def wall_used(out: Path) -> float:
    """Seconds a run has trained: its checkpoint's count (kept across kills, up to the last
    checkpoint), or the finished invocations' records when that is larger."""
    logged = sum(r.get("wall_s_this_run", 0.0) for r in read_runs_log(out))
    ckpt = out / "ckpt.pt"
    if not ckpt.exists():
        return logged
    import torch

    return max(logged, float(torch.load(ckpt, map_location="cpu", weights_only=False).get("train_wall_s", 0.0)))


def resume_args(step: Step) -> list[str]:
    """The stage's arguments for continuing its run: no --init (the checkpoint has the weights),
    --resume, and for a stage fitted to a time budget the part of the budget not yet used
    (at least 10 minutes)."""
    args, i = [], 0
    while i < len(step.args):
        if step.args[i] == "--init":
            i += 2
            continue
        args.append(step.args[i])
        i += 1
    if "--time-budget" in args:
        j = args.index("--time-budget") + 1
        if args[j] != NO_LIMIT:
            args[j] = f"{max(600.0, float(args[j]) - wall_used(step.out)):.0f}"
    return args + ["--resume"]


def _train_step_count(out: Path) -> int | None:
    log = read_runs_log(out)
    return log[-1]["step"] if log else None


def _run_child(cmd: list[str], env: dict, log) -> tuple[int, bool]:
    """Run one step's command; -> (exit status, whether Ctrl-C was pressed). Ctrl-C reaches the
    child too (same terminal): it is waited for, so that a training run can save its checkpoint
    (subprocess.run would kill it a quarter of a second later)."""
    proc = subprocess.Popen(cmd, cwd=PY_DIR, env=env)
    interrupted = False
    while True:
        try:
            return proc.wait(), interrupted
        except KeyboardInterrupt:
            if not interrupted:
                log("Ctrl-C: waiting for the step to stop (a training run saves its checkpoint first)")
            interrupted = True


def run(steps: list[Step], only_plan: bool = False, log=print) -> None:
    for n, step in enumerate(steps, 1):
        st = status(step)
        head = f"[{n}/{len(steps)}] {step.name}"
        if st == "done":
            log(f"{head}: done, skipped")
            continue
        if st == "stale":
            raise RecipeError(f"{step.name}: {step.out} was trained from an older {_init_of(step)}; "
                              f"remove {step.out} to train it again from the new one")
        argv = resume_args(step) if st == "partial" else step.args
        log(f"{head}: {'continue' if st == 'partial' else 'run'}: {display(step, argv)}")
        if only_plan:
            continue
        while True:
            before = _train_step_count(step.out) if step.kind == "train" else None
            t = time.time()
            rc, interrupted = _run_child([sys.executable, "-m", f"tiny_vlm_train.{step.module}", *argv], {**os.environ, **step.env}, log)
            if interrupted or rc in (130, -2):
                raise RecipeError(f"{step.name}: interrupted (Ctrl-C). Run the recipe again to continue: finished steps are "
                                  "kept, and a training step continues from its last checkpoint")
            if rc != 0:
                raise RecipeError(f"{step.name} failed (exit status {rc}): {display(step, argv)}\n"
                                  "fix the cause and run the recipe again: finished steps are kept")
            log(f"{head}: finished its command in {(time.time() - t) / 60:.1f} min")
            if step.kind != "train" or status(step) == "done":
                break
            after = _train_step_count(step.out)  # stopped early (its time budget): continue until its steps are done
            if after is None or after == before:
                raise RecipeError(f"{step.name}: the run in {step.out} made no progress; see its output above")
            argv = resume_args(step)
            log(f"{head}: continue: {display(step, argv)}")
        if (step.outputs or step.kind == "train") and status(step) != "done":
            raise RecipeError(f"{step.name}: its command succeeded but its output is missing or stale: "
                              + ", ".join(map(str, step.outputs or [step.out])))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=Path, default=REPO / "runs" / "recipe", help="run directories (default: runs/recipe/ in the repository)")
    ap.add_argument("--model", type=Path, default=None, help="where the model is exported (default: RUNS/model)")
    ap.add_argument("--plan", action="store_true", help="print the steps and their state; run nothing")
    ap.add_argument("--skip-assets", action="store_true", help="do not check or install the training sources first")
    args = ap.parse_args(argv)
    runs = args.runs.resolve()
    model = (args.model or runs / "model").resolve()
    steps = shipped_steps(runs, model)
    if not args.skip_assets:
        from .assets import missing_sources

        missing = missing_sources(extra_styles=True)  # stage 16 draws three of the extra styles
        if missing:
            steps.insert(0, Step("install sources", "assets", []))
            print(f"training sources missing ({', '.join(missing)}): they are installed first")
    try:
        run(steps, only_plan=args.plan)
    except RecipeError as err:
        sys.exit(str(err))
    if not args.plan:
        evaluation = next(s for s in steps if s.name == "evaluate").outputs[0]
        print(f"recipe complete: model in {model}, metrics in {evaluation}")


if __name__ == "__main__":
    main()
