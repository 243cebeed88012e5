"""The one place that owns background threads for short jobs (test connection, pre-checks, queries).

`TaskManager.run(fn, on_done, on_error)` runs `fn` on a pool thread and calls the callbacks on the
GUI thread. Long-running replication jobs have their own QThread workers (drs_desktop.workers).
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from typing import Any

import shiboken6
from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot


class _Relay(QObject):
    done = Signal(object)
    failed = Signal(object)


class _Job(QRunnable):
    def __init__(self, fn: Callable[[], Any], relay: _Relay):
        super().__init__()
        self.fn = fn
        self.relay = relay
        self.setAutoDelete(True)

    @Slot()
    def run(self) -> None:
        try:
            result = self.fn()
        except BaseException as exc:  # delivered to the GUI thread, shown there
            exc.__traceback_text__ = traceback.format_exc()  # type: ignore[attr-defined]
            self.relay.failed.emit(exc)
        else:
            self.relay.done.emit(result)


class TaskManager(QObject):
    """Runs callables off the GUI thread; results come back through queued signals."""

    def __init__(self, parent: QObject | None = None, max_threads: int = 8):
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(max_threads)
        self._relays: set[_Relay] = set()

    def run(
        self,
        fn: Callable[[], Any],
        on_done: Callable[[Any], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        relay = _Relay()  # lives on the GUI thread, so its signals are delivered there
        self._relays.add(relay)

        def finish_ok(result: Any) -> None:
            self._relays.discard(relay)
            if on_done:
                on_done(result)

        def finish_err(exc: BaseException) -> None:
            self._relays.discard(relay)
            if on_error:
                on_error(exc)

        relay.done.connect(finish_ok)
        relay.failed.connect(finish_err)
        self.pool.start(_Job(fn, relay))

    def run_for(
        self,
        owner: QObject,
        fn: Callable[[], Any],
        on_done: Callable[[Any], None],
        on_error: Callable[[BaseException], None],
    ) -> None:
        """As run(), for a widget that may be gone (its dialog closed) when the result comes back:
        the callbacks are then skipped instead of touching a deleted C++ object."""

        def done(result: Any) -> None:
            if shiboken6.isValid(owner):
                on_done(result)

        def failed(exc: BaseException) -> None:
            if shiboken6.isValid(owner):
                on_error(exc)

        self.run(fn, done, failed)

    def wait_idle(self, msecs: int = 30000) -> bool:
        return self.pool.waitForDone(msecs)
