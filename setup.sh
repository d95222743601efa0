#!/usr/bin/env bash
# Set up skysieve on a fresh Debian/Ubuntu machine: system libraries (when root), a virtual
# environment in .venv, torch pinned first (so nothing pulls a newer multi-GB build), then skysieve
# with the viewer and the test tools. Safe to rerun.
set -euo pipefail
cd "$(dirname "$0")"

SYSTEM_PACKAGES=(xvfb xauth libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0 libxcb-render-util0
  libxcb-xinerama0 libxcb-xkb1 libxkbcommon-x11-0 libxcb-shape0 libxcb-cursor0 libxcb-xfixes0
  libgl1 libegl1 libfontconfig1 libdbus-1-3 gdal-bin fonts-wqy-microhei)
missing=()
for p in "${SYSTEM_PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing system packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "setup: missing system packages (install them as root): ${missing[*]}" >&2
  fi
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q torch==2.14.1 torchvision==0.29.1
.venv/bin/python -m pip install -q -e '.[viewer,dev]'
# The viewer runs on PyQt6. A PyQt5 left in an older .venv would be taken by qtpy (it tries PyQt5 first)
# while pytest-qt takes PyQt6: remove it.
if .venv/bin/python -m pip show -q PyQt5 >/dev/null 2>&1; then
  echo "setup: removing PyQt5 (the viewer now uses PyQt6)"
  .venv/bin/python -m pip uninstall -q -y PyQt5 PyQt5-Qt5 PyQt5-sip
fi
echo "setup: ready (.venv/bin/skysieve)"
