"""The Engine protocol every video engine implements (DESIGN.md section 6)."""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from contracts import Resolution, Stage

ProgressCallback = Callable[[float, Stage, float | None], None]
"""Called with (percent 0-100, stage, eta_seconds or None); percent never goes down."""

CancelCheck = Callable[[], bool]
"""Returns True once the job has been cancelled; engines poll it and stop soon after."""


@dataclass(frozen=True)
class VideoRequest:
    image_path: Path
    audio_path: Path
    prompt: str
    resolution: Resolution = Resolution.P720
    seed: int | None = None


@dataclass(frozen=True)
class VideoResult:
    path: Path
    duration_seconds: float
    width: int
    height: int
    engine: str


class EngineError(Exception):
    """A job-level failure; `code` is a `contracts.FailureCode` value."""

    def __init__(self, code: str, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retryable = retryable


class InvalidInputError(EngineError):
    """The inputs cannot be decoded: never worth retrying."""

    def __init__(self, message: str) -> None:
        super().__init__("INVALID_INPUT", message, retryable=False)


class CancelledError(EngineError):
    def __init__(self) -> None:
        super().__init__("CANCELLED", "job was cancelled", retryable=False)


class Engine(Protocol):
    name: str

    def generate(
        self,
        request: VideoRequest,
        workdir: Path,
        on_progress: ProgressCallback,
        cancelled: CancelCheck,
    ) -> VideoResult: ...


@runtime_checkable
class ClosableEngine(Protocol):
    """An engine holding a resource (a model worker) that must be released at shutdown."""

    def close(self) -> None: ...
