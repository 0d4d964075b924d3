"""Install the training/evaluation sources into a cache outside the repo.

    python -m tiny_vlm_train.assets            # apt + npm + sample images
    TINY_VLM_ASSETS=/some/dir python -m tiny_vlm_train.assets
    python -m tiny_vlm_train.assets --pack train_pack.npz --labels runs/default/labels.json

`--pack` writes the training split's sprite tables and background photos into one file, so
training can run on a machine that has none of the sources (a rented GPU box):
`python -m tiny_vlm_train.train --asset-pack train_pack.npz ...`.

Sources (all fetched with the ordinary clients: apt-get, npm, pip):
- Debian fonts-noto-color-emoji                (Noto emoji, OFL-1.1)
- Debian tuxpaint-data, mypaint-data-extras,   (background photos/templates/textures)
  mate-backgrounds, plasma-workspace-wallpapers, gnome-backgrounds
- Debian librsvg2-bin                          (rsvg-convert, for the SVG emoji styles)
- npm emoji-datasource-{twitter,facebook,google,apple} (64 px PNG per emoji)
- npm @lobehub/fluent-emoji-3d                  (3-D shaded PNGs)
- npm @lobehub/fluent-emoji-flat, -modern       (Fluent flat and colour-gradient SVGs, MIT)
- npm openmoji                                  (outlined colour SVGs, CC BY-SA 4.0)
- npm @iconify-json/emojione, fxemoji, noto-v1, (EmojiOne 2 CC BY 4.0; Firefox OS emoji and
  fluent-emoji-high-contrast, emojione-monotone  Noto's earlier designs, Apache 2.0; Fluent
                                                 one-colour MIT; EmojiOne monotone CC BY 4.0;
                                                 SVG bodies; sprites.EXTRA_STYLES, for
                                                 train --extra-styles)
- Debian tuxpaint-stamps-default, openclipart-png (photos and drawings of real objects,
                                                 GPL-2 and public domain; the extra styles
                                                 clipart, clipart2)
- scikit-image / scikit-learn sample images    (pip packages)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

# Sources only the optional styles read (sprites.EXTRA_STYLES, `train --extra-styles`): the
# shipped recipe, the evaluation and the tests need none of them.
EXTRA_STYLE_APT = ("tuxpaint-stamps-default", "openclipart-png")
EXTRA_STYLE_NPM = (
    "@iconify-json/emojione@1.2.3",
    "@iconify-json/fxemoji@1.2.2",
    "@iconify-json/noto-v1@1.2.5",
    "@iconify-json/fluent-emoji-high-contrast@1.2.6",
    "@iconify-json/emojione-monotone@1.2.1",
)
EXTRA_STYLE_SOURCES = EXTRA_STYLE_APT + EXTRA_STYLE_NPM
APT_PACKAGES = ("fonts-noto-color-emoji", "tuxpaint-data", "mypaint-data-extras", "mate-backgrounds",
                "plasma-workspace-wallpapers", "gnome-backgrounds", "librsvg2-bin", *EXTRA_STYLE_APT)
NPM_PACKAGES = (
    "emoji-datasource@16.0.0",
    "emoji-datasource-twitter@16.0.0",
    "emoji-datasource-facebook@16.0.0",
    "emoji-datasource-google@16.0.0",
    "emoji-datasource-apple@16.0.0",
    "@lobehub/fluent-emoji-3d@1.1.0",
    "@lobehub/fluent-emoji-flat@1.1.0",
    "@lobehub/fluent-emoji-modern@1.0.0",
    "openmoji@17.0.0",
    *EXTRA_STYLE_NPM,
)
NOTO_FONT = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")
BACKGROUND_DIRS = {
    "tuxpaint": Path("/usr/share/tuxpaint/templates"),
    "mypaint": Path("/usr/share/mypaint-data"),
    "mate": Path("/usr/share/backgrounds/mate"),
}


def assets_dir() -> Path:
    """The asset cache: $TINY_VLM_ASSETS or ~/.cache/tiny-vlm/assets."""
    return Path(os.environ.get("TINY_VLM_ASSETS", Path.home() / ".cache" / "tiny-vlm" / "assets"))


def npm_root() -> Path:
    return assets_dir() / "npm" / "node_modules"


def missing_sources(extra_styles: bool = False) -> list[str]:
    """The sources of this file's lists that are not installed (Debian packages, npm packages);
    those of the optional extra styles only when `extra_styles`."""
    wanted = lambda p: extra_styles or p not in EXTRA_STYLE_SOURCES  # noqa: E731
    missing = [p for p in APT_PACKAGES if wanted(p)
               and (not shutil.which("dpkg") or subprocess.run(["dpkg", "-s", p], capture_output=True).returncode != 0)]
    return missing + [p for p in NPM_PACKAGES if wanted(p) and not (npm_root() / p.rsplit("@", 1)[0]).exists()]


def install_apt() -> None:
    missing = [p for p in APT_PACKAGES if subprocess.run(["dpkg", "-s", p], capture_output=True).returncode != 0]
    if not missing:
        return
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    subprocess.run(sudo + ["apt-get", "update", "-qq"], check=True)  # a fresh machine has no package lists yet
    subprocess.run(sudo + ["apt-get", "install", "-y", "--no-install-recommends", *missing], check=True)


def install_npm() -> None:
    prefix = assets_dir() / "npm"
    prefix.mkdir(parents=True, exist_ok=True)
    want = [p for p in NPM_PACKAGES if not (npm_root() / p.rsplit("@", 1)[0]).exists()]
    if want:
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", str(prefix), *want], check=True)


def install_samples() -> None:
    """Copy scikit-image / scikit-learn bundled sample photos into the cache as PNG/JPEG."""
    out = assets_dir() / "samples"
    out.mkdir(parents=True, exist_ok=True)
    import numpy as np
    from PIL import Image

    try:
        from sklearn.datasets import load_sample_images

        for name, img in zip(("china", "flower"), load_sample_images().images):
            Image.fromarray(np.asarray(img, dtype=np.uint8)).save(out / f"sklearn_{name}.jpg", quality=95)
    except ImportError:
        print("scikit-learn missing: pip install scikit-learn", file=sys.stderr)
    try:
        import skimage.data as skd

        for name in ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry", "retina", "cat", "camera", "moon", "grass", "gravel", "brick", "rough_wall"):
            try:
                img = np.asarray(getattr(skd, name)())
            except AttributeError:  # rough_wall was dropped from scikit-image's samples (absent in 0.26)
                print(f"skimage {name}: not in scikit-image {skimage_version()}, skipped", file=sys.stderr)
                continue
            except Exception as err:  # some samples need a download; skip those
                print(f"skimage {name}: skipped, could not be loaded ({err.__class__.__name__}: {err})", file=sys.stderr)
                continue
            if img.ndim == 2:
                img = np.stack([img] * 3, -1)
            if img.dtype != np.uint8:
                img = (255 * (img - img.min()) / max(1e-6, float(img.max() - img.min()))).astype(np.uint8)
            Image.fromarray(img[..., :3]).save(out / f"skimage_{name}.png")
    except ImportError:
        print("scikit-image missing: pip install scikit-image", file=sys.stderr)


def skimage_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("scikit-image")
    except PackageNotFoundError:
        return "(version unknown)"


def write_pack(path: Path, labels: list[dict], extra_styles: tuple[str, ...] = ()) -> None:
    """The training split's assets in one .npz: sprite tables per style (the training styles
    and `extra_styles`), their distractor tables (train --distractors) + background photos."""
    import json

    import numpy as np

    from .scenes import background_files, load_backgrounds
    from .sprites import TRAIN_STYLES, distractor_table, sprite_table

    styles = TRAIN_STYLES + tuple(extra_styles)
    arrays = {f"sprites_{s}": sprite_table(s, labels) for s in styles}
    arrays.update({f"distractors_{s}": distractor_table(s, labels) for s in styles})
    for i, bg in enumerate(load_backgrounds("train")):
        arrays[f"bg_{i:03d}"] = bg
    arrays["background_names"] = np.frombuffer(json.dumps(background_files("train")).encode(), np.uint8)  # for --drop-object-photos
    arrays["labels_key"] = np.frombuffer(json.dumps([l["codepoints"] for l in labels]).encode(), np.uint8)
    np.savez_compressed(path, **arrays)
    n_bg = sum(k.startswith("bg_") for k in arrays)
    print(f"wrote {path} ({Path(path).stat().st_size / 1e6:.1f} MB: {len(styles)} sprite styles, {n_bg} backgrounds)")


def check_pack_distractors(path: Path, styles: tuple[str, ...]) -> None:
    """Raises ValueError, naming the styles, when the pack has no distractor table for one of
    `styles` (packed before train --distractors existed). Reads only the pack's index."""
    import numpy as np

    with np.load(path) as z:
        absent = [s for s in styles if f"distractors_{s}" not in z.files]
    if absent:
        raise ValueError(f"{path}: has no distractors for style(s) {', '.join(absent)} (packed before --distractors existed); rebuild it with --pack")


def read_pack_distractors(path: Path, styles: tuple[str, ...]) -> list["np.ndarray"]:
    """The distractor tables of `styles` from a pack (train --distractors)."""
    import numpy as np

    check_pack_distractors(path, styles)
    with np.load(path) as z:
        return [z[f"distractors_{s}"] for s in styles]


def read_pack(path: Path, labels: list[dict], styles: tuple[str, ...] | None = None, drop_object_photos: bool = False):
    """-> (sprite tables of `styles` (default: the training styles), each uint8 [n_classes, S, S, 4],
    backgrounds [uint8 [h, w, 3]]); drop_object_photos: without scenes.OBJECT_PHOTOS."""
    import json

    import numpy as np

    with np.load(path) as z:
        key = json.loads(z["labels_key"].tobytes().decode())
        if key != [l["codepoints"] for l in labels]:
            raise ValueError(f"{path}: packed for other labels; rebuild it with --pack")
        from .sprites import TRAIN_STYLES

        absent = [s for s in styles or TRAIN_STYLES if f"sprites_{s}" not in z.files]
        if absent:
            raise ValueError(f"{path}: has no sprites for style(s) {', '.join(absent)}; rebuild it with --pack --extra-styles")
        tables = [z[f"sprites_{s}"] for s in styles or TRAIN_STYLES]
        keys = sorted(k for k in z.files if k.startswith("bg_"))
        if drop_object_photos:
            from .scenes import is_object_photo

            if "background_names" not in z.files:
                raise ValueError(f"{path}: does not name its backgrounds, so the object photos cannot be left out; rebuild it with --pack")
            names = json.loads(z["background_names"].tobytes().decode())
            keys = [k for k, name in zip(keys, names, strict=True) if not is_object_photo(name)]
        backgrounds = [z[k] for k in keys]
    return tables, backgrounds


def main(argv=None) -> None:
    import argparse
    import json

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pack", metavar="FILE", help="write the training assets into one .npz instead of installing")
    ap.add_argument("--labels", metavar="JSON", help="labels file the pack is for (default: built from the emoji metadata)")
    ap.add_argument("--extra-styles", default="", metavar="A,B", help="also pack these styles of sprites.EXTRA_STYLES (as train --extra-styles)")
    args = ap.parse_args(argv)
    if args.pack:
        if args.labels:
            labels = json.loads(Path(args.labels).read_text())
        else:
            from .labels import build_labels

            labels = build_labels(npm_root())
        from .sprites import parse_extra_styles

        write_pack(Path(args.pack), labels, parse_extra_styles(args.extra_styles))
        return
    if shutil.which("apt-get"):
        install_apt()
    install_npm()
    install_samples()
    missing = missing_sources()
    if missing:  # no apt-get here (not Debian/Ubuntu), or an install that did not take
        sys.exit(f"not installed: {', '.join(missing)} (install the Debian packages among them with your system's tools, "
                 f"then run this again)")
    print(f"assets ready in {assets_dir()}")


if __name__ == "__main__":
    main()
