"""Pick an engine by name, as the agent's `ENGINE` setting names it.

`preview` needs nothing. `infinitetalk` resolves its memory profile (measuring the GPU in
a short-lived child when a setting is `auto`), refuses to start when the upstream checkout
or a weight file is missing, decides once whether it serves `quality=fast` (the LoRA is
there and the model is not quantised), and in resident mode loads the model before
returning.
"""

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from contracts.media import EngineName
from infinitetalk.engine import Engine
from infinitetalk.settings import InfiniteTalkSettings, Mode
from infinitetalk.upstream import pinned
from infinitetalk.upstream.gpu_probe import measure_in_subprocess
from infinitetalk.upstream.preflight import (
    EngineStartError,
    fast_unavailable,
    startup_problems,
    two_speakers_unavailable,
)
from infinitetalk.upstream.profiles import HostInfo, needs_measurement, resolve_profile
from infinitetalk.upstream.weights import quant_available

if TYPE_CHECKING:
    from infinitetalk.upstream.engine import UpstreamEngine
    from infinitetalk.upstream.resident_mode import ResidentBackend
    from infinitetalk.upstream.subprocess_mode import SubprocessBackend

log = logging.getLogger(__name__)

ENGINE_NAMES = tuple(sorted(EngineName))


def create_engine(name: str, *, infinitetalk: InfiniteTalkSettings | None = None) -> Engine:
    """Build the named engine; an unknown name fails loudly, listing the valid ones."""
    # The engines import PyAV, NumPy and Pillow: only the one built pays for them.
    if name == EngineName.PREVIEW:
        from infinitetalk.preview.engine import PreviewEngine

        return PreviewEngine()
    if name == EngineName.INFINITETALK:
        return start_infinitetalk(infinitetalk or InfiniteTalkSettings())
    raise ValueError(f"unknown engine {name!r}; valid engines: {', '.join(ENGINE_NAMES)}")


def start_infinitetalk(
    settings: InfiniteTalkSettings,
    *,
    measure: Callable[[], HostInfo] = measure_in_subprocess,
) -> "UpstreamEngine[ResidentBackend] | UpstreamEngine[SubprocessBackend]":
    """Check everything a job needs, then build the engine (resident: with the model loaded)."""
    from infinitetalk.upstream.engine import UpstreamEngine
    from infinitetalk.upstream.resident_mode import ResidentBackend, worker_config
    from infinitetalk.upstream.subprocess_mode import SubprocessBackend
    from infinitetalk.upstream.worker import ModelWorker, WorkerLoadError

    host = measure() if needs_measurement(settings) else None
    profile = resolve_profile(settings, host, lambda q: quant_available(settings, q))
    problems = startup_problems(settings, profile)
    if problems:
        raise EngineStartError(problems)
    checkout = pinned.checkout_commit(settings.upstream_dir)
    log.info(
        "InfiniteTalk configured",
        extra={
            "mode": settings.mode.value,
            "profile": profile.name.value,
            "num_persistent_param_in_dit": profile.num_persistent_param_in_dit,
            "offload_model": profile.offload_model,
            "quantization": profile.quantization.value,
            "why": "; ".join(profile.reasons),
            "gpu": host.gpu_name if host else None,
            "upstream_commit": checkout,
        },
    )
    for warning in profile.warnings:
        log.warning(warning)
    fast = fast_unavailable(settings, profile.quantization)
    if fast is None:
        log.info("quality=fast available", extra={"lora": str(settings.fast_lora_path)})
    else:
        log.warning("quality=fast unavailable: fast jobs will fail", extra={"why": fast})
    if checkout is not None and checkout != pinned.UPSTREAM_COMMIT:
        log.warning(
            "upstream checkout is not at the pinned commit",
            extra={"checkout": checkout, "pinned": pinned.UPSTREAM_COMMIT},
        )
    two_speakers = two_speakers_unavailable(settings, profile.quantization)
    multi = two_speakers is None
    if multi:
        log.info("two speakers available", extra={"weights": str(settings.multi_weights)})
    else:
        log.warning(
            "two speakers unavailable: two-speaker jobs go elsewhere", extra={"why": two_speakers}
        )
    if settings.mode is Mode.SUBPROCESS:
        per_job = SubprocessBackend(settings, profile)
        return UpstreamEngine(settings, per_job, fast_unavailable=fast, two_speakers=multi)
    worker = ModelWorker(
        worker_config(settings, profile, fast=fast is None, multi=multi),
        load_timeout=settings.load_timeout_seconds,
        cancel_grace=settings.cancel_grace_seconds,
    )
    backend = ResidentBackend(worker)
    try:
        backend.start()
    except WorkerLoadError as exc:
        raise EngineStartError([f"the model could not be loaded: {exc}"]) from exc
    return UpstreamEngine(settings, backend, fast_unavailable=fast, two_speakers=multi)
