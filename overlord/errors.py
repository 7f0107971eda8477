"""Domain errors. No HTTP here: api/errors.py maps each to a status and a body.

Leaf module: imports nothing from overlord.
"""

from __future__ import annotations


class OverlordError(Exception):
    """Base of every error the services raise on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(OverlordError):
    """The request is malformed or breaks a rule Druid checks (a 400 for clients)."""


class InvalidTaskSpec(InvalidInput):
    """A submitted task that Druid's Jackson mapping refuses (400 ``{"error": ...}``)."""


class InvalidTaskId(InvalidInput):
    """An id Druid's IdUtils.validateId refuses."""


class TaskNotFound(OverlordError):
    """No task with that id."""

    def __init__(self, task_id: str) -> None:
        super().__init__(f"Cannot find any task with id: [{task_id}]")
        self.task_id = task_id


class TaskAlreadyExists(OverlordError):
    """A task with that id is already stored."""

    def __init__(self, task_id: str) -> None:
        super().__init__(f"Task[{task_id}] already exists")
        self.task_id = task_id


class NoActiveTasks(OverlordError):
    """``shutdownAllTasks`` on a datasource without active tasks."""


class ReportNotFound(OverlordError):
    """The task has no stored report."""


class LogNotFound(OverlordError):
    """The task has no log yet."""


class DatabaseBusy(OverlordError):
    """The database stayed locked or deadlocked through every retry."""


class ActionFailed(OverlordError):
    """A task action that could not be carried out (Druid answers 500 and the peon
    retries)."""


# --- Security (basic authentication and permissions; Druid's texts) ---------------


class UserNotFound(InvalidInput):
    def __init__(self, name: str) -> None:
        super().__init__(f"User [{name}] does not exist.")


class UserAlreadyExists(InvalidInput):
    def __init__(self, name: str) -> None:
        super().__init__(f"User [{name}] already exists.")


class RoleNotFound(InvalidInput):
    def __init__(self, name: str) -> None:
        super().__init__(f"Role [{name}] does not exist.")


class RoleAlreadyExists(InvalidInput):
    def __init__(self, name: str) -> None:
        super().__init__(f"Role [{name}] already exists.")


class RoleAlreadyAssigned(InvalidInput):
    def __init__(self, user: str, role: str) -> None:
        super().__init__(f"User [{user}] already has role [{role}].")


class RoleNotAssigned(InvalidInput):
    def __init__(self, user: str, role: str) -> None:
        super().__init__(f"User [{user}] does not have role [{role}].")


class InvalidPermission(InvalidInput):
    """A permission Druid refuses (a regex that does not compile, an unknown action)."""


class AccessDenied(OverlordError):
    """The authenticated identity lacks a permission the request needs (403)."""

    def __init__(self) -> None:
        super().__init__("Unauthorized")
