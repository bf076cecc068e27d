"""Pick an engine by name, as the agent's `ENGINE` setting names it (DESIGN.md section 7).

`preview` needs nothing. `infinitetalk` resolves its memory profile (measuring the GPU in
a short-lived child when a setting is `auto`), refuses to start when the upstream checkout
or a weight file is missing, decides once whether it serves `quality=fast` (the LoRA is
there and the model is not quantised), and in resident mode loads the model before
returning.
"""

import logging
from collections.abc import Callable

from contracts.media import EngineName
from infinitetalk import upstream
from infinitetalk.engine import Engine
from infinitetalk.gpu_probe import measure_in_subprocess
from infinitetalk.preflight import EngineStartError, fast_unavailable, startup_problems
from infinitetalk.preview import PreviewEngine
from infinitetalk.profiles import HostInfo, needs_measurement, resolve_profile
from infinitetalk.resident import ModelWorker, ResidentEngine, WorkerLoadError, worker_config
from infinitetalk.settings import InfiniteTalkSettings, Mode
from infinitetalk.subprocess_engine import SubprocessEngine
from infinitetalk.weights import quant_available

log = logging.getLogger(__name__)

ENGINE_NAMES = tuple(EngineName)


def create_engine(name: str, *, infinitetalk: InfiniteTalkSettings | None = None) -> Engine:
    """Build the named engine; an unknown name fails loudly, listing the valid ones."""
    if name == PreviewEngine.name:
        return PreviewEngine()
    if name == "infinitetalk":
        return start_infinitetalk(infinitetalk or InfiniteTalkSettings())
    raise ValueError(f"unknown engine {name!r}; valid engines: {', '.join(ENGINE_NAMES)}")


def start_infinitetalk(
    settings: InfiniteTalkSettings,
    *,
    measure: Callable[[], HostInfo] = measure_in_subprocess,
) -> SubprocessEngine | ResidentEngine:
    """Check everything a job needs, then build the engine (resident: with the model loaded)."""
    host = measure() if needs_measurement(settings) else None
    profile = resolve_profile(settings, host, lambda q: quant_available(settings, q))
    problems = startup_problems(settings, profile)
    if problems:
        raise EngineStartError(problems)
    checkout = upstream.checkout_commit(settings.upstream_dir)
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
    if checkout is not None and checkout != upstream.UPSTREAM_COMMIT:
        log.warning(
            "upstream checkout is not at the pinned commit",
            extra={"checkout": checkout, "pinned": upstream.UPSTREAM_COMMIT},
        )
    if settings.mode is Mode.SUBPROCESS:
        return SubprocessEngine(settings, profile, fast_unavailable=fast)
    worker = ModelWorker(
        worker_config(settings, profile, fast=fast is None),
        load_timeout=settings.load_timeout_seconds,
        cancel_grace=settings.cancel_grace_seconds,
    )
    engine = ResidentEngine(settings, worker, fast_unavailable=fast)
    try:
        engine.start()
    except WorkerLoadError as exc:
        raise EngineStartError([f"the model could not be loaded: {exc}"]) from exc
    return engine
