#!/usr/bin/env bash
# One command for everything the tests need, then the tests:
#   bash test.sh [pytest args...]
# Installs Debian packages (Chromium, emoji font, wabt, Xvfb) when missing, a Python
# virtual environment with requirements-test.txt, and the npm packages (Pyodide), then
# runs pytest over tests/. Browser tests that need NumPy for Pyodide run when the official
# wheel is in ~/.cache/tiny-vlm/pyodide (or $TINY_VLM_PYODIDE_PACKAGES) and say why they
# skip otherwise.
set -euo pipefail
cd "$(dirname "$0")"

say() { printf '\n== %s\n' "$*"; }

APT_PACKAGES="chromium fonts-noto-color-emoji wabt xvfb firefox-esr webkit2gtk-driver"
missing=""
for p in $APT_PACKAGES; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
# Debian's python3 makes virtual environments only with python3-venv (ensurepip)
python3 -c "import ensurepip" >/dev/null 2>&1 || missing="$missing python3-venv"
if [ -n "$missing" ]; then
  say "apt-get install$missing"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi

REQ_HASH=$(sha256sum requirements-test.txt | cut -c1-12)
VENV="${TINY_VLM_VENV:-$HOME/.cache/tiny-vlm/venv-$REQ_HASH}"
if [ ! -x "$VENV/bin/python" ] || [ ! -f "$VENV/.complete" ]; then
  say "python venv $VENV"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r requirements-test.txt
  touch "$VENV/.complete"
fi

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi

say "pytest"
export PYTHONUNBUFFERED=1
exec "$VENV/bin/python" -m pytest tests -rs "$@"
