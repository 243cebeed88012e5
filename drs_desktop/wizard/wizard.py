"""CreateTaskWizard: the six pages, the spec dict they build, and Submit (validate, store, report).

Submit builds the spec exactly as the CLI's spec file, validates it with engine.spec.parse_spec and
creates the task through TaskService on a TaskManager thread. A failure after validation is kept as
a task in status "creation failed" with its reason, as the reference service does.
"""

from __future__ import annotations

import json
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QLabel, QSizePolicy, QVBoxLayout, QWidget, QWizard

from drs_desktop.settings import gui_settings
from drs_desktop.taskman import TaskManager
from drs_desktop.wizard.backend import EngineBackend, WizardBackend
from drs_desktop.wizard.common import error_text
from drs_desktop.wizard.last_used import recall_connection, remember_connection
from drs_desktop.wizard.pages_check import CheckPage
from drs_desktop.wizard.pages_configure import ConfigurePage
from drs_desktop.wizard.pages_connections import ConnectionsPage
from drs_desktop.wizard.pages_params import ParamsPage
from drs_desktop.wizard.pages_start import StartPage
from drs_desktop.wizard.pages_task import TaskPage
from engine.errors import SpecInvalid
from engine.spec import parse_spec
from engine.tasks import TaskService

WINDOW_TITLE = "Create Disaster Recovery Task"
DONE_MARK, CURRENT_MARK = "\u2713", "\u25b8"  # ✓ a step behind, ▸ the step shown


class StepList(QWidget):
    """The wizard's steps down its side, the current one in bold with a mark, and a heading such as
    "Step 2 of 6 · Service and DR databases". Fonts and palette roles only, no colours of its own,
    so a dark palette reads as well as a light one."""

    def __init__(self, titles: list[str], parent: QWidget | None = None):
        super().__init__(parent)
        self.titles = list(titles)
        self.current = -1
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 12, 4)
        self.heading = QLabel()
        self.heading.setObjectName("stepHeading")
        self.heading.setWordWrap(True)
        heading_font = self.heading.font()
        heading_font.setBold(True)
        self.heading.setFont(heading_font)
        layout.addWidget(self.heading)
        layout.addSpacing(8)
        self.labels: list[QLabel] = []
        for title in self.titles:
            label = QLabel(title)
            label.setWordWrap(True)
            self.labels.append(label)
            layout.addWidget(label)
        layout.addStretch(1)
        self.setFixedWidth(180)
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Preferred)
        self.set_current(0)

    def heading_text(self, index: int) -> str:
        return f"Step {index + 1} of {len(self.titles)} \u00b7 {self.titles[index]}"

    def set_current(self, index: int) -> None:
        if not 0 <= index < len(self.titles):
            return
        self.current = index
        self.heading.setText(self.heading_text(index))
        self.setAccessibleDescription(self.heading_text(index))
        for i, (label, title) in enumerate(zip(self.labels, self.titles, strict=True)):
            mark = CURRENT_MARK if i == index else DONE_MARK if i < index else "\u2003"
            label.setText(f"{mark} {i + 1}. {title}")
            font = label.font()
            font.setBold(i == index)
            label.setFont(font)
            # steps not reached yet in the palette's placeholder colour (dimmed in light and dark alike)
            label.setForegroundRole(
                QPalette.ColorRole.PlaceholderText if i > index else QPalette.ColorRole.WindowText
            )


class CreateTaskWizard(QWizard):
    """Collects a task's settings page by page; emits taskCreated(name) once Submit stored it."""

    taskCreated = Signal(str)
    creationFailed = Signal(str, str)  # name, reason: the task is stored with status creation_failed

    PAGE_TASK, PAGE_CONNECTIONS, PAGE_CONFIGURE, PAGE_CHECK, PAGE_PARAMS, PAGE_START = range(6)

    def __init__(
        self,
        service: TaskService,
        taskman: TaskManager,
        parent: QWidget | None = None,
        prefill: dict[str, Any] | None = None,
        *,
        backend: WizardBackend | None = None,
    ):
        super().__init__(parent)
        self.service = service
        self.taskman = taskman
        self.backend = backend or EngineBackend(lambda: [t.spec for t in service.store.list_tasks()])
        self.setWindowTitle(WINDOW_TITLE)
        self.setWizardStyle(QWizard.WizardStyle.ModernStyle)
        self.setMinimumSize(1040, 660)  # the step list takes ~190 px beside the pages
        self.setOption(QWizard.WizardOption.NoBackButtonOnStartPage, True)
        self.setOption(QWizard.WizardOption.NoCancelButtonOnLastPage, False)
        self.setButtonText(QWizard.WizardButton.FinishButton, "Submit")

        self.task_page = TaskPage()
        self.task_page.name_taken = service.store.name_taken
        self.connections_page = ConnectionsPage()
        self.configure_page = ConfigurePage()
        self.check_page = CheckPage()
        self.params_page = ParamsPage()
        self.start_page = StartPage()
        for page_id, page in enumerate(
            (
                self.task_page,
                self.connections_page,
                self.configure_page,
                self.check_page,
                self.params_page,
                self.start_page,
            )
        ):
            self.setPage(page_id, page)
        self.steps = StepList([self.page(i).title() for i in self.pageIds()])
        self.setSideWidget(self.steps)
        self.currentIdChanged.connect(self.steps.set_current)
        if prefill:
            self.apply_prefill(prefill)
        else:
            self.apply_remembered()

    # -- the spec -------------------------------------------------------------------------------
    def build_spec(self, *, masked: bool = False, start_now: bool = False) -> dict[str, Any]:
        """The spec dict exactly as in a CLI spec file; `masked` replaces passwords with ********."""
        spec = self.task_page.spec_part()
        spec["source"] = self.connections_page.source_box.spec_part(masked)
        spec["target"] = self.connections_page.target_box.spec_part(masked)
        # TLS is chosen on page 1 (public network only) and applies to both connections.
        for side in ("source", "target"):
            spec[side]["tls"] = self.task_page.tls
            spec[side]["ca_file"] = self.task_page.ca_file
        spec.update(self.configure_page.spec_part())
        spec["start"] = "now" if start_now else self.start_page.start_value()
        return {k: spec[k] for k in SPEC_ORDER}

    def spec_key(self) -> str:
        """Identity of the settings the pre-checks and parameter comparison depend on."""
        return json.dumps(self.build_spec(start_now=True), sort_keys=True)

    def apply_prefill(self, prefill: dict[str, Any]) -> None:
        self.task_page.fill(prefill)
        self.connections_page.source_box.fill(prefill.get("source") or {})
        self.connections_page.target_box.fill(prefill.get("target") or {})
        self.configure_page.fill(prefill)
        self.start_page.fill(prefill)

    # -- the last connection fields that worked -------------------------------------------------
    def apply_remembered(self) -> None:
        """A new wizard without a prefill starts from the last fields that passed Test Connection."""
        settings = gui_settings(self.service.home)
        source = recall_connection(settings, "source")
        target = recall_connection(settings, "target")
        if source.get("tls", "off") != "off":  # TLS is one choice on page 1, for both connections
            self.task_page.fill_tls(source["tls"], source.get("ca_file"))
        for box, part in (
            (self.connections_page.source_box, source),
            (self.connections_page.target_box, target),
        ):
            if part:
                box.fill(part)

    def remember_endpoint(self, box: Any) -> None:
        """Called when a side's Test Connection passed: those fields (never the password) are kept."""
        remember_connection(gui_settings(self.service.home), box.side, box.remembered_part())

    # -- Submit ---------------------------------------------------------------------------------
    def accept(self) -> None:
        page = self.start_page
        if page.submitting or page.created:
            return
        raw = self.build_spec()
        try:
            spec = parse_spec(raw)
        except SpecInvalid as exc:
            page.submit_status.show_failure(str(exc))
            page.revalidate()
            return
        self.check_page.cancel()
        page.set_submitting(True, "Creating the task…")
        self.taskman.run(
            lambda: self.service.create(spec),
            lambda _record: self._created(spec.name),
            self._create_failed(spec),
        )

    def _created(self, name: str) -> None:
        self.start_page.created = True
        self.start_page.set_submitting(False, "")
        self.start_page.submit_status.show_ok(f"Task {name} created.")
        self.taskCreated.emit(name)
        super().accept()

    def _create_failed(self, spec: Any) -> Any:
        def failed(exc: BaseException) -> None:
            page = self.start_page
            if isinstance(exc, SpecInvalid):  # e.g. the name was taken meanwhile: fixable, nothing stored
                page.set_submitting(False)
                page.submit_status.show_failure(str(exc))
                self.task_page.revalidate()
                return
            reason = error_text(exc)
            try:
                self.service.record_creation_failure(spec, reason)
                kept = "The task is kept with status Creation failed."
            except Exception as second:  # the store itself is unusable: say both
                kept = f"It could not be recorded either: {error_text(second)}"
            page.created = True  # the name is used now; Submit again would only repeat the failure
            page.set_submitting(False)
            page.submit_status.show_failure(f"Creating the task failed: {reason}. {kept}")
            self.setButtonText(QWizard.WizardButton.CancelButton, "Close")
            self.creationFailed.emit(spec.name, reason)

        return failed

    def reject(self) -> None:
        # While Submit runs the task is being written; closing now would lose the answer.
        if self.start_page.submitting:
            return
        super().reject()

    def done(self, result: int) -> None:
        self.check_page.cancel()
        super().done(result)


SPEC_ORDER = (
    "name",
    "description",
    "relationship",
    "network",
    "source",
    "target",
    "databases",
    "flow_control",
    "migrate_definer",
    "start",
    "tags",
)
