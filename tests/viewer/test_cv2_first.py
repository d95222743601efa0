"""The cv2 / Qt trap: ``import cv2`` first (as ultralytics does), then open the review in napari.

cv2 points QT_QPA_PLATFORM_PLUGIN_PATH at its own Qt; a napari started after it aborts the whole
process ("Could not load the Qt platform plugin xcb"), so the check runs in a fresh interpreter
on pytest-xvfb's display and inspects what it printed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = [pytest.mark.gui, pytest.mark.slow]

SCRIPT = textwrap.dedent("""
    import os, sys
    import cv2  # first, as in a detection session
    assert "cv2" in os.environ.get("QT_QPA_PLATFORM_PLUGIN_PATH", ""), "cv2 no longer sets the plugin path"
    from qtpy.QtCore import QEventLoop, QTimer
    from skysieve.viewer import open_review

    widget = open_review(sys.argv[1], reviewer="cv2-check")
    loop = QEventLoop()
    widget.cellOpened.connect(lambda _: loop.quit())
    QTimer.singleShot(20000, loop.quit)
    if widget.cell_id is None:
        loop.exec_()
    widget.confirm()
    shot = widget.viewer.screenshot(canvas_only=True, flash=False)
    print("CELL", widget.cell_id, "STD", float(shot.std()), "PLUGIN_PATH", os.environ.get("QT_QPA_PLATFORM_PLUGIN_PATH"))
    widget.viewer.close()
""")


def test_review_opens_after_cv2_was_imported(review_ws, tmp_path):
    if not os.environ.get("DISPLAY"):
        pytest.skip("needs a display (pytest-xvfb provides one)")
    script = tmp_path / "cv2_first.py"
    script.write_text(SCRIPT)
    env = {k: v for k, v in os.environ.items() if not k.startswith("QT_QPA_")}
    done = subprocess.run([sys.executable, str(script), str(review_ws.root)], capture_output=True, text=True,
                          timeout=120, env=env)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    line = next(x for x in done.stdout.splitlines() if x.startswith("CELL"))
    _, cell, _, std, _, plugin_path = line.split()
    assert cell == "E500000N3300000" and float(std) > 5 and plugin_path == "None"
    from skysieve import ledger

    assert [r["review_status"] for r in ledger.review_queue(review_ws, statuses=["confirmed"])]
