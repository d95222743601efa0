"""Review speed with 10,000 flags in one cell: time to open, time per decide-and-advance step.

    xvfb-run -a -s "-screen 0 1920x1200x24" python benchmarks/review_bench.py [--detections 10000]
        [--size-px 10000] [--steps 60] [--window 1600x1000] [--template DIR]

Runs napari for real on $DISPLAY (use `xvfb-run -a` on a server: Qt's offscreen platform has no OpenGL) with the
window shown at ``--window`` size (default 1600x1000, the size of the README screenshots), so every step includes
napari's redraw (software OpenGL under Xvfb: slower than a desktop GPU).

A step is what the analyst does: a key press on the map (C = confirm) -> the decision written to the workspace
(one transaction) -> the next flag selected, framed, zoomed to, its chip and details shown -> every frame the
step causes drawn. The clock stops when the last of those frames is drawn (no new frame for ``QUIET_S``);
frames per step are counted and printed, and the key's handler (the Python that writes the decision and
shows the next flag, before any frame) is timed apart from the frame. The decision's transaction waits for
the disk (SQLite's journal and file syncs): the "bare ledger.decide" line shows what that costs here, and
``TMPDIR=/dev/shm`` puts the workspace copy on tmpfs to leave it out.

Figures are printed as ratios against baselines measured in the same run:
- open: the review widget (lazy multiscale COG + box lines + status marks + queue + first flag shown) against
  adding the same 10,000 boxes as a napari Shapes layer (the obvious choice, which the widget avoids)
  and against reading the full-resolution mosaic into memory (what a non-lazy viewer would do);
- step: against the same step done on that Shapes layer (recolour the decided box through the public
  ``face_color`` setter, move the camera to the next box, draw), and against the bare ``ledger.decide``
  transaction on the same file (the part no GUI can avoid).
Target: each step under 0.1 s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

#: a step is over when no new frame has been drawn for this long (seconds; not counted in the step)
QUIET_S = 0.12


def _pump(app, seconds: float = 0.0) -> None:
    end = time.perf_counter() + seconds
    app.processEvents()
    while time.perf_counter() < end:
        app.processEvents()


def _draw(viewer, app) -> None:
    """Force a drawn frame (a canvas grab); under a loaded Xvfb a grab can come back empty: then pump."""
    try:
        viewer.screenshot(canvas_only=True, flash=False)
    except AttributeError:
        _pump(app, 0.05)


def _x_server_pid() -> int | None:
    """The pid of the Xvfb (or Xorg) serving $DISPLAY on this machine, if it can be found in /proc."""
    display = os.environ.get("DISPLAY", "").split(".")[0]
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and Path(argv[0].decode(errors="replace")).name in ("Xvfb", "Xorg", "X") \
                and display.encode() in argv:
            return int(cmdline.parent.name)
    return None


def _cpu_s(pid: int | None) -> float:
    """CPU seconds (user + system) used so far by process ``pid`` (0 when unknown)."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class FrameClock:
    """Times a user action up to the last frame it causes, and the CPU it costs.

    Counts the vispy canvas's draw events; after the action, Qt's event loop is run until no new frame has
    come for ``QUIET_S``. The step's time ends when the event-loop pass that drew the last frame returned
    (that pass includes Qt's composition of the window). CPU time is this process's (all threads, the
    software-OpenGL rasteriser's included) plus the X server's, up to the same moment: unlike wall time it
    hardly depends on what else the machine runs, so it estimates the step on an idle machine.
    """

    def __init__(self, viewer, app) -> None:
        self.app = app
        self.frames = 0
        self.x_pid = _x_server_pid()
        self.cpu: list[float] = []
        self.handler: list[float] = []  # seconds in the action itself (a key press: its handler, before any frame)
        from skysieve.viewer._napari_internals import vispy_canvas

        canvas = vispy_canvas(viewer)  # the one place napari's draws can be counted
        canvas._scene_canvas.events.draw.connect(self._count, position="first")  # noqa: SLF001

    def _count(self, _event=None) -> None:
        self.frames += 1

    def time(self, action, timeout_s: float = 5.0) -> tuple[float, int]:
        """``(seconds from the action's start to its last frame, frames drawn)``."""
        f0 = self.frames
        c0, x0 = time.process_time(), _cpu_s(self.x_pid)
        t0 = time.perf_counter()
        action()
        self.handler.append(time.perf_counter() - t0)
        t_end, cpu = None, 0.0
        while True:
            before = self.frames
            self.app.processEvents()
            now = time.perf_counter()
            if self.frames != before:
                t_end = now
                cpu = time.process_time() - c0 + _cpu_s(self.x_pid) - x0
            if (t_end is not None and now - t_end > QUIET_S) or now - t0 > timeout_s:
                break
            time.sleep(0.001)
        self.cpu.append(cpu if t_end is not None else float("nan"))
        return (t_end if t_end is not None else now) - t0, self.frames - f0


def _big_mosaic(path: Path, size_px: int) -> None:
    """A sparse tiled GeoTIFF ``size_px`` square with internal overviews (a few painted blocks)."""
    import numpy as np
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.windows import Window

    profile = {"driver": "GTiff", "width": size_px, "height": size_px, "count": 3, "dtype": "uint8",
               "crs": "EPSG:32650", "transform": rasterio.transform.from_origin(500_000, 3_301_500, 0.05, 0.05),
               "tiled": True, "blockxsize": 512, "blockysize": 512, "compress": "DEFLATE", "sparse_ok": True,
               "BIGTIFF": "YES"}
    rng = np.random.default_rng(0)
    with rasterio.open(path, "w", **profile) as dst:
        for r in range(0, size_px, 4096):
            for c in range(0, size_px, 4096):
                dst.write(rng.integers(0, 255, (3, 512, 512), dtype=np.uint8), window=Window(c, r, 512, 512))
        factors = [2 ** k for k in range(1, 12) if size_px >> k >= 256]
        dst.build_overviews(factors, Resampling.nearest)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--detections", type=int, default=10_000)
    parser.add_argument("--size-px", type=int, default=10_000, help="mosaic side in pixels")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--shape-steps", type=int, default=20, help="steps timed on the Shapes-layer baseline")
    parser.add_argument("--window", default="1600x1000",
                        help="napari window size, WIDTHxHEIGHT pixels, or 'default' (napari's own choice)")
    parser.add_argument("--big-px", type=int, default=30_000,
                        help="also time opening a sparse mosaic this many pixels wide (0: skip)")
    parser.add_argument("--template", type=Path,
                        help="keep the built workspace here; if it exists, work on a copy of it instead of building")
    args = parser.parse_args(argv)
    if not os.environ.get("DISPLAY"):
        print("review_bench needs a display with OpenGL: run it as `xvfb-run -a python benchmarks/review_bench.py`")
        return 2

    import numpy as np

    from skysieve import ledger
    from skysieve.viewer import start_qt
    from skysieve.viewer.sample import SampleSpec, make_review_sample
    from skysieve.workspace import Workspace

    root = Path(tempfile.mkdtemp(prefix="review_bench_")) / "ws"
    if args.template is not None and (args.template / "survey.gpkg").exists():
        shutil.copytree(args.template, root)
        ws = Workspace.open(root)
        print(f"working on a copy of {args.template}")
    else:
        cell_m = 500.0
        spec = SampleSpec(cell_size_m=cell_m, gsd_m=cell_m / args.size_px, n_detections=args.detections,
                          n_neighbour_detections=0, seed=1, centre_xy=(500_250.0, 3_300_250.0))
        t = time.perf_counter()
        ws = make_review_sample(args.template or root, spec)
        print(f"built {ws.root}: {args.detections} flags, {args.size_px} px mosaic in {time.perf_counter() - t:.1f} s")
        if args.template is not None:
            shutil.copytree(args.template, root)
            ws = Workspace.open(root)

    app = start_qt()
    import napari

    from skysieve.viewer import layers as L
    from skysieve.viewer._napari_internals import canvas_widget
    from skysieve.viewer.cog import open_mosaic
    from skysieve.viewer.survey import load_cell, ortho_path
    from skysieve.viewer.widget import ReviewWidget

    # -- open ---------------------------------------------------------------------------------------
    viewer = napari.Viewer(show=True)
    if args.window != "default":
        win_w, win_h = (int(v) for v in args.window.lower().split("x"))
        viewer.window.resize(win_w, win_h)
    _pump(app, 0.2)
    _, _, win_w, win_h = viewer.window.geometry()
    _pump(app, 0.5)
    t0 = time.perf_counter()
    widget = ReviewWidget(viewer, reviewer="bench")
    viewer.window.add_dock_widget(widget, name="skysieve review")
    opened: list[float] = []
    widget.cellOpened.connect(lambda _: opened.append(time.perf_counter()))
    widget.open_workspace(ws)
    while not opened:
        _pump(app, 0.005)
    _pump(app)
    _draw(viewer, app)  # first frame drawn
    t_open = time.perf_counter() - t0
    cell = widget.cell_id
    rows = load_cell(ws, cell).detections
    frame = widget.frame
    clock = FrameClock(viewer, app)
    canvas = canvas_widget(viewer)  # where napari's key events land
    canvas.setFocus()
    viewer.layers.selection.active = widget._layers[L.DETECTIONS_LAYER]  # noqa: SLF001
    _pump(app, 0.3)

    # -- steps: key press -> decision written -> next flag selected, zoomed, drawn ------------------
    from qtpy.QtCore import Qt
    from qtpy.QtTest import QTest

    steps, step_frames = [], []
    clock.cpu.clear()
    clock.handler.clear()
    load_before = os.getloadavg()[0]
    for _ in range(args.steps):
        before = widget.queue.current["det_id"]
        dt, frames = clock.time(lambda: QTest.keyClick(canvas, Qt.Key_C))
        if ledger.get_detection(ws, before)["review_status"] != "confirmed" or widget.queue.current["det_id"] == before:
            print(f"step on {before} did not confirm and advance: the benchmark is broken")
            return 1
        steps.append(dt)
        step_frames.append(frames)
    step_cpu = list(clock.cpu)
    step_handler = list(clock.handler)
    nexts = [clock.time(lambda: QTest.keyClick(canvas, Qt.Key_N))[0] for _ in range(args.steps)]

    # -- baseline: the same 10,000 boxes as a Shapes layer -------------------------------------------
    t = time.perf_counter()
    shapes = viewer.add_shapes([frame.rings(r["geometry"])[0] for r in rows], shape_type="polygon",
                               edge_color="orange", face_color="transparent", name="baseline shapes")
    _pump(app)
    t_shapes = time.perf_counter() - t
    for name, layer in widget._layers.items():  # noqa: SLF001 (the widget's flag layers give way to the Shapes)
        if name not in (L.CELLS_LAYER, L.SITES_LAYER) and not name.startswith("mosaic"):
            layer.visible = False
    shape_steps = []
    clock.cpu.clear()
    green = np.array(L.STATUS_FILL["confirmed"])
    zoom = viewer.scene.camera.zoom
    for k in range(min(args.steps, args.shape_steps)):
        def shapes_step(k=k) -> None:
            colours = np.array(shapes.face_color)
            colours[k] = green
            shapes.face_color = colours
            nxt = rows[k + 1]
            viewer.scene.camera.center = tuple(frame.to_world(nxt["x"], nxt["y"])[0])
            viewer.scene.camera.zoom = zoom
        shape_steps.append(clock.time(shapes_step)[0])
    shape_cpu = list(clock.cpu)
    viewer.layers.remove(shapes)

    t = time.perf_counter()
    full = np.asarray(open_mosaic(ortho_path(ws, cell)).levels[0])
    t_eager = time.perf_counter() - t
    eager_mb = full.nbytes / 2**20
    del full
    pending = [r["det_id"] for r in ledger.review_queue(ws, cell, statuses=["pending"])][: args.steps]
    bare = []
    for det in pending:
        t = time.perf_counter()
        ledger.decide(ws, det, "rejected", "bench-bare")
        bare.append(time.perf_counter() - t)
    canvas_px = tuple(viewer.canvas.size)
    big_line = ""
    if args.big_px:
        from skysieve.viewer.layers import mosaic_layer
        from skysieve.viewer.world import WorldFrame

        big = root.parent / "big.tif"
        _big_mosaic(big, args.big_px)
        for layer in list(viewer.layers):
            viewer.layers.remove(layer)
        _pump(app, 0.2)
        t = time.perf_counter()
        mosaic = open_mosaic(big)
        data, kwargs, kind = mosaic_layer(mosaic, WorldFrame(500_000, 3_302_000), "big")
        viewer.add_image(data, **kwargs)
        viewer.reset_view()
        _pump(app)
        _draw(viewer, app)
        t_big = time.perf_counter() - t
        big_line = (f"open a {args.big_px:,} px mosaic ({len(mosaic.levels)} levels) to its first frame: {t_big:6.2f} s, "
                    f"{mosaic.levels[0].cache.misses} blocks decoded")
    viewer.close()

    def summary(xs: list[float]) -> str:
        xs = sorted(xs)
        return (f"median {statistics.median(xs) * 1000:6.1f} ms, p90 {xs[int(0.9 * (len(xs) - 1))] * 1000:6.1f} ms,"
                f" max {xs[-1] * 1000:6.1f} ms")

    med_step = statistics.median(steps)
    print(f"load average before the steps {load_before:.1f}, at the end {os.getloadavg()[0]:.1f}, on {os.cpu_count()} CPUs")
    print(f"platform: {os.environ.get('QT_QPA_PLATFORM') or 'xcb on ' + os.environ.get('DISPLAY', '?')}; "
          f"window {win_w}x{win_h}, map canvas {canvas_px[1]}x{canvas_px[0]} px; {len(rows)} flags in cell {cell}; "
          f"mosaic {args.size_px} px, {len(widget.data.mosaic.levels)} levels")
    print(f"open (widget, lazy COG, boxes, marks, queue, first frame): {t_open:6.2f} s")
    print(f"  baseline: 10,000 boxes as a Shapes layer:          {t_shapes:6.2f} s  "
          f"(open is {t_open / t_shapes:.2f}x of it)")
    print(f"  baseline: eager read of the full mosaic ({eager_mb:.0f} MiB):  {t_eager:6.2f} s  "
          f"(open is {t_open / t_eager:.2f}x of it)")
    if big_line:
        print(big_line)
    print(f"key C -> confirm + advance, drawn ({args.steps}): {summary(steps)}; "
          f"{statistics.mean(step_frames):.2f} frames/step  -> {'meets' if med_step < 0.1 else 'MISSES'} the 0.1 s target")
    print(f"  of which the key's handler (decision written, next flag shown, tiles chosen): {summary(step_handler)};"
          f" the rest is the frame (napari/vispy draw, software OpenGL, Qt's window composition)")
    x_server = "+ X server" if clock.x_pid else "(X server not found)"
    print(f"  CPU per step (this process {x_server}): {summary(step_cpu)}")
    print(f"key N -> next, drawn ({args.steps}):               {summary(nexts)}")
    print(f"  baseline: the step on a 10,000-box Shapes layer ({len(shape_steps)}): {summary(shape_steps)}  "
          f"(a step is {med_step / statistics.median(shape_steps):.2f}x of it)")
    print(f"    its CPU per step:                           {summary(shape_cpu)}  "
          f"(a step's CPU is {statistics.median(step_cpu) / statistics.median(shape_cpu):.2f}x of it)")
    print(f"  baseline: bare ledger.decide ({len(bare)}): {summary(bare)}  "
          f"(a step is {med_step / statistics.median(bare):.1f}x the transaction)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
