"""The typed messages between the agent and its model worker process (cog-style).

The agent sends a `WorkerConfig` once (as the process's argument), then `RunJob` per job
and `Shutdown` at the end; the worker answers `Ready` or `LoadFailed` once, and per job a
stream of `Step` and `Encoding` events ending in exactly one of `Done`, `Failed` or
`Cancelled`. Plain frozen dataclasses: they cross the pipe pickled.
"""

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class WorkerConfig:
    """Everything the worker needs to load upstream once; each `RunJob` says how it samples."""

    upstream_dir: Path
    ckpt_dir: Path
    infinitetalk_weights: Path
    wav2vec_dir: Path
    quantization: str | None
    quant_dir: Path | None
    fast_lora: Path | None
    """The distilled LoRA that fast jobs merge in; None when this agent serves no fast jobs."""
    fast_lora_scale: float
    num_persistent_param_in_dit: int | None
    offload_model: bool
    color_correction_strength: float
    teacache: bool
    teacache_threshold: float
    log_level: str = "INFO"
    child_env: dict[str, str] = field(default_factory=dict)
    multi_weights: Path | None = None
    """Upstream's two-person audio weights, swapped in for two-speaker jobs; None: this
    agent serves one speaker only."""


@dataclass(frozen=True)
class RunJob:
    image_path: Path
    """Upstream's `cond_video`: the portrait, or the video to dub."""
    audio_path: Path
    """The speech (person1's track for two speakers)."""
    prompt: str
    size: str
    """Upstream's size bucket name, `infinitetalk-480` or `infinitetalk-720`."""
    sample_shift: float
    sample_steps: int
    text_guide_scale: float
    audio_guide_scale: float
    fast_lora: bool
    """Sample with `WorkerConfig.fast_lora` merged into the DiT (a fast job)."""
    seed: int
    max_frame_num: int
    workdir: Path
    output_path: Path
    number: int = 0
    """Set by the agent's worker handle; a cancel names the job number it is meant for."""
    person2_path: Path | None = None
    """Two speakers: the second track; the job then runs on the multi weights."""
    audio_type: str | None = None
    """Two speakers: upstream's `add` or `para`."""
    bbox: dict[str, list[int]] | None = None
    """Two speakers: upstream's `bbox` (row-first, `pinned.upstream_bbox`)."""


@dataclass(frozen=True)
class Shutdown:
    pass


@dataclass(frozen=True)
class Ready:
    load_seconds: float


@dataclass(frozen=True)
class LoadFailed:
    message: str
    log_tail: tuple[str, ...]


@dataclass(frozen=True)
class Step:
    chunk: int
    """0-based chunk (tqdm bar) of this job."""
    done: int
    """Sampling steps of that chunk finished."""


@dataclass(frozen=True)
class Encoding:
    done: int
    total: int


@dataclass(frozen=True)
class Done:
    path: Path
    frames: int


@dataclass(frozen=True)
class Failed:
    code: str
    """A `contracts.FailureCode` value."""
    message: str
    """Safe for clients: no paths, no upstream internals."""
    log_tail: tuple[str, ...]
    """Upstream's last lines and the traceback, for the agent's log only."""
    fatal: bool
    """The CUDA context is broken: the worker exits and the agent starts a new one."""


@dataclass(frozen=True)
class Cancelled:
    pass


JobEvent = Step | Encoding
JobEnd = Done | Failed | Cancelled
