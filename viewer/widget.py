"""The review widget: walk a cell's flags from the most suspicious down and decide each in one key.

The widget holds no business logic. Reads come from :mod:`skysieve.viewer.survey` (and through it
:func:`skysieve.ledger.review_queue`); every decision, note, category, undo and push is one call to a
:mod:`skysieve.ledger` service, which writes it to the workspace in one transaction with the
reviewer's name and time and an audit entry. Opening a cell and pushing to the suspect list run in
napari ``thread_worker``\\ s so the viewer stays responsive.

Keys (also in the widget's help line), bound on the viewer and on the widget's own layers:
C confirm, X reject, U unsure, N or Right next, P or Left previous, Ctrl+Z undo, E note, 1-6 category.
"""

from __future__ import annotations

import getpass
import logging
import os
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from napari.qt.threading import create_worker
from qtpy.QtCore import QAbstractTableModel, QEvent, QModelIndex, Qt, QThreadPool, QTimer, Signal
from qtpy.QtGui import QColor, QImage, QKeySequence, QPixmap
from qtpy.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from skysieve import ledger
from skysieve.errors import SkysieveError
from skysieve.schema import REVIEW_STATUSES
from skysieve.viewer import layers as L
from skysieve.viewer._redraw import (
    FlagFrame,
    ShapesFrame,
    quiet_layer_list,
    recolour_point,
    settle_multiscale,
    vispy_canvas,
)
from skysieve.viewer._textpanel import TextPanel
from skysieve.viewer.cog import read_chip
from skysieve.viewer.keys import CATEGORY_KEYS, REVIEW_KEYS, help_line, tooltip
from skysieve.viewer.queue import QueueFilter, ReviewQueue
from skysieve.viewer.survey import (
    REVIEW_COLUMNS,
    CellData,
    changed_since,
    choose_cell,
    frame_for,
    load_cell,
    neighbour,
    review_state,
    reviewable_cells,
)
from skysieve.viewer.world import WorldFrame
from skysieve.workspace import Workspace

__all__ = ["ReviewWidget", "default_reviewer"]

log = logging.getLogger(__name__)

_CHIP_PX = 192
_ANY = "any"
_FAILED = object()
#: seconds between checks for decisions made by other analysts
_POLL_S = 10
#: rows of the queue table kept visible before the current one when the table has to scroll
_TABLE_MARGIN_ROWS = 2


def default_reviewer() -> str:
    """``$SKYSIEVE_REVIEWER``, else the login name."""
    return os.environ.get("SKYSIEVE_REVIEWER") or getpass.getuser()


class _Fresh:
    """Marks a worker argument: open this workspace inside the worker thread.

    Each worker job gets its own :class:`Workspace` (its own pyproj CRS and SQLite connection), and
    runs on a thread of its own: :meth:`ReviewWidget._run` sets napari's Qt thread pool to retire
    threads at once. Seen here: pyproj segfaults (in ``CRS.__init__`` / ``CRS.to_string``) when a
    second job runs on a *reused* pool thread, whose Python thread state (and pyproj's per-thread
    PROJ context) was torn down after the first job while PROJ's own thread-locals lived on.
    """

    def __init__(self, root: Path) -> None:
        self.root = root


def _is_pending(state: tuple) -> bool:
    """Whether a :data:`REVIEW_COLUMNS` tuple is undecided."""
    return (state[0] or "pending") == "pending"


def _key_code(event) -> int:
    """A key press as one int, modifiers included (keypad ignored), for ``QKeySequence``.

    PyQt5 gives modifiers as int-like flags, PyQt6 as ``enum.Flag`` (whose ``int()`` fails): take
    ``.value`` where there is one.
    """
    mods = event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
    return int(getattr(mods, "value", mods)) | int(event.key())


def _chip_bounds(row: dict[str, Any]) -> tuple[float, float, float, float]:
    """Ground shown in the chip: the box and its surroundings, at least 12 m across (metres)."""
    half = max(3.0 * max(row.get("width_m") or 2.0, row.get("height_m") or 2.0), 12.0) / 2
    return row["x"] - half, row["y"] - half, row["x"] + half, row["y"] + half


class QueueModel(QAbstractTableModel):
    """The queue as a lazy table (Qt asks only for visible rows, so 10,000 flags cost nothing)."""

    COLUMNS = ("#", "class", "score", "priority", "status", "site")
    _STATUS_COLOURS = {"confirmed": QColor(40, 170, 60), "rejected": QColor(130, 130, 130),
                       "unsure": QColor(200, 170, 0)}

    def __init__(self) -> None:
        super().__init__()
        self.queue = ReviewQueue()

    def set_queue(self, queue: ReviewQueue) -> None:
        self.beginResetModel()
        self.queue = queue
        self.endResetModel()

    def row_changed(self, i: int) -> None:
        self.dataChanged.emit(self.index(i, 0), self.index(i, len(self.COLUMNS) - 1))

    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: B008, N802 (Qt API)
        return 0 if parent.isValid() else len(self.queue)

    def columnCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: B008, N802
        return len(self.COLUMNS)

    def headerData(self, section: int, orientation, role=Qt.ItemDataRole.DisplayRole):  # noqa: N802
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return self.COLUMNS[section]
        return None

    def data(self, index: QModelIndex, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        row = self.queue.rows[index.row()]
        status = row.get("review_status") or "pending"
        if role == Qt.ItemDataRole.DisplayRole:
            col = self.COLUMNS[index.column()]
            if col == "#":
                return index.row() + 1
            if col == "score":
                return f"{row['score']:.2f}"
            if col == "priority":
                return "" if row.get("priority") is None else f"{row['priority']:.2f}"
            if col == "status":
                return status + (" ✓pushed" if row.get("suspect_id") else "")
            if col == "site":
                return row.get("site_id") or ""
            return row.get(col)
        if role == Qt.ItemDataRole.ForegroundRole and index.column() == 4:
            return self._STATUS_COLOURS.get(status)
        return None


class ReviewWidget(QWidget):
    """Dock widget for reviewing one workspace, cell by cell.

    ``napari_viewer`` is injected by napari (Plugins menu) or passed by :func:`open_review`.
    Without a ``workspace`` the widget looks for one among the viewer's layers (opened with the
    skysieve reader) and otherwise offers an "Open workspace" button.
    """

    cellOpened = Signal(str)  # noqa: N815 (Qt naming)
    queueLoaded = Signal()  # noqa: N815
    pushed = Signal(object)  # a ledger.PushResult
    failed = Signal(str)

    def __init__(self, napari_viewer, workspace: Workspace | str | Path | None = None, *,
                 cell_id: str | None = None, reviewer: str | None = None) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.ws: Workspace | None = None
        self.frame = WorldFrame()
        self.cell_id: str | None = None
        self.data: CellData | None = None
        self.queue = ReviewQueue()
        self._point_index: dict[str, int] = {}
        self._state: dict[str, tuple] = {}  # det_id -> REVIEW_COLUMNS values last shown
        self._pending = 0  # how many of them are pending (kept by _apply_row)
        self._audit_mark = 0  # newest audit entry seen (decisions elsewhere move it)
        self._layers: dict[str, Any] = {}
        self._canvas: Any = None  # napari's vispy canvas, once layers exist
        self._boxes_xy = np.zeros((0, 4))  # the cell's detection boxes (minx, miny, maxx, maxy; metres)
        self._flag_frame: FlagFrame | ShapesFrame | None = None  # the square around the current flag
        self._busy = 0
        self._chip_array: np.ndarray | None = None
        self._chips: dict[str, np.ndarray] = {}  # det_id -> chip read ahead by the prefetcher
        self._prefetcher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="skysieve-prefetch")
        self._prefetch_future: Future | None = None
        self._build_ui(reviewer or default_reviewer())
        self._bind_keys()
        self._poll = QTimer(self)
        self._poll.setInterval(_POLL_S * 1000)
        self._poll.timeout.connect(self.refresh_statuses)
        self.viewer.mouse_double_click_callbacks.append(self._on_double_click)
        if workspace is None:
            workspace = self._workspace_from_layers()
        if workspace is not None:
            self.open_workspace(workspace, cell_id)
        else:
            self._say("open a workspace (a folder with survey.gpkg) to start reviewing")

    # -- UI ---------------------------------------------------------------------------------------
    def _build_ui(self, reviewer: str) -> None:
        outer = QVBoxLayout(self)
        top = QHBoxLayout()
        self.workspace_label = QLabel("no workspace")
        self.workspace_label.setWordWrap(True)
        open_btn = QPushButton("Open workspace…")
        open_btn.clicked.connect(self._choose_workspace)
        top.addWidget(self.workspace_label, 1)
        top.addWidget(open_btn)
        outer.addLayout(top)

        cell_row = QHBoxLayout()
        self.cell_combo = QComboBox()
        self.cell_combo.activated.connect(lambda i: self.open_cell(self.cell_combo.itemData(i)))
        cell_row.addWidget(QLabel("cell"))
        cell_row.addWidget(self.cell_combo, 1)
        self.neighbour_buttons: dict[str, QPushButton] = {}
        for direction, arrow in (("west", "◀"), ("north", "▲"), ("south", "▼"), ("east", "▶")):
            b = QPushButton(arrow)
            b.setToolTip(f"open the neighbouring cell to the {direction}")
            b.setFixedWidth(28)
            b.clicked.connect(lambda _=False, d=direction: self.open_neighbour(d))
            cell_row.addWidget(b)
            self.neighbour_buttons[direction] = b
        outer.addLayout(cell_row)

        form = QFormLayout()
        self.reviewer_edit = QLineEdit(reviewer)
        form.addRow("reviewer", self.reviewer_edit)
        filters = QHBoxLayout()
        self.class_combo = QComboBox()
        self.class_combo.addItems([_ANY, *L.CLASS_COLOURS])
        self.status_combo = QComboBox()
        self.status_combo.addItems([_ANY, *REVIEW_STATUSES])
        self.site_combo = QComboBox()
        self.site_combo.addItem(_ANY)
        self.score_spin = QDoubleSpinBox()
        self.score_spin.setRange(0.0, 1.0)
        self.score_spin.setSingleStep(0.05)
        self.score_spin.setPrefix("score ≥ ")
        for w in (self.class_combo, self.status_combo, self.site_combo):
            w.activated.connect(lambda _=0: self.apply_filter())
            filters.addWidget(w)
        self.score_spin.editingFinished.connect(self.apply_filter)
        filters.addWidget(self.score_spin)
        form.addRow("filter", filters)
        outer.addLayout(form)

        self.model = QueueModel()
        self.table = QTableView()
        self.table.setToolTip(help_line())  # the review keys work here and on the map
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(20)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)  # ResizeToContents would scan all 10,000 rows per step
        for col, width in enumerate((40, 104, 46, 56, 150)):
            header.resizeSection(col, width)
        header.setStretchLastSection(True)
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.table.selectionModel().currentRowChanged.connect(self._on_table_row)
        outer.addWidget(self.table, 2)

        detail = QHBoxLayout()
        self.chip = QLabel()
        self.chip.setFixedSize(_CHIP_PX, _CHIP_PX)
        self.chip.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.chip.setStyleSheet("background: #222;")
        self.details = TextPanel(_CHIP_PX, rich=True)
        detail.addWidget(self.chip)
        detail.addWidget(self.details, 1)
        outer.addLayout(detail)

        buttons = QGridLayout()
        specs: list[tuple[str, Callable[[], Any]]] = [
            ("Confirm (C)", self.confirm), ("Reject (X)", self.reject), ("Unsure (U)", self.unsure),
            ("◀ Previous (P)", self.previous), ("Next (N) ▶", self.next), ("Undo (Ctrl+Z)", self.undo),
        ]
        self.buttons: dict[str, QPushButton] = {}
        for i, (text, slot) in enumerate(specs):
            b = QPushButton(text)
            b.clicked.connect(lambda _=False, s=slot: s())
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # keys keep going to the table/canvas
            b.setToolTip(tooltip(slot.__name__))
            buttons.addWidget(b, i // 3, i % 3)
            self.buttons[slot.__name__] = b
        outer.addLayout(buttons)

        form2 = QFormLayout()
        self.note_edit = QLineEdit()
        self.note_edit.setPlaceholderText("note for the field team (E, then Enter saves)")
        self.note_edit.setToolTip(tooltip("edit_note"))
        self.note_edit.returnPressed.connect(lambda: self.save_note(self.note_edit.text()))
        form2.addRow("note", self.note_edit)
        self.category_combo = QComboBox()
        self.category_combo.setToolTip("Suspect category of the current flag: keys 1-6 in the work plan's order")
        self.category_combo.addItem("— no category —", None)
        for key, cat in zip(CATEGORY_KEYS, ledger.SUSPECT_CATEGORIES, strict=False):
            self.category_combo.addItem(f"{key}  {cat.zh}  ({cat.code})", cat.code)
            self.category_combo.setItemData(self.category_combo.count() - 1, cat.en, Qt.ItemDataRole.ToolTipRole)
        self.category_combo.activated.connect(
            lambda i: self.choose_category(self.category_combo.itemData(i)))
        form2.addRow("category", self.category_combo)
        outer.addLayout(form2)

        self.push_button = QPushButton("Push confirmed flags of this cell to the suspect list")
        self.push_button.clicked.connect(self.push_to_suspects)
        self.push_button.setToolTip("Confirmed flags of one candidate site become one suspect (or join the "
                                    "suspect already at that place); their review is then closed")
        outer.addWidget(self.push_button)

        self.help = QLabel(help_line())
        self.help.setWordWrap(True)
        self.help.setStyleSheet("color: #9aa;")
        outer.addWidget(self.help)
        self.message = TextPanel(3 * self.fontMetrics().lineSpacing())
        outer.addWidget(self.message)

    def _bind_keys(self) -> None:
        """Bind the review keys on the viewer, and Qt shortcuts for when the widget has focus."""
        self._qt_keys: dict[str, Callable[[], Any]] = {}
        for key in REVIEW_KEYS:
            self.viewer.bind_key(key.napari, self._key_action(key.action), overwrite=True)
            self._qt_keys[QKeySequence(key.qt).toString()] = getattr(self, key.action)
        for i, digit in enumerate(CATEGORY_KEYS):
            self.viewer.bind_key(digit, self._key_category(i), overwrite=True)
            self._qt_keys[QKeySequence(digit).toString()] = lambda i=i: self.choose_category_number(i + 1)
        self.table.installEventFilter(self)
        self.installEventFilter(self)

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 (Qt API)
        """The review keys while the queue table (or the widget) has focus; typing elsewhere is left alone."""
        if event.type() == QEvent.Type.KeyPress:
            action = self._qt_keys.get(QKeySequence(_key_code(event)).toString())
            if action is not None:
                action()
                return True
        return super().eventFilter(obj, event)

    def _bind_layer_keys(self, layer) -> None:
        """Our keys win over the layer type's own (e.g. Points' P = add mode) on our layers."""
        for key in REVIEW_KEYS:
            layer.bind_key(key.napari, self._key_action(key.action), overwrite=True)
        for i, digit in enumerate(CATEGORY_KEYS):
            layer.bind_key(digit, self._key_category(i), overwrite=True)

    def _key_action(self, action: str):
        def review_key(_viewer_or_layer=None) -> None:
            getattr(self, action)()
        review_key.__doc__ = f"skysieve review: {action.replace('_', ' ')}"
        return review_key

    def _key_category(self, i: int):
        def review_category(_viewer_or_layer=None) -> None:
            self.choose_category_number(i + 1)
        review_category.__doc__ = f"skysieve review: suspect category {i + 1}"
        return review_category

    def _say(self, text: str, *, error: bool = False) -> None:
        self.message.setText(text)
        self.message.set_alarm(error)
        (log.warning if error else log.info)("%s", text)

    @property
    def reviewer(self) -> str:
        return self.reviewer_edit.text().strip()

    @property
    def busy(self) -> bool:
        """True while a worker (cell loading, push) is running."""
        return self._busy > 0

    def _call(self, fn: Callable[..., Any], *args, **kwargs) -> Any:
        """Run a ledger service; a :class:`SkysieveError` becomes a message (and ``_FAILED``), not a crash."""
        try:
            return fn(*args, **kwargs)
        except SkysieveError as e:
            self._say(str(e), error=True)
            return _FAILED

    def _run(self, fn: Callable[..., Any], *args, on_done: Callable[[Any], None], **kwargs) -> None:
        """Run ``fn`` in a napari thread worker; a ``_Fresh`` argument becomes a workspace opened there."""

        def job() -> Any:
            return fn(*(Workspace.open(a.root) if isinstance(a, _Fresh) else a for a in args), **kwargs)

        QThreadPool.globalInstance().setExpiryTimeout(0)  # see _Fresh: no reuse of pool threads
        worker = create_worker(job)
        self._busy += 1

        def done(result: Any) -> None:
            self._busy -= 1
            on_done(result)

        def failed(exc: Exception) -> None:
            self._busy -= 1
            self._say(str(exc), error=True)
            self.failed.emit(str(exc))
            if not isinstance(exc, SkysieveError):
                log.error("review worker failed", exc_info=exc)

        worker.returned.connect(done)
        worker.errored.connect(failed)
        worker.start()

    # -- workspace and cells ----------------------------------------------------------------------
    def _workspace_from_layers(self) -> Path | None:
        for layer in self.viewer.layers:
            root = layer.metadata.get(L.WORKSPACE_KEY)
            if root:
                return Path(root)
        return None

    def _choose_workspace(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open a skysieve workspace")
        if path:
            self.open_workspace(path)

    def open_workspace(self, workspace: Workspace | str | Path, cell_id: str | None = None) -> None:
        """Open a workspace and its best cell to review (or ``cell_id``)."""
        try:
            ws = workspace if isinstance(workspace, Workspace) else Workspace.open(workspace)
            ws.require_crs()
            chosen = choose_cell(ws, cell_id)
        except SkysieveError as e:
            self._say(str(e), error=True)
            return
        self.ws = ws
        self.frame = frame_for(ws)
        self.workspace_label.setText(f"<b>{ws.root.name}</b>  <small>{ws.root}</small>")
        self._remove_foreign_layers(ws)
        self._fill_cell_combo()
        self.open_cell(chosen)
        self._poll.start()

    def _remove_foreign_layers(self, ws: Workspace) -> None:
        """Layers the skysieve reader made for this workspace: the widget replaces them."""
        root = ws.root.resolve()
        for layer in list(self.viewer.layers):
            owner = layer.metadata.get(L.WORKSPACE_KEY)
            if owner and Path(owner).resolve() == root and layer not in self._layers.values():
                self.viewer.layers.remove(layer)

    def _fill_cell_combo(self) -> None:
        self.cell_combo.clear()
        for c in reviewable_cells(self.ws):
            self.cell_combo.addItem(c.label, c.cell_id)

    def open_cell(self, cell_id: str) -> None:
        """Load a cell in a worker; the layers and queue are replaced when it is read."""
        if self.ws is None or not cell_id:
            return
        if cell_id != self.cell_id:
            self.site_combo.setCurrentIndex(0)  # sites belong to a cell; class/status/score filters carry over
        self._say(f"opening cell {cell_id}…")
        self._run(load_cell, _Fresh(self.ws.root), cell_id, self.current_filter(), on_done=self._show_cell)

    def open_neighbour(self, direction: str) -> None:
        """Open the cell touching the current one to the west/north/south/east."""
        if self.ws is None or self.cell_id is None:
            return
        other = neighbour(self.ws.cells(), self.cell_id, direction)
        if other is None:
            self._say(f"no cell to the {direction} of {self.cell_id}")
            return
        self.open_cell(other)

    def _show_cell(self, data: CellData) -> None:
        self.data = data
        self.cell_id = data.cell_id
        i = self.cell_combo.findData(data.cell_id)
        if i < 0:
            self.cell_combo.addItem(data.cell_id, data.cell_id)
            i = self.cell_combo.count() - 1
        self.cell_combo.setCurrentIndex(i)
        self._replace_layers(data)
        self._state = {d["det_id"]: tuple(d.get(c) for c in REVIEW_COLUMNS) for d in data.detections}
        self._audit_mark = data.audit_mark
        self._pending = sum(map(_is_pending, self._state.values()))
        sites = sorted({d["site_id"] for d in data.detections if d.get("site_id")})
        self.site_combo.clear()
        self.site_combo.addItems([_ANY, *sites])
        self.viewer.reset_view()  # the whole cell first; the first flag then takes the camera
        self._set_queue(data.queue)
        self._say(" · ".join(data.problems) if data.problems else
                  f"cell {data.cell_id}: {len(data.detections)} flags, {self._summary()}",
                  error=bool(data.problems))
        self.cellOpened.emit(data.cell_id)

    def _replace_layers(self, data: CellData) -> None:
        for layer in self._layers.values():
            if layer in self.viewer.layers:
                self.viewer.layers.remove(layer)
        self._layers = {}
        if isinstance(self._flag_frame, ShapesFrame):  # a layer: made again above the new cell's layers
            self._flag_frame.remove()
            self._flag_frame = None
        meta = {L.WORKSPACE_KEY: str(self.ws.root), "cell_id": data.cell_id}
        specs = []
        for other, mosaic in sorted(data.neighbour_mosaics.items()):
            payload, kwargs, kind = L.mosaic_layer(mosaic, self.frame, f"mosaic {other} (neighbour)", meta)
            specs.append((payload, {**kwargs, "opacity": 0.6}, kind))
        if data.mosaic is not None:
            specs.append(L.mosaic_layer(data.mosaic, self.frame, f"mosaic {data.cell_id}", meta))
        if data.cells:
            specs.append(L.outline_layer([c.geometry for c in data.cells], [c.cell_id for c in data.cells],
                                         self.frame, L.CELLS_LAYER,
                                         ["white" if c.cell_id == data.cell_id else "#8899aa" for c in data.cells],
                                         meta))
        if data.sites:
            specs.append(L.outline_layer(
                [s["geometry"] for s in data.sites], [f"{s['site_id']} {s['kind']}" for s in data.sites],
                self.frame, L.SITES_LAYER, [L.SITE_COLOURS.get(s["kind"], "white") for s in data.sites], meta))
        specs.append(L.box_layer(data.detections, self.frame, L.BOXES_LAYER, meta))
        specs.append(L.detection_layer(data.detections, self.frame, L.DETECTIONS_LAYER, meta))
        for payload, kwargs, kind in specs:
            layer = getattr(self.viewer, f"add_{kind}")(payload, **kwargs)
            self._layers[kwargs["name"]] = layer
        for layer in self._layers.values():
            self._bind_layer_keys(layer)
            if hasattr(layer, "mode"):
                layer.mode = "pan_zoom"
        self._point_index = {d["det_id"]: i for i, d in enumerate(data.detections)}
        self._boxes_xy = L.box_bounds(data.detections)
        self._canvas = vispy_canvas(self.viewer)  # for redrawing only what a step changes (see _redraw)
        if self._flag_frame is None:
            made = FlagFrame.create(self._canvas) if self._canvas is not None else None
            self._flag_frame = made if made is not None else ShapesFrame(self.viewer)
        self.viewer.layers.selection.active = self._layers[L.DETECTIONS_LAYER]

    # -- queue ------------------------------------------------------------------------------------
    def current_filter(self) -> QueueFilter:
        def pick(combo: QComboBox) -> str | None:
            text = combo.currentText()
            return None if text in (_ANY, "") else text

        cls, status = pick(self.class_combo), pick(self.status_combo)
        score = self.score_spin.value()
        return QueueFilter(classes=(cls,) if cls else None, statuses=(status,) if status else None,
                           site_id=pick(self.site_combo), min_score=score if score > 0 else None)

    def apply_filter(self) -> None:
        """Re-read the queue with the filter controls' values (in a worker)."""
        if self.ws is None or self.cell_id is None:
            return
        keep = self.queue.current["det_id"] if self.queue.current else None
        flt = self.current_filter()

        def done(rows: list[dict[str, Any]]) -> None:
            self._set_queue(rows, keep)
            self._say(f"{len(rows)} flags match the filter ({self._summary()})")

        self._run(ledger.review_queue, _Fresh(self.ws.root), self.cell_id, on_done=done, **flt.as_kwargs())

    def _set_queue(self, rows: list[dict[str, Any]], keep: str | None = None) -> None:
        self.queue = ReviewQueue(rows)
        self.model.set_queue(self.queue)
        if keep is not None and self.queue.position(keep) is not None:
            self.queue.select(self.queue.position(keep))
        self._show_current()
        self.queueLoaded.emit()

    def _update_cell_label(self) -> None:
        """Keep the cell list's "pending/total" for the open cell current."""
        i = self.cell_combo.findData(self.cell_id)
        if i >= 0 and self.data is not None:
            pending = self._pending
            mosaic = "" if self.data.mosaic is not None else ", no mosaic"
            self.cell_combo.setItemText(i, f"{self.cell_id}  ({pending}/{len(self._state)} pending{mosaic})")

    def _summary(self) -> str:
        counts = self.queue.counts()
        return ", ".join(f"{counts.get(s, 0)} {s}" for s in REVIEW_STATUSES)

    def _on_table_row(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if current.isValid() and current.row() != self.queue.index:
            self.queue.select(current.row())
            self._show_current()

    def select_row(self, index: int) -> None:
        """Make queue row ``index`` current (as clicking it would)."""
        self.queue.select(index)
        self._show_current()

    def select_detection(self, det_id: str) -> bool:
        """Make ``det_id`` current; False if the filter hides it."""
        i = self.queue.position(det_id)
        if i is None:
            self._say(f"{det_id} is not in the queue (hidden by the filter?)")
            return False
        self.select_row(i)
        return True

    def next(self) -> None:
        self.queue.next()
        self._show_current()

    def previous(self) -> None:
        self.queue.previous()
        self._show_current()

    # -- showing the current flag -----------------------------------------------------------------
    def _show_current(self) -> None:
        """Show the queue's current flag: table row, frame on the map, camera, details, chip."""
        row = self.queue.current
        with quiet_layer_list(self.viewer):  # what follows changes nothing the layer list shows
            self._show_row(row)

    def _show_row(self, row: dict[str, Any] | None) -> None:
        if row is None:
            self.details.setText("<i>the queue is empty</i>")
            self.chip.clear()
            if self._flag_frame is not None:
                self._flag_frame.hide()
            return
        index = self.model.index(self.queue.index, 0)
        self._scroll_table_to(self.queue.index)
        if self.table.currentIndex().row() != self.queue.index:
            # the view repaints the two rows that changed; _on_table_row sees the queue already there
            self.table.setCurrentIndex(index)
        self._frame_current(row)
        self._zoom_to(row)
        self.details.setText(self._details_html(row))
        self._show_chip(row)
        self.note_edit.setText(row.get("note") or "")
        self.category_combo.setCurrentIndex(max(self.category_combo.findData(row.get("category")), 0))
        self._prefetch_upcoming()

    def _scroll_table_to(self, row: int) -> None:
        """Keep queue row ``row`` in sight, scrolling a few rows ahead of it when it is not.

        Scrolling repaints every visible row of the table; scrolling just far enough (Qt's
        ``EnsureVisible``, also what ``setCurrentIndex`` does) did that on every step once the walk
        reached the table's last visible row. With rows of margin the table scrolls once every
        screenful of steps, and the next flags stay in view.
        """
        table, margin = self.table, _TABLE_MARGIN_ROWS
        shown = table.viewport().rect()
        where = table.visualRect(self.model.index(row, 0))
        if where.top() >= shown.top() and where.bottom() <= shown.bottom():
            return
        if where.top() < shown.top():  # walking back: the row near the bottom
            table.scrollTo(self.model.index(min(row + margin, len(self.queue) - 1), 0),
                           QAbstractItemView.ScrollHint.PositionAtBottom)
        else:
            table.scrollTo(self.model.index(max(row - margin, 0), 0), QAbstractItemView.ScrollHint.PositionAtTop)
        table.scrollTo(self.model.index(row, 0))  # a table only a few rows tall: at least the row itself

    def _prefetch_upcoming(self) -> None:
        """Read ahead, in a worker thread, the mosaic blocks and chip of the flag a decision moves to.

        Like a photo culling tool preloading the next picture: the next step then only copies
        decoded blocks. The window is the current view size around that flag, at the level napari
        shows now.
        """
        i = self.queue.upcoming()
        mosaic = self.data.mosaic if self.data is not None else None
        layer = self._layers.get(f"mosaic {self.cell_id}")
        if i is None or mosaic is None or layer is None:
            return
        row = self.queue.rows[i]
        if row.get("x") is None:
            return
        level = mosaic.levels[min(int(layer.data_level), len(mosaic.levels) - 1)]
        factor = mosaic.levels[0].shape[0] / level.shape[0]
        placement = self.frame.placement(mosaic.transform)
        camera = self.viewer.scene.camera
        h_px, w_px = self.viewer.canvas.size
        centre = self.frame.to_world(row["x"], row["y"])[0]
        half = np.array([h_px, w_px], float) / max(camera.zoom, 1e-9) / 2 * 1.1
        lo = (centre - half - placement.translate_rc) / placement.scale_rc / factor
        hi = (centre + half - placement.translate_rc) / placement.scale_rc / factor
        window = (int(lo[0]), int(np.ceil(hi[0])) + 1, int(lo[1]), int(np.ceil(hi[1])) + 1)
        if self._prefetch_future is not None:
            self._prefetch_future.cancel()  # only the latest matters
        self._prefetch_future = self._prefetcher.submit(self._prefetch, level, window, row, mosaic.path)

    def _prefetch(self, level, window: tuple[int, int, int, int], row: dict[str, Any], path: Path) -> None:
        try:
            level.prefetch(*window)
            if row["det_id"] not in self._chips:
                if len(self._chips) > 8:
                    self._chips.clear()
                self._chips[row["det_id"]] = read_chip(path, _chip_bounds(row), _CHIP_PX)
        except Exception:  # read-ahead is an optimisation: the main thread reads (and reports) for real
            log.debug("read-ahead of %s failed", row["det_id"], exc_info=True)

    def _frame_current(self, row: dict[str, Any]) -> None:
        """Put the yellow frame around the flag's box, with a margin (it frames the box, not its edge)."""
        if self._flag_frame is None:
            return
        minx, miny, maxx, maxy = L.box_bounds([row])[0]
        pad = max(0.25 * max(maxx - minx, maxy - miny), 0.75)
        self._flag_frame.show(self.frame.to_world(minx - pad, maxy + pad)[0],
                              self.frame.to_world(maxx + pad, miny - pad)[0])

    def _zoom_to(self, row: dict[str, Any]) -> None:
        """Centre on the flag; zoom only if it would be tiny or huge at the current zoom."""
        centre = self.frame.to_world(row["x"], row["y"])[0]
        size = max(row.get("width_m") or 2.0, row.get("height_m") or 2.0)
        camera = self.viewer.scene.camera
        camera.center = (float(centre[0]), float(centre[1]))
        canvas_px = min(self.viewer.canvas.size) or 600
        wanted = canvas_px / max(8.0 * size, 40.0)  # screen px per metre
        if not 0.4 * wanted <= camera.zoom <= 2.5 * wanted:
            camera.zoom = wanted
        settle_multiscale(self._canvas)  # the next frame shows the new place's tiles: one frame per step

    def _details_html(self, row: dict[str, Any]) -> str:
        lon, lat = row.get("lon"), row.get("lat")
        where = (f"{abs(lat):.6f}° {'N' if lat >= 0 else 'S'}, {abs(lon):.6f}° {'E' if lon >= 0 else 'W'}"
                 if lon is not None and lat is not None else "unknown")
        status = row.get("review_status") or "pending"
        by = f" by {row['reviewed_by']} at {row['reviewed_at']}" if row.get("reviewed_by") else ""
        prio = "—" if row.get("priority") is None else f"{row['priority']:.2f}"
        reason = f" <small>({row['priority_reason']})</small>" if row.get("priority_reason") else ""
        pushed = f"<br>in suspect <b>{row['suspect_id']}</b>" if row.get("suspect_id") else ""
        return (f"<b>{row['class']}</b> · score {row['score']:.2f} · {row['det_id']}<br>"
                f"priority <b>{prio}</b>{reason}<br>"
                f"site {row.get('site_id') or '—'} · candidate {row.get('candidate_id') or '—'}<br>"
                f"WGS 84: {where}<br>"
                f"status <b>{status}</b>{by}{pushed}")

    def _show_chip(self, row: dict[str, Any]) -> None:
        mosaic = self.data.mosaic if self.data is not None else None
        if mosaic is None or row.get("x") is None:
            self.chip.setText("no mosaic")
            return
        chip = self._chips.pop(row["det_id"], None)
        if chip is None:
            chip = read_chip(mosaic.path, _chip_bounds(row), _CHIP_PX)
        if chip.size == 0:
            self.chip.setText("outside the mosaic")
            return
        chip = np.ascontiguousarray(chip[..., :4] if chip.shape[2] >= 3 else np.repeat(chip, 3, axis=2))
        if chip.dtype != np.uint8:
            hi = float(np.percentile(chip, 99)) or 1.0
            chip = np.clip(chip / hi * 255, 0, 255).astype(np.uint8)
        h, w, bands = chip.shape
        fmt = QImage.Format.Format_RGBA8888 if bands == 4 else QImage.Format.Format_RGB888
        self._chip_array = chip  # QImage does not own the buffer
        image = QImage(chip.data, w, h, w * bands, fmt)
        self.chip.setPixmap(QPixmap.fromImage(image))

    # -- decisions --------------------------------------------------------------------------------
    def _apply_row(self, row: dict[str, Any]) -> None:
        """Show a detection's new state: queue row, map colour."""
        old = self._state.get(row["det_id"])
        self._state[row["det_id"]] = tuple(row.get(c) for c in REVIEW_COLUMNS)
        self._pending += _is_pending(self._state[row["det_id"]]) - (old is not None and _is_pending(old))
        i = self.queue.replace(row)
        if i is not None:
            self.model.row_changed(i)
        layer = self._layers.get(L.DETECTIONS_LAYER)
        p = self._point_index.get(row["det_id"])
        if layer is not None and p is not None:
            status = row.get("review_status") or "pending"
            recolour_point(self._canvas, layer, p, L.STATUS_FILL.get(status, L.STATUS_FILL["pending"]))
            layer.features.loc[p, "status"] = status

    def decide(self, status: str) -> bool:
        """Record ``status`` for the current flag (one transaction) and advance; False if refused."""
        row = self.queue.current
        if row is None or self.ws is None:
            return False
        out = self._call(ledger.decide, self.ws, row["det_id"], status, self.reviewer)
        if out is _FAILED:
            return False
        self._apply_row(out)
        self._update_cell_label()
        self.queue.advance()
        self._show_current()
        self._say(f"{out['det_id']} {status} by {out['reviewed_by']} · {self._summary()}")
        return True

    def confirm(self) -> bool:
        return self.decide("confirmed")

    def reject(self) -> bool:
        return self.decide("rejected")

    def unsure(self) -> bool:
        return self.decide("unsure")

    def undo(self) -> bool:
        """Revert this reviewer's last decision still in effect and go back to that flag."""
        if self.ws is None:
            return False
        row = self._call(ledger.undo_last, self.ws, self.reviewer)
        if row is _FAILED:
            return False
        if row is None:
            self._say(f"{self.reviewer} has no decision left to undo")
            return False
        self._apply_row(row)
        if self.queue.position(row["det_id"]) is not None:
            self.select_detection(row["det_id"])
        self._say(f"undone: {row['det_id']} is {row['review_status']} again")
        return True

    def edit_note(self) -> None:
        """Put the cursor in the note field (Enter saves, Esc leaves it)."""
        self.note_edit.setFocus()
        self.note_edit.selectAll()

    def save_note(self, text: str) -> bool:
        row = self.queue.current
        if row is None or self.ws is None:
            return False
        out = self._call(ledger.set_note, self.ws, row["det_id"], text.strip() or None, self.reviewer)
        if out is _FAILED:
            return False
        self._apply_row(out)
        self.table.setFocus()
        self._say(f"note saved on {out['det_id']}")
        return True

    def choose_category(self, code: str | None) -> bool:
        row = self.queue.current
        if row is None or self.ws is None:
            return False
        out = self._call(ledger.set_category, self.ws, row["det_id"], code, self.reviewer)
        if out is _FAILED:
            return False
        self._apply_row(out)
        self.category_combo.setCurrentIndex(max(self.category_combo.findData(out.get("category")), 0))
        self._say(f"{out['det_id']}: category {code or 'cleared'}")
        return True

    def choose_category_number(self, number: int) -> bool:
        """Category by its work-plan number, 1 to 6 (the digit keys)."""
        cats = ledger.SUSPECT_CATEGORIES
        return self.choose_category(cats[number - 1].code) if 1 <= number <= len(cats) else False

    def push_to_suspects(self) -> None:
        """Send this cell's confirmed flags to the suspect list (in a worker)."""
        if self.ws is None or self.cell_id is None:
            return
        self._say("pushing confirmed flags to the suspect list…")
        self._run(ledger.push_confirmed, _Fresh(self.ws.root), self.reviewer, cell_id=self.cell_id,
                  on_done=self._pushed)

    def _pushed(self, result) -> None:
        self.refresh_statuses()
        parts = []
        if result.created:
            parts.append(f"new suspects {', '.join(result.created)}")
        if result.extended:
            parts.append(f"added to {', '.join(result.extended)}")
        if result.skipped:
            parts.append(f"{len(result.skipped)} skipped ({next(iter(result.skipped.values()))})")
        self._say("pushed: " + ("; ".join(parts) if parts else "nothing confirmed to push"))
        self.pushed.emit(result)

    def refresh_statuses(self) -> int:
        """Pick up decisions made elsewhere (another analyst, the CLI); returns how many rows changed."""
        if self.ws is None or self.cell_id is None or self.busy:
            return 0
        mark, touched = changed_since(self.ws, self._audit_mark)
        if mark == self._audit_mark:
            return 0  # nothing was decided anywhere since the last look: one indexed query, no scan
        self._audit_mark = mark
        changed = 0
        for det_id, new in review_state(self.ws, self.cell_id, touched).items():
            if self._state.get(det_id) != new:
                self._apply_row(ledger.get_detection(self.ws, det_id))
                changed += 1
        if changed and self.queue.current is not None:
            self.details.setText(self._details_html(self.queue.current))
        return changed

    # -- mouse ------------------------------------------------------------------------------------
    def _on_double_click(self, _viewer, event) -> None:
        """Double-clicking inside a box (or within 1 m of it) makes the smallest such box's flag current."""
        if self.data is None or len(self._boxes_xy) == 0:
            return
        x, y = self.frame.to_xy(*event.position[-2:])
        b = self._boxes_xy
        outside = np.maximum.reduce([b[:, 0] - x, x - b[:, 2], b[:, 1] - y, y - b[:, 3], np.zeros(len(b))])
        area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
        i = int(np.lexsort((area, outside))[0])  # inside first, then the smallest
        if outside[i] <= 1.0:
            self.select_detection(self.data.detections[i]["det_id"])

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt API)
        self._poll.stop()
        if self._flag_frame is not None:
            self._flag_frame.remove()
            self._flag_frame = None
        self._prefetcher.shutdown(wait=False, cancel_futures=True)
        super().closeEvent(event)
