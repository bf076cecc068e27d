"""The Engine protocol every video engine implements, its request, result and errors."""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from contracts import (
    Capability,
    FailureCode,
    Quality,
    Resolution,
    SpeakerAssignment,
    SpeakerMode,
    Stage,
)

ProgressCallback = Callable[[float, Stage, float | None], None]
"""Called with (percent 0-100, stage, eta_seconds or None); percent never goes down."""

CancelCheck = Callable[[], bool]
"""Returns True once the job has been cancelled; engines poll it and stop soon after."""


@dataclass(frozen=True)
class AudioInfo:
    """A decodable speech track; its duration counts decoded samples, not header claims."""

    duration_seconds: float
    sample_rate: int
    channels: int
    codec: str


@dataclass(frozen=True)
class PreparedAudio:
    """A job's speech after its one decode (`infinitetalk.media.audio_pass.prepare_audio`).

    Later steps read these files, never the original audio again.
    """

    info: AudioInfo
    aac_path: Path
    """The original audio encoded as AAC in an M4A: the output stream-copies its packets."""
    loudness_path: Path
    """RMS per 40 ms video frame (`audio_pass.read_loudness`): the preview's motion."""
    padded_path: Path | None
    """A 16 kHz mono WAV padded with silence, made only for audio too short for upstream."""


@dataclass(frozen=True)
class SpeakerTracks:
    """A two-speaker job's audio (`infinitetalk.media.speaker_tracks`): the request's
    `audio_path`/`audio` are then both tracks laid out on one timeline and mixed."""

    mode: SpeakerMode
    assignment: SpeakerAssignment
    """`boxes[0]` speaks the first track, `boxes[1]` the second, in source pixels."""
    loudness_paths: tuple[Path, Path]
    """Each speaker's RMS per 40 ms video frame on the output's timeline (`read_loudness`)."""
    model_paths: tuple[Path, Path]
    """16 kHz mono WAVs for upstream's `person1`/`person2`: as sent for `sequential`
    (upstream's `add` concatenates them), padded to one length for `simultaneous` (`para`
    sums them), and long enough together for one upstream chunk."""


@dataclass(frozen=True)
class VideoRequest:
    image_path: Path
    """The portrait; for a dubbing job, the video's first frame as a PNG."""
    audio_path: Path
    prompt: str
    resolution: Resolution = Resolution.P720
    seed: int | None = None
    quality: Quality = Quality.STANDARD
    audio: PreparedAudio | None = None
    """The agent's pass over `audio_path`; without it the engine makes the pass itself."""
    video_path: Path | None = None
    """Dubbing: the video whose frames are animated (the output follows the audio: a
    shorter video holds its last frame, a longer one is cut)."""
    speakers: SpeakerTracks | None = None
    """Two speakers: their tracks and boxes."""


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
    """The inputs cannot be decoded, or break a limit (`code` says which): never worth
    retrying."""

    def __init__(self, message: str, code: FailureCode = FailureCode.INVALID_INPUT) -> None:
        super().__init__(code.value, message, retryable=False)


class QualityUnavailableError(EngineError):
    """The engine cannot make this quality: retrying here would fail the same way."""

    def __init__(self, quality: Quality, reason: str) -> None:
        super().__init__(
            "QUALITY_UNAVAILABLE",
            f"quality={quality.value} is not available: {reason}; "
            f"submit with quality={Quality.STANDARD.value}",
            retryable=False,
        )


class CancelledError(EngineError):
    def __init__(self) -> None:
        super().__init__("CANCELLED", "job was cancelled", retryable=False)


class Engine(Protocol):
    name: str

    def quality_unavailable(self, quality: Quality) -> str | None:
        """Why this engine cannot make `quality` videos (naming the setting); None if it can.

        The agent asks before it downloads anything, so a job it cannot serve as asked
        fails at once instead of silently running another speed profile.
        """
        ...

    def generate(
        self,
        request: VideoRequest,
        workdir: Path,
        on_progress: ProgressCallback,
        cancelled: CancelCheck,
    ) -> VideoResult: ...


def require_quality(engine: Engine, quality: Quality) -> None:
    """Raise QualityUnavailableError unless `engine` serves `quality`: never another one."""
    reason = engine.quality_unavailable(quality)
    if reason is not None:
        raise QualityUnavailableError(quality, reason)


@runtime_checkable
class CapableEngine(Protocol):
    """An engine that says what it can make; one that does not makes image jobs only."""

    def capabilities(self) -> frozenset[Capability]: ...


def engine_capabilities(engine: Engine) -> frozenset[Capability]:
    """What the agent advertises in its claims (`contracts.agent.Capability`)."""
    if isinstance(engine, CapableEngine):
        return engine.capabilities()
    return frozenset({Capability.IMAGE})


@runtime_checkable
class ClosableEngine(Protocol):
    """An engine holding a resource (a model worker) that must be released at shutdown."""

    def close(self) -> None: ...
