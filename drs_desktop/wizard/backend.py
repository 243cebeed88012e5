"""What the wizard asks the database servers (test a connection, list databases, pre-check, parameters).

Kept behind one small class so the pages never import a driver, and so the screenshot script can show
the pages filled with canned results without servers. Every method runs on a TaskManager thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from engine.connect import ServerInfo, connect, server_info
from engine.spec import Endpoint, TaskSpec

ProgressFn = Callable[[int, int, str], None]
# Seconds a Test Connection (and the database list) waits for a server: long enough for a slow VPN,
# short enough that a wrong address or a silent firewall answers the DBA within a few seconds.
TEST_TIMEOUT = 5


class WizardBackend:
    """The interface the pages use; EngineBackend is the real one."""

    def test_connection(self, endpoint: Endpoint) -> ServerInfo:
        raise NotImplementedError

    def database_sizes(self, endpoint: Endpoint) -> list[tuple[str, int]]:
        """User databases of a server with their size in bytes (data + indexes), by name."""
        raise NotImplementedError

    def run_prechecks(self, spec: TaskSpec, on_progress: ProgressFn, stop: threading.Event) -> list[Any]:
        raise NotImplementedError

    def compare_params(self, spec: TaskSpec) -> list[Any]:
        raise NotImplementedError

    def apply_params(self, spec: TaskSpec, names: list[str]) -> list[Any]:
        raise NotImplementedError


class EngineBackend(WizardBackend):
    """The real servers, through engine.connect, engine.precheck and engine.params."""

    def __init__(self, other_tasks: Callable[[], list[TaskSpec]] | None = None):
        # the stored tasks' specs: the pre-checks name the tasks that share a server (read_only is
        # server-wide); called on the pre-check thread
        self.other_tasks = other_tasks or (lambda: [])

    def test_connection(self, endpoint: Endpoint) -> ServerInfo:
        # the greeting is read under read_timeout: a port that accepts and never answers also ends in 5 s
        conn = connect(endpoint, connect_timeout=TEST_TIMEOUT, read_timeout=TEST_TIMEOUT)
        try:
            return server_info(conn)
        finally:
            conn.close()

    def database_sizes(self, endpoint: Endpoint) -> list[tuple[str, int]]:
        from engine.tasks import database_sizes  # the query lives in the engine

        return database_sizes(endpoint, connect_timeout=TEST_TIMEOUT)

    def run_prechecks(self, spec: TaskSpec, on_progress: ProgressFn, stop: threading.Event) -> list[Any]:
        from engine.precheck import run_prechecks  # lands beside the wizard; imported when used

        return run_prechecks(spec, on_progress=on_progress, stop=stop, other_tasks=self.other_tasks())

    def compare_params(self, spec: TaskSpec) -> list[Any]:
        from engine.params import compare_params

        return compare_params(spec)

    def apply_params(self, spec: TaskSpec, names: list[str]) -> list[Any]:
        from engine.params import apply_params

        return apply_params(spec, names)
