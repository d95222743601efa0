"""The cv2 / Qt trap: ``import cv2`` first (as ultralytics does), then ``skysieve review`` opens napari.

cv2 points QT_QPA_PLATFORM_PLUGIN_PATH at its own Qt; a napari started after it aborts the whole
process ("Could not load the Qt platform plugin xcb"), so the check runs in a fresh interpreter on
pytest-xvfb's display. It drives the real command (``--screenshot`` opens the window, saves it, exits).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PIL import Image

pytestmark = [pytest.mark.gui, pytest.mark.slow]

SCRIPT = textwrap.dedent("""
    import os, sys
    import cv2  # first, as in a detection session
    assert "cv2" in os.environ.get("QT_QPA_PLATFORM_PLUGIN_PATH", ""), "cv2 no longer sets the plugin path"
    from skysieve.cli import main

    rc = main(["review", sys.argv[1], "--reviewer", "cv2-check", "--screenshot", sys.argv[2]])
    print("RC", rc, "PLUGIN_PATH", os.environ.get("QT_QPA_PLATFORM_PLUGIN_PATH"))
""")


def test_review_command_opens_napari_after_cv2_was_imported(review_ws, tmp_path):
    if not os.environ.get("DISPLAY"):
        pytest.skip("needs a display (pytest-xvfb provides one)")
    script, png = tmp_path / "cv2_first.py", tmp_path / "review.png"
    script.write_text(SCRIPT)
    env = {k: v for k, v in os.environ.items() if not k.startswith("QT_QPA_")}
    done = subprocess.run([sys.executable, str(script), str(review_ws.root), str(png)], capture_output=True,
                          text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    assert "RC 0 PLUGIN_PATH None" in done.stdout
    assert f"saved {png}" in done.stdout and "E500000N3300000" in done.stdout
    image = np.asarray(Image.open(png))
    assert image.shape[0] >= 400 and image.shape[1] >= 600 and image.std() > 10
