#!/usr/bin/env python3
"""Serve the built tiny-vlm site (dist/) on http://127.0.0.1:8000/.

    python3 serve.py                      # builds first when dist/ is missing or stale
    python3 serve.py --host 0.0.0.0 --port 8080

Browsers allow the camera only on https:// or http://localhost: when you expose the site on
a network with --host, open it through an https proxy or tunnel (or use image upload).
Headers: exact MIME types (.wasm, .mjs, .whl, .json: a wrong .wasm type makes Pyodide hang,
a wrong .mjs type kills the worker), cross-origin isolation (COOP/COEP: 5 µs timers),
`Cache-Control: no-cache` (the browser revalidates and gets 304s). A file with a gzip twin
(`NAME.gz`, written by build.py) is sent compressed, `Content-Encoding: gzip`, to clients
that accept gzip. Nothing outside the site folder is ever served.
"""

from __future__ import annotations

import argparse
import email.utils
import http.server
import json
import os
import socket
import sys
from functools import partial
from pathlib import Path

import build

MIME_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".wasm": "application/wasm",
    ".whl": "application/zip",
    ".zip": "application/zip",
    ".safetensors": "application/octet-stream",
    ".md": "text/markdown; charset=utf-8",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".webmanifest": "application/manifest+json",
}


class SiteHandler(http.server.SimpleHTTPRequestHandler):
    """Static files from one folder with the headers Pyodide and the camera page need."""

    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, **MIME_TYPES, "": "application/octet-stream"}
    quiet = False

    def send_head(self):
        # SimpleHTTPRequestHandler drops '..' segments already; this also refuses anything
        # (a symlink, say) that resolves outside the site root.
        root = os.path.realpath(self.directory)
        real = os.path.realpath(self.translate_path(self.path))
        if real != root and not real.startswith(root + os.sep):
            self.send_error(404, "Not found")
            return None
        twin = real + ".gz"
        if (os.path.isfile(real) and os.path.isfile(twin) and os.path.getmtime(twin) >= os.path.getmtime(real)
                and self._accepts_gzip()):
            return self._send_twin(real, twin)
        return super().send_head()

    def _accepts_gzip(self) -> bool:
        for item in self.headers.get("Accept-Encoding", "").split(","):
            name, _, params = item.partition(";")
            if name.strip().lower() == "gzip":
                q = params.strip().removeprefix("q=").strip() if params.strip().startswith("q=") else "1"
                try:
                    return float(q) > 0
                except ValueError:
                    return False
        return False

    def _send_twin(self, real: str, twin: str):
        """The gzip twin of `real` with real's type (a conditional GET may get a 304)."""
        f = open(twin, "rb")
        stat = os.fstat(f.fileno())
        since = self.headers.get("If-Modified-Since")
        if since and "If-None-Match" not in self.headers:
            try:
                when = email.utils.parsedate_to_datetime(since).timestamp()
            except (TypeError, ValueError, IndexError, OverflowError):
                when = None
            if when is not None and int(stat.st_mtime) <= when:
                f.close()
                self.send_response(304)
                self.end_headers()
                return None
        self.send_response(200)
        self.send_header("Content-Type", self.guess_type(real))
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(stat.st_size))
        self.send_header("Last-Modified", self.date_time_string(stat.st_mtime))
        self.end_headers()
        return f

    def list_directory(self, path):
        self.send_error(404, "No directory listings")
        return None

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        self.send_header("Cross-Origin-Resource-Policy", "same-origin")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Vary", "Accept-Encoding")
        super().end_headers()

    def log_message(self, format: str, *args) -> None:
        if not self.quiet:
            super().log_message(format, *args)


class QuietSiteHandler(SiteHandler):
    quiet = True


def make_server(directory: Path, host: str = "127.0.0.1", port: int = 8000, quiet: bool = False):
    """A threading HTTP server for `directory` (port 0: any free port; see server.server_port)."""
    handler = partial(QuietSiteHandler if quiet else SiteHandler, directory=str(directory))
    server_class = http.server.ThreadingHTTPServer
    if ":" in host:  # an IPv6 address such as ::1 or ::
        server_class = type("ThreadingHTTPServer6", (server_class,), {"address_family": socket.AF_INET6})
    return server_class((host, port), handler)


def needs_build(out: Path, model: str | None) -> str | None:
    """Why `out` must be (re)built before serving the app on `model`, or None when it is current."""
    manifest = out / "manifest.json"
    if not manifest.is_file():
        return "it is missing"
    try:
        recorded = json.loads(manifest.read_text()).get("build_options")
    except ValueError:
        return "its manifest.json is not valid JSON"
    if recorded != build.options_key(build.parse_args(["--model", model] if model else [])):
        return "it was built with other options (another model, a random model, no kernels or NumPy from the CDN)"
    if manifest.stat().st_mtime < build.newest_source_mtime(model):
        return "it is older than its sources"
    return None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Serve the tiny-vlm site.")
    parser.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1; 0.0.0.0 for a network)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--dir", default=str(build.ROOT / "dist"), help="site folder (default dist/)")
    parser.add_argument("--model", help="model folder for the build (default: the single one under models/)")
    parser.add_argument("--no-build", action="store_true", help="serve --dir as it is")
    args = parser.parse_args(argv)
    out = Path(args.dir).resolve()
    reason = None if args.no_build else needs_build(out, args.model)
    if reason:
        print(f"[serve] building {out}: {reason}")
        build_args = ["--out", str(out)] + (["--model", args.model] if args.model else [])
        if build.main(build_args) != 0:
            return 1
    try:
        served = json.loads((out / "manifest.json").read_text())["model"]["name"]
    except (OSError, ValueError, KeyError):
        served = "unknown (no manifest.json)"
    server = make_server(out, args.host, args.port)
    shown = "127.0.0.1" if args.host in ("127.0.0.1", "localhost") else (f"[{args.host}]" if ":" in args.host else args.host)
    print(f"[serve] tiny-vlm at http://{shown}:{server.server_port}/  (serving {out}, model {served}; Ctrl-C stops)")
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print("[serve] note: browsers allow the camera only on https:// or localhost; use an https proxy/tunnel or upload images")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
