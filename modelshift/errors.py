"""The one exception tree of modelshift.

Every error knows whether a retry can help (``retryable``) and who is to blame (``blame``): the user's
configuration or input (``config``), the data a user supplied (``data``), the platform we call (``platform``)
or our own code (``bug``). Messages name the resource and the next step.

::

    ModelshiftError
    ├── ConfigError                     bad settings, files or arguments          (config, exit 2)
    │   ├── BundleValidationError       bundle.yaml or a file it names is wrong   (lists every problem)
    │   ├── ScenarioError               emulator scenario file is wrong
    │   ├── NotFoundError               no such app, bundle, migration, ...
    │   └── BundleConflictError         same app@version, other digest
    ├── DataValidationError             training data / corpus / dataset failed its checks   (data)
    ├── StateError                      the state store refused or is inconsistent
    │   ├── IllegalTransitionError      a status or phase move that the table forbids
    │   ├── RouterConflictError         compare-and-set lost against another writer  (retryable)
    │   ├── RouterInvariantError        weights that would serve a forbidden combination
    │   ├── AuditChainError             the audit chain does not verify
    │   ├── MigrationConflictError      the app already has another active migration
    │   └── StoreUnavailableError       the database cannot be reached            (retryable)
    └── PlatformError                   Azure (or the emulator, or an OpenAI-compatible server) said no
        ├── AuthError                   401/403                                   (config)
        ├── BadRequestError             400, with the platform's code             (config)
        ├── DeploymentNotFoundError     404
        ├── ModelRetiredError           410
        ├── DeploymentPausedError       423
        ├── QuotaExceededError          not enough quota for a deployment         (config)
        ├── OperationFailedError        a long-running operation ended Failed/Canceled
        │   └── FineTuneFailedError     a fine-tuning job ended failed/cancelled, with Azure's code
        ├── ThrottledError              429, carries the wait the platform asked for (retryable)
        └── TransientPlatformError      5xx, timeouts, connection resets          (retryable)
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, ClassVar


class Blame(StrEnum):
    """Who has to act for the error to go away."""

    CONFIG = "config"
    DATA = "data"
    PLATFORM = "platform"
    BUG = "bug"


class ModelshiftError(Exception):
    """Base of every error modelshift raises on purpose."""

    retryable: ClassVar[bool] = False
    blame: ClassVar[Blame] = Blame.BUG
    #: exit code the CLI uses when this error reaches it
    exit_code: ClassVar[int] = 1

    def __init__(self, message: str, **context: Any) -> None:
        super().__init__(message)
        self.message = message
        self.context = context

    def __str__(self) -> str:
        return self.message


class ConfigError(ModelshiftError):
    """The user's settings, files or arguments are wrong; fixing them is the next step."""

    blame = Blame.CONFIG
    exit_code = 2


class BundleValidationError(ConfigError):
    """A bundle failed validation. ``problems`` holds every problem as ``file: field.path: message``."""

    def __init__(self, problems: list[str], **context: Any) -> None:
        self.problems = list(problems)
        head = (
            f"{len(self.problems)} problem(s) in bundle" if len(self.problems) != 1 else "1 problem in bundle"
        )
        super().__init__(head + ":\n" + "\n".join(f"  {p}" for p in self.problems), **context)


class ScenarioError(ConfigError):
    """The emulator scenario file is wrong."""


class NotFoundError(ConfigError):
    """A named app, bundle, migration or record does not exist."""


class BundleConflictError(ConfigError):
    """A bundle version is already registered with different content (bundle versions are immutable)."""


class DataValidationError(ModelshiftError):
    """User data (training files, corpora, golden datasets) failed validation; a report lists each failure."""

    blame = Blame.DATA
    exit_code = 2


class StateError(ModelshiftError):
    """The state store refused an operation or found itself inconsistent."""


class IllegalTransitionError(StateError):
    """A status or phase change that the transition table does not allow; nothing was changed."""

    exit_code = 2


class RouterConflictError(StateError):
    """A router update lost a compare-and-set race; re-read the state and decide again."""

    retryable = True


class RouterInvariantError(StateError):
    """Router weights that would break an invariant (sum, status, evaluation record); nothing was changed."""

    exit_code = 2


class AuditChainError(StateError):
    """The audit chain does not verify (a row altered, removed or reordered); ``first_bad_seq`` says where."""

    def __init__(self, message: str, *, first_bad_seq: int | None = None, **context: Any) -> None:
        super().__init__(message, first_bad_seq=first_bad_seq, **context)
        self.first_bad_seq = first_bad_seq


class MigrationConflictError(StateError):
    """The app already has an active migration (one per app); finish or cancel it first."""

    exit_code = 2


class StoreUnavailableError(StateError):
    """The state store cannot be reached right now."""

    retryable = True
    blame = Blame.PLATFORM


class PlatformError(ModelshiftError):
    """A platform (Azure, the emulator, an OpenAI-compatible server) refused or failed a request."""

    blame = Blame.PLATFORM

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        code: str | None = None,
        request: str | None = None,
        **context: Any,
    ) -> None:
        super().__init__(message, **context)
        self.status_code = status_code
        self.code = code
        self.request = request


class AuthError(PlatformError):
    """401/403: the credential was missing, wrong, or lacks a role."""

    blame = Blame.CONFIG


class BadRequestError(PlatformError):
    """400: the platform rejected the request body; its code and message say why."""

    blame = Blame.CONFIG


class DeploymentNotFoundError(PlatformError):
    """404: the deployment (or another named resource) does not exist."""

    blame = Blame.CONFIG


class ModelRetiredError(PlatformError):
    """410: the deployment's model is retired; migrate the app to a supported version."""


class DeploymentPausedError(PlatformError):
    """423: the deployment is paused; resume it or route elsewhere."""


class QuotaExceededError(PlatformError):
    """There is not enough quota (TPM/capacity) in the location for what was asked."""

    blame = Blame.CONFIG


class OperationFailedError(PlatformError):
    """A long-running operation (deployment PUT, fine-tuning job) ended Failed or Canceled."""


class FineTuneFailedError(OperationFailedError):
    """A fine-tuning job ended failed or cancelled; ``code`` and the message carry the platform's error."""


class ThrottledError(PlatformError):
    """429: rate limit hit; ``retry_after`` is the wait in seconds the platform asked for, if it said."""

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class TransientPlatformError(PlatformError):
    """5xx, timeouts and connection resets: worth retrying with backoff."""

    retryable = True


def is_retryable(exc: BaseException) -> bool:
    """True when ``exc`` is a modelshift error that a retry may cure."""
    return isinstance(exc, ModelshiftError) and exc.retryable
