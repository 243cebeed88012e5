"""The Create Disaster Recovery Task wizard: six pages as in the reference service, Submit stores the task.

Every rule comes from engine.spec; the pages only ask the validators and show their messages.
"""

from drs_desktop.wizard.backend import EngineBackend, WizardBackend
from drs_desktop.wizard.wizard import CreateTaskWizard

__all__ = ["CreateTaskWizard", "EngineBackend", "WizardBackend"]
