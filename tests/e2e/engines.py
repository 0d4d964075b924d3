"""Drivers for the non-Chromium engines, each reduced to what the tests need:
open(url), evaluate(js) -> JSON value, errors (console errors seen), close().

- Firefox ESR: its built-in WebDriver BiDi (no geckodriver): `firefox-esr -headless
  --remote-debugging-port N` and a small JSON-over-websocket client (`websockets`).
- WebKit: Debian's WebKitWebDriver driving WebKitGTK's MiniBrowser through Selenium, under
  Xvfb (MiniBrowser has no headless mode).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

FIREFOX = shutil.which("firefox-esr") or shutil.which("firefox")
WEBKIT_DRIVER = shutil.which("WebKitWebDriver")
MINIBROWSER = Path("/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser")
XVFB = shutil.which("Xvfb")
FIREFOX_PREFS = {
    "media.navigator.streams.fake": True,  # a generated camera picture
    "media.navigator.permission.disabled": True,  # no permission prompt
    "remote.active-protocols": 1,  # WebDriver BiDi only
    "browser.shell.checkDefaultBrowser": False,
    "datareporting.policy.dataSubmissionEnabled": False,
    "app.update.disabledForTesting": True,
    "browser.startup.homepage_override.mstone": "ignore",
    "network.captive-portal-service.enabled": False,
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class EngineError(RuntimeError):
    pass


class Firefox:
    """One headless Firefox ESR with one tab, driven over WebDriver BiDi."""

    def __init__(self, timeout_s: float = 60):
        from websockets.sync.client import connect

        self.profile = Path(tempfile.mkdtemp(prefix="tiny-vlm-firefox-"))
        prefs = "".join(f"user_pref({json.dumps(k)}, {json.dumps(v)});\n" for k, v in FIREFOX_PREFS.items())
        (self.profile / "user.js").write_text(prefs)
        port = free_port()
        self.log = open(self.profile / "firefox.log", "w+")
        self.process = subprocess.Popen(
            [FIREFOX, "-headless", "-no-remote", "-profile", str(self.profile), "--remote-debugging-port", str(port), "about:blank"],
            stdout=self.log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self.ws = connect(f"ws://127.0.0.1:{port}/session", open_timeout=5, max_size=None).__enter__()
                break
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.close()
                    raise EngineError(f"Firefox did not open WebDriver BiDi on port {port}")
                time.sleep(0.3)
        self.next_id = 0
        self.errors = []
        self.version = self.command("session.new", {"capabilities": {}})["capabilities"]["browserVersion"]
        self.command("session.subscribe", {"events": ["log.entryAdded"]})
        self.context = self.command("browsingContext.getTree", {})["contexts"][0]["context"]

    def command(self, method: str, params: dict, timeout_s: float = 300):
        self.next_id += 1
        my_id = self.next_id
        self.ws.send(json.dumps({"id": my_id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout_s
        while True:
            message = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if message.get("method") == "log.entryAdded" and message["params"].get("level") == "error":
                self.errors.append(message["params"].get("text"))
            if message.get("id") != my_id:
                continue
            if message.get("type") == "error":
                raise EngineError(f"{method}: {message.get('error')}: {message.get('message')}")
            return message["result"]

    def open(self, url: str) -> None:
        self.command("browsingContext.navigate", {"context": self.context, "url": url, "wait": "complete"})

    def evaluate(self, expression: str, timeout_s: float = 300):
        """Value of a JS expression (a promise is awaited), passed through JSON."""
        result = self.command("script.evaluate", {
            "expression": f"(async () => JSON.stringify(await ({expression})))()",
            "target": {"context": self.context}, "awaitPromise": True, "resultOwnership": "none",
        }, timeout_s)
        if result["type"] == "exception":
            raise EngineError(f"JS exception: {result['exceptionDetails'].get('text')}")
        value = result["result"].get("value")
        return None if value is None else json.loads(value)

    def close(self) -> None:
        try:
            self.ws.close()
        except Exception:
            pass
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.log.close()
        shutil.rmtree(self.profile, ignore_errors=True)


class WebKit:
    """WebKitGTK's MiniBrowser through WebKitWebDriver and Selenium, on a private Xvfb display."""

    def __init__(self):
        from selenium import webdriver
        from selenium.webdriver.webkitgtk.options import Options
        from selenium.webdriver.webkitgtk.service import Service

        self.xvfb = None
        display = os.environ.get("DISPLAY")
        if not display:
            # Xvfb picks a free display itself and writes its number to the pipe once it accepts clients.
            read_end, write_end = os.pipe()
            self.xvfb = subprocess.Popen([XVFB, "-displayfd", str(write_end), "-screen", "0", "1280x1024x24", "-nolisten", "tcp"],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, pass_fds=(write_end,))
            os.close(write_end)
            with os.fdopen(read_end) as pipe:
                number = pipe.readline().strip()  # blocks until the server is ready (or '' if it died)
            if not number:
                raise RuntimeError(f"Xvfb did not start (exit status {self.xvfb.poll()})")
            display = f":{number}"
        options = Options()
        options.binary_location = str(MINIBROWSER)
        for arg in ("--automation", "--enable-media-stream=true", "--enable-mock-capture-devices=true"):
            options.add_argument(arg)
        service = Service(executable_path=WEBKIT_DRIVER, env={**os.environ, "DISPLAY": display})
        try:
            self.driver = webdriver.WebKitGTK(options=options, service=service)
        except Exception:
            self._stop_xvfb()
            raise
        self.driver.set_script_timeout(300)
        caps = self.driver.capabilities
        self.version = caps.get("browserVersion", "?")
        self.errors = []  # WebKitWebDriver exposes no console log; errors are read from the page

    def open(self, url: str) -> None:
        self.driver.get(url)

    def evaluate(self, expression: str, timeout_s: float = 300):
        self.driver.set_script_timeout(timeout_s)
        script = ("const done = arguments[arguments.length - 1];"
                  f"(async () => JSON.stringify(await ({expression})))().then(done, e => done(JSON.stringify({{__error: String(e)}})));")
        value = json.loads(self.driver.execute_async_script(script) or "null")
        if isinstance(value, dict) and "__error" in value:
            raise EngineError(f"JS exception: {value['__error']}")
        return value

    def close(self) -> None:
        try:
            self.driver.quit()
        finally:
            self._stop_xvfb()

    def _stop_xvfb(self):
        if self.xvfb and self.xvfb.poll() is None:
            self.xvfb.terminate()
            self.xvfb.wait(10)


def version_tuple(text: str) -> tuple:
    return tuple(int(x) for x in re.findall(r"\d+", text)[:3])
