"""Task statuses and which action is allowed in which status, as in the reference service.

The GUI asks `allowed_actions()` to enable menu items (and says why one is disabled); the CLI asks
`check_action()` before doing anything. One table, one truth.
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    CREATING = "creating"
    CONFIGURATION = "configuration"
    PENDING_START = "pending_start"
    STARTING = "starting"
    INITIALIZING = "initializing"
    REPLICATING = "replicating"
    PAUSED = "paused"
    FAILED = "failed"
    PROMOTING = "promoting"
    PROMOTED = "promoted"
    CREATION_FAILED = "creation_failed"
    ENDED = "ended"

    @property
    def label(self) -> str:
        return STATUS_LABELS[self]


STATUS_LABELS = {
    Status.CREATING: "Creating",
    Status.CONFIGURATION: "Configuration",
    Status.PENDING_START: "Pending start",
    Status.STARTING: "Starting",
    Status.INITIALIZING: "Initializing",
    Status.REPLICATING: "Disaster recovery in progress",
    Status.PAUSED: "Paused",
    Status.FAILED: "Disaster recovery failed",
    Status.PROMOTING: "Promoting",
    Status.PROMOTED: "Promoted",
    Status.CREATION_FAILED: "Creation failed",
    Status.ENDED: "Ended",
}

# Statuses in which a runner (GUI worker or `drs run`) should be working on the task.
RUNNING = frozenset({Status.STARTING, Status.INITIALIZING, Status.REPLICATING})

PHASES = ("none", "initial", "incremental", "done")


class Action(StrEnum):
    START = "start"
    PAUSE = "pause"
    RESUME = "resume"
    RETRY = "retry"
    MODIFY_CONNECTION = "modify_connection"
    MODIFY_FLOW_CONTROL = "modify_flow_control"
    PROMOTE = "promote"
    DELETE = "delete"
    COMPARE = "compare"
    SKIP_EVENT = "skip_event"
    VIEW = "view"


ALLOWED: dict[Action, frozenset[Status]] = {
    Action.START: frozenset({Status.CONFIGURATION, Status.PENDING_START}),
    Action.PAUSE: frozenset({Status.STARTING, Status.INITIALIZING, Status.REPLICATING}),
    Action.RESUME: frozenset({Status.PAUSED}),
    Action.RETRY: frozenset({Status.FAILED}),
    Action.MODIFY_CONNECTION: frozenset(
        {Status.STARTING, Status.INITIALIZING, Status.REPLICATING, Status.FAILED}
    ),
    # Flow control throttles the initial copy only, so it can change until that copy is done: the
    # reference allows Configuration; a copy under way re-reads it within seconds (engine.throttle).
    Action.MODIFY_FLOW_CONTROL: frozenset(
        {Status.CONFIGURATION, Status.PENDING_START, Status.STARTING, Status.INITIALIZING}
    ),
    # The reference allows promote in "DR in progress" only; a paused or failed task can still be
    # failed over by force when the service side is gone (the DBA's day of disaster). In Promoting it
    # recovers a promote whose process died (finishes or rolls it back), or says one is under way.
    Action.PROMOTE: frozenset({Status.REPLICATING, Status.PAUSED, Status.FAILED, Status.PROMOTING}),
    Action.DELETE: frozenset(set(Status) - {Status.PROMOTING, Status.CREATING}),
    Action.COMPARE: frozenset({Status.REPLICATING, Status.PAUSED, Status.FAILED, Status.PROMOTED}),
    # the DBA's escape hatch after a failure on an event handled by hand (moves the checkpoint past it)
    Action.SKIP_EVENT: frozenset({Status.FAILED}),
    Action.VIEW: frozenset(Status),
}

ACTION_LABELS = {
    Action.START: "Start",
    Action.PAUSE: "Pause",
    Action.RESUME: "Resume",
    Action.RETRY: "Retry",
    Action.MODIFY_CONNECTION: "Modify Connection Details",
    Action.MODIFY_FLOW_CONTROL: "Modify Flow Control",
    Action.PROMOTE: "Promote",
    Action.DELETE: "Delete",
    Action.COMPARE: "Compare",
    Action.SKIP_EVENT: "Skip Failed Event",
    Action.VIEW: "View Details",
}


def why_not(action: Action, status: Status) -> str | None:
    """None when the action is allowed in this status, else a sentence saying when it is."""
    allowed = ALLOWED[action]
    if status in allowed:
        return None
    where = ", ".join(s.label for s in Status if s in allowed)
    return f"{ACTION_LABELS[action]} is not available while the task is {status.label}; allowed in: {where}"


def allowed_actions(status: Status) -> dict[Action, str | None]:
    """Every action with None (allowed) or the reason it is not."""
    return {a: why_not(a, status) for a in Action}
