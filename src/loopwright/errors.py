"""Loopwright's error hierarchy.

Every error raised on purpose by Loopwright derives from ``LoopwrightError`` and carries a stable
``code`` (the REST API maps codes to HTTP statuses in one place). Leaves also inherit the matching
builtin so that existing ``except LookupError`` / ``except ValueError`` clauses keep working.

    LoopwrightError
    ├── ConfigError (ValueError) ................ a setting is missing or badly typed
    ├── StoreError
    │   ├── MigrationError ...................... the schema cannot be brought to this version
    │   ├── BlobNotFound (LookupError)
    │   └── IntegrityError ...................... stored bytes do not match their hash
    ├── InvalidInput (ValueError)
    │   ├── UnsafePath .......................... a user path would escape its root
    │   └── LimitExceeded ....................... past a configured bound (time, memory, size)
    │       └── RequestTooLarge ................. a request body past the server's cap (413)
    ├── NotFound (LookupError)
    ├── AlreadyExists
    ├── Conflict ................................ the object is in a state that forbids the change
    ├── PermissionDenied (PermissionError)
    ├── Unauthenticated ......................... no valid API token came with a server request
    ├── TrackingError / DataError / RegistryError
    │   (domain bases; domain leaves combine one of them with a leaf above)
    ├── TracingError ............................ no exporter for @lw.trace's traces
    ├── ServingError
    │   ├── ModelFailed ......................... the served model raised while predicting (500)
    │   └── Overloaded .......................... a model's request queue is full (503)
    ├── PipelineError
    │   ├── StepFailed .......................... a step raised (after its retries)
    │   └── StepTimeout (TimeoutError) .......... one attempt of a step ran past its timeout
    └── EvaluationError
        └── JudgeFailed ......................... a judge model was unreachable or unreadable

    RegistryError leaves:
        InvalidModelPackage (InvalidInput) ...... a package's manifest or files do not check out
        StageTransitionNotAllowed (Conflict) .... the stage table forbids this move
        ApprovalExpired (Conflict) .............. the approval request is past its expiry
        UnverifiedSource (Conflict) ............. an external version's files are not pinned yet
        SignatureError (InvalidInput) ........... predict's input does not match the signature
        UntrustedModel (PermissionDenied) ....... loading would unpickle or run packaged code
        ApprovalNotAllowed (PermissionDenied) ... this user may not decide this request
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "AlreadyExists",
    "ApprovalExpired",
    "ApprovalNotAllowed",
    "BlobNotFound",
    "ConfigError",
    "Conflict",
    "DataError",
    "EvaluationError",
    "IntegrityError",
    "InvalidInput",
    "InvalidModelPackage",
    "JudgeFailed",
    "LimitExceeded",
    "LoopwrightError",
    "MigrationError",
    "ModelFailed",
    "NotFound",
    "Overloaded",
    "PermissionDenied",
    "PipelineError",
    "RegistryError",
    "RequestTooLarge",
    "ServingError",
    "SignatureError",
    "StageTransitionNotAllowed",
    "StepFailed",
    "StepTimeout",
    "StoreError",
    "TracingError",
    "TrackingError",
    "Unauthenticated",
    "UnsafePath",
    "UntrustedModel",
    "UnverifiedSource",
]


class LoopwrightError(Exception):
    """Root of every error Loopwright raises on purpose."""

    code: str = "INTERNAL_ERROR"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict[str, str]:
        """The JSON body the REST API and ``--json`` CLI output use for this error."""
        return {"code": self.code, "message": self.message}


class ConfigError(LoopwrightError, ValueError):
    code = "INVALID_CONFIG"


class StoreError(LoopwrightError):
    code = "STORE_ERROR"


class MigrationError(StoreError):
    code = "MIGRATION_ERROR"


class BlobNotFound(StoreError, LookupError):
    code = "BLOB_NOT_FOUND"


class IntegrityError(StoreError):
    code = "INTEGRITY_ERROR"


class InvalidInput(LoopwrightError, ValueError):
    code = "INVALID_PARAMETER_VALUE"


class UnsafePath(InvalidInput):
    code = "UNSAFE_PATH"


class LimitExceeded(InvalidInput):
    code = "LIMIT_EXCEEDED"


class RequestTooLarge(LimitExceeded):
    code = "REQUEST_TOO_LARGE"


class NotFound(LoopwrightError, LookupError):
    code = "RESOURCE_DOES_NOT_EXIST"


class AlreadyExists(LoopwrightError):
    code = "RESOURCE_ALREADY_EXISTS"


class Conflict(LoopwrightError):
    code = "INVALID_STATE"


class PermissionDenied(LoopwrightError, PermissionError):
    code = "PERMISSION_DENIED"


class Unauthenticated(LoopwrightError):
    code = "UNAUTHENTICATED"


class TrackingError(LoopwrightError):
    code = "TRACKING_ERROR"


class DataError(LoopwrightError):
    code = "DATA_ERROR"


class RegistryError(LoopwrightError):
    code = "REGISTRY_ERROR"


class InvalidModelPackage(RegistryError, InvalidInput):
    code = "INVALID_MODEL_PACKAGE"


class StageTransitionNotAllowed(RegistryError, Conflict):
    code = "INVALID_STAGE_TRANSITION"


class ApprovalExpired(RegistryError, Conflict):
    code = "APPROVAL_EXPIRED"


class ApprovalNotAllowed(RegistryError, PermissionDenied):
    code = "APPROVAL_NOT_ALLOWED"


class SignatureError(RegistryError, InvalidInput):
    """The data given to ``predict`` does not match the model's signature."""

    code = "SIGNATURE_MISMATCH"

    def __init__(self, message: str, problems: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.problems = tuple(problems)


class UnverifiedSource(RegistryError, Conflict):
    """An external model version (registered by source URI only) was used before it was pinned."""

    code = "UNVERIFIED_SOURCE"

    @classmethod
    def of(cls, model: str, version: int, source: str | None, doing: str) -> UnverifiedSource:
        return cls(
            f"version {version} of model {model!r} is an external, unverified source "
            f"({source!r}) and cannot be {doing}: its files are not stored here. Pin it first: "
            f"`loopwright models pin {model} {version}` (or registry.pin_source({model!r}, "
            f"{version})) fetches, hashes and stores them; add --from FOLDER to pin files you "
            "downloaded yourself"
        )


class UntrustedModel(RegistryError, PermissionDenied):
    """Loading this model would run code chosen by its author; the caller did not opt in."""

    code = "UNTRUSTED_MODEL"


class ServingError(LoopwrightError):
    code = "SERVING_ERROR"


class ModelFailed(ServingError):
    """A served model raised while predicting on input that passed its signature."""

    code = "MODEL_FAILED"


class Overloaded(ServingError):
    """A model's request queue is full; the caller should retry later."""

    code = "TEMPORARILY_UNAVAILABLE"


class PipelineError(LoopwrightError):
    code = "PIPELINE_ERROR"


class StepFailed(PipelineError):
    """A step of a pipeline run raised on its last attempt (the step run is recorded failed)."""

    code = "STEP_FAILED"


class StepTimeout(PipelineError, TimeoutError):
    """One attempt of a step ran longer than the step's ``timeout``."""

    code = "STEP_TIMEOUT"


# --- evaluation (issue 19) ---------------------------------------------------------------------


class EvaluationError(LoopwrightError):
    code = "EVALUATION_ERROR"


class JudgeFailed(EvaluationError):
    """A judge model could not be reached, or its answer holds no readable score; within an
    evaluation this fails the row's score, not the evaluation."""

    code = "JUDGE_FAILED"


# --- tracing (issue 19) ------------------------------------------------------------------------


class TracingError(LoopwrightError):
    code = "TRACING_ERROR"
