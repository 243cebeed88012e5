"""What the task table says when it shows no row: how to begin, or that the search hides everything.

An overlay on the table's viewport (not a second page): the header stays, and the first task that
arrives simply covers nothing any more.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QAbstractItemView, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

NO_TASKS_TITLE = "No disaster recovery tasks yet"
NO_TASKS_TEXT = (
    "A task keeps a DR database current with a service database: copy everything once, then follow its "
    "binlog. Create one for your servers, or try it first on two private servers started on this machine."
)
NO_MATCH_TEXT = "No task's name or tag contains these words. Clear the search to see every task."


class EmptyStateOverlay(QWidget):
    """Covers the view's viewport while it has no rows; its buttons ask the window to act."""

    createRequested = Signal()
    sandboxRequested = Signal()
    clearSearchRequested = Signal()

    def __init__(self, view: QAbstractItemView):
        super().__init__(view)
        self.setObjectName("emptyState")
        self.view = view
        self.title = QLabel()
        self.title.setObjectName("emptyStateTitle")
        font = self.title.font()
        font.setPointSizeF(font.pointSizeF() * 1.35)
        font.setBold(True)
        self.title.setFont(font)
        self.text = QLabel()
        self.text.setObjectName("emptyStateText")
        self.text.setWordWrap(True)
        self.text.setMaximumWidth(560)
        for label in (self.title, self.text):
            # Drawn over the table's base colour, so the table's text colour (both follow the scheme).
            label.setForegroundRole(QPalette.ColorRole.Text)
            label.setAlignment(Qt.AlignmentFlag.AlignHCenter)
            label.setTextFormat(Qt.TextFormat.PlainText)
        self.create_button = QPushButton("Create Task…")
        self.create_button.setObjectName("emptyStateCreate")
        self.create_button.setDefault(True)
        self.sandbox_button = QPushButton("Try with a Sandbox")
        self.sandbox_button.setObjectName("emptyStateSandbox")
        self.sandbox_button.setToolTip(
            "Start two private MariaDB servers on this machine and create a task between them"
        )
        self.clear_button = QPushButton("Clear Search")
        self.clear_button.setObjectName("emptyStateClearSearch")
        self.create_button.clicked.connect(self.createRequested)
        self.sandbox_button.clicked.connect(self.sandboxRequested)
        self.clear_button.clicked.connect(self.clearSearchRequested)

        buttons = QHBoxLayout()
        buttons.addStretch(1)
        for button in (self.create_button, self.sandbox_button, self.clear_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addStretch(1)
        layout.addWidget(self.title, 0, Qt.AlignmentFlag.AlignHCenter)
        text_row = QHBoxLayout()  # stretch on both sides: the text wraps at its maximum width, centred
        text_row.addStretch(1)
        text_row.addWidget(self.text, 10)
        text_row.addStretch(1)
        layout.addLayout(text_row)
        layout.addSpacing(8)
        layout.addLayout(buttons)
        layout.addStretch(2)
        self.hide()
        view.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.view and event.type() in (
            QEvent.Type.Resize,
            QEvent.Type.Show,
            QEvent.Type.LayoutRequest,
        ):
            self._cover_viewport()
        return False

    def _cover_viewport(self) -> None:
        self.setGeometry(self.view.viewport().geometry())

    def update_for(self, rows: int, search: str, loaded: bool) -> None:
        """Show the right message for a table of `rows` rows under `search` (nothing before the first load)."""
        if not loaded or rows:
            self.hide()
            return
        searching = bool(search.strip())
        if searching:
            self.title.setText(f"No task matches '{search.strip()}'")
            self.text.setText(NO_MATCH_TEXT)
        else:
            self.title.setText(NO_TASKS_TITLE)
            self.text.setText(NO_TASKS_TEXT)
        self.create_button.setVisible(not searching)
        self.sandbox_button.setVisible(not searching)
        self.clear_button.setVisible(searching)
        self._cover_viewport()
        self.show()
        self.raise_()
