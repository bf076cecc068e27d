"""What a failed run means for the job, from upstream's log text or exception.

Clients get a short message and a code (the failure codes of docs/API.md); upstream's own log lines
go only to the agent's log, because they hold paths and internals.
"""

from collections.abc import Iterable

from contracts import FailureCode
from infinitetalk.engine import EngineError

_OOM_MARKERS = (
    "CUDA out of memory",
    "OutOfMemoryError",
    "CUBLAS_STATUS_ALLOC_FAILED",
    "cudaErrorMemoryAllocation",
)
_BROKEN_CUDA_MARKERS = (
    "illegal memory access",
    "device-side assert",
    "unspecified launch failure",
    "uncorrectable ECC error",
    "CUDA error: misaligned address",
)
"""Sticky CUDA errors: the process's context is unusable until it exits."""

OOM_MESSAGE = "the GPU ran out of memory for this video; 480p needs less"


def mentions_oom(lines: Iterable[str]) -> bool:
    return any(marker in line for line in lines for marker in _OOM_MARKERS)


def mentions_broken_cuda(lines: Iterable[str]) -> bool:
    return any(marker in line for line in lines for marker in _BROKEN_CUDA_MARKERS)


def out_of_memory() -> EngineError:
    """Not retryable: the same job on the same kind of GPU runs out again."""
    return EngineError(FailureCode.GPU_OUT_OF_MEMORY.value, OOM_MESSAGE, retryable=False)


def generation_failed(message: str) -> EngineError:
    """Retryable: a crash may be the machine's, and another attempt may land elsewhere."""
    return EngineError(FailureCode.GENERATION_FAILED.value, message, retryable=True)


def timed_out(limit_seconds: float, audio_seconds: float) -> EngineError:
    return EngineError(
        FailureCode.TIMEOUT.value,
        f"generation took longer than {limit_seconds:.0f} s, the limit for "
        f"{audio_seconds:.1f} s of audio",
        retryable=False,
    )
