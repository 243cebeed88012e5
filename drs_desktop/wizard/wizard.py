"""CreateTaskWizard: the six pages, the spec dict they build, and Submit (validate, store, report).

Submit builds the spec exactly as the CLI's spec file, validates it with engine.spec.parse_spec and
creates the task through TaskService on a TaskManager thread. A failure after validation is kept as
a task in status "creation failed" with its reason, as the reference service does.
"""

from __future__ import annotations

import json
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QWidget, QWizard

from drs_desktop.taskman import TaskManager
from drs_desktop.wizard.backend import EngineBackend, WizardBackend
from drs_desktop.wizard.common import error_text
from drs_desktop.wizard.pages_check import CheckPage
from drs_desktop.wizard.pages_configure import ConfigurePage
from drs_desktop.wizard.pages_connections import ConnectionsPage
from drs_desktop.wizard.pages_params import ParamsPage
from drs_desktop.wizard.pages_start import StartPage
from drs_desktop.wizard.pages_task import TaskPage
from engine.errors import SpecInvalid
from engine.spec import parse_spec
from engine.status import Status
from engine.tasks import TaskService

WINDOW_TITLE = "Create Disaster Recovery Task"


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
        self.setMinimumSize(860, 660)
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
        if prefill:
            self.apply_prefill(prefill)

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
            store = self.service.store
            try:
                store.create_task(spec, status=Status.CREATION_FAILED)
                store.set_status(spec.name, Status.CREATION_FAILED, last_error=reason)
                store.add_log(spec.name, "error", "task", f"creation failed: {reason}")
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
