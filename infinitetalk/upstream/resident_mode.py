"""Resident mode: the model is loaded once per agent, in a worker process the agent owns.

Loading Wan2.1-14B + InfiniteTalk takes minutes; resident mode pays that once at agent
start and keeps the pipeline warm for every job (subprocess mode pays it per job). The
model lives in the worker process (`worker`, `child`); this backend sends it each job and
replaces it when it dies, stops answering a cancel, or reports a broken CUDA context.
"""

import logging
from pathlib import Path

from contracts import FailureCode
from infinitetalk.engine import CancelCheck, EngineError
from infinitetalk.settings import InfiniteTalkSettings
from infinitetalk.upstream import failures, pinned
from infinitetalk.upstream.engine import Stop, UpstreamRun
from infinitetalk.upstream.profiles import ResolvedProfile
from infinitetalk.upstream.protocol import Done, Failed, JobEvent, RunJob, Step, WorkerConfig
from infinitetalk.upstream.worker import ModelWorker, WorkerDied, WorkerLoadError, WorkerState

log = logging.getLogger(__name__)


def worker_config(
    settings: InfiniteTalkSettings, profile: ResolvedProfile, *, fast: bool, multi: bool = False
) -> WorkerConfig:
    """What the worker loads. With `fast` it also keeps the fast LoRA at hand: the pipeline
    loads without it, and the LoRA is merged in only while fast jobs run. With `multi` the
    two-person audio weights are swapped in for two-speaker jobs, the same way."""
    quant = profile.quantization.value if profile.quantized else None
    return WorkerConfig(
        upstream_dir=settings.upstream_dir,
        ckpt_dir=settings.wan_dir,
        infinitetalk_weights=settings.infinitetalk_weights,
        wav2vec_dir=settings.wav2vec_dir,
        quantization=quant,
        quant_dir=settings.quant_weights(profile.quantization) if profile.quantized else None,
        fast_lora=settings.fast_lora_path if fast else None,
        fast_lora_scale=settings.fast_lora_scale,
        num_persistent_param_in_dit=profile.num_persistent_param_in_dit,
        offload_model=profile.offload_model,
        color_correction_strength=settings.color_correction_strength,
        teacache=settings.teacache,
        teacache_threshold=settings.teacache_threshold,
        log_level=logging.getLevelName(logging.getLogger().getEffectiveLevel()),
        child_env=settings.child_env,
        multi_weights=settings.multi_weights if multi else None,
    )


class ResidentBackend:
    """Runs each job in the agent's model worker, which keeps upstream loaded."""

    def __init__(self, worker: ModelWorker) -> None:
        self._worker = worker

    @property
    def worker(self) -> ModelWorker:
        return self._worker

    def start(self) -> None:
        """Start the worker and wait for the model: the agent pulls no job before that."""
        log.info("loading the InfiniteTalk model (minutes, once per agent)")
        self._worker.start()
        try:
            self._worker.wait_ready()
        except WorkerLoadError as exc:
            _log_tail("model load failed", exc.log_tail)
            raise

    def close(self) -> None:
        self._worker.stop()

    def ready(self, cancelled: CancelCheck) -> None:
        """A worker that died or was killed is back loading; wait for it (or start it)."""
        if self._worker.state is WorkerState.DEFUNCT:
            self._restart("its last load failed")
        if self._worker.state is WorkerState.STARTING:
            try:
                self._worker.wait_ready(cancelled)
            except WorkerLoadError as exc:
                _log_tail("model reload failed", exc.log_tail)
                raise failures.generation_failed("the model could not be loaded") from exc

    def run(self, run: UpstreamRun) -> Path | Stop:
        plan, progress = run.plan, run.progress
        sampling = plan.sampling
        speakers = plan.speakers
        job = RunJob(
            image_path=plan.cond_path,
            audio_path=plan.audio_path,
            prompt=plan.prompt,
            size=pinned.SIZE_ARGUMENT[plan.resolution],
            sample_shift=sampling.shift or pinned.DEFAULT_SAMPLE_SHIFT[plan.resolution],
            sample_steps=sampling.steps,
            text_guide_scale=sampling.text_guide_scale,
            audio_guide_scale=sampling.audio_guide_scale,
            fast_lora=bool(sampling.lora),
            seed=plan.seed,
            max_frame_num=plan.max_frame_num,
            workdir=run.run_dir,
            output_path=run.run_dir / "frames.mp4",
            person2_path=speakers.person2 if speakers else None,
            audio_type=speakers.audio_type if speakers else None,
            bbox=speakers.bbox if speakers else None,
        )

        def on_event(event: JobEvent) -> None:
            if isinstance(event, Step):
                progress.step(event.chunk, event.done)
            else:
                progress.encoding(event.done, event.total)

        try:
            outcome = self._worker.run(job, on_event, run.cancelled, run.deadline)
        except WorkerDied as died:
            self._restart(str(died))
            raise failures.generation_failed(
                f"the model worker died (exit code {died.exitcode}); "
                "the pod may have run out of host memory"
            ) from died
        end = outcome.end
        if end is None:
            self._restart("it did not stop after a cancel or time limit")
        elif isinstance(end, Failed) and end.fatal:
            self._restart("its CUDA state is broken")
        if outcome.stopped is not None:
            return outcome.stopped
        if isinstance(end, Failed):
            _log_tail("upstream failed", end.log_tail, fatal=end.fatal)
            retryable = end.code != FailureCode.GPU_OUT_OF_MEMORY.value
            raise EngineError(end.code, end.message, retryable=retryable)
        return end.path if isinstance(end, Done) else Stop.CANCELLED

    def _restart(self, reason: str) -> None:
        self._worker.restart()
        log.warning(
            "model worker restarted", extra={"reason": reason, "reloads": self._worker.reloads}
        )


def _log_tail(message: str, tail: tuple[str, ...], **extra: object) -> None:
    log.warning(message, extra={"log_tail": "\n".join(tail), **extra})
