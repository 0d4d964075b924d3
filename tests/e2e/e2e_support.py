"""Constants and helpers shared by the browser tests and their fixtures (conftest.py)."""

from __future__ import annotations

import functools
import os
import shutil
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import build  # noqa: E402
import serve  # noqa: E402

CHROMIUM = Path(os.environ.get("TINY_VLM_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--use-fake-device-for-media-stream",
]
CAMERA_SIZE = (640, 480)  # what web/main.js asks getUserMedia for
BOOT_TIMEOUT_MS = 240_000
ANSWER_TIMEOUT_MS = 120_000
RESULTS_DIR = ROOT / "bench-results"
MOBILE = {
    "viewport": {"width": 375, "height": 812},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
    "user_agent": "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Mobile Safari/537.36",
}


@dataclass
class Site:
    path: Path
    url: str
    manifest: dict
    labels: list | None
    numpy_reason: str  # why NumPy-dependent tests skip ("" when they run)
    metrics: dict | None = None  # the model's held-out evaluation (metrics.json), when shipped

    @property
    def numpy_local(self) -> bool:
        return not self.numpy_reason


@dataclass
class App:
    """A page of the site with the console errors it logged."""

    context: object
    page: object
    errors: list = field(default_factory=list)

    def wait_boot(self) -> str:
        """Wait for ready (returns "ready") or a shown error (returns its text)."""
        self.page.wait_for_function(
            "window.tinyVLM && (window.tinyVLM.client || !document.querySelector('[data-testid=error]').hidden)",
            timeout=BOOT_TIMEOUT_MS,
        )
        if self.page.evaluate("!!window.tinyVLM.client"):
            return "ready"
        return self.page.text_content("[data-testid=error]")


def build_site(out: Path, *extra: str) -> None:
    args = ["--out", str(out), *extra]
    if os.environ.get("TINY_VLM_E2E_MODEL"):
        args += ["--model", os.environ["TINY_VLM_E2E_MODEL"]]
    if build.main(args) != 0:
        pytest.fail("build.py failed (see its output above)")


def start_server(path: Path):
    server = serve.make_server(path, "127.0.0.1", 0, quiet=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, f"http://127.0.0.1:{server.server_port}/"


class CountingServer:
    """serve.py's server for `root` on a free port, counting the body bytes it sends per path
    (a 304 counts 0), so a test can tell what came over the network."""

    def __init__(self, root: Path):
        self.server = serve.make_server(root, "127.0.0.1", 0, quiet=True)
        handler = self.server.RequestHandlerClass  # functools.partial(SiteHandler, directory=...)
        counter = self
        self.sent: dict[str, int] = {}
        self.lock = threading.Lock()

        class Counting(handler.func):
            def copyfile(self, source, outputfile):  # the body of a 200 response
                data = source.read()
                with counter.lock:
                    counter.sent[self.path] = counter.sent.get(self.path, 0) + len(data)
                outputfile.write(data)

            def send_response(self, code, message=None):
                if code == 304:
                    with counter.lock:
                        counter.sent.setdefault(self.path, 0)
                super().send_response(code, message)

        self.server.RequestHandlerClass = functools.partial(Counting, *handler.args, **handler.keywords)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/"

    def take(self) -> dict[str, int]:
        """Bytes sent per path since the last take()."""
        with self.lock:
            sent, self.sent = self.sent, {}
        return sent

    def shutdown(self) -> None:
        self.server.shutdown()


def needs_numpy(site: Site) -> None:
    if not site.numpy_local:
        pytest.skip(site.numpy_reason)


def copy_screenshot(src: Path, name: str) -> None:
    """Screenshots go to bench-results/; also to docs/ when TINY_VLM_UPDATE_SCREENSHOTS=1."""
    RESULTS_DIR.mkdir(exist_ok=True)
    shutil.copyfile(src, RESULTS_DIR / name)
    if os.environ.get("TINY_VLM_UPDATE_SCREENSHOTS") == "1":
        (ROOT / "docs").mkdir(exist_ok=True)
        shutil.copyfile(src, ROOT / "docs" / name)
