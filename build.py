#!/usr/bin/env python3
"""Build the tiny-vlm web app into a static site (default: dist/).

    python3 build.py                          # the single model under models/, NumPy local if cached
    python3 build.py --model models/NAME --out dist --pyodide-packages DIR

The site holds: the web files (web/), the Pyodide core (node_modules/pyodide, from
`npm ci`), the tiny_vlm wheel built from py/, the model files, optionally the WASM SIMD
GEMM kernels, and manifest.json (every file: bytes and sha256; the worker checks what it
fetches against it). Files that gzip well (the Pyodide core's .wasm and .mjs, JSON, the
model) get a precompressed twin `NAME.gz`, outside the manifest, which serve.py sends with
`Content-Encoding: gzip` to browsers that accept it (a first visit transfers ~13 MB instead
of ~20 MB; static hosts that compress do the same). NumPy for Pyodide is copied in when the official wheel is found in
--pyodide-packages, $TINY_VLM_PYODIDE_PACKAGES or ~/.cache/tiny-vlm/pyodide and its sha256
matches pyodide-lock.json; otherwise the worker loads it from the Pyodide CDN.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent
WEB = ROOT / "web"
PY = ROOT / "py"
MODELS = ROOT / "models"
PYODIDE_NPM = ROOT / "node_modules" / "pyodide"
PYODIDE_VERSION = "314.0.4"
PYODIDE_CDN = f"https://cdn.jsdelivr.net/pyodide/v{PYODIDE_VERSION}/full/"
PYODIDE_CORE = ("pyodide.mjs", "pyodide.asm.mjs", "pyodide.asm.wasm", "python_stdlib.zip", "pyodide-lock.json")
DEFAULT_PACKAGES_DIR = Path.home() / ".cache" / "tiny-vlm" / "pyodide"
WEB_SUFFIXES = {".html", ".css", ".js", ".mjs", ".json", ".svg", ".png", ".webmanifest"}
MODEL_FILES = ("model.safetensors", "tokenizer.json", "labels.json", "metrics.json", "README.md")
# What the worker fetches at boot (manifest.model.files); the card and its metrics are on the
# site for people and tools, not downloaded by every first visit.
RUNTIME_MODEL_FILES = ("model.safetensors", "tokenizer.json", "labels.json")
GZIP_SUFFIXES = {".wasm", ".mjs", ".js", ".json", ".css", ".html", ".svg", ".md", ".safetensors", ".webmanifest"}
GZIP_MIN_BYTES = 1024
GZIP_MIN_SAVING = 0.1  # keep a twin only when it is at least 10% smaller
KERNEL_MODULES = {"relaxed": "tiny_vlm_gemm_relaxed.wasm", "simd128": "tiny_vlm_gemm_simd128.wasm"}


class BuildError(RuntimeError):
    """The site cannot be built; the message says what is missing and how to get it."""


def log(message: str) -> None:
    print(f"[build] {message}", flush=True)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --- inputs ---------------------------------------------------------------------------


def pick_model_dir(model: str | None, random_model: bool, work: Path) -> Path:
    """The model to ship: --model, else the single trained model under models/, else a random one."""
    if model:
        path = Path(model).resolve()
        if not (path / "model.safetensors").is_file():
            raise BuildError(f"--model {model}: no model.safetensors in {path}")
        return path
    found = sorted(p for p in MODELS.glob("*/") if (p / "model.safetensors").is_file()) if MODELS.is_dir() else []
    if len(found) > 1 and not random_model:
        names = ", ".join(p.name for p in found)
        raise BuildError(f"several models under models/ ({names}): choose one with --model")
    if found and not random_model:
        return found[0]
    if not random_model:
        log("WARNING: no trained model under models/: shipping a tiny RANDOM model (answers are gibberish)")
    target = work / "random-model"
    code = "import sys; from tiny_vlm.testing import random_model; random_model(sys.argv[1])"
    run([sys.executable, "-c", code, str(target)], env={"PYTHONPATH": str(PY)})
    return target


def pyodide_dir() -> Path:
    package = PYODIDE_NPM / "package.json"
    if not package.is_file():
        if shutil.which("npm") is None:
            raise BuildError("node_modules/pyodide is missing and npm is not installed: install Node.js, then run `npm ci`")
        log("node_modules/pyodide is missing: running `npm ci` (Pyodide core from the npm registry)")
        run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=ROOT)
    version = json.loads(package.read_text())["version"]
    if version != PYODIDE_VERSION:
        raise BuildError(f"node_modules/pyodide is {version}, package.json pins {PYODIDE_VERSION}: run `npm ci`")
    return PYODIDE_NPM


def find_numpy_wheel(packages_dir: str | None, lock: dict) -> tuple[Path | None, str]:
    """The official NumPy wheel for this Pyodide, checked against pyodide-lock.json, or (None, why)."""
    entry = lock["packages"]["numpy"]
    candidates = [Path(d) for d in (packages_dir, os.environ.get("TINY_VLM_PYODIDE_PACKAGES")) if d]
    candidates.append(DEFAULT_PACKAGES_DIR)
    for directory in candidates:
        wheel = directory / entry["file_name"]
        if not wheel.is_file():
            continue
        digest = sha256_file(wheel)
        if digest != entry["sha256"]:
            raise BuildError(f"{wheel}: sha256 {digest} does not match pyodide-lock.json ({entry['sha256']})")
        return wheel, f"{wheel} (sha256 matches pyodide-lock.json)"
    looked = ", ".join(str(d) for d in candidates)
    return None, f"{entry['file_name']} not found in {looked}"


def build_wheel(work: Path, prebuilt: str | None) -> Path:
    if prebuilt:
        wheel = Path(prebuilt).resolve()
        if not wheel.is_file() or not wheel.name.endswith("-py3-none-any.whl"):
            raise BuildError(f"--wheel {prebuilt}: not a py3-none-any wheel file")
        return wheel
    if not (PY / "pyproject.toml").is_file():
        raise BuildError("py/pyproject.toml is missing: cannot build the tiny_vlm wheel (or pass --wheel FILE)")
    # Written directly with zipfile rather than `pip wheel`: no build backend, no network and
    # no `wheel` package needed (a stock Debian/pyenv Python often lacks `bdist_wheel`), and
    # the same bytes for the same sources. tests/test_web_build.py checks it against py/.
    return write_pure_wheel(work / "wheel")


def write_pure_wheel(out: Path) -> Path:
    """The tiny_vlm py3-none-any wheel written with zipfile (no pip/setuptools on this Python).

    Same content as the setuptools build of py/pyproject.toml: the tiny_vlm package with its
    .py, .wasm and .wat files, METADATA (name, version, numpy dependency), WHEEL and RECORD.
    """
    import base64
    import tomllib
    import zipfile

    project = tomllib.loads((PY / "pyproject.toml").read_text())["project"]
    name, version = project["name"], project["version"]
    dist_info = f"{name}-{version}.dist-info"
    files = {}
    for path in sorted((PY / "tiny_vlm").rglob("*")):
        if path.is_file() and path.suffix in (".py", ".wasm", ".wat") and "__pycache__" not in path.parts:
            files[path.relative_to(PY).as_posix()] = path.read_bytes()
    requires = "".join(f"Requires-Dist: {d}\n" for d in project.get("dependencies", []))
    files[f"{dist_info}/METADATA"] = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n{requires}".encode()
    files[f"{dist_info}/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: tiny-vlm build.py\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    files[f"{dist_info}/top_level.txt"] = b"tiny_vlm\n"
    record = []
    for rel, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{rel},sha256={digest},{len(data)}")
    record.append(f"{dist_info}/RECORD,,")
    files[f"{dist_info}/RECORD"] = ("\n".join(record) + "\n").encode()
    out.mkdir(parents=True, exist_ok=True)
    wheel = out / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as zf:
        for rel, data in files.items():
            zf.writestr(zipfile.ZipInfo(rel, date_time=(2020, 1, 1, 0, 0, 0)), data, zipfile.ZIP_DEFLATED)
    return wheel


def build_kernels(work: Path) -> dict[str, Path]:
    out = work / "kernels"
    run([sys.executable, "-m", "tiny_vlm.wasm.gen", str(out)], env={"PYTHONPATH": str(PY)})
    found = {kind: out / name for kind, name in KERNEL_MODULES.items() if (out / name).is_file()}
    if not found:
        raise BuildError("tiny_vlm.wasm.gen wrote no .wasm (is wabt's wat2wasm installed?)")
    return found


def run(cmd: list[str], env: dict | None = None, cwd: Path | None = None) -> None:
    result = subprocess.run(cmd, env={**os.environ, **(env or {})}, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise BuildError(f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stdout}{result.stderr}")


# --- assembly -------------------------------------------------------------------------


def check_out(out: Path) -> None:
    """Refuse to replace a folder that is not a previous build."""
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / "manifest.json").is_file())):
        raise BuildError(f"{out} exists, is not empty and holds no manifest.json: refusing to overwrite it")


def replace_out(staged: Path, out: Path) -> None:
    """Put the finished build in place of the old one: a build that fails or is interrupted
    leaves the previous site as it was (and no half-written folder in its place)."""
    old = out.with_name(f".{out.name}.old-{os.getpid()}")
    if out.exists():
        out.rename(old)
    staged.rename(out)
    shutil.rmtree(old, ignore_errors=True)


def options_key(args: argparse.Namespace) -> str:
    """A digest of what a build was asked for (model, random model, kernels, NumPy source,
    wheel), kept in manifest.json: serve.py rebuilds when its own request differs, not only
    when a source file is newer. A digest, so that the public manifest names no local paths."""
    model = "random" if args.random_model else (str(Path(args.model).resolve()) if args.model else "default")
    request = {"model": model, "kernels": args.kernels, "numpy_from_cdn": bool(args.numpy_from_cdn),
               "wheel": str(Path(args.wheel).resolve()) if args.wheel else None}
    return hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()[:16]


def copy(src: Path, out: Path, rel: str) -> str:
    dest = out / rel
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dest)
    return rel


def precompress(out: Path, rels) -> tuple[int, int, int]:
    """Write the gzip twin `rel.gz` of each file worth it; -> (twins, bytes before, bytes after)."""
    n = before = after = 0
    for rel in rels:
        path = out / rel
        if path.suffix not in GZIP_SUFFIXES or path.stat().st_size < GZIP_MIN_BYTES:
            continue
        data = path.read_bytes()
        packed = gzip.compress(data, compresslevel=6, mtime=0)
        if len(packed) <= (1 - GZIP_MIN_SAVING) * len(data):
            Path(f"{path}.gz").write_bytes(packed)
            n, before, after = n + 1, before + len(data), after + len(packed)
    return n, before, after


def build(args: argparse.Namespace) -> Path:
    final = Path(args.out).resolve()
    check_out(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tiny-vlm-build-") as tmp, \
            tempfile.TemporaryDirectory(prefix=f".{final.name}.new-", dir=final.parent, ignore_cleanup_errors=True) as staged:
        work, out = Path(tmp), Path(staged)
        pyodide = pyodide_dir()
        lock = json.loads((pyodide / "pyodide-lock.json").read_text())
        model_dir = pick_model_dir(args.model, args.random_model, work)
        wheel = build_wheel(work, args.wheel)
        if args.numpy_from_cdn:
            numpy_wheel, numpy_note = None, "--numpy-from-cdn given"
        else:
            numpy_wheel, numpy_note = find_numpy_wheel(args.pyodide_packages, lock)
        kernels = {}
        if args.kernels == "on" or (args.kernels == "auto" and shutil.which("wat2wasm")):
            kernels = build_kernels(work)
        elif args.kernels == "auto":
            log("kernels: skipped (wabt's wat2wasm is not installed: apt-get install wabt); the worker will use NumPy only")

        web_files = [copy(p, out, p.name) for p in sorted(WEB.iterdir()) if p.is_file() and p.suffix in WEB_SUFFIXES]
        log(f"web: {len(web_files)} files from web/")
        core = [copy(pyodide / name, out, f"pyodide/{name}") for name in PYODIDE_CORE]
        log(f"pyodide {PYODIDE_VERSION}: core copied from node_modules/pyodide")
        wheel_rel = copy(wheel, out, f"wheels/{wheel.name}")
        log(f"wheel: {wheel.name}")
        model_rels = [copy(model_dir / name, out, f"model/{name}") for name in MODEL_FILES if (model_dir / name).is_file()]
        log(f"model: {model_dir} -> model/ ({', '.join(Path(r).name for r in model_rels)})")
        numpy_entry = lock["packages"]["numpy"]
        numpy = {"version": numpy_entry["version"], "file": numpy_entry["file_name"], "sha256": numpy_entry["sha256"]}
        if numpy_wheel:
            rel = copy(numpy_wheel, out, f"pyodide/{numpy_entry['file_name']}")
            numpy.update(source="local", path=rel, bytes=numpy_wheel.stat().st_size)
            log(f"numpy: local copy of {numpy_note}")
        else:
            numpy.update(source="cdn", url=PYODIDE_CDN + numpy_entry["file_name"], bytes=0)
            log(f"numpy: {numpy_note}; the worker will load it from {PYODIDE_CDN}")
        kernel_rels = {kind: copy(path, out, f"kernels/{path.name}") for kind, path in kernels.items()}
        if kernel_rels:
            log(f"kernels: {', '.join(kernel_rels.values())}")

        files = {}
        for path in sorted(p for p in out.rglob("*") if p.is_file()):
            rel = path.relative_to(out).as_posix()
            files[rel] = {"bytes": path.stat().st_size, "sha256": sha256_file(path)}
        manifest = {
            "format": "tiny-vlm-site",
            "version": 1,
            "pyodide": {"version": PYODIDE_VERSION, "core": core},
            "numpy": numpy,
            "wheel": wheel_rel,
            "model": {"name": model_dir.name, "files": [r for r in model_rels if Path(r).name in RUNTIME_MODEL_FILES]},
            "kernels": kernel_rels or None,
            "files": files,
            "build_options": options_key(args),
        }
        (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
        twins, before, after = precompress(out, files)
        log(f"gzip twins for serving: {twins} files, {before / 1e6:.1f} -> {after / 1e6:.1f} MB")
        out.chmod(0o755)  # mkdtemp's 0700 would hide the site from a web server running as another user
        replace_out(out, final)  # the staging name is gone: its cleanup has nothing to do
    out = final
    total = sum(f["bytes"] for f in files.values())
    log(f"wrote {out} ({len(files) + 1} files, {total / 1e6:.1f} MB)")
    return out


def newest_source_mtime(model: str | None = None) -> float:
    """Newest modification time among the inputs of a build (serve.py rebuilds when newer)."""
    paths = [Path(__file__), ROOT / "package-lock.json"]
    paths += [p for p in WEB.rglob("*") if p.is_file()]
    paths += [p for p in (PY / "tiny_vlm").rglob("*.py")]
    model_root = Path(model) if model else MODELS
    if model_root.is_dir():
        paths += [p for p in model_root.rglob("*") if p.is_file()]
    return max((p.stat().st_mtime for p in paths if p.exists()), default=0.0)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(ROOT / "dist"), help="output folder (default: dist/)")
    parser.add_argument("--model", help="model folder (default: the single one under models/)")
    parser.add_argument("--random-model", action="store_true", help="ship a tiny random model (plumbing tests)")
    parser.add_argument("--pyodide-packages", help="folder holding the official Pyodide NumPy wheel")
    parser.add_argument("--numpy-from-cdn", action="store_true", help="never copy NumPy in; the worker uses the CDN")
    parser.add_argument("--wheel", help="use this prebuilt tiny_vlm wheel instead of building py/")
    parser.add_argument("--kernels", nargs="?", const="on", default="auto", choices=("auto", "on", "off"),
                        help="the WASM SIMD kernels (about 4x faster image encoding in the browser): auto (default) "
                             "includes them when wabt's wat2wasm is installed, on requires it, off leaves NumPy only")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    try:
        build(parse_args(argv))
    except BuildError as err:
        print(f"[build] error: {err}", file=sys.stderr)
        return 1
    except OSError as err:  # disk full, permissions, a file missing from node_modules
        print(f"[build] error: {err} (the previous build, if any, was left as it was)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
